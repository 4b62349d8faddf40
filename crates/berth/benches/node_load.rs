//! Node-API load (issue 21, item 4): many browser terminals
//! (`/terminal/ws`, TLS, JSON, a `workspace-terminal` JWT checked against a
//! local JWKS) on one daemon, each with its own session flooding output.
//!
//! Setup: `--clients` WebSockets, each opening a terminal whose shell
//! execs this program as a writer; the writer prints `READY-<tag>` and
//! waits for a line on its terminal.
//!
//! Phase 1 (idle): every client sends `--pings` `{"type":"ping"}`
//! messages, one at a time, `--gap-ms` apart, and times the `pong`.
//! Phase 2 (load): every client types `go`; its writer then prints
//! `--lines` numbered 100-byte lines, one every `--line-ms`, then an end
//! marker, while the client pings again. Checked: every ping answered;
//! every client received every line of its session in order (a client
//! that fell behind the ring would get a screen repaint instead: counted);
//! every client saw its end marker (none starved). Printed: p50/p99/max
//! of both phases and their ratio, the spread of the end-marker arrival,
//! and the daemon's RSS and descriptors (before, with the terminals, peak
//! under load, after the sessions ended).
//!
//! The bench sets `NODE_API_MAX_CONNECTIONS_PER_ADDRESS=0` for its daemon
//! (all clients come from 127.0.0.1) and raises its descriptor limit to
//! the hard one by re-running under `sh -c 'ulimit -n ...'`; the daemon
//! inherits both. Each client stays under the terminal's 30 messages/s.
//!
//! `cargo bench -p berth --bench node_load [-- --clients N --lines L
//! --line-ms MS --pings P --gap-ms MS]` (needs `openssl` for the key).

mod common;
use common::lines::LineCheck;

use common::jwt::{jwks_server, key};

use futures_util::{SinkExt, StreamExt};
use jsonwebtoken::{Algorithm, Header};
use serde_json::{json, Value};
use std::io::{BufRead, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Role: print `READY-<tag>`, wait for a line, then write `lines` numbered
/// lines of 100 bytes, one every `ms`, then `END-<tag>`; exit at end of
/// input.
fn writer(spec: &str) -> ! {
    let v: Vec<&str> = spec.split(',').collect();
    let (tag, lines, ms): (&str, usize, u64) = (v[0], v[1].parse().unwrap(), v[2].parse().unwrap());
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "READY-{tag}");
    let _ = out.flush();
    let mut stdin = std::io::stdin().lock();
    let mut go = String::new();
    if stdin.read_line(&mut go).map(|n| n == 0).unwrap_or(true) {
        std::process::exit(0);
    }
    let start = Instant::now();
    for n in 0..lines {
        let due = start + Duration::from_millis(ms * n as u64);
        if let Some(d) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
        let head = format!("{tag}:{n:06}:");
        let line = format!("{head}{}\n", "x".repeat(99 - head.len()));
        if out
            .write_all(line.as_bytes())
            .and_then(|_| out.flush())
            .is_err()
        {
            std::process::exit(0);
        }
    }
    let _ = writeln!(out, "END-{tag}");
    let _ = out.flush();
    let mut rest = String::new();
    while stdin.read_line(&mut rest).map(|n| n > 0).unwrap_or(false) {
        rest.clear();
    }
    std::process::exit(0);
}

fn num(name: &str, default: usize) -> usize {
    common::arg(name)
        .map(|v| v.parse().unwrap_or_else(|_| panic!("{name}: not a number")))
        .unwrap_or(default)
}

#[derive(Clone, Copy)]
struct Plan {
    clients: usize,
    lines: usize,
    line_ms: u64,
    pings: usize,
    gap: Duration,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    Wait,
    Idle,
    Load,
    Close,
}

#[derive(Default)]
struct Report {
    rtt: [Vec<f64>; 2],
    lines: usize,
    gaps: usize,
    /// Screen repaints during the load (the client fell behind the ring).
    repaints: usize,
    end_at: Option<Duration>,
    bytes: u64,
}

