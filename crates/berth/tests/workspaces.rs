//! Container workspaces (seed 004 "Container Manager") end to end: a real
//! `berth daemon --node-api`, a real Docker Engine at `DOCKER_HOST` with the
//! image `berth-test/busybox:latest` (`.ci/docker-up`), local bare git
//! repositories holding `.devcontainer/devcontainer.json`, tokens signed
//! with an Ed25519 key (openssl) checked against a local JWKS, and a local
//! control plane that records callbacks (and fails some on purpose).

mod common;

use common::docker::{docker, require_docker, IMAGE};
use common::jwt::{ed25519, now, Key};
use common::workspace::bare_repo;
use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

const ISSUER: &str = "https://cp.test";

fn key(dir: &Path) -> Key {
    ed25519(dir, "k1")
}

fn sign(k: &Key, claims: Value) -> String {
    common::jwt::sign(k, &claims)
}

fn mgmt_token(k: &Key) -> String {
    sign(
        k,
        json!({"iss": ISSUER, "aud": "node-management", "sub": "cp", "node": "node-1", "exp": now() + 600}),
    )
}

fn terminal_token(k: &Key, ws: &str) -> String {
    sign(
        k,
        json!({"iss": ISSUER, "aud": "workspace-terminal", "sub": "user-1", "workspace": ws, "exp": now() + 600}),
    )
}

/// One callback the control plane received.
#[derive(Debug, Clone)]
struct Call {
    path: String,
    auth: String,
    body: Value,
    answered: u16,
}

/// The control plane: serves the JWKS, records every POST; the first
/// `fail_first` POSTs to a path ending in `fail_suffix` get a 500.
struct ControlPlane {
    port: u16,
    calls: Arc<Mutex<Vec<Call>>>,
}

