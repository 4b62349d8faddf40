//! One WebSocket binary message = one [`Frame`]: an opcode byte and its
//! payload.

use super::codec::Reader;
use super::grid::{decode_diff, decode_snapshot, encode_diff, encode_snapshot};
use super::{
    AppMessage, DecodeError, GridDiff, GridEncoding, GridSnapshot, Opcode, Reason, MAX_ID_LEN,
    MAX_MESSAGE_LEN,
};

/// A decoded remote-protocol message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// 0x00: raw PTY output, forwarded untouched.
    PtyData(Vec<u8>),
    /// 0x01: a JSON control or data message.
    AppJson(AppMessage),
    /// 0x02: the size a mobile wants; any u32 is carried, the agent caps it
    /// (and answers `grid_resize_capped` when it does).
    Resize {
        /// Requested width in cells.
        cols: u32,
        /// Requested height in cells.
        rows: u32,
    },
    /// 0x03: an ANSI rendering of a session's screen, cached by the relay
    /// for instant first paint.
    FrameSnapshot {
        /// The session the rendering belongs to (UTF-8).
        id: String,
        /// Escape sequences that paint the screen on a blank terminal.
        ansi: Vec<u8>,
    },
    /// 0x04: the full screen grid.
    GridSnapshot(GridSnapshot),
    /// 0x05: changes since the previous grid.
    GridDiff(GridDiff),
    /// 0xFF: the peer could not use a frame.
    ProtocolError(Reason),
}

/// Splits a message into its opcode and raw payload without decoding the
/// payload, so a relay can route or forward PTY_DATA without copying it.
pub fn split(msg: &[u8]) -> Result<(Opcode, &[u8]), DecodeError> {
    let (&first, payload) = msg.split_first().ok_or(DecodeError::Truncated("opcode"))?;
    if msg.len() > MAX_MESSAGE_LEN {
        return Err(DecodeError::TooLarge {
            what: "message",
            len: msg.len() as u64,
            max: MAX_MESSAGE_LEN as u64,
        });
    }
    Ok((Opcode::from_u8(first)?, payload))
}

/// Appends a PTY_DATA frame carrying `data`, without building a [`Frame`]:
/// the hot path of terminal output.
#[inline]
pub fn encode_pty_data_into(data: &[u8], out: &mut Vec<u8>) {
    out.reserve(1 + data.len());
    out.push(Opcode::PtyData as u8);
    out.extend_from_slice(data);
}

fn put_u32_len(out: &mut Vec<u8>, len: usize) {
    out.extend_from_slice(&(len as u32).to_be_bytes());
}

impl Frame {
    /// The opcode this frame is sent with.
    pub fn opcode(&self) -> Opcode {
        match self {
            Self::PtyData(_) => Opcode::PtyData,
            Self::AppJson(_) => Opcode::AppJson,
            Self::Resize { .. } => Opcode::Resize,
            Self::FrameSnapshot { .. } => Opcode::FrameSnapshot,
            Self::GridSnapshot(_) => Opcode::GridSnapshot,
            Self::GridDiff(_) => Opcode::GridDiff,
            Self::ProtocolError(_) => Opcode::ProtocolError,
        }
    }

