//! The ACP gateway (issue 15; seed 004 "Agent Sessions", "ACP Gateway")
//! through a real daemon: `/agent/ws` viewers and the
//! `/workspaces/{id}/agent-sessions` endpoints, driving
//! `berth-acp-test-agent` (built on the official Rust ACP SDK) and, in
//! the ignored interop test, an agent on the official TypeScript SDK.
//! Keys and the JWKS server are `common::jwt`'s.

mod common;

use common::docker::{require_docker, IMAGE};
use common::jwt::*;
use common::workspace::bare_repo;
use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

const ISSUER: &str = "https://cp.test";
const WS: &str = "ws-1";

/// The test agent binary, built on first use when `cargo test -p berth`
/// did not build the workspace's binaries.
fn test_agent() -> PathBuf {
    let dir = Path::new(BERTH).parent().unwrap();
    let bin = dir.join("berth-acp-test-agent");
    if !bin.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let st = Command::new(cargo)
            .args(["build", "-p", "berth-acp-test-agent"])
            .status()
            .unwrap();
        assert!(st.success(), "building berth-acp-test-agent failed");
    }
    assert!(bin.exists(), "no {}", bin.display());
    bin
}

fn key(dir: &Path) -> Key {
    ed25519(dir, "ed-1")
}

fn token(k: &Key, aud: &str) -> String {
    let now = now();
    sign(
        k,
        &json!({"iss": ISSUER, "aud": aud, "sub": "user-1", "workspace": WS, "node": "node-1",
                "iat": now, "exp": now + 3600}),
    )
}

/// A JWKS serving `k`; its port.
fn jwks(k: &Key) -> u16 {
    JwksServer::start(&[k]).port
}

/// A daemon with the node API and agent types `test` (the test agent)
/// and `testload` (the same, advertising `loadSession`).
struct Node {
    d: Daemon,
    port: u16,
    rt: tokio::runtime::Runtime,
    args: Vec<String>,
    vars: Vec<(String, String)>,
    key: Key,
    _keys: tempfile::TempDir,
    /// A working directory for sessions.
    work: tempfile::TempDir,
}

impl Node {
    fn start(env: &[(&str, &str)]) -> Node {
        let keys = tempfile::tempdir().unwrap();
        let k = key(keys.path());
        let jport = jwks(&k);
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let args = vec!["--node-api".to_string(), addr];
        let agent = test_agent().display().to_string();
        let mut vars: Vec<(String, String)> = vec![
            ("CONTROL_PLANE_URL".into(), ISSUER.into()),
            (
                "JWKS_ENDPOINT".into(),
                format!("http://127.0.0.1:{jport}/.well-known/jwks.json"),
            ),
            ("NODE_ID".into(), "node-1".into()),
            ("SHELL".into(), "/bin/sh".into()),
            ("BERTH_ACP_AGENT_TEST".into(), agent.clone()),
            (
                "BERTH_ACP_AGENT_TESTLOAD".into(),
                format!("{agent} --load-session"),
            ),
            ("ACP_PROMPT_RETRY_INITIAL_BACKOFF".into(), "10ms".into()),
            ("ACP_PROMPT_RETRY_MAX_BACKOFF".into(), "40ms".into()),
            // Workspace "ws-1" is no container workspace: host agents.
            ("BERTH_ACP_HOST_WORKSPACES".into(), "1".into()),
        ];
        for (k, v) in env {
            vars.retain(|(n, _)| n != k);
            vars.push((k.to_string(), v.to_string()));
        }
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut d = Daemon::unstarted(&a);
        let v: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        d.spawn_with_env(&a, &v);
        let n = Node {
            d,
            port,
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            args,
            vars,
            key: k,
            _keys: keys,
            work: tempfile::tempdir().unwrap(),
        };
        n.wait_listening();
        n
    }

    fn restart(&mut self) {
        self.d.kill9();
        let a: Vec<&str> = self.args.iter().map(String::as_str).collect();
        let v: Vec<(&str, &str)> = self
            .vars
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        self.d.spawn_with_env(&a, &v);
        self.wait_listening();
    }

    fn wait_listening(&self) {
        let port = self.port;
        assert!(
            wait_for(Duration::from_secs(10), || std::net::TcpStream::connect((
                "127.0.0.1",
                port
            ))
            .is_ok()),
            "node API did not listen: {}",
            self.d.log()
        );
    }

    fn work(&self) -> PathBuf {
        self.work.path().canonicalize().unwrap()
    }

    fn tls(&self) -> Arc<tokio_rustls::rustls::ClientConfig> {
        berth_daemon::tls::client_config(
            &self.d.state_dir().join("berth/node-api/node-api-cert.pem"),
        )
        .unwrap()
    }

    /// An HTTPS request with a node-management token: (status, JSON body).
    fn http(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let tls = self.tls();
        let port = self.port;
        let auth = token(&self.key, "node-management");
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let req = format!(
            "{method} {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\nauthorization: Bearer {auth}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        self.rt.block_on(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .unwrap();
            let name = tokio_rustls::rustls::pki_types::ServerName::try_from("localhost").unwrap();
            let mut s = tokio_rustls::TlsConnector::from(tls)
                .connect(name, tcp)
                .await
                .unwrap();
            s.write_all(req.as_bytes()).await.unwrap();
            let mut out = Vec::new();
            let _ = s.read_to_end(&mut out).await;
            let text = String::from_utf8_lossy(&out).into_owned();
            let status: u16 = text.split_whitespace().nth(1).unwrap().parse().unwrap();
            let body = text.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
            (status, serde_json::from_str(body).unwrap_or(Value::Null))
        })
    }

    /// The HTTP status an `/agent/ws` upgrade with `query` is refused
    /// with; panics if it is accepted.
    fn refused(&self, query: &str) -> u16 {
        let tok = token(&self.key, "workspace-terminal");
        let url = format!("wss://localhost:{}/agent/ws?token={tok}&{query}", self.port);
        let tls = self.tls();
        self.rt.block_on(async move {
            match tokio_tungstenite::connect_async_tls_with_config(
                url,
                None,
                false,
                Some(tokio_tungstenite::Connector::Rustls(tls)),
            )
            .await
            {
                Err(tokio_tungstenite::tungstenite::Error::Http(r)) => r.status().as_u16(),
                Err(e) => panic!("{e}"),
                Ok(_) => panic!("accepted: {query}"),
            }
        })
    }

    /// An `/agent/ws` viewer; panics if refused.
    fn viewer(&self, query: &str) -> Sock {
        let tok = token(&self.key, "workspace-terminal");
        let url = format!("wss://localhost:{}/agent/ws?token={tok}&{query}", self.port);
        let tls = self.tls();
        self.rt.block_on(async move {
            let (ws, _) = tokio_tungstenite::connect_async_tls_with_config(
                url,
                None,
                false,
                Some(tokio_tungstenite::Connector::Rustls(tls)),
            )
            .await
            .expect("agent websocket");
            Sock { ws }
        })
    }
}

