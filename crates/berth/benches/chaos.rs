//! Chaos (issue 21, item 3): `kill -9` of the daemon at random points
//! while it works, then a restart on the same state, and checks that
//!
//! - nothing acknowledged is lost: every service whose start was answered
//!   is listed again, every project whose `up` was answered is known, the
//!   service dump holds at least the services of the last answered SAVE;
//! - nothing runs twice: at most one process of each service (marked by a
//!   unique `sleep` argument) after the new daemon re-adopted them;
//! - no store is corrupt: SQLite `PRAGMA integrity_check` is `ok`, the
//!   service dump is valid JSON.
//!
//! The operations hit: service start + SAVE, project up and down (native
//! runtime), PTY session spawn, snapshot save and restore. Each run picks
//! one and a delay from a seeded generator (the seed is printed; set
//! `BERTH_CHAOS_SEED` to replay a run).
//! `cargo bench -p berth --bench chaos -- --runs 300 [--ops 0,1,2,3]`.

mod common;

use berth_client::Client;
use berth_wire::daemon::{ServiceConfig, SpawnPtySessionRequest};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BERTH: &str = env!("CARGO_BIN_EXE_berth");

/// xorshift64*: reproducible from the printed seed, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

struct Sandbox {
    root: PathBuf,
    child: Option<Child>,
    /// Daemons a CLI started because the kill came first.
    strays: usize,
}

impl Sandbox {
    fn socket(&self) -> PathBuf {
        self.root.join("run/berth/daemon.sock")
    }
    fn state(&self) -> PathBuf {
        self.root.join("state/berth")
    }
    fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("XDG_RUNTIME_DIR", self.root.join("run"))
            .env("XDG_STATE_HOME", self.root.join("state"))
            .env("BERTH_LOG", "warn")
            .env_remove("BERTH_SOCKET")
            .env_remove("BERTH_SCOPE");
        c
    }
    fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.root.join("daemon.log"))
            .unwrap();
        let child = self
            .cmd(BERTH)
            .arg("daemon")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let t = Instant::now();
        while Client::connect(&self.socket())
            .and_then(|mut c| c.ping())
            .is_err()
        {
            if t.elapsed() > Duration::from_secs(30) {
                let log = std::fs::read_to_string(self.root.join("daemon.log")).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(30).collect();
                let exited = self
                    .child
                    .as_mut()
                    .and_then(|c| c.try_wait().ok().flatten());
                panic!(
                    "the daemon did not come back (exit: {exited:?}); its log ends:\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        // A CLI that found no daemon starts one (as it should): when the
        // kill landed just before `berth up` connected, that daemon did
        // the work. It goes too, so the restart is ours.
        let mine = format!("XDG_RUNTIME_DIR={}", self.root.join("run").display());
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if !cmd.split(|b| *b == 0).any(|a| a == b"daemon") {
                continue;
            }
            let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
            if env.split(|b| *b == 0).any(|v| v == mine.as_bytes()) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
                self.strays += 1;
            }
        }
        // The listening sockets go with the last process holding them.
        let t = Instant::now();
        while Client::connect(&self.socket()).is_ok() && t.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    fn client(&self) -> Client {
        Client::connect(&self.socket()).unwrap()
    }
    fn berth(&self, args: &[&str]) -> bool {
        self.cmd(BERTH)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Pids of processes whose command line is exactly `sleep <marker>`.
fn running(marker: &str) -> Vec<u32> {
    let want = format!("sleep\0{marker}\0");
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| {
                s.rsplit_once(')')
                    .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
            })
            .unwrap_or(true);
        if cmd == want.as_bytes() && !zombie {
            out.push(pid);
        }
    }
    out
}

fn integrity(db: &Path) -> String {
    let c = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap();
    c.query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap()
}

fn dump_names(path: &Path) -> Result<BTreeSet<String>, String> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(BTreeSet::new());
    };
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("invalid dump ({e}): {text:?}"))?;
    let list = v
        .as_array()
        .cloned()
        .or_else(|| v["services"].as_array().cloned())
        .ok_or_else(|| format!("no list in the dump: {v}"))?;
    Ok(list
        .iter()
        .filter_map(|s| s["name"].as_str().map(str::to_string))
        .collect())
}

