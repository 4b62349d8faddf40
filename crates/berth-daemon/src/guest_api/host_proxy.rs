//! The host side of the guest API (`berth host-api`): a Unix socket
//! `<api dir>/<VM>.berth.sock` whose connections are relayed, byte for
//! byte, to the guest daemon's API (vsock `CID:5002`, or a Unix socket in
//! tests). The proxy adds nothing and loses nothing: each client
//! connection is paired with one guest connection and the bytes are
//! copied both ways until the guest closes (it answers one request per
//! connection), so status, headers and bodies of any size stream through.
//! When the guest cannot be reached the proxy answers itself: 503 with
//! `{"error": "..."}` naming why.

use crate::addr::ListenAddr;
use crate::listen::{self, PeerStream};
use axum::extract::ConnectInfo;
use axum::http::StatusCode;
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// One VM's proxy.
#[derive(Debug, Clone)]
pub struct HostProxyConfig {
    /// VM name: the socket is `<api_dir>/<vm>.berth.sock`.
    pub vm: String,
    /// Where the guest API is: `vsock://CID:PORT` or `unix:///path`.
    pub connect: ListenAddr,
    /// Directory of the per-VM sockets (created 0700).
    pub api_dir: PathBuf,
    /// How long a guest has to accept a connection before 503.
    pub connect_timeout: Duration,
}

/// `$XDG_RUNTIME_DIR/berth/api` (berth's runtime dir + `api`).
pub fn default_api_dir() -> PathBuf {
    berth_os::dirs::runtime_dir().join("api")
}

/// The socket path of `vm` in `api_dir`, after checking the name.
pub fn socket_path(api_dir: &std::path::Path, vm: &str) -> Result<PathBuf, String> {
    if vm.is_empty() || vm.contains('/') || vm.starts_with('.') || vm.contains('\0') {
        return Err(format!(
            "{vm:?} is not a usable VM name (it names a file: no '/', no leading '.')"
        ));
    }
    Ok(api_dir.join(format!("{vm}.berth.sock")))
}

async fn connect(addr: &ListenAddr) -> std::io::Result<Box<dyn PeerStream>> {
    match addr {
        ListenAddr::Unix(p) => Ok(Box::new(tokio::net::UnixStream::connect(p).await?)),
        ListenAddr::Vsock { cid, port } => Ok(Box::new(
            tokio_vsock::VsockStream::connect(tokio_vsock::VsockAddr::new(*cid, *port)).await?,
        )),
        ListenAddr::Tcp(_) => Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "the guest API is reached over vsock:// or unix:// only",
        )),
    }
}

/// Serves the proxy for each config until `stop` resolves; the sockets
/// are removed then. Fails naming the socket it cannot bind (one that
/// answers is another live proxy; a dead one is replaced).
pub async fn run(
    configs: Vec<HostProxyConfig>,
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), String> {
    let mut bound = Vec::new();
    for cfg in configs {
        let path = socket_path(&cfg.api_dir, &cfg.vm)?;
        let l = listen::bind(&ListenAddr::Unix(path.clone()))
            .map_err(|e| format!("cannot listen on {}: {e}", path.display()))?;
        tracing::info!(vm = %cfg.vm, socket = %path.display(), guest = %cfg.connect, "host API listening");
        bound.push((cfg, l));
    }
    let (refuse_tx, refuse_rx) = tokio::sync::mpsc::channel(64);
    let refusals = tokio::spawn(serve_refusals(refuse_rx));
    let mut tasks = Vec::new();
    for (cfg, l) in bound {
        let refuse_tx = refuse_tx.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                match l.accept().await {
                    Ok(Some(acc)) => {
                        let (cfg, refuse_tx) = (cfg.clone(), refuse_tx.clone());
                        tokio::spawn(relay(acc.stream, cfg, refuse_tx));
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(vm = %cfg.vm, "accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        }));
    }
    stop.await;
    for t in &tasks {
        t.abort();
    }
    for t in tasks {
        // Awaited so the listeners (and their socket files) are dropped.
        let _ = t.await;
    }
    refusals.abort();
    Ok(())
}

type Refusal = (Box<dyn PeerStream>, String);

async fn relay(
    client: Box<dyn PeerStream>,
    cfg: HostProxyConfig,
    refuse: tokio::sync::mpsc::Sender<Refusal>,
) {
    let guest = match tokio::time::timeout(cfg.connect_timeout, connect(&cfg.connect)).await {
        Ok(Ok(g)) => g,
        Ok(Err(e)) => {
            let why = format!(
                "the guest agent of VM {:?} does not answer at {}: {e}",
                cfg.vm, cfg.connect
            );
            let _ = refuse.send((client, why)).await;
            return;
        }
        Err(_) => {
            let why = format!(
                "the guest agent of VM {:?} did not accept a connection at {} within {} ms",
                cfg.vm,
                cfg.connect,
                cfg.connect_timeout.as_millis()
            );
            let _ = refuse.send((client, why)).await;
            return;
        }
    };
    let (mut client_rx, mut client_tx) = tokio::io::split(client);
    let (mut guest_rx, mut guest_tx) = tokio::io::split(guest);
    // The two directions are independent: a guest that answers before
    // taking the whole request (413) stops the upload, yet its answer is
    // still relayed. The guest closing after its answer ends the relay.
    let up = async {
        let _ = tokio::io::copy(&mut client_rx, &mut guest_tx).await;
        let _ = guest_tx.shutdown().await;
    };
    let down = async {
        let r = tokio::io::copy(&mut guest_rx, &mut client_tx).await;
        let _ = client_tx.shutdown().await;
        r
    };
    let mut down = std::pin::pin!(down);
    let relayed = tokio::select! {
        r = &mut down => r,
        () = up => down.await,
    };
    if let Err(e) = relayed {
        tracing::debug!(vm = %cfg.vm, "relay ended: {e}");
    }
}

/// Connections the proxy answers itself, each with the reason for 503.
struct Refusals(tokio::sync::mpsc::Receiver<Refusal>);

impl axum::serve::Listener for Refusals {
    type Io = Box<dyn PeerStream>;
    type Addr = String;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.0.recv().await {
            Some(r) => r,
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<String> {
        Ok("host API refusals".into())
    }
}

async fn serve_refusals(rx: tokio::sync::mpsc::Receiver<Refusal>) {
    let app = axum::Router::new()
        .fallback(unavailable)
        .layer(axum::middleware::map_response(super::close_after));
    let _ = axum::serve(
        Refusals(rx),
        app.into_make_service_with_connect_info::<Reason>(),
    )
    .await;
}

/// Why a refused connection is refused, handed to its handler.
#[derive(Clone)]
struct Reason(String);

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, Refusals>> for Reason {
    fn connect_info(stream: axum::serve::IncomingStream<'_, Refusals>) -> Self {
        Reason(stream.remote_addr().clone())
    }
}

async fn unavailable(ConnectInfo(Reason(why)): ConnectInfo<Reason>) -> super::error::ApiError {
    super::error::ApiError::new(StatusCode::SERVICE_UNAVAILABLE, why)
}