    /// The frame as one WebSocket binary message, with everything this
    /// version defines ([`GridEncoding::FULL`]). Grid frames for a peer
    /// go through [`Self::encode_for`] with what that peer asked for.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    /// The frame as one WebSocket binary message for a receiver that
    /// decodes `encoding` (what it asked for with `grid.features`, §5);
    /// only GRID_SNAPSHOT and GRID_DIFF depend on it.
    pub fn encode_for(&self, encoding: GridEncoding) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into_for(&mut out, encoding);
        out
    }

    /// Whether encoding for `encoding` drops something this frame holds
    /// (an underline colour, for [`GridEncoding::V3_0`]): when not, the
    /// bytes of [`Self::encode`] are already right for that receiver, so a
    /// relay forwards them untouched.
    pub fn differs_for(&self, encoding: GridEncoding) -> bool {
        if encoding.underline_color {
            return false;
        }
        match self {
            Self::GridSnapshot(s) => s.grid.has_underline_color(),
            Self::GridDiff(d) => d.ops.iter().any(|op| op.has_underline_color()),
            _ => false,
        }
    }

    /// Appends the frame to `out`, so a sender can reuse one buffer.
    ///
    /// Encoding never fails; a frame beyond the caps (a grid over
    /// [`super::MAX_GRID_CELLS`], a FRAME_SNAPSHOT id over
    /// [`MAX_ID_LEN`], a message over [`MAX_MESSAGE_LEN`]) is produced but
    /// a conforming peer refuses it.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        self.encode_into_for(out, GridEncoding::FULL);
    }

    /// [`Self::encode_into`] for a receiver that decodes `encoding`.
    pub fn encode_into_for(&self, out: &mut Vec<u8>, encoding: GridEncoding) {
        match self {
            Self::PtyData(data) => encode_pty_data_into(data, out),
            Self::AppJson(msg) => {
                out.push(Opcode::AppJson as u8);
                msg.write_json(out);
            }
            Self::Resize { cols, rows } => {
                out.push(Opcode::Resize as u8);
                out.extend_from_slice(&cols.to_be_bytes());
                out.extend_from_slice(&rows.to_be_bytes());
            }
            Self::FrameSnapshot { id, ansi } => {
                out.reserve(9 + id.len() + ansi.len());
                out.push(Opcode::FrameSnapshot as u8);
                put_u32_len(out, id.len());
                out.extend_from_slice(id.as_bytes());
                put_u32_len(out, ansi.len());
                out.extend_from_slice(ansi);
            }
            Self::GridSnapshot(s) => {
                out.push(Opcode::GridSnapshot as u8);
                encode_snapshot(out, s, encoding);
            }
            Self::GridDiff(d) => {
                out.push(Opcode::GridDiff as u8);
                encode_diff(out, d, encoding);
            }
            Self::ProtocolError(reason) => {
                out.extend_from_slice(&[Opcode::ProtocolError as u8, reason.code()]);
            }
        }
    }

    /// Decodes one whole message. Claimed lengths are checked against the
    /// message and the caps before anything is allocated from them.
    pub fn decode(msg: &[u8]) -> Result<Frame, DecodeError> {
        let (op, payload) = split(msg)?;
        match op {
            Opcode::PtyData => Ok(Self::PtyData(payload.to_vec())),
            Opcode::AppJson => AppMessage::from_json(payload).map(Self::AppJson),
            Opcode::Resize => {
                let mut r = Reader::new(payload);
                let cols = r.u32_be("resize cols")?;
                let rows = r.u32_be("resize rows")?;
                r.finish()?;
                Ok(Self::Resize { cols, rows })
            }
            Opcode::FrameSnapshot => {
                let mut r = Reader::new(payload);
                let id_len = r.u32_be("snapshot id length")? as usize;
                if id_len > MAX_ID_LEN {
                    return Err(DecodeError::TooLarge {
                        what: "snapshot id",
                        len: id_len as u64,
                        max: MAX_ID_LEN as u64,
                    });
                }
                let id = r.bytes(id_len, "snapshot id")?;
                let id = std::str::from_utf8(id)
                    .map_err(|_| DecodeError::BadUtf8("snapshot id"))?
                    .to_owned();
                let ansi_len = r.u32_be("snapshot ansi length")? as usize;
                let ansi = r.bytes(ansi_len, "snapshot ansi")?.to_vec();
                r.finish()?;
                Ok(Self::FrameSnapshot { id, ansi })
            }
            Opcode::GridSnapshot => decode_snapshot(payload).map(Self::GridSnapshot),
            Opcode::GridDiff => decode_diff(payload).map(Self::GridDiff),
            Opcode::ProtocolError => {
                let mut r = Reader::new(payload);
                let reason = Reason::from_code(r.u8("reason")?);
                r.finish()?;
                Ok(Self::ProtocolError(reason))
            }
        }
    }
}