#[derive(Default)]
struct Model {
    /// Service name → its marker, for starts that were answered.
    services: BTreeMap<String, String>,
    /// Names the last answered SAVE held.
    saved: BTreeSet<String>,
    /// Projects whose `up` was answered (and no `down` after), and every
    /// project ever tried (for markers).
    projects_up: BTreeSet<String>,
    projects: BTreeMap<String, String>,
    /// Session markers of answered spawns.
    sessions: Vec<String>,
    next: u32,
}

impl Model {
    /// A `sleep` argument no other run of this bench uses: this process's
    /// pid, the kind, the operation number.
    fn marker(&self, kind: u32, n: u32) -> String {
        format!("{}{kind}{n:05}", std::process::id())
    }

    fn markers(&self) -> impl Iterator<Item = &String> {
        self.services
            .values()
            .chain(self.projects.values())
            .chain(self.sessions.iter())
    }
}

fn project_dir(root: &Path, name: &str, marker: &str) -> PathBuf {
    let dir = root.join("projects-src").join(name);
    if !dir.exists() {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("compose.yaml"),
            format!("services:\n  web:\n    command: [\"sleep\", \"{marker}\"]\n"),
        )
        .unwrap();
    }
    dir
}

/// Runs operation `op` while a killer waits `delay`; returns what was
/// answered, as the model's update, and the operation's name.
fn run_op(s: &Sandbox, m: &mut Model, op: u64, delay: Duration) -> (&'static str, bool) {
    let sock = s.socket();
    let pid = s.child.as_ref().unwrap().id() as i32;
    let killer = std::thread::spawn(move || {
        std::thread::sleep(delay);
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    });
    m.next += 1;
    let n = m.next;
    let what = match op {
        0 => {
            let name = format!("svc{n}");
            let marker = m.marker(7, n);
            let r = Client::connect(&sock).and_then(|mut c| {
                c.service_start(ServiceConfig {
                    name: name.clone(),
                    cmd: vec!["sleep".into(), marker.clone()],
                    autorestart: true,
                    ..Default::default()
                })
            });
            let mut saved = false;
            if r.is_ok() {
                m.services.insert(name, marker);
                let names: BTreeSet<String> = m.services.keys().cloned().collect();
                if Client::connect(&sock)
                    .and_then(|mut c| c.service_save())
                    .is_ok()
                {
                    m.saved = names;
                    saved = true;
                }
            }
            ("service start + SAVE", saved)
        }
        1 => {
            let name = format!("proj{}", n % 4);
            let fresh = m.marker(8, n);
            let marker = m.projects.entry(name.clone()).or_insert(fresh).clone();
            let dir = project_dir(&s.root, &name, &marker);
            let p = dir.to_str().unwrap();
            if m.projects_up.contains(&name) {
                let ok = s.berth(&["down", "--keep", p]);
                if ok {
                    m.projects_up.remove(&name);
                }
                ("project down", ok)
            } else {
                let ok = s.berth(&["up", "--runtime", "native", p]);
                if ok {
                    m.projects_up.insert(name);
                }
                ("project up", ok)
            }
        }
        2 => {
            let marker = m.marker(9, n);
            let r = Client::connect(&sock).and_then(|mut c| {
                c.spawn_pty(SpawnPtySessionRequest {
                    argv: vec!["sleep".into(), marker.clone()],
                    ..Default::default()
                })
            });
            let ok = r.is_ok();
            if ok {
                m.sessions.push(marker);
            }
            ("session spawn", ok)
        }
        _ => {
            // A snapshot of a project that is up, then a restore of it.
            let Some(name) = m.projects_up.iter().next().cloned() else {
                killer.join().unwrap();
                return ("snapshot (no project up: kill only)", false);
            };
            let out = s
                .cmd(BERTH)
                .args(["snapshot", "save", &name, "--json"])
                .output();
            let mut ok = false;
            if let Some(out) = out.ok().filter(|o| o.status.success()) {
                let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
                if let Some(id) = v["snapshot_id"].as_str() {
                    ok = s.berth(&["snapshot", "restore", &name, id]);
                }
            }
            ("snapshot save + restore", ok)
        }
    };
    killer.join().unwrap();
    what
}