type Stream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

struct Sock {
    ws: Stream,
}

impl Sock {
    fn send(&mut self, rt: &tokio::runtime::Runtime, v: Value) {
        rt.block_on(self.ws.send(Message::Text(v.to_string().into())))
            .unwrap();
    }

    /// The next message (`{"type":"__close","code":N}` at a close frame).
    fn next(&mut self, rt: &tokio::runtime::Runtime) -> Value {
        rt.block_on(async {
            loop {
                match tokio::time::timeout(Duration::from_secs(60), self.ws.next()).await {
                    Err(_) => panic!("no message within 60 s"),
                    Ok(None) | Ok(Some(Err(_))) => return json!({"type": "__closed"}),
                    Ok(Some(Ok(Message::Text(t)))) => return serde_json::from_str(&t).unwrap(),
                    Ok(Some(Ok(Message::Close(f)))) => {
                        return json!({"type": "__close", "code": f.as_ref().map(|f| u16::from(f.code)),
                                      "reason": f.map(|f| f.reason.to_string())})
                    }
                    Ok(Some(Ok(_))) => continue,
                }
            }
        })
    }

    /// Messages up to and including the first that `stop` accepts.
    fn until(&mut self, rt: &tokio::runtime::Runtime, stop: impl Fn(&Value) -> bool) -> Vec<Value> {
        let mut all = Vec::new();
        loop {
            let m = self.next(rt);
            assert!(
                m["type"] != "__closed" && m["type"] != "__close",
                "closed; got {all:?}"
            );
            let done = stop(&m);
            all.push(m);
            if done {
                return all;
            }
        }
    }

    fn until_type(&mut self, rt: &tokio::runtime::Runtime, ty: &str) -> Vec<Value> {
        self.until(rt, |m| m["type"] == ty)
    }
}

