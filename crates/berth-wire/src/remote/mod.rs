//! Remote terminal protocol v3 (seed 001): the binary WebSocket messages
//! exchanged by the relay, desktop agents and mobile clients.
//!
//! One WebSocket binary message is one frame: an opcode byte, then a payload
//! whose layout the opcode fixes (see `docs/remote-protocol-v3.md`). This
//! module is pure: it turns bytes into [`Frame`]s and back, models the
//! screen grids that GRID_SNAPSHOT / GRID_DIFF carry, and computes and
//! applies grid diffs. Every length a peer claims is checked against the
//! message and against the caps below before anything is allocated.

mod codec;
mod diff;
pub mod fixture;
mod frame;
mod grid;
mod messages;

pub use diff::{apply, diff, ApplyError};
pub use frame::{encode_pty_data_into, split, Frame};
pub use grid::{attr, Cell, Color, Cursor, DiffOp, Grid, GridDiff, GridEncoding, GridSnapshot};
pub use messages::*;

/// The protocol major version this codec implements; sent in `hello`.
pub const PROTOCOL_VERSION: u32 = 3;

/// Largest message (opcode + payload) accepted by [`Frame::decode`].
/// Producers split PTY output into smaller PTY_DATA frames.
pub const MAX_MESSAGE_LEN: usize = 16 * 1024 * 1024;

/// Largest FRAME_SNAPSHOT id, in bytes: ids name sessions, not data.
pub const MAX_ID_LEN: usize = 1024;

/// Largest grid width a GRID_SNAPSHOT or a resize op may announce.
pub const MAX_GRID_COLS: u16 = 1024;

/// Largest grid height a GRID_SNAPSHOT or a resize op may announce.
pub const MAX_GRID_ROWS: u16 = 1024;

/// Largest number of cells in one grid, and in all the cell runs of one
/// GRID_DIFF; bounds what a short message can make a decoder allocate.
pub const MAX_GRID_CELLS: usize = 256 * 1024;

/// Longest text of one cell, in UTF-8 bytes. Longer graphemes (stacks of
/// combining marks) are cut at a character boundary when encoded.
pub const MAX_CELL_TEXT: usize = 32;

/// The first byte of every frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Opcode {
    /// Raw PTY output bytes, desktop to mobile.
    PtyData = 0x00,
    /// One UTF-8 JSON [`AppMessage`], both directions.
    AppJson = 0x01,
    /// Terminal size request from a mobile: cols, rows as u32 BE.
    Resize = 0x02,
    /// Relay's cached ANSI rendering of a session for instant first paint.
    FrameSnapshot = 0x03,
    /// The server-truth screen grid of the attached session.
    GridSnapshot = 0x04,
    /// Incremental cell operations on the last grid.
    GridDiff = 0x05,
    /// The peer could not use a frame; one reason byte.
    ProtocolError = 0xFF,
}

impl Opcode {
    /// Maps the first byte of a frame; 0x06-0xFE are reserved and refused.
    pub fn from_u8(b: u8) -> Result<Self, DecodeError> {
        Ok(match b {
            0x00 => Self::PtyData,
            0x01 => Self::AppJson,
            0x02 => Self::Resize,
            0x03 => Self::FrameSnapshot,
            0x04 => Self::GridSnapshot,
            0x05 => Self::GridDiff,
            0xFF => Self::ProtocolError,
            other => return Err(DecodeError::UnknownOpcode(other)),
        })
    }

    /// The name used in the specification and in fixtures.
    pub fn name(self) -> &'static str {
        match self {
            Self::PtyData => "PTY_DATA",
            Self::AppJson => "APP_JSON",
            Self::Resize => "RESIZE",
            Self::FrameSnapshot => "FRAME_SNAPSHOT",
            Self::GridSnapshot => "GRID_SNAPSHOT",
            Self::GridDiff => "GRID_DIFF",
            Self::ProtocolError => "PROTOCOL_ERROR",
        }
    }
}

