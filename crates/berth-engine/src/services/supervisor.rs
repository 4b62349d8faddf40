//! One task per service: it owns the service's process, waits for it to
//! exit, applies the restart policy, and carries out stop / restart /
//! delete commands one at a time, so a service never sees two operations
//! interleave.
//!
//! A service process leads its own session (so its own process group).
//! Ending it means SIGTERM to every process of that session and to their
//! descendants (which also catches grandchildren that moved to another
//! group), then SIGKILL to whatever is left after `kill_timeout`. Leftovers
//! of a process that exited by itself are ended the same way before a
//! restart, so restarts never accumulate orphans.

use super::policy::{self, Decision, Exit};
use super::{ServiceError, ServiceInfo, ServiceSpec, Shared, Status};
use berth_os::proc::{Liveness, ProcessIdentity, ProcessTable};
use berth_os::signal::{self, Signal};
use berth_os::OsError;
use std::os::fd::OwnedFd;
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// A request to a service's task.
pub(crate) enum Cmd {
    /// End the process (if any) and stay down. Replies whether something
    /// was running or about to.
    Stop {
        why: StopWhy,
        /// Grace before SIGKILL instead of the spec's kill timeout.
        grace: Option<Duration>,
        reply: oneshot::Sender<bool>,
    },
    /// Start (or with `restart`, end and start again), optionally with a
    /// new definition.
    Start {
        spec: Option<ServiceSpec>,
        restart: bool,
        reply: oneshot::Sender<Result<ServiceInfo, ServiceError>>,
    },
    /// End the process and forget the service.
    Delete { reply: oneshot::Sender<()> },
}

/// Who asked for a stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StopWhy {
    Request,
    Shutdown,
}

/// How a task begins.
pub(crate) enum Boot {
    /// Nothing runs; wait for commands.
    Idle,
    /// A process left by a previous daemon still runs: supervise it.
    Adopt(Live),
    /// The process ended while the daemon was down.
    Lost,
    /// A previous daemon died while stopping it: finish the stop.
    FinishStop(Live),
}

/// A running service process.
pub(crate) struct Live {
    id: ProcessIdentity,
    /// Start time, seconds since the epoch.
    started: f64,
    proc: Proc,
}

enum Proc {
    /// Our child: waited for, so its exit status is known.
    Child(tokio::process::Child),
    /// Not our child (left by a previous daemon): watched through a pidfd,
    /// or polled where pidfds are missing.
    Adopted(Option<AsyncFd<OwnedFd>>),
}

impl Live {
    fn adopt(id: ProcessIdentity) -> Self {
        let fd = match signal::pidfd(id) {
            Ok(Some(fd)) => berth_os::async_fd::register(fd, Interest::READABLE).ok(),
            _ => None,
        };
        Self {
            id,
            started: id.started_at(),
            proc: Proc::Adopted(fd),
        }
    }

