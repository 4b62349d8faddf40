//! The guest API's accept loop as an `axum::serve::Listener`: Unix peers
//! are admitted by `listen` (our uid or root, by peer credentials); vsock
//! peers only from the allowed context ids (the host, CID 2, by default).

use crate::addr::ListenAddr;
use crate::listen::{Listener, PeerStream};
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::time::Duration;

/// Longest time a client may take to send a request's line and headers;
/// past it hyper closes the connection. `axum::serve` sets no timer, so it
/// enforces none, and a client sending a byte a second (slow-loris) would
/// hold its connection for ever.
pub(super) const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves `app` on `l`, one task per connection, with the header deadline
/// above, until the task is aborted.
pub(super) async fn serve(mut l: GuestListener, app: Router) {
    loop {
        let (io, peer) = axum::serve::Listener::accept(&mut l).await;
        let svc = TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let r = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(TokioIo::new(io), svc)
                .await;
            if let Err(e) = r {
                tracing::debug!(%peer, "guest API connection: {e}");
            }
        });
    }
}

/// A bound guest-API listener with its vsock allow-list.
pub(super) struct GuestListener {
    inner: Listener,
    allowed_cids: Vec<u32>,
    addr: ListenAddr,
}

impl GuestListener {
    pub(super) fn new(inner: Listener, allowed_cids: Vec<u32>, addr: ListenAddr) -> Self {
        Self {
            inner,
            allowed_cids,
            addr,
        }
    }

    async fn accept_one(&self) -> std::io::Result<Option<(Box<dyn PeerStream>, String)>> {
        match &self.inner {
            Listener::Vsock(l) => {
                let (s, a) = l.accept().await?;
                if !self.allowed_cids.contains(&a.cid()) {
                    tracing::warn!(
                        cid = a.cid(),
                        "guest API refused a vsock peer that is not an allowed CID"
                    );
                    return Ok(None);
                }
                Ok(Some((Box::new(s), format!("vsock cid {}", a.cid()))))
            }
            other => Ok(other.accept().await?.map(|a| (a.stream, a.peer))),
        }
    }
}

impl axum::serve::Listener for GuestListener {
    type Io = Box<dyn PeerStream>;
    type Addr = String;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.accept_one().await {
                Ok(Some(c)) => return c,
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(addr = %self.addr, "guest API accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.addr.to_string())
    }
}
