//! The HTTPS listener: TCP, a per-address connection count, a rustls
//! handshake per connection (off the accept loop, with a deadline), then
//! hyper's HTTP/1.1 with upgrades so WebSockets work, serving an axum
//! router. The deadlines and counts are [`Limits`].

use super::limits::{self, Limits, PerAddress};
use axum::Router;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_rustls::{rustls, TlsAcceptor};

/// Serves `app` over TLS on `listener` until the task is dropped.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: Router,
    limits: Limits,
) {
    let acceptor = TlsAcceptor::from(tls);
    let per_address = Arc::new(PerAddress::default());
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("node API accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        // Counted before the handshake, so connections that never finish
        // it count too.
        let slot = per_address.admit(peer.ip(), limits.max_per_address);
        let (acceptor, app) = (acceptor.clone(), app.clone());
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(
                limits::handshake_timeout(&limits),
                acceptor.accept(tcp),
            )
            .await
            {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, "TLS handshake failed: {e}");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let http = {
                let mut b = hyper::server::conn::http1::Builder::new();
                b.timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(limits.header_timeout);
                b
            };
            let _slot = match slot {
                Ok(slot) => slot,
                Err(_) => {
                    tracing::info!(%peer, "refused a connection: too many from this address");
                    let max = limits.max_per_address;
                    let svc = hyper::service::service_fn(move |_req| async move {
                        Ok::<_, std::convert::Infallible>(limits::too_many_connections(
                            peer.ip(),
                            max,
                        ))
                    });
                    let _ = tokio::time::timeout(
                        limits.header_timeout,
                        http.serve_connection(TokioIo::new(tls), svc),
                    )
                    .await;
                    return;
                }
            };
            let svc = TowerToHyperService::new(app);
            let r = http
                .serve_connection(TokioIo::new(tls), svc)
                .with_upgrades()
                .await;
            if let Err(e) = r {
                tracing::debug!(%peer, "node API connection: {e}");
            }
        });
    }
}
