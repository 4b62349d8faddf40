//! Service supervision benchmark: berth against pm2 (npm) and the published
//! `running-process-daemon`, one after the other in one run, same machine,
//! same workloads:
//!
//! 1. crash-to-restart latency: a service that runs 300 ms then exits 1,
//!    time from its exit to the next start, 15 restarts;
//! 2. daemon RSS with 50 supervised `sleep` services;
//! 3. daemon CPU while 50 services each write 1 MB/s of log lines for 12 s,
//!    and whether any service's writes were slowed (log capture must never
//!    block a service).
//!
//! berth and running-process-daemon are driven through berth-client (the
//! runpm requests), pm2 through its CLI with an ecosystem file.
//! `cargo bench -p berth --bench services`. Peers: `npm install -g pm2`,
//! `cargo install running-process --version 4.10.21 --features daemon --root
//! /opt/running-process`; a missing peer is reported and skipped.

use berth_client::Client;
use berth_wire::daemon::ServiceConfig;
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const RESTARTS: usize = 15;
const RUN_MS: u64 = 300;
const SERVICES: usize = 50;
const WRITE_SECS: u64 = 12;
/// Each writer: 10 KiB (100 lines of 100 bytes) every 10 ms, ~1 MB/s.
const CHUNK_LINES: usize = 100;
const TICK: Duration = Duration::from_millis(10);

fn now_ns() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

fn append(path: &Path, line: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    writeln!(f, "{line}").unwrap();
}

/// Service role: record start, run, record exit, crash.
fn crasher(dir: &Path) -> ! {
    append(&dir.join("starts"), &now_ns().to_string());
    std::thread::sleep(Duration::from_millis(RUN_MS));
    append(&dir.join("exits"), &now_ns().to_string());
    std::process::exit(1);
}