/// The text of the `agent_message_chunk` updates among `msgs`, in order.
fn chunks(msgs: &[Value]) -> Vec<String> {
    msgs.iter()
        .filter(|m| {
            m["method"] == "session/update"
                && m["params"]["update"]["sessionUpdate"] == "agent_message_chunk"
        })
        .map(|m| {
            m["params"]["update"]["content"]["text"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

fn prompt(id: u64, sid: &str, text: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "session/prompt",
           "params": {"sessionId": sid, "prompt": [{"type": "text", "text": text}]}})
}

/// A viewer of a fresh session with the `test` agent selected and ready;
/// returns it and the ACP session id.
fn ready_viewer(n: &Node, id: &str, agent: &str) -> (Sock, String) {
    let rt = &n.rt;
    let mut v = n.viewer(&format!("sessionId={id}&worktree={}", n.work().display()));
    let first = v.next(rt);
    assert_eq!(first["type"], "session_state", "{first}");
    assert_eq!(first["status"], "idle");
    v.until_type(rt, "session_replay_complete");
    v.send(rt, json!({"type": "select_agent", "agentType": agent}));
    let st = v.until(rt, |m| {
        m["type"] == "agent_status" && m["status"] != "starting"
    });
    assert_eq!(st.last().unwrap()["status"], "ready", "{st:?}");
    v.send(rt, json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": 1}}));
    let init = v.until(rt, |m| m["id"] == 1);
    assert_eq!(init.last().unwrap()["result"]["protocolVersion"], 1);
    v.send(rt, json!({"jsonrpc": "2.0", "id": 2, "method": "session/new", "params": {"cwd": "/", "mcpServers": []}}));
    let ns = v.until(rt, |m| m["id"] == 2);
    let sid = ns.last().unwrap()["result"]["sessionId"]
        .as_str()
        .unwrap()
        .to_string();
    (v, sid)
}

#[test]
fn a_prompt_streams_in_order_to_every_viewer_and_a_late_one_gets_the_replay() {
    let n = Node::start(&[]);
    let rt = &n.rt;
    let (mut a, sid) = ready_viewer(&n, "chat-1", "test");
    let mut b = n.viewer("sessionId=chat-1");
    let st = b.next(rt);
    assert_eq!(st["status"], "ready");
    assert_eq!(st["acpSessionId"], sid.as_str());
    b.until_type(rt, "session_replay_complete");
    a.send(rt, prompt(7, &sid, "stream 300"));
    let want: Vec<String> = (0..300).map(|i| format!("chunk {i}\n")).collect();
    let got_a = a.until(rt, |m| m["id"] == 7);
    assert_eq!(got_a.last().unwrap()["result"]["stopReason"], "end_turn");
    assert_eq!(chunks(&got_a), want, "viewer a");
    let pos = |v: &[Value], ty: &str| v.iter().position(|m| m["type"] == ty).unwrap();
    assert!(pos(&got_a, "session_prompting") < pos(&got_a, "session_prompt_done"));
    let got_b = b.until_type(rt, "session_prompt_done");
    assert_eq!(chunks(&got_b), want, "viewer b");
    assert!(
        got_b.iter().all(|m| m["id"] != 7),
        "the answer goes to the asking viewer only"
    );

    // A late viewer: the whole story, then the marker, then live traffic.
    let mut late = n.viewer("sessionId=chat-1");
    let st = late.next(rt);
    assert_eq!(st["type"], "session_state");
    let count = st["replayCount"].as_u64().unwrap();
    let replay = late.until_type(rt, "session_replay_complete");
    assert_eq!(replay.len() as u64, count + 1);
    assert_eq!(chunks(&replay), want);
    let seqs: Vec<u64> = replay.iter().filter_map(|m| m["seq"].as_u64()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    a.send(rt, prompt(8, &sid, "hello"));
    let live = late.until_type(rt, "session_prompt_done");
    assert_eq!(chunks(&live), vec!["echo: hello"]);

    // The chat tab carries the ACP session id and the last prompt.
    let (status, tabs) = n.http("GET", &format!("/workspaces/{WS}/tabs"), None);
    assert_eq!(status, 200, "{tabs}");
    let t = &tabs["tabs"][0];
    assert_eq!(t["type"], "chat");
    assert_eq!(t["id"], "chat-1");
    assert_eq!(t["acpSessionId"], sid.as_str());
    assert_eq!(t["lastPrompt"], "hello");
    a.send(rt, json!({"type": "ping"}));
    a.until_type(rt, "pong");
}

/// Mistakes of one viewer are answered to it alone: an unknown or
/// missing agent type, a cancel naming another ACP session, a frame over
/// the limit (1009 naming both sizes); ids outside the charset are
/// refused before a session exists.
#[test]
fn a_viewers_mistakes_are_answered_to_it_alone_and_bad_ids_are_refused() {
    let n = Node::start(&[]);
    let rt = &n.rt;
    let base = format!("/workspaces/{WS}/agent-sessions");
    for bad in ["a/b", "../../x y?#"] {
        let (s, e) = n.http(
            "POST",
            &base,
            Some(json!({"agentType": "test", "sessionId": bad})),
        );
        assert_eq!(s, 400, "{e}");
        let reason = e["reason"].as_str().unwrap();
        assert!(reason.contains("A-Z a-z 0-9 . _ : -"), "{reason}");
    }
    assert_eq!(n.refused("sessionId=a%2Fb"), 400);
    assert_eq!(n.refused("sessionId=..%2F..%2Fx%20y%3F%23"), 400);
    assert_eq!(n.http("GET", &base, None).1["sessions"], json!([]));

    let (mut a, sid) = ready_viewer(&n, "chat-9", "test");
    let mut b = n.viewer("sessionId=chat-9");
    b.until_type(rt, "session_replay_complete");
    a.send(rt, json!({"type": "select_agent", "agentType": "nope"}));
    let e = a.until_type(rt, "error");
    let reason = e.last().unwrap()["reason"].as_str().unwrap().to_string();
    assert!(
        reason.contains("\"nope\"") && reason.contains("test"),
        "{reason}"
    );
    a.send(rt, json!({"type": "select_agent"}));
    let e = a.until_type(rt, "error");
    let reason = e.last().unwrap()["reason"].as_str().unwrap().to_string();
    assert!(
        reason.contains("agentType") && reason.contains("claude-code"),
        "{reason}"
    );
    b.send(rt, json!({"type": "ping"}));
    let got = b.until_type(rt, "pong");
    assert_eq!(got.len(), 1, "the other viewer was told nothing: {got:?}");

    // A cancel naming another session is refused, as a request and as a
    // notification.
    a.send(
        rt,
        json!({"jsonrpc": "2.0", "id": 40, "method": "session/cancel",
                      "params": {"sessionId": "other-session"}}),
    );
    let r = a.until(rt, |m| m["id"] == 40);
    let err = &r.last().unwrap()["error"];
    assert_eq!(err["code"], -32602, "{err}");
    assert!(
        err["message"].as_str().unwrap().contains("other-session"),
        "{err}"
    );
    a.send(
        rt,
        json!({"jsonrpc": "2.0", "method": "session/cancel",
                      "params": {"sessionId": "other-session"}}),
    );
    let r = a.until(rt, |m| m.get("error").is_some());
    assert_eq!(r.last().unwrap()["error"]["code"], -32602);
    a.send(rt, prompt(41, &sid, "hello"));
    let r = a.until(rt, |m| m["id"] == 41);
    assert_eq!(r.last().unwrap()["result"]["stopReason"], "end_turn");

    // The session is still ready and nothing of it is in the replay.
    let mut late = n.viewer("sessionId=chat-9");
    let st = late.next(rt);
    assert_eq!(st["status"], "ready", "{st}");
    let replay = late.until_type(rt, "session_replay_complete");
    assert!(
        replay
            .iter()
            .all(|m| m["status"] != "error" && m["agentType"] != "nope"),
        "{replay:?}"
    );

    // A frame over 16 MiB: 1009 naming both sizes.
    let big = "x".repeat((16 << 20) + 1);
    rt.block_on(a.ws.send(Message::Text(big.into()))).unwrap();
    let close = loop {
        let m = a.next(rt);
        if m["type"] == "__close" || m["type"] == "__closed" {
            break m;
        }
    };
    assert_eq!(close["code"], 1009, "{close}");
    let reason = close["reason"].as_str().unwrap();
    assert!(
        reason.contains(&((16 << 20) + 1).to_string()) && reason.contains(&(16 << 20).to_string()),
        "{reason}"
    );
    b.send(rt, json!({"type": "ping"}));
    b.until_type(rt, "pong");

    // A huge prompt: its transcript entries and lastPrompt are cut to
    // 64 KiB on a character boundary and marked.
    let huge = "é".repeat(100_000);
    let (s, r) = n.http(
        "POST",
        &format!("{base}/chat-9/prompt?wait=true"),
        Some(json!({"prompt": huge})),
    );
    assert_eq!(s, 200, "{r}");
    let (_, g) = n.http("GET", &format!("{base}/chat-9"), None);
    let t = g["transcript"].as_array().unwrap();
    let last_two = &t[t.len() - 2..];
    for e in last_two {
        let text = e["text"].as_str().unwrap();
        assert!(text.len() <= 64 * 1024, "{}", text.len());
        assert!(text.ends_with("[cut: longer than 64 KiB]"), "{e}");
        assert_eq!(e["truncated"], true);
    }
    assert_eq!(last_two[0]["role"], "user");
    assert_eq!(last_two[1]["role"], "agent");
    assert!(g["lastPrompt"].as_str().unwrap().len() <= 64 * 1024);
}

#[test]
fn http_sessions_retry_transient_errors_and_give_up_on_the_rest() {
    let n = Node::start(&[]);
    let work = n.work();
    let base = format!("/workspaces/{WS}/agent-sessions");
    let (s, v) = n.http(
        "POST",
        &base,
        Some(json!({"agentType": "test", "cwd": work, "idempotencyKey": "k1"})),
    );
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["status"], "ready");
    assert_eq!(v["protocolVersion"], 1);
    assert_eq!(v["agentCapabilities"]["loadSession"], false);
    let id = v["id"].as_str().unwrap().to_string();
    let (s, again) = n.http(
        "POST",
        &base,
        Some(json!({"agentType": "test", "cwd": work, "idempotencyKey": "k1"})),
    );
    assert_eq!(s, 200, "an existing session is no new one: {again}");
    assert_eq!(
        again["id"],
        id.as_str(),
        "same idempotency key, same session"
    );
    let (s, e) = n.http(
        "POST",
        &base,
        Some(json!({"agentType": "testload", "cwd": "/", "idempotencyKey": "k1"})),
    );
    assert_eq!(s, 409, "{e}");
    let reason = e["reason"].as_str().unwrap();
    assert!(
        reason.contains("agentType \"testload\"") && reason.contains("cwd \"/\""),
        "{reason}"
    );

    let mut viewer = n.viewer(&format!("sessionId={id}"));
    viewer.until_type(&n.rt, "session_replay_complete");
    let (s, r) = n.http(
        "POST",
        &format!("{base}/{id}/prompt?wait=true"),
        Some(json!({"prompt": "fail-transient 2"})),
    );
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["stopReason"], "end_turn");
    let seen = viewer.until_type(&n.rt, "session_prompt_done");
    let retries: Vec<&Value> = seen
        .iter()
        .filter(|m| m["type"] == "session_prompt_retry")
        .collect();
    assert_eq!(retries.len(), 2, "{seen:?}");
    assert_eq!(retries[0]["delayMs"], 10);
    assert_eq!(retries[1]["delayMs"], 20);
    assert!(retries[0]["error"].as_str().unwrap().contains("rate limit"));
    assert_eq!(chunks(&seen), vec!["transient ok after 2"]);

    // Three failures: the first attempt and two retries, then the error.
    let (s, r) = n.http(
        "POST",
        &format!("{base}/{id}/prompt?wait=true"),
        Some(json!({"prompt": "fail-transient 3"})),
    );
    assert_eq!(s, 502, "{r}");
    assert!(r["reason"].as_str().unwrap().contains("rate limit"), "{r}");
    let seen = viewer.until_type(&n.rt, "session_prompt_done");
    assert_eq!(
        seen.iter()
            .filter(|m| m["type"] == "session_prompt_retry")
            .count(),
        2
    );
    // Not transient: no retry at all.
    let (s, r) = n.http(
        "POST",
        &format!("{base}/{id}/prompt?wait=true"),
        Some(json!({"prompt": "fail-permanent"})),
    );
    assert_eq!(s, 502, "{r}");
    let seen = viewer.until_type(&n.rt, "session_prompt_done");
    assert_eq!(
        seen.iter()
            .filter(|m| m["type"] == "session_prompt_retry")
            .count(),
        0
    );
    assert!(seen.last().unwrap()["error"]
        .as_str()
        .unwrap()
        .contains("invalid prompt"));

    let (s, g) = n.http("GET", &format!("{base}/{id}"), None);
    assert_eq!(s, 200);
    let t = g["transcript"].as_array().unwrap();
    assert_eq!(t[0], json!({"role": "user", "text": "fail-transient 2"}));
    assert_eq!(
        t[1],
        json!({"role": "agent", "text": "transient ok after 2"})
    );
    let (s, l) = n.http("GET", &base, None);
    assert_eq!(s, 200);
    assert_eq!(l["sessions"].as_array().unwrap().len(), 1);

    let (s, e) = n.http("POST", &base, Some(json!({"agentType": "nope"})));
    assert_eq!(s, 400);
    let reason = e["reason"].as_str().unwrap();
    assert!(
        reason.contains("\"nope\"") && reason.contains("claude-code") && reason.contains("test"),
        "{reason}"
    );
    let (s, e) = n.http(
        "POST",
        &base,
        Some(json!({"agentType": "test", "mcpServers": [{"bogus": 1}]})),
    );
    assert_eq!(s, 400, "{e}");
    assert!(e["reason"].as_str().unwrap().contains("mcpServers"));
    let (s, _) = n.http(
        "GET",
        &format!("/workspaces/other/agent-sessions/{id}"),
        None,
    );
    assert_eq!(s, 404);
}

#[test]
fn a_cancel_ends_a_prompt_and_stops_the_retry_loop() {
    let n = Node::start(&[
        ("ACP_PROMPT_RETRY_INITIAL_BACKOFF", "1h"),
        ("ACP_PROMPT_RETRY_MAX_BACKOFF", "2h"),
    ]);
    let rt = &n.rt;
    let (mut v, sid) = ready_viewer(&n, "c1", "test");
    v.send(rt, prompt(3, &sid, "wait"));
    v.until(rt, |m| chunks(std::slice::from_ref(m)) == vec!["waiting"]);
    v.send(
        rt,
        json!({"jsonrpc": "2.0", "method": "session/cancel", "params": {"sessionId": sid}}),
    );
    let r = v.until(rt, |m| m["id"] == 3);
    assert_eq!(r.last().unwrap()["result"]["stopReason"], "cancelled");

    // A transient failure waits an hour before the retry; cancel ends it.
    v.send(rt, prompt(4, &sid, "fail-transient 1"));
    v.until_type(rt, "session_prompt_retry");
    let base = format!("/workspaces/{WS}/agent-sessions/c1");
    let (s, _) = n.http("POST", &format!("{base}/cancel"), None);
    assert_eq!(s, 200);
    let r = v.until(rt, |m| m["id"] == 4);
    assert_eq!(r.last().unwrap()["result"]["stopReason"], "cancelled");
    let done = r
        .iter()
        .find(|m| m["type"] == "session_prompt_done")
        .unwrap();
    assert_eq!(done["stopReason"], "cancelled");
}

#[test]
fn a_crash_is_reported_and_the_session_resumes() {
    let mut n = Node::start(&[]);
    let rt = &n.rt;
    let (mut v, sid) = ready_viewer(&n, "cr", "test");
    v.send(rt, prompt(5, &sid, "crash"));
    let got = v.until(rt, |m| m["id"] == 5);
    let crash = got
        .iter()
        .find(|m| m["type"] == "agent_crash_report")
        .expect("crash report");
    assert_eq!(crash["exitCode"], 3);
    assert_eq!(crash["agentType"], "test");
    assert!(
        crash["stderrTail"]
            .as_str()
            .unwrap()
            .contains("crashing on request"),
        "{crash}"
    );
    assert!(got.last().unwrap()["error"].is_object());
    let base = format!("/workspaces/{WS}/agent-sessions/cr");
    let (_, g) = n.http("GET", &base, None);
    assert_eq!(g["status"], "crashed");
    assert!(g["error"].as_str().unwrap().contains("status 3"));
    let (s, r) = n.http("POST", &format!("{base}/resume"), None);
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["status"], "ready");
    // Without loadSession: a new ACP session, the transcript handed over.
    assert_ne!(r["acpSessionId"], sid.as_str());
    let notice = v.until_type(rt, "session_notice");
    let notice = notice.last().unwrap();
    assert_eq!(notice["code"], "resumed_new_session");
    assert_eq!(notice["transcript"][0]["text"], "crash");
    let (s, r) = n.http(
        "POST",
        &format!("{base}/prompt?wait=true"),
        Some(json!({"prompt": "after"})),
    );
    assert_eq!(s, 200, "{r}");

    // Suspend, then resume after a daemon restart: with loadSession the
    // same ACP session is loaded.
    let (s, c) = n.http(
        "POST",
        &format!("/workspaces/{WS}/agent-sessions"),
        Some(json!({"agentType": "testload", "sessionId": "ld", "cwd": n.work()})),
    );
    assert_eq!(s, 201, "{c}");
    let acp = c["acpSessionId"].as_str().unwrap().to_string();
    assert_eq!(c["agentCapabilities"]["loadSession"], true);
    let ld = format!("/workspaces/{WS}/agent-sessions/ld");
    let (s, r) = n.http("POST", &format!("{ld}/suspend"), None);
    assert_eq!(s, 200);
    assert_eq!(r["status"], "suspended");
    assert!(r.get("pid").is_none());
    let (s, r) = n.http(
        "POST",
        &format!("{ld}/prompt"),
        Some(json!({"prompt": "x"})),
    );
    assert_eq!(s, 409, "{r}");
    n.restart();
    let (_, g) = n.http("GET", &ld, None);
    assert_eq!(g["status"], "suspended");
    assert_eq!(g["acpSessionId"], acp.as_str());
    let mut w = n.viewer("sessionId=ld");
    w.until_type(&n.rt, "session_replay_complete");
    let (s, r) = n.http("POST", &format!("{ld}/resume"), None);
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["acpSessionId"], acp.as_str());
    let got = w.until(&n.rt, |m| !chunks(std::slice::from_ref(m)).is_empty());
    assert_eq!(chunks(&got), vec![format!("loaded session {acp}")]);
    let (s, r) = n.http("POST", &format!("{ld}/stop"), None);
    assert_eq!(s, 200);
    assert_eq!(r["status"], "stopped");
}

