//! Relay load (issue 21, item 4): 1000 mobile (phone-role) connections
//! through a real `berth relay` while a real `berth daemon --relay` streams
//! sessions to them.
//!
//! Setup: one relay, one daemon linked to it (the agent), [`SESSIONS`] PTY
//! sessions each running this program as a writer that waits for a line on
//! its stdin. Then `--mobiles` WebSocket clients connect (hello with the
//! token, `cap.req`, `session_attach`), spread over the sessions; every
//! tenth asks for the grid (GRID_SNAPSHOT/GRID_DIFF), the rest for raw
//! PTY_DATA. Each mobile answers the relay's pings.
//!
//! Phase 1 (idle): every mobile sends `--pings` application pings, one at
//! a time, `--gap-ms` apart; the round trip to the relay's pong is timed.
//! Phase 2 (load): every session is told to start, and writes `--lines`
//! numbered 100-byte lines, one every `--line-ms`, then an end marker;
//! meanwhile each mobile pings again. Checked: every ping answered; every
//! raw mobile received every line of its session, in order, with no
//! resync (the relay drops a slow mobile's queue and sends a snapshot
//! instead); every grid mobile shows the end marker; every mobile got the
//! end (none starved). Printed: p50/p99/max of both phases and their
//! ratio, the spread of end-marker arrival per session, and the relay's
//! RSS and descriptors (agent links only, mobiles connected, peak under
//! load, after they left).
//!
//! The soft descriptor limit is raised to the hard one first by re-running
//! under `sh -c 'ulimit -n ...'` (the relay inherits it).
//!
//! `cargo bench -p berth --bench relay_load [-- --mobiles N --sessions S
//! --lines L --line-ms MS --pings P --gap-ms MS]`

mod common;
use common::lines::LineCheck;

use berth_client::Client;
use berth_wire::daemon::SpawnPtySessionRequest;
use berth_wire::remote::{self, AppMessage, CapReq, Frame, Grid, Hello, Ping, Pong, Role};
use futures_util::{SinkExt, StreamExt};
use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

const BERTH: &str = env!("CARGO_BIN_EXE_berth");
const TOKEN: &str = "relay-load";
const MACHINE: &str = "load-machine";
/// Sessions streaming to the mobiles.
const SESSIONS: usize = 20;

