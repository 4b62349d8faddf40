//! The JSON form of frames used by the cross-validation fixtures
//! (`fixtures/binary-protocol-v3.fixtures.json`) and by debugging tools.
//!
//! Each frame is an object whose `opcode` names the kind. Byte payloads
//! that are UTF-8 appear as text (`data`, `ansi`), any others as lowercase
//! hex (`dataHex`, `ansiHex`); grids and diff ops use the serde form of the
//! [`super::Grid`] and [`super::DiffOp`] types. Implementations in other
//! languages parse the hex with their decoder and compare with this form.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{AppMessage, DiffOp, Frame, Grid, GridDiff, GridSnapshot, Reason};

#[derive(Serialize, Deserialize)]
#[serde(tag = "opcode", deny_unknown_fields)]
enum JsonFrame {
    #[serde(rename = "PTY_DATA")]
    PtyData {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        data: Option<String>,
        #[serde(rename = "dataHex", default, skip_serializing_if = "Option::is_none")]
        data_hex: Option<String>,
    },
    #[serde(rename = "APP_JSON")]
    AppJson { message: AppMessage },
    #[serde(rename = "RESIZE")]
    Resize { cols: u32, rows: u32 },
    #[serde(rename = "FRAME_SNAPSHOT")]
    FrameSnapshot {
        id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ansi: Option<String>,
        #[serde(rename = "ansiHex", default, skip_serializing_if = "Option::is_none")]
        ansi_hex: Option<String>,
    },
    #[serde(rename = "GRID_SNAPSHOT")]
    GridSnapshot { seq: u32, grid: Grid },
    #[serde(rename = "GRID_DIFF")]
    GridDiff { seq: u32, ops: Vec<DiffOp> },
    #[serde(rename = "PROTOCOL_ERROR")]
    ProtocolError {
        reason: u8,
        #[serde(rename = "reasonName")]
        reason_name: String,
    },
}

/// Lowercase hex of `bytes`.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0x0F)] as char);
    }
    s
}

/// Bytes from hex (either case, no separators).
pub fn from_hex(s: &str) -> Result<Vec<u8>, String> {
    fn nibble(c: u8) -> Result<u8, String> {
        match c {
            b'0'..=b'9' => Ok(c - b'0'),
            b'a'..=b'f' => Ok(c - b'a' + 10),
            b'A'..=b'F' => Ok(c - b'A' + 10),
            _ => Err(format!("not a hex digit: {:?}", c as char)),
        }
    }
    if s.len() & 1 == 1 {
        return Err("hex has an odd number of digits".into());
    }
    s.as_bytes()
        .chunks(2)
        .map(|p| Ok(nibble(p[0])? << 4 | nibble(p[1])?))
        .collect()
}

fn bytes_to_json(b: &[u8]) -> (Option<String>, Option<String>) {
    match std::str::from_utf8(b) {
        Ok(s) => (Some(s.to_owned()), None),
        Err(_) => (None, Some(to_hex(b))),
    }
}

fn bytes_from_json(
    text: Option<String>,
    hex: Option<String>,
    what: &str,
) -> Result<Vec<u8>, String> {
    match (text, hex) {
        (Some(t), None) => Ok(t.into_bytes()),
        (None, Some(h)) => from_hex(&h),
        _ => Err(format!(
            "exactly one of `{what}` and `{what}Hex` is required"
        )),
    }
}

/// The JSON form of `frame`.
pub fn to_json(frame: &Frame) -> Value {
    let j = match frame {
        Frame::PtyData(d) => {
            let (data, data_hex) = bytes_to_json(d);
            JsonFrame::PtyData { data, data_hex }
        }
        Frame::AppJson(m) => JsonFrame::AppJson { message: m.clone() },
        Frame::Resize { cols, rows } => JsonFrame::Resize {
            cols: *cols,
            rows: *rows,
        },
        Frame::FrameSnapshot { id, ansi } => {
            let (ansi, ansi_hex) = bytes_to_json(ansi);
            JsonFrame::FrameSnapshot {
                id: id.clone(),
                ansi,
                ansi_hex,
            }
        }
        Frame::GridSnapshot(s) => JsonFrame::GridSnapshot {
            seq: s.seq,
            grid: s.grid.clone(),
        },
        Frame::GridDiff(d) => JsonFrame::GridDiff {
            seq: d.seq,
            ops: d.ops.clone(),
        },
        Frame::ProtocolError(r) => JsonFrame::ProtocolError {
            reason: r.code(),
            reason_name: r.name().to_owned(),
        },
    };
    serde_json::to_value(j).expect("frames serialize to JSON")
}

/// The frame a JSON form describes.
pub fn from_json(value: Value) -> Result<Frame, String> {
    let j: JsonFrame = serde_json::from_value(value).map_err(|e| e.to_string())?;
    Ok(match j {
        JsonFrame::PtyData { data, data_hex } => {
            Frame::PtyData(bytes_from_json(data, data_hex, "data")?)
        }
        JsonFrame::AppJson { message } => Frame::AppJson(message),
        JsonFrame::Resize { cols, rows } => Frame::Resize { cols, rows },
        JsonFrame::FrameSnapshot { id, ansi, ansi_hex } => Frame::FrameSnapshot {
            id,
            ansi: bytes_from_json(ansi, ansi_hex, "ansi")?,
        },
        JsonFrame::GridSnapshot { seq, grid } => Frame::GridSnapshot(GridSnapshot { seq, grid }),
        JsonFrame::GridDiff { seq, ops } => Frame::GridDiff(GridDiff { seq, ops }),
        JsonFrame::ProtocolError {
            reason,
            reason_name,
        } => {
            let r = Reason::from_code(reason);
            if r.name() != reason_name {
                return Err(format!(
                    "reason {reason} is {}, not {reason_name}",
                    r.name()
                ));
            }
            Frame::ProtocolError(r)
        }
    })
}