#[test]
fn permission_fs_and_terminal_requests_are_answered() {
    let n = Node::start(&[]);
    let rt = &n.rt;
    let (mut a, sid) = ready_viewer(&n, "p1", "test");
    let mut b = n.viewer("sessionId=p1");
    b.until_type(rt, "session_replay_complete");
    a.send(rt, prompt(10, &sid, "permission"));
    let ask_a = a.until(rt, |m| m["method"] == "session/request_permission");
    let ask_b = b.until(rt, |m| m["method"] == "session/request_permission");
    let req = ask_b.last().unwrap().clone();
    assert_eq!(ask_a.last().unwrap()["id"], req["id"]);
    // b answers first and wins; a's later answer is ignored.
    b.send(rt, json!({"jsonrpc": "2.0", "id": req["id"], "result": {"outcome": {"outcome": "selected", "optionId": "allow"}}}));
    a.send(rt, json!({"jsonrpc": "2.0", "id": req["id"], "result": {"outcome": {"outcome": "selected", "optionId": "reject"}}}));
    let done = a.until(rt, |m| m["id"] == 10);
    assert_eq!(chunks(&done), vec!["permission: allow"]);

    // With no viewer, a permission request is answered `cancelled`.
    let base = format!("/workspaces/{WS}/agent-sessions");
    let (_, c) = n.http(
        "POST",
        &base,
        Some(json!({"agentType": "test", "cwd": n.work()})),
    );
    let id = c["id"].as_str().unwrap();
    let (s, _) = n.http(
        "POST",
        &format!("{base}/{id}/prompt?wait=true"),
        Some(json!({"prompt": "permission"})),
    );
    assert_eq!(s, 200);
    let (_, g) = n.http("GET", &format!("{base}/{id}"), None);
    assert_eq!(g["transcript"][1]["text"], "permission: cancelled");

    // fs: inside the workspace root read and written; outside refused.
    let f = n.work().join("notes.txt");
    std::fs::write(&f, "hello fs\n").unwrap();
    a.send(rt, prompt(11, &sid, &format!("fs {}", f.display())));
    let got = a.until(rt, |m| m["id"] == 11);
    assert_eq!(chunks(&got), vec!["fs: read 9 bytes"]);
    assert_eq!(
        std::fs::read_to_string(n.work().join("notes.txt.out")).unwrap(),
        "HELLO FS\n"
    );
    std::os::unix::fs::symlink("/etc/hostname", n.work().join("escape")).unwrap();
    for bad in [
        "/etc/hostname".to_string(),
        format!("{}/escape", n.work().display()),
        format!("{}/../x", n.work().display()),
    ] {
        a.send(rt, prompt(12, &sid, &format!("fs {bad}")));
        let got = a.until(rt, |m| m["id"] == 12);
        let c = chunks(&got);
        assert!(
            c[0].starts_with("fs error:") && (c[0].contains("outside") || c[0].contains("..")),
            "{bad}: {c:?}"
        );
    }

    // terminal/*: a real session of berth's session engine.
    a.send(
        rt,
        prompt(13, &sid, "terminal echo from-terminal; pwd; exit 4"),
    );
    let got = a.until(rt, |m| m["id"] == 13);
    let c = chunks(&got);
    assert_eq!(
        c,
        vec![format!(
            "terminal: exit 4 output \"from-terminal\\n{}\\n\"",
            n.work().display()
        )]
    );
}

