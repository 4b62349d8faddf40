//! The node API (seed 004) end to end: a real `berth daemon --node-api`
//! over HTTPS (its self-signed certificate), tokens signed with real
//! Ed25519 and RSA keys (made by `openssl`) and checked against a local
//! JWKS server, and terminals driven over `/terminal/ws[/multi]`.

mod common;

use common::jwt::*;
use common::*;
use futures_util::{SinkExt, StreamExt};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio_tungstenite::tungstenite::{self, Message};

const ISSUER: &str = "https://cp.test";
const WS: &str = "ws-1";

fn claims(aud: &str) -> Value {
    json!({"iss": ISSUER, "aud": aud, "sub": "user-1", "workspace": WS, "node": "node-1",
           "iat": now(), "exp": now() + 600})
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A daemon serving the node API on a loopback port.
struct Node {
    d: Daemon,
    port: u16,
    rt: tokio::runtime::Runtime,
    args: Vec<String>,
    vars: Vec<(String, String)>,
}

impl Node {
    fn start(jwks: &JwksServer, extra: &[&str], env: &[(&str, &str)]) -> Node {
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let mut args = vec!["--node-api", addr.as_str()];
        args.extend_from_slice(extra);
        let mut d = Daemon::unstarted(&args);
        let url = jwks.url();
        let mut vars = vec![
            ("CONTROL_PLANE_URL", ISSUER),
            ("JWKS_ENDPOINT", url.as_str()),
            ("NODE_ID", "node-1"),
            ("SHELL", "/bin/sh"),
        ];
        vars.extend_from_slice(env);
        d.spawn_with_env(&args, &vars);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let n = Node {
            d,
            port,
            rt,
            args: args.iter().map(|s| s.to_string()).collect(),
            vars: vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        n.wait_listening();
        n
    }

    /// Kills the daemon (-9) and starts it again on the same state.
    fn restart(&mut self) {
        self.d.kill9();
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        let vars: Vec<(&str, &str)> = self
            .vars
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        self.d.spawn_with_env(&args, &vars);
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

    fn cert(&self) -> PathBuf {
        self.d.state_dir().join("berth/node-api/node-api-cert.pem")
    }

    fn tls(&self) -> Arc<tokio_rustls::rustls::ClientConfig> {
        berth_daemon::tls::client_config(&self.cert()).unwrap()
    }

    /// GET over HTTPS: (status, body).
    fn get(&self, path: &str) -> (u16, String) {
        self.get_with(path, "")
    }

    /// GET with extra header lines (each ending in CRLF).
    fn get_with(&self, path: &str, headers: &str) -> (u16, String) {
        let (status, _, body) = self.get_full(path, headers);
        (status, body)
    }

    /// GET: (status, header block, body).
    fn get_full(&self, path: &str, headers: &str) -> (u16, String, String) {
        let headers = headers.to_string();
        let tls = self.tls();
        let port = self.port;
        let path = path.to_string();
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
            s.write_all(
                format!(
                    "GET {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n{headers}\r\n"
                )
                .as_bytes(),
            )
            .await
            .unwrap();
            let mut out = Vec::new();
            let _ = s.read_to_end(&mut out).await;
            let text = String::from_utf8_lossy(&out).into_owned();
            let status: u16 = text.split_whitespace().nth(1).unwrap().parse().unwrap();
            let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
            (status, head.to_string(), body.to_string())
        })
    }

    /// Opens a terminal WebSocket; `Err((status, body))` if refused.
    fn ws(&self, path_and_query: &str) -> Result<Sock, (u16, String)> {
        let url = format!("wss://localhost:{}{path_and_query}", self.port);
        let tls = self.tls();
        self.rt.block_on(async move {
            let r = tokio_tungstenite::connect_async_tls_with_config(
                url,
                None,
                false,
                Some(tokio_tungstenite::Connector::Rustls(tls)),
            )
            .await;
            match r {
                Ok((ws, _)) => Ok(Sock { ws }),
                Err(tungstenite::Error::Http(resp)) => Err((
                    resp.status().as_u16(),
                    String::from_utf8_lossy(resp.body().as_deref().unwrap_or(&[])).into_owned(),
                )),
                Err(e) => panic!("websocket: {e}"),
            }
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

    /// Next JSON message (pings skipped); `None` at close.
    fn next(&mut self, rt: &tokio::runtime::Runtime) -> Option<Value> {
        rt.block_on(async {
            loop {
                match tokio::time::timeout(Duration::from_secs(15), self.ws.next()).await {
                    Err(_) => panic!("no message within 15 s"),
                    Ok(None) | Ok(Some(Err(_))) => return None,
                    Ok(Some(Ok(Message::Text(t)))) => {
                        return Some(serde_json::from_str(&t).unwrap())
                    }
                    Ok(Some(Ok(Message::Close(f)))) => {
                        return Some(
                            json!({"type": "__close", "code": f.map(|f| u16::from(f.code))}),
                        )
                    }
                    Ok(Some(Ok(_))) => continue,
                }
            }
        })
    }

    /// Messages until one of `kind` (returned), collecting output text.
    fn until(&mut self, rt: &tokio::runtime::Runtime, kind: &str, out: &mut String) -> Value {
        loop {
            let m = self
                .next(rt)
                .unwrap_or_else(|| panic!("closed before {kind}"));
            if m["type"] == "output" || m["type"] == "scrollback" {
                out.push_str(m["data"].as_str().unwrap_or(""));
            }
            if m["type"] == kind {
                return m;
            }
        }
    }

    /// Output until `needle` appears; returns (all text, last offset).
    fn output_until(&mut self, rt: &tokio::runtime::Runtime, needle: &str) -> (String, u64) {
        let mut text = String::new();
        let mut off = 0;
        while !text.contains(needle) {
            let m = self
                .next(rt)
                .unwrap_or_else(|| panic!("closed before {needle:?}; got {text:?}"));
            if m["type"] == "output" || m["type"] == "scrollback" {
                text.push_str(m["data"].as_str().unwrap_or(""));
                off = m["offset"].as_u64().unwrap_or(off);
            }
        }
        (text, off)
    }
}

fn setup() -> (tempfile::TempDir, Key, Key, JwksServer) {
    let keys = tempfile::tempdir().unwrap();
    let ed = ed25519(keys.path(), "ed-1");
    let rs = rsa(keys.path(), "rs-1");
    let jwks = JwksServer::start(&[&ed, &rs]);
    (keys, ed, rs, jwks)
}

#[test]
fn health_answers_without_auth_with_system_facts() {
    let (_k, _ed, _rs, jwks) = setup();
    let n = Node::start(&jwks, &[], &[]);
    let (status, body) = n.get("/health");
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "healthy");
    assert!(v["version"].is_string());
    assert!(v["uptime"].is_u64());
    assert!(v["system"]["cpuCount"].as_u64().unwrap() >= 1);
    assert!(v["system"]["memory"]["totalBytes"].as_u64().unwrap() > 0);
    assert!(v["system"]["disk"]["availableBytes"].is_u64());
    // The self-signed certificate is kept for the next start.
    assert!(n.cert().exists());
}

#[test]
fn every_bad_token_is_refused_with_a_json_reason() {
    let (keys, ed, rs, jwks) = setup();
    let n = Node::start(&jwks, &[], &[]);
    let path = |t: &str| format!("/terminal/ws/multi?workspace={WS}&token={t}");
    // Good tokens, both algorithms.
    assert!(n
        .ws(&path(&sign(&ed, &claims("workspace-terminal"))))
        .is_ok());
    assert!(n
        .ws(&path(&sign(&rs, &claims("workspace-terminal"))))
        .is_ok());

    let refused = |t: String, status: u16, words: &str| {
        let Err((s, body)) = n.ws(&path(&t)) else {
            panic!("accepted: {words}")
        };
        assert_eq!(s, status, "{words}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("not JSON: {body}"));
        assert!(
            v["reason"].as_str().unwrap().contains(words),
            "expected {words:?} in {body}"
        );
    };
    // alg: none.
    let none = format!(
        "{}.{}.",
        b64(br#"{"alg":"none","typ":"JWT","kid":"ed-1"}"#),
        b64(claims("workspace-terminal").to_string().as_bytes())
    );
    refused(none, 401, "algorithm");
    // HS256 keyed with the RSA public key (the classic confusion).
    let mut h = Header::new(Algorithm::HS256);
    h.kid = Some("rs-1".into());
    let hs = jsonwebtoken::encode(
        &h,
        &claims("workspace-terminal"),
        &EncodingKey::from_secret(rs.jwk["n"].as_str().unwrap().as_bytes()),
    )
    .unwrap();
    refused(hs, 401, "HS256");
    refused(sign(&ed, &claims("node-management")), 401, "audience");
    let mut c = claims("workspace-terminal");
    c["iss"] = json!("https://evil.test");
    refused(sign(&ed, &c), 401, "issuer");
    let mut c = claims("workspace-terminal");
    c["exp"] = json!(now() - 3600);
    refused(sign(&ed, &c), 401, "expired");
    let mut c = claims("workspace-terminal");
    c["nbf"] = json!(now() + 3600);
    refused(sign(&ed, &c), 401, "not valid yet");
    let stranger = ed25519(keys.path(), "ed-unknown");
    refused(
        sign(&stranger, &claims("workspace-terminal")),
        401,
        "not in the control plane's JWKS",
    );
    // A key of the set signing as the other algorithm's kid.
    let mut forged = Header::new(Algorithm::EdDSA);
    forged.kid = Some("rs-1".into());
    refused(
        jsonwebtoken::encode(&forged, &claims("workspace-terminal"), &ed.enc).unwrap(),
        401,
        "RS256 key",
    );
    // Right signature, other workspace: 403.
    let mut c = claims("workspace-terminal");
    c["workspace"] = json!("ws-other");
    refused(sign(&ed, &c), 403, "workspace");
    // No token at all.
    let Err((s, _)) = n.ws(&format!("/terminal/ws/multi?workspace={WS}")) else {
        panic!()
    };
    assert_eq!(s, 401);
    // Unknown key ids refetch the JWKS at most once per interval.
    let before = jwks.hits.load(Ordering::SeqCst);
    for i in 0..5 {
        let k = ed25519(keys.path(), &format!("ed-x{i}"));
        let _ = n.ws(&path(&sign(&k, &claims("workspace-terminal"))));
    }
    assert!(
        jwks.hits.load(Ordering::SeqCst) - before <= 1,
        "JWKS fetched per unknown kid"
    );
}

#[test]
fn a_rotated_key_is_fetched_on_its_first_token() {
    let (keys, ed, _rs, jwks) = setup();
    let n = Node::start(&jwks, &[], &[("JWKS_REFRESH_MIN_INTERVAL", "0s")]);
    let path = |t: &str| format!("/terminal/ws/multi?workspace={WS}&token={t}");
    assert!(n
        .ws(&path(&sign(&ed, &claims("workspace-terminal"))))
        .is_ok());
    let fresh = ed25519(keys.path(), "ed-2");
    jwks.set(&[&ed, &fresh]);
    assert!(n
        .ws(&path(&sign(&fresh, &claims("workspace-terminal"))))
        .is_ok());
}

#[test]
fn tabs_over_multi_every_message_type() {
    let (_k, ed, _rs, jwks) = setup();
    let n = Node::start(&jwks, &[], &[]);
    let rt = &n.rt;
    let tok = sign(&ed, &claims("workspace-terminal"));
    let mut s = n
        .ws(&format!("/terminal/ws/multi?workspace={WS}&token={tok}"))
        .unwrap();
    s.send(rt, json!({"type": "ping"}));
    assert_eq!(s.next(rt).unwrap()["type"], "pong");
    s.send(
        rt,
        json!({"type": "create_session", "sessionId": "bad id!", "rows": 24, "cols": 80}),
    );
    let e = s.next(rt).unwrap();
    assert_eq!(e["type"], "error");
    assert!(e["error"].as_str().unwrap().contains("invalid"), "{e}");
    s.send(rt, json!({"type": "create_session", "sessionId": "t1", "rows": 24, "cols": 80, "name": "one", "workDir": "/tmp"}));
    let c = s.next(rt).unwrap();
    assert_eq!(c["type"], "session_created");
    assert_eq!(c["workingDirectory"], "/tmp");
    s.send(
        rt,
        json!({"type": "input", "sessionId": "t1", "data": "echo hi-$((6*7))\n"}),
    );
    s.output_until(rt, "hi-42");
    s.send(
        rt,
        json!({"type": "resize", "sessionId": "t1", "rows": 30, "cols": 100}),
    );
    s.send(
        rt,
        json!({"type": "input", "sessionId": "t1", "data": "stty size\n"}),
    );
    s.output_until(rt, "30 100");
    s.send(
        rt,
        json!({"type": "rename_session", "sessionId": "t1", "name": "renamed"}),
    );
    let mut junk = String::new();
    let r = s.until(rt, "session_renamed", &mut junk);
    assert_eq!(r["name"], "renamed");
    s.send(rt, json!({"type": "create_session", "sessionId": "t2"}));
    s.until(rt, "session_created", &mut junk);
    s.send(rt, json!({"type": "list_sessions"}));
    let l = s.until(rt, "session_list", &mut junk);
    let list = l["sessions"].as_array().unwrap();
    assert_eq!(list.len(), 2, "{l}");
    assert_eq!(list[0]["sessionId"], "t1");
    assert_eq!(list[0]["name"], "renamed");
    assert_eq!(list[0]["status"], "running");
    assert!(list[0]["createdAt"].as_str().unwrap().ends_with('Z'));
    // The browser terminal is an engine session berth's CLI lists.
    let engine_id = list[0]["engineSessionId"].as_str().unwrap().to_string();
    let out = n.d.berth(&["sessions"]);
    assert!(stdout(&out).contains(&engine_id[..8]), "{}", stdout(&out));
    let out = n.d.berth(&["logs", &engine_id]);
    assert!(stdout(&out).contains("hi-42"), "{}", stdout(&out));
    s.send(rt, json!({"type": "close_session", "sessionId": "t2"}));
    let cl = s.until(rt, "session_closed", &mut junk);
    assert_eq!(cl["reason"], "user_requested");
    s.send(
        rt,
        json!({"type": "input", "sessionId": "t1", "data": "exit 3\n"}),
    );
    let cl = s.until(rt, "session_closed", &mut junk);
    assert_eq!(cl["sessionId"], "t1");
    assert_eq!(cl["reason"], "process_exit");
    assert_eq!(cl["exitCode"], 3);
    s.send(rt, json!({"type": "nonsense"}));
    assert_eq!(s.until(rt, "error", &mut junk)["type"], "error");
    // Another user cannot reach this user's sessions.
    s.send(rt, json!({"type": "create_session", "sessionId": "mine"}));
    s.until(rt, "session_created", &mut junk);
    let mut other = claims("workspace-terminal");
    other["sub"] = json!("user-2");
    let mut o = n
        .ws(&format!(
            "/terminal/ws/multi?workspace={WS}&token={}",
            sign(&ed, &other)
        ))
        .unwrap();
    o.send(
        rt,
        json!({"type": "reattach_session", "sessionId": "mine", "rows": 24, "cols": 80}),
    );
    let e = o.until(rt, "error", &mut junk);
    assert!(e["error"].as_str().unwrap().contains("another user"), "{e}");
}

#[test]
fn single_mode_and_resume_by_offset() {
    let (_k, ed, _rs, jwks) = setup();
    let n = Node::start(&jwks, &[], &[]);
    let rt = &n.rt;
    let tok = sign(&ed, &claims("workspace-terminal"));
    let mut s = n
        .ws(&format!(
            "/terminal/ws?workspace={WS}&token={tok}&rows=24&cols=80"
        ))
        .unwrap();
    let first = s.next(rt).unwrap();
    assert_eq!(first["type"], "session");
    let id = first["sessionId"].as_str().unwrap().to_string();
    s.send(rt, json!({"type": "input", "data": "echo one-$((1+1))\n"}));
    let (_, offset) = s.output_until(rt, "one-2");
    // Drop the connection; the session keeps running and produces more.
    drop(s);
    let mut m = n
        .ws(&format!("/terminal/ws/multi?workspace={WS}&token={tok}"))
        .unwrap();
    m.send(
        rt,
        json!({"type": "input", "sessionId": id, "data": "echo two-$((1+2))\n"}),
    );
    std::thread::sleep(Duration::from_millis(500));
    m.send(rt, json!({"type": "reattach_session", "sessionId": id, "rows": 24, "cols": 80, "offset": offset}));
    let mut text = String::new();
    let r = m.until(rt, "session_reattached", &mut text);
    assert_eq!(r["shell"], "/bin/sh");
    let sb = m.until(rt, "scrollback", &mut text);
    let data = sb["data"].as_str().unwrap();
    // Only what it missed: the second command, not the first again.
    assert!(!data.contains("one-2"), "resent old output: {data:?}");
    assert_eq!(sb["screen"], false);
    if !data.contains("two-3") {
        m.output_until(rt, "two-3");
    }
}

/// Issue 21, item 5: a replay by offset ended where the program's last
/// write did, inside `€`, and the client got U+FFFD twice.
#[test]
fn a_replay_that_ends_inside_a_character_does_not_cut_it() {
    let (_k, ed, _rs, jwks) = setup();
    let n = Node::start(&jwks, &[], &[]);
    let rt = &n.rt;
    let tok = sign(&ed, &claims("workspace-terminal"));
    let mut s = n
        .ws(&format!(
            "/terminal/ws?workspace={WS}&token={tok}&rows=24&cols=80"
        ))
        .unwrap();
    let first = s.next(rt).unwrap();
    let id = first["sessionId"].as_str().unwrap().to_string();
    s.send(
        rt,
        json!({"type": "input", "data": "printf '%s\\342\\202' M$((2+3)); sleep 2; printf '\\254%s\\n' E$((4+4))\n"}),
    );
    let (_, offset) = s.output_until(rt, "M5");
    drop(s);
    let mut m = n
        .ws(&format!("/terminal/ws/multi?workspace={WS}&token={tok}"))
        .unwrap();
    m.send(rt, json!({"type": "reattach_session", "sessionId": id, "rows": 24, "cols": 80, "offset": offset}));
    let mut text = String::new();
    m.until(rt, "session_reattached", &mut text);
    let (text, _) = m.output_until(rt, "E8");
    assert!(!text.contains('\u{fffd}'), "{text:?}");
    assert!(text.contains("€E8"), "{text:?}");
}

#[test]
fn an_offset_that_left_the_ring_gets_the_screen() {
    let (_k, ed, _rs, jwks) = setup();
    // A 1 KiB ring wraps at once.
    let n = Node::start(&jwks, &["--backlog-kib", "1"], &[]);
    let rt = &n.rt;
    let tok = sign(&ed, &claims("workspace-terminal"));
    let mut m = n
        .ws(&format!("/terminal/ws/multi?workspace={WS}&token={tok}"))
        .unwrap();
    m.send(
        rt,
        json!({"type": "create_session", "sessionId": "w", "rows": 24, "cols": 80}),
    );
    let mut t = String::new();
    m.until(rt, "session_created", &mut t);
    m.send(rt, json!({"type": "input", "sessionId": "w", "data": "echo mark; i=0; while [ $i -lt 300 ]; do echo line-$i; i=$((i+1)); done; echo DONE-$((2*5))\n"}));
    m.output_until(rt, "DONE-10");
    m.send(
        rt,
        json!({"type": "reattach_session", "sessionId": "w", "rows": 24, "cols": 80, "offset": 5}),
    );
    m.until(rt, "session_reattached", &mut t);
    let sb = m.until(rt, "scrollback", &mut t);
    assert_eq!(sb["screen"], true, "{sb}");
    let data = sb["data"].as_str().unwrap();
    assert!(data.contains("DONE-10"), "{data:?}");
    assert!(data.contains("line-299"));
    assert!(
        !data.contains("line-100"),
        "the screen holds only the last rows"
    );
}

#[test]
fn a_flood_of_messages_closes_with_1008() {
    let (_k, ed, _rs, jwks) = setup();
    let n = Node::start(&jwks, &[], &[]);
    let rt = &n.rt;
    let tok = sign(&ed, &claims("workspace-terminal"));
    let mut m = n
        .ws(&format!("/terminal/ws/multi?workspace={WS}&token={tok}"))
        .unwrap();
    for _ in 0..100 {
        // Sends may fail once the server has closed: that is the point.
        let msg = Message::Text(json!({"type": "ping"}).to_string().into());
        if rt.block_on(m.ws.send(msg)).is_err() {
            break;
        }
    }
    let mut code = None;
    while let Some(v) = m.next(rt) {
        if v["type"] == "__close" {
            code = v["code"].as_u64();
            break;
        }
    }
    assert_eq!(code, Some(1008));
}

#[test]
fn the_cookie_from_a_token_admits_the_next_connection() {
    let (_k, ed, _rs, jwks) = setup();
    let n = Node::start(&jwks, &[], &[]);
    let tok = sign(&ed, &claims("workspace-terminal"));
    let url = format!(
        "wss://localhost:{}/terminal/ws/multi?workspace={WS}&token={tok}",
        n.port
    );
    let tls = n.tls();
    let cookie = n.rt.block_on(async {
        let (_, resp) = tokio_tungstenite::connect_async_tls_with_config(
            url,
            None,
            false,
            Some(tokio_tungstenite::Connector::Rustls(tls.clone())),
        )
        .await
        .unwrap();
        resp.headers()["set-cookie"].to_str().unwrap().to_string()
    });
    assert!(cookie.starts_with(&format!("vm_session_{WS}=")), "{cookie}");
    for attr in ["HttpOnly", "Secure", "SameSite", "Max-Age=86400"] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    let pair = cookie.split(';').next().unwrap().to_string();
    use tungstenite::client::IntoClientRequest;
    let mut req = format!(
        "wss://localhost:{}/terminal/ws/multi?workspace={WS}",
        n.port
    )
    .into_client_request()
    .unwrap();
    req.headers_mut().insert("cookie", pair.parse().unwrap());
    n.rt.block_on(async {
        tokio_tungstenite::connect_async_tls_with_config(
            req,
            None,
            false,
            Some(tokio_tungstenite::Connector::Rustls(tls)),
        )
        .await
        .expect("the cookie admits");
    });
}

#[test]
fn tabs_are_listed_and_survive_a_daemon_restart() {
    let (_k, ed, _rs, jwks) = setup();
    let mut n = Node::start(&jwks, &[], &[]);
    let tok = sign(&ed, &claims("workspace-terminal"));
    {
        let rt = &n.rt;
        let mut m = n
            .ws(&format!("/terminal/ws/multi?workspace={WS}&token={tok}"))
            .unwrap();
        let mut t = String::new();
        for (id, name) in [("a", "first"), ("b", "second")] {
            m.send(
                rt,
                json!({"type": "create_session", "sessionId": id, "name": name}),
            );
            m.until(rt, "session_created", &mut t);
        }
        m.send(
            rt,
            json!({"type": "rename_session", "sessionId": "b", "name": "logs"}),
        );
        m.until(rt, "session_renamed", &mut t);
    }
    let check = |n: &Node| {
        let mgmt = sign(&ed, &claims("node-management"));
        let (status, body) = n.get_with(
            &format!("/workspaces/{WS}/tabs"),
            &format!("authorization: Bearer {mgmt}\r\n"),
        );
        assert_eq!(status, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        let tabs = v["tabs"].as_array().unwrap();
        assert_eq!(tabs.len(), 2, "{v}");
        assert_eq!(tabs[0]["id"], "a");
        assert_eq!(tabs[0]["label"], "first");
        assert_eq!(tabs[0]["type"], "terminal");
        assert_eq!(tabs[0]["workspaceId"], WS);
        assert_eq!(tabs[1]["label"], "logs");
        assert_eq!(tabs[1]["sortOrder"], 1);
    };
    check(&n);
    // A browser's terminal token works too; a wrong workspace does not.
    let (status, _) = n.get(&format!("/workspaces/{WS}/tabs?token={tok}"));
    assert_eq!(status, 200);
    let (status, body) = n.get(&format!("/workspaces/other/tabs?token={tok}"));
    assert_eq!(status, 403, "{body}");
    n.restart();
    check(&n);
}

#[test]
fn logs_are_filtered_paged_and_missing_sources_reported() {
    let (_k, ed, _rs, jwks) = setup();
    let n = Node::start(&jwks, &[], &[]);
    let log = n.d.state_dir().join("berth/daemon.log");
    std::fs::write(
        &log,
        "2026-11-29T10:00:00.000Z  INFO berth: started\n\
         2026-11-29T10:00:01.000Z  WARN berth: hello-logs one\n\
         2026-11-29T10:00:02.000Z ERROR berth: hello-logs two\n\
         2026-11-29T10:00:03.000Z  INFO berth: hello-logs three\n",
    )
    .unwrap();
    let mgmt = sign(&ed, &claims("node-management"));
    let auth = format!("authorization: Bearer {mgmt}\r\n");
    let (status, body) = n.get_with("/logs?source=agent&search=hello-logs&limit=2", &auth);
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    let e = v["entries"].as_array().unwrap();
    assert_eq!(e.len(), 2, "{v}");
    assert_eq!(e[0]["message"], "berth: hello-logs three");
    assert_eq!(e[1]["level"], "error");
    assert_eq!(v["hasMore"], true);
    let cursor = v["nextCursor"].as_str().unwrap().to_string();
    let (_, body) = n.get_with(
        &format!("/logs?source=agent&search=hello-logs&limit=2&cursor={cursor}"),
        &auth,
    );
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["entries"][0]["message"], "berth: hello-logs one");
    assert_eq!(v["hasMore"], false);
    let (_, body) = n.get_with("/logs?source=agent&level=error", &auth);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["entries"].as_array().unwrap().len(), 1, "{v}");
    // cloud-init is not on this machine: reported, not an error.
    let (status, body) = n.get_with("/logs?source=cloud-init", &auth);
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    if !Path::new("/var/log/cloud-init.log").exists() {
        assert!(v["sources"]["cloud-init"]
            .as_str()
            .unwrap()
            .starts_with("unavailable"));
    }
    let (status, _) = n.get_with("/logs?source=floppy", &auth);
    assert_eq!(status, 400);
    let term = sign(&ed, &claims("workspace-terminal"));
    let (status, _) = n.get_with("/logs", &format!("authorization: Bearer {term}\r\n"));
    assert_eq!(status, 401);
}

#[test]
fn one_session_seen_from_attach_single_and_multi_at_once() {
    use berth_client::{Client, StreamFrame};
    use berth_wire::daemon::*;
    let (_k, ed, _rs, jwks) = setup();
    let n = Node::start(&jwks, &[], &[]);
    let rt = &n.rt;
    let tok = sign(&ed, &claims("workspace-terminal"));
    let mut m = n
        .ws(&format!("/terminal/ws/multi?workspace={WS}&token={tok}"))
        .unwrap();
    m.send(rt, json!({"type": "create_session", "sessionId": "shared"}));
    let mut t = String::new();
    let c = m.until(rt, "session_created", &mut t);
    let engine_id = c["engineSessionId"].as_str().unwrap().to_string();
    // The single-session route re-opens the same terminal.
    let mut s = n
        .ws(&format!(
            "/terminal/ws?workspace={WS}&token={tok}&sessionId=shared"
        ))
        .unwrap();
    assert_eq!(s.next(rt).unwrap()["sessionId"], "shared");
    // What `berth attach` does: a process-API attach.
    let (_, mut att) = Client::connect(&n.d.socket)
        .unwrap()
        .attach_pty(AttachPtySessionRequest {
            session_id: engine_id,
            rows: 24,
            cols: 80,
            ..Default::default()
        })
        .unwrap();
    att.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let mut keys = att.input().unwrap();
    keys.send(pty_input_frame::Frame::Input(
        b"echo from-attach-$((3*3))\n".to_vec(),
    ))
    .unwrap();
    m.output_until(rt, "from-attach-9");
    s.output_until(rt, "from-attach-9");
    m.send(
        rt,
        json!({"type": "input", "sessionId": "shared", "data": "echo from-web-$((4*4))\n"}),
    );
    s.output_until(rt, "from-web-16");
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).contains("from-web-16") {
        if let Some(StreamFrame::Pty(PtyStreamFrame {
            frame: Some(pty_stream_frame::Frame::Output(b)),
        })) = att.next_frame().unwrap()
        {
            seen.extend_from_slice(&b);
        }
    }
}

#[test]
fn the_log_stream_catches_up_then_follows() {
    let (_k, ed, _rs, jwks) = setup();
    let n = Node::start(&jwks, &[], &[]);
    let rt = &n.rt;
    let log = n.d.state_dir().join("berth/daemon.log");
    std::fs::write(&log, "2026-11-29T10:00:00.000Z  INFO berth: old-line\n").unwrap();
    let mgmt = sign(&ed, &claims("node-management"));
    let mut s = n
        .ws(&format!("/logs/stream?source=agent&token={mgmt}"))
        .unwrap();
    let first = s.next(rt).unwrap();
    assert_eq!(first["type"], "log");
    assert_eq!(first["entry"]["message"], "berth: old-line");
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    writeln!(f, "2026-11-29T10:00:05.000Z  WARN berth: new-line").unwrap();
    let next = s.next(rt).unwrap();
    assert_eq!(next["entry"]["message"], "berth: new-line");
    assert_eq!(next["entry"]["level"], "warn");
    let term = sign(&ed, &claims("workspace-terminal"));
    let Err((status, _)) = n.ws(&format!("/logs/stream?token={term}")) else {
        panic!("a terminal token streamed logs")
    };
    assert_eq!(status, 401);
}

#[test]
fn an_orphan_ends_after_the_grace_period_and_a_viewed_one_does_not() {
    let (_k, ed, _rs, jwks) = setup();
    let n = Node::start(&jwks, &[], &[("PTY_ORPHAN_GRACE_PERIOD", "1s")]);
    let rt = &n.rt;
    let tok = sign(&ed, &claims("workspace-terminal"));
    let url = format!("/terminal/ws/multi?workspace={WS}&token={tok}");
    let mut keep = n.ws(&url).unwrap();
    let mut t = String::new();
    keep.send(rt, json!({"type": "create_session", "sessionId": "kept"}));
    keep.until(rt, "session_created", &mut t);
    {
        let mut gone = n.ws(&url).unwrap();
        gone.send(rt, json!({"type": "create_session", "sessionId": "orphan"}));
        gone.until(rt, "session_created", &mut t);
    }
    let ids = |s: &mut Sock| -> Vec<String> {
        s.send(rt, json!({"type": "list_sessions"}));
        let mut junk = String::new();
        let l = s.until(rt, "session_list", &mut junk);
        l["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["sessionId"].as_str().unwrap().to_string())
            .collect()
    };
    // Polled at 4 per second, well under the 30 messages/s limit, so the
    // server never closes this client for flooding.
    assert!(
        wait_for(Duration::from_secs(15), || {
            std::thread::sleep(Duration::from_millis(250));
            ids(&mut keep) == ["kept"]
        }),
        "the orphan still runs: {:?}",
        ids(&mut keep)
    );
}

/// The header `name` (lower-case) of a header block.
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[test]
fn the_web_page_takes_a_token_once_then_its_cookie() {
    let (_k, ed, _rs, jwks) = setup();
    let n = Node::start(&jwks, &[], &[]);
    // No token, no cookie: a 401 page saying how to log in.
    let (status, _, body) = n.get_full("/", "");
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("?token="), "{body}");
    // A token for another audience is refused as everywhere else.
    let wrong = sign(&ed, &claims("node-management"));
    assert_eq!(n.get_full(&format!("/?token={wrong}"), "").0, 401);
    // The token sets the cookie and leaves the address bar.
    let tok = sign(&ed, &claims("workspace-terminal"));
    let (status, head, _) = n.get_full(&format!("/?token={tok}"), "");
    assert_eq!(status, 303, "{head}");
    assert_eq!(
        header(&head, "location"),
        Some(format!("/?workspace={WS}").as_str())
    );
    let cookie = header(&head, "set-cookie").expect("a cookie");
    for attr in ["HttpOnly", "Secure", "SameSite=Strict"] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    let pair = cookie.split(';').next().unwrap();
    // The cookie serves the page: xterm.js and berth's app, embedded.
    let (status, head, body) =
        n.get_full(&format!("/?workspace={WS}"), &format!("cookie: {pair}\r\n"));
    let built = status == 200;
    if std::env::var_os("BERTH_REQUIRE_PEERS").is_some() {
        assert!(
            built,
            "CI builds the page (npm ci in web/terminal): {status} {body}"
        );
    }
    if built {
        assert!(
            body.contains("/assets/xterm.js") && body.contains("/assets/app.js"),
            "{body}"
        );
        assert!(header(&head, "content-security-policy").is_some(), "{head}");
        for (asset, needle) in [
            ("xterm.js", "Terminal"),
            ("addon-fit.js", "FitAddon"),
            ("addon-web-links.js", "WebLinksAddon"),
            ("xterm.css", ".xterm"),
            ("app.js", "reattach_session"),
            ("app.css", ".tab"),
        ] {
            let (s, h, b) = n.get_full(&format!("/assets/{asset}"), "");
            assert_eq!(s, 200, "{asset}: {h}");
            assert!(b.contains(needle), "{asset} lacks {needle}");
        }
    } else {
        assert_eq!(status, 503, "{body}");
        assert!(body.contains("npm ci"), "{body}");
    }
    // The cookie is for its workspace only; unknown assets are 404.
    let (status, _, _) = n.get_full("/?workspace=other", &format!("cookie: {pair}\r\n"));
    assert_eq!(status, 401);
    assert_eq!(n.get_full("/assets/..%2Fapp.js", "").0, 404);
}

/// Runs `crates/berth/tests/browser/terminal.mjs` (chromium through
/// playwright-core) against a daemon with the node API.
#[test]
#[ignore = "needs chromium and npm packages: see README"]
fn the_web_page_in_chromium_types_resizes_tabs_reloads_and_resumes() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        dir.join("node_modules/playwright-core").is_dir(),
        "run `npm ci` in {}",
        dir.display()
    );
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "apt-get install chromium"
    );
    let (_k, ed, _rs, jwks) = setup();
    let n = Node::start(&jwks, &[], &[]);
    let tok = sign(&ed, &claims("workspace-terminal"));
    let out = Command::new("node")
        .arg(dir.join("terminal.mjs"))
        .env("BERTH_URL", format!("https://localhost:{}", n.port))
        .env("BERTH_TOKEN", &tok)
        .env(
            "BERTH_SCREENSHOT",
            std::env::temp_dir().join("berth-web-terminal.png"),
        )
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| {
            panic!(
                "no result from the browser script: {stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    let r: Value = serde_json::from_str(line).unwrap();
    assert_eq!(
        r["ok"],
        true,
        "failed at {}: {}\n{}\n{}\n{}",
        r["step"],
        r["error"],
        r["debug"],
        String::from_utf8_lossy(&out.stderr),
        n.d.log()
    );
    assert_eq!(r["landedOn"], format!("/?workspace={WS}"));
    assert_eq!(r["cookie"]["name"], format!("vm_session_{WS}"));
    assert_eq!(r["cookie"]["httpOnly"], true);
    assert_eq!(r["echo"], true);
    assert_ne!(r["sttyBefore"], r["sttyAfter"], "{r}");
    assert_eq!(r["paste"], true);
    assert_eq!(r["secondTab"], true);
    assert_eq!(r["renamed"], true);
    for (id, same) in r["reloadSame"].as_object().unwrap() {
        assert_eq!(
            same,
            &json!(true),
            "tab {id} differs after reload: {}",
            r["reloadDiff"]
        );
    }
    assert_eq!(r["reloadSame"].as_object().unwrap().len(), 2);
    assert_eq!(r["activeAfterReload"], true);
    assert_eq!(r["namesAfterReload"][1], "build");
    assert_eq!(r["disconnected"], true, "the drop did not disconnect: {r}");
    assert_eq!(r["reconnected"], true);
    assert_eq!(r["missing"], json!([]), "lines lost across the drop: {r}");
    assert_eq!(
        r["doubled"],
        json!([]),
        "lines shown twice after the drop: {r}"
    );
    assert_eq!(r["closed"], true);
}

#[test]
fn replay_sends_at_most_pty_output_buffer_size_bytes() {
    let (_k, ed, _rs, jwks) = setup();
    // A 2 KiB replay limit; the engine's ring (1 MiB) keeps everything.
    let n = Node::start(&jwks, &[], &[("PTY_OUTPUT_BUFFER_SIZE", "2048")]);
    let rt = &n.rt;
    let tok = sign(&ed, &claims("workspace-terminal"));
    let mut m = n
        .ws(&format!("/terminal/ws/multi?workspace={WS}&token={tok}"))
        .unwrap();
    m.send(
        rt,
        json!({"type": "create_session", "sessionId": "b", "rows": 24, "cols": 80}),
    );
    let mut t = String::new();
    m.until(rt, "session_created", &mut t);
    m.send(rt, json!({"type": "input", "sessionId": "b", "data": "i=0; while [ $i -lt 400 ]; do echo row-$i; i=$((i+1)); done; echo END-$((3*3))\n"}));
    let (_, end) = m.output_until(rt, "END-9");
    // A reload (no offset) after ~4 KiB of output: the screen, not the bytes.
    m.send(
        rt,
        json!({"type": "reattach_session", "sessionId": "b", "rows": 24, "cols": 80}),
    );
    m.until(rt, "session_reattached", &mut t);
    let sb = m.until(rt, "scrollback", &mut t);
    assert_eq!(sb["screen"], true, "{sb}");
    assert!(sb["data"].as_str().unwrap().contains("row-399"));
    assert!(!sb["data"].as_str().unwrap().contains("row-100"));
    // Missing more than 2 KiB: the screen too.
    m.send(rt, json!({"type": "reattach_session", "sessionId": "b", "rows": 24, "cols": 80, "offset": end - 3000}));
    m.until(rt, "session_reattached", &mut t);
    let sb = m.until(rt, "scrollback", &mut t);
    assert_eq!(sb["screen"], true, "{sb}");
    // Missing less: exactly the missed bytes.
    m.send(rt, json!({"type": "reattach_session", "sessionId": "b", "rows": 24, "cols": 80, "offset": end - 1000}));
    m.until(rt, "session_reattached", &mut t);
    let sb = m.until(rt, "scrollback", &mut t);
    assert_eq!(sb["screen"], false, "{sb}");
    let sent = sb["data"].as_str().unwrap().len() as u64;
    assert_eq!(sent, sb["offset"].as_u64().unwrap() - (end - 1000), "{sb}");
    assert!((1000..2048).contains(&sent));
}

#[test]
fn the_log_stream_pushes_filtered_lines_of_a_file_that_appears_later() {
    let (_k, ed, _rs, jwks) = setup();
    let n = Node::start(&jwks, &[], &[]);
    let rt = &n.rt;
    let log = n.d.state_dir().join("berth/daemon.log");
    let _ = std::fs::remove_file(&log);
    let mgmt = sign(&ed, &claims("node-management"));
    let mut s = n
        .ws(&format!(
            "/logs/stream?source=agent&level=warn&search=DISK&token={mgmt}"
        ))
        .unwrap();
    // Let the stream start following before the file exists.
    std::thread::sleep(Duration::from_millis(300));
    std::fs::write(
        &log,
        "2026-11-29T11:00:00.000Z  INFO berth: disk fine\n\
         2026-11-29T11:00:01.000Z  WARN berth: cpu hot\n\
         2026-11-29T11:00:02.000Z ERROR berth: disk full\n",
    )
    .unwrap();
    let m = s.next(rt).unwrap();
    assert_eq!(m["type"], "log");
    assert_eq!(m["entry"]["message"], "berth: disk full", "{m}");
    assert_eq!(m["entry"]["level"], "error");
    // A replaced (rotated) file is read from its start.
    std::fs::write(&log, "2026-11-29T11:00:03.000Z  WARN berth: disk again\n").unwrap();
    let m = s.next(rt).unwrap();
    assert_eq!(m["entry"]["message"], "berth: disk again", "{m}");
}