/// After a restart: the checks the module docs list. Returns the failures.
fn check(s: &Sandbox, m: &Model) -> Vec<String> {
    let mut bad = Vec::new();
    let listed: BTreeSet<String> = s
        .client()
        .service_list()
        .unwrap()
        .into_iter()
        .map(|(st, _)| st.name)
        .collect();
    for name in m.services.keys() {
        if !listed.contains(name) {
            bad.push(format!("answered service {name} is gone"));
        }
    }
    match dump_names(&s.state().join("berth.services.json")) {
        Ok(names) => {
            if !m.saved.is_subset(&names) {
                bad.push(format!(
                    "the dump {names:?} lost part of the last answered SAVE {:?}",
                    m.saved
                ));
            }
        }
        Err(e) => bad.push(e),
    }
    for name in &m.projects_up {
        if !s.berth(&["project", "status", name]) {
            bad.push(format!("answered project {name} is unknown"));
        }
    }
    // Let re-adoption and restarts settle, then count.
    std::thread::sleep(Duration::from_millis(300));
    for marker in m.markers() {
        let pids = running(marker);
        if pids.len() > 1 {
            bad.push(format!(
                "sleep {marker} runs {} times: {pids:?}",
                pids.len()
            ));
        }
    }
    bad
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("chaos: bench");
        return;
    }
    let runs: usize = arg("--runs").map(|n| n.parse().unwrap()).unwrap_or(300);
    let seed: u64 = std::env::var("BERTH_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    println!("chaos: seed {seed} (BERTH_CHAOS_SEED={seed} replays it), {runs} runs");
    let mut rng = Rng(seed);
    // `--ops 0,1,2,3`: which operations (service start + SAVE, project up
    // or down, session spawn, snapshot save + restore); all by default.
    let ops: Vec<u64> = arg("--ops")
        .map(|o| {
            o.split(',')
                .map(|n| n.parse().expect("--ops 0,1,2,3"))
                .collect()
        })
        .unwrap_or_else(|| vec![0, 1, 2, 3]);
    let dir = tempfile::Builder::new()
        .prefix("berth-chaos")
        .tempdir_in("/tmp")
        .unwrap();
    let mut s = Sandbox {
        root: dir.path().to_path_buf(),
        child: None,
        strays: 0,
    };
    s.start();
    let mut m = Model::default();
    // Per operation: runs, and runs whose every step was answered before
    // the kill.
    let mut per_op: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut failures = Vec::new();
    let t = Instant::now();
    for run in 0..runs {
        let op = ops[rng.below(ops.len() as u64) as usize];
        // The kill lands anywhere from before the request to just after
        // the answer: each operation's window is about its duration here.
        let window_us = [15_000, 120_000, 15_000, 250_000][op as usize];
        let delay = Duration::from_micros(rng.below(window_us));
        let (what, answered) = run_op(&s, &mut m, op, delay);
        let e = per_op.entry(what).or_default();
        e.0 += 1;
        e.1 += answered as usize;
        s.kill9();
        eprintln!("run {run}: {what} (answered: {answered}), killed after {delay:?}");
        let db = s.state().join("berth.db");
        if db.exists() {
            let r = integrity(&db);
            if r != "ok" {
                failures.push(format!("run {run} ({what}): integrity_check: {r}"));
            }
        }
        s.start();
        for f in check(&s, &m) {
            failures.push(format!("run {run} ({what}, kill after {delay:?}): {f}"));
        }
        if !failures.is_empty() {
            break;
        }
    }
    // Leave nothing behind.
    let _ = s.client().service_delete("all");
    for (name, marker) in &m.projects {
        let dir = project_dir(&s.root, name, marker);
        s.berth(&["down", dir.to_str().unwrap()]);
    }
    let _ = s.client().bulk_terminate(0, "", 10);
    s.kill9();
    // Whatever is left (an operation killed half-way) goes too.
    for marker in m.markers() {
        for pid in running(marker) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
    println!(
        "chaos: {} runs in {:.0} s; operations (runs, answered before the kill): {per_op:?}",
        runs,
        t.elapsed().as_secs_f64()
    );
    println!(
        "daemons started by the CLI after a kill (and killed too): {}",
        s.strays
    );
    println!(
        "answered and checked after each restart: {} services, {} projects up, {} sessions, last SAVE of {}",
        m.services.len(),
        m.projects_up.len(),
        m.sessions.len(),
        m.saved.len()
    );
    if !failures.is_empty() {
        panic!("chaos failed (seed {seed}):\n{}", failures.join("\n"));
    }
    println!("chaos: ok (nothing answered lost, nothing twice, integrity_check ok, dumps valid)");
}
