//! Callbacks to the control plane (seed 004's agent reports provisioning
//! by HTTP POST to `CONTROL_PLANE_URL`): one queue per workspace, so one
//! slow or failing workspace never holds back another and a workspace's
//! events arrive in order; retried with exponential backoff; never on the
//! request path (the API only enqueues).
//!
//! Paths and bodies (the public agent's where it has them):
//! - ready: `POST /api/workspaces/{id}/ready` `{"status": "running"}`
//! - failed: `POST /api/workspaces/{id}/provisioning-failed`
//!   `{"errorMessage", "step", "logTail"}` (`step` and `logTail` are berth's)
//! - creating, deleted: `POST /api/workspaces/{id}/status`
//!   `{"status": "creating"|"deleted"}` (berth's; the public agent has none)
//!
//! Each carries `Authorization: Bearer <the workspace's callbackToken, else
//! CALLBACK_TOKEN>`. A 4xx other than 408 and 429 is final; anything else
//! is retried after 0.5 s, 1 s, 2 s… (at most 30 s apart) up to
//! [`MAX_ATTEMPTS`] tries.

use berth_engine::workspaces::Event;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// Tries per callback before it is given up (and logged).
pub const MAX_ATTEMPTS: u32 = 10;
/// The first retry delay; doubled each time up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// The longest delay between two tries.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Where and with what callbacks go.
#[derive(Clone)]
pub struct Target {
    /// `CONTROL_PLANE_URL` without a trailing slash (empty = no callbacks).
    pub base: String,
    /// `CALLBACK_TOKEN`.
    pub token: Option<String>,
}

/// The request one event becomes: (path, JSON body).
pub fn request_of(e: &Event) -> (String, serde_json::Value) {
    let id = &e.workspace_id;
    match e.status {
        "ready" => (
            format!("/api/workspaces/{id}/ready"),
            serde_json::json!({"status": "running"}),
        ),
        "failed" => (
            format!("/api/workspaces/{id}/provisioning-failed"),
            serde_json::json!({
                "errorMessage": format!("step {}: {}", e.step, e.error),
                "step": e.step,
                "logTail": e.log_tail,
            }),
        ),
        other => (
            format!("/api/workspaces/{id}/status"),
            serde_json::json!({"status": other}),
        ),
    }
}

/// Starts the dispatcher: reads `rx` until it closes, handing each event
/// to its workspace's queue.
pub fn spawn(target: Target, mut rx: mpsc::UnboundedReceiver<Event>) {
    tokio::spawn(async move {
        let queues: Arc<Mutex<HashMap<String, mpsc::UnboundedSender<Event>>>> = Arc::default();
        while let Some(ev) = rx.recv().await {
            if target.base.is_empty() {
                tracing::debug!(workspace = %ev.workspace_id, status = ev.status, "no CONTROL_PLANE_URL: callback not sent");
                continue;
            }
            let id = ev.workspace_id.clone();
            let mut q = queues.lock().unwrap_or_else(|p| p.into_inner());
            let ev = match q.get(&id) {
                Some(tx) => match tx.send(ev) {
                    Ok(()) => continue,
                    Err(mpsc::error::SendError(ev)) => ev,
                },
                None => ev,
            };
            let (tx, qrx) = mpsc::unbounded_channel();
            let _ = tx.send(ev);
            q.insert(id.clone(), tx);
            tokio::spawn(worker(target.clone(), id, qrx, queues.clone()));
        }
    });
}

/// One workspace's queue: sends in order; ends after a minute idle.
async fn worker(
    target: Target,
    id: String,
    mut rx: mpsc::UnboundedReceiver<Event>,
    queues: Arc<Mutex<HashMap<String, mpsc::UnboundedSender<Event>>>>,
) {
    loop {
        match tokio::time::timeout(Duration::from_secs(60), rx.recv()).await {
            Ok(Some(ev)) => deliver(&target, &ev).await,
            Ok(None) => return,
            Err(_) => {
                {
                    // Close under the lock so the dispatcher either sees
                    // the queue closed (and makes a new one) or it got the
                    // event.
                    let mut q = queues.lock().unwrap_or_else(|p| p.into_inner());
                    rx.close();
                    q.remove(&id);
                }
                while let Some(ev) = rx.recv().await {
                    deliver(&target, &ev).await;
                }
                return;
            }
        }
    }
}