#[test]
fn a_viewer_that_stops_reading_is_dropped_without_slowing_the_others() {
    // Each turn is shorter than the queue, so the reading viewer never
    // lags by a full queue; the stuck one's socket buffers and queue fill
    // after some turns, and it is dropped.
    let n = Node::start(&[("ACP_VIEWER_QUEUE", "1024")]);
    let rt = &n.rt;
    let (mut a, sid) = ready_viewer(&n, "slow", "test");
    let mut stuck = n.viewer("sessionId=slow");
    stuck.until_type(rt, "session_replay_complete");
    let mut turns = 0u64;
    loop {
        turns += 1;
        assert!(turns < 500, "the stuck viewer was never dropped");
        a.send(rt, prompt(100 + turns, &sid, "stream 1000"));
        let got = a.until(rt, |m| m["id"] == 100 + turns);
        assert_eq!(chunks(&got).len(), 1000);
        let (_, g) = n.http(
            "GET",
            &format!("/workspaces/{WS}/agent-sessions/slow"),
            None,
        );
        if g["viewers"] == 1 {
            break;
        }
    }
    // What it still gets ends with a 1008 close.
    let last = loop {
        let m = stuck.next(rt);
        if m["type"] == "__close" || m["type"] == "__closed" {
            break m;
        }
        assert_ne!(m["id"], 100 + turns, "the stuck viewer was not dropped");
    };
    assert!(last["type"] == "__closed" || last["code"] == 1008, "{last}");
}

