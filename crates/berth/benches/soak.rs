//! Soak (issue 21, item 2): many rounds of the daemon's life cycles, with
//! its open descriptors, threads, resident set and SQLite size measured
//! before and after. Each round does, against one `berth daemon`:
//!
//! - a PTY session: spawn, attach (backlog read), detach, terminate;
//! - a pipe session: spawn, attach to stdout, detach, terminate;
//! - a service: start, restart, stop, delete (runpm requests);
//! - a native Compose project: `berth up --runtime native`, `berth down`.
//!
//! Each round ends with PURGE_EXITED_SESSIONS, as a tidy client does
//! (`--no-purge` leaves ended sessions listed, which keeps their
//! descriptors: see `docs/reliability.md`).
//!
//! After the rounds (and a settle of up to 20 s for lingering work) it
//! asserts: no more descriptors or threads than before, no zombie child of
//! the daemon, RSS grown by less than [`RSS_BOUND_KIB`], and prints every
//! figure. `cargo bench -p berth --bench soak -- --rounds 1000` (the
//! figures in `docs/reliability.md`); `.ci/run` runs `--rounds 20`.

mod common;

use berth_client::Client;
use berth_wire::daemon::{
    AttachPipeStreamRequest, AttachPtySessionRequest, PipeStreamKind, ServiceConfig,
    SpawnPipeSessionRequest, SpawnPtySessionRequest,
};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// RSS growth over the whole run that counts as unbounded.
const RSS_BOUND_KIB: u64 = 32 * 1024;

fn rounds() -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == "--rounds")
        .and_then(|i| args.get(i + 1))
        .map(|n| n.parse().expect("--rounds N"))
        .unwrap_or(1000)
}

#[derive(Debug, Clone, Copy)]
struct Figures {
    fds: usize,
    threads: usize,
    rss_kib: u64,
    sqlite_bytes: u64,
}

fn count_dir(p: String) -> usize {
    std::fs::read_dir(p).map(|d| d.count()).unwrap_or(0)
}

/// Every SQLite file under `state` (database, WAL, shared memory).
fn sqlite_bytes(state: &Path) -> u64 {
    fn walk(p: &Path, acc: &mut u64) {
        let Ok(d) = std::fs::read_dir(p) else { return };
        for e in d.flatten() {
            let path = e.path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if path.is_dir() {
                walk(&path, acc);
            } else if name.ends_with(".db")
                || name.ends_with(".db-wal")
                || name.ends_with(".db-shm")
            {
                *acc += e.metadata().map(|m| m.len()).unwrap_or(0);
            }
        }
    }
    let mut n = 0;
    walk(state, &mut n);
    n
}

fn measure(pid: u32, state: &Path) -> Figures {
    Figures {
        fds: count_dir(format!("/proc/{pid}/fd")),
        threads: count_dir(format!("/proc/{pid}/task")),
        rss_kib: common::rss_kib(pid),
        sqlite_bytes: sqlite_bytes(state),
    }
}

/// Children of `pid` in state Z (exited, never reaped).
fn zombies(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        if f.len() > 2 && f[0] == "Z" && f[1] == pid.to_string() {
            out.push(child);
        }
    }
    out
}

struct Soak {
    socket: PathBuf,
    root: PathBuf,
    project: PathBuf,
    purge: bool,
}

impl Soak {
    fn client(&self) -> Client {
        Client::connect(&self.socket).expect("daemon answers")
    }

    fn berth(&self, args: &[&str]) {
        let out = Command::new(env!("CARGO_BIN_EXE_berth"))
            .args(args)
            .env("XDG_RUNTIME_DIR", self.root.join("run"))
            .env("XDG_STATE_HOME", self.root.join("state"))
            .env_remove("BERTH_SOCKET")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "berth {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn pty_round(&self) {
        let id = self
            .client()
            .spawn_pty(SpawnPtySessionRequest {
                argv: vec![
                    "/bin/sh".into(),
                    "-c".into(),
                    "echo soak; exec sleep 60".into(),
                ],
                rows: 24,
                cols: 80,
                ..Default::default()
            })
            .unwrap()
            .session_id;
        let (_, stream) = self
            .client()
            .attach_pty(AttachPtySessionRequest {
                session_id: id.clone(),
                ..Default::default()
            })
            .unwrap();
        drop(stream);
        self.client().detach_pty(&id).ok();
        self.client().terminate_pty(&id, 100).unwrap();
    }

    fn pipe_round(&self) {
        let id = self
            .client()
            .spawn_pipe(SpawnPipeSessionRequest {
                argv: vec![
                    "/bin/sh".into(),
                    "-c".into(),
                    "echo soak; exec sleep 60".into(),
                ],
                ..Default::default()
            })
            .unwrap()
            .session_id;
        let (_, stream) = self
            .client()
            .attach_pipe(AttachPipeStreamRequest {
                session_id: id.clone(),
                stream: PipeStreamKind::Stdout as i32,
                ..Default::default()
            })
            .unwrap();
        drop(stream);
        self.client().terminate_pipe(&id, 100).unwrap();
    }

