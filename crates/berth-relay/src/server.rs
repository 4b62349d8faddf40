//! The WebSocket side: axum routes, one task per link (reader loop, ping,
//! and a writer draining the link's outbox), and the shared state.

use crate::guard::TokenGuard;
use crate::hub::Hub;
use crate::link::{self, Link, Refused};
use crate::outbox::Outbox;
use crate::RelayConfig;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use berth_wire::remote::{self, AppMessage, Ping, Reason};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// One relay instance: its settings and its routing state.
pub(crate) struct Relay {
    pub(crate) config: RelayConfig,
    pub(crate) hub: Mutex<Hub>,
    /// Failed tokens per source address (token guessing is rate-limited).
    pub(crate) guard: Mutex<TokenGuard>,
}

impl Relay {
    pub(crate) fn hub(&self) -> MutexGuard<'_, Hub> {
        self.hub.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn guard(&self) -> MutexGuard<'_, TokenGuard> {
        self.guard.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The routes: the WebSocket upgrade at `/` and `/v3`.
pub(crate) fn router(relay: Arc<Relay>) -> Router {
    Router::new()
        .route("/", get(upgrade))
        .route("/v3", get(upgrade))
        .with_state(relay)
}

/// Read chunk and write batch of one link's WebSocket, bytes.
const LINK_BUFFER: usize = 8 * 1024;

#[derive(serde::Deserialize)]
struct AuthQuery {
    token: Option<String>,
}

async fn upgrade(
    ws: WebSocketUpgrade,
    Query(q): Query<AuthQuery>,
    State(relay): State<Arc<Relay>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> Response {
    // An address that presented too many unknown tokens is refused before
    // the upgrade, whatever token it brings now, so guessing gains nothing.
    if let Some(wait) = relay.guard().locked(peer.ip(), Instant::now()) {
        tracing::info!(%peer, "refused an upgrade: too many unknown tokens from this address");
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", wait.as_secs().max(1).to_string())],
            format!(
                "too many unknown tokens from {}; retry in {} s",
                peer.ip(),
                wait.as_secs().max(1)
            ),
        )
            .into_response();
    }
    // Small socket buffers: tungstenite reserves its read buffer per link
    // up front (128 KiB by default), which made up most of a relay's
    // memory per connection; frames larger than the buffer still arrive
    // whole, the buffer grows for them.
    ws.max_message_size(remote::MAX_MESSAGE_LEN)
        .read_buffer_size(LINK_BUFFER)
        .write_buffer_size(LINK_BUFFER)
        .on_upgrade(move |socket| serve_link(socket, relay, q.token, peer))
}

async fn serve_link(
    socket: WebSocket,
    relay: Arc<Relay>,
    query_token: Option<String>,
    peer: SocketAddr,
) {
    let (mut sink, mut stream) = socket.split();
    let out = Arc::new(Outbox::new(relay.config.queue_bytes));
    let writer = {
        let out = out.clone();
        tokio::spawn(async move {
            while let Some(f) = out.pop().await {
                if sink.send(Message::Binary(f)).await.is_err() {
                    out.close();
                    return;
                }
            }
            let _ = sink.send(Message::Close(None)).await;
        })
    };
    let first = tokio::time::timeout(relay.config.hello_timeout, async {
        loop {
            match stream.next().await {
                Some(Ok(Message::Binary(b))) => return Some(b),
                // Not a frame at all (§1), so not a hello either.
                Some(Ok(Message::Text(_))) => return Some(Bytes::from_static(&[0x00])),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                _ => return None,
            }
        }
    })
    .await
    .ok()
    .flatten();
    let hello = first
        .ok_or(Refused::Other)
        .and_then(|f| link::check_hello(&f, &relay.config.tokens, query_token, &out));
    let hello = match hello {
        Ok(h) => h,
        Err(why) => {
            if why == Refused::Token {
                relay.guard().failed(peer.ip(), Instant::now());
            }
            out.finish();
            drain(writer).await;
            return;
        }
    };
    let interval = relay.config.ping_interval;
    let mut l: Link = link::admit(&mut relay.hub(), &hello, out.clone(), interval);

    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_seen = tokio::time::Instant::now();
    loop {
        if out.is_closed() {
            break;
        }
        tokio::select! {
            _ = ticker.tick() => {
                if last_seen.elapsed() >= interval * 3 {
                    tracing::info!(link = l.id, "link silent for three ping intervals; closing");
                    break;
                }
                let ts = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_millis() as u64)
                    .unwrap_or(0);
                out.push(crate::frames::json(AppMessage::Ping(Ping { ts })));
            }
            msg = stream.next() => {
                let Some(Ok(msg)) = msg else { break };
                last_seen = tokio::time::Instant::now();
                match msg {
                    Message::Binary(b) => link::on_frame(&mut relay.hub(), &mut l, b),
                    Message::Text(_) => out.push(crate::frames::protocol_error(Reason::UnexpectedFrame)),
                    Message::Close(_) => break,
                    Message::Ping(_) | Message::Pong(_) => {}
                }
            }
        }
    }
    link::disconnect(&mut relay.hub(), &l);
    out.finish();
    drain(writer).await;
}

/// Lets the writer send what is queued, but not forever: a peer that
/// stopped reading must not hold the task.
async fn drain(mut writer: tokio::task::JoinHandle<()>) {
    if tokio::time::timeout(Duration::from_secs(5), &mut writer)
        .await
        .is_err()
    {
        writer.abort();
    }
}