/// Role: wait for a line on stdin, then write `lines` numbered lines of
/// 100 bytes, one every `ms`, then `END-<tag>`; then wait for end of input.
fn writer(spec: &str) -> ! {
    let v: Vec<&str> = spec.split(',').collect();
    let (tag, lines, ms): (&str, usize, u64) = (v[0], v[1].parse().unwrap(), v[2].parse().unwrap());
    let mut stdin = std::io::stdin().lock();
    let mut go = String::new();
    let _ = stdin.read_line(&mut go);
    let mut out = std::io::stdout().lock();
    let start = Instant::now();
    for n in 0..lines {
        // Paced against the start, so a late wake-up does not stretch the run.
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

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < Duration::from_secs(30), "{what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn num(name: &str, default: usize) -> usize {
    common::arg(name)
        .map(|v| v.parse().unwrap_or_else(|_| panic!("{name}: not a number")))
        .unwrap_or(default)
}

/// Settings of one run.
#[derive(Clone, Copy)]
struct Plan {
    mobiles: usize,
    sessions: usize,
    lines: usize,
    line_ms: u64,
    pings: usize,
    gap: Duration,
}

/// What one mobile measured.
#[derive(Default)]
struct Report {
    /// Ping round trips (ms) per phase.
    rtt: [Vec<f64>; 2],
    /// Pings sent but never answered, per phase.
    lost: [usize; 2],
    /// Raw mobiles: distinct lines received, and lines seen out of order
    /// or missing when the next arrived.
    lines: usize,
    gaps: usize,
    /// Grid mobiles: grid snapshots during the load (the relay dropped
    /// its queue and resynced it).
    resyncs: usize,
    /// Raw mobiles: screen repaints (FRAME_SNAPSHOT) during the load, and
    /// their bytes.
    repaints: usize,
    repaint_bytes: u64,
    /// When the end marker arrived (since the start signal).
    end_at: Option<Duration>,
    grid: bool,
    session: usize,
    /// Terminal bytes received.
    bytes: u64,
}

/// The phase the bench is in, broadcast to every mobile.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    Wait,
    Idle,
    Load,
    Close,
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn frame(f: Frame) -> Message {
    Message::Binary(f.encode().into())
}

async fn open(port: u16, session: &str, grid: bool) -> Result<Ws, String> {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/"))
        .await
        .map_err(|e| format!("connect: {e}"))?;
    if let tokio_tungstenite::MaybeTlsStream::Plain(s) = ws.get_ref() {
        let _ = s.set_nodelay(true);
    }
    for f in [
        Frame::AppJson(AppMessage::Hello(Hello {
            protocol_version: remote::PROTOCOL_VERSION,
            role: Role::Mobile,
            token: Some(TOKEN.into()),
            supported_versions: None,
            machine_id: None,
            machine_name: None,
            client_name: Some("relay-load".into()),
        })),
        Frame::AppJson(AppMessage::CapReq(CapReq {
            grid,
            max_cols: None,
            max_rows: None,
        })),
        Frame::AppJson(AppMessage::SessionAttach(remote::SessionAttach {
            machine_id: MACHINE.into(),
            session_id: session.into(),
        })),
    ] {
        ws.send(frame(f)).await.map_err(|e| format!("send: {e}"))?;
    }
    Ok(ws)
}

fn grid_shows(g: &Grid, text: &str) -> bool {
    (0..g.rows).any(|y| {
        g.row(y)
            .iter()
            .map(|c| c.text.as_str())
            .collect::<String>()
            .contains(text)
    })
}

/// One mobile, from connect to close.
#[allow(clippy::too_many_arguments)]
async fn mobile(
    port: u16,
    plan: Plan,
    session: (usize, String),
    grid: bool,
    mut phase: tokio::sync::watch::Receiver<(Phase, Instant)>,
    gate: Arc<tokio::sync::Semaphore>,
    ready: Arc<AtomicUsize>,
    done: Arc<AtomicUsize>,
) -> Report {
    let tag = format!("s{}", session.0);
    let end_text = format!("END-{tag}");
    let mut r = Report {
        grid,
        session: session.0,
        ..Default::default()
    };
    // Held until this mobile is painted.
    let mut permit = Some(gate.acquire_owned().await.unwrap());
    let ws = match open(port, &session.1, grid).await {
        Ok(ws) => ws,
        Err(e) => panic!("mobile on {tag}: {e}"),
    };
    let (mut sink, mut stream) = ws.split();
    let mut painted = false;
    let mut acked = false;
    let mut counted_ready = false;
    let mut g: Option<Grid> = None;
    let mut check = LineCheck::default();
    // Ping state of the current phase: (seq, sent at), pings sent.
    let mut outstanding: Option<(u64, Instant)> = None;
    let mut sent = 0usize;
    let mut seq = 0u64;
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
                    if let (Phase::Idle | Phase::Load, Some(_)) = (cur, outstanding.take()) {
                        r.lost[(cur == Phase::Load) as usize] += 1;
                    }
                    cur = p;
                    go_at = at;
                    sent = 0;
                    finished_phase = false;
                    next_ping = tokio::time::Instant::now();
                }
            }
            _ = tokio::time::sleep_until(next_ping), if ping_due => {
                seq += 1;
                outstanding = Some((seq, Instant::now()));
                sent += 1;
                if sink.send(frame(Frame::AppJson(AppMessage::Ping(Ping { ts: seq })))).await.is_err() {
                    break;
                }
            }
            msg = stream.next() => {
                let Some(Ok(msg)) = msg else { break };
                let Message::Binary(b) = msg else { continue };
                let Ok(f) = Frame::decode(&b) else { continue };
                match f {
                    Frame::AppJson(AppMessage::Ping(p)) => {
                        let _ = sink.send(frame(Frame::AppJson(AppMessage::Pong(Pong { ts: p.ts })))).await;
                    }
                    Frame::AppJson(AppMessage::Pong(p)) => {
                        if let Some((s, at)) = outstanding {
                            if s == p.ts {
                                outstanding = None;
                                let i = (cur == Phase::Load) as usize;
                                r.rtt[i].push(at.elapsed().as_secs_f64() * 1000.0);
                                next_ping = tokio::time::Instant::now() + plan.gap;
                                if sent == plan.pings {
                                    finished_phase = true;
                                    // Idle ends with the pings; load also
                                    // waits for the end marker.
                                    if cur == Phase::Idle || r.end_at.is_some() {
                                        done.fetch_add(1, Ordering::SeqCst);
                                    }
                                }
                            }
                        }
                    }
                    Frame::AppJson(AppMessage::CapAck(_)) => acked = true,
                    Frame::AppJson(AppMessage::Error(e)) => {
                        panic!("mobile on {tag}: the relay refused: {} {}", e.code, e.message)
                    }
                    Frame::FrameSnapshot { .. } => {
                        // The agent refreshes the relay's first paint about
                        // once a second, and the relay passes it on to raw
                        // mobiles: a repaint, not a sign of lost bytes
                        // (those show as missing line numbers).
                        if painted && cur == Phase::Load {
                            r.repaints += 1;
                            r.repaint_bytes += b.len() as u64;
                        }
                        painted = true;
                    }
                    Frame::PtyData(d) => {
                        r.bytes += b.len() as u64;
                        check.feed(&d, tag.as_bytes(), end_text.as_bytes());
                        (r.lines, r.gaps) = (check.lines, check.gaps);
                        if check.ended && r.end_at.is_none() {
                            r.end_at = Some(go_at.elapsed());
                            if finished_phase { done.fetch_add(1, Ordering::SeqCst); }
                        }
                    }
                    Frame::GridSnapshot(s) => {
                        r.bytes += b.len() as u64;
                        if painted && cur == Phase::Load { r.resyncs += 1; }
                        painted = true;
                        if r.end_at.is_none() && cur == Phase::Load && grid_shows(&s.grid, &end_text) {
                            r.end_at = Some(go_at.elapsed());
                            if finished_phase { done.fetch_add(1, Ordering::SeqCst); }
                        }
                        g = Some(s.grid);
                    }
                    Frame::GridDiff(d) => {
                        r.bytes += b.len() as u64;
                        if let Some(g) = g.as_mut() {
                            let _ = remote::apply(g, &d.ops);
                            if r.end_at.is_none() && cur == Phase::Load && grid_shows(g, &end_text) {
                                r.end_at = Some(go_at.elapsed());
                                if finished_phase { done.fetch_add(1, Ordering::SeqCst); }
                            }
                        }
                    }
                    _ => {}
                }
                if !counted_ready && acked && painted {
                    counted_ready = true;
                    permit = None;
                    ready.fetch_add(1, Ordering::SeqCst);
                }
            }
        }
    }
    drop(permit);
    let _ = sink.send(Message::Close(None)).await;
    r
}