#[test]
#[ignore = "needs npm packages: see crates/berth/tests/acp-ts-agent/README.md"]
fn typescript_sdk_agent_through_the_gateway() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/acp-ts-agent");
    assert!(
        dir.join("node_modules/@agentclientprotocol/sdk").is_dir(),
        "run `npm ci` in {}",
        dir.display()
    );
    let cmd = format!("node {}", dir.join("agent.mjs").display());
    let n = Node::start(&[("BERTH_ACP_AGENT_TS", cmd.as_str())]);
    let rt = &n.rt;
    let (mut v, sid) = ready_viewer(&n, "ts", "ts");
    assert!(sid.starts_with("ts-"), "{sid}");
    let f = n.work().join("ts.txt");
    std::fs::write(&f, "from berth\n").unwrap();
    v.send(rt, prompt(30, &sid, &f.display().to_string()));
    let ask = v.until(rt, |m| m["method"] == "session/request_permission");
    let id = ask.last().unwrap()["id"].clone();
    v.send(rt, json!({"jsonrpc": "2.0", "id": id, "result": {"outcome": {"outcome": "selected", "optionId": "yes"}}}));
    let got = v.until(rt, |m| m["id"] == 30);
    assert_eq!(
        got.last().unwrap()["result"]["stopReason"],
        "end_turn",
        "{got:?}"
    );
    let mut all = chunks(&ask);
    all.extend(chunks(&got));
    assert_eq!(
        all,
        vec![
            "ts chunk 0\n",
            "ts chunk 1\n",
            "ts chunk 2\n",
            "ts permission: selected",
            "ts read: from berth",
            "ts terminal: 0 ts-terminal",
        ]
    );
}

/// An adapter that fails its handshake leaves nothing running: a wrapper's
/// child (what `npx` starts) ends with it (found by a fresh-user review).
#[test]
fn a_failed_handshake_leaves_no_agent_process_behind() {
    let marker = "7339911";
    let n = Node::start(&[(
        "BERTH_ACP_AGENT_BROKEN",
        "sh -c 'sleep 7339911 & echo not-json; exit 1'",
    )]);
    let work = n.work();
    let (s, v) = n.http(
        "POST",
        &format!("/workspaces/{WS}/agent-sessions"),
        Some(json!({"agentType": "broken", "cwd": work})),
    );
    assert!(s >= 400, "a broken agent is refused: {s} {v}");
    let alive = || {
        std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
            std::fs::read(e.path().join("cmdline"))
                .is_ok_and(|c| c.split(|b| *b == 0).any(|a| a == marker.as_bytes()))
        })
    };
    assert!(
        wait_for(Duration::from_secs(10), || !alive()),
        "the wrapper's child is still running"
    );
}

/// The minimal ACP agent in POSIX sh (tests/acp-sh-agent/agent.sh).
fn sh_agent() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/acp-sh-agent/agent.sh")
}

