//! Workspace benchmark (seed 004 "Container Manager"), one run, side by
//! side on the same repository and Docker Engine: POST /workspaces → the
//! `ready` callback for an image-based devcontainer, against
//! (a) the reference CLI, `git clone` + `devcontainer up` (npm
//!     `@devcontainers/cli`; `DEVCONTAINER=path` or `devcontainer` on PATH),
//! (b) a plain `docker` CLI doing the same steps (clone, volume, run, copy,
//!     three exec'd lifecycle commands).
//! Median of `ROUNDS` each; the containers are removed between rounds
//! (not timed).
//!
//! `DOCKER_HOST=unix:///run/berth-ci-docker/docker.sock cargo bench -p berth --bench workspaces`
//! (needs the `.ci/docker-up` engine and image, git and openssl).

mod common;

use common::jwt::key;

use common::start;
use jsonwebtoken::{Algorithm, Header};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const IMAGE: &str = "berth-test/busybox:latest";
const ROUNDS: usize = 5;

/// The control plane: JWKS on GET; every POST's path is sent on `tx`.
fn control_plane(jwk: Value, tx: mpsc::Sender<String>) -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let body = json!({"keys": [jwk]}).to_string();
    std::thread::spawn(move || {
        for mut c in l.incoming().flatten() {
            let mut got = Vec::new();
            let mut b = [0u8; 8192];
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                match c.read(&mut b) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&b[..n]),
                }
            }
            let head = String::from_utf8_lossy(&got).to_string();
            let mut it = head.split_whitespace();
            let (method, path) = (it.next().unwrap_or(""), it.next().unwrap_or(""));
            let reply = if method == "GET" { body.as_str() } else { "{}" };
            let _ = write!(
                c,
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{reply}",
                reply.len()
            );
            if method == "POST" {
                let _ = tx.send(path.to_string());
            }
        }
    });
    port
}

fn sh(cmd: &mut Command) -> String {
    let o = cmd.stdin(Stdio::null()).output().unwrap();
    assert!(
        o.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn docker(args: &[&str]) -> String {
    sh(Command::new("docker").args(args))
}

/// A bare repository holding the image-based devcontainer.json.
fn repo(root: &Path) -> PathBuf {
    let work = root.join("app");
    std::fs::create_dir_all(work.join(".devcontainer")).unwrap();
    std::fs::write(
        work.join(".devcontainer/devcontainer.json"),
        format!(
            r#"{{"image": "{IMAGE}", "containerEnv": {{"A": "1"}},
  "onCreateCommand": "echo onCreate >> /tmp/order",
  "postCreateCommand": "echo postCreate >> /tmp/order",
  "postStartCommand": "echo postStart >> /tmp/order"}}"#
        ),
    )
    .unwrap();
    std::fs::write(work.join("README.md"), "bench\n").unwrap();
    let git = |dir: &Path, a: &[&str]| {
        sh(Command::new("git")
            .args([
                "-c",
                "user.name=b",
                "-c",
                "user.email=b@b",
                "-c",
                "init.defaultBranch=main",
            ])
            .args(a)
            .current_dir(dir));
    };
    git(&work, &["init", "-q"]);
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-qm", "b"]);
    let bare = root.join("app.git");
    git(root, &["clone", "-q", "--bare", "app", "app.git"]);
    bare
}

/// One HTTPS request to the node API (status code).
fn request(
    rt: &tokio::runtime::Runtime,
    tls: &std::sync::Arc<tokio_rustls::rustls::ClientConfig>,
    port: u16,
    method: &str,
    path: &str,
    token: &str,
    body: &str,
) -> u16 {
    let req = format!(
        "{method} {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\nauthorization: Bearer {token}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let tls = tls.clone();
    rt.block_on(async move {
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
        String::from_utf8_lossy(&out)
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0)
    })
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// The `devcontainer` CLI to compare with, if one is installed.
fn devcontainer_cli() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("DEVCONTAINER") {
        return Some(p.into());
    }
    let ok = Command::new("devcontainer")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    ok.then(|| "devcontainer".into())
}

