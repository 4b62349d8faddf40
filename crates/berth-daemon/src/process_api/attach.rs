//! The attach stream: after an ATTACH reply, the same connection carries
//! PtyStreamFrame / PipeStreamFrame frames to the client and PtyInputFrame
//! frames from it, until the session ends, the client detaches or leaves,
//! or another client steals the attachment.

use berth_engine::sessions::{Attachment, Kind, Next};
use berth_wire::daemon::{
    pipe_stream_frame, pty_input_frame, pty_stream_frame, PipeStreamFrame, PtyInputFrame,
    PtyStreamFrame,
};
use berth_wire::frame::{self, FrameDecoder};
use prost::Message;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest output chunk per frame.
const CHUNK: usize = 256 * 1024;

/// The stream frames other than output (output is framed in place:
/// [`frame_output_in_place`]).
enum Out {
    Missed(u64),
    Exit(i32),
    Eof,
    Error(String),
    Stolen(String),
}

/// One stream frame for `kind`'s client, framed like every process-API
/// message (`berth_wire::frame`).
fn encode(kind: Kind, o: Out) -> Vec<u8> {
    fn put<M: Message>(m: &M, wire: &mut Vec<u8>) -> Result<(), frame::FrameError> {
        let len = m.encoded_len();
        if len > frame::MAX_FRAME_LEN {
            return Err(frame::FrameError::TooLarge {
                len,
                max: frame::MAX_FRAME_LEN,
            });
        }
        wire.reserve(frame::HEADER_LEN + len);
        wire.extend_from_slice(&(len as u32).to_be_bytes());
        m.encode(wire).expect("reserved room for the message");
        Ok(())
    }
    let mut wire = Vec::new();
    let framed = match kind {
        Kind::Pty => {
            let f = PtyStreamFrame {
                frame: Some(match o {
                    Out::Missed(n) => pty_stream_frame::Frame::MissedBytes(n),
                    Out::Exit(c) => pty_stream_frame::Frame::ExitCode(c),
                    Out::Eof => pty_stream_frame::Frame::Error("end of output".into()),
                    Out::Error(e) => pty_stream_frame::Frame::Error(e),
                    Out::Stolen(by) => pty_stream_frame::Frame::StolenBy(by),
                }),
            };
            put(&f, &mut wire)
        }
        Kind::Pipe => {
            let f = PipeStreamFrame {
                frame: Some(match o {
                    Out::Missed(n) => pipe_stream_frame::Frame::MissedBytes(n),
                    Out::Exit(c) => pipe_stream_frame::Frame::ExitCode(c),
                    Out::Eof => pipe_stream_frame::Frame::Eof(true),
                    Out::Error(e) => pipe_stream_frame::Frame::Error(e),
                    Out::Stolen(by) => pipe_stream_frame::Frame::StolenBy(by),
                }),
            };
            put(&f, &mut wire)
        }
    };
    // These frames carry a number or a message, far below the frame
    // limit; were one to reach it, the client is told instead of sent a
    // frame it would refuse.
    match framed {
        Ok(()) => wire,
        Err(e) => encode(kind, Out::Error(format!("stream frame: {e}"))),
    }
}

/// Room the relay leaves in front of the output it copies out of the ring:
/// the frame's length (`frame::HEADER_LEN`), the tag of field 1 and the
/// bytes' length as a varint (at most 10 bytes).
const OUTPUT_ROOM: usize = frame::HEADER_LEN + 1 + 10;

/// Output comes in CHUNK-sized pieces, so an output frame never reaches the
/// frame limit.
const _: () = assert!(CHUNK + OUTPUT_ROOM < frame::MAX_FRAME_LEN);

/// Turns `wire`, [`OUTPUT_ROOM`] bytes of room followed by output, into one
/// output frame in place and returns the offset it starts at: the frame is
/// `wire[start..]`. Both `PtyStreamFrame.output` and `PipeStreamFrame.bytes`
/// are field 1 of a oneof (seed 003, daemon.proto), so the body is the tag
/// `0x0a`, the length as a varint, then the bytes, exactly what prost
/// encodes (a test checks it). Framing in place saves a copy of every
/// byte relayed (the output would otherwise be copied into the message).
fn frame_output_in_place(wire: &mut [u8]) -> usize {
    let n = wire.len() - OUTPUT_ROOM;
    let mut varint = [0u8; 10];
    let mut v = n as u64;
    let mut vlen = 0;
    loop {
        let low = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            varint[vlen] = low;
            vlen += 1;
            break;
        }
        varint[vlen] = low | 0x80;
        vlen += 1;
    }
    let body = 1 + vlen + n;
    let start = OUTPUT_ROOM - (frame::HEADER_LEN + 1 + vlen);
    wire[start..start + frame::HEADER_LEN].copy_from_slice(&(body as u32).to_be_bytes());
    wire[start + frame::HEADER_LEN] = 0x0a;
    wire[start + frame::HEADER_LEN + 1..OUTPUT_ROOM].copy_from_slice(&varint[..vlen]);
    start
}

