//! Ending processes: whole trees (KILL_TREE) and orphans whose owner is
//! gone (KILL_ZOMBIES). Always by identity, so a recycled pid is never hit.

use super::{ProcState, Registry, RegistryError, Tracked};
use berth_os::proc::{Liveness, ProcessIdentity, ProcessTable};
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

fn ended(id: &ProcessIdentity) -> bool {
    id.liveness() != Liveness::Alive
}

/// Sends SIGTERM to `root` and all its descendants (deepest first), waits up
/// to `timeout` for them to end, then SIGKILLs the rest, including any
/// descendants that appeared meanwhile. Returns how many ended.
pub async fn kill_tree(root: ProcessIdentity, timeout: Duration) -> KillTreeOutcome {
    let mut targets = ProcessTable::snapshot().descendants_deepest_first(root.pid);
    targets.push(root);
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
    /// Ends the tree rooted at the live process `pid`.
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
        let root = ProcessIdentity::of(pid).map_err(|_| {
            RegistryError::NotFound(format!("kill_tree.pid {pid}: no such process"))
        })?;
        let out = kill_tree(root, timeout).await;
        let _ = self.validate();
        Ok(out)
    }

    /// Tracked processes whose owner is gone, with the reason.
    fn orphans(&self) -> Result<Vec<(Tracked, String, bool)>, RegistryError> {
        let mut found = Vec::new();
        for t in self.validate()? {
            match t.identity.liveness() {
                Liveness::Reused => {
                    let reason = format!(
                        "pid {} now belongs to a different process; only unregistered",
                        t.identity.pid
                    );
                    found.push((t, reason, false));
                    continue;
                }
                Liveness::Gone | Liveness::Zombie => continue,
                Liveness::Alive => {}
            }
            if t.state != ProcState::Alive || t.parent_alive {
                continue;
            }
            let reason = match (t.originator_pid(), t.parent) {
                (Some(p), _) => format!("originator {} (pid {p}) is gone", t.originator),
                (None, Some(p)) => format!("parent pid {} it was registered under is gone", p.pid),
                (None, None) => "its parent is gone".to_string(),
            };
            found.push((t, reason, true));
        }
        Ok(found)
    }

    /// Finds orphaned tracked processes and, unless `dry_run`, ends each
    /// one's tree and unregisters it. A recycled pid is only unregistered.
    pub async fn kill_zombies(
        &self,
        dry_run: bool,
        timeout: Duration,
    ) -> Result<Vec<ZombieReport>, RegistryError> {
        let mut reports = Vec::new();
        for (t, reason, killable) in self.orphans()? {
            let mut killed = false;
            if !dry_run {
                if killable {
                    killed = kill_tree(t.identity, timeout).await.killed > 0 || ended(&t.identity);
                }
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
