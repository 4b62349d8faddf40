//! Ending processes: whole trees (KILL_TREE) and orphans whose owner is
//! gone (KILL_ZOMBIES). Always by identity, so a recycled pid is never hit.

use super::{ProcState, Registry, RegistryError, Tracked};
use berth_os::proc::{self, Liveness, ProcessIdentity, ProcessTable};
use berth_os::signal::{self, Signal, SignalOutcome};
use std::time::Duration;

/// Grace period used when a caller gives none.
pub const DEFAULT_KILL_TIMEOUT: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(10);

/// Result of ending a tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KillTreeOutcome {
    /// Processes of the tree that ended.
    pub killed: u32,
    /// Of those, how many needed SIGKILL.
    pub hard_killed: u32,
}

/// A tracked process found orphaned, and what was done about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZombieReport {
    /// Process id.
    pub pid: u32,
    /// Its command line.
    pub command: String,
    /// Why it counts as orphaned.
    pub reason: String,
    /// Whether it was ended by this call.
    pub killed: bool,
}

/// What KILL_ZOMBIES does with a row it reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Found {
    /// A live orphan of verified identity: end its tree.
    Orphan,
    /// Already ended: only unregister (reported killed, as the reference).
    Gone,
    /// Its pid is held by a process that is not the registered one: only
    /// unregister, never signal.
    NotOurs,
}

fn ended(id: &ProcessIdentity) -> bool {
    id.liveness() != Liveness::Alive
}

/// Everything `root` started, deepest first, `root` last: its descendants
/// by parent link, plus the members of the session and of the process group
/// it leads (and their descendants), which catches descendants re-parented
/// to init after an intermediate process exited. Only a session or group
/// that `root` itself leads is swept, so a process inside someone else's
/// session (a shell's) never takes that session down. The calling daemon
/// is never included.
fn tree_of(table: &ProcessTable, root: ProcessIdentity) -> Vec<ProcessIdentity> {
    let me = std::process::id();
    let mut targets = table.descendants_deepest_first(root.pid);
    if let Some(st) = table
        .get(root.pid)
        .filter(|s| s.start_ticks == root.start_ticks)
    {
        let mut swept: Vec<ProcessIdentity> = Vec::new();
        if st.session == root.pid as i32 {
            swept.extend(table.session_members(st.session));
        }
        if st.pgrp == root.pid as i32 {
            swept.extend(table.group_members(st.pgrp));
        }
        let mut extra: Vec<ProcessIdentity> = Vec::new();
        for m in swept {
            if m.pid == root.pid || m.pid == me {
                continue;
            }
            for d in table
                .descendants_deepest_first(m.pid)
                .into_iter()
                .chain(std::iter::once(m))
            {
                if d.pid != root.pid && d.pid != me && !targets.contains(&d) && !extra.contains(&d)
                {
                    extra.push(d);
                }
            }
        }
        // Swept members and their descendants go first: they are the
        // deepest (their parents are gone or unrelated).
        targets.splice(0..0, extra);
    }
    targets.push(root);
    targets
}

/// Sends SIGTERM to `root` and everything it started ([`tree_of`]), deepest
/// first, waits up to `timeout` for them to end, then SIGKILLs the rest,
/// including any descendants that appeared meanwhile. Every signal goes to a
/// verified identity (pidfd). Returns how many ended.
pub async fn kill_tree(root: ProcessIdentity, timeout: Duration) -> KillTreeOutcome {
    // A member that already ended (a zombie its parent has not reaped yet)
    // is not killed by us: it is neither signalled nor counted.
    let mut targets: Vec<ProcessIdentity> = tree_of(&ProcessTable::snapshot(), root)
        .into_iter()
        .filter(|id| *id == root || !ended(id))
        .collect();
    for id in &targets {
        let _ = signal::send(*id, Signal::SIGTERM);
    }
    let deadline = tokio::time::Instant::now() + timeout;
    while tokio::time::Instant::now() < deadline && !targets.iter().all(ended) {
        tokio::time::sleep(POLL).await;
    }
    let mut hard_killed = 0;
    // Survivors, and anything they forked since the snapshot.
    let table = ProcessTable::snapshot();
    let mut late: Vec<ProcessIdentity> = Vec::new();
    for id in targets.iter().filter(|id| !ended(id)) {
        for d in table.descendants_deepest_first(id.pid) {
            if !targets.contains(&d) && !late.contains(&d) {
                late.push(d);
            }
        }
    }
    targets.splice(0..0, late);
    for id in &targets {
        if !ended(id) && signal::send(*id, Signal::SIGKILL).ok() == Some(SignalOutcome::Delivered) {
            hard_killed += 1;
        }
    }
    // SIGKILL is not instantaneous; wait briefly so the count is true.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while tokio::time::Instant::now() < deadline && !targets.iter().all(ended) {
        tokio::time::sleep(POLL).await;
    }
    let killed = targets.iter().filter(|id| ended(id)).count() as u32;
    KillTreeOutcome {
        killed,
        hard_killed,
    }
}