/// Runs the stream until it ends. `dec` holds bytes the client sent after
/// its ATTACH request (already buffered by the connection).
pub(super) async fn run<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    mut dec: FrameDecoder,
    mut att: Attachment,
    kind: Kind,
) {
    let (mut rd, mut wr) = tokio::io::split(stream);
    let mut buf = vec![0u8; 16 * 1024];
    // One buffer reused for every chunk: the output is copied out of the
    // ring behind room for its frame header, framed in place and written
    // once (one copy, no allocation).
    let mut wire: Vec<u8> = Vec::new();
    // Input frames that arrived together with the ATTACH request.
    if !apply_input(&mut dec, &att, kind, &mut wr).await {
        return;
    }
    loop {
        wire.clear();
        wire.resize(OUTPUT_ROOM, 0);
        tokio::select! {
            next = att.next_append(CHUNK, &mut wire) => {
                let ok = match next {
                    Next::Data { missed, .. } => {
                        // A gap (rare: a reader that fell behind the ring)
                        // is told before the output that follows it.
                        let mut ok = missed == 0
                            || wr.write_all(&encode(kind, Out::Missed(missed))).await.is_ok();
                        if ok && wire.len() > OUTPUT_ROOM {
                            let start = frame_output_in_place(&mut wire);
                            ok = wr.write_all(&wire[start..]).await.is_ok();
                        }
                        ok
                    }
                    Next::Eof => {
                        let session = att.session().clone();
                        let mut out = Vec::new();
                        if kind == Kind::Pipe {
                            out.extend(encode(kind, Out::Eof));
                        }
                        if let Ok(exit) = tokio::time::timeout(Duration::from_secs(2), session.wait_exit()).await {
                            out.extend(encode(kind, Out::Exit(exit.code)));
                        }
                        let _ = wr.write_all(&out).await;
                        break;
                    }
                    Next::Evicted(by) => {
                        let _ = wr.write_all(&encode(kind, Out::Stolen(by))).await;
                        break;
                    }
                };
                if !ok {
                    break;
                }
            }
            r = rd.read(&mut buf) => {
                match r {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        dec.push(&buf[..n]);
                        if !apply_input(&mut dec, &att, kind, &mut wr).await {
                            break;
                        }
                    }
                }
            }
        }
    }
    let _ = wr.flush().await;
}

/// Applies buffered input frames; false when the stream must end.
async fn apply_input<W: AsyncWrite + Unpin>(
    dec: &mut FrameDecoder,
    att: &Attachment,
    kind: Kind,
    wr: &mut W,
) -> bool {
    loop {
        let body = match dec.next_frame() {
            Ok(Some(b)) => b,
            Ok(None) => return true,
            Err(e) => {
                let _ = wr
                    .write_all(&encode(
                        kind,
                        Out::Error(format!("malformed input frame: {e}")),
                    ))
                    .await;
                return false;
            }
        };
        let frame = match PtyInputFrame::decode(&body[..]) {
            Ok(f) => f,
            Err(e) => {
                let _ = wr
                    .write_all(&encode(
                        kind,
                        Out::Error(format!("malformed PtyInputFrame: {e}")),
                    ))
                    .await;
                return false;
            }
        };
        let s = att.session();
        let result = match frame.frame {
            Some(pty_input_frame::Frame::Detach(true)) => return false,
            // A read-only viewer's input is ignored, not an error.
            Some(_) if !att.may_write() => Ok(()),
            Some(pty_input_frame::Frame::Input(bytes)) => s
                .write_input(&bytes)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Some(pty_input_frame::Frame::Resize(r)) => {
                match (u16::try_from(r.rows), u16::try_from(r.cols)) {
                    (Ok(rows), Ok(cols)) => att.resize(rows, cols).map_err(|e| e.to_string()),
                    _ => Err(format!("resize {}x{} is too large", r.rows, r.cols)),
                }
            }
            Some(pty_input_frame::Frame::Interrupt(true)) => {
                s.interrupt().map_err(|e| e.to_string())
            }
            Some(pty_input_frame::Frame::Interrupt(false))
            | Some(pty_input_frame::Frame::Detach(false))
            | None => Ok(()),
        };
        if let Err(msg) = result {
            // The seed's contract: an error frame ends the stream.
            let _ = wr.write_all(&encode(kind, Out::Error(msg))).await;
            return false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The in-place frame is byte for byte what prost encodes, for both
    /// stream kinds and for lengths whose varint takes 1, 2 and 3 bytes.
    #[test]
    fn output_framed_in_place_is_what_prost_encodes() {
        for n in [1usize, 127, 128, 16_383, 16_384, CHUNK] {
            let data: Vec<u8> = (0..n).map(|i| (i % 251) as u8).collect();
            let mut wire = vec![0u8; OUTPUT_ROOM];
            wire.extend_from_slice(&data);
            let start = frame_output_in_place(&mut wire);
            let pty = PtyStreamFrame {
                frame: Some(pty_stream_frame::Frame::Output(data.clone())),
            };
            let pipe = PipeStreamFrame {
                frame: Some(pipe_stream_frame::Frame::Bytes(data.clone())),
            };
            for body in [pty.encode_to_vec(), pipe.encode_to_vec()] {
                let mut expected = (body.len() as u32).to_be_bytes().to_vec();
                expected.extend_from_slice(&body);
                assert!(wire[start..] == expected[..], "{n} bytes");
            }
        }
    }
}
