//! Node-API benchmark (seed 004), one run, side by side:
//! (a) keystroke-to-echo through `/terminal/ws` (TLS, JSON) against a
//!     direct process-API attach, on the same daemon, both to `cat` in a PTY;
//! (b) output throughput to one browser-style client (`/terminal/ws/multi`,
//!     JSON text frames, each parsed) against this process reading a PTY
//!     directly, same command;
//! (c) re-attach after a reload with a full 256 KiB ring: bytes sent and
//!     time for berth's screen and for resume by offset, against resending
//!     the whole ring as the public agent does;
//! (d) daemon RSS per idle WebSocket terminal over 200.
//!
//! `cargo bench -p berth --bench node_api` (needs `openssl` for the key).

mod common;

use common::jwt::{jwks_server, key};

use berth_client::{Client, StreamFrame};
use berth_wire::daemon::*;
use common::{rss_kib, start};
use futures_util::{SinkExt, StreamExt};
use jsonwebtoken::{Algorithm, Header};
use serde_json::{json, Value};
use std::io::Read;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

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
    std::env::set_var("SHELL", "/bin/sh");
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
                                  // The terminal's shell becomes `cat`, as on the process-API side.
        ws.send(Message::Text(
            json!({"type": "input", "data": "exec cat\n"})
                .to_string()
                .into(),
        ))
        .await
        .unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(200), ws.next()).await {}
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

    // (b) output throughput.
    let work = tempfile::tempdir().unwrap();
    let cmd = workload(work.path(), THROUGHPUT_MIB);
    let direct = direct_throughput(&cmd);
    let (ws_rate, ws_bytes, repaints) = rt.block_on(ws_throughput(port, &token, &tls, &cmd));
    println!("(b) output throughput, {THROUGHPUT_MIB} MiB of text lines, one client:");
    println!(
        "    direct PTY read (the limit)  {:>8.1} MB/s",
        direct / 1e6
    );
    println!(
        "    /terminal/ws/multi (JSON)    {:>8.1} MB/s  ({:.2}x of direct; {ws_bytes} bytes in output messages, {repaints} screen repaints)",
        ws_rate / 1e6,
        ws_rate / direct
    );

    // (c) re-attach after a reload with a full ring.
    rt.block_on(reattach(port, &token, &tls, work.path()));

    // (d) RSS per idle WebSocket terminal.
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
    println!("(d) daemon RSS: {before} KiB idle, {after} KiB with 200 idle WebSocket terminals: {:.1} KiB each", (after.saturating_sub(before)) as f64 / 200.0);
    drop(socks);
}

/// Output size of (b).
const THROUGHPUT_MIB: usize = 32;

/// A 1 MiB file of 99-character lines and the command that writes it
/// `times` times, then a marker.
fn workload(dir: &std::path::Path, times: usize) -> String {
    let file = dir.join("chunk.txt");
    let line = "0123456789 the quick brown fox jumps over the lazy dog; berth node api throughput benchmark ....\n";
    let mut text = String::new();
    while text.len() < (1 << 20) {
        text.push_str(line);
    }
    std::fs::write(&file, &text[..1 << 20]).unwrap();
    format!(
        "i=0; while [ $i -lt {times} ]; do cat {}; i=$((i+1)); done; echo DONE-$((6*7))",
        file.display()
    )
}

/// The limit: this process reads a PTY running `cmd` directly.
fn direct_throughput(cmd: &str) -> f64 {
    use std::process::Command;
    let pair = berth_os::pty::open(berth_os::pty::WinSize { rows: 24, cols: 80 }).unwrap();
    let mut c = Command::new("/bin/sh");
    c.args(["-c", cmd]);
    berth_os::pty::attach_command(&mut c, &pair.slave).unwrap();
    {
        use nix::fcntl::{fcntl, FcntlArg, OFlag};
        let flags = fcntl(&pair.master, FcntlArg::F_GETFL).unwrap();
        let blocking = OFlag::from_bits_truncate(flags) - OFlag::O_NONBLOCK;
        fcntl(&pair.master, FcntlArg::F_SETFL(blocking)).unwrap();
    }
    let t = Instant::now();
    let mut child = c.spawn().unwrap();
    drop(c);
    drop(pair.slave);
    let mut f = std::fs::File::from(pair.master);
    let mut buf = vec![0u8; 64 * 1024];
    let mut n = 0u64;
    while let Ok(k) = f.read(&mut buf) {
        if k == 0 {
            break;
        }
        n += k as u64;
    }
    child.wait().unwrap();
    n as f64 / t.elapsed().as_secs_f64()
}

/// Opens a tab `id` on a new multi connection; returns the socket after
/// `session_created` and the prompt.
async fn tab(
    port: u16,
    token: &str,
    tls: &std::sync::Arc<tokio_rustls::rustls::ClientConfig>,
    id: &str,
) -> Ws {
    let mut ws = connect(
        port,
        &format!("/terminal/ws/multi?workspace=w&token={token}"),
        tls,
    )
    .await;
    send(
        &mut ws,
        json!({"type": "create_session", "sessionId": id, "rows": 24, "cols": 80}),
    )
    .await;
    while next_json(&mut ws).await["type"] != "session_created" {}
    tokio::time::sleep(Duration::from_millis(200)).await;
    while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(200), ws.next()).await {}
    ws
}