/// Without host agents, a session needs a workspace: 404 naming it, over
/// HTTP and on `/agent/ws`.
#[test]
fn a_session_of_a_workspace_that_does_not_exist_is_refused_naming_it() {
    let n = Node::start(&[("BERTH_ACP_HOST_WORKSPACES", "0")]);
    let (s, v) = n.http(
        "POST",
        &format!("/workspaces/{WS}/agent-sessions"),
        Some(json!({"agentType": "test"})),
    );
    assert_eq!(s, 404, "{v}");
    assert_eq!(v["error"], "not_found");
    let reason = v["reason"].as_str().unwrap();
    assert!(
        reason.contains(&format!("no workspace \"{WS}\""))
            && reason.contains("BERTH_ACP_HOST_WORKSPACES"),
        "{reason}"
    );
    let tok = token(&n.key, "workspace-terminal");
    let url = format!(
        "wss://localhost:{}/agent/ws?token={tok}&sessionId=x",
        n.port
    );
    let tls = n.tls();
    let r =
        n.rt.block_on(tokio_tungstenite::connect_async_tls_with_config(
            url,
            None,
            false,
            Some(tokio_tungstenite::Connector::Rustls(tls)),
        ));
    match r {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status(), 404);
            let body =
                String::from_utf8_lossy(resp.body().as_deref().unwrap_or_default()).into_owned();
            assert!(body.contains(WS), "{body}");
        }
        other => panic!("expected a 404 refusal, got {other:?}"),
    }
}

/// `$XDG_STATE_HOME/berth/agents.toml` adds and overrides types; the
/// environment wins over it; a bad file is an error naming the file and
/// line, and the daemon serves on without it.
#[test]
fn agent_types_come_from_the_state_dirs_file_under_the_environment() {
    let mut n = Node::start(&[]);
    let agent = test_agent().display().to_string();
    let file = n.d.state_dir().join("berth/agents.toml");
    std::fs::write(
        &file,
        format!(
            "# agent types\n[types.filetest]\ncommand = [{agent:?}]\n\n[types.test]\ncommand = [\"/nonexistent/agent\"]\n\n[types.gemini]\ncommand = \"{agent} --load-session\"\n"
        ),
    )
    .unwrap();
    n.restart();
    let work = n.work();
    let create = |n: &Node, ty: &str| {
        n.http(
            "POST",
            &format!("/workspaces/{WS}/agent-sessions"),
            Some(json!({"agentType": ty, "cwd": work})),
        )
    };
    let (s, v) = create(&n, "filetest");
    assert_eq!(s, 201, "a type of the file: {v}");
    assert_eq!(v["status"], "ready");
    let (s, v) = create(&n, "test");
    assert_eq!(s, 201, "the environment wins over the file: {v}");
    let (s, v) = create(&n, "gemini");
    assert_eq!(s, 201, "the file wins over the built-in: {v}");
    assert_eq!(v["agentCapabilities"]["loadSession"], true, "{v}");
    let (s, v) = create(&n, "nope");
    assert_eq!(s, 400);
    assert!(v["reason"].as_str().unwrap().contains("filetest"), "{v}");

    // A bad file: named with its line in the log; built-ins and the
    // environment still serve.
    std::fs::write(
        &file,
        "[types.ok]\ncommand = [\"x\"]\n[types.bad\ncommand = 1\n",
    )
    .unwrap();
    n.restart();
    let (s, v) = create(&n, "test");
    assert_eq!(s, 201, "{v}");
    let (s, _) = create(&n, "ok");
    assert_eq!(s, 400, "nothing of a bad file applies");
    let want = format!("{}: line 3:", file.display());
    assert!(
        wait_for(Duration::from_secs(10), || {
            let log = n.d.log();
            log.contains("agent types file not applied") && log.contains(&want)
        }),
        "{want} not in the log: {}",
        n.d.log()
    );
    std::fs::write(&file, "[types.empty]\ncommand = []\n").unwrap();
    n.restart();
    let want = format!(
        "{}: line 1: types.empty.command: expected a list of strings",
        file.display()
    );
    assert!(
        wait_for(Duration::from_secs(10), || n.d.log().contains(&want)),
        "{want} not in the log: {}",
        n.d.log()
    );
}

/// An agent that stops reading its stdin while berth must answer it
/// (permission requests with no viewer attached) stalls the ordered
/// queue; each step past ACP_NOTIF_SERIALIZE_TIMEOUT is reported as a
/// `serialize_timeout` notice (in the replay and the daemon log), the
/// turn still ends, and the session goes on.
#[test]
fn a_stalled_delivery_overruns_the_serialize_timeout_and_is_reported() {
    let cmd = format!("sh {}", sh_agent().display());
    let n = Node::start(&[
        ("ACP_NOTIF_SERIALIZE_TIMEOUT", "200ms"),
        ("BERTH_ACP_AGENT_SH", cmd.as_str()),
    ]);
    let rt = &n.rt;
    let (s, v) = n.http(
        "POST",
        &format!("/workspaces/{WS}/agent-sessions"),
        Some(json!({"agentType": "sh", "sessionId": "deaf", "cwd": n.work()})),
    );
    assert_eq!(s, 201, "{v}");
    // 4000 answers do not fit the pipe and berth's queue to the agent,
    // which does not read for 2 s.
    let (s, v) = n.http(
        "POST",
        &format!("/workspaces/{WS}/agent-sessions/deaf/prompt?wait=true"),
        Some(json!({"prompt": "deaf 4000 2"})),
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["stopReason"], "end_turn");
    let mut late = n.viewer("sessionId=deaf");
    let replay = late.until_type(rt, "session_replay_complete");
    let notices: Vec<&Value> = replay
        .iter()
        .filter(|m| m["type"] == "session_notice" && m["code"] == "serialize_timeout")
        .collect();
    assert!(
        !notices.is_empty(),
        "no serialize_timeout notice: {replay:?}"
    );
    let msg = notices[0]["message"].as_str().unwrap();
    assert!(
        msg.contains("longer than 200 ms") && msg.contains("ACP_NOTIF_SERIALIZE_TIMEOUT"),
        "{msg}"
    );
    let pos = |f: &dyn Fn(&Value) -> bool| replay.iter().position(f).unwrap();
    let notice = pos(&|m| m["code"] == "serialize_timeout");
    let done = pos(&|m| m["type"] == "session_prompt_done");
    let last_chunk = pos(&|m| chunks(std::slice::from_ref(m)) == vec!["deaf: done"]);
    assert!(notice < last_chunk && last_chunk < done, "{replay:?}");
    assert!(n.d.log().contains("to deliver"), "{}", n.d.log());
    let (s, v) = n.http(
        "POST",
        &format!("/workspaces/{WS}/agent-sessions/deaf/prompt?wait=true"),
        Some(json!({"prompt": "hello"})),
    );
    assert_eq!(s, 200, "the session goes on: {v}");
    let live = late.until_type(rt, "session_prompt_done");
    assert_eq!(chunks(&live), vec!["sh echo"]);
}

