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

enum Out {
    Bytes(Vec<u8>),
    Missed(u64),
    Exit(i32),
    Eof,
    Error(String),
    Stolen(String),
}

/// One stream frame for `kind`'s client, framed like every process-API
/// message (`berth_wire::frame`).
fn encode(kind: Kind, o: Out) -> Vec<u8> {
    let mut wire = Vec::new();
    encode_into(kind, o, &mut wire);
    wire
}

/// Appends the frame of `o` to `wire` (see [`encode`]); an output frame's
/// bytes are handed back in `o`'s place so the relay reuses its buffer.
fn encode_into(kind: Kind, o: Out, wire: &mut Vec<u8>) -> Option<Vec<u8>> {
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
    let (framed, back) = match kind {
        Kind::Pty => {
            let f = PtyStreamFrame {
                frame: Some(match o {
                    Out::Bytes(b) => pty_stream_frame::Frame::Output(b),
                    Out::Missed(n) => pty_stream_frame::Frame::MissedBytes(n),
                    Out::Exit(c) => pty_stream_frame::Frame::ExitCode(c),
                    Out::Eof => pty_stream_frame::Frame::Error("end of output".into()),
                    Out::Error(e) => pty_stream_frame::Frame::Error(e),
                    Out::Stolen(by) => pty_stream_frame::Frame::StolenBy(by),
                }),
            };
            let r = put(&f, wire);
            let back = match f.frame {
                Some(pty_stream_frame::Frame::Output(b)) => Some(b),
                _ => None,
            };
            (r, back)
        }
        Kind::Pipe => {
            let f = PipeStreamFrame {
                frame: Some(match o {
                    Out::Bytes(b) => pipe_stream_frame::Frame::Bytes(b),
                    Out::Missed(n) => pipe_stream_frame::Frame::MissedBytes(n),
                    Out::Exit(c) => pipe_stream_frame::Frame::ExitCode(c),
                    Out::Eof => pipe_stream_frame::Frame::Eof(true),
                    Out::Error(e) => pipe_stream_frame::Frame::Error(e),
                    Out::Stolen(by) => pipe_stream_frame::Frame::StolenBy(by),
                }),
            };
            let r = put(&f, wire);
            let back = match f.frame {
                Some(pipe_stream_frame::Frame::Bytes(b)) => Some(b),
                _ => None,
            };
            (r, back)
        }
    };
    // Output comes in CHUNK-sized pieces and the other frames are short,
    // so nothing here reaches the frame limit (checked below at compile
    // time); were one to, the client is told instead of sent a frame it
    // would refuse.
    if let Err(e) = framed {
        encode_into(kind, Out::Error(format!("output frame: {e}")), wire);
    }
    back
}

const _: () = assert!(CHUNK + 64 < frame::MAX_FRAME_LEN);

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
    // The output and its frames, reused for every chunk: relaying a chunk
    // costs one copy out of the ring and one into the frame, no allocation.
    let mut data: Vec<u8> = Vec::new();
    let mut wire: Vec<u8> = Vec::new();
    // Input frames that arrived together with the ATTACH request.
    if !apply_input(&mut dec, &att, kind, &mut wr).await {
        return;
    }
    loop {
        tokio::select! {
            next = att.next_into(CHUNK, &mut data) => {
                let ok = match next {
                    Next::Data { missed, .. } => {
                        wire.clear();
                        if missed > 0 {
                            encode_into(kind, Out::Missed(missed), &mut wire);
                        }
                        if !data.is_empty() {
                            let bytes = std::mem::take(&mut data);
                            if let Some(back) = encode_into(kind, Out::Bytes(bytes), &mut wire) {
                                data = back;
                            }
                        }
                        wr.write_all(&wire).await.is_ok()
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
