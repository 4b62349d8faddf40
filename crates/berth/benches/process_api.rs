//! Process-API benchmark, berth against the published `running-process-daemon`
//! run side by side in one run with the same client (berth-client):
//! PING round trip p50/p99, REGISTER throughput, idle RSS after start.
//!
//! `cargo bench -p berth --bench process_api` (set RUNNING_PROCESS_DAEMON to
//! the peer binary if it is not in /opt/running-process/bin or on PATH).

use berth_client::Client;
use berth_wire::daemon::RegisterRequest;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PINGS: usize = 20_000;
const REGISTERS: usize = 20_000;

struct Subject {
    name: &'static str,
    child: Child,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Subject {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_socket(p: &Path) {
    let t = Instant::now();
    while Client::connect(p).is_err() {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "{} never answered",
            p.display()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Pins the calling thread (or, in `pre_exec`, the child) to one CPU, so
/// that every round trip crosses the same two cores and runs compare.
fn pin_to(cpu: usize) {
    // SAFETY: plain syscall on a zeroed, properly sized cpu set.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

fn cpus() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

fn start(name: &'static str, program: &Path, args: &[&str], socket_rel: &str) -> Subject {
    use std::os::unix::process::CommandExt;
    let dir = tempfile::Builder::new()
        .prefix("berth-bench")
        .tempdir_in("/tmp")
        .unwrap();
    let socket = dir.path().join(socket_rel);
    let daemon_cpu = if cpus() > 1 { 1 } else { 0 };
    let mut cmd = Command::new(program);
    // SAFETY: sched_setaffinity is async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            pin_to(daemon_cpu);
            Ok(())
        });
    }
    let child = cmd
        .args(args)
        .env("XDG_RUNTIME_DIR", dir.path().join("run"))
        .env("XDG_STATE_HOME", dir.path().join("state"))
        .env("BERTH_LOG", "warn")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_socket(&socket);
    Subject {
        name,
        child,
        socket,
        _dir: dir,
    }
}

fn rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

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
fn measure(subjects: &[&Subject], sleepers: &[Child]) -> Vec<Figures> {
    std::thread::sleep(Duration::from_millis(1000));
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

fn peer() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("RUNNING_PROCESS_DAEMON") {
        return Some(p.into());
    }
    let mut dirs = vec![PathBuf::from("/opt/running-process/bin")];
    dirs.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    dirs.into_iter()
        .map(|d| d.join("running-process-daemon"))
        .find(|p| p.is_file())
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    pin_to(0);
    let sleepers: Vec<Child> = (0..64)
        .map(|_| Command::new("sleep").arg("600").spawn().unwrap())
        .collect();
    let berth = start(
        "berth",
        Path::new(env!("CARGO_BIN_EXE_berth")),
        &["daemon"],
        "run/berth/daemon.sock",
    );
    let reference = peer().map(|p| {
        start(
            "running-process-daemon",
            &p,
            &["start"],
            "run/running-process/daemon.sock",
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
