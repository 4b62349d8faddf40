//! ACP gateway benchmark (issue 15), one run, side by side with the
//! named peer "the agent's stdio read directly" (the same test agent,
//! spawned by this process, no gateway):
//! (1) notifications/s of a 20 000-chunk prompt turn: direct, through
//!     `/agent/ws` (TLS, JSON) to 1 viewer, and to 10 viewers (time until
//!     the last viewer has the turn's end);
//! (2) latency per notification (agent's send → reader's receive, wall
//!     clock, 200 chunks 1 ms apart): direct and through the gateway; the
//!     difference is what the gateway adds.
//!
//! `cargo bench -p berth --bench agents` (needs `openssl` for the key).
//! The viewers' queues are set to 65 536 (ACP_VIEWER_QUEUE) so a burst of
//! 20 000 never drops a viewer that reads.

mod common;

use common::jwt::{jwks_server, key};

use common::start;
use futures_util::{SinkExt, StreamExt};
use jsonwebtoken::{Algorithm, Header};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const N: usize = 20_000;
const STAMPS: usize = 200;

fn now_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

fn test_agent() -> PathBuf {
    let bin = Path::new(env!("CARGO_BIN_EXE_berth"))
        .parent()
        .unwrap()
        .join("berth-acp-test-agent");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let st = Command::new(cargo)
        .args(["build", "--release", "-p", "berth-acp-test-agent"])
        .status()
        .unwrap();
    assert!(st.success() && bin.exists(), "no {}", bin.display());
    bin
}

fn prompt(id: u64, sid: &str, text: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "session/prompt",
           "params": {"sessionId": sid, "prompt": [{"type": "text", "text": text}]}})
}

fn chunk_text(m: &Value) -> Option<&str> {
    (m["method"] == "session/update"
        && m["params"]["update"]["sessionUpdate"] == "agent_message_chunk")
        .then(|| m["params"]["update"]["content"]["text"].as_str())
        .flatten()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// The peer: the agent's stdio read by this process.
async fn direct(agent: &Path) -> (f64, f64) {
    let mut child = tokio::process::Command::new(agent)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut call = async |id: u64, msg: Value, seen: &mut dyn FnMut(&Value)| {
        stdin
            .write_all(format!("{msg}\n").as_bytes())
            .await
            .unwrap();
        loop {
            let l = lines.next_line().await.unwrap().unwrap();
            let v: Value = serde_json::from_str(&l).unwrap();
            if v["id"] == id && v.get("method").is_none() {
                return v;
            }
            seen(&v);
        }
    };
    call(1, json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": 1}}), &mut |_| {}).await;
    let ns = call(2, json!({"jsonrpc": "2.0", "id": 2, "method": "session/new", "params": {"cwd": "/tmp", "mcpServers": []}}), &mut |_| {}).await;
    let sid = ns["result"]["sessionId"].as_str().unwrap().to_string();
    let mut count = 0;
    let t = Instant::now();
    call(3, prompt(3, &sid, &format!("stream {N}")), &mut |v| {
        if chunk_text(v).is_some() {
            count += 1;
        }
    })
    .await;
    let rate = count as f64 / t.elapsed().as_secs_f64();
    assert_eq!(count, N);
    let mut lat = Vec::new();
    call(4, prompt(4, &sid, &format!("stamp {STAMPS}")), &mut |v| {
        if let Some(t) = chunk_text(v).and_then(|t| t.strip_prefix("t=")) {
            lat.push((now_nanos() - t.parse::<u128>().unwrap()) as f64 / 1000.0);
        }
    })
    .await;
    (rate, median(lat))
}

struct Gw {
    port: u16,
    token: String,
    tls: std::sync::Arc<tokio_rustls::rustls::ClientConfig>,
}

impl Gw {
    async fn viewer(&self, id: &str) -> Ws {
        let url = format!(
            "wss://localhost:{}/agent/ws?token={}&sessionId={id}&worktree=/tmp",
            self.port, self.token
        );
        let (mut ws, _) = tokio_tungstenite::connect_async_tls_with_config(
            url,
            None,
            false,
            Some(tokio_tungstenite::Connector::Rustls(self.tls.clone())),
        )
        .await
        .unwrap();
        until(&mut ws, |m| m["type"] == "session_replay_complete").await;
        ws
    }
}

async fn next(ws: &mut Ws) -> Value {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => return serde_json::from_str(&t).unwrap(),
            Some(Ok(_)) => continue,
            other => panic!("the WebSocket ended: {other:?}"),
        }
    }
}

async fn until(ws: &mut Ws, mut f: impl FnMut(&Value) -> bool) -> Value {
    loop {
        let m = next(ws).await;
        if f(&m) {
            return m;
        }
    }
}

async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::Text(v.to_string().into())).await.unwrap();
}