impl ControlPlane {
    fn start(k: &Key, fail_suffix: &'static str, fail_first: usize) -> Self {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let calls: Arc<Mutex<Vec<Call>>> = Arc::default();
        let jwks = json!({"keys": [k.jwk.clone()]}).to_string();
        let c2 = calls.clone();
        std::thread::spawn(move || {
            let mut failed = 0;
            for conn in l.incoming() {
                let Ok(mut conn) = conn else { continue };
                let mut got = Vec::new();
                let mut buf = [0u8; 8192];
                let head_end = loop {
                    if let Some(i) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                        break Some(i + 4);
                    }
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => break None,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                };
                let Some(head_end) = head_end else { continue };
                let head = String::from_utf8_lossy(&got[..head_end]).to_string();
                let header = |name: &str| {
                    head.lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
                        })
                        .unwrap_or_default()
                };
                let len: usize = header("content-length").parse().unwrap_or(0);
                while got.len() < head_end + len {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let mut first = head.split_whitespace();
                let (method, path) = (first.next().unwrap_or(""), first.next().unwrap_or(""));
                let (code, body) = if method == "GET" {
                    (200, jwks.clone())
                } else {
                    let fail = path.ends_with(fail_suffix) && failed < fail_first;
                    if fail {
                        failed += 1;
                    }
                    let code = if fail { 500 } else { 200 };
                    c2.lock().unwrap().push(Call {
                        path: path.to_string(),
                        auth: header("authorization"),
                        body: serde_json::from_slice(&got[head_end..]).unwrap_or(Value::Null),
                        answered: code,
                    });
                    (code, "{}".to_string())
                };
                let _ = write!(
                    conn,
                    "HTTP/1.1 {code} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        ControlPlane { port, calls }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    /// Waits for a successful callback to a path ending in `suffix`.
    fn wait_for(&self, suffix: &str, d: &Node) -> Call {
        let mut found = None;
        let ok = wait_for(Duration::from_secs(180), || {
            found = self
                .calls()
                .into_iter()
                .find(|c| c.path.ends_with(suffix) && c.answered == 200);
            found.is_some()
        });
        assert!(
            ok,
            "no {suffix} callback; got {:?}\ndaemon log tail: {}",
            self.calls(),
            d.d.log()
                .lines()
                .rev()
                .take(40)
                .collect::<Vec<_>>()
                .join("\n")
        );
        found.unwrap()
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A daemon serving the node API.
struct Node {
    d: Daemon,
    port: u16,
    rt: tokio::runtime::Runtime,
    env: Vec<(String, String)>,
}

impl Node {
    fn start(cp: &ControlPlane) -> Node {
        let port = free_port();
        let d = Daemon::unstarted(&[]);
        let url = cp.url();
        let jwks = format!("{url}/.well-known/jwks.json");
        let env: Vec<(String, String)> = [
            ("CONTROL_PLANE_URL", url.as_str()),
            ("JWKS_ENDPOINT", jwks.as_str()),
            ("JWT_ISSUER", ISSUER),
            ("NODE_ID", "node-1"),
            ("CALLBACK_TOKEN", "node-callback-token"),
            ("SHELL", "/bin/sh"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let mut n = Node {
            d,
            port,
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            env,
        };
        n.spawn();
        n
    }

    /// (Re)starts the daemon on the same state and port.
    fn spawn(&mut self) {
        let addr = format!("127.0.0.1:{}", self.port);
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        self.d.spawn_with_env(&["--node-api", &addr], &env);
        let (n, port) = (&*self, self.port);
        assert!(
            wait_for(Duration::from_secs(10), || std::net::TcpStream::connect((
                "127.0.0.1",
                port
            ))
            .is_ok()),
            "node API did not listen: {}",
            n.d.log()
        );
    }

    fn tls(&self) -> Arc<tokio_rustls::rustls::ClientConfig> {
        berth_daemon::tls::client_config(
            &self.d.state_dir().join("berth/node-api/node-api-cert.pem"),
        )
        .unwrap()
    }

    /// An HTTPS request: (status, JSON body).
    fn req(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
        let tls = self.tls();
        let port = self.port;
        let req = {
            let body = body.map(|b| b.to_string()).unwrap_or_default();
            format!(
                "{method} {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\nauthorization: Bearer {token}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            )
        };
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

    /// Opens `/terminal/ws` for workspace `ws`, sends `input`, and returns
    /// the output once it holds `needle`.
    fn terminal(&self, token: &str, ws: &str, input: &str, needle: &str) -> String {
        let url = format!(
            "wss://localhost:{}/terminal/ws?workspace={ws}&token={token}",
            self.port
        );
        let tls = self.tls();
        self.rt.block_on(async move {
            let (mut sock, _) = tokio_tungstenite::connect_async_tls_with_config(
                url,
                None,
                false,
                Some(tokio_tungstenite::Connector::Rustls(tls)),
            )
            .await
            .expect("terminal websocket");
            let mut text = String::new();
            let mut sent = false;
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            while !text.contains(needle) {
                let m = tokio::time::timeout_at(deadline, sock.next())
                    .await
                    .unwrap_or_else(|_| panic!("no {needle:?} in terminal output: {text:?}"));
                let Some(Ok(Message::Text(t))) = m else {
                    if m.is_none() {
                        panic!("terminal closed; output {text:?}");
                    }
                    continue;
                };
                let v: Value = serde_json::from_str(&t).unwrap();
                if v["type"] == "session" && !sent {
                    sock.send(Message::Text(
                        json!({"type": "input", "data": input}).to_string().into(),
                    ))
                    .await
                    .unwrap();
                    sent = true;
                }
                if v["type"] == "error" {
                    panic!("terminal error: {v}");
                }
                if v["type"] == "output" {
                    text.push_str(v["data"].as_str().unwrap_or(""));
                }
            }
            text
        })
    }
}

fn exec_in(container: &str, user: &str, cmd: &str) -> String {
    let (ok, out) = docker(&["exec", "-u", user, container, "sh", "-c", cmd]);
    assert!(ok, "docker exec {cmd}: {out}");
    out
}

#[test]
#[ignore = "needs a Docker Engine: see README"]
fn image_workspace_from_post_to_ready_terminal_and_delete() {
    require_docker();
    let tmp = tempfile::tempdir().unwrap();
    let k = key(tmp.path());
    // The ready callback fails twice, then succeeds.
    let cp = ControlPlane::start(&k, "/ready", 2);
    let n = Node::start(&cp);
    let host_mark = tmp.path().join("initialize-ran");
    let devcontainer = format!(
        r#"{{
  // JSONC: comments and trailing commas are fine.
  "name": "app",
  "image": "{IMAGE}",
  "remoteUser": "1000",
  "containerEnv": {{"FROM_CONTAINER_ENV": "c1"}},
  "remoteEnv": {{"FROM_REMOTE_ENV": "r1"}},
  "forwardPorts": [8080],
  "runArgs": ["--label", "extra=yes", "--gpus", "all"],
  "features": {{"ghcr.io/devcontainers/features/node:1": {{}}}},
  "initializeCommand": "touch {}",
  "onCreateCommand": "echo onCreate >> /tmp/order",
  "updateContentCommand": ["sh", "-c", "echo updateContent >> /tmp/order"],
  "postCreateCommand": {{"a": "echo postCreate >> /tmp/order"}},
  "postStartCommand": "echo postStart >> /tmp/order; echo served-$FROM_REMOTE_ENV > page.txt; httpd -p 8080 -h .",
  "postAttachCommand": "echo postAttach >> /tmp/order",
}}"#,
        host_mark.display()
    );
    let repo = bare_repo(
        tmp.path(),
        "app",
        &[
            (".devcontainer/devcontainer.json", &devcontainer),
            ("README.md", "hello from the repository\n"),
        ],
    );
    let ws = format!("wsimg{}", std::process::id());
    let mgmt = mgmt_token(&k);
    let body = json!({"workspaceId": ws, "repository": repo.to_str().unwrap(), "branch": "main", "callbackToken": "cb-tok-1"});
    let (code, v) = n.req("POST", "/workspaces", &mgmt, Some(body.clone()));
    assert_eq!(code, 202, "{v}");
    assert_eq!(v, json!({"workspaceId": ws, "status": "creating"}));
    // Without a node-management token: refused.
    let (code, _) = n.req("POST", "/workspaces", "not-a-token", Some(body.clone()));
    assert_eq!(code, 401);

    let ready = cp.wait_for("/ready", &n);
    assert_eq!(ready.path, format!("/api/workspaces/{ws}/ready"));
    assert_eq!(ready.auth, "Bearer cb-tok-1");
    assert_eq!(ready.body, json!({"status": "running"}));
    let ready_tries = cp
        .calls()
        .iter()
        .filter(|c| c.path.ends_with("/ready"))
        .count();
    assert_eq!(ready_tries, 3, "two failures, then the delivery");
    let creating = cp.calls();
    assert!(creating
        .iter()
        .any(|c| c.path.ends_with("/status") && c.body["status"] == "creating"));

    // Idempotent: the same workspace comes back.
    let (code, v) = n.req("POST", "/workspaces", &mgmt, Some(body));
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["status"], "ready");

    // `berth workspaces` lists it (table and JSON).
    let out =
        n.d.command(BERTH)
            .args(["workspaces", "--json"])
            .output()
            .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let row = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["workspace_id"] == ws.as_str())
        .cloned()
        .unwrap_or_else(|| panic!("{listed}"));
    assert_eq!(row["status"], "ready");
    assert_eq!(row["volume"], format!("berth-ws-{ws}"));
    let out = n.d.command(BERTH).arg("workspaces").output().unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.starts_with("WORKSPACE"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(&ws) && l.contains("ready")),
        "{table}"
    );

    // Lifecycle commands ran, in order, as the remote user.
    let container = format!("berth-ws-{ws}");
    assert!(
        host_mark.exists(),
        "initializeCommand did not run on the host"
    );
    let order = exec_in(&container, "0", "cat /tmp/order");
    assert_eq!(
        order.lines().collect::<Vec<_>>(),
        [
            "onCreate",
            "updateContent",
            "postCreate",
            "postStart",
            "postAttach"
        ]
    );
    assert_eq!(
        exec_in(&container, "0", "stat -c %u /tmp/order").trim(),
        "1000"
    );
    assert_eq!(
        exec_in(&container, "0", "echo $FROM_CONTAINER_ENV").trim(),
        "c1"
    );
    assert_eq!(
        exec_in(&container, "0", "cat /workspaces/app/README.md"),
        "hello from the repository\n"
    );
    let (_, labels) = docker(&[
        "inspect",
        "-f",
        "{{index .Config.Labels \"extra\"}}",
        &container,
    ]);
    assert_eq!(labels.trim(), "yes");

    // The record: the forwarded port and the import report.
    let (code, w) = n.req("GET", &format!("/workspaces/{ws}"), &mgmt, None);
    assert_eq!(code, 200, "{w}");
    let unsupported = w["unsupported"].to_string();
    assert!(unsupported.contains("features"), "{unsupported}");
    assert!(unsupported.contains("--gpus"), "{unsupported}");
    let host_port = w["ports"][0]["hostPort"].as_u64().unwrap() as u16;
    assert_eq!(w["ports"][0]["containerPort"], 8080);
    let page = {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", host_port)).unwrap();
        write!(s, "GET /page.txt HTTP/1.0\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    };
    assert!(page.contains("served-r1"), "{page}");

    // GET /containers lists it, running.
    let (code, cs) = n.req("GET", "/containers", &mgmt, None);
    assert_eq!(code, 200);
    let c = cs["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["workspaceId"] == ws.as_str())
        .cloned()
        .unwrap_or_else(|| panic!("{cs}"));
    assert_eq!(c["state"], "running");

    // A terminal of the workspace runs in its container, as the remote
    // user, in the workspace folder, with remoteEnv.
    let out = n.terminal(
        &terminal_token(&k, &ws),
        &ws,
        "echo \"U=$(id -u) D=$(pwd) E=$FROM_REMOTE_ENV\"\n",
        "U=1000 D=/workspaces/app E=r1",
    );
    assert!(out.contains("U=1000 D=/workspaces/app E=r1"), "{out}");

    // DELETE removes container, network and volume, and says so.
    let (code, v) = n.req("DELETE", &format!("/workspaces/{ws}"), &mgmt, None);
    assert_eq!(code, 200, "{v}");
    assert_eq!(v, json!({"success": true}));
    assert!(!docker(&["container", "inspect", &container]).0);
    assert!(!docker(&["network", "inspect", &container]).0);
    assert!(!docker(&["volume", "inspect", &container]).0);
    let deleted = cp.wait_for("/status", &n);
    assert!(
        cp.calls()
            .iter()
            .any(|c| c.body["status"] == "deleted" && c.path.ends_with(&format!("{ws}/status"))),
        "{deleted:?}"
    );
    let (code, _) = n.req("DELETE", &format!("/workspaces/{ws}"), &mgmt, None);
    assert_eq!(code, 404);
}

#[test]
#[ignore = "needs a Docker Engine: see README"]
fn dockerfile_workspace_builds_offline_and_a_bad_config_fails_clearly() {
    require_docker();
    let tmp = tempfile::tempdir().unwrap();
    let k = key(tmp.path());
    let cp = ControlPlane::start(&k, "/never", 0);
    let n = Node::start(&cp);
    let mgmt = mgmt_token(&k);
    let repo = bare_repo(
        tmp.path(),
        "built",
        &[
            (
                ".devcontainer/devcontainer.json",
                r#"{"build": {"dockerfile": "Dockerfile", "context": "..", "args": {"GREETING": "built-hello"}},
                    "remoteUser": "dev", "workspaceFolder": "/src",
                    "postCreateCommand": "cat /etc/greeting > made-by-postcreate"}"#,
            ),
            (
                ".devcontainer/Dockerfile",
                &format!(
                    "FROM {IMAGE}\nARG GREETING\nRUN echo $GREETING > /etc/greeting && echo 'dev:x:1001:1001::/home/dev:/bin/sh' >> /etc/passwd && mkdir -p /home/dev && chown 1001 /home/dev\n"
                ),
            ),
        ],
    );
    let ws = format!("wsbuild{}", std::process::id());
    let (code, v) = n.req(
        "POST",
        "/workspaces",
        &mgmt,
        Some(json!({"workspaceId": ws, "repository": repo.to_str().unwrap(), "branch": "main"})),
    );
    assert_eq!(code, 202, "{v}");
    let ready = cp.wait_for(&format!("{ws}/ready"), &n);
    // No callbackToken in the request: the node's CALLBACK_TOKEN.
    assert_eq!(ready.auth, "Bearer node-callback-token");
    let container = format!("berth-ws-{ws}");
    assert_eq!(
        exec_in(&container, "0", "cat /src/made-by-postcreate"),
        "built-hello\n"
    );
    assert_eq!(
        exec_in(&container, "0", "stat -c %U /src/made-by-postcreate").trim(),
        "dev"
    );
    let out = n.terminal(
        &terminal_token(&k, &ws),
        &ws,
        "echo \"W=$(id -un)@$(pwd)\"\n",
        "W=dev@/src",
    );
    assert!(out.contains("W=dev@/src"));
    // The volume survives with keepVolume.
    let (code, _) = n.req(
        "DELETE",
        &format!("/workspaces/{ws}?keepVolume=true"),
        &mgmt,
        None,
    );
    assert_eq!(code, 200);
    assert!(!docker(&["container", "inspect", &container]).0);
    assert!(docker(&["volume", "inspect", &container]).0);
    assert!(docker(&["volume", "rm", &container]).0);
    assert!(!docker(&["image", "inspect", &format!("{container}:latest")]).0);

    // A devcontainer.json that does not parse: a failed callback naming
    // the step, the file and the problem, with the log's tail.
    let bad = bare_repo(
        tmp.path(),
        "bad",
        &[(
            ".devcontainer.json",
            "{ \"image\": \"x\", \"forwardPorts\": [,] ",
        )],
    );
    let ws2 = format!("wsbad{}", std::process::id());
    let (code, _) = n.req(
        "POST",
        "/workspaces",
        &mgmt,
        Some(json!({"workspaceId": ws2, "repository": bad.to_str().unwrap(), "branch": "main", "callbackToken": "cb-2"})),
    );
    assert_eq!(code, 202);
    let failed = cp.wait_for(&format!("{ws2}/provisioning-failed"), &n);
    assert_eq!(failed.auth, "Bearer cb-2");
    assert_eq!(failed.body["step"], "config");
    let msg = failed.body["errorMessage"].as_str().unwrap();
    assert!(
        msg.contains(".devcontainer.json") && msg.contains("not valid JSONC"),
        "{msg}"
    );
    assert!(failed.body["logTail"]
        .as_str()
        .unwrap()
        .contains("step config"));
    let (_, w) = n.req("GET", &format!("/workspaces/{ws2}"), &mgmt, None);
    assert_eq!(w["status"], "failed");
    // Its terminals are refused with the reason, not opened on the host.
    let (code, _) = n.req("DELETE", &format!("/workspaces/{ws2}"), &mgmt, None);
    assert_eq!(code, 200);
}

#[test]
#[ignore = "needs a Docker Engine: see README"]
fn compose_workspace_runs_in_its_service_through_berths_compose_engine() {
    require_docker();
    let tmp = tempfile::tempdir().unwrap();
    let k = key(tmp.path());
    let cp = ControlPlane::start(&k, "/never", 0);
    let n = Node::start(&cp);
    let mgmt = mgmt_token(&k);
    let repo = bare_repo(
        tmp.path(),
        "composed",
        &[
            (
                ".devcontainer/devcontainer.json",
                r#"{"dockerComposeFile": ["compose.yml"], "service": "app",
                    "runServices": ["app", "side"],
                    "workspaceFolder": "/workspaces/composed",
                    "remoteEnv": {"WHO": "compose"},
                    "postCreateCommand": "cat README.md > /tmp/seen-by-postcreate"}"#,
            ),
            (
                ".devcontainer/compose.yml",
                &format!(
                    "services:\n  app:\n    image: {IMAGE}\n    command: [\"sleep\", \"100000\"]\n    volumes:\n      - ..:/workspaces/composed\n  side:\n    image: {IMAGE}\n    command: [\"sleep\", \"100000\"]\n"
                ),
            ),
            ("README.md", "composed readme\n"),
        ],
    );
    let ws = format!("wscomp{}", std::process::id());
    let (code, v) = n.req(
        "POST",
        "/workspaces",
        &mgmt,
        Some(json!({"workspaceId": ws, "repository": repo.to_str().unwrap(), "branch": "main"})),
    );
    assert_eq!(code, 202, "{v}");
    cp.wait_for(&format!("{ws}/ready"), &n);
    let (_, w) = n.req("GET", &format!("/workspaces/{ws}"), &mgmt, None);
    let container = w["container"].as_str().unwrap().to_string();
    assert_eq!(
        exec_in(&container, "0", "cat /tmp/seen-by-postcreate"),
        "composed readme\n"
    );
    let out = n.terminal(
        &terminal_token(&k, &ws),
        &ws,
        "echo \"P=$(pwd) W=$WHO\"\n",
        "P=/workspaces/composed W=compose",
    );
    assert!(out.contains("P=/workspaces/composed W=compose"));
    let (code, _) = n.req("DELETE", &format!("/workspaces/{ws}"), &mgmt, None);
    assert_eq!(code, 200);
    assert!(!docker(&["container", "inspect", &container]).0);
}

#[test]
#[ignore = "needs a Docker Engine: see README"]
fn a_restart_during_provisioning_resumes_and_tokens_stay_out_of_logs() {
    require_docker();
    let tmp = tempfile::tempdir().unwrap();
    let k = key(tmp.path());
    let cp = ControlPlane::start(&k, "/never", 0);
    let mut n = Node::start(&cp);
    let mgmt = mgmt_token(&k);
    let stamp = tmp.path().join("oncreate-runs");
    let repo = bare_repo(
        tmp.path(),
        "slow",
        &[(
            ".devcontainer.json",
            &format!(
                r#"{{"image": "{IMAGE}", "remoteUser": "1000",
                    "initializeCommand": "echo run >> {}",
                    "onCreateCommand": "sleep 3"}}"#,
                stamp.display()
            ),
        )],
    );
    let ws = format!("wsslow{}", std::process::id());
    let secret = "ghs_berthTestSecret0123456789";
    let (code, _) = n.req(
        "POST",
        "/workspaces",
        &mgmt,
        Some(json!({"workspaceId": ws, "repository": repo.to_str().unwrap(), "branch": "main", "gitToken": secret})),
    );
    assert_eq!(code, 202);
    assert!(
        wait_for(Duration::from_secs(120), || {
            n.req("GET", &format!("/workspaces/{ws}"), &mgmt, None).1["step"] == "onCreateCommand"
        }),
        "never reached onCreateCommand"
    );
    // A leftover from nowhere: labelled as a workspace of this daemon
    // that its store does not know.
    let owner = docker(&[
        "inspect",
        "-f",
        "{{index .Config.Labels \"berth.workspace.owner\"}}",
        &format!("berth-ws-{ws}"),
    ])
    .1
    .trim()
    .to_string();
    assert!(!owner.is_empty());
    let ghost = format!("berth-ghost-{}", std::process::id());
    let (ok, out) = docker(&[
        "run",
        "-d",
        "--name",
        &ghost,
        "--label",
        "berth.workspace=ghost",
        "--label",
        &format!("berth.workspace.owner={owner}"),
        IMAGE,
        "sleep",
        "100000",
    ]);
    assert!(ok, "{out}");
    // The daemon dies mid-provisioning, and comes back.
    n.d.kill9();
    n.spawn();
    cp.wait_for(&format!("{ws}/ready"), &n);
    assert!(
        !docker(&["container", "inspect", &ghost]).0,
        "the unknown workspace container was not removed at start"
    );
    let runs = std::fs::read_to_string(&stamp).unwrap();
    assert_eq!(runs.lines().count(), 2, "provisioning ran again: {runs:?}");
    let (_, w) = n.req("GET", &format!("/workspaces/{ws}"), &mgmt, None);
    assert_eq!(w["status"], "ready");
    assert!(w["log"].as_str().unwrap().contains("the daemon restarted"));

    // The git token: served to git in the container by the credential
    // helper, never in the container's config, the log, or the daemon's log.
    let container = format!("berth-ws-{ws}");
    let got = exec_in(
        &container,
        "1000",
        "printf 'protocol=https\\nhost=example.com\\n\\n' | /usr/local/bin/berth-git-credential get",
    );
    assert!(got.contains(&format!("password={secret}")), "{got}");
    assert_eq!(
        exec_in(&container, "1000", "echo $GIT_CONFIG_VALUE_0").trim(),
        "/usr/local/bin/berth-git-credential"
    );
    let (_, inspect) = docker(&["inspect", &container]);
    assert!(
        !inspect.contains(secret),
        "the token is in the container's config"
    );
    assert!(!w.to_string().contains(secret));
    assert!(
        !n.d.log().contains(secret),
        "the token is in the daemon's log"
    );
    let (code, _) = n.req("DELETE", &format!("/workspaces/{ws}"), &mgmt, None);
    assert_eq!(code, 200);
}
