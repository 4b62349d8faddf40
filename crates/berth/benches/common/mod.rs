//! Shared by the benchmarks: starting a daemon (berth or a peer) in a
//! private XDG sandbox, and reading its memory and CPU from /proc.
#![allow(dead_code)]

pub(crate) mod jwt;
pub(crate) mod lines;

use berth_client::Client;
use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::unistd::Pid;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A daemon under measurement, killed on drop.
pub(crate) struct Daemon {
    pub name: &'static str,
    pub child: Child,
    pub socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Pins the calling thread to one CPU; processes it spawns from now on
/// inherit the pin. Returns the CPUs it was allowed before, for
/// [`unpin`].
pub(crate) fn pin_to(cpu: usize) -> Option<CpuSet> {
    let this_thread = Pid::from_raw(0);
    let before = sched_getaffinity(this_thread).ok();
    let mut set = CpuSet::new();
    if set.set(cpu).is_ok() {
        let _ = sched_setaffinity(this_thread, &set);
    }
    before
}

/// Gives the calling thread back the CPUs `pin_to` took from it.
pub(crate) fn unpin(before: Option<CpuSet>) {
    if let Some(set) = before {
        let _ = sched_setaffinity(Pid::from_raw(0), &set);
    }
}

/// Number of CPUs.
pub(crate) fn cpus() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// Starts `program args` with XDG dirs in a fresh temp dir and waits until
/// `socket_rel` (relative to that dir) answers; optionally pinned to a CPU.
pub(crate) fn start(
    name: &'static str,
    program: &Path,
    args: &[&str],
    socket_rel: &str,
    cpu: Option<usize>,
) -> Daemon {
    let dir = tempfile::Builder::new()
        .prefix("berth-bench")
        .tempdir_in("/tmp")
        .unwrap();
    let socket = dir.path().join(socket_rel);
    let mut cmd = Command::new(program);
    // A child inherits the CPU set of the thread that spawns it: pin this
    // thread for the spawn only.
    let before = cpu.map(pin_to);
    let spawned = cmd
        .args(args)
        .env("XDG_RUNTIME_DIR", dir.path().join("run"))
        .env("XDG_STATE_HOME", dir.path().join("state"))
        .env("BERTH_LOG", "warn")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    unpin(before.flatten());
    let child = spawned.unwrap();
    let t = Instant::now();
    while Client::connect(&socket).is_err() {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "{name} never answered on {}",
            socket.display()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    Daemon {
        name,
        child,
        socket,
        _dir: dir,
    }
}

impl Daemon {
    /// The sandbox root: `run/` (XDG_RUNTIME_DIR) and `state/`
    /// (XDG_STATE_HOME) are under it.
    pub(crate) fn root(&self) -> &Path {
        self._dir.path()
    }
}

/// Resident set of `pid` in KiB.
pub(crate) fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// User + system CPU seconds of `pid` (all threads).
pub(crate) fn cpu_secs(pid: u32) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let f: Vec<&str> = s.rsplit_once(')').unwrap().1.split_whitespace().collect();
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    ticks as f64 / 100.0
}

/// The published running-process-daemon: $RUNNING_PROCESS_DAEMON,
/// /opt/running-process/bin, or PATH.
pub(crate) fn peer() -> Option<PathBuf> {
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

/// Raises the soft descriptor limit to the hard one (`ulimit -n`) by
/// re-running this program once under `sh -c 'ulimit -n "$(ulimit -Hn)";
/// exec ...'` (the shell's `ulimit`, so no extra crate feature); the
/// processes the bench starts inherit it. `marker` is the environment
/// variable that says the re-run happened.
pub(crate) fn raise_nofile(marker: &str) {
    use std::os::unix::process::CommandExt;
    if std::env::var_os(marker).is_some() {
        return;
    }
    let err = Command::new("/bin/sh")
        .arg("-c")
        .arg(r#"ulimit -n "$(ulimit -Hn)" && exec "$0" "$@""#)
        .arg(std::env::current_exe().unwrap())
        .args(std::env::args().skip(1))
        .env(marker, "1")
        .exec();
    panic!("cannot re-run under a raised limit: {err}");
}

/// The soft limit on open descriptors, from /proc/self/limits.
pub(crate) fn nofile() -> String {
    std::fs::read_to_string("/proc/self/limits")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3).map(str::to_string))
        .unwrap_or_default()
}

/// Open descriptors of `pid` (entries of /proc/PID/fd).
pub(crate) fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// The `p` quantile (0..=1) of sorted values (nearest rank).
pub(crate) fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

/// The value of `--name VALUE` on the command line.
pub(crate) fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}
