//! The service engine: supervised, restartable, logged processes (runpm,
//! and later the native runtime of Compose projects).
//!
//! Each service is owned by one supervisor task ([`supervisor`]) that
//! spawns its process in a new session, waits for it, applies the restart
//! policy ([`policy`]) and executes stop/restart/delete commands in order.
//! State lives in SQLite ([`persist`]) so a restarted daemon re-adopts
//! processes that are still running ([`Services::recover`]). Output goes
//! through spool files into timestamped, rotated logs ([`logs`]); SAVE and
//! RESURRECT use an atomically written dump ([`dump`]).
//!
//! Plain Rust types only: surfaces translate these to and from wire formats.

pub mod config;
mod dump;
pub mod logs;
mod persist;
pub mod policy;
mod supervisor;

pub use config::ServiceSpec;
pub use dump::ResurrectReport;
pub use logs::{LogBatch, LogConfig};
pub use policy::Exit;

use crate::store::{Store, StoreError};
use berth_os::OsError;
use logs::LogHub;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use supervisor::{Boot, Cmd, StopWhy};
use tokio::sync::{broadcast, mpsc, oneshot, Notify};

/// Why a service request was refused.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// A field of the definition is wrong; `field` is its name within the
    /// service definition (`cmd`, `env["A=B"]`, `name`, ...).
    #[error("{field}: {message}")]
    Invalid {
        /// The offending field.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// The request itself is wrong (a target that cannot be used here).
    #[error("{0}")]
    InvalidArgument(String),
    /// No service matches the target.
    #[error("{0}")]
    NotFound(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The OS refused (spawning, files): what berth was doing, with the
    /// `io::Error` as the source.
    #[error(transparent)]
    Os(#[from] OsError),
}

impl ServiceError {
    /// A field error.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Where a service is, as runpm knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Its process is running.
    Online,
    /// Not running, and not meant to be (stopped by request, or exited with
    /// autorestart off).
    Stopped,
    /// Gave up: a crash loop, an exit with autorestart off and a failure
    /// status, or a command that cannot be started.
    Errored,
    /// Waiting out a restart delay.
    Starting,
}

impl Status {
    /// The runpm status string.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Online => "online",
            Status::Stopped => "stopped",
            Status::Errored => "errored",
            Status::Starting => "starting",
        }
    }

    /// Parses [`as_str`](Self::as_str).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "online" => Status::Online,
            "stopped" => Status::Stopped,
            "errored" => Status::Errored,
            "starting" => Status::Starting,
            _ => return None,
        })
    }

    /// Online or about to be.
    pub fn is_up(self) -> bool {
        matches!(self, Status::Online | Status::Starting)
    }
}

/// A service as reported to clients.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceInfo {
    /// Stable numeric id (never reused).
    pub id: u32,
    /// Its definition.
    pub spec: ServiceSpec,
    /// Where it is.
    pub status: Status,
    /// Why it is there, in a sentence: the last exit, a pending restart, a
    /// crash loop, a stop by request, a re-adoption.
    pub reason: String,
    /// Process id while online (0 otherwise).
    pub pid: u32,
    /// Start time of that process in clock ticks (its identity with `pid`).
    pub start_ticks: u64,
    /// Restarts since it was (re)defined: automatic and by request.
    pub restart_count: u32,
    /// Consecutive unstable exits (compared against `max_restarts`).
    pub unstable_restarts: u32,
    /// When its process last started (seconds since the epoch).
    pub last_started_at: f64,
    /// When its process last ended (seconds since the epoch).
    pub last_exited_at: f64,
    /// Last exit: the code, minus the signal number, or 0 when unknown.
    pub last_exit_code: i32,
}

impl ServiceInfo {
    /// A defined service with no process yet and no history.
    pub fn fresh(id: u32, spec: ServiceSpec, status: Status, reason: impl Into<String>) -> Self {
        Self {
            id,
            spec,
            status,
            reason: reason.into(),
            pid: 0,
            start_ticks: 0,
            restart_count: 0,
            unstable_restarts: 0,
            last_started_at: 0.0,
            last_exited_at: 0.0,
            last_exit_code: 0,
        }
    }
}