async fn send(ws: &mut futures_util::stream::SplitSink<Ws, Message>, v: Value) -> bool {
    ws.send(Message::Text(v.to_string().into())).await.is_ok()
}

#[allow(clippy::too_many_arguments)]
async fn client(
    i: usize,
    url: String,
    tls: Arc<tokio_rustls::rustls::ClientConfig>,
    plan: Plan,
    mut phase: tokio::sync::watch::Receiver<(Phase, Instant)>,
    gate: Arc<tokio::sync::Semaphore>,
    ready: Arc<AtomicUsize>,
    done: Arc<AtomicUsize>,
) -> Report {
    let tag = format!("c{i}");
    let ready_text = format!("READY-{tag}");
    let end_text = format!("END-{tag}");
    let mut r = Report::default();
    let mut permit = Some(gate.acquire_owned().await.unwrap());
    let (ws, _) = tokio_tungstenite::connect_async_tls_with_config(
        url,
        None,
        false,
        Some(tokio_tungstenite::Connector::Rustls(tls)),
    )
    .await
    .unwrap_or_else(|e| panic!("client {i}: {e}"));
    let (mut sink, mut stream) = ws.split();
    let exe = std::env::current_exe().unwrap();
    let mut started = false;
    let mut is_ready = false;
    let mut seen = String::new();
    let mut check = LineCheck::default();
    let mut outstanding: Option<Instant> = None;
    let mut sent = 0usize;
    let mut cur = Phase::Wait;
    let mut go_at = Instant::now();
    let mut finished_phase = false;
    let mut next_ping = tokio::time::Instant::now();
    loop {
        let ping_due = matches!(cur, Phase::Idle | Phase::Load)
            && !finished_phase
            && outstanding.is_none()
            && sent < plan.pings;
        tokio::select! {
            changed = phase.changed() => {
                if changed.is_err() { break; }
                let (p, at) = *phase.borrow_and_update();
                if p == Phase::Close { break; }
                if p != cur {
                    cur = p;
                    go_at = at;
                    sent = 0;
                    outstanding = None;
                    finished_phase = false;
                    next_ping = tokio::time::Instant::now();
                    if p == Phase::Load && !send(&mut sink, json!({"type": "input", "data": "go\n"})).await {
                        break;
                    }
                }
            }
            _ = tokio::time::sleep_until(next_ping), if ping_due => {
                outstanding = Some(Instant::now());
                sent += 1;
                if !send(&mut sink, json!({"type": "ping"})).await { break; }
            }
            msg = stream.next() => {
                let Some(Ok(msg)) = msg else { break };
                let Message::Text(t) = msg else { continue };
                let Ok(v) = serde_json::from_str::<Value>(&t) else { continue };
                match v["type"].as_str() {
                    Some("session") if !started => {
                        started = true;
                        let cmd = format!(
                            "exec env BERTH_NODE_WRITER={tag},{},{} {}\n",
                            plan.lines, plan.line_ms, exe.display()
                        );
                        if !send(&mut sink, json!({"type": "input", "data": cmd})).await { break; }
                    }
                    Some("pong") => {
                        if let Some(at) = outstanding.take() {
                            let i = (cur == Phase::Load) as usize;
                            r.rtt[i].push(at.elapsed().as_secs_f64() * 1000.0);
                            next_ping = tokio::time::Instant::now() + plan.gap;
                            if sent == plan.pings {
                                finished_phase = true;
                                if cur == Phase::Idle || r.end_at.is_some() {
                                    done.fetch_add(1, Ordering::SeqCst);
                                }
                            }
                        }
                    }
                    Some("output") | Some("scrollback") => {
                        let data = v["data"].as_str().unwrap_or("");
                        if !is_ready {
                            seen.push_str(data);
                            if seen.contains(&ready_text) {
                                is_ready = true;
                                permit = None;
                                ready.fetch_add(1, Ordering::SeqCst);
                            }
                            continue;
                        }
                        if cur != Phase::Load { continue; }
                        if v["type"] == "scrollback" {
                            r.repaints += 1;
                            check.restart();
                        }
                        r.bytes += data.len() as u64;
                        check.feed(data.as_bytes(), tag.as_bytes(), end_text.as_bytes());
                        (r.lines, r.gaps) = (check.lines, check.gaps);
                        if check.ended && r.end_at.is_none() {
                            r.end_at = Some(go_at.elapsed());
                            if finished_phase { done.fetch_add(1, Ordering::SeqCst); }
                        }
                    }
                    Some("error") => panic!("client {i}: {v}"),
                    _ => {}
                }
            }
        }
    }
    drop(permit);
    // End of input for the writer: its session ends.
    let _ = send(&mut sink, json!({"type": "input", "data": "\u{4}"})).await;
    let _ = sink.send(Message::Close(None)).await;
    r
}

