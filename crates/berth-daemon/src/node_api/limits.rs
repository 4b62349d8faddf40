//! What the node API's HTTPS port refuses so one client cannot take it
//! from the others (issue 21 item 7, `docs/security.md` "Node API"):
//!
//! - a TLS handshake, request line and headers must arrive within
//!   `NODE_API_HEADER_TIMEOUT` (also the idle time of a kept-alive
//!   connection), a request body within `NODE_API_BODY_TIMEOUT`: a
//!   slow-loris client is cut off (408 for a body);
//! - a body over `NODE_API_MAX_BODY_BYTES` is refused with 413, at once
//!   when its `Content-Length` says so;
//! - one address holds at most `NODE_API_MAX_CONNECTIONS_PER_ADDRESS`
//!   connections; past it, the connection is answered 429 and closed;
//! - every refusal is JSON `{"error", "reason"}` like the API's own
//!   ([`Refusal`]): unknown routes (404), wrong methods (405), and the
//!   plain-text rejections of the HTTP layer (a query that does not parse,
//!   a WebSocket upgrade without its headers) are turned into that shape.

use super::refusal::Refusal;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use http_body_util::BodyExt;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The limits of one node API (from [`NodeApiConfig`](super::config::NodeApiConfig)).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// TLS handshake, request line and headers (and keep-alive idle).
    pub header_timeout: Duration,
    /// A whole request body.
    pub body_timeout: Duration,
    /// Largest request body, bytes.
    pub max_body: usize,
    /// Connections one address may hold at once; 0 = no limit.
    pub max_per_address: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(30),
            max_body: 2 << 20,
            max_per_address: 512,
        }
    }
}

/// The TLS handshake deadline: the header timeout, at most 10 s (a
/// handshake is a few round trips; a client that needs longer is stuck or
/// hostile).
pub fn handshake_timeout(l: &Limits) -> Duration {
    l.header_timeout.min(Duration::from_secs(10))
}

/// Open connections per address.
#[derive(Debug, Default)]
pub struct PerAddress {
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One counted connection; uncounted when dropped.
#[derive(Debug)]
pub struct Slot {
    table: Arc<PerAddress>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.table.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

impl PerAddress {
    /// Counts a new connection from `ip`; `Err(open)` when `ip` already
    /// holds `max` (0 = unlimited: always counted).
    pub fn admit(self: &Arc<Self>, ip: IpAddr, max: usize) -> Result<Slot, usize> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(ip).or_insert(0);
        if max > 0 && *n >= max {
            return Err(*n);
        }
        *n += 1;
        Ok(Slot {
            table: self.clone(),
            ip,
        })
    }
}

/// The answer to every request on a connection over the per-address
/// limit: 429, JSON, and the connection closes.
pub fn too_many_connections(ip: IpAddr, max: usize) -> Response {
    let mut r = Refusal {
        status: StatusCode::TOO_MANY_REQUESTS,
        code: "too_many_connections",
        reason: format!(
            "{ip} already has {max} open connections to this node API (the limit, \
             NODE_API_MAX_CONNECTIONS_PER_ADDRESS); close one and retry"
        ),
    }
    .into_response();
    r.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}

/// `404` for a path no route serves, in the API's JSON shape.
pub async fn no_route(req: Request) -> Response {
    Refusal::not_found(format!(
        "no such endpoint: {} {}",
        req.method(),
        req.uri().path()
    ))
    .into_response()
}

/// `405` for a route that exists but not for this method.
pub async fn wrong_method(req: Request) -> Response {
    Refusal {
        status: StatusCode::METHOD_NOT_ALLOWED,
        code: "method_not_allowed",
        reason: format!("{} does not accept {}", req.uri().path(), req.method()),
    }
    .into_response()
}

/// What a guarded body ran into.
#[derive(Debug, Default)]
struct BodyFlags {
    too_large: AtomicBool,
    timed_out: AtomicBool,
}

/// The error a guarded body ends with (the handler's body extractor fails
/// on it; [`guard`] then answers 408 or 413 itself).
#[derive(Debug, thiserror::Error)]
enum BodyError {
    #[error("the request body is larger than {0} bytes (NODE_API_MAX_BODY_BYTES)")]
    TooLarge(usize),
    #[error("the request body did not arrive within {0:?} (NODE_API_BODY_TIMEOUT)")]
    TimedOut(Duration),
    #[error("reading the request body: {0}")]
    Read(axum::Error),
}

/// `body` read under a size cap and a deadline: past either, the stream
/// ends with a [`BodyError`] and `flags` says which.
fn guarded(body: Body, l: &Limits, flags: Arc<BodyFlags>) -> Body {
    struct St {
        data: axum::body::BodyDataStream,
        read: usize,
        max: usize,
        timeout: Duration,
        deadline: tokio::time::Instant,
        flags: Arc<BodyFlags>,
        done: bool,
    }
    let st = St {
        data: body.into_data_stream(),
        read: 0,
        max: l.max_body,
        timeout: l.body_timeout,
        deadline: tokio::time::Instant::now() + l.body_timeout,
        flags,
        done: false,
    };
    Body::from_stream(futures_util::stream::unfold(st, |mut st| async move {
        if st.done {
            return None;
        }
        let item = match tokio::time::timeout_at(st.deadline, st.data.next()).await {
            Err(_) => {
                st.flags.timed_out.store(true, Ordering::Release);
                Err(BodyError::TimedOut(st.timeout))
            }
            Ok(None) => return None,
            Ok(Some(Err(e))) => Err(BodyError::Read(e)),
            Ok(Some(Ok(chunk))) => {
                st.read += chunk.len();
                if st.read > st.max {
                    st.flags.too_large.store(true, Ordering::Release);
                    Err(BodyError::TooLarge(st.max))
                } else {
                    Ok(chunk)
                }
            }
        };
        st.done = item.is_err();
        Some((item, st))
    }))
}

fn refusal(status: StatusCode, code: &'static str, reason: String) -> Response {
    let mut r = Refusal {
        status,
        code,
        reason,
    }
    .into_response();
    // The rest of the body is not read: the connection cannot be reused.
    r.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}

/// The middleware: request bodies under [`Limits`], and every error
/// answer in the JSON shape.
pub async fn guard(State(l): State<Limits>, req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > l.max_body as u64) {
        return refusal(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!(
                "the request body ({} bytes) is larger than {} bytes (NODE_API_MAX_BODY_BYTES)",
                declared.unwrap_or(0),
                l.max_body
            ),
        );
    }
    let flags = Arc::new(BodyFlags::default());
    let (parts, body) = req.into_parts();
    let body = guarded(body, &l, flags.clone());
    let resp = next.run(Request::from_parts(parts, body)).await;
    if flags.timed_out.load(Ordering::Acquire) {
        return refusal(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            format!(
                "the request body did not arrive within {:?} (NODE_API_BODY_TIMEOUT)",
                l.body_timeout
            ),
        );
    }
    if flags.too_large.load(Ordering::Acquire) {
        return refusal(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!(
                "the request body is larger than {} bytes (NODE_API_MAX_BODY_BYTES)",
                l.max_body
            ),
        );
    }
    as_json(resp).await
}