/// The reason byte of a PROTOCOL_ERROR frame.
///
/// Unknown codes are kept as [`Reason::Other`] so a newer peer's reason is
/// still shown, and re-encodes to the same byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// 0: no more specific reason applies.
    Unspecified,
    /// 1: the opcode is reserved (0x06-0xFE).
    UnknownOpcode,
    /// 2: the frame ended before its layout did (also an empty message).
    Truncated,
    /// 3: the APP_JSON payload is not valid JSON for its type.
    BadJson,
    /// 4: text that must be UTF-8 is not.
    BadUtf8,
    /// 5: no protocol version in common (see `protocol_mismatch`).
    UnsupportedVersion,
    /// 6: a length, size or count is over a cap.
    TooLarge,
    /// 7: the APP_JSON `type` is not one this version defines.
    UnknownMessageType,
    /// 8: a field holds a value its layout forbids (bad tag, trailing bytes).
    Malformed,
    /// 9: a well-formed frame that is not allowed here (direction or state,
    /// e.g. anything but `hello` before the handshake).
    UnexpectedFrame,
    /// Any other code, from a newer peer.
    Other(u8),
}

impl Reason {
    /// The wire byte.
    pub fn code(self) -> u8 {
        match self {
            Self::Unspecified => 0,
            Self::UnknownOpcode => 1,
            Self::Truncated => 2,
            Self::BadJson => 3,
            Self::BadUtf8 => 4,
            Self::UnsupportedVersion => 5,
            Self::TooLarge => 6,
            Self::UnknownMessageType => 7,
            Self::Malformed => 8,
            Self::UnexpectedFrame => 9,
            Self::Other(b) => b,
        }
    }

    /// Maps a wire byte; total, so any byte round-trips.
    pub fn from_code(b: u8) -> Self {
        match b {
            0 => Self::Unspecified,
            1 => Self::UnknownOpcode,
            2 => Self::Truncated,
            3 => Self::BadJson,
            4 => Self::BadUtf8,
            5 => Self::UnsupportedVersion,
            6 => Self::TooLarge,
            7 => Self::UnknownMessageType,
            8 => Self::Malformed,
            9 => Self::UnexpectedFrame,
            other => Self::Other(other),
        }
    }

    /// The name used in the specification and in logs.
    pub fn name(self) -> &'static str {
        match self {
            Self::Unspecified => "UNSPECIFIED",
            Self::UnknownOpcode => "UNKNOWN_OPCODE",
            Self::Truncated => "TRUNCATED",
            Self::BadJson => "BAD_JSON",
            Self::BadUtf8 => "BAD_UTF8",
            Self::UnsupportedVersion => "UNSUPPORTED_VERSION",
            Self::TooLarge => "TOO_LARGE",
            Self::UnknownMessageType => "UNKNOWN_MESSAGE_TYPE",
            Self::Malformed => "MALFORMED",
            Self::UnexpectedFrame => "UNEXPECTED_FRAME",
            Self::Other(_) => "OTHER",
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.name(), self.code())
    }
}

/// Why a message could not be decoded. Each maps to the PROTOCOL_ERROR
/// [`Reason`] a peer should answer with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// A reserved opcode (0x06-0xFE).
    #[error("reserved opcode 0x{0:02x}")]
    UnknownOpcode(u8),
    /// The message ended inside the named field (or was empty).
    #[error("frame truncated: missing {0}")]
    Truncated(&'static str),
    /// The APP_JSON payload is not JSON, or not valid for its `type`.
    #[error("bad APP_JSON: {0}")]
    BadJson(String),
    /// The named text field is not UTF-8.
    #[error("{0} is not valid UTF-8")]
    BadUtf8(&'static str),
    /// The named length, size or count exceeds its cap.
    #[error("{what} of {len} exceeds the limit of {max}")]
    TooLarge {
        /// Which field.
        what: &'static str,
        /// The value the peer announced.
        len: u64,
        /// The cap in force.
        max: u64,
    },
    /// An APP_JSON `type` this version does not define.
    #[error("unknown APP_JSON message type {0:?}")]
    UnknownMessageType(String),
    /// A field holds a value its layout forbids.
    #[error("malformed frame: {0}")]
    Malformed(&'static str),
}

impl DecodeError {
    /// The PROTOCOL_ERROR reason to answer this error with.
    pub fn reason(&self) -> Reason {
        match self {
            Self::UnknownOpcode(_) => Reason::UnknownOpcode,
            Self::Truncated(_) => Reason::Truncated,
            Self::BadJson(_) => Reason::BadJson,
            Self::BadUtf8(_) => Reason::BadUtf8,
            Self::TooLarge { .. } => Reason::TooLarge,
            Self::UnknownMessageType(_) => Reason::UnknownMessageType,
            Self::Malformed(_) => Reason::Malformed,
        }
    }
}

#[cfg(test)]
mod tests;
