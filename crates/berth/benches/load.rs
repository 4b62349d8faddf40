//! Load (issue 21, item 4): 1000 concurrent process-API connections
//! pinging while 100 PTY sessions flood output and 50 services log.
//!
//! Each connection is opened and pinged once first (not measured).
//! Phase 1 (idle): each of the 1000 connections sends [`PINGS`] pings, one
//! at a time, all connections at once. Phase 2 (load): the same, while
//! 100 PTY sessions each write a 1000-byte line every 10 ms (~10 MB/s in
//! all, nobody attached) and 50 services each log a 100-byte line every
//! 10 ms (~0.5 MB/s). Printed: every ping answered, p50/p99/max of both
//! phases, the ratio of the p99s (the goal is at most 10x), and the
//! slowest connection's total (no client starved). The descriptor limit
//! is raised to its hard maximum first (the daemon inherits it).
//! `cargo bench -p berth --bench load` (`--clients N` to scale).

mod common;

use berth_client::Client;
use berth_wire::daemon::{ServiceConfig, SpawnPtySessionRequest};
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

const PINGS: usize = 20;
const SESSIONS: usize = 100;
const SERVICES: usize = 50;

/// Role: write a `len`-byte line every 10 ms until the output closes.
fn writer(len: usize) -> ! {
    let line = format!("{}\n", "x".repeat(len - 1));
    let mut out = std::io::stdout().lock();
    loop {
        if out
            .write_all(line.as_bytes())
            .and_then(|_| out.flush())
            .is_err()
        {
            std::process::exit(0);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[derive(Default)]
struct Phase {
    lat_ms: Vec<f64>,
    failed: usize,
    /// Each connection's time for all its pings, ms.
    per_client_ms: Vec<f64>,
    /// When pings slower than 100 ms were sent (ms since the run began):
    /// all at once means the daemon stalled, spread means scheduling.
    slow_at_ms: Vec<f64>,
}

fn main() {
    if let Some(n) = std::env::var("BERTH_LOAD_WRITER")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        writer(n);
    }
    if std::env::args().any(|a| a == "--list") {
        println!("load: bench");
        return;
    }
    let clients: usize = common::arg("--clients")
        .map(|n| n.parse().unwrap())
        .unwrap_or(1000);
    common::raise_nofile("BERTH_LOAD_RAISED");
    let nofile = common::nofile();
    println!("load: {clients} connections, {SESSIONS} flooding PTY sessions, {SERVICES} logging services; RLIMIT_NOFILE {nofile}");
    let berth = PathBuf::from(env!("CARGO_BIN_EXE_berth"));
    let d = common::start("berth", &berth, &["daemon"], "run/berth/daemon.sock", None);
    let exe = std::env::current_exe().unwrap();

    let phases: Arc<Mutex<[Phase; 2]>> = Arc::default();
    let epoch = Instant::now();
    let start = Arc::new(Barrier::new(clients + 1));
    let done = Arc::new(Barrier::new(clients + 1));
    let mut threads = Vec::new();
    for _ in 0..clients {
        let (sock, phases, start, done) = (
            d.socket.clone(),
            phases.clone(),
            start.clone(),
            done.clone(),
        );
        threads.push(
            std::thread::Builder::new()
                .stack_size(128 * 1024)
                .spawn(move || {
                    let mut c = Client::connect(&sock);
                    // Not measured: the daemon accepting the connection.
                    if let Ok(c) = c.as_mut() {
                        let _ = c.ping();
                    }
                    for phase in 0..2 {
                        start.wait();
                        let mut lat = Vec::with_capacity(PINGS);
                        let mut failed = 0;
                        let mut slow = Vec::new();
                        let t0 = Instant::now();
                        for _ in 0..PINGS {
                            let t = Instant::now();
                            match c
                                .as_mut()
                                .map_err(|_| ())
                                .and_then(|c| c.ping().map_err(|_| ()))
                            {
                                Ok(_) => {
                                    let ms = t.elapsed().as_secs_f64() * 1000.0;
                                    if ms > 100.0 {
                                        slow.push((t - epoch).as_secs_f64() * 1000.0);
                                    }
                                    lat.push(ms)
                                }
                                Err(()) => failed += 1,
                            }
                        }
                        let total = t0.elapsed().as_secs_f64() * 1000.0;
                        {
                            let mut g = phases.lock().unwrap();
                            g[phase].lat_ms.extend(lat);
                            g[phase].failed += failed;
                            g[phase].per_client_ms.push(total);
                            g[phase].slow_at_ms.extend(slow);
                        }
                        done.wait();
                    }
                })
                .unwrap(),
        );
    }
    // Phase 1: idle.
    start.wait();
    done.wait();

    // The load.
    let mut c = Client::connect(&d.socket).unwrap();
    let mut sessions = Vec::new();
    for _ in 0..SESSIONS {
        sessions.push(
            c.spawn_pty(SpawnPtySessionRequest {
                argv: vec![exe.to_string_lossy().into_owned()],
                env: vec![berth_wire::daemon::KeyValue {
                    key: "BERTH_LOAD_WRITER".into(),
                    value: "1000".into(),
                }],
                ..Default::default()
            })
            .unwrap()
            .session_id,
        );
    }
    for i in 0..SERVICES {
        c.service_start(ServiceConfig {
            name: format!("log{i}"),
            cmd: vec![exe.to_string_lossy().into_owned()],
            env: [("BERTH_LOAD_WRITER".to_string(), "100".to_string())].into(),
            ..Default::default()
        })
        .unwrap();
    }
    std::thread::sleep(Duration::from_secs(2));
    let cpu0 = common::cpu_secs(d.child.id());
    let t = Instant::now();
    // Phase 2: under load.
    start.wait();
    done.wait();
    let cpu = (common::cpu_secs(d.child.id()) - cpu0) / t.elapsed().as_secs_f64();
    for t in threads {
        t.join().unwrap();
    }
    let logged: usize = (0..3)
        .filter_map(|i| c.service_logs(&format!("log{i}"), 5).ok())
        .map(|t| t.lines().count())
        .sum();
    for id in &sessions {
        let _ = c.terminate_pty(id, 10);
    }
    let _ = c.service_delete("all");

    let mut g = phases.lock().unwrap();
    let mut rows = Vec::new();
    for (name, p) in ["idle", "load"].iter().zip(g.iter_mut()) {
        p.lat_ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
        p.per_client_ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let p99 = common::pct(&p.lat_ms, 0.99);
        println!(
            "{name}: {} pings answered, {} failed; p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; slowest connection {:.0} ms for {PINGS} pings (median {:.0} ms)",
            p.lat_ms.len(),
            p.failed,
            common::pct(&p.lat_ms, 0.50),
            p99,
            p.lat_ms.last().copied().unwrap_or(f64::NAN),
            p.per_client_ms.last().copied().unwrap_or(f64::NAN),
            common::pct(&p.per_client_ms, 0.5),
        );
        rows.push(p99);
        if !p.slow_at_ms.is_empty() {
            p.slow_at_ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
            println!(
                "  {} pings over 100 ms, sent between {:.0} and {:.0} ms into the run",
                p.slow_at_ms.len(),
                p.slow_at_ms[0],
                p.slow_at_ms[p.slow_at_ms.len() - 1]
            );
        }
    }
    println!(
        "daemon CPU under load: {:.0}% of one core; services were logging: {}",
        cpu * 100.0,
        logged > 0
    );
    let ratio = rows[1] / rows[0];
    println!("p99 load / idle: {ratio:.1}x (goal <= 10x)");
    let all = g
        .iter()
        .all(|p| p.failed == 0 && p.lat_ms.len() == clients * PINGS);
    assert!(all, "some pings went unanswered");
    assert_eq!(g[1].per_client_ms.len(), clients, "a client never finished");
}
