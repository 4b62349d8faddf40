//! The process registry: processes berth was asked to track (REGISTER) or
//! launched itself (SPAWN_DAEMON), keyed by identity (pid + start time), kept
//! in SQLite so it survives daemon restarts.

mod kill;
mod spawn;

pub use kill::{kill_tree, timeout_from_secs, KillTreeOutcome, ZombieReport, DEFAULT_KILL_TIMEOUT};
pub use spawn::{child_env, SpawnRequest, DAEMON_MARKER_ENV_VAR, ORIGINATOR_ENV_VAR, SPAWNED_KIND};

use crate::store::{Store, StoreError};
use berth_os::proc::{self, Liveness, ProcessIdentity};
use berth_os::OsError;
use rusqlite::{params, OptionalExtension, Row};
use std::sync::Arc;
use std::time::Duration;

/// How far a client's wall-clock `created_at` may be from the start time the
/// kernel reports before the registered process is taken to be a different
/// one than the pid's current holder (the reference daemon's tolerance too).
pub const CREATED_AT_TOLERANCE_SECS: f64 = 2.0;

/// Observed state of a tracked process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcState {
    /// Not validated yet.
    Unknown,
    /// Running.
    Alive,
    /// Exited, or its pid now belongs to another process.
    Dead,
    /// Exited but not reaped by its parent.
    Zombie,
}

impl ProcState {
    fn to_db(self) -> i64 {
        match self {
            Self::Unknown => 0,
            Self::Alive => 1,
            Self::Dead => 2,
            Self::Zombie => 3,
        }
    }
    fn from_db(v: i64) -> Self {
        match v {
            1 => Self::Alive,
            2 => Self::Dead,
            3 => Self::Zombie,
            _ => Self::Unknown,
        }
    }
}

/// One row of the registry, with the facts measured at the last validation.
///
/// Two identities sit side by side: the registrant's (`pid` + `created_at`,
/// as the client saw it) and berth's own observation at registration
/// (`identity.start_ticks` from `/proc`, 0 when no process had the pid).
/// Only a row where both agree ([`identity_verified`](Self::identity_verified))
/// is ever signalled.
#[derive(Debug, Clone, PartialEq)]
pub struct Tracked {
    /// The process: its pid and the start time berth observed (0 ticks when
    /// the pid was not running at registration).
    pub identity: ProcessIdentity,
    /// Start time, seconds since the epoch: the registrant's `created_at`,
    /// or the observed start time when it gave none.
    pub created_at: f64,
    /// Free-form kind given by the registrant ("subprocess" for SPAWN_DAEMON,
    /// as the reference daemon reports).
    pub kind: String,
    /// Command line.
    pub command: String,
    /// Working directory.
    pub cwd: String,
    /// Who asked for it, conventionally `tool:pid`.
    pub originator: String,
    /// How it is contained, in the reference's words: the registrant's
    /// label, or "detached" for SPAWN_DAEMON.
    pub containment: String,
    /// berth's own containment detail: "session" (own session and process
    /// group) for SPAWN_DAEMON, empty for registered processes.
    pub containment_detail: String,
    /// When the registry learnt of it.
    pub registered_at: f64,
    /// The parent it had when registered, if it had a meaningful one.
    pub parent: Option<ProcessIdentity>,
    /// State at the last validation.
    pub state: ProcState,
    /// When it was last checked against /proc.
    pub last_validated_at: f64,
    /// Whether whoever it depends on (originator process, else the parent
    /// it was registered with) is still alive.
    pub parent_alive: bool,
}

impl Tracked {
    /// Whether the pid was running at registration with a start time that
    /// matches the registrant's `created_at` (within
    /// [`CREATED_AT_TOLERANCE_SECS`]). An unverified row is reported dead
    /// and never signalled.
    pub fn identity_verified(&self) -> bool {
        self.identity.start_ticks != 0
            && (self.created_at - self.identity.started_at()).abs() <= CREATED_AT_TOLERANCE_SECS
    }

    /// Seconds since the process started.
    pub fn uptime_seconds(&self) -> f64 {
        (proc::now_epoch() - self.created_at).max(0.0)
    }

    /// The pid encoded in an originator of the form `tool:pid`, if any.
    pub fn originator_pid(&self) -> Option<u32> {
        originator_pid(&self.originator)
    }
}