async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::Text(v.to_string().into())).await.unwrap();
}

/// (b) through `/terminal/ws/multi`: (bytes/s from the command to its
/// marker, output bytes received, screen repaints).
async fn ws_throughput(
    port: u16,
    token: &str,
    tls: &std::sync::Arc<tokio_rustls::rustls::ClientConfig>,
    cmd: &str,
) -> (f64, u64, u64) {
    let mut ws = tab(port, token, tls, "throughput").await;
    let t = Instant::now();
    send(
        &mut ws,
        json!({"type": "input", "sessionId": "throughput", "data": format!("{cmd}\n")}),
    )
    .await;
    let (mut bytes, mut repaints) = (0u64, 0u64);
    let mut tail = String::new();
    loop {
        let m = next_json(&mut ws).await;
        let data = m["data"].as_str().unwrap_or("");
        match m["type"].as_str() {
            Some("output") => bytes += data.len() as u64,
            Some("scrollback") => repaints += 1,
            _ => continue,
        }
        // The marker may straddle two messages.
        tail.push_str(data);
        if tail.contains("DONE-42") {
            break;
        }
        let keep = tail.len().saturating_sub(16);
        let cut = (keep..=tail.len())
            .find(|&i| tail.is_char_boundary(i))
            .unwrap_or(tail.len());
        tail.drain(..cut);
    }
    let secs = t.elapsed().as_secs_f64();
    send(
        &mut ws,
        json!({"type": "close_session", "sessionId": "throughput"}),
    )
    .await;
    (bytes as f64 / secs, bytes, repaints)
}

/// Sends `reattach_session` (with `offset` if given) on a fresh
/// connection, as a reloaded page does; (bytes of the replay, time to it).
async fn one_reattach(
    port: u16,
    token: &str,
    tls: &std::sync::Arc<tokio_rustls::rustls::ClientConfig>,
    offset: Option<u64>,
) -> (u64, Duration, bool) {
    let mut ws = connect(
        port,
        &format!("/terminal/ws/multi?workspace=w&token={token}"),
        tls,
    )
    .await;
    let mut msg = json!({"type": "reattach_session", "sessionId": "ring", "rows": 24, "cols": 80});
    if let Some(o) = offset {
        msg["offset"] = json!(o);
    }
    let t = Instant::now();
    send(&mut ws, msg).await;
    loop {
        let m = next_json(&mut ws).await;
        if m["type"] == "scrollback" {
            let d = t.elapsed();
            let screen = m["screen"] == true;
            return (m["data"].as_str().unwrap().len() as u64, d, screen);
        }
    }
}

/// (c) a session whose 256 KiB ring is full: reattach as berth's reloaded
/// page (no offset: the screen), after a short drop (offset 4 KiB back),
/// and as the public agent (the whole ring: the oldest offset it holds).
async fn reattach(
    port: u16,
    token: &str,
    tls: &std::sync::Arc<tokio_rustls::rustls::ClientConfig>,
    dir: &std::path::Path,
) {
    let mut ws = tab(port, token, tls, "ring").await;
    let cmd = workload(dir, 1);
    send(
        &mut ws,
        json!({"type": "input", "sessionId": "ring", "data": format!("{cmd}\n")}),
    )
    .await;
    let mut tail = String::new();
    loop {
        let m = next_json(&mut ws).await;
        tail.push_str(m["data"].as_str().unwrap_or(""));
        if tail.contains("DONE-42") {
            break;
        }
        if tail.len() > 64 {
            let cut = (tail.len() - 32..=tail.len())
                .find(|&i| tail.is_char_boundary(i))
                .unwrap();
            tail.drain(..cut);
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    send(&mut ws, json!({"type": "list_sessions"})).await;
    let end = loop {
        let m = next_json(&mut ws).await;
        if m["type"] == "session_list" {
            break m["sessions"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["sessionId"] == "ring")
                .unwrap()["offset"]
                .as_u64()
                .unwrap();
        }
    };
    drop(ws);
    const RUNS: usize = 15;
    let mut rows = Vec::new();
    for (label, offset) in [
        ("berth, reload (screen)", None),
        ("berth, resume 4 KiB back", Some(end - 4096)),
        // The ring holds 256 KiB; a little less than that is still in it.
        ("whole ring (public agent)", Some(end - 255 * 1024)),
    ] {
        let mut times = Vec::new();
        let mut bytes = 0;
        let mut screen = false;
        for _ in 0..RUNS {
            let (b, d, s) = one_reattach(port, token, tls, offset).await;
            times.push(d);
            bytes = b;
            screen = s;
        }
        rows.push((label, bytes, median(times), screen));
    }
    println!("(c) re-attach with a full 256 KiB ring ({end} bytes written), median of {RUNS}:");
    let (_, whole_b, whole_t, _) = rows[2];
    for (label, b, t, screen) in &rows {
        println!(
            "    {label:<28} {b:>8} bytes {:>8.2} ms  ({:.3}x bytes, {:.2}x time of the whole ring){}",
            t.as_secs_f64() * 1e3,
            *b as f64 / whole_b as f64,
            t.as_secs_f64() / whole_t.as_secs_f64(),
            if *screen { "  [screen]" } else { "" }
        );
    }
}
