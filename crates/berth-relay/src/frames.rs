//! Encoded frames the relay sends often (remote protocol v3, seed 001).

use berth_wire::remote::{
    AppMessage, ErrorMessage, Frame, Grid, GridEncoding, GridSnapshot, Reason,
};
use bytes::Bytes;

pub(crate) fn enc(f: &Frame) -> Bytes {
    Bytes::from(f.encode())
}

pub(crate) fn json(m: AppMessage) -> Bytes {
    enc(&Frame::AppJson(m))
}

/// An `error` message (`docs/remote-protocol-v3.md` §6): `code` is one of
/// the protocol's error codes, `message` says what went wrong.
pub(crate) fn error(code: &str, message: impl Into<String>) -> Bytes {
    json(AppMessage::Error(ErrorMessage {
        code: code.into(),
        message: message.into(),
    }))
}

pub(crate) fn protocol_error(r: Reason) -> Bytes {
    enc(&Frame::ProtocolError(r))
}

/// A GRID_SNAPSHOT of the relay's copy of a feed's grid, for a mobile that
/// decodes `encoding` (what it asked for with `grid.features`).
pub(crate) fn snapshot_frame(grid: &Grid, seq: u32, encoding: GridEncoding) -> Bytes {
    Bytes::from(
        Frame::GridSnapshot(GridSnapshot {
            seq,
            grid: grid.clone(),
        })
        .encode_for(encoding),
    )
}