/// Parses the `pid` of an originator written `tool:pid`.
pub fn originator_pid(originator: &str) -> Option<u32> {
    originator
        .rsplit_once(':')
        .and_then(|(_, p)| p.trim().parse().ok())
        .filter(|p| *p > 0)
}

/// What a registrant tells about a process.
#[derive(Debug, Clone, Default)]
pub struct RegisterRequest {
    /// Process id (required).
    pub pid: u32,
    /// Wall-clock start time as the client saw it; 0 when unknown.
    pub created_at: f64,
    /// Kind label.
    pub kind: String,
    /// Command line; read from /proc when empty.
    pub command: String,
    /// Working directory; read from /proc when empty.
    pub cwd: String,
    /// Originator label.
    pub originator: String,
    /// Containment label.
    pub containment: String,
}

/// Stored containment of berth's detached spawns; reported as
/// [`DETACHED`] with detail [`SESSION_DETAIL`].
const STORED_SESSION: &str = "berth:session";
/// The reference's containment value for detached launches.
pub const DETACHED: &str = "detached";
/// berth's containment detail of detached launches: their own session and
/// process group.
pub const SESSION_DETAIL: &str = "session";

/// Why a registry operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The request names something impossible; the message names the field.
    #[error("{0}")]
    InvalidArgument(String),
    /// The process or registration does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The OS refused an operation: what berth was doing, with the
    /// `io::Error` as the source.
    #[error(transparent)]
    Os(#[from] OsError),
}

/// The registry engine.
pub struct Registry {
    store: Arc<Store>,
    dead_retention: Duration,
}

const COLUMNS: &str = "pid, start_ticks, created_at, kind, command, cwd, originator, containment, \
     registered_at, parent_pid, parent_start_ticks, state, last_validated_at";

fn from_row(r: &Row<'_>) -> rusqlite::Result<Tracked> {
    let parent = match (r.get::<_, Option<u32>>(9)?, r.get::<_, Option<i64>>(10)?) {
        (Some(pid), Some(t)) => Some(ProcessIdentity {
            pid,
            start_ticks: t as u64,
        }),
        _ => None,
    };
    let stored: String = r.get(7)?;
    let (containment, containment_detail) = if stored == STORED_SESSION {
        (DETACHED.to_string(), SESSION_DETAIL.to_string())
    } else {
        (stored, String::new())
    };
    Ok(Tracked {
        identity: ProcessIdentity {
            pid: r.get(0)?,
            start_ticks: r.get::<_, i64>(1)? as u64,
        },
        created_at: r.get(2)?,
        kind: r.get(3)?,
        command: r.get(4)?,
        cwd: r.get(5)?,
        originator: r.get(6)?,
        containment,
        containment_detail,
        registered_at: r.get(8)?,
        parent,
        state: ProcState::from_db(r.get(11)?),
        last_validated_at: r.get(12)?,
        parent_alive: false,
    })
}

fn liveness_state(l: Liveness) -> ProcState {
    match l {
        Liveness::Alive => ProcState::Alive,
        Liveness::Zombie => ProcState::Zombie,
        Liveness::Gone | Liveness::Reused => ProcState::Dead,
    }
}

impl Registry {
    /// A registry over `store`; dead rows are kept (and reported as dead)
    /// for `dead_retention` before being purged.
    pub fn new(store: Arc<Store>, dead_retention: Duration) -> Self {
        Self {
            store,
            dead_retention,
        }
    }

