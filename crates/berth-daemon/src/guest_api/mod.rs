//! The guest API (seed 002): HTTP/1.1 with `Content-Length` and JSON
//! bodies, one request per connection (every response says
//! `Connection: close` and the server closes after it), served by the
//! daemon inside a VM on `guest.sock` and on vsock port 5002, for the
//! host's `berth host-api` proxy ([`host_proxy`]) to reach.
//!
//! The seed's VM is macOS; each endpoint here has its nearest Linux
//! meaning (see `docs/guest-api.md`). Errors are `{"error": "..."}` with
//! 400/403/404/405/408/409/413/501. HTTP itself is hyper's (through axum).

pub mod clipboard;
pub mod desktop;
pub mod error;
pub mod exec;
pub mod files;
pub mod fs;
pub mod host_proxy;
mod listener;
pub mod x11;
pub mod x11_clipboard;

use crate::addr::ListenAddr;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderValue};
use axum::routing::{get, post};
use axum::Router;
use error::{ApiError, ApiResult};
use serde::de::DeserializeOwned;
use std::path::PathBuf;
use std::sync::Arc;

/// The vsock port of the guest API (seed 002's agent port).
pub const VSOCK_PORT: u32 = 5002;
/// The host's vsock context id: the only peer accepted on vsock by default.
pub const HOST_CID: u32 = 2;
/// Default largest request body: 16 MiB; a larger one is refused with 413.
pub const DEFAULT_MAX_BODY: usize = 16 << 20;

/// How the guest API is served and what it may touch.
#[derive(Debug, Clone)]
pub struct GuestApiConfig {
    /// Listeners: `guest.sock` in the runtime dir, and `vsock://any:5002`
    /// unless `BERTH_GUEST_VSOCK=off` (a vsock that cannot be bound is
    /// logged and skipped, not fatal).
    pub listen: Vec<ListenAddr>,
    /// vsock peers accepted (`BERTH_GUEST_ALLOW_CIDS`, comma separated;
    /// default only the host, CID 2).
    pub allowed_cids: Vec<u32>,
    /// Roots `/api/v1/fs` may list (`BERTH_GUEST_FS_ROOTS`, colon
    /// separated; default `$HOME`).
    pub fs_roots: Vec<PathBuf>,
    /// The queue of files shared with the host (`berth share`).
    pub share_queue: PathBuf,
    /// Largest request body in bytes.
    pub max_body: usize,
    /// Largest stdout and stderr an exec returns, each, in bytes.
    pub exec_output_limit: usize,
}

impl GuestApiConfig {
    /// Defaults for a scope, overridable from the environment (see the
    /// field docs).
    pub fn for_scope(scope: Option<&str>) -> Self {
        let name = match scope {
            Some(s) if !s.is_empty() => format!("guest-{s}.sock"),
            _ => "guest.sock".to_string(),
        };
        let mut listen = vec![ListenAddr::Unix(berth_os::dirs::runtime_dir().join(name))];
        match std::env::var("BERTH_GUEST_VSOCK").as_deref() {
            Ok("off") | Ok("0") => {}
            Ok(port) if !port.is_empty() => match port.parse() {
                Ok(port) => listen.push(ListenAddr::Vsock {
                    cid: u32::MAX,
                    port,
                }),
                Err(_) => tracing::warn!("BERTH_GUEST_VSOCK={port:?} is not a port or \"off\""),
            },
            _ => listen.push(ListenAddr::Vsock {
                cid: u32::MAX,
                port: VSOCK_PORT,
            }),
        }
        let allowed_cids = std::env::var("BERTH_GUEST_ALLOW_CIDS")
            .ok()
            .map(|v| v.split(',').filter_map(|c| c.trim().parse().ok()).collect())
            .unwrap_or_else(|| vec![HOST_CID]);
        let fs_roots = match std::env::var_os("BERTH_GUEST_FS_ROOTS") {
            Some(v) if !v.is_empty() => std::env::split_paths(&v).collect(),
            _ => std::env::var_os("HOME")
                .map(|h| vec![PathBuf::from(h)])
                .unwrap_or_default(),
        };
        Self {
            listen,
            allowed_cids,
            fs_roots,
            share_queue: files::queue_path(scope),
            max_body: DEFAULT_MAX_BODY,
            exec_output_limit: exec::DEFAULT_OUTPUT_LIMIT,
        }
    }
}

/// What every handler shares: the config and the daemon-kept clipboard.
pub struct GuestApi {
    config: GuestApiConfig,
    clipboard: clipboard::Clipboard,
}

type Shared = Arc<GuestApi>;

