//! The node API's outbound HTTPS: fetching an issuer's JWKS (`jwks`) and
//! posting workspace callbacks (`workspaces::callbacks`) both connect to
//! a host named by configuration and must verify it the same way.

use std::sync::Arc;
use tokio_rustls::rustls;

/// Opens TLS over `tcp` to `host`, verifying its certificate against the
/// Mozilla roots of `webpki-roots` (not the machine's store: a dev
/// machine's store is whatever its images left there) with rustls' safe
/// default protocol versions. Errors are the TLS or name error as text,
/// for the caller's log line or refusal.
pub(crate) async fn connect(
    host: &str,
    tcp: tokio::net::TcpStream,
) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name =
        rustls::pki_types::ServerName::try_from(host.to_string()).map_err(|e| e.to_string())?;
    tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())
}