    /// Tracks `req.pid`, as the reference daemon does: any pid is accepted.
    /// berth records its own observation next to the client's `created_at`;
    /// a pid that is not running, or whose start time is more than
    /// [`CREATED_AT_TOLERANCE_SECS`] from `created_at`, is recorded dead at
    /// once (KILL_ZOMBIES reports it) and is never signalled.
    /// Re-registering a pid replaces the old row.
    ///
    /// Errors: `InvalidArgument` for pid 0 or a `created_at` that is not a
    /// finite number of seconds >= 0.
    pub fn register(&self, req: &RegisterRequest) -> Result<Tracked, RegistryError> {
        if req.pid == 0 {
            return Err(RegistryError::InvalidArgument(
                "register.pid must be a process id > 0".into(),
            ));
        }
        if !req.created_at.is_finite() || req.created_at < 0.0 {
            return Err(RegistryError::InvalidArgument(format!(
                "register.created_at must be seconds since the epoch, got {}",
                req.created_at
            )));
        }
        let stat = proc::read_stat(req.pid).ok();
        let identity = ProcessIdentity {
            pid: req.pid,
            start_ticks: stat.as_ref().map(|s| s.start_ticks).unwrap_or(0),
        };
        let created_at = match (&stat, req.created_at > 0.0) {
            (_, true) => req.created_at,
            (Some(_), false) => identity.started_at(),
            (None, false) => 0.0,
        };
        let now = proc::now_epoch();
        let mut row = Tracked {
            identity,
            created_at,
            kind: req.kind.clone(),
            command: req.command.clone(),
            cwd: req.cwd.clone(),
            originator: req.originator.clone(),
            containment: req.containment.clone(),
            containment_detail: String::new(),
            registered_at: now,
            parent: None,
            state: ProcState::Dead,
            last_validated_at: now,
            parent_alive: false,
        };
        if row.identity_verified() {
            let stat = stat.expect("verified rows have a stat");
            row.state = if stat.is_zombie() {
                ProcState::Zombie
            } else {
                ProcState::Alive
            };
            row.parent = (stat.ppid > 1)
                .then(|| ProcessIdentity::of(stat.ppid).ok())
                .flatten();
            if row.command.is_empty() {
                row.command = proc::command_line(req.pid);
            }
            if row.cwd.is_empty() {
                row.cwd = proc::cwd(req.pid)
                    .map(|p| p.display().to_string())
                    .unwrap_or_default();
            }
        } else {
            tracing::info!(
                pid = req.pid,
                created_at = req.created_at,
                running = stat.is_some(),
                "registered a process that is not running as described; recorded dead"
            );
        }
        self.insert(&row)?;
        Ok(self.annotate(row))
    }

    fn insert(&self, t: &Tracked) -> Result<(), RegistryError> {
        let containment = if t.containment_detail == SESSION_DETAIL && t.containment == DETACHED {
            STORED_SESSION
        } else {
            t.containment.as_str()
        };
        let dead_since = (t.state == ProcState::Dead).then_some(t.last_validated_at);
        self.store.write("registering a process", |tx| {
            tx.execute(
                &format!("INSERT OR REPLACE INTO tracked_processes ({COLUMNS}, dead_since) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14)"),
                params![
                    t.identity.pid,
                    t.identity.start_ticks as i64,
                    t.created_at,
                    t.kind,
                    t.command,
                    t.cwd,
                    t.originator,
                    containment,
                    t.registered_at,
                    t.parent.map(|p| p.pid),
                    t.parent.map(|p| p.start_ticks as i64),
                    t.state.to_db(),
                    t.last_validated_at,
                    dead_since
                ],
            )
        })?;
        Ok(())
    }

    /// Stops tracking `pid`. Not an error to call on a dead process.
    pub fn unregister(&self, pid: u32) -> Result<(), RegistryError> {
        if pid == 0 {
            return Err(RegistryError::InvalidArgument(
                "unregister.pid must be a process id > 0".into(),
            ));
        }
        let n = self.store.write("unregistering a process", |tx| {
            tx.execute("DELETE FROM tracked_processes WHERE pid = ?1", [pid])
        })?;
        if n == 0 {
            return Err(RegistryError::NotFound(format!(
                "unregister.pid {pid} is not tracked"
            )));
        }
        Ok(())
    }

    fn remove_identity(&self, id: ProcessIdentity) -> Result<(), RegistryError> {
        self.store.write("removing a process", |tx| {
            tx.execute(
                "DELETE FROM tracked_processes WHERE pid = ?1 AND start_ticks = ?2",
                params![id.pid, id.start_ticks as i64],
            )
        })?;
        Ok(())
    }

    /// One tracked row, without validation.
    pub fn get(&self, pid: u32) -> Result<Option<Tracked>, RegistryError> {
        Ok(self.store.read("reading a process", |c| {
            c.query_row(
                &format!("SELECT {COLUMNS} FROM tracked_processes WHERE pid = ?1"),
                [pid],
                from_row,
            )
            .optional()
        })?)
    }