/// The guest API's routes (13 seed endpoints plus the file download).
pub fn router(config: GuestApiConfig) -> Router {
    let state = Arc::new(GuestApi {
        config,
        clipboard: clipboard::Clipboard::default(),
    });
    Router::new()
        .route("/health", get(health))
        .route(
            "/api/v1/clipboard",
            get(clipboard::get).post(clipboard::set),
        )
        .route("/api/v1/files", get(files::list).delete(files::clear))
        .route("/api/v1/files/{name}", get(files::download))
        .route("/api/v1/open", post(desktop::open))
        .route("/api/v1/exec", post(exec::handle))
        .route("/api/v1/fs", get(fs::list))
        .route("/api/v1/apps", get(desktop::apps))
        .route("/api/v1/apps/launch", post(desktop::launch))
        .route("/api/v1/apps/activate", post(desktop::activate))
        .route("/api/v1/apps/quit", post(desktop::quit))
        .route("/api/v1/apps/frontmost", get(desktop::frontmost))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::map_response(close_after))
        .with_state(state)
}

async fn health() -> error::Json<serde_json::Value> {
    error::Json(serde_json::json!({"status": "ok"}))
}

async fn not_found(req: Request) -> ApiError {
    ApiError::not_found(format!("no endpoint {}", req.uri().path()))
}

async fn method_not_allowed(req: Request) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        format!("{} is not allowed on {}", req.method(), req.uri().path()),
    )
}

/// One request per connection (seed 002): hyper closes a connection
/// after a response that says `Connection: close`.
async fn close_after(mut res: axum::response::Response) -> axum::response::Response {
    res.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    res
}

/// A JSON request body of at most `max_body` bytes: 413 when larger, 400
/// naming the problem when it is not the expected JSON.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<Shared> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &Shared) -> Result<Self, ApiError> {
        let bytes = read_body(req, state.config.max_body).await?;
        let value = serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::bad_request(format!("the body is not the expected JSON: {e}"))
        })?;
        Ok(JsonBody(value))
    }
}

/// Decodes `body` as each JSON request body the guest API takes (exec,
/// clipboard, an app's bundle id, open), exactly as [`JsonBody`] does, and
/// `query` as `/api/v1/fs`'s query (axum's `Query`); returns how many
/// decoded. Bytes from a client give a value or an error, never a panic:
/// the fuzz target `fuzz/fuzz_targets/guest_bodies.rs` feeds it any bytes.
pub fn decode_request(body: &[u8], query: &str) -> usize {
    fn decodes<T: DeserializeOwned>(b: &[u8]) -> usize {
        usize::from(serde_json::from_slice::<T>(b).is_ok())
    }
    let mut n = decodes::<exec::ExecRequest>(body)
        + decodes::<clipboard::SetClipboard>(body)
        + decodes::<desktop::BundleRequest>(body)
        + decodes::<desktop::OpenRequest>(body);
    if let Ok(uri) = format!("/api/v1/fs?{query}").parse::<axum::http::Uri>() {
        n += usize::from(axum::extract::Query::<fs::FsQuery>::try_from_uri(&uri).is_ok());
    }
    n
}

async fn read_body(req: Request, limit: usize) -> ApiResult<Bytes> {
    if let Some(len) = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    {
        if len > limit as u64 {
            return Err(too_large(limit));
        }
    }
    match tokio::time::timeout(
        BODY_READ_TIMEOUT,
        axum::body::to_bytes(req.into_body(), limit),
    )
    .await
    {
        Ok(r) => r.map_err(|_| too_large(limit)),
        Err(_) => Err(ApiError::new(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            format!(
                "the request body did not arrive within {} s",
                BODY_READ_TIMEOUT.as_secs()
            ),
        )),
    }
}

/// Longest wait for a whole request body: a client that trickles its body
/// (slow-loris) is answered 408 and its connection closed, rather than
/// holding a task and a descriptor for as long as it likes.
pub const BODY_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::PAYLOAD_TOO_LARGE,
        format!("the request body is over the limit of {limit} bytes"),
    )
}

/// Serves the guest API on every configured listener until the returned
/// tasks are aborted. A listener that cannot be bound (vsock without the
/// driver, a `guest.sock` another daemon serves) is logged and skipped:
/// the guest API is an extra surface, and the daemon's own sockets must
/// not fail because of it.
pub fn spawn(config: GuestApiConfig) -> Vec<tokio::task::JoinHandle<()>> {
    let app = router(config.clone());
    let mut tasks = Vec::new();
    for addr in &config.listen {
        let bound = match crate::listen::bind(addr) {
            Ok(l) => l,
            Err(e) => {
                match addr {
                    ListenAddr::Vsock { .. } => {
                        tracing::info!(%addr, "guest API not served on vsock: {e}")
                    }
                    _ => tracing::warn!(%addr, "guest API not served: {e}"),
                }
                continue;
            }
        };
        tracing::info!(%addr, "guest API listening");
        let l = listener::GuestListener::new(bound, config.allowed_cids.clone(), addr.clone());
        let app = app.clone();
        tasks.push(tokio::spawn(listener::serve(l, app)));
    }
    tasks
}
