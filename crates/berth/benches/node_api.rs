//! Node-API benchmark (seed 004), one run, side by side:
//! (a) keystroke-to-echo through `/terminal/ws` (TLS, JSON) against a
//!     direct process-API attach, on the same daemon, both to `cat` in a PTY;
//! (c) daemon RSS per idle WebSocket terminal over 200.
//! ((b), re-attach bytes against resending the whole ring, and output
//! throughput are not built yet.)
//!
//! `cargo bench -p berth --bench node_api` (needs `openssl` for the key).

mod common;

use base64::Engine;
use berth_client::{Client, StreamFrame};
use berth_wire::daemon::*;
use common::{rss_kib, start};
use futures_util::{SinkExt, StreamExt};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn jwks_server(jwk: Value) -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let body = json!({"keys": [jwk]}).to_string();
    std::thread::spawn(move || {
        for mut c in l.incoming().flatten() {
            let mut b = [0u8; 4096];
            let _ = c.read(&mut b);
            let _ = write!(
                c,
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

fn key(dir: &std::path::Path) -> (EncodingKey, Value) {
    let pem = dir.join("k.pem");
    let run = |a: &[&str]| Command::new("openssl").args(a).output().unwrap().stdout;
    use std::process::Command;
    run(&[
        "genpkey",
        "-algorithm",
        "ed25519",
        "-out",
        pem.to_str().unwrap(),
    ]);
    let der = run(&[
        "pkey",
        "-in",
        pem.to_str().unwrap(),
        "-pubout",
        "-outform",
        "DER",
    ]);
    let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&der[der.len() - 32..]);
    (
        EncodingKey::from_ed_pem(&std::fs::read(&pem).unwrap()).unwrap(),
        json!({"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "k"}),
    )
}

async fn connect(
    port: u16,
    q: &str,
    tls: &std::sync::Arc<tokio_rustls::rustls::ClientConfig>,
) -> Ws {
    let url = format!("wss://localhost:{port}{q}");
    tokio_tungstenite::connect_async_tls_with_config(
        url,
        None,
        false,
        Some(tokio_tungstenite::Connector::Rustls(tls.clone())),
    )
    .await
    .unwrap()
    .0
}

async fn next_json(ws: &mut Ws) -> Value {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => return serde_json::from_str(&t).unwrap(),
            Some(Ok(_)) => continue,
            other => panic!("the WebSocket ended: {other:?}"),
        }
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
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
    std::env::set_var("SHELL", "/bin/cat");
    let berth = std::path::PathBuf::from(env!("CARGO_BIN_EXE_berth"));
    let addr = format!("127.0.0.1:{port}");
    // The seed's ring size: 256 KiB.
    let d = start(
        "berth",
        &berth,
        &["daemon", "--node-api", &addr, "--backlog-kib", "256"],
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
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("state/berth/node-api/node-api-cert.pem");
    let tls = berth_daemon::tls::client_config(&cert).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // Typing speed stays under the 30 messages/s limit (pauses not timed).
    const N: usize = 100;

    // (a) keystroke to echo.
    let ws_lat = rt.block_on(async {
        let mut ws = connect(
            port,
            &format!("/terminal/ws?workspace=w&token={token}"),
            &tls,
        )
        .await;
        next_json(&mut ws).await; // session
        let mut v = Vec::new();
        for _ in 0..N {
            tokio::time::sleep(Duration::from_millis(40)).await;
            let t = Instant::now();
            ws.send(Message::Text(
                json!({"type": "input", "data": "x"}).to_string().into(),
            ))
            .await
            .unwrap();
            loop {
                let m = next_json(&mut ws).await;
                if m["type"] == "output" && m["data"].as_str().unwrap().contains('x') {
                    break;
                }
            }
            v.push(t.elapsed());
        }
        median(v)
    });
    let api_lat = {
        let mut c = Client::connect(&d.socket).unwrap();
        let id = c
            .spawn_pty(SpawnPtySessionRequest {
                argv: vec!["/bin/cat".into()],
                rows: 24,
                cols: 80,
                ..Default::default()
            })
            .unwrap()
            .session_id;
        let (_, mut s) = Client::connect(&d.socket)
            .unwrap()
            .attach_pty(AttachPtySessionRequest {
                session_id: id,
                rows: 24,
                cols: 80,
                ..Default::default()
            })
            .unwrap();
        let mut input = s.input().unwrap();
        let mut v = Vec::new();
        for _ in 0..N {
            let t = Instant::now();
            input
                .send(pty_input_frame::Frame::Input(b"x".to_vec()))
                .unwrap();
            loop {
                if let Some(StreamFrame::Pty(PtyStreamFrame {
                    frame: Some(pty_stream_frame::Frame::Output(b)),
                })) = s.next_frame().unwrap()
                {
                    if b.contains(&b'x') {
                        break;
                    }
                }
            }
            v.push(t.elapsed());
        }
        median(v)
    };
    println!("(a) keystroke to echo, median of {N}:");
    println!(
        "    /terminal/ws (TLS, JSON)   {:>8.1} µs",
        ws_lat.as_secs_f64() * 1e6
    );
    println!(
        "    process-API attach         {:>8.1} µs",
        api_lat.as_secs_f64() * 1e6
    );
    println!(
        "    ratio ws / process API     {:>8.2}x",
        ws_lat.as_secs_f64() / api_lat.as_secs_f64()
    );

    // (c) RSS per idle WebSocket terminal.
    let pid = d.child.id();
    let before = rss_kib(pid);
    let socks = rt.block_on(async {
        let mut v = Vec::new();
        for _ in 0..200 {
            let mut ws = connect(
                port,
                &format!("/terminal/ws?workspace=w&token={token}"),
                &tls,
            )
            .await;
            next_json(&mut ws).await;
            v.push(ws);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        v
    });
    let after = rss_kib(pid);
    println!("(c) daemon RSS: {before} KiB idle, {after} KiB with 200 idle WebSocket terminals: {:.1} KiB each", (after.saturating_sub(before)) as f64 / 200.0);
    drop(socks);
}