/// The JSON code of an error status.
fn code_of(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        408 => "request_timeout",
        409 => "conflict",
        413 => "payload_too_large",
        415 => "unsupported_media_type",
        426 => "upgrade_required",
        429 => "too_many_requests",
        400..=499 => "bad_request",
        503 => "unavailable",
        _ => "internal",
    }
}

/// Turns an error answer that is not JSON or a page (the HTTP layer's
/// plain-text rejections) into `{"error", "reason"}`, keeping its status
/// and its text as the reason.
async fn as_json(resp: Response) -> Response {
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let ctype = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ctype.starts_with("application/json") || ctype.starts_with("text/html") {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    // Rejection texts are short; more than this is not a rejection text.
    let text = match http_body_util::Limited::new(body, 16 * 1024)
        .collect()
        .await
    {
        Ok(b) => String::from_utf8_lossy(&b.to_bytes()).trim().to_string(),
        Err(_) => String::new(),
    };
    let reason = if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("refused")
            .to_lowercase()
    } else {
        text
    };
    let mut r = Refusal {
        status,
        code: code_of(status),
        reason,
    }
    .into_response();
    for (k, v) in parts.headers.iter() {
        if k != header::CONTENT_TYPE && k != header::CONTENT_LENGTH {
            r.headers_mut().append(k.clone(), v.clone());
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_holds_at_most_its_connections_and_gets_them_back() {
        let t = Arc::new(PerAddress::default());
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let s1 = t.admit(a, 2).unwrap();
        let _s2 = t.admit(a, 2).unwrap();
        assert_eq!(t.admit(a, 2).unwrap_err(), 2);
        assert!(t.admit(b, 2).is_ok(), "other addresses are not affected");
        drop(s1);
        assert!(t.admit(a, 2).is_ok(), "a closed connection frees its place");
        assert!(t.admit(a, 0).is_ok(), "0 is no limit");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn plain_text_rejections_become_json_with_their_status() {
        let resp = (
            StatusCode::BAD_REQUEST,
            "Failed to deserialize query string",
        )
            .into_response();
        let r = as_json(resp).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        let b = r.into_body().collect().await.unwrap().to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["error"], "bad_request");
        assert_eq!(v["reason"], "Failed to deserialize query string");
        let empty = as_json(StatusCode::METHOD_NOT_ALLOWED.into_response()).await;
        let b = empty.into_body().collect().await.unwrap().to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["error"], "method_not_allowed");
        assert_eq!(v["reason"], "method not allowed");
    }
}