impl Registry {
    /// Ends the tree rooted at `pid`. Idempotent, as the reference daemon: a
    /// pid that no process holds is a success with nothing killed. The
    /// registration of `pid`, if any, is removed once it has ended.
    ///
    /// Errors: `InvalidArgument` for pid 0 or the daemon's own pid.
    pub async fn kill_tree(
        &self,
        pid: u32,
        timeout: Duration,
    ) -> Result<KillTreeOutcome, RegistryError> {
        if pid == 0 {
            return Err(RegistryError::InvalidArgument(
                "kill_tree.pid must be a process id > 0".into(),
            ));
        }
        if pid == std::process::id() {
            return Err(RegistryError::InvalidArgument(format!(
                "kill_tree.pid {pid} is the berth daemon itself; use SHUTDOWN"
            )));
        }
        let out = match ProcessIdentity::of(pid) {
            Ok(root) => kill_tree(root, timeout).await,
            Err(_) => KillTreeOutcome {
                killed: 0,
                hard_killed: 0,
            },
        };
        if let Some(row) = self.get(pid)? {
            if !row.identity.is_running() || !row.identity_verified() {
                self.remove_identity(row.identity)?;
            }
        }
        let _ = self.validate();
        Ok(out)
    }

    /// Tracked processes to report: dead ones (exited, never running as
    /// registered, or their pid now held by another process) and live ones
    /// whose owner is gone, each with the reason and whether it may be
    /// signalled (only a live, verified identity may).
    fn orphans(&self) -> Result<Vec<(Tracked, String, Found)>, RegistryError> {
        let mut found = Vec::new();
        for t in self.validate()? {
            let pid = t.identity.pid;
            let liveness = t.identity.liveness();
            if !t.identity_verified() {
                let (reason, what) = match proc::read_stat(pid) {
                    Ok(st) => (
                        reused(pid, t.created_at, proc::ticks_to_epoch(st.start_ticks)),
                        Found::NotOurs,
                    ),
                    Err(_) => (format!("process {pid} no longer exists"), Found::Gone),
                };
                found.push((t, reason, what));
                continue;
            }
            match liveness {
                Liveness::Reused => {
                    let now = proc::read_stat(pid)
                        .map(|st| proc::ticks_to_epoch(st.start_ticks))
                        .unwrap_or(0.0);
                    let reason = reused(pid, t.identity.started_at(), now);
                    found.push((t, reason, Found::NotOurs));
                    continue;
                }
                Liveness::Gone => {
                    found.push((t, format!("process {pid} no longer exists"), Found::Gone));
                    continue;
                }
                Liveness::Zombie => {
                    let reason = format!("process {pid} has exited (not yet reaped by its parent)");
                    found.push((t, reason, Found::Gone));
                    continue;
                }
                Liveness::Alive => {}
            }
            if t.state != ProcState::Alive || t.parent_alive {
                continue;
            }
            let reason = match (t.originator_pid(), t.parent) {
                (Some(p), _) => format!(
                    "originator {} (PID {p}) of process {pid} is dead",
                    t.originator
                ),
                (None, Some(p)) => format!("parent PID {} of process {pid} is dead", p.pid),
                (None, None) => format!("parent of process {pid} is dead"),
            };
            found.push((t, reason, Found::Orphan));
        }
        Ok(found)
    }

    /// Finds dead and orphaned tracked processes and, unless `dry_run`, ends
    /// each live orphan's tree and unregisters every one found. A recycled
    /// or never-verified pid is only unregistered. `killed` is true when the
    /// process is gone after the call (as the reference reports a process
    /// that was already dead), false on a dry run and for a pid held by
    /// another process.
    pub async fn kill_zombies(
        &self,
        dry_run: bool,
        timeout: Duration,
    ) -> Result<Vec<ZombieReport>, RegistryError> {
        let mut reports = Vec::new();
        for (t, reason, what) in self.orphans()? {
            let mut killed = false;
            if !dry_run {
                killed = match what {
                    Found::Orphan => {
                        kill_tree(t.identity, timeout).await.killed > 0 || ended(&t.identity)
                    }
                    Found::Gone => true,
                    Found::NotOurs => false,
                };
                self.remove_identity(t.identity)?;
            }
            reports.push(ZombieReport {
                pid: t.identity.pid,
                command: t.command.clone(),
                reason,
                killed,
            });
        }
        Ok(reports)
    }
}

/// The reference daemon's reason for a pid that another process now holds,
/// with berth's note that it is not signalled.
fn reused(pid: u32, registered: f64, now: f64) -> String {
    format!(
        "PID {pid} reused: registered creation_time={}ms, OS creation_time={}ms; only unregistered",
        (registered * 1000.0) as u64,
        (now * 1000.0) as u64
    )
}

/// Seconds from a client, as a duration; zero or invalid means the default.
pub fn timeout_from_secs(secs: f64) -> Result<Duration, RegistryError> {
    if secs.is_nan() || secs < 0.0 || secs.is_infinite() {
        return Err(RegistryError::InvalidArgument(format!(
            "timeout_seconds must be a finite number >= 0, got {secs}"
        )));
    }
    Ok(if secs == 0.0 {
        DEFAULT_KILL_TIMEOUT
    } else {
        Duration::from_secs_f64(secs.min(3600.0))
    })
}