    /// Waits for the process to end.
    async fn wait(&mut self) -> Exit {
        match &mut self.proc {
            Proc::Child(c) => match c.wait().await {
                Ok(st) => exit_of(st),
                Err(_) => Exit::Unknown,
            },
            Proc::Adopted(fd) => {
                if let Some(fd) = fd {
                    // A pidfd turns readable when its process exits.
                    if let Ok(mut g) = fd.readable().await {
                        g.retain_ready();
                        return Exit::Unknown;
                    }
                }
                while self.id.liveness() == Liveness::Alive {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Exit::Unknown
            }
        }
    }

    /// The exit, if it has happened.
    fn try_exit(&mut self) -> Option<Exit> {
        match &mut self.proc {
            Proc::Child(c) => match c.try_wait() {
                Ok(Some(st)) => Some(exit_of(st)),
                Ok(None) => None,
                Err(_) => Some(Exit::Unknown),
            },
            Proc::Adopted(_) => (self.id.liveness() != Liveness::Alive).then_some(Exit::Unknown),
        }
    }
}

fn exit_of(st: std::process::ExitStatus) -> Exit {
    match (st.code(), st.signal()) {
        (Some(c), _) => Exit::Code(c),
        (None, Some(s)) => Exit::Signal(s),
        _ => Exit::Unknown,
    }
}

fn ended(id: &ProcessIdentity) -> bool {
    id.liveness() != Liveness::Alive
}

/// The processes of a service whose session leader is (or was) `leader`:
/// every member of its session, and all their descendants.
fn tree(leader: ProcessIdentity) -> Vec<ProcessIdentity> {
    let table = ProcessTable::snapshot();
    if let Some(st) = table.get(leader.pid) {
        if st.start_ticks != leader.start_ticks {
            // The pid was reused, so the old session is empty: the kernel
            // does not recycle a pid still naming a session or group.
            return Vec::new();
        }
    }
    let me = std::process::id();
    let mut out = table.session_members(leader.pid as i32);
    let roots: Vec<u32> = out.iter().map(|p| p.pid).chain([leader.pid]).collect();
    for r in roots {
        for d in table.descendants_deepest_first(r) {
            if !out.contains(&d) {
                out.push(d);
            }
        }
    }
    out.retain(|p| p.pid != me && p.pid > 1);
    out
}

/// Ends the service's whole tree: SIGTERM to all, SIGKILL to what is left
/// after `grace`. With `live`, also collects the main process's exit.
/// Returns that exit and whether SIGKILL was needed.
async fn end_tree(
    leader: ProcessIdentity,
    grace: Duration,
    mut live: Option<&mut Live>,
) -> (Option<Exit>, bool) {
    let mut exit = None;
    let mut targets = tree(leader);
    if live.is_some() && !targets.contains(&leader) {
        targets.push(leader);
    }
    if targets.is_empty() {
        return (None, false);
    }
    for t in &targets {
        let _ = signal::send(*t, Signal::SIGTERM);
    }
    let deadline = Instant::now() + grace;
    loop {
        if let Some(l) = live.as_deref_mut() {
            if exit.is_none() {
                exit = l.try_exit();
            }
        }
        let main_done = live.is_none() || exit.is_some();
        if main_done && targets.iter().all(ended) {
            return (exit, false);
        }
        if Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Survivors, and whatever they forked meanwhile.
    for t in tree(leader) {
        if !targets.contains(&t) {
            targets.push(t);
        }
    }
    for t in &targets {
        if !ended(t) {
            let _ = signal::send(*t, Signal::SIGKILL);
        }
    }
    if let Some(l) = live {
        if exit.is_none() {
            exit = Some(l.wait().await);
        }
    }
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until && !targets.iter().all(ended) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    (exit, true)
}

/// `12 ms`, `3.2 s`.
pub(crate) fn fmt_dur(d: Duration) -> String {
    if d < Duration::from_secs(10) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// The environment variable holding a service process's id (a decimal
/// `u32`). Together with [`MARK_STATE`] it lets a restarted daemon find a
/// process a killed daemon spawned but never recorded (issue 21, chaos).
pub(crate) const MARK_ID: &str = "BERTH_SERVICE_ID";
/// The environment variable holding the state the service belongs to
/// (the path of the engine's dump file, one per database: scopes share a
/// directory), so two daemons never take each other's processes.
pub(crate) const MARK_STATE: &str = "BERTH_SERVICE_STATE";
/// Test-only: milliseconds to block between spawning a service process
/// and recording its pid, so a test can kill the daemon in that window
/// (`crates/berth/tests/reliability.rs`). Never set it in production.
const TEST_PAUSE_AFTER_SPAWN: &str = "BERTH_TEST_PAUSE_AFTER_SPAWN_MS";

fn test_pause_after_spawn() {
    if let Some(ms) = std::env::var(TEST_PAUSE_AFTER_SPAWN)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        std::thread::sleep(Duration::from_millis(ms));
    }
}

/// Session leaders carrying this state's marker, by service id: read from
/// `/proc/PID/environ` of every process the daemon may read. A grandchild
/// inherits the marker but does not lead the session, so it is skipped.
pub(crate) fn marked_leaders(state: &str) -> std::collections::HashMap<u32, ProcessIdentity> {
    let want_state = format!("{MARK_STATE}={state}");
    let id_prefix = format!("{MARK_ID}=");
    let mut found = std::collections::HashMap::new();
    for pid in berth_os::proc::all_pids() {
        let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        let mut ours = false;
        let mut id = None;
        for var in env.split(|b| *b == 0) {
            let Ok(var) = std::str::from_utf8(var) else {
                continue;
            };
            if var == want_state {
                ours = true;
            } else if let Some(v) = var.strip_prefix(&id_prefix) {
                id = v.parse::<u32>().ok();
            }
        }
        let (true, Some(id)) = (ours, id) else {
            continue;
        };
        let Ok(st) = berth_os::proc::read_stat(pid) else {
            continue;
        };
        if st.session == pid as i32 && !st.is_zombie() {
            found.insert(
                id,
                ProcessIdentity {
                    pid,
                    start_ticks: st.start_ticks,
                },
            );
        }
    }
    found
}

/// How a recovered service begins, from what a previous daemon recorded
/// and the `marked` leaders found running ([`marked_leaders`]).
pub(crate) fn recover_boot(
    sh: &Shared,
    info: &mut ServiceInfo,
    spools: &[super::logs::SpoolPos; 2],
    marked: &std::collections::HashMap<u32, ProcessIdentity>,
) -> Boot {
    let mut id = ProcessIdentity {
        pid: info.pid,
        start_ticks: info.start_ticks,
    };
    let mut alive = info.pid != 0 && id.is_running();
    let mut spools = spools.clone();
    let unrecorded = marked.get(&info.id).copied().filter(|m| *m != id);
    if let (false, false, Some(found)) = (alive, info.status.is_up(), unrecorded) {
        // A process of a service recorded as down: nobody asked for it
        // (a daemon died before writing the start intent). Finish it off
        // rather than let a later start run a second one.
        tracing::warn!(service = %info.spec.name, pid = found.pid, "ending an unrecorded process of a stopped service");
        return Boot::FinishStop(Live::adopt(found));
    }
    if !alive && info.status.is_up() {
        // A daemon killed between spawning a process and recording it
        // left a process nobody knows: find it by its marker, or by the
        // spool it writes to.
        let spool = sh.hub.spool_file(info.id, super::logs::Stream::Out);
        if let Some(found) = unrecorded.or_else(|| leader_writing_to(&spool)) {
            tracing::info!(service = %info.spec.name, pid = found.pid, "found an unrecorded service process by its spool");
            info.pid = found.pid;
            info.start_ticks = found.start_ticks;
            info.last_started_at = found.started_at();
            id = found;
            alive = true;
            // Its spools are new: drain them from the start.
            for (sp, s) in spools
                .iter_mut()
                .zip([super::logs::Stream::Out, super::logs::Stream::Err])
            {
                sp.path = sh.hub.spool_file(info.id, s).display().to_string();
                sp.pos = 0;
            }
        }
    }
    if alive || info.status.is_up() {
        sh.hub.attach_spools(info.id, &spools);
        sh.spools_ready.notify_one();
    }
    match (alive, info.status.is_up()) {
        (true, true) => Boot::Adopt(Live::adopt(id)),
        (true, false) => Boot::FinishStop(Live::adopt(id)),
        (false, true) => Boot::Lost,
        (false, false) => Boot::Idle,
    }
}

/// The session leader whose stdout is `spool` (services lead their
/// session; a leftover grandchild holding the same file does not).
fn leader_writing_to(spool: &std::path::Path) -> Option<ProcessIdentity> {
    berth_os::proc::all_pids().into_iter().find_map(|pid| {
        let link = std::fs::read_link(format!("/proc/{pid}/fd/1")).ok()?;
        if link != spool {
            return None;
        }
        let st = berth_os::proc::read_stat(pid).ok()?;
        (st.session == pid as i32 && !st.is_zombie()).then_some(ProcessIdentity {
            pid,
            start_ticks: st.start_ticks,
        })
    })
}

enum Phase {
    Running(Live),
    Waiting(Instant),
    Idle,
    Gone,
}

struct Sup {
    sh: Arc<Shared>,
    id: u32,
    rx: mpsc::UnboundedReceiver<Cmd>,
}

/// The task of service `id`.
pub(crate) async fn run(sh: Arc<Shared>, id: u32, rx: mpsc::UnboundedReceiver<Cmd>, boot: Boot) {
    let mut sup = Sup { sh, id, rx };
    let mut phase = match boot {
        Boot::Idle => Phase::Idle,
        Boot::Adopt(live) => {
            let pid = live.id.pid;
            sup.sh.update(id, |i| {
                i.status = Status::Online;
                i.reason = format!("re-adopted (pid {pid}) after a daemon restart");
            });
            sup.sh
                .hub
                .event(id, &format!("re-adopted pid {pid} after a daemon restart"));
            Phase::Running(live)
        }
        Boot::Lost => {
            let info = sup.sh.info(id);
            let leader = info.as_ref().map(|i| ProcessIdentity {
                pid: i.pid,
                start_ticks: i.start_ticks,
            });
            let started = info.map(|i| i.last_started_at).unwrap_or(0.0);
            sup.exited(leader, started, Exit::Unknown, true).await
        }
        Boot::FinishStop(mut live) => {
            let grace = sup.spec().kill_timeout();
            end_tree(live.id, grace, Some(&mut live)).await;
            sup.sh.hub.drain(id, true);
            sup.sh.update(id, |i| i.pid = 0);
            Phase::Idle
        }
    };
    loop {
        phase = match phase {
            Phase::Gone => return,
            Phase::Idle => match sup.rx.recv().await {
                Some(c) => sup.command(c, None, false).await,
                None => return,
            },
            Phase::Waiting(at) => {
                tokio::select! {
                    _ = tokio::time::sleep_until(at) => sup.launch(Launch::Auto),
                    c = sup.rx.recv() => match c {
                        Some(c) => sup.command(c, None, true).await,
                        None => return,
                    },
                }
            }
            Phase::Running(mut live) => {
                let ev = tokio::select! {
                    e = live.wait() => Ok(e),
                    c = sup.rx.recv() => Err(c),
                };
                match ev {
                    Ok(exit) => {
                        let (leader, started) = (live.id, live.started);
                        drop(live);
                        sup.exited(Some(leader), started, exit, false).await
                    }
                    Err(Some(c)) => sup.command(c, Some(live), false).await,
                    Err(None) => return,
                }
            }
        };
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Launch {
    /// A new definition, or a start from stopped.
    Fresh,
    /// By the restart policy.
    Auto,
    /// By a RESTART request.
    Manual,
}

impl Sup {
    fn spec(&self) -> ServiceSpec {
        self.sh.info(self.id).map(|i| i.spec).unwrap_or_default()
    }

    /// Spawns the process; on failure the service is errored.
    fn launch(&mut self, how: Launch) -> Phase {
        match self.spawn(how) {
            Ok(live) => Phase::Running(live),
            Err(e) => {
                self.fail_start(&e);
                Phase::Idle
            }
        }
    }

    fn fail_start(&self, e: &ServiceError) {
        let msg = format!("cannot start: {e}");
        self.sh.hub.event(self.id, &msg);
        self.sh.update(self.id, |i| {
            i.status = Status::Errored;
            i.reason = msg;
            i.pid = 0;
        });
    }

    fn spawn(&mut self, how: Launch) -> Result<Live, ServiceError> {
        let spec = self.spec();
        let Some(program) = spec.cmd.first() else {
            return Err(ServiceError::invalid("cmd", "must not be empty"));
        };
        let (out, err) = self
            .sh
            .hub
            .new_spools(self.id)
            .map_err(|e| ServiceError::Os(OsError::new("cannot create the log spools", e)))?;
        self.sh.spools_ready.notify_one();
        // Record the fresh spools (drained up to 0) before the pid: a daemon
        // dying in between leaves either the old pid (gone, so the spool is
        // searched) or the new pid with positions that match its spools.
        self.sh.persist_spools([self.id]);
        // Record the intent before the process exists: a daemon killed
        // between the spawn and the pid being written leaves a `starting`
        // row with pid 0, which the next daemon resolves by this service's
        // marker or spool (adopting the process). A row left `stopped`
        // would be started again: the process would run twice.
        self.sh.update(self.id, |i| {
            i.status = Status::Starting;
            i.pid = 0;
            i.start_ticks = 0;
        });
        let cwd = if spec.cwd.is_empty() {
            std::env::var_os("HOME")
                .filter(|h| std::path::Path::new(h).is_dir())
                .unwrap_or_else(|| "/".into())
        } else {
            spec.cwd.clone().into()
        };
        let mut overrides: Vec<(String, String)> = spec
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        // The marker a restarted daemon finds the process by (see
        // `marked_leaders`); set last so a service's own env cannot fake it.
        overrides.push((MARK_ID.into(), self.id.to_string()));
        overrides.push((MARK_STATE.into(), self.sh.marker.clone()));
        let env = berth_os::spawn::layer_env(std::env::vars(), &overrides, false);
        let mut cmd = std::process::Command::new(program);
        cmd.args(&spec.cmd[1..])
            .env_clear()
            .envs(env)
            .current_dir(&cwd)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        berth_os::spawn::new_session(&mut cmd);
        let child = tokio::process::Command::from(cmd)
            .spawn()
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => ServiceError::invalid(
                    "cmd[0]",
                    format!(
                        "{:?}: no such program (on the service's PATH), or cwd {:?} is gone",
                        spec.cmd[0], cwd
                    ),
                ),
                std::io::ErrorKind::PermissionDenied => {
                    ServiceError::invalid("cmd[0]", format!("{:?}: permission denied", spec.cmd[0]))
                }
                _ => ServiceError::Os(OsError::new(format!("cannot start {:?}", spec.cmd[0]), e)),
            })?;
        let pid = child.id().unwrap_or(0);
        test_pause_after_spawn();
        // Still readable if it already exited: it stays a zombie until we wait.
        let identity = ProcessIdentity::of(pid).unwrap_or(ProcessIdentity {
            pid,
            start_ticks: 0,
        });
        let started = berth_os::proc::now_epoch();
        self.sh.update(self.id, |i| {
            i.status = Status::Online;
            i.pid = pid;
            i.start_ticks = identity.start_ticks;
            i.last_started_at = started;
            i.reason = match how {
                Launch::Fresh => "started".into(),
                Launch::Manual => "restarted by request".into(),
                Launch::Auto => format!("restarted by policy ({})", i.reason),
            };
            match how {
                Launch::Fresh => i.restart_count = 0,
                Launch::Auto | Launch::Manual => i.restart_count += 1,
            }
        });
        self.sh.hub.event(
            self.id,
            &format!("started pid {pid}: {}", spec.cmd.join(" ")),
        );
        Ok(Live {
            id: identity,
            started,
            proc: Proc::Child(child),
        })
    }

    /// The process ended by itself (or, with `lost`, while the daemon was
    /// down): clean up its leftovers, log, and apply the restart policy.
    async fn exited(
        &mut self,
        leader: Option<ProcessIdentity>,
        started: f64,
        exit: Exit,
        lost: bool,
    ) -> Phase {
        let spec = self.spec();
        let now = berth_os::proc::now_epoch();
        if let Some(l) = leader.filter(|l| l.pid != 0 && signal::group_exists(l.pid)) {
            end_tree(l, spec.kill_timeout(), None).await;
        }
        self.sh.hub.drain(self.id, true);
        let uptime = if lost {
            // When it died is unknown: do not count it against the policy.
            spec.min_uptime()
        } else {
            Duration::from_secs_f64((now - started).max(0.0))
        };
        let streak = self
            .sh
            .info(self.id)
            .map(|i| i.unstable_restarts)
            .unwrap_or(0);
        let (decision, new_streak) = policy::decide(&spec, uptime, streak);
        let how = if lost {
            format!(
                "its process (pid {}) ended while the daemon was down",
                leader.map(|l| l.pid).unwrap_or(0)
            )
        } else {
            format!("exited with {} after {}", exit.describe(), fmt_dur(uptime))
        };
        let (status, reason, next) = match decision {
            Decision::Restart { delay, unstable } => {
                let why = if unstable {
                    let of = match spec.max_restarts {
                        0 => String::new(),
                        m => format!(" of {m}"),
                    };
                    format!(
                        "{how}, under min_uptime {}: unstable restart {new_streak}{of} in {}",
                        fmt_dur(spec.min_uptime()),
                        fmt_dur(delay)
                    )
                } else {
                    format!("{how}; restarting in {}", fmt_dur(delay))
                };
                (Status::Starting, why, Some(delay))
            }
            Decision::CrashLoop => (
                Status::Errored,
                format!(
                    "crash loop: {how}, the {} exit in a row under min_uptime {}; gave up after max_restarts {}",
                    ordinal(new_streak + 1),
                    fmt_dur(spec.min_uptime()),
                    spec.max_restarts
                ),
                None,
            ),
            Decision::Leave if exit.success() || lost => (
                Status::Stopped,
                format!("{how} (autorestart is off)"),
                None,
            ),
            Decision::Leave => (
                Status::Errored,
                format!("{how} (autorestart is off)"),
                None,
            ),
        };
        self.sh.hub.event(self.id, &reason);
        self.sh.update(self.id, |i| {
            i.status = status;
            i.reason = reason;
            i.pid = 0;
            i.unstable_restarts = new_streak;
            i.last_exited_at = now;
            i.last_exit_code = exit.code();
        });
        match next {
            Some(d) if d.is_zero() => self.launch(Launch::Auto),
            Some(d) => Phase::Waiting(Instant::now() + d),
            None => Phase::Idle,
        }
    }

    /// Ends the running process for a stop, restart or delete, and records
    /// how it went. Returns the sentence describing it.
    async fn end(&mut self, mut live: Live, grace: Option<Duration>) -> String {
        let grace = grace.unwrap_or_else(|| self.spec().kill_timeout());
        let (exit, hard) = end_tree(live.id, grace, Some(&mut live)).await;
        let exit = exit.unwrap_or(Exit::Unknown);
        self.sh.hub.drain(self.id, true);
        let detail = if hard {
            format!(
                "it outlived SIGTERM by kill_timeout {} and was SIGKILLed",
                fmt_dur(grace)
            )
        } else {
            format!("SIGTERM ended it with {}", exit.describe())
        };
        let now = berth_os::proc::now_epoch();
        self.sh.update(self.id, |i| {
            i.pid = 0;
            i.last_exited_at = now;
            i.last_exit_code = exit.code();
        });
        detail
    }

    async fn command(&mut self, cmd: Cmd, live: Option<Live>, waiting: bool) -> Phase {
        match cmd {
            Cmd::Stop { why, grace, reply } => {
                let was_up = live.is_some() || waiting;
                let mut reason = match why {
                    StopWhy::Request => "stopped by request".to_string(),
                    StopWhy::Shutdown => "stopped because the berth daemon shut down".to_string(),
                };
                if let Some(live) = live {
                    let detail = self.end(live, grace).await;
                    reason = format!("{reason}: {detail}");
                } else if waiting {
                    reason.push_str(" (a restart was pending)");
                }
                if was_up || why == StopWhy::Request {
                    self.sh.hub.event(self.id, &reason);
                    self.sh.update(self.id, |i| {
                        i.status = Status::Stopped;
                        i.reason = reason;
                    });
                }
                let _ = reply.send(was_up);
                Phase::Idle
            }
            Cmd::Start {
                spec,
                restart,
                reply,
            } => {
                if let Some(live) = live {
                    if !restart {
                        let name = self.spec().name;
                        let _ = reply.send(Err(ServiceError::invalid(
                            "name",
                            format!(
                                "a service named {name:?} is already online (id {})",
                                self.id
                            ),
                        )));
                        return Phase::Running(live);
                    }
                    let detail = self.end(live, None).await;
                    self.sh
                        .hub
                        .event(self.id, &format!("restarting by request: {detail}"));
                }
                if let Some(spec) = spec {
                    self.sh.update(self.id, |i| i.spec = spec);
                }
                self.sh.update(self.id, |i| i.unstable_restarts = 0);
                let how = if restart {
                    Launch::Manual
                } else {
                    Launch::Fresh
                };
                match self.spawn(how) {
                    Ok(live) => {
                        let _ = reply.send(
                            self.sh
                                .info(self.id)
                                .ok_or_else(|| ServiceError::NotFound("deleted".into())),
                        );
                        Phase::Running(live)
                    }
                    Err(e) => {
                        self.fail_start(&e);
                        let _ = reply.send(Err(e));
                        Phase::Idle
                    }
                }
            }
            Cmd::Delete { reply } => {
                if let Some(live) = live {
                    self.end(live, None).await;
                }
                if let Err(e) = super::persist::delete(&self.sh.store, self.id) {
                    tracing::warn!(id = self.id, "cannot delete service row: {e}");
                }
                self.sh.hub.remove(self.id);
                self.sh.table().remove(&self.id);
                let _ = reply.send(());
                Phase::Gone
            }
        }
    }
}

fn ordinal(n: u32) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}