fn spawn_writer(socket: &std::path::Path, tag: &str, plan: Plan) -> String {
    let exe = std::env::current_exe().unwrap();
    Client::connect(socket)
        .unwrap()
        .spawn_pty(SpawnPtySessionRequest {
            argv: vec![exe.to_string_lossy().into_owned()],
            env: vec![berth_wire::daemon::KeyValue {
                key: "BERTH_RELAY_WRITER".into(),
                value: format!("{tag},{},{}", plan.lines, plan.line_ms),
            }],
            rows: 24,
            cols: 120,
            ..Default::default()
        })
        .unwrap()
        .session_id
}

/// The relay's RSS (KiB) and open descriptors.
fn relay_usage(pid: u32) -> (u64, usize) {
    (common::rss_kib(pid), common::fds(pid))
}

fn main() {
    if let Ok(spec) = std::env::var("BERTH_RELAY_WRITER") {
        writer(&spec);
    }
    if std::env::args().any(|a| a == "--list") {
        println!("relay_load: bench");
        return;
    }
    common::raise_nofile("BERTH_RELAY_LOAD_RAISED");
    let plan = Plan {
        mobiles: num("--mobiles", 1000),
        sessions: num("--sessions", SESSIONS),
        lines: num("--lines", 500),
        line_ms: num("--line-ms", 20) as u64,
        pings: num("--pings", 20),
        gap: Duration::from_millis(num("--gap-ms", 100) as u64),
    };
    println!(
        "relay_load: {} mobiles over {} sessions ({} lines of 100 B every {} ms each), {} pings {} ms apart per phase; RLIMIT_NOFILE {}",
        plan.mobiles,
        plan.sessions,
        plan.lines,
        plan.line_ms,
        plan.pings,
        plan.gap.as_millis(),
        common::nofile()
    );

    let dir = tempfile::Builder::new()
        .prefix("berth-relay-load")
        .tempdir_in("/tmp")
        .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let relay = Proc(
        Command::new(BERTH)
            .args(["relay", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--token", TOKEN])
            .env("BERTH_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for("relay did not listen", || {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let _daemon = Proc(
        Command::new(BERTH)
            .args(["daemon", "--relay", &format!("ws://127.0.0.1:{port}/")])
            .args(["--relay-token", TOKEN, "--relay-machine-id", MACHINE])
            .env("XDG_RUNTIME_DIR", dir.path().join("run"))
            .env("XDG_STATE_HOME", dir.path().join("state"))
            .env("BERTH_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let socket: PathBuf = dir.path().join("run/berth/daemon.sock");
    wait_for("daemon did not start", || Client::connect(&socket).is_ok());
    let sessions: Vec<String> = (0..plan.sessions)
        .map(|i| spawn_writer(&socket, &format!("s{i}"), plan))
        .collect();

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // The agent announces sessions in a machine list: wait for the last.
    rt.block_on(async {
        let t = Instant::now();
        loop {
            let mut ws = open(port, sessions.last().unwrap(), false).await.unwrap();
            let mut ok = false;
            while let Some(Ok(Message::Binary(b))) = ws.next().await {
                match Frame::decode(&b) {
                    Ok(Frame::AppJson(AppMessage::Error(_))) => break,
                    Ok(Frame::FrameSnapshot { .. }) => {
                        ok = true;
                        break;
                    }
                    _ => {}
                }
            }
            let _ = ws.close(None).await;
            if ok {
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "the sessions were never listed"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    std::thread::sleep(Duration::from_millis(500));
    let relay_pid = relay.0.id();
    let base = relay_usage(relay_pid);

    let (phase_tx, phase_rx) = tokio::sync::watch::channel((Phase::Wait, Instant::now()));
    let ready = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(Mutex::new((0u64, 0usize)));
    let mut connected = (0u64, 0usize);
    let reports: Vec<Report> = rt.block_on(async {
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async {
                let t_connect = Instant::now();
                let mut handles = Vec::new();
                // A few connections at a time: a thousand SYNs at once
                // would overflow the listen backlog (a client-side limit,
                // not the relay's).
                let gate = Arc::new(tokio::sync::Semaphore::new(64));
                for i in 0..plan.mobiles {
                    let s = i % plan.sessions;
                    let (rx, ready, done, gate) =
                        (phase_rx.clone(), ready.clone(), done.clone(), gate.clone());
                    let sid = sessions[s].clone();
                    let grid = i % 10 == 9;
                    handles.push(tokio::task::spawn_local(mobile(
                        port,
                        plan,
                        (s, sid),
                        grid,
                        rx,
                        gate,
                        ready,
                        done,
                    )));
                }
                while ready.load(Ordering::SeqCst) < plan.mobiles {
                    assert!(
                        t_connect.elapsed() < Duration::from_secs(120),
                        "only {} of {} mobiles were attached after 120 s",
                        ready.load(Ordering::SeqCst),
                        plan.mobiles
                    );
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                println!(
                    "{} mobiles attached and painted in {:.1} s",
                    plan.mobiles,
                    t_connect.elapsed().as_secs_f64()
                );
                tokio::time::sleep(Duration::from_secs(1)).await;
                connected = relay_usage(relay_pid);
                *peak.lock().unwrap() = connected;

                // Phase 1: idle pings.
                phase_tx.send_replace((Phase::Idle, Instant::now()));
                while done.load(Ordering::SeqCst) < plan.mobiles {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                done.store(0, Ordering::SeqCst);

                // Phase 2: the sessions stream while the mobiles ping.
                let go = Instant::now();
                phase_tx.send_replace((Phase::Load, go));
                let sock = socket.clone();
                let ids = sessions.clone();
                std::thread::spawn(move || {
                    let mut c = Client::connect(&sock).unwrap();
                    for id in &ids {
                        c.write_stdin(id, b"go\n", false).unwrap();
                    }
                });
                let flood = Duration::from_millis(plan.line_ms * plan.lines as u64);
                while done.load(Ordering::SeqCst) < plan.mobiles
                    && go.elapsed() < flood + Duration::from_secs(120)
                {
                    {
                        let u = relay_usage(relay_pid);
                        let mut p = peak.lock().unwrap();
                        *p = (p.0.max(u.0), p.1.max(u.1));
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                println!(
                    "load phase: {} of {} mobiles finished in {:.1} s (the writers take {:.1} s)",
                    done.load(Ordering::SeqCst),
                    plan.mobiles,
                    go.elapsed().as_secs_f64(),
                    flood.as_secs_f64()
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
    std::thread::sleep(Duration::from_secs(2));
    let after = relay_usage(relay_pid);
    let connected_peak = *peak.lock().unwrap();
    {
        let mut c = Client::connect(&socket).unwrap();
        for id in &sessions {
            let _ = c.terminate_pty(id, 10);
        }
    }

    // Results.
    let mut ratio = [0.0f64; 2];
    for (i, name) in ["idle", "load"].iter().enumerate() {
        let mut all: Vec<f64> = reports.iter().flat_map(|r| r.rtt[i].clone()).collect();
        all.sort_by(f64::total_cmp);
        let lost: usize = reports.iter().map(|r| r.lost[i]).sum();
        let unanswered = plan.mobiles * plan.pings - all.len();
        ratio[i] = common::pct(&all, 0.99);
        println!(
            "{name}: {} of {} pings answered ({lost} lost); p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            all.len(),
            plan.mobiles * plan.pings,
            common::pct(&all, 0.5),
            common::pct(&all, 0.99),
            all.last().copied().unwrap_or(f64::NAN),
        );
        assert_eq!(unanswered, 0, "{name}: pings went unanswered");
    }
    println!("p99 load / idle: {:.1}x (goal <= 10x)", ratio[1] / ratio[0]);
    let raw: Vec<&Report> = reports.iter().filter(|r| !r.grid).collect();
    let complete = raw
        .iter()
        .filter(|r| r.lines == plan.lines && r.gaps == 0)
        .count();
    let resynced = reports.iter().filter(|r| r.resyncs > 0).count();
    let bytes: u64 = reports.iter().map(|r| r.bytes).sum();
    let repaints: usize = raw.iter().map(|r| r.repaints).sum();
    let repaint_bytes: u64 = raw.iter().map(|r| r.repaint_bytes).sum();
    println!(
        "raw mobiles with every line, in order: {complete} of {}; terminal bytes received: {:.1} MB, plus {repaints} screen repaints ({:.1} MB) passed on from the agent",
        raw.len(),
        bytes as f64 / 1e6,
        repaint_bytes as f64 / 1e6
    );
    let grid_end = reports
        .iter()
        .filter(|r| r.grid && r.end_at.is_some())
        .count();
    println!(
        "grid mobiles showing the end marker: {grid_end} of {}; grid mobiles resynced by a snapshot: {resynced}",
        reports.iter().filter(|r| r.grid).count()
    );
    // Starvation: per session, how much later its last mobile saw the end
    // than its first.
    let mut per: HashMap<usize, Vec<f64>> = HashMap::new();
    for r in &reports {
        if let Some(t) = r.end_at {
            per.entry(r.session).or_default().push(t.as_secs_f64());
        }
    }
    let mut spreads: Vec<f64> = per
        .values()
        .map(|v| {
            let (lo, hi) = v
                .iter()
                .fold((f64::MAX, f64::MIN), |(a, b), &x| (a.min(x), b.max(x)));
            (hi - lo) * 1000.0
        })
        .collect();
    spreads.sort_by(f64::total_cmp);
    let mut ends: Vec<f64> = reports
        .iter()
        .filter_map(|r| r.end_at.map(|t| t.as_secs_f64()))
        .collect();
    ends.sort_by(f64::total_cmp);
    println!(
        "end marker after the start: first {:.2} s, median {:.2} s, last {:.2} s; per session, last mobile after first: median {:.0} ms, worst {:.0} ms",
        ends.first().copied().unwrap_or(f64::NAN),
        common::pct(&ends, 0.5),
        ends.last().copied().unwrap_or(f64::NAN),
        common::pct(&spreads, 0.5),
        spreads.last().copied().unwrap_or(f64::NAN),
    );
    println!(
        "relay: RSS {} KiB / {} fds with the agent only; {} KiB / {} fds with {} idle mobiles; {} KiB / {} fds peak under load ({:.1} KiB per mobile); {} KiB / {} fds after they left",
        base.0,
        base.1,
        connected.0,
        connected.1,
        plan.mobiles,
        connected_peak.0,
        connected_peak.1,
        connected_peak.0.saturating_sub(base.0) as f64 / plan.mobiles as f64,
        after.0,
        after.1,
    );
    assert_eq!(ends.len(), plan.mobiles, "a mobile never got the end");
    assert!(
        after.1 <= base.1 + 2,
        "the relay kept descriptors after the mobiles left: {} before, {} after",
        base.1,
        after.1
    );
    assert_eq!(complete, raw.len(), "a raw mobile missed lines");
}