fn main() {
    if let Ok(spec) = std::env::var("BERTH_NODE_WRITER") {
        writer(&spec);
    }
    if std::env::args().any(|a| a == "--list") {
        println!("node_load: bench");
        return;
    }
    common::raise_nofile("BERTH_NODE_LOAD_RAISED");
    let plan = Plan {
        clients: num("--clients", 300),
        lines: num("--lines", 200),
        line_ms: num("--line-ms", 50) as u64,
        pings: num("--pings", 20),
        gap: Duration::from_millis(num("--gap-ms", 100) as u64),
    };
    println!(
        "node_load: {} /terminal/ws clients, each session {} lines of 100 B every {} ms; {} pings {} ms apart per phase; RLIMIT_NOFILE {}",
        plan.clients,
        plan.lines,
        plan.line_ms,
        plan.pings,
        plan.gap.as_millis(),
        common::nofile()
    );
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
    std::env::set_var("NODE_API_MAX_CONNECTIONS_PER_ADDRESS", "0");
    let berth = std::path::PathBuf::from(env!("CARGO_BIN_EXE_berth"));
    let addr = format!("127.0.0.1:{port}");
    let d = common::start(
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
    let cert = d.root().join("state/berth/node-api/node-api-cert.pem");
    let tls = berth_daemon::tls::client_config(&cert).unwrap();
    let url = format!("wss://localhost:{port}/terminal/ws?workspace=w&token={token}");
    let pid = d.child.id();
    let usage = || (common::rss_kib(pid), common::fds(pid));
    // Settled after start-up.
    std::thread::sleep(Duration::from_secs(1));
    let base = usage();

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (phase_tx, phase_rx) = tokio::sync::watch::channel((Phase::Wait, Instant::now()));
    let ready = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(Mutex::new((0u64, 0usize)));
    let mut connected = (0, 0);
    let reports: Vec<Report> = rt.block_on(async {
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async {
                let t_connect = Instant::now();
                let gate = Arc::new(tokio::sync::Semaphore::new(32));
                let handles: Vec<_> = (0..plan.clients)
                    .map(|i| {
                        tokio::task::spawn_local(client(
                            i,
                            url.clone(),
                            tls.clone(),
                            plan,
                            phase_rx.clone(),
                            gate.clone(),
                            ready.clone(),
                            done.clone(),
                        ))
                    })
                    .collect();
                while ready.load(Ordering::SeqCst) < plan.clients {
                    assert!(
                        t_connect.elapsed() < Duration::from_secs(180),
                        "only {} of {} terminals were ready after 180 s",
                        ready.load(Ordering::SeqCst),
                        plan.clients
                    );
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                println!(
                    "{} terminals open, writers ready, in {:.1} s",
                    plan.clients,
                    t_connect.elapsed().as_secs_f64()
                );
                tokio::time::sleep(Duration::from_secs(1)).await;
                connected = usage();
                *peak.lock().unwrap() = connected;

                phase_tx.send_replace((Phase::Idle, Instant::now()));
                while done.load(Ordering::SeqCst) < plan.clients {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                done.store(0, Ordering::SeqCst);

                let go = Instant::now();
                let cpu0 = common::cpu_secs(pid);
                phase_tx.send_replace((Phase::Load, go));
                let flood = Duration::from_millis(plan.line_ms * plan.lines as u64);
                while done.load(Ordering::SeqCst) < plan.clients
                    && go.elapsed() < flood + Duration::from_secs(120)
                {
                    {
                        let u = usage();
                        let mut p = peak.lock().unwrap();
                        *p = (p.0.max(u.0), p.1.max(u.1));
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                let cpu = (common::cpu_secs(pid) - cpu0) / go.elapsed().as_secs_f64();
                println!(
                    "load phase: {} of {} clients finished in {:.1} s (the writers take {:.1} s); daemon CPU {:.0}% of one core",
                    done.load(Ordering::SeqCst),
                    plan.clients,
                    go.elapsed().as_secs_f64(),
                    flood.as_secs_f64(),
                    cpu * 100.0
                );
                phase_tx.send_replace((Phase::Close, Instant::now()));
                let mut out = Vec::new();
                for h in handles {
                    out.push(h.await.unwrap());
                }
                out
            })
            .await
    });
    // The sessions end (their writers saw end of input); let them go.
    let t = Instant::now();
    while usage().1 > base.1 + 2 && t.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(200));
    }
    let after = usage();
    let peak = *peak.lock().unwrap();

    let mut p99 = [0.0f64; 2];
    for (i, name) in ["idle", "load"].iter().enumerate() {
        let mut all: Vec<f64> = reports.iter().flat_map(|r| r.rtt[i].clone()).collect();
        all.sort_by(f64::total_cmp);
        p99[i] = common::pct(&all, 0.99);
        println!(
            "{name}: {} of {} pings answered; p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            all.len(),
            plan.clients * plan.pings,
            common::pct(&all, 0.5),
            p99[i],
            all.last().copied().unwrap_or(f64::NAN),
        );
        assert_eq!(
            all.len(),
            plan.clients * plan.pings,
            "{name}: pings went unanswered"
        );
    }
    println!("p99 load / idle: {:.1}x (goal <= 10x)", p99[1] / p99[0]);
    let complete = reports
        .iter()
        .filter(|r| r.lines == plan.lines && r.gaps == 0 && r.repaints == 0)
        .count();
    let repainted = reports.iter().filter(|r| r.repaints > 0).count();
    let bytes: u64 = reports.iter().map(|r| r.bytes).sum();
    println!(
        "clients with every line in order: {complete} of {}; repainted (fell behind the ring): {repainted}; output received: {:.1} MB",
        plan.clients,
        bytes as f64 / 1e6
    );
    let mut ends: Vec<f64> = reports
        .iter()
        .filter_map(|r| r.end_at.map(|t| t.as_secs_f64()))
        .collect();
    ends.sort_by(f64::total_cmp);
    println!(
        "end marker after `go`: first {:.2} s, median {:.2} s, last {:.2} s",
        ends.first().copied().unwrap_or(f64::NAN),
        common::pct(&ends, 0.5),
        ends.last().copied().unwrap_or(f64::NAN),
    );
    println!(
        "daemon: RSS {} KiB / {} fds before; {} KiB / {} fds with {} terminals; peak under load {} KiB / {} fds; {} KiB / {} fds after the sessions ended",
        base.0, base.1, connected.0, connected.1, plan.clients, peak.0, peak.1, after.0, after.1
    );
    assert_eq!(
        ends.len(),
        plan.clients,
        "a client never got its end marker"
    );
    assert_eq!(complete, plan.clients, "a client missed lines");
    assert!(
        after.1 <= base.1 + 2,
        "the daemon kept descriptors after the sessions ended: {} before, {} after",
        base.1,
        after.1
    );
}