/// A session `id` with `viewers` viewers; returns them and the ACP id.
async fn session(gw: &Gw, id: &str, viewers: usize) -> (Vec<Ws>, String) {
    let mut all = Vec::new();
    for _ in 0..viewers {
        all.push(gw.viewer(id).await);
    }
    let first = &mut all[0];
    send(first, json!({"type": "select_agent", "agentType": "test"})).await;
    until(first, |m| {
        m["type"] == "agent_status" && m["status"] == "ready"
    })
    .await;
    send(
        first,
        json!({"jsonrpc": "2.0", "id": 2, "method": "session/new", "params": {}}),
    )
    .await;
    let ns = until(first, |m| m["id"] == 2).await;
    (all, ns["result"]["sessionId"].as_str().unwrap().to_string())
}

/// Notifications/s of one `stream N` turn, timed until every viewer has
/// `session_prompt_done`.
async fn through(gw: &Gw, id: &str, viewers: usize) -> f64 {
    let (mut all, sid) = session(gw, id, viewers).await;
    let t = Instant::now();
    send(&mut all[0], prompt(3, &sid, &format!("stream {N}"))).await;
    let counts = futures_util::future::join_all(all.iter_mut().map(|ws| async move {
        let mut n = 0;
        loop {
            let m = next(ws).await;
            if chunk_text(&m).is_some() {
                n += 1;
            }
            if m["type"] == "session_prompt_done" {
                return n;
            }
        }
    }))
    .await;
    let secs = t.elapsed().as_secs_f64();
    assert!(counts.iter().all(|&c| c == N), "{counts:?}");
    N as f64 / secs
}

async fn gateway_latency(gw: &Gw) -> f64 {
    let (mut all, sid) = session(gw, "lat", 1).await;
    let ws = &mut all[0];
    send(ws, prompt(4, &sid, &format!("stamp {STAMPS}"))).await;
    let mut lat = Vec::new();
    loop {
        let m = next(ws).await;
        if let Some(t) = chunk_text(&m).and_then(|t| t.strip_prefix("t=")) {
            lat.push((now_nanos() - t.parse::<u128>().unwrap()) as f64 / 1000.0);
        }
        if m["id"] == 4 {
            break;
        }
    }
    median(lat)
}

fn main() {
    let agent = test_agent();
    let keys = tempfile::tempdir().unwrap();
    let (enc, jwk) = key(keys.path());
    let jport = jwks_server(jwk);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::env::set_var("CONTROL_PLANE_URL", "https://cp.bench");
    std::env::set_var("JWKS_ENDPOINT", format!("http://127.0.0.1:{jport}/k"));
    std::env::set_var("BERTH_ACP_AGENT_TEST", &agent);
    std::env::set_var("ACP_VIEWER_QUEUE", "65536");
    // The token's workspace "w" is no container workspace: host agents.
    std::env::set_var("BERTH_ACP_HOST_WORKSPACES", "1");
    let berth = PathBuf::from(env!("CARGO_BIN_EXE_berth"));
    let addr = format!("127.0.0.1:{port}");
    let d = start(
        "berth",
        &berth,
        &["daemon", "--node-api", &addr],
        "run/berth/daemon.sock",
        None,
    );
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        std::thread::sleep(Duration::from_millis(20));
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut h = Header::new(Algorithm::EdDSA);
    h.kid = Some("k".into());
    let claims = json!({"iss": "https://cp.bench", "aud": "workspace-terminal", "sub": "u", "workspace": "w", "exp": now + 3600});
    let token = jsonwebtoken::encode(&h, &claims, &enc).unwrap();
    let cert = d
        .socket
        .ancestors()
        .nth(3)
        .unwrap()
        .join("state/berth/node-api/node-api-cert.pem");
    let gw = Gw {
        port,
        token,
        tls: berth_daemon::tls::client_config(&cert).unwrap(),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (d_rate, d_lat) = rt.block_on(direct(&agent));
    let g1 = rt.block_on(through(&gw, "one", 1));
    let g10 = rt.block_on(through(&gw, "ten", 10));
    let g_lat = rt.block_on(gateway_latency(&gw));
    println!("ACP gateway, {N} agent_message_chunk notifications per turn (release)");
    println!("  direct (agent stdio)      {d_rate:>10.0} notifications/s");
    println!(
        "  gateway, 1 viewer         {g1:>10.0} notifications/s  ({:.2}x direct)",
        g1 / d_rate
    );
    println!("  gateway, 10 viewers       {g10:>10.0} notifications/s per viewer ({:.2}x direct; {:.0} deliveries/s)", g10 / d_rate, g10 * 10.0);
    println!("latency per notification, median of {STAMPS} (1 ms apart)");
    println!("  direct (agent stdio)      {d_lat:>10.1} µs");
    println!(
        "  gateway (/agent/ws, TLS)  {g_lat:>10.1} µs  (+{:.1} µs, {:.2}x)",
        g_lat - d_lat,
        g_lat / d_lat
    );
    drop(d);
}