async fn deliver(target: &Target, ev: &Event) {
    let (path, body) = request_of(ev);
    let url = format!("{}{path}", target.base);
    let token = ev.callback_token.clone().or(target.token.clone());
    let mut delay = FIRST_BACKOFF;
    for attempt in 1..=MAX_ATTEMPTS {
        match post(&url, token.as_deref(), &body).await {
            Ok(()) => {
                tracing::info!(workspace = %ev.workspace_id, status = ev.status, attempt, "callback delivered");
                return;
            }
            Err((final_, why)) => {
                tracing::warn!(workspace = %ev.workspace_id, status = ev.status, attempt, "callback to {url} failed: {why}");
                if final_ {
                    return;
                }
            }
        }
        if attempt < MAX_ATTEMPTS {
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(MAX_BACKOFF);
        }
    }
    tracing::warn!(workspace = %ev.workspace_id, status = ev.status, "callback given up after {MAX_ATTEMPTS} tries");
}

/// POSTs `body` to `url`; `Err((final, why))`, `final` when retrying
/// cannot help (a 4xx other than 408/429, a malformed URL).
async fn post(
    url: &str,
    token: Option<&str>,
    body: &serde_json::Value,
) -> Result<(), (bool, String)> {
    let uri: hyper::Uri = url.parse().map_err(|e| (true, format!("bad URL: {e}")))?;
    let tls = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Err((true, "CONTROL_PLANE_URL must be http(s)".into())),
    };
    let host = uri.host().ok_or((true, "no host".to_string()))?.to_string();
    let bare = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    if !tls && !is_loopback(&bare) {
        return Err((
            true,
            "plain http carries the token in clear: use https (http only to a loopback address)"
                .into(),
        ));
    }
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let path = uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let mut req = hyper::Request::post(path)
        .header(
            hyper::header::HOST,
            uri.authority().map(|a| a.as_str()).unwrap_or(&host),
        )
        .header(hyper::header::CONTENT_TYPE, "application/json");
    if let Some(t) = token {
        req = req.header(hyper::header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let req = req
        .body(Full::new(Bytes::from(body.to_string())))
        .map_err(|e| (true, e.to_string()))?;
    let work = async {
        let tcp = tokio::net::TcpStream::connect((bare.as_str(), port))
            .await
            .map_err(|e| (false, format!("connect: {e}")))?;
        if tls {
            let s = crate::node_api::tls_client::connect(&host, tcp)
                .await
                .map_err(|e| (false, e))?;
            send(hyper_util::rt::TokioIo::new(s), req).await
        } else {
            send(hyper_util::rt::TokioIo::new(tcp), req).await
        }
    };
    match tokio::time::timeout(Duration::from_secs(20), work).await {
        Ok(r) => r,
        Err(_) => Err((false, "timed out after 20 s".into())),
    }
}

fn is_loopback(h: &str) -> bool {
    h == "localhost"
        || h.parse::<std::net::IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

async fn send<I>(io: I, req: hyper::Request<Full<Bytes>>) -> Result<(), (bool, String)>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| (false, e.to_string()))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| (false, e.to_string()))?;
    let status = resp.status();
    let body = http_body_util::Limited::new(resp.into_body(), 8 << 10)
        .collect()
        .await
        .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
        .unwrap_or_default();
    if status.is_success() {
        return Ok(());
    }
    let code = status.as_u16();
    let final_ = (400..500).contains(&code) && code != 408 && code != 429;
    Err((final_, format!("HTTP {code}: {}", body.trim())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_map_to_the_agents_paths() {
        let mut e = Event {
            workspace_id: "w1".into(),
            status: "ready",
            step: String::new(),
            error: String::new(),
            log_tail: String::new(),
            callback_token: None,
        };
        assert_eq!(request_of(&e).0, "/api/workspaces/w1/ready");
        e.status = "failed";
        e.step = "config".into();
        e.error = "bad".into();
        let (p, b) = request_of(&e);
        assert_eq!(p, "/api/workspaces/w1/provisioning-failed");
        assert_eq!(b["errorMessage"], "step config: bad");
        e.status = "deleted";
        assert_eq!(request_of(&e).1["status"], "deleted");
    }
}