    fn all(&self) -> Result<Vec<Tracked>, RegistryError> {
        Ok(self.store.read("listing processes", |c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM tracked_processes ORDER BY registered_at, pid"
            ))?;
            let rows = st.query_map([], from_row)?;
            rows.collect()
        })?)
    }

    /// Number of rows (alive or awaiting purge).
    pub fn count(&self) -> Result<u32, RegistryError> {
        Ok(self.store.read("counting processes", |c| {
            c.query_row("SELECT COUNT(*) FROM tracked_processes", [], |r| {
                r.get::<_, u32>(0)
            })
        })?)
    }

    /// Every tracked process, freshly validated against /proc, including
    /// those that have died (reported as dead until they are purged).
    pub fn list(&self) -> Result<Vec<Tracked>, RegistryError> {
        self.validate()
    }

    /// What LIST_ACTIVE shows (as the reference daemon): the living, plus
    /// registrations that were never seen running as described (recorded
    /// dead at once, kept until KILL_ZOMBIES or the retention removes them,
    /// as the reference keeps them until its reaper runs). A process that
    /// was seen alive and has exited is dropped at once; it stays visible
    /// through [`list`](Self::list) until purged.
    pub fn list_active(&self) -> Result<Vec<Tracked>, RegistryError> {
        Ok(self.validate()?.into_iter().filter(is_active).collect())
    }

    /// Rows whose originator is `tool` or starts with `tool:`, from
    /// [`list_active`](Self::list_active), or [`list`](Self::list) when
    /// `include_dead`.
    pub fn list_by_originator(
        &self,
        tool: &str,
        include_dead: bool,
    ) -> Result<Vec<Tracked>, RegistryError> {
        let prefix = format!("{tool}:");
        Ok(self
            .validate()?
            .into_iter()
            .filter(|t| include_dead || is_active(t))
            .filter(|t| t.originator == tool || t.originator.starts_with(&prefix))
            .collect())
    }

    /// Checks every row against /proc, records the result, and purges rows
    /// that have been dead for longer than the retention. Returns the rows
    /// still held, annotated.
    pub fn validate(&self) -> Result<Vec<Tracked>, RegistryError> {
        let now = proc::now_epoch();
        let retention = self.dead_retention.as_secs_f64();
        let mut rows = self.all()?;
        for r in rows.iter_mut() {
            r.state = if r.identity_verified() {
                liveness_state(r.identity.liveness())
            } else {
                ProcState::Dead
            };
            r.last_validated_at = now;
        }
        let states: Vec<(u32, i64, i64)> = rows
            .iter()
            .map(|r| {
                (
                    r.identity.pid,
                    r.identity.start_ticks as i64,
                    r.state.to_db(),
                )
            })
            .collect();
        let purged = self.store.write("validating processes", |tx| {
            let mut up = tx.prepare_cached(
                "UPDATE tracked_processes SET state = ?3, last_validated_at = ?4,
                   dead_since = CASE WHEN ?3 = 1 THEN NULL ELSE COALESCE(dead_since, ?4) END
                 WHERE pid = ?1 AND start_ticks = ?2",
            )?;
            for (pid, ticks, state) in &states {
                up.execute(params![pid, ticks, state, now])?;
            }
            let mut del = tx.prepare_cached(
                "DELETE FROM tracked_processes WHERE dead_since IS NOT NULL AND dead_since <= ?1 RETURNING pid, start_ticks",
            )?;
            let gone = del
                .query_map([now - retention], |r| Ok((r.get::<_, u32>(0)?, r.get::<_, i64>(1)?)))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(gone)
        })?;
        for (pid, _) in &purged {
            tracing::info!(pid, "purged a dead process from the registry");
        }
        Ok(rows
            .into_iter()
            .filter(|r| {
                !purged
                    .iter()
                    .any(|(p, t)| *p == r.identity.pid && *t as u64 == r.identity.start_ticks)
            })
            .map(|r| self.annotate(r))
            .collect())
    }

    fn annotate(&self, mut t: Tracked) -> Tracked {
        t.parent_alive = parent_alive(&t);
        t
    }
}

/// Whether a validated row belongs in LIST_ACTIVE: not dead, or dead
/// without ever having been seen running as registered.
fn is_active(t: &Tracked) -> bool {
    t.state != ProcState::Dead || !t.identity_verified()
}

/// Whether the process a tracked one depends on still lives: the pid in
/// its `tool:pid` originator if present, else the parent it was registered
/// with, else its current parent.
fn parent_alive(t: &Tracked) -> bool {
    if let Some(pid) = t.originator_pid() {
        return proc::read_stat(pid)
            .map(|s| !s.is_zombie())
            .unwrap_or(false);
    }
    if let Some(parent) = t.parent {
        return parent.is_running();
    }
    match proc::read_stat(t.identity.pid) {
        Ok(st) if st.start_ticks == t.identity.start_ticks => {
            proc::read_stat(st.ppid).is_ok() || st.ppid == 0
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests;
