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
    let framed = match kind {
        Kind::Pty => frame::encode(&PtyStreamFrame {
            frame: Some(match o {
                Out::Bytes(b) => pty_stream_frame::Frame::Output(b),
                Out::Missed(n) => pty_stream_frame::Frame::MissedBytes(n),
                Out::Exit(c) => pty_stream_frame::Frame::ExitCode(c),
                Out::Eof => pty_stream_frame::Frame::Error("end of output".into()),
                Out::Error(e) => pty_stream_frame::Frame::Error(e),
                Out::Stolen(by) => pty_stream_frame::Frame::StolenBy(by),
            }),
        }),
        Kind::Pipe => frame::encode(&PipeStreamFrame {
            frame: Some(match o {
                Out::Bytes(b) => pipe_stream_frame::Frame::Bytes(b),
                Out::Missed(n) => pipe_stream_frame::Frame::MissedBytes(n),
                Out::Exit(c) => pipe_stream_frame::Frame::ExitCode(c),
                Out::Eof => pipe_stream_frame::Frame::Eof(true),
                Out::Error(e) => pipe_stream_frame::Frame::Error(e),
                Out::Stolen(by) => pipe_stream_frame::Frame::StolenBy(by),
            }),
        }),
    };
    // Output comes in CHUNK-sized pieces and the other frames are short,
    // so nothing here reaches the frame limit (checked below at compile
    // time); were one to, the client is told instead of sent a frame it
    // would refuse.
    framed.unwrap_or_else(|e| encode(kind, Out::Error(format!("output frame: {e}"))))
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
    // Input frames that arrived together with the ATTACH request.
    if !apply_input(&mut dec, &att, kind, &mut wr).await {
        return;
    }
    loop {
        tokio::select! {
            next = att.next(CHUNK) => {
                let ok = match next {
                    Next::Data { missed, bytes } => {
                        let mut out = Vec::new();
                        if missed > 0 {
                            out.extend(encode(kind, Out::Missed(missed)));
                        }
                        if !bytes.is_empty() {
                            out.extend(encode(kind, Out::Bytes(bytes)));
                        }
                        wr.write_all(&out).await.is_ok()
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
