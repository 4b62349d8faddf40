//! The node API's certificate: configured PEM files, else a self-signed
//! one (rcgen, ECDSA P-256) generated on first start and kept in the state
//! directory, so a browser that accepted it once keeps accepting it.

use std::path::Path;
use std::sync::Arc;
use tokio_rustls::rustls;

/// File names of the kept self-signed certificate and key.
pub const CERT_FILE: &str = "node-api-cert.pem";
/// See [`CERT_FILE`].
pub const KEY_FILE: &str = "node-api-key.pem";

/// The server TLS configuration: from `files` (certificate chain, key),
/// else from the self-signed pair in `state_dir`, generated if missing.
/// Errors name the file or step that failed.
pub fn server_config(
    files: Option<(&Path, &Path)>,
    state_dir: &Path,
) -> Result<Arc<rustls::ServerConfig>, String> {
    let (cert, key) = match files {
        Some((c, k)) => (c.to_path_buf(), k.to_path_buf()),
        None => {
            let (c, k) = (state_dir.join(CERT_FILE), state_dir.join(KEY_FILE));
            if !(c.exists() && k.exists()) {
                generate(state_dir, &c, &k)?;
            }
            (c, k)
        }
    };
    let mut cfg = (*crate::tls::server_config(&cert, &key)?).clone();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

fn generate(dir: &Path, cert: &Path, key: &Path) -> Result<(), String> {
    berth_os::fsutil::ensure_private_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    let mut names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    if !host.is_empty() {
        names.push(host);
    }
    let pair = rcgen::generate_simple_self_signed(names)
        .map_err(|e| format!("generating a self-signed certificate: {e}"))?;
    // The key first: a certificate without its key is regenerated anyway.
    berth_os::fsutil::atomic_write(key, pair.key_pair.serialize_pem().as_bytes())
        .map_err(|e| format!("{}: {e}", key.display()))?;
    berth_os::fsutil::atomic_write(cert, pair.cert.pem().as_bytes())
        .map_err(|e| format!("{}: {e}", cert.display()))?;
    tracing::info!(cert = %cert.display(), "generated a self-signed node-API certificate");
    Ok(())
}