fn main() {
    let have_docker = std::env::var_os("DOCKER_HOST").is_some()
        && Command::new("docker")
            .args(["image", "inspect", IMAGE])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    if !have_docker {
        println!("workspaces bench skipped: needs DOCKER_HOST with {IMAGE} (run .ci/docker-up)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (enc, jwk) = key(tmp.path());
    let (tx, rx) = mpsc::channel();
    let cport = control_plane(jwk, tx);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::env::set_var("CONTROL_PLANE_URL", format!("http://127.0.0.1:{cport}"));
    std::env::set_var("JWT_ISSUER", "https://cp.bench");
    std::env::set_var("NODE_ID", "bench-node");
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
    let token = jsonwebtoken::encode(
        &h,
        &json!({"iss": "https://cp.bench", "aud": "node-management", "sub": "cp", "node": "bench-node", "exp": now + 3600}),
        &enc,
    )
    .unwrap();
    let cert = d
        .socket
        .ancestors()
        .nth(3)
        .unwrap()
        .join("state/berth/node-api/node-api-cert.pem");
    let tls = berth_daemon::tls::client_config(&cert).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let bare = repo(tmp.path());

    // berth: POST → ready callback.
    let mut berth_t = Vec::new();
    for i in 0..ROUNDS + 1 {
        let id = format!("bench{}-{i}", std::process::id());
        let body = json!({"workspaceId": id, "repository": bare, "branch": "main"}).to_string();
        let t = Instant::now();
        let code = request(&rt, &tls, port, "POST", "/workspaces", &token, &body);
        assert_eq!(code, 202);
        loop {
            let p = rx
                .recv_timeout(Duration::from_secs(120))
                .expect("no callback");
            assert!(!p.ends_with("/provisioning-failed"), "{id} failed");
            if p == format!("/api/workspaces/{id}/ready") {
                break;
            }
        }
        let dt = t.elapsed();
        // The first round warms the daemon's Docker connection; not counted.
        if i > 0 {
            berth_t.push(dt);
        }
        let order = docker(&["exec", &format!("berth-ws-{id}"), "cat", "/tmp/order"]);
        assert_eq!(order.lines().count(), 3, "{order}");
        assert_eq!(
            request(
                &rt,
                &tls,
                port,
                "DELETE",
                &format!("/workspaces/{id}"),
                &token,
                ""
            ),
            200
        );
    }

    // Plain docker CLI: the same steps, by hand.
    let mut plain_t = Vec::new();
    for i in 0..ROUNDS {
        let name = format!("bench-plain-{}-{i}", std::process::id());
        let dir = tmp.path().join(&name);
        let t = Instant::now();
        sh(Command::new("git")
            .args(["clone", "-q", "--branch", "main"])
            .arg(&bare)
            .arg(&dir));
        docker(&["volume", "create", &name]);
        docker(&[
            "run",
            "-d",
            "--name",
            &name,
            "-e",
            "A=1",
            "--mount",
            &format!("type=volume,source={name},target=/workspaces/app"),
            "-w",
            "/workspaces/app",
            "--entrypoint",
            "/bin/sh",
            IMAGE,
            "-c",
            "trap 'exit 0' TERM; while sleep 3600 & wait $!; do :; done",
        ]);
        docker(&[
            "cp",
            &format!("{}/.", dir.display()),
            &format!("{name}:/workspaces/app"),
        ]);
        for hook in ["onCreate", "postCreate", "postStart"] {
            docker(&[
                "exec",
                &name,
                "/bin/sh",
                "-c",
                &format!("echo {hook} >> /tmp/order"),
            ]);
        }
        plain_t.push(t.elapsed());
        docker(&["rm", "-f", &name]);
        docker(&["volume", "rm", &name]);
    }

    // The reference CLI.
    let mut dc_t = Vec::new();
    let cli = devcontainer_cli();
    if let Some(cli) = &cli {
        for i in 0..ROUNDS {
            let dir = tmp.path().join(format!("dc-{i}"));
            let t = Instant::now();
            sh(Command::new("git")
                .args(["clone", "-q", "--branch", "main"])
                .arg(&bare)
                .arg(&dir));
            let out = sh(Command::new(cli)
                .args(["up", "--workspace-folder"])
                .arg(&dir));
            dc_t.push(t.elapsed());
            let v: Value =
                serde_json::from_str(out.lines().last().unwrap_or("{}")).unwrap_or_default();
            assert_eq!(v["outcome"], "success", "{out}");
            let id = v["containerId"].as_str().unwrap().to_string();
            let order = docker(&["exec", &id, "cat", "/tmp/order"]);
            assert_eq!(order.lines().count(), 3, "{order}");
            docker(&["rm", "-f", &id]);
        }
    }

    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let b = median(berth_t);
    let p = median(plain_t);
    println!("workspace POST -> ready (image devcontainer, clone + container + 3 lifecycle commands), median of {ROUNDS}:");
    println!("  berth (node API, callback received)   {:8.1} ms", ms(b));
    println!(
        "  docker CLI by hand (same steps)       {:8.1} ms   berth/docker = {:.2}",
        ms(p),
        ms(b) / ms(p)
    );
    if dc_t.is_empty() {
        println!("  devcontainer up: not run (no `devcontainer` on PATH and no DEVCONTAINER=path; npm i -g @devcontainers/cli)");
    } else {
        let c = median(dc_t);
        println!(
            "  git clone + devcontainer up ({})   {:8.1} ms   berth/devcontainer = {:.2}",
            cli.unwrap().display(),
            ms(c),
            ms(b) / ms(c)
        );
    }
}