/// Files and limits of the engine.
#[derive(Debug, Clone)]
pub struct ServicesConfig {
    /// Logs.
    pub logs: LogConfig,
    /// Where SAVE writes the dump and RESURRECT reads it.
    pub dump_path: PathBuf,
}

struct Slot {
    info: ServiceInfo,
    tx: mpsc::UnboundedSender<Cmd>,
}

pub(crate) struct Shared {
    store: Arc<Store>,
    hub: LogHub,
    dump_path: PathBuf,
    /// This state's value of the `BERTH_SERVICE_STATE` marker every
    /// service process carries: the dump file's path, unique per database
    /// (scopes share a directory, not a dump file).
    marker: String,
    table: Mutex<BTreeMap<u32, Slot>>,
    spools_ready: Notify,
    closing: AtomicBool,
}

impl Shared {
    fn table(&self) -> MutexGuard<'_, BTreeMap<u32, Slot>> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current record of `id`.
    fn info(&self, id: u32) -> Option<ServiceInfo> {
        self.table().get(&id).map(|s| s.info.clone())
    }

    /// Applies `f` to the record of `id` and persists it.
    fn update(&self, id: u32, f: impl FnOnce(&mut ServiceInfo)) -> Option<ServiceInfo> {
        let info = {
            let mut t = self.table();
            let slot = t.get_mut(&id)?;
            f(&mut slot.info);
            slot.info.clone()
        };
        if let Err(e) = persist::save(&self.store, &info) {
            tracing::warn!(service = %info.spec.name, "cannot persist service state: {e}");
        }
        Some(info)
    }

    fn persist_spools(&self, ids: impl IntoIterator<Item = u32>) {
        let rows: Vec<_> = ids
            .into_iter()
            .map(|id| (id, self.hub.positions(id)))
            .collect();
        if let Err(e) = persist::save_spools(&self.store, &rows) {
            tracing::warn!("cannot persist log positions: {e}");
        }
    }
}

/// What [`Services::recover`] found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RecoverReport {
    /// Services whose process was still running and is supervised again.
    pub adopted: u32,
    /// Services whose process ended while the daemon was down (the restart
    /// policy decides what follows).
    pub lost: u32,
}

/// A subscription to services' log lines, made by [`Services::follow`].
pub struct LogFollow {
    rx: broadcast::Receiver<Arc<LogBatch>>,
    ids: Option<Vec<u32>>,
    many: bool,
}

