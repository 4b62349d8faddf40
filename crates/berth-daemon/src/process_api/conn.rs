//! One client connection: read frames, answer each request in order.

use super::after::After;
use super::dispatch::dispatch;
use crate::state::DaemonState;
use berth_wire::daemon::{DaemonResponse, StatusCode};
use berth_wire::envelope::{decode_request, error_response};
use berth_wire::frame::{self, FrameDecoder};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// A connection that sends nothing for this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(300);

async fn send<W: AsyncWrite + Unpin>(w: &mut W, resp: &DaemonResponse) -> std::io::Result<()> {
    let bytes = match frame::encode(resp) {
        Ok(b) => b,
        Err(e) => frame::encode(&error_response(
            resp.request_id,
            StatusCode::Internal,
            format!("response too large: {e}"),
        ))
        .expect("a short error fits in a frame"),
    };
    w.write_all(&bytes).await?;
    w.flush().await
}

/// Serves requests on `stream` until the peer closes, sends a malformed
/// frame (answered with an error first), idles out, or the daemon stops.
pub async fn serve_connection<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    state: Arc<DaemonState>,
) {
    state.active_connections.fetch_add(1, Ordering::Relaxed);
    let _guard = ConnGuard(state.clone());
    let mut stopping = state.shutdown_signal();
    let mut dec = FrameDecoder::default();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        // Answer every complete frame already buffered.
        loop {
            let req = match dec.next_frame() {
                Ok(None) => break,
                Ok(Some(body)) => decode_request(&body),
                Err(e) => Err(format!("malformed frame: {e}")),
            };
            let req = match req {
                Ok(r) => r,
                Err(msg) => {
                    let reply = error_response(
                        0,
                        StatusCode::InvalidArgument,
                        format!("{msg}; closing the connection"),
                    );
                    let _ = send(&mut stream, &reply).await;
                    return;
                }
            };
            let (resp, after) = dispatch(&req, &state).await;
            if send(&mut stream, &resp).await.is_err() {
                return;
            }
            match after {
                After::Continue => {}
                After::Attach(att, kind) => {
                    super::attach::run(stream, dec, *att, kind).await;
                    return;
                }
                After::Shutdown { graceful, timeout } => {
                    state.request_shutdown(graceful, timeout);
                    return;
                }
                After::Stream(mut frames) => {
                    // Frames from the producer until it ends, the peer
                    // sends anything (then served as usual) or closes, or
                    // the daemon stops. Dropping `frames` ends the producer.
                    loop {
                        tokio::select! {
                            f = frames.recv() => match f {
                                Some(bytes) => {
                                    if stream.write_all(&bytes).await.is_err()
                                        || stream.flush().await.is_err()
                                    {
                                        return;
                                    }
                                }
                                None => break,
                            },
                            r = stream.read(&mut buf) => match r {
                                Ok(0) | Err(_) => return,
                                Ok(n) => {
                                    dec.push(&buf[..n]);
                                    break;
                                }
                            },
                            _ = stopping.changed() => return,
                        }
                    }
                }
            }
        }
        let n = tokio::select! {
            r = tokio::time::timeout(IDLE_TIMEOUT, stream.read(&mut buf)) => match r {
                Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return,
                Ok(Ok(n)) => n,
            },
            _ = stopping.changed() => return,
        };
        dec.push(&buf[..n]);
    }
}

struct ConnGuard(Arc<DaemonState>);

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.0.active_connections.fetch_sub(1, Ordering::Relaxed);
    }
}