/// A session `/agent/ws` made without a session id is stopped and
/// forgotten once it has had no viewer and no prompt for
/// ACP_IDLE_SESSION_TIMEOUT; one with a viewer, and one with an id the
/// client chose, stay.
#[test]
fn an_unattended_session_without_an_id_is_cleaned_up() {
    let n = Node::start(&[("ACP_IDLE_SESSION_TIMEOUT", "300ms")]);
    let rt = &n.rt;
    let open = || {
        let mut v = n.viewer(&format!("worktree={}", n.work().display()));
        let st = v.next(rt);
        let id = st["sessionId"].as_str().unwrap().to_string();
        v.until_type(rt, "session_replay_complete");
        v.send(rt, json!({"type": "select_agent", "agentType": "test"}));
        v.until(rt, |m| {
            m["type"] == "agent_status" && m["status"] == "ready"
        });
        (v, id)
    };
    let (watched, kept) = open();
    let (gone_viewer, gone) = open();
    let (named_viewer, _) = ready_viewer(&n, "named", "test");
    drop(named_viewer);
    let get = |id: &str| {
        n.http(
            "GET",
            &format!("/workspaces/{WS}/agent-sessions/{id}"),
            None,
        )
    };
    let (_, v) = get(&gone);
    let pid = v["pid"].as_u64().unwrap();
    drop(gone_viewer);
    assert!(
        wait_for(Duration::from_secs(30), || get(&gone).0 == 404),
        "the unattended session stayed"
    );
    assert!(
        wait_for(Duration::from_secs(10), || !Path::new(&format!(
            "/proc/{pid}"
        ))
        .exists()),
        "its agent still runs"
    );
    let (_, tabs) = n.http("GET", &format!("/workspaces/{WS}/tabs"), None);
    assert!(
        tabs["tabs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["id"] != gone.as_str()),
        "{tabs}"
    );
    let (s, v) = get(&kept);
    assert_eq!(s, 200, "a session with a viewer stays: {v}");
    assert_eq!(v["status"], "ready");
    let (s, _) = get("named");
    assert_eq!(s, 200, "a session with a chosen id stays");
    drop(watched);
}

/// The agent of a container workspace runs in its container (`docker
/// exec -i`), as the remote user, in the workspace folder; `fs/*` is not
/// offered to it.
#[test]
#[ignore = "needs a Docker Engine: see README"]
fn the_agent_of_a_container_workspace_runs_inside_it() {
    require_docker();
    let n = Node::start(&[
        ("BERTH_ACP_HOST_WORKSPACES", "0"),
        ("BERTH_ACP_AGENT_SH", "sh /tmp/acp-sh-agent.sh"),
    ]);
    let tmp = tempfile::tempdir().unwrap();
    let devcontainer = format!(r#"{{"image": "{IMAGE}", "remoteUser": "1000"}}"#);
    let repo = bare_repo(
        tmp.path(),
        "app",
        &[
            (".devcontainer/devcontainer.json", &devcontainer),
            ("README.md", "readme of the workspace\n"),
        ],
    );
    let ws = format!("wsagent{}", std::process::id());
    let (s, v) = n.http(
        "POST",
        "/workspaces",
        Some(json!({"workspaceId": ws, "repository": repo.to_str().unwrap(), "branch": "main"})),
    );
    assert_eq!(s, 202, "{v}");
    // Not ready yet (or failed): refused with the workspace's state, never
    // run on the host.
    let mut w = Value::Null;
    assert!(
        wait_for(Duration::from_secs(180), || {
            w = n.http("GET", &format!("/workspaces/{ws}"), None).1;
            w["status"] == "ready" || w["status"] == "failed"
        }),
        "workspace not ready: {w}"
    );
    assert_eq!(w["status"], "ready", "{w}");
    let container = w["container"].as_str().unwrap().to_string();
    let folder = w["workspaceFolder"].as_str().unwrap().to_string();
    let o = Command::new("docker")
        .args([
            "cp",
            sh_agent().to_str().unwrap(),
            &format!("{container}:/tmp/acp-sh-agent.sh"),
        ])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "docker cp: {}",
        String::from_utf8_lossy(&o.stderr)
    );

    let (s, v) = n.http(
        "POST",
        &format!("/workspaces/{ws}/agent-sessions"),
        Some(json!({"agentType": "sh", "sessionId": "in-container"})),
    );
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["status"], "ready");
    assert_eq!(v["cwd"], folder.as_str(), "the workspace folder by default");
    let (s, v) = n.http(
        "POST",
        &format!("/workspaces/{ws}/agent-sessions/in-container/prompt?wait=true"),
        Some(json!({"prompt": "where"})),
    );
    assert_eq!(s, 200, "{v}");
    let (_, g) = n.http(
        "GET",
        &format!("/workspaces/{ws}/agent-sessions/in-container"),
        None,
    );
    assert_eq!(
        g["transcript"][1]["text"],
        format!("where: dir={folder} uid=1000 readme=readme of the workspace"),
        "{g}"
    );
    // A working directory outside the workspace folder is refused.
    let (s, v) = n.http(
        "POST",
        &format!("/workspaces/{ws}/agent-sessions"),
        Some(json!({"agentType": "sh", "cwd": "/etc"})),
    );
    assert_eq!(s, 400, "{v}");
    let (s, _) = n.http(
        "POST",
        &format!("/workspaces/{ws}/agent-sessions/in-container/stop"),
        None,
    );
    assert_eq!(s, 200);
    let (s, v) = n.http("DELETE", &format!("/workspaces/{ws}"), None);
    assert!(s < 300, "{s} {v}");
}