impl LogFollow {
    /// The next lines appended to a followed log, formatted like the tail
    /// was. A follower that fell behind gets a notice instead of the lines
    /// it missed. `None` once the engine is gone.
    pub async fn next(&mut self) -> Option<String> {
        loop {
            match self.rx.recv().await {
                Ok(b) => {
                    if self.ids.as_ref().is_some_and(|ids| !ids.contains(&b.id)) {
                        continue;
                    }
                    if !self.many {
                        return Some(b.text.clone());
                    }
                    let mut out = String::with_capacity(b.text.len() + 16);
                    for l in b.text.lines() {
                        out.push_str(&logs::with_name(l, &b.name));
                        out.push('\n');
                    }
                    return Some(out);
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    let ts = logs::timestamp(berth_os::proc::now_epoch());
                    return Some(format!(
                        "{ts} berth follow fell behind: {n} batches of lines skipped (see the log files)\n"
                    ));
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

/// The service engine: supervised services (runpm's model, seed 003
/// requests 50-59), each run by one task that applies the restart policy
/// and spools its output to rotated, timestamped logs.
///
/// The engine must run inside a tokio runtime, and [`run_pump`](Self::run_pump)
/// must be running for logs to be drained.
///
/// ```
/// # use std::sync::Arc;
/// # use std::time::Duration;
/// use berth_engine::services::{LogConfig, ServiceSpec, Services, ServicesConfig};
/// use berth_engine::Store;
///
/// let dir = tempfile::tempdir().unwrap();
/// let store = Arc::new(Store::open(&dir.path().join("berth.db"), 0).unwrap());
/// let config = ServicesConfig {
///     logs: LogConfig { dir: dir.path().join("logs"), max_bytes: 1 << 20, keep: 2 },
///     dump_path: dir.path().join("services.json"),
/// };
/// let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
/// rt.block_on(async {
///     let services = Services::open(store, config).unwrap();
///     tokio::spawn(services.clone().run_pump());
///     let spec = ServiceSpec {
///         name: "hello".into(),
///         cmd: vec!["sh".into(), "-c".into(), "echo hello; exec sleep 30".into()],
///         ..ServiceSpec::default()
///     };
///     let info = services.start(spec).await.unwrap();
///     assert!(info.status.is_up());
///     // Output reaches the log within a drain tick (50 ms).
///     let mut logs = String::new();
///     for _ in 0..100 {
///         logs = services.logs("hello", 10).unwrap();
///         if logs.contains(" out hello") { break; }
///         tokio::time::sleep(Duration::from_millis(50)).await;
///     }
///     assert!(logs.contains(" out hello"), "{logs}");
///     assert_eq!(services.stop("hello").await.unwrap(), 1);
///     services.shutdown().await;
/// });
/// ```
pub struct Services {
    shared: Arc<Shared>,
}

/// Default SERVICE_LOGS tail when a client asks for 0 lines.
pub const DEFAULT_LOG_LINES: usize = 100;

impl Services {
    /// Opens the engine over `store`. Nothing runs until
    /// [`recover`](Self::recover) and [`run_pump`](Self::run_pump).
    pub fn open(store: Arc<Store>, cfg: ServicesConfig) -> Result<Arc<Self>, ServiceError> {
        let hub = LogHub::new(cfg.logs.clone()).map_err(|e| {
            ServiceError::Os(OsError::new(
                format!(
                    "cannot prepare the service log directory {}",
                    cfg.logs.dir.display()
                ),
                e,
            ))
        })?;
        Ok(Arc::new(Self {
            shared: Arc::new(Shared {
                store,
                hub,
                marker: cfg.dump_path.display().to_string(),
                dump_path: cfg.dump_path,
                table: Mutex::new(BTreeMap::new()),
                spools_ready: Notify::new(),
                closing: AtomicBool::new(false),
            }),
        }))
    }

    /// Loads the services a previous daemon left and takes them back:
    /// processes still running (same pid and start time) are re-adopted,
    /// those that ended meanwhile go through the restart policy, stopped
    /// ones stay stopped. Must run inside the daemon's runtime.
    pub fn recover(&self) -> Result<RecoverReport, ServiceError> {
        dump::remove_stale_temps(&self.shared.dump_path);
        let mut report = RecoverReport::default();
        let marked = supervisor::marked_leaders(&self.shared.marker);
        for (mut info, spools) in persist::load_all(&self.shared.store)? {
            self.shared.hub.register(info.id, &info.spec.name);
            let boot = supervisor::recover_boot(&self.shared, &mut info, &spools, &marked);
            match &boot {
                Boot::Adopt(_) => report.adopted += 1,
                Boot::Lost => report.lost += 1,
                _ => {}
            }
            self.spawn_task(info, boot);
        }
        Ok(report)
    }

    fn spawn_task(&self, info: ServiceInfo, boot: Boot) -> mpsc::UnboundedSender<Cmd> {
        let (tx, rx) = mpsc::unbounded_channel();
        let id = info.id;
        self.shared.table().insert(
            id,
            Slot {
                info,
                tx: tx.clone(),
            },
        );
        tokio::spawn(supervisor::run(self.shared.clone(), id, rx, boot));
        tx
    }

    /// Drains spools into the logs forever (spawn it as a task): each
    /// spool as soon as it is written (in write order), and all of them
    /// every [`logs::DRAIN_INTERVAL`] (partial lines, and the fallback
    /// when inotify is unavailable).
    pub async fn run_pump(self: Arc<Self>) {
        let mut tick = tokio::time::interval(logs::DRAIN_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut dirty = std::collections::BTreeSet::new();
        let mut persisted = Instant::now();
        let mut drained_all = Instant::now();
        let mut written = self.shared.hub.written_fd().and_then(|fd| {
            berth_os::async_fd::register(fd, tokio::io::Interest::READABLE)
                .inspect_err(|e| tracing::warn!("cannot wait on spool writes: {e}"))
                .ok()
        });
        loop {
            if !self.shared.hub.has_spools() {
                self.shared.persist_spools(std::mem::take(&mut dirty));
                self.shared.spools_ready.notified().await;
            }
            let on_write = async {
                match &written {
                    Some(afd) => afd.readable().await.ok(),
                    None => std::future::pending().await,
                }
            };
            let mut broken = false;
            let timed = tokio::select! {
                biased;
                Some(mut guard) = on_write => {
                    let hub = &self.shared.hub;
                    if let Ok(r) = guard.try_io(|_| hub.drain_written()) {
                        match r {
                            Ok(ids) => dirty.extend(ids),
                            Err(e) => {
                                tracing::warn!("reading spool events failed, reading on the timer only: {e}");
                                broken = true;
                            }
                        }
                    }
                    false
                }
                _ = tick.tick() => true,
            };
            if broken {
                written = None;
            }
            // A steady stream of writes must not starve the timed drain
            // (partial lines, spools without a watch, persisting).
            if timed || drained_all.elapsed() >= logs::DRAIN_INTERVAL {
                dirty.extend(self.shared.hub.drain_all());
                drained_all = Instant::now();
            }
            if persisted.elapsed() >= Duration::from_secs(1) {
                self.shared.persist_spools(std::mem::take(&mut dirty));
                persisted = Instant::now();
            }
        }
    }

    /// Every service, by id.
    pub fn list(&self) -> Vec<ServiceInfo> {
        self.shared
            .table()
            .values()
            .map(|s| s.info.clone())
            .collect()
    }

    /// Ids matching `target`: a name, an id, or (when `all_ok`) `all`.
    fn resolve(&self, target: &str, all_ok: bool) -> Result<Vec<u32>, ServiceError> {
        let t = self.shared.table();
        if all_ok && target == "all" {
            return Ok(t.keys().copied().collect());
        }
        if target.is_empty() {
            return Err(ServiceError::InvalidArgument(
                "target must not be empty: give a service name or id".into(),
            ));
        }
        if let Some(id) = t
            .values()
            .find(|s| s.info.spec.name == target)
            .map(|s| s.info.id)
        {
            return Ok(vec![id]);
        }
        if let Ok(id) = target.parse::<u32>() {
            if t.contains_key(&id) {
                return Ok(vec![id]);
            }
        }
        Err(ServiceError::NotFound(format!(
            "target {target:?}: no service has that name or id"
        )))
    }

    /// One service.
    pub fn describe(&self, target: &str) -> Result<ServiceInfo, ServiceError> {
        if target == "all" {
            return Err(ServiceError::InvalidArgument(
                "target \"all\": describe takes one service name or id".into(),
            ));
        }
        let id = self.resolve(target, false)?[0];
        self.shared
            .info(id)
            .ok_or_else(|| ServiceError::NotFound(format!("target {target:?}: it was deleted")))
    }

    async fn send<T>(
        &self,
        id: u32,
        make: impl FnOnce(oneshot::Sender<T>) -> Cmd,
    ) -> Result<T, ServiceError> {
        let (reply, rx) = oneshot::channel();
        let tx = self
            .shared
            .table()
            .get(&id)
            .map(|s| s.tx.clone())
            .ok_or_else(|| ServiceError::NotFound(format!("service {id} was deleted")))?;
        tx.send(make(reply))
            .map_err(|_| ServiceError::NotFound(format!("service {id} was deleted")))?;
        rx.await
            .map_err(|_| ServiceError::NotFound(format!("service {id} was deleted meanwhile")))
    }

    /// Defines and starts a service. A name that is taken by a running
    /// service is refused; a stopped or errored one is redefined and
    /// started again under the same id.
    pub async fn start(&self, spec: ServiceSpec) -> Result<ServiceInfo, ServiceError> {
        spec.validate()?;
        if self.shared.closing.load(Ordering::Relaxed) {
            return Err(ServiceError::Os(
                std::io::Error::other("the daemon is shutting down").into(),
            ));
        }
        let existing = self
            .shared
            .table()
            .values()
            .find(|s| s.info.spec.name == spec.name)
            .map(|s| s.info.clone());
        if let Some(info) = existing {
            if info.status.is_up() {
                return Err(ServiceError::invalid(
                    "name",
                    format!(
                        "a service named {:?} is already {} (id {}); restart, stop or delete it instead",
                        spec.name,
                        info.status.as_str(),
                        info.id
                    ),
                ));
            }
            return self
                .send(info.id, |reply| Cmd::Start {
                    spec: Some(spec),
                    restart: false,
                    reply,
                })
                .await?;
        }
        let id = persist::insert(&self.shared.store, &spec)?;
        self.shared.hub.register(id, &spec.name);
        let info = ServiceInfo::fresh(id, spec, Status::Stopped, "defined, not started yet");
        self.spawn_task(info, Boot::Idle);
        let started = self
            .send(id, |reply| Cmd::Start {
                spec: None,
                restart: false,
                reply,
            })
            .await?;
        if started.is_err() {
            // Nothing ran: do not keep a definition the user must clean up.
            let _ = self.send(id, |reply| Cmd::Delete { reply }).await;
        }
        started
    }

    async fn each<T: Send + 'static>(
        &self,
        target: &str,
        make: impl Fn(oneshot::Sender<T>) -> Cmd,
    ) -> Result<Vec<T>, ServiceError> {
        let ids = self.resolve(target, true)?;
        let mut waits = Vec::new();
        for id in ids {
            let (reply, rx) = oneshot::channel();
            let tx = self.shared.table().get(&id).map(|s| s.tx.clone());
            if let Some(tx) = tx {
                if tx.send(make(reply)).is_ok() {
                    waits.push(rx);
                }
            }
        }
        // All services act at once; gather their answers.
        let mut out = Vec::new();
        for rx in waits {
            if let Ok(v) = rx.await {
                out.push(v);
            }
        }
        Ok(out)
    }

    /// Stops the target(s): SIGTERM to each whole process tree, SIGKILL
    /// after `kill_timeout_ms`. Returns how many were running.
    pub async fn stop(&self, target: &str) -> Result<u32, ServiceError> {
        self.stop_within(target, None).await
    }

    /// Like [`stop`](Self::stop), with `grace` before SIGKILL instead of
    /// each service's `kill_timeout_ms` (StopProject's `timeout_seconds`).
    pub async fn stop_within(
        &self,
        target: &str,
        grace: Option<Duration>,
    ) -> Result<u32, ServiceError> {
        let r = self
            .each(target, |reply| Cmd::Stop {
                why: StopWhy::Request,
                grace,
                reply,
            })
            .await?;
        Ok(r.into_iter().filter(|b| *b).count() as u32)
    }

    /// Restarts the target(s) (starting stopped ones). Returns how many
    /// started; the first failure is returned if none did.
    pub async fn restart(&self, target: &str) -> Result<u32, ServiceError> {
        let r = self
            .each(target, |reply| Cmd::Start {
                spec: None,
                restart: true,
                reply,
            })
            .await?;
        let ok = r.iter().filter(|r| r.is_ok()).count() as u32;
        if ok == 0 {
            if let Some(Err(e)) = r.into_iter().find(|r| r.is_err()) {
                return Err(e);
            }
        }
        Ok(ok)
    }

    /// Stops and forgets the target(s), logs included.
    pub async fn delete(&self, target: &str) -> Result<u32, ServiceError> {
        let r = self.each(target, |reply| Cmd::Delete { reply }).await?;
        Ok(r.len() as u32)
    }

    fn log_targets(&self, target: &str) -> Result<(Vec<u32>, bool), ServiceError> {
        if target.is_empty() || target == "all" {
            Ok((self.shared.table().keys().copied().collect(), true))
        } else {
            Ok((self.resolve(target, false)?, false))
        }
    }

    fn lines(lines: u32) -> usize {
        match lines {
            0 => DEFAULT_LOG_LINES,
            n => n as usize,
        }
    }

    /// The last `lines` log lines of `target` ("" or "all": every service,
    /// merged by time and tagged with the name).
    pub fn logs(&self, target: &str, lines: u32) -> Result<String, ServiceError> {
        let (ids, all) = self.log_targets(target)?;
        for id in &ids {
            self.shared.hub.drain(*id, false);
        }
        Ok(self.shared.hub.tail(&ids, Self::lines(lines), all))
    }

    /// Like [`logs`](Self::logs), and every line appended afterwards.
    /// Following every service also follows services defined later.
    pub fn follow(&self, target: &str, lines: u32) -> Result<(String, LogFollow), ServiceError> {
        let (ids, all) = self.log_targets(target)?;
        for id in &ids {
            self.shared.hub.drain(*id, false);
        }
        let (text, rx) = self.shared.hub.follow(&ids, Self::lines(lines), all);
        Ok((
            text,
            LogFollow {
                rx,
                ids: (!all).then_some(ids),
                many: all,
            },
        ))
    }

    /// Empties the logs of `target` ("" or "all": every service).
    pub fn flush(&self, target: &str) -> Result<u32, ServiceError> {
        let (ids, _) = self.log_targets(target)?;
        for id in &ids {
            self.shared.hub.flush(*id);
        }
        Ok(ids.len() as u32)
    }

    /// Writes the service set to the dump, atomically. Returns its path
    /// and how many services it holds.
    pub fn save(&self) -> Result<(PathBuf, u32), ServiceError> {
        let all = self.list();
        dump::save(&self.shared.dump_path, &all)
    }

    /// Starts what the dump says was running, skipping services that are
    /// already up; defines saved services that do not exist.
    pub async fn resurrect(&self) -> Result<ResurrectReport, ServiceError> {
        let saved = dump::load(&self.shared.dump_path)?;
        let mut report = ResurrectReport::default();
        for entry in saved {
            let name = entry.spec.name.clone();
            let existing = self
                .shared
                .table()
                .values()
                .find(|s| s.info.spec.name == name)
                .map(|s| (s.info.id, s.info.status));
            match existing {
                Some((_, st)) if st.is_up() => report.already_running += 1,
                _ if entry.running => match self.start(entry.spec).await {
                    Ok(_) => report.started += 1,
                    Err(e) => {
                        tracing::warn!(service = %name, "resurrect could not start it: {e}");
                        report.failed.push(format!("{name}: {e}"));
                    }
                },
                Some(_) => {}
                None => {
                    if entry.spec.validate().is_ok() {
                        let id = persist::insert(&self.shared.store, &entry.spec)?;
                        self.shared.hub.register(id, &name);
                        let info = ServiceInfo::fresh(
                            id,
                            entry.spec,
                            Status::Stopped,
                            "restored stopped from the dump",
                        );
                        self.spawn_task(info, Boot::Idle);
                        self.shared.update(id, |_| {});
                        report.defined += 1;
                    }
                }
            }
        }
        Ok(report)
    }

    /// Path of the dump SAVE writes.
    pub fn dump_path(&self) -> &std::path::Path {
        &self.shared.dump_path
    }

    /// Stops every service (the daemon is shutting down): they are marked
    /// stopped, so a later start does not bring them back unless asked
    /// (`--resurrect`). Services that [`outlive_daemon`](ServiceSpec::outlive_daemon)
    /// keep running and are re-adopted by the next daemon. Returns when all
    /// have ended.
    pub async fn shutdown(&self) {
        self.shared.closing.store(true, Ordering::Relaxed);
        let ids: Vec<u32> = self
            .shared
            .table()
            .values()
            .filter(|s| !s.info.spec.outlive_daemon)
            .map(|s| s.info.id)
            .collect();
        for id in ids {
            let _ = self
                .each(&id.to_string(), |reply| Cmd::Stop {
                    why: StopWhy::Shutdown,
                    grace: None,
                    reply,
                })
                .await;
        }
        self.shared.hub.drain_all();
        let ids: Vec<u32> = self.shared.table().keys().copied().collect();
        self.shared.persist_spools(ids);
    }
}

#[cfg(test)]
mod tests;
