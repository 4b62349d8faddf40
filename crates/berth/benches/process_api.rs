//! Process-API benchmark, berth against the published `running-process-daemon`
//! run side by side in one run with the same client (berth-client):
//! PING round trip p50/p99, REGISTER throughput, idle RSS after start.
//!
//! `cargo bench -p berth --bench process_api` (set RUNNING_PROCESS_DAEMON to
//! the peer binary if it is not in /opt/running-process/bin or on PATH).

mod common;

use berth_client::Client;
use berth_wire::daemon::RegisterRequest;
use common::{cpus, peer, pin_to, rss_kib, start, Daemon};
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

const PINGS: usize = 20_000;
const REGISTERS: usize = 20_000;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

struct Figures {
    lat: Vec<Duration>,
    reg_time: Duration,
    idle_rss: u64,
}

const ROUNDS: usize = 20;

/// Alternates rounds between the subjects so both see the same machine
/// noise: ping rounds first, then register rounds.
fn measure(subjects: &[&Daemon], sleepers: &[Child]) -> Vec<Figures> {
    // Idle means settled: three seconds after the socket answers.
    std::thread::sleep(Duration::from_secs(3));
    let mut figs: Vec<Figures> = subjects
        .iter()
        .map(|s| Figures {
            lat: Vec::with_capacity(PINGS),
            reg_time: Duration::ZERO,
            idle_rss: rss_kib(s.child.id()),
        })
        .collect();
    let mut clients: Vec<Client> = subjects
        .iter()
        .map(|s| Client::connect(&s.socket).unwrap())
        .collect();
    for c in clients.iter_mut() {
        for _ in 0..1000 {
            c.ping().unwrap();
        }
    }
    for _ in 0..ROUNDS {
        for (c, f) in clients.iter_mut().zip(figs.iter_mut()) {
            for _ in 0..PINGS / ROUNDS {
                let t = Instant::now();
                c.ping().unwrap();
                f.lat.push(t.elapsed());
            }
        }
    }
    for round in 0..ROUNDS {
        for (c, f) in clients.iter_mut().zip(figs.iter_mut()) {
            let t = Instant::now();
            for i in 0..REGISTERS / ROUNDS {
                let pid = sleepers[(round + i) % sleepers.len()].id();
                c.register(RegisterRequest {
                    pid,
                    command: "sleep 600".into(),
                    kind: "bench".into(),
                    originator: "bench:1".into(),
                    ..Default::default()
                })
                .unwrap();
            }
            f.reg_time += t.elapsed();
        }
    }
    for f in figs.iter_mut() {
        f.lat.sort();
    }
    figs
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    pin_to(0);
    let sleepers: Vec<Child> = (0..64)
        .map(|_| Command::new("sleep").arg("600").spawn().unwrap())
        .collect();
    // Daemons on CPU 1, this client on CPU 0: every round trip crosses the
    // same two cores, so runs compare.
    let daemon_cpu = Some(if cpus() > 1 { 1 } else { 0 });
    let berth = start(
        "berth",
        Path::new(env!("CARGO_BIN_EXE_berth")),
        &["daemon"],
        "run/berth/daemon.sock",
        daemon_cpu,
    );
    let reference = peer().map(|p| {
        start(
            "running-process-daemon",
            &p,
            &["start"],
            "run/running-process/daemon.sock",
            daemon_cpu,
        )
    });
    let mut subjects = vec![&berth];
    subjects.extend(reference.as_ref());
    let figs = measure(&subjects, &sleepers);
    let rname = reference
        .as_ref()
        .map(|s| s.name)
        .unwrap_or("running-process-daemon (not found)");
    let (b, r) = (&figs[0], figs.get(1));
    let p50 = |f: &Figures| percentile(&f.lat, 0.5);
    let p99 = |f: &Figures| percentile(&f.lat, 0.99);
    let rate = |f: &Figures| REGISTERS as f64 / f.reg_time.as_secs_f64();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    drop(reference);
    drop(berth);
    println!("process API benchmark: {PINGS} pings, {REGISTERS} registers, one connection each, same client, rounds interleaved, client on CPU 0, daemons on CPU 1");
    println!(
        "{:<28} {:>12} {:>12} {:>14} {:>12}",
        "daemon", "ping p50 µs", "ping p99 µs", "register/s", "idle RSS KiB"
    );
    println!(
        "{:<28} {:>12.1} {:>12.1} {:>14.0} {:>12}",
        "berth",
        us(p50(b)),
        us(p99(b)),
        rate(b),
        b.idle_rss
    );
    if let Some(r) = r {
        println!(
            "{:<28} {:>12.1} {:>12.1} {:>14.0} {:>12}",
            rname,
            us(p50(r)),
            us(p99(r)),
            rate(r),
            r.idle_rss
        );
        println!(
            "ratios berth/reference: ping p50 {:.2}x, ping p99 {:.2}x (lower is better); register {:.2}x (higher is better); idle RSS {:.2}x (lower is better)",
            us(p50(b)) / us(p50(r)),
            us(p99(b)) / us(p99(r)),
            rate(b) / rate(r),
            b.idle_rss as f64 / r.idle_rss as f64
        );
    } else {
        println!("{rname}: no ratios printed");
    }

    for mut s in sleepers {
        let _ = s.kill();
        let _ = s.wait();
    }
}
