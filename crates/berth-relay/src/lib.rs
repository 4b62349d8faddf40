//! `berth relay`: the WebSocket rendezvous between desktop agents (berth
//! daemons linked with `--relay`) and mobile clients (phones, `berth remote
//! attach`), speaking remote protocol v3 (`docs/remote-protocol-v3.md` §10).
//!
//! Every link starts with `hello`, carrying a token (or `?token=` on the
//! upgrade URL). A token is both the credential and the namespace: a mobile
//! sees only the machines whose agents presented the same token.
//!
//! An agent opens one *control link* (it sends `machine_list`), and one
//! *feed link* per session and mode that mobiles watch (it sends
//! `session_attach` then `cap.ack`), so the opcode frames, which carry no
//! session id, are unambiguous on every link. The relay fans a feed out to
//! every mobile watching it, keeps the feed's current grid (applying each
//! diff) so a new or slow mobile is sent a GRID_SNAPSHOT at once, and keeps
//! the latest FRAME_SNAPSHOT of each session for instant first paint.
//!
//! Modules: `key` (the routing names), `hub` (routing state, no I/O),
//! `link` (the per-link state machine), `outbox` (bounded send queues),
//! `server` (axum, sockets), `tls`, and `cluster` (several instances
//! sharing routing over NATS, `--cluster`; without it nothing changes).

pub mod cluster;
mod frames;
mod guard;
mod hub;
pub mod key;
mod link;
mod outbox;
mod server;
pub mod tls;

use hub::Hub;
use server::Relay;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Relay settings.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Accepted tokens; each is also the namespace of its machines.
    pub tokens: Vec<String>,
    /// How often the relay pings each link; a link silent for three
    /// intervals is closed.
    pub ping_interval: Duration,
    /// Bytes of terminal frames queued per mobile before it is resynced
    /// with a snapshot instead.
    pub queue_bytes: usize,
    /// Time allowed between the upgrade and `hello`.
    pub hello_timeout: Duration,
    /// Serve `wss://` with this configuration (see [`tls::server_config`]).
    pub tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    /// Share routing with other instances over NATS (see [`cluster`]).
    pub cluster: Option<cluster::ClusterConfig>,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            tokens: Vec::new(),
            ping_interval: Duration::from_secs(10),
            queue_bytes: 1 << 20,
            hello_timeout: Duration::from_secs(10),
            tls: None,
            cluster: None,
        }
    }
}

/// Serves on `listener` until the future is dropped (TLS if configured;
/// joining the cluster if configured). Errors: the cluster's credentials
/// or URL are unusable, or serving fails.
pub async fn serve(listener: tokio::net::TcpListener, config: RelayConfig) -> std::io::Result<()> {
    let (relay, _cluster) = start(config).await.map_err(std::io::Error::other)?;
    serve_relay(listener, relay).await
}

async fn start(config: RelayConfig) -> Result<(Arc<Relay>, Option<Arc<cluster::Cluster>>), String> {
    let cluster_cfg = config.cluster.clone();
    let relay = Arc::new(Relay {
        config,
        hub: Mutex::new(Hub::default()),
        guard: Mutex::new(guard::TokenGuard::default()),
    });
    // Ends the machine-list windows (see hub::LIST_WINDOW); stops once the
    // relay is gone.
    let weak = Arc::downgrade(&relay);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(hub::LIST_WINDOW);
        loop {
            tick.tick().await;
            let Some(relay) = weak.upgrade() else { return };
            relay.hub().flush_lists();
        }
    });
    let cluster = match &cluster_cfg {
        Some(c) => Some(cluster::start(relay.clone(), c).await?),
        None => None,
    };
    Ok((relay, cluster))
}

async fn serve_relay(listener: tokio::net::TcpListener, relay: Arc<Relay>) -> std::io::Result<()> {
    let tls = relay.config.tls.clone();
    let app = server::router(relay);
    // Frames are small and latency matters (keystrokes): no Nagle delay.
    use axum::serve::ListenerExt;
    match tls {
        None => {
            let listener = listener.tap_io(|tcp| {
                if let Err(e) = tcp.set_nodelay(true) {
                    tracing::debug!("TCP_NODELAY: {e}");
                }
            });
            serve_http(listener, app).await
        }
        Some(cfg) => serve_http(tls::TlsListener::new(listener, cfg), app).await,
    }
}

/// Longest time a client may take to send its upgrade request's line and
/// headers; past it the connection is closed (slow-loris). `axum::serve`
/// sets no timer, so hyper would enforce none.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves `app` on `listener`, one task per connection: HTTP/1.1 with
/// upgrades (the WebSocket links), the header deadline above, and the
/// peer's address as `ConnectInfo` (the token guard counts by address).
async fn serve_http<L>(mut listener: L, app: axum::Router) -> std::io::Result<()>
where
    L: axum::serve::Listener<Addr = SocketAddr>,
{
    use hyper_util::rt::{TokioIo, TokioTimer};
    loop {
        let (io, peer) = listener.accept().await;
        let app = app
            .clone()
            .layer(axum::Extension(axum::extract::ConnectInfo(peer)));
        tokio::spawn(async move {
            let r = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(
                    TokioIo::new(io),
                    hyper_util::service::TowerToHyperService::new(app),
                )
                .with_upgrades()
                .await;
            if let Err(e) = r {
                tracing::debug!(%peer, "relay connection: {e}");
            }
        });
    }
}

/// Runs a relay on its own runtime until SIGTERM or SIGINT; a clustered
/// relay then tells the others it left.
///
/// Errors: no token configured, the runtime, the listener or the cluster
/// cannot start.
pub fn run(addr: SocketAddr, config: RelayConfig) -> Result<(), String> {
    if config.tokens.is_empty() {
        return Err("a relay needs at least one --token".into());
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        let local = listener.local_addr().map_err(|e| e.to_string())?;
        tracing::info!(%local, tls = config.tls.is_some(), "relay listening");
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
        let mut int = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
        let (relay, cluster) = start(config).await?;
        let r = tokio::select! {
            r = serve_relay(listener, relay) => r.map_err(|e| e.to_string()),
            _ = term.recv() => Ok(()),
            _ = int.recv() => Ok(()),
        };
        if let Some(c) = cluster {
            c.leave().await;
        }
        r
    })
}