    fn service_round(&self, i: usize) {
        let name = format!("soak{}", i % 3);
        let mut c = self.client();
        c.service_start(ServiceConfig {
            name: name.clone(),
            cmd: vec![
                "/bin/sh".into(),
                "-c".into(),
                "echo up; exec sleep 60".into(),
            ],
            autorestart: true,
            ..Default::default()
        })
        .unwrap();
        c.service_restart(&name).unwrap();
        c.service_stop(&name).unwrap();
        c.service_delete(&name).unwrap();
    }

    fn project_round(&self) {
        let p = self.project.to_str().unwrap();
        self.berth(&["up", "--runtime", "native", p]);
        self.berth(&["down", p]);
    }

    fn round(&self, i: usize) {
        self.pty_round();
        self.pipe_round();
        self.service_round(i);
        self.project_round();
        if self.purge {
            // Ended sessions stay listed (with their exit status and
            // output) until a client purges them, as in running-process.
            self.client().purge_sessions("").unwrap();
        }
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("soak: bench");
        return;
    }
    let n = rounds();
    let berth = PathBuf::from(env!("CARGO_BIN_EXE_berth"));
    let d = common::start("berth", &berth, &["daemon"], "run/berth/daemon.sock", None);
    let pid = d.child.id();
    let project = d.root().join("soakproj");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::write(
        project.join("compose.yaml"),
        "services:\n  web:\n    command: [\"sh\", \"-c\", \"echo web; exec sleep 60\"]\n",
    )
    .unwrap();
    let s = Soak {
        socket: d.socket.clone(),
        root: d.root().to_path_buf(),
        project,
        purge: !std::env::args().any(|a| a == "--no-purge"),
    };
    let state = d.root().join("state");
    // Warm-up: lazily made things (pools, caches, the project store) exist
    // before the baseline is taken.
    for i in 0..3 {
        s.round(i);
    }
    std::thread::sleep(Duration::from_secs(2));
    let before = measure(pid, &state);
    let t = Instant::now();
    for i in 0..n {
        s.round(i);
        if (i + 1) % 100 == 0 {
            let f = measure(pid, &state);
            eprintln!(
                "round {}: fds {} threads {} rss {} KiB sqlite {} B ({:.0} s)",
                i + 1,
                f.fds,
                f.threads,
                f.rss_kib,
                f.sqlite_bytes,
                t.elapsed().as_secs_f64()
            );
        }
    }
    let took = t.elapsed();
    // Let terminated children be reaped and idle blocking threads exit.
    let settle = Instant::now();
    if s.purge {
        std::thread::sleep(Duration::from_millis(500));
        s.client().purge_sessions("").unwrap();
    }
    let mut after = measure(pid, &state);
    while (after.fds > before.fds || after.threads > before.threads || !zombies(pid).is_empty())
        && settle.elapsed() < Duration::from_secs(20)
    {
        std::thread::sleep(Duration::from_millis(250));
        after = measure(pid, &state);
    }
    let z = zombies(pid);
    println!(
        "soak: {n} rounds in {:.1} s ({:.1} ms a round: PTY, pipe, service, project)",
        took.as_secs_f64(),
        took.as_secs_f64() * 1000.0 / n.max(1) as f64
    );
    println!("                 before      after");
    println!("open fds      {:>9}  {:>9}", before.fds, after.fds);
    println!("threads       {:>9}  {:>9}", before.threads, after.threads);
    println!("RSS KiB       {:>9}  {:>9}", before.rss_kib, after.rss_kib);
    println!(
        "SQLite bytes  {:>9}  {:>9}",
        before.sqlite_bytes, after.sqlite_bytes
    );
    println!("zombies       {:>9}  {:>9}", 0, z.len());
    let mut bad = Vec::new();
    if after.fds > before.fds {
        bad.push(format!("fd leak: {} -> {}", before.fds, after.fds));
    }
    if after.threads > before.threads {
        bad.push(format!(
            "thread leak: {} -> {}",
            before.threads, after.threads
        ));
    }
    if after.rss_kib > before.rss_kib + RSS_BOUND_KIB {
        bad.push(format!("RSS grew {} KiB", after.rss_kib - before.rss_kib));
    }
    if !z.is_empty() {
        bad.push(format!("zombie children of the daemon: {z:?}"));
    }
    if !bad.is_empty() {
        let _ = std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| {
            for e in d.flatten() {
                if let Ok(l) = std::fs::read_link(e.path()) {
                    eprintln!("fd {}: {}", e.file_name().to_string_lossy(), l.display());
                }
            }
        });
        panic!("soak failed: {}", bad.join("; "));
    }
    println!("soak: ok (no fd or thread leak, no zombie, RSS within {RSS_BOUND_KIB} KiB)");
}