/// Service role: write ~1 MB/s of lines to stdout for WRITE_SECS, then
/// report the slowest write and how far behind schedule it fell.
fn writer(dir: &Path) -> ! {
    // All writers begin together, once every service has been started.
    while !dir.join("go").exists() {
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut out = std::io::stdout().lock();
    let me = std::process::id();
    let start = Instant::now();
    let (mut max_write, mut max_behind, mut bytes) = (Duration::ZERO, Duration::ZERO, 0usize);
    let mut seq = 0u64;
    let mut chunk = Vec::with_capacity(CHUNK_LINES * 100);
    let mut tick = 0u32;
    while start.elapsed() < Duration::from_secs(WRITE_SECS) {
        chunk.clear();
        for _ in 0..CHUNK_LINES {
            let head = format!("pid {me} line {seq} ");
            chunk.extend_from_slice(head.as_bytes());
            chunk.extend(std::iter::repeat_n(b'x', 99 - head.len()));
            chunk.push(b'\n');
            seq += 1;
        }
        let t = Instant::now();
        if out.write_all(&chunk).is_err() {
            break;
        }
        max_write = max_write.max(t.elapsed());
        bytes += chunk.len();
        tick += 1;
        let due = start + TICK * tick;
        let now = Instant::now();
        if now < due {
            std::thread::sleep(due - now);
        } else {
            max_behind = max_behind.max(now - due);
        }
    }
    let _ = out.flush();
    append(
        &dir.join(format!("w{me}")),
        &format!(
            "{bytes} {} {}",
            max_write.as_micros(),
            max_behind.as_micros()
        ),
    );
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Berth,
    Reference,
    Pm2,
}

struct Subject {
    kind: Kind,
    name: &'static str,
    dir: tempfile::TempDir,
    daemon: Option<Child>,
    socket: PathBuf,
    program: PathBuf,
}

impl Subject {
    fn start(kind: Kind, name: &'static str, program: &Path) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("berth-svc-bench")
            .tempdir_in("/tmp")
            .unwrap();
        let mut s = Subject {
            kind,
            name,
            dir,
            daemon: None,
            socket: PathBuf::new(),
            program: program.to_path_buf(),
        };
        match kind {
            Kind::Berth | Kind::Reference => {
                let (args, rel) = if kind == Kind::Berth {
                    (vec!["daemon"], "run/berth/daemon.sock")
                } else {
                    (vec!["start"], "run/running-process/daemon.sock")
                };
                s.socket = s.dir.path().join(rel);
                s.daemon = Some(
                    s.cmd(program)
                        .args(args)
                        .stdin(Stdio::null())
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .spawn()
                        .unwrap(),
                );
                let t = Instant::now();
                while Client::connect(&s.socket).is_err() {
                    assert!(
                        t.elapsed() < Duration::from_secs(20),
                        "{name} never answered"
                    );
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
            Kind::Pm2 => {
                let ok = s.pm2(&["ping"]);
                assert!(ok, "pm2 ping failed");
            }
        }
        s
    }

    fn cmd(&self, program: &Path) -> Command {
        let mut c = Command::new(program);
        c.env("XDG_RUNTIME_DIR", self.dir.path().join("run"))
            .env("XDG_STATE_HOME", self.dir.path().join("state"))
            .env("PM2_HOME", self.dir.path().join("pm2"))
            .env("BERTH_LOG", "warn")
            .env("RUST_LOG", "warn");
        c
    }

    fn pm2(&self, args: &[&str]) -> bool {
        self.cmd(&self.program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }

    fn daemon_pid(&self) -> u32 {
        match &self.daemon {
            Some(c) => c.id(),
            None => std::fs::read_to_string(self.dir.path().join("pm2/pm2.pid"))
                .unwrap()
                .trim()
                .parse()
                .unwrap(),
        }
    }

    /// Starts `n` services `{prefix}{i}` running `argv` with `env`.
    fn start_services(&self, prefix: &str, n: usize, argv: &[String], env: &[(&str, String)]) {
        match self.kind {
            Kind::Berth | Kind::Reference => {
                let mut c = Client::connect(&self.socket).unwrap();
                for i in 0..n {
                    c.service_start(ServiceConfig {
                        name: format!("{prefix}{i}"),
                        cmd: argv.to_vec(),
                        env: env
                            .iter()
                            .map(|(k, v)| (k.to_string(), v.clone()))
                            .collect(),
                        autorestart: true,
                        min_uptime_ms: 100,
                        restart_delay_ms: 1,
                        max_restarts: 0,
                        ..Default::default()
                    })
                    .unwrap();
                }
            }
            Kind::Pm2 => {
                let apps: Vec<_> = (0..n)
                    .map(|i| {
                        serde_json::json!({
                            "name": format!("{prefix}{i}"),
                            "script": argv[0],
                            "args": argv[1..].to_vec(),
                            "interpreter": "none",
                            "autorestart": true,
                            "min_uptime": 100,
                            "restart_delay": 0,
                            "max_restarts": 1_000_000,
                            "time": true,
                            "env": env.iter().map(|(k, v)| (k.to_string(), v.clone())).collect::<HashMap<_, _>>(),
                        })
                    })
                    .collect();
                let eco = self.dir.path().join(format!("{prefix}.json"));
                std::fs::write(&eco, serde_json::json!({ "apps": apps }).to_string()).unwrap();
                assert!(
                    self.pm2(&["start", eco.to_str().unwrap()]),
                    "pm2 start failed"
                );
            }
        }
    }

    fn delete_all(&self) {
        match self.kind {
            Kind::Berth | Kind::Reference => {
                let mut c = Client::connect(&self.socket).unwrap();
                c.service_delete("all").unwrap();
            }
            Kind::Pm2 => {
                self.pm2(&["delete", "all"]);
            }
        }
    }
}

impl Drop for Subject {
    fn drop(&mut self) {
        if self.kind == Kind::Pm2 {
            self.pm2(&["kill"]);
        }
        if let Some(mut c) = self.daemon.take() {
            if let Ok(mut cl) = Client::connect(&self.socket) {
                let _ = cl.service_delete("all");
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// utime + stime of `pid`, in seconds.
fn cpu_secs(pid: u32) -> f64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = text.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    ticks as f64 / berth_os::proc::clock_ticks() as f64
}

fn lines_u128(p: &Path) -> Vec<u128> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

fn wait_until(within: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < within {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

struct Figures {
    restart_ms: Vec<f64>,
    idle_rss: u64,
    rss50: u64,
    log_cpu: f64,
    written_mb: f64,
    max_write_ms: f64,
    max_behind_ms: f64,
    log_files_mb: f64,
}

fn dir_log_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    for e in rd.flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if p.is_dir() {
            total += dir_log_bytes(&p);
        } else if name.contains("log") && !name.ends_with(".spool") && !name.ends_with(".db") {
            total += e.metadata().map(|m| m.len()).unwrap_or(0);
        }
    }
    total
}

/// Crash-to-restart latencies, in ms, of every subject at once (so they
/// share the machine's noise).
fn restarts(subjects: &[Subject], exe: &Path) -> Vec<Vec<f64>> {
    let dirs: Vec<PathBuf> = subjects
        .iter()
        .map(|s| {
            let m = s.dir.path().join("crash");
            std::fs::create_dir_all(&m).unwrap();
            s.start_services(
                "crash",
                1,
                &[exe.display().to_string()],
                &[("BERTH_BENCH_CRASHER", m.display().to_string())],
            );
            m
        })
        .collect();
    wait_until(Duration::from_secs(120), || {
        dirs.iter()
            .all(|m| lines_u128(&m.join("starts")).len() > RESTARTS)
    });
    subjects
        .iter()
        .zip(&dirs)
        .map(|(s, m)| {
            s.delete_all();
            let starts = lines_u128(&m.join("starts"));
            let exits = lines_u128(&m.join("exits"));
            if starts.len() <= RESTARTS {
                eprintln!("{}: only {} starts", s.name, starts.len());
            }
            exits
                .iter()
                .zip(starts.iter().skip(1))
                .take(RESTARTS)
                .map(|(e, st)| (*st as f64 - *e as f64) / 1e6)
                .collect()
        })
        .collect()
}

/// Daemon RSS with 50 sleeping services, all subjects at once.
fn rss_with_services(subjects: &[Subject]) -> Vec<u64> {
    for s in subjects {
        s.start_services(
            "sleep",
            SERVICES,
            &["/bin/sleep".into(), "100000".into()],
            &[],
        );
    }
    std::thread::sleep(Duration::from_secs(3));
    let out = subjects.iter().map(|s| rss_kib(s.daemon_pid())).collect();
    for s in subjects {
        s.delete_all();
    }
    out
}

/// Log capture under 50 x 1 MB/s, one subject alone on the machine.
fn log_load(s: &Subject, exe: &Path, f: &mut Figures) {
    let pid = s.daemon_pid();
    let w = s.dir.path().join("writers");
    std::fs::create_dir_all(&w).unwrap();
    s.start_services(
        "log",
        SERVICES,
        &[exe.display().to_string()],
        &[("BERTH_BENCH_WRITER", w.display().to_string())],
    );
    std::thread::sleep(Duration::from_secs(2));
    std::fs::write(w.join("go"), "").unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let (c0, t0) = (cpu_secs(pid), Instant::now());
    std::thread::sleep(Duration::from_secs(WRITE_SECS - 2));
    f.log_cpu = (cpu_secs(pid) - c0) / t0.elapsed().as_secs_f64();
    wait_until(Duration::from_secs(30), || {
        std::fs::read_dir(&w).map(|r| r.count()).unwrap_or(0) > SERVICES
    });
    std::thread::sleep(Duration::from_secs(2));
    let (mut bytes, mut max_write, mut max_behind) = (0u64, 0u64, 0u64);
    for e in std::fs::read_dir(&w).unwrap().flatten() {
        if e.file_name() == "go" {
            continue;
        }
        let t = std::fs::read_to_string(e.path()).unwrap_or_default();
        let v: Vec<u64> = t
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        if v.len() == 3 {
            bytes += v[0];
            max_write = max_write.max(v[1]);
            max_behind = max_behind.max(v[2]);
        }
    }
    f.log_files_mb = dir_log_bytes(s.dir.path()) as f64 / 1e6;
    f.written_mb = bytes as f64 / 1e6;
    f.max_write_ms = max_write as f64 / 1e3;
    f.max_behind_ms = max_behind as f64 / 1e3;
    s.delete_all();
}

fn find(name: &str, extra: &[&str]) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = extra.iter().map(PathBuf::from).collect();
    dirs.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file())
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        f64::NAN
    } else {
        v[v.len() / 2]
    }
}

fn max(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::NAN, f64::max)
}

fn main() {
    if let Some(d) = std::env::var_os("BERTH_BENCH_CRASHER") {
        crasher(Path::new(&d));
    }
    if let Some(d) = std::env::var_os("BERTH_BENCH_WRITER") {
        writer(Path::new(&d));
    }
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let exe = std::env::current_exe().unwrap();
    // BERTH_BENCH_ONLY=berth measures berth alone (while tuning it).
    let only_berth = std::env::var("BERTH_BENCH_ONLY").is_ok_and(|v| v == "berth");
    let mut subjects = vec![Subject::start(
        Kind::Berth,
        "berth",
        Path::new(env!("CARGO_BIN_EXE_berth")),
    )];
    match find("pm2", &[]).filter(|_| !only_berth) {
        Some(p) => subjects.push(Subject::start(Kind::Pm2, "pm2", &p)),
        None => println!("pm2 not found (npm install -g pm2), or BERTH_BENCH_ONLY=berth: skipped"),
    }
    match std::env::var_os("RUNNING_PROCESS_DAEMON")
        .map(PathBuf::from)
        .or_else(|| find("running-process-daemon", &["/opt/running-process/bin"]))
        .filter(|_| !only_berth)
    {
        Some(p) => subjects.push(Subject::start(
            Kind::Reference,
            "running-process-daemon",
            &p,
        )),
        None => println!("running-process-daemon not found, or BERTH_BENCH_ONLY=berth: skipped"),
    }
    std::thread::sleep(Duration::from_millis(500));
    let mut figs: Vec<Figures> = subjects
        .iter()
        .map(|s| Figures {
            restart_ms: Vec::new(),
            idle_rss: rss_kib(s.daemon_pid()),
            rss50: 0,
            log_cpu: 0.0,
            written_mb: 0.0,
            max_write_ms: 0.0,
            max_behind_ms: 0.0,
            log_files_mb: 0.0,
        })
        .collect();
    for (f, r) in figs.iter_mut().zip(restarts(&subjects, &exe)) {
        f.restart_ms = r;
    }
    for (f, r) in figs.iter_mut().zip(rss_with_services(&subjects)) {
        f.rss50 = r;
    }
    for (s, f) in subjects.iter().zip(figs.iter_mut()) {
        log_load(s, &exe, f);
    }
    let runs: Vec<(&'static str, Figures)> = subjects.iter().map(|s| s.name).zip(figs).collect();
    drop(subjects);

    println!(
        "services benchmark: restart = exit-to-next-start over {RESTARTS} restarts of a service that runs {RUN_MS} ms; \
         RSS = daemon VmRSS idle and with {SERVICES} sleep services; log CPU = daemon CPU (share of one core) while \
         {SERVICES} services each write ~1 MB/s of 100-byte lines for {WRITE_SECS} s"
    );
    println!(
        "{:<24} {:>12} {:>12} {:>10} {:>10} {:>9} {:>11} {:>13} {:>13} {:>10}",
        "supervisor",
        "restart p50",
        "restart max",
        "idle RSS",
        "RSS x50",
        "log CPU",
        "written MB",
        "max write ms",
        "max behind ms",
        "logged MB"
    );
    for (name, f) in &runs {
        println!(
            "{:<24} {:>9.1} ms {:>9.1} ms {:>6} KiB {:>6} KiB {:>8.1}% {:>11.0} {:>13.2} {:>13.2} {:>10.0}",
            name,
            median(&f.restart_ms),
            max(&f.restart_ms),
            f.idle_rss,
            f.rss50,
            f.log_cpu * 100.0,
            f.written_mb,
            f.max_write_ms,
            f.max_behind_ms,
            f.log_files_mb
        );
    }
    let b = &runs[0].1;
    for (name, f) in runs.iter().skip(1) {
        println!(
            "berth / {name}: restart p50 {:.2}x, RSS x50 {:.2}x, log CPU {:.2}x (lower is better)",
            median(&b.restart_ms) / median(&f.restart_ms),
            b.rss50 as f64 / f.rss50 as f64,
            b.log_cpu / f.log_cpu
        );
    }
}
