//! Length-prefixed framing shared by the process API and its attach streams:
//! a big-endian `u32` byte count, then that many bytes of protobuf.
//!
//! The decoder is incremental so a surface can feed it whatever the socket
//! returned; it never allocates more than [`MAX_FRAME_LEN`] for one frame,
//! whatever a peer claims.

use prost::Message;

/// Largest frame body accepted or produced (4 MiB), as in running-process.
pub const MAX_FRAME_LEN: usize = 4 * 1024 * 1024;

/// Size of the length prefix.
pub const HEADER_LEN: usize = 4;

/// Why a byte stream could not be split into frames.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The peer announced a body larger than the limit.
    #[error("frame of {len} bytes exceeds the {max}-byte limit")]
    TooLarge {
        /// Announced body length.
        len: usize,
        /// The limit in force.
        max: usize,
    },
}

/// Encodes `msg` as one frame (prefix + body).
///
/// Returns [`FrameError::TooLarge`] instead of producing a frame that a
/// conforming peer would refuse.
pub fn encode<M: Message>(msg: &M) -> Result<Vec<u8>, FrameError> {
    let len = msg.encoded_len();
    if len > MAX_FRAME_LEN {
        return Err(FrameError::TooLarge {
            len,
            max: MAX_FRAME_LEN,
        });
    }
    let mut out = Vec::with_capacity(HEADER_LEN + len);
    out.extend_from_slice(&(len as u32).to_be_bytes());
    msg.encode(&mut out)
        .expect("Vec has room for the encoded message");
    Ok(out)
}

/// Reads a length prefix, refusing bodies over `max`.
pub fn body_len(header: [u8; HEADER_LEN], max: usize) -> Result<usize, FrameError> {
    let len = u32::from_be_bytes(header) as usize;
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    Ok(len)
}

/// Incremental splitter of a byte stream into frame bodies.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    start: usize,
    max: usize,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new(MAX_FRAME_LEN)
    }
}

impl FrameDecoder {
    /// A decoder that refuses bodies over `max` bytes.
    pub fn new(max: usize) -> Self {
        Self {
            buf: Vec::new(),
            start: 0,
            max,
        }
    }

    /// Appends bytes read from the peer.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes received but not yet returned as a frame.
    pub fn pending(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Returns the next complete frame body, `Ok(None)` if more bytes are
    /// needed, or an error once the stream is unusable.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        let avail = &self.buf[self.start..];
        if avail.len() < HEADER_LEN {
            return Ok(None);
        }
        let header = [avail[0], avail[1], avail[2], avail[3]];
        let len = body_len(header, self.max)?;
        if avail.len() < HEADER_LEN + len {
            return Ok(None);
        }
        let body = avail[HEADER_LEN..HEADER_LEN + len].to_vec();
        self.start += HEADER_LEN + len;
        if self.start > 64 * 1024 && self.start * 2 > self.buf.len() {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        Ok(Some(body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::{DaemonRequest, PingRequest, RequestType};
    use proptest::prelude::*;

    #[test]
    fn ping_round_trips_through_a_split_stream() {
        let req = DaemonRequest {
            id: 7,
            r#type: RequestType::Ping as i32,
            protocol_version: 1,
            client_name: "t".into(),
            ping: Some(PingRequest {}),
            ..Default::default()
        };
        let bytes = encode(&req).unwrap();
        assert_eq!(&bytes[..4], &((bytes.len() - 4) as u32).to_be_bytes());
        let mut dec = FrameDecoder::default();
        for b in &bytes {
            assert!(dec.pending() < bytes.len());
            dec.push(std::slice::from_ref(b));
        }
        let body = dec.next_frame().unwrap().unwrap();
        assert_eq!(DaemonRequest::decode(&body[..]).unwrap(), req);
        assert_eq!(dec.next_frame().unwrap(), None);
    }

    #[test]
    fn oversized_length_is_refused_before_buffering() {
        let mut dec = FrameDecoder::default();
        dec.push(&((MAX_FRAME_LEN as u32) + 1).to_be_bytes());
        assert_eq!(
            dec.next_frame(),
            Err(FrameError::TooLarge {
                len: MAX_FRAME_LEN + 1,
                max: MAX_FRAME_LEN
            })
        );
        let mut ok = FrameDecoder::default();
        ok.push(&(MAX_FRAME_LEN as u32).to_be_bytes());
        assert_eq!(ok.next_frame(), Ok(None), "exactly the limit is allowed");
    }

    proptest! {
        #[test]
        fn any_bodies_round_trip(bodies in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..8), split in 1usize..50) {
            let mut stream = Vec::new();
            for b in &bodies {
                stream.extend_from_slice(&(b.len() as u32).to_be_bytes());
                stream.extend_from_slice(b);
            }
            let mut dec = FrameDecoder::default();
            let mut out = Vec::new();
            for chunk in stream.chunks(split) {
                dec.push(chunk);
                while let Some(f) = dec.next_frame().unwrap() { out.push(f); }
            }
            prop_assert_eq!(out, bodies);
        }
    }
}
