//! The project engine: registry of projects, their plans and ports, and
//! the lifecycle operations of seed 000 over a [`ProjectRuntime`].
//!
//! Each project has a slot with an async lock, so operations on one
//! project run one at a time while other projects are served. Persistent
//! facts (registration, status, ports) are in SQLite; the plan of an open
//! project is in memory and rebuilt by [`Projects::recover`] for projects
//! that were running when the daemon stopped.

use super::manifest::{Manifest, MANIFEST_FILE};
use super::model::*;
use super::native::NativeRuntime;
use super::orchestrate;
use super::persist::{self, ProjectRow};
use super::plan::{self, PlanInput};
use super::runtime::{Plan, ProgressFn, ProjectRuntime, RuntimeErrorKind};
use super::ValidationReport;
use crate::services::Services;
use crate::snapshots::{SnapshotError, SnapshotInfo, SnapshotMeta, SnapshotStore};
use crate::store::Store;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod autosave;
mod packages;
mod snapshots;

pub use autosave::{PruneReport, AUTOSAVE_TICK};

/// Files and choices of the engine.
#[derive(Clone)]
pub struct ProjectsConfig {
    /// Where default state paths go: `<state_root>/<project_id>`.
    pub state_root: PathBuf,
    /// The runtime of projects that do not ask for one.
    pub default_runtime: RuntimeKind,
    /// The Docker runtime, when an engine answered.
    pub docker: Option<Arc<dyn ProjectRuntime>>,
}

/// StopProject's default grace per service.
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// GetProjectLogs's default tail.
pub const DEFAULT_TAIL_LINES: usize = 100;
/// Log lines returned with START_FAILED.
const FAILURE_LOG_LINES: usize = 20;
/// Grace given to services stopped by a failed start's rollback.
const ROLLBACK_GRACE: Duration = Duration::from_secs(10);

/// What a plan is loaded for: a read (status, logs, stop, delete) never
/// changes the recorded ports; opening records them; starting also
/// checks them against the machine.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Load {
    Read,
    Open,
    Start,
}

/// A project loaded into memory by OpenProject.
struct Open {
    plan: Plan,
    rt: Arc<dyn ProjectRuntime>,
    manifest: Manifest,
    /// Validation warnings and transformations, for the user.
    notes: Vec<String>,
    /// Health by service, as last probed.
    health: Arc<Mutex<BTreeMap<String, String>>>,
    /// Services being started or stopped right now.
    transient: Arc<Mutex<BTreeMap<String, ServiceState>>>,
    /// Services the files define that no active profile selects.
    left_out: Vec<String>,
}

#[derive(Default)]
struct Slot {
    op: tokio::sync::Mutex<()>,
    open: Mutex<Option<Arc<Open>>>,
    /// The health monitor of the running project.
    monitor: Mutex<Option<tokio::task::AbortHandle>>,
}

impl Slot {
    /// Probes `open`'s health checks from now on (replacing any monitor).
    fn watch_health(&self, open: Arc<Open>) {
        let task = tokio::spawn(async move {
            let health = open.health.clone();
            let note = move |svc: &str, h: &str| {
                health
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(svc.to_owned(), h.to_owned());
            };
            orchestrate::monitor_health(open.rt.as_ref(), &open.plan, &note).await;
        });
        self.unwatch_health();
        *self.monitor.lock().unwrap_or_else(|p| p.into_inner()) = Some(task.abort_handle());
    }

    fn unwatch_health(&self) {
        if let Some(h) = self
            .monitor
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            h.abort();
        }
    }

    fn open(&self) -> Option<Arc<Open>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
    fn set_open(&self, o: Option<Arc<Open>>) {
        *self.open.lock().unwrap_or_else(|p| p.into_inner()) = o;
    }
}

/// The project engine: the operations of seed 000 (EnsureProject,
/// OpenProject, StartProject, StopProject, ...) over Compose projects, one
/// async lock per project, on the Docker or the native runtime. The
/// Compose file is resolved by `berth-compose`; this engine keeps the
/// registration (SQLite), the host ports and the orchestration.
///
/// On the native runtime (below) each service is a supervised service of
/// the [`Services`] engine, so nothing but `sh` is needed:
///
/// ```
/// # use std::collections::BTreeMap;
/// # use std::sync::Arc;
/// use berth_engine::projects::{EnsureRequest, ProjectState, Projects, ProjectsConfig, RuntimeKind};
/// use berth_engine::services::{LogConfig, Services, ServicesConfig};
/// use berth_engine::Store;
///
/// let dir = tempfile::tempdir().unwrap();
/// let app = dir.path().join("hello");
/// std::fs::create_dir(&app).unwrap();
/// std::fs::write(
///     app.join("compose.yaml"),
///     "services:\n  web:\n    command: [\"sh\", \"-c\", \"echo up; exec sleep 30\"]\n",
/// )
/// .unwrap();
/// std::fs::write(
///     app.join("manifest.json"),
///     r#"{"app_id": "dev.example.hello", "name": "Hello", "version": "1.0.0"}"#,
/// )
/// .unwrap();
///
/// let store = Arc::new(Store::open(&dir.path().join("berth.db"), 0).unwrap());
/// let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
/// rt.block_on(async {
///     let logs = LogConfig { dir: dir.path().join("logs"), max_bytes: 1 << 20, keep: 2 };
///     let dump_path = dir.path().join("services.json");
///     let services = Services::open(store.clone(), ServicesConfig { logs, dump_path }).unwrap();
///     tokio::spawn(services.clone().run_pump());
///     let config = ProjectsConfig {
///         state_root: dir.path().join("projects"),
///         default_runtime: RuntimeKind::Native,
///         docker: None,
///     };
///     let projects = Projects::open(store, services.clone(), config).unwrap();
///
///     let ensured = projects
///         .ensure(EnsureRequest {
///             project_id: "hello".into(),
///             app_id: "dev.example.hello".into(),
///             package_path: app.clone(),
///             state_path: None,
///             manifest: Vec::new(),
///             runtime: None,
///         })
///         .await
///         .unwrap();
///     assert!(ensured.created);
///     projects.open_project("hello", &|_| {}).await.unwrap();
///     projects.start("hello", BTreeMap::new()).await.unwrap();
///     let status = projects.status("hello").await.unwrap();
///     assert_eq!(status.status, ProjectState::Running);
///     assert_eq!(status.services[0].name, "web");
///
///     projects.stop("hello", None).await.unwrap();
///     assert_eq!(projects.status("hello").await.unwrap().status, ProjectState::Stopped);
///     services.shutdown().await;
/// });
/// ```
pub struct Projects {
    store: Arc<Store>,
    cfg: ProjectsConfig,
    native: Arc<dyn ProjectRuntime>,
    slots: Mutex<HashMap<String, Arc<Slot>>>,
    /// The snapshot store shared by all projects (see [`snapshot_root`]).
    snaps: Arc<SnapshotStore>,
    /// Projects with a save or restore under way (SAVE_IN_PROGRESS).
    saving: Arc<Mutex<HashSet<String>>>,
}

/// Where the snapshot store lives: `snapshots` beside the state root
/// (`<state dir>/snapshots` for the daemon's `<state dir>/projects`;
/// `<state dir>/berth-NAME-snapshots` for scope NAME's
/// `berth-NAME-projects`), so scopes never share a store.
pub fn snapshot_root(state_root: &Path) -> PathBuf {
    beside_state_root(state_root, "snapshots")
}

/// Where imported packages are unpacked and where the trusted signer
/// keys (`*.pub`) are: `(packages, trusted-keys)` beside the state root,
/// named like [`snapshot_root`] (each scope has its own trust store).
pub fn package_roots(state_root: &Path) -> (PathBuf, PathBuf) {
    (
        beside_state_root(state_root, "packages"),
        beside_state_root(state_root, "trusted-keys"),
    )
}

/// `<parent>/<prefix><what>`: the prefix is that of the state root's name
/// (`projects` gives none, `P-projects` gives `P-`, another name `NAME-`),
/// so two state roots in one directory get two directories.
fn beside_state_root(state_root: &Path, what: &str) -> PathBuf {
    let name = state_root
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let prefix = match name.as_str() {
        "projects" | "" => String::new(),
        n => format!("{}-", n.strip_suffix("-projects").unwrap_or(n)),
    };
    match state_root.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.join(format!("{prefix}{what}")),
        _ => state_root.join(format!(".{what}")),
    }
}

/// Marks a project as saving until dropped.
struct SaveGuard {
    saving: Arc<Mutex<HashSet<String>>>,
    id: String,
}

impl Drop for SaveGuard {
    fn drop(&mut self) {
        self.saving
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.id);
    }
}

fn snap_error(project_id: &str, e: SnapshotError) -> ProjectError {
    match e {
        SnapshotError::NotFound(m) => ProjectError::NotFound(m),
        other => ProjectError::Internal(format!("project {project_id:?}: {other}")),
    }
}

fn not_found(id: &str) -> ProjectError {
    ProjectError::NotFound(format!(
        "no project has the id {id:?} (EnsureProject registers one)"
    ))
}

/// The report's rejections as one message.
fn rejection(path: &Path, runtime: RuntimeKind, r: &ValidationReport) -> ProjectError {
    let items: Vec<String> = r
        .rejected_fields
        .iter()
        .map(|n| {
            if n.path.is_empty() {
                n.reason.clone()
            } else {
                format!("{}: {}", n.path, n.reason)
            }
        })
        .collect();
    ProjectError::InvalidManifest(format!(
        "{} cannot run on the {} runtime: {}",
        path.display(),
        runtime.as_str(),
        items.join("; ")
    ))
}

/// Every name in `services` is a service of `plan`, or NOT_FOUND.
fn check_services(project_id: &str, plan: &Plan, services: &[String]) -> Result<(), ProjectError> {
    match services.iter().find(|s| plan.service(s).is_none()) {
        Some(s) => Err(ProjectError::NotFound(format!(
            "project {project_id:?} has no service {s:?}"
        ))),
        None => Ok(()),
    }
}

/// `plan` narrowed to `services` (empty: all of it). Dependencies on
/// services left out are not waited for.
fn sub_plan(plan: &Plan, services: &[String]) -> Plan {
    let mut p = plan.clone();
    if !services.is_empty() {
        p.services.retain(|s| services.contains(&s.name));
    }
    p
}

/// Settles what a daemon killed during DuplicateProject or ImportPackage
/// left (one daemon serves a state root, so none is in use when it
/// opens): a `<state root>/.duplicate-<id>` temporary is renamed into
/// place when `<id>` was registered (the kill came between registering
/// the copy and the rename) and removed otherwise (the copy was not
/// whole); `<packages>/<app>/.import-*` temporaries are removed.
fn remove_leftovers(store: &Store, state_root: &Path) {
    let temps = std::fs::read_dir(state_root)
        .into_iter()
        .flatten()
        .flatten();
    for e in temps {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(id) = name.strip_prefix(snapshots::DUPLICATE_TEMP_PREFIX) else {
            continue;
        };
        let path = e.path();
        let registered = persist::get(store, id).ok().flatten();
        if let Some(row) =
            registered.filter(|r| r.state_path == state_root.join(id) && !r.state_path.exists())
        {
            match std::fs::rename(&path, &row.state_path) {
                Ok(()) => tracing::info!(project = %id, "finished an interrupted duplicate"),
                Err(err) => tracing::warn!("cannot move {} into place: {err}", path.display()),
            }
            continue;
        }
        match std::fs::remove_dir_all(&path) {
            Ok(()) => tracing::info!(
                "removed {}, left by an interrupted duplicate",
                path.display()
            ),
            Err(err) => tracing::warn!("cannot remove {}: {err}", path.display()),
        }
    }
    crate::packages::remove_leftovers(&package_roots(state_root).0);
}

/// `wanted` with the host ports the file asks for under the keys in
/// `moved` dropped, so the allocator chooses (and keeps) one instead.
fn unrequest(
    mut wanted: Vec<plan::WantedPort>,
    moved: &[persist::PortKey],
) -> Vec<plan::WantedPort> {
    for w in &mut wanted {
        if moved.contains(&(w.service.clone(), w.container_port, w.protocol)) {
            w.host_port = None;
        }
    }
    wanted
}

fn dir_size(p: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(p) else {
        return 0;
    };
    rd.flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map(|m| m.len()).unwrap_or(0),
            _ => 0,
        })
        .sum()
}

impl Projects {
    /// Opens the engine; call [`recover`](Self::recover) next.
    pub fn open(
        store: Arc<Store>,
        services: Arc<Services>,
        cfg: ProjectsConfig,
    ) -> Result<Arc<Self>, ProjectError> {
        remove_leftovers(&store, &cfg.state_root);
        let snaps = SnapshotStore::open(&snapshot_root(&cfg.state_root))
            .map_err(|e| ProjectError::Internal(format!("cannot open the snapshot store: {e}")))?;
        Ok(Arc::new(Self {
            store,
            cfg,
            native: Arc::new(NativeRuntime::new(services)),
            slots: Mutex::new(HashMap::new()),
            snaps: Arc::new(snaps),
            saving: Default::default(),
        }))
    }

    fn slot(&self, id: &str) -> Arc<Slot> {
        self.slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(id.to_owned())
            .or_default()
            .clone()
    }

    fn runtime(&self, kind: RuntimeKind) -> Result<Arc<dyn ProjectRuntime>, ProjectError> {
        match kind {
            RuntimeKind::Native => Ok(self.native.clone()),
            RuntimeKind::Docker => self.cfg.docker.clone().ok_or_else(|| {
                ProjectError::Unavailable(
                    "this project runs on Docker, and no Docker Engine answered when the daemon started (set DOCKER_HOST or start dockerd, then restart berth)".into(),
                )
            }),
        }
    }

    fn row(&self, id: &str) -> Result<ProjectRow, ProjectError> {
        persist::get(&self.store, id)?.ok_or_else(|| not_found(id))
    }

    /// Finds the projects a previous daemon left running and takes them
    /// back: reopened, host ports served again, nothing started twice.
    /// Returns the ids taken back.
    pub async fn recover(&self) -> Result<Vec<String>, ProjectError> {
        let mut back = Vec::new();
        // A restore a crash interrupted is settled first: each state path
        // is the old tree or the new one, never missing or mixed.
        for row in persist::all(&self.store)? {
            if let Err(e) = self.snaps.recover(&row.state_path) {
                tracing::warn!(project = %row.id, "cannot settle an interrupted restore: {e}");
            }
        }
        for row in persist::all(&self.store)? {
            if row.status == ProjectState::Stopped {
                continue;
            }
            let slot = self.slot(&row.id);
            let _g = slot.op.lock().await;
            let open = match self.load(&row, Load::Open, &BTreeMap::new()).await {
                Ok(o) => o,
                Err(e) => {
                    tracing::warn!(project = %row.id, "cannot reopen project: {e}");
                    continue;
                }
            };
            let mut running = 0;
            for svc in &open.plan.services {
                match open.rt.reattach(&open.plan, svc).await {
                    Ok(true) => running += 1,
                    Ok(false) => {}
                    Err(e) => tracing::warn!(project = %row.id, service = %svc.name, "{e}"),
                }
            }
            let status = if running > 0 {
                ProjectState::Running
            } else {
                ProjectState::Stopped
            };
            persist::set_status(&self.store, &row.id, status, &row.detail, None)?;
            let open = Arc::new(open);
            if running > 0 {
                slot.watch_health(open.clone());
            }
            slot.set_open(Some(open));
            back.push(row.id.clone());
        }
        Ok(back)
    }

    /// EnsureProject.
    pub async fn ensure(&self, req: EnsureRequest) -> Result<Ensured, ProjectError> {
        plan::check_project_id(&req.project_id)?;
        let pkg = &req.package_path;
        if pkg.as_os_str().is_empty() {
            return Err(ProjectError::InvalidArgument(
                "package_path must name the project directory".into(),
            ));
        }
        let pkg = std::fs::canonicalize(pkg)
            .ok()
            .filter(|p| p.is_dir())
            .ok_or_else(|| {
                ProjectError::PathNotFound(format!(
                    "package_path {} is not an existing directory",
                    pkg.display()
                ))
            })?;
        let manifest_bytes = if req.manifest.is_empty() {
            let f = pkg.join(MANIFEST_FILE);
            std::fs::read(&f).map_err(|e| {
                ProjectError::PathNotFound(format!(
                    "no manifest in the request and none at {}: {e}",
                    f.display()
                ))
            })?
        } else {
            req.manifest.clone()
        };
        let manifest = Manifest::parse(&manifest_bytes)?;
        if !req.app_id.is_empty() && req.app_id != manifest.app_id {
            return Err(ProjectError::InvalidManifest(format!(
                "app_id {:?} in the request differs from the manifest's {:?}",
                req.app_id, manifest.app_id
            )));
        }
        let mut runtime = req.runtime.unwrap_or(self.cfg.default_runtime);
        let checked = super::validate::check(&manifest, &pkg, runtime.validation(), None)?;
        let (path, mut report) = (checked.path, checked.report);
        // A file of commands without images cannot run in containers: when
        // the runtime was not asked for, such a project runs natively.
        if !report.valid && req.runtime.is_none() && runtime == RuntimeKind::Docker {
            let native =
                super::validate::check(&manifest, &pkg, RuntimeKind::Native.validation(), None)?
                    .report;
            if native.valid {
                runtime = RuntimeKind::Native;
                report = native;
            }
        }
        self.runtime(runtime)?;
        if !report.valid {
            return Err(rejection(&path, runtime, &report));
        }
        let state_path = match &req.state_path {
            Some(p) if !p.as_os_str().is_empty() => {
                if !p.is_absolute() {
                    return Err(ProjectError::InvalidArgument(format!(
                        "state_path {} must be absolute",
                        p.display()
                    )));
                }
                p.clone()
            }
            _ => self.cfg.state_root.join(&req.project_id),
        };
        let slot = self.slot(&req.project_id);
        let _g = slot.op.lock().await;
        let namespace = plan::namespace(&req.project_id);
        if let Some(row) = persist::get(&self.store, &req.project_id)? {
            let mut diff = Vec::new();
            if row.package_path != pkg {
                diff.push(format!("package_path {}", row.package_path.display()));
            }
            if row.app_id != manifest.app_id {
                diff.push(format!("app_id {}", row.app_id));
            }
            if req
                .state_path
                .as_ref()
                .is_some_and(|p| !p.as_os_str().is_empty())
                && row.state_path != state_path
            {
                diff.push(format!("state_path {}", row.state_path.display()));
            }
            if req.runtime.is_some_and(|r| r != row.runtime) {
                diff.push(format!("runtime {}", row.runtime.as_str()));
            }
            if !diff.is_empty() {
                return Err(ProjectError::Conflict(format!(
                    "project {:?} is already registered with {}; delete it or use another id",
                    req.project_id,
                    diff.join(", ")
                )));
            }
            let mut row = row;
            row.manifest = manifest.to_json();
            persist::put(&self.store, &row)?;
            return Ok(Ensured {
                project_id: row.id,
                namespace: row.namespace,
                created: false,
                state_path: row.state_path,
                runtime: row.runtime,
            });
        }
        berth_os::fsutil::ensure_private_dir(&state_path).map_err(|e| {
            ProjectError::PathNotFound(format!(
                "cannot create state_path {}: {e}",
                state_path.display()
            ))
        })?;
        let row = ProjectRow {
            id: req.project_id.clone(),
            app_id: manifest.app_id.clone(),
            package_path: pkg,
            state_path: state_path.clone(),
            namespace: namespace.clone(),
            runtime,
            manifest: manifest.to_json(),
            status: ProjectState::Stopped,
            detail: String::new(),
            autosave: false,
            created_at: berth_os::proc::now_epoch(),
            started_at: 0.0,
        };
        persist::put(&self.store, &row)?;
        Ok(Ensured {
            project_id: row.id,
            namespace,
            created: true,
            state_path,
            runtime,
        })
    }

    /// Validates, allocates ports and plans `row` (no runtime calls).
    async fn load(
        &self,
        row: &ProjectRow,
        mode: Load,
        secrets: &BTreeMap<String, String>,
    ) -> Result<Open, ProjectError> {
        let manifest = Manifest::parse(row.manifest.as_bytes())?;
        // Variables come from the secrets at start; before, a required
        // one left unset is only a warning.
        let given = (mode == Load::Start).then_some(secrets);
        let checked = super::validate::check(
            &manifest,
            &row.package_path,
            row.runtime.validation(),
            given,
        )?;
        let (path, report) = (checked.path, checked.report);
        let project = match checked.project {
            Some(p) if report.valid => p,
            _ => return Err(rejection(&path, row.runtime, &report)),
        };
        let notes = report
            .warnings
            .iter()
            .chain(&report.transformed_fields)
            .map(|n| {
                if n.path.is_empty() {
                    n.reason.clone()
                } else {
                    format!("{}: {}", n.path, n.reason)
                }
            })
            .collect();
        let rt = self.runtime(row.runtime)?;
        // A duplicate's moved ports are allocated like unrequested ones
        // (kept across restarts), not taken from the file.
        let moved = persist::moved_ports(&self.store, &row.id)?;
        let wanted = unrequest(plan::wanted_ports(&project.file)?, &moved);
        let previous = persist::ports(&self.store, &row.id)?;
        // A read (stop, down, rm, forget, status) never needs a port, so
        // another project holding one this file asks for is no error.
        let others = match mode {
            Load::Read => Vec::new(),
            _ => persist::ports_of_others(&self.store, &row.id)?,
        };
        let ports = super::ports::allocate(
            &wanted,
            &previous,
            &others,
            mode == Load::Start,
            row.runtime == RuntimeKind::Native,
        )?;
        if ports != previous && mode != Load::Read {
            persist::set_ports(&self.store, &row.id, &ports, &moved)?;
        }
        let plan = plan::build(&PlanInput {
            project_id: &row.id,
            file: &project.file,
            tree: &project.tree,
            project_dir: &row.package_path,
            state_path: &row.state_path,
            runtime: row.runtime,
            ports: &ports,
            secrets,
            vars: &project.vars,
        })?;
        let left_out = project
            .notes
            .iter()
            .filter(|n| {
                n.path == format!("{}.profiles", n.service)
                    && project.file.services.get(&n.service).is_none()
            })
            .map(|n| n.service.clone())
            .collect();
        Ok(Open {
            plan,
            rt,
            manifest,
            notes,
            health: Default::default(),
            transient: Default::default(),
            left_out,
        })
    }

    /// OpenProject: plans the project and makes its images available.
    /// An open project is ALREADY_OPEN.
    pub async fn open_project(
        &self,
        project_id: &str,
        progress: &ProgressFn,
    ) -> Result<Opened, ProjectError> {
        self.open_inner(project_id, false, progress).await
    }

    /// OpenProject with `reload` (what `berth up` asks for): an open
    /// project is planned again from its file and its images made
    /// available again (a changed image is pulled), instead of
    /// ALREADY_OPEN. Services keep running; StartProject with `reconcile`
    /// applies the new plan to them.
    pub async fn reopen_project(
        &self,
        project_id: &str,
        progress: &ProgressFn,
    ) -> Result<Opened, ProjectError> {
        self.open_inner(project_id, true, progress).await
    }

    async fn open_inner(
        &self,
        project_id: &str,
        reload: bool,
        progress: &ProgressFn,
    ) -> Result<Opened, ProjectError> {
        let row = self.row(project_id)?;
        let slot = self.slot(project_id);
        let _g = slot.op.lock().await;
        if !reload && slot.open().is_some() {
            return Err(ProjectError::AlreadyOpen(format!(
                "project {project_id:?} is already open; StartProject starts it, DeleteProjectRuntime closes it"
            )));
        }
        let open = self.load(&row, Load::Open, &BTreeMap::new()).await?;
        let mut warnings = open.notes.clone();
        let pulled = open
            .rt
            .prepare(&open.plan, progress)
            .await
            .map_err(|e| match e.kind {
                RuntimeErrorKind::ImagePull => ProjectError::ImagePullFailed(e.message),
                RuntimeErrorKind::Unavailable => ProjectError::Unavailable(e.message),
                _ => ProjectError::Internal(e.message),
            })?;
        if row.runtime == RuntimeKind::Native {
            warnings.push("runs on the native runtime: services are host processes".into());
        }
        let open = Arc::new(open);
        // A reload keeps the open plan (the one running services were
        // started from) until StartProject replaces it.
        if slot.open().is_none() {
            slot.set_open(Some(open.clone()));
        }
        Ok(Opened {
            project_id: project_id.to_owned(),
            services: self.service_states(&open, &row).await,
            images_pulled: pulled,
            warnings,
        })
    }

    /// StartProject.
    pub async fn start(
        &self,
        project_id: &str,
        secrets: BTreeMap<String, String>,
    ) -> Result<Started, ProjectError> {
        self.start_services(project_id, secrets, &[], false).await
    }

    /// StartProject with its extensions: `services` (empty: all) names the
    /// services to start, and `reconcile` makes a start of a running
    /// project apply its file as `docker compose up` does instead of
    /// ALREADY_RUNNING: what runs as planned is kept, what is stopped is
    /// started, what changed is re-created, and services no longer in the
    /// file are stopped. A start that fails rolls back only when the whole
    /// project was starting from stopped; otherwise what ran keeps running.
    pub async fn start_services(
        &self,
        project_id: &str,
        secrets: BTreeMap<String, String>,
        services: &[String],
        reconcile: bool,
    ) -> Result<Started, ProjectError> {
        let row = self.row(project_id)?;
        let slot = self.slot(project_id);
        let _g = slot.op.lock().await;
        let Some(previous) = slot.open() else {
            return Err(ProjectError::NotOpen(format!(
                "project {project_id:?} is not open: call OpenProject first"
            )));
        };
        let was_running = matches!(row.status, ProjectState::Running | ProjectState::Starting);
        if was_running && !reconcile && services.is_empty() {
            return Err(ProjectError::AlreadyRunning(format!(
                "project {project_id:?} is already running; StopProject first to restart it"
            )));
        }
        let open = previous.clone();
        let missing: Vec<String> = open
            .manifest
            .required_secrets()
            .filter(|s| secrets.get(*s).is_none_or(|v| v.is_empty()))
            .map(str::to_owned)
            .collect();
        if !missing.is_empty() {
            return Err(ProjectError::MissingSecret {
                message: format!(
                    "project {project_id:?} needs the secret{} {} (pass them in `secrets`)",
                    if missing.len() == 1 { "" } else { "s" },
                    missing.join(", ")
                ),
                names: missing,
            });
        }
        // Ports are checked against the machine now (not those of a
        // running project: it holds them itself); the plan gets the
        // secrets as environment.
        let mode = if was_running { Load::Open } else { Load::Start };
        let mut loaded = self.load(&row, mode, &secrets).await?;
        // A service an earlier start ran under a profile this start does
        // not activate keeps running and stays in the plan (so stop and
        // down still reach it), as `docker compose up` leaves it; only
        // services deleted from the files are stopped (below).
        let mut carried = Vec::new();
        if was_running && services.is_empty() {
            for s in &previous.plan.services {
                if loaded.plan.service(&s.name).is_none() && loaded.left_out.contains(&s.name) {
                    loaded.plan.services.push(s.clone());
                    carried.push(s.name.clone());
                }
            }
        }
        let open = Arc::new(loaded);
        check_services(project_id, &open.plan, services)?;
        let ports = persist::ports(&self.store, project_id)?;
        slot.set_open(Some(open.clone()));
        for s in &open.plan.services {
            for m in &s.mounts {
                // A missing bind source becomes a directory, as Compose
                // makes it; an existing file or directory is bound as is.
                if let super::runtime::MountSource::Bind(p) = &m.source {
                    if p.exists() {
                        continue;
                    }
                    std::fs::create_dir_all(p).map_err(|e| {
                        ProjectError::Internal(format!("cannot create {}: {e}", p.display()))
                    })?;
                }
            }
        }
        if !was_running {
            persist::set_status(&self.store, project_id, ProjectState::Starting, "", None)?;
        }
        if let Err(e) = open.rt.create_resources(&open.plan).await {
            persist::set_status(
                &self.store,
                project_id,
                ProjectState::Failed,
                &e.message,
                None,
            )?;
            return Err(ProjectError::Internal(e.message));
        }
        let health = open.health.clone();
        let note = move |svc: &str, h: &str| {
            health
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(svc.to_owned(), h.to_owned());
        };
        let mut target = sub_plan(&open.plan, services);
        target.services.retain(|s| !carried.contains(&s.name));
        let result = orchestrate::start_all(open.rt.as_ref(), &target, &note).await;
        let whole_start = !was_running && services.is_empty();
        if let Err(f) = result {
            let (lines, _) = open
                .rt
                .logs(
                    &open.plan,
                    std::slice::from_ref(&f.service),
                    FAILURE_LOG_LINES,
                    false,
                )
                .await
                .unwrap_or_default();
            let message = if whole_start {
                orchestrate::stop_all(open.rt.as_ref(), &open.plan, None, ROLLBACK_GRACE).await;
                format!(
                    "project {project_id:?} failed to start: service {} {}; the services already started were stopped again",
                    f.service, f.message
                )
            } else {
                format!(
                    "project {project_id:?}: service {} {}; the other services were left as they were",
                    f.service, f.message
                )
            };
            let state = if was_running {
                ProjectState::Running
            } else {
                ProjectState::Failed
            };
            persist::set_status(&self.store, project_id, state, &message, None)?;
            if was_running {
                slot.watch_health(open.clone());
            }
            if f.kind == Some(RuntimeErrorKind::PortTaken) {
                if let Some(p) = open.plan.service(&f.service).and_then(|s| s.ports.first()) {
                    return Err(ProjectError::PortConflict {
                        service: f.service.clone(),
                        host_port: p.host_port,
                        message,
                    });
                }
            }
            return Err(ProjectError::StartFailed {
                service: f.service,
                message,
                last_lines: lines
                    .into_iter()
                    .map(|e| format!("{} {}", e.stream.as_str(), e.line))
                    .collect(),
            });
        }
        if services.is_empty() {
            // Services the file no longer has are stopped.
            let gone: Vec<String> = previous
                .plan
                .services
                .iter()
                .filter(|s| open.plan.service(&s.name).is_none())
                .map(|s| s.name.clone())
                .collect();
            if !gone.is_empty() {
                let old = sub_plan(&previous.plan, &gone);
                for (svc, e) in
                    orchestrate::stop_all(previous.rt.as_ref(), &old, None, ROLLBACK_GRACE).await
                {
                    tracing::warn!(project = %project_id, service = %svc, "cannot stop a removed service: {e}");
                }
            }
        }
        persist::set_status(
            &self.store,
            project_id,
            ProjectState::Running,
            "",
            (!was_running).then(berth_os::proc::now_epoch),
        )?;
        slot.watch_health(open.clone());
        let row = self.row(project_id)?;
        Ok(Started {
            project_id: project_id.to_owned(),
            services: self.service_states(&open, &row).await,
            ports,
        })
    }

    /// StopProject. `timeout` (the request's `timeout_seconds`) applies to
    /// every service when given; otherwise each service gets its own
    /// `stop_grace_period`, and [`DEFAULT_STOP_TIMEOUT`] (the seed's 30 s)
    /// when the file sets none.
    pub async fn stop(
        &self,
        project_id: &str,
        timeout: Option<Duration>,
    ) -> Result<Stopped, ProjectError> {
        self.stop_services(project_id, timeout, &[]).await
    }

    /// StopProject with its `services` extension (empty: all). Stopping
    /// some services leaves the project running while any service runs.
    pub async fn stop_services(
        &self,
        project_id: &str,
        timeout: Option<Duration>,
        services: &[String],
    ) -> Result<Stopped, ProjectError> {
        let row = self.row(project_id)?;
        let slot = self.slot(project_id);
        let _g = slot.op.lock().await;
        if row.status == ProjectState::Stopped {
            return Err(ProjectError::NotRunning(format!(
                "project {project_id:?} is not running"
            )));
        }
        let open = match slot.open() {
            Some(o) => o,
            None => {
                let o = Arc::new(self.load(&row, Load::Read, &BTreeMap::new()).await?);
                slot.set_open(Some(o.clone()));
                o
            }
        };
        check_services(project_id, &open.plan, services)?;
        let target = sub_plan(&open.plan, services);
        let whole = services.is_empty();
        if whole {
            slot.unwatch_health();
            persist::set_status(&self.store, project_id, ProjectState::Stopping, "", None)?;
        }
        // A service stopped on its own stays `stopped` (not `failed` for
        // its signal's exit code) until the next start replaces the plan.
        let set_transient = |s: Option<ServiceState>| {
            let mut t = open.transient.lock().unwrap_or_else(|p| p.into_inner());
            for v in &target.services {
                match s {
                    Some(s) => t.insert(v.name.clone(), s),
                    None => t.remove(&v.name),
                };
            }
        };
        set_transient(Some(ServiceState::Stopping));
        let failures =
            orchestrate::stop_all(open.rt.as_ref(), &target, timeout, DEFAULT_STOP_TIMEOUT).await;
        set_transient((!whole).then_some(ServiceState::Stopped));
        {
            let mut health = open.health.lock().unwrap_or_else(|p| p.into_inner());
            for s in &target.services {
                health.remove(&s.name);
            }
        }
        if let Some((svc, e)) = failures.first() {
            let msg = format!("service {svc} could not be stopped: {e}");
            persist::set_status(&self.store, project_id, ProjectState::Failed, &msg, None)?;
            return Err(ProjectError::Internal(msg));
        }
        let mut any_running = false;
        if !whole {
            for s in &open.plan.services {
                if matches!(open.rt.inspect(&open.plan, &s.name).await, Ok(Some(o)) if o.running) {
                    any_running = true;
                }
            }
        }
        if !any_running {
            slot.unwatch_health();
            persist::set_status(&self.store, project_id, ProjectState::Stopped, "", None)?;
        }
        let row = self.row(project_id)?;
        Ok(Stopped {
            project_id: project_id.to_owned(),
            services: self.service_states(&open, &row).await,
        })
    }

    /// DeleteProjectRuntime: removes containers, networks, volumes as
    /// runtime objects and the project's native services; keeps state and
    /// the registration. Closes the project.
    pub async fn delete_runtime(
        &self,
        project_id: &str,
        force: bool,
    ) -> Result<Deleted, ProjectError> {
        let row = self.row(project_id)?;
        let slot = self.slot(project_id);
        let _g = slot.op.lock().await;
        let open = match slot.open() {
            Some(o) => o,
            None => Arc::new(self.load(&row, Load::Read, &BTreeMap::new()).await?),
        };
        let mut running = Vec::new();
        for s in &open.plan.services {
            if let Ok(Some(o)) = open.rt.inspect(&open.plan, &s.name).await {
                if o.running {
                    running.push(s.name.clone());
                }
            }
        }
        if !running.is_empty() && !force {
            return Err(ProjectError::StillRunning(format!(
                "project {project_id:?} still runs {}: stop it first, or pass force",
                running.join(", ")
            )));
        }
        if !running.is_empty() {
            orchestrate::stop_all(open.rt.as_ref(), &open.plan, None, ROLLBACK_GRACE).await;
        }
        let removed = open
            .rt
            .remove(&open.plan)
            .await
            .map_err(|e| ProjectError::Internal(e.message))?;
        slot.unwatch_health();
        slot.set_open(None);
        persist::set_status(&self.store, project_id, ProjectState::Stopped, "", None)?;
        Ok(Deleted {
            project_id: project_id.to_owned(),
            resources_removed: removed,
        })
    }

    /// DeleteProjectRuntime with its `unregister` extension (`berth project
    /// forget`): removes the runtime as [`delete_runtime`](Self::delete_runtime)
    /// does, then the registration and its ports. The state directory
    /// stays on disk (it may hold the user's data); its path is returned
    /// as the last line of `resources_removed`'s note.
    pub async fn forget(&self, project_id: &str, force: bool) -> Result<Deleted, ProjectError> {
        let deleted = self.delete_runtime(project_id, force).await?;
        let slot = self.slot(project_id);
        let _g = slot.op.lock().await;
        persist::delete(&self.store, project_id)?;
        super::autosave::delete(&self.store, project_id)?;
        slot.unwatch_health();
        slot.set_open(None);
        self.slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(project_id);
        Ok(deleted)
    }

    /// A stopping daemon stops the services of every running project, as
    /// it stops its own services: one rule for both (README, "Services").
    /// Each service gets `grace` (at most 30 s) between its stop signal
    /// and SIGKILL. The projects are marked stopped, so
    /// the next daemon does not take them back; `berth up` starts them. A
    /// daemon that crashes never gets here: its projects keep running and
    /// the next daemon re-adopts them ([`recover`](Self::recover)).
    pub async fn shutdown(&self, grace: Duration) {
        let rows = match persist::all(&self.store) {
            Ok(rows) => rows,
            Err(e) => return tracing::warn!("cannot list projects to stop them: {e}"),
        };
        for row in rows {
            if row.status == ProjectState::Stopped {
                continue;
            }
            let cap = Some(grace.min(DEFAULT_STOP_TIMEOUT));
            match self.stop(&row.id, cap).await {
                Ok(_) | Err(ProjectError::NotRunning(_)) => {}
                Err(e) => tracing::warn!(project = %row.id, "cannot stop the project: {e}"),
            }
        }
    }

    /// ListProjects; `filter` is a [`ProjectState`] spelling.
    pub async fn list(&self, filter: Option<&str>) -> Result<Vec<ProjectSummary>, ProjectError> {
        let filter = match filter.filter(|f| !f.is_empty()) {
            None => None,
            Some(f) => Some(ProjectState::parse(f).ok_or_else(|| {
                ProjectError::InvalidArgument(format!(
                    "filter_status {f:?} is not one of running, starting, stopping, stopped, failed"
                ))
            })?),
        };
        let mut out = Vec::new();
        for row in persist::all(&self.store)? {
            if filter.is_some_and(|f| f != row.status) {
                continue;
            }
            let manifest = Manifest::parse(row.manifest.as_bytes()).ok();
            let service_count = match self.slot(&row.id).open() {
                Some(o) => o.plan.services.len(),
                None => manifest
                    .as_ref()
                    .and_then(|m| {
                        super::validate::check(m, &row.package_path, row.runtime.validation(), None)
                            .ok()
                    })
                    .and_then(|c| c.project)
                    .map_or(0, |p| p.file.services.0.len()),
            };
            out.push(ProjectSummary {
                port_count: persist::ports(&self.store, &row.id)?.len() as u32,
                project_id: row.id,
                app_id: row.app_id,
                name: manifest.map(|m| m.name).unwrap_or_default(),
                status: row.status,
                service_count: service_count as u32,
            });
        }
        Ok(out)
    }

    async fn service_states(&self, open: &Open, row: &ProjectRow) -> Vec<ServiceStatus> {
        let mut out = Vec::new();
        for svc in &open.plan.services {
            let obs = open.rt.inspect(&open.plan, &svc.name).await;
            let health = open
                .health
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&svc.name)
                .cloned()
                .unwrap_or_default();
            let transient = open
                .transient
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&svc.name)
                .copied();
            let (state, detail, container_id, started_at, restart_count) = match obs {
                Err(e) => (ServiceState::Failed, e.message, String::new(), None, 0),
                Ok(None) => (
                    ServiceState::Stopped,
                    "not created".into(),
                    String::new(),
                    None,
                    0,
                ),
                Ok(Some(o)) => {
                    let state = if let Some(t) = transient {
                        t
                    } else if o.running {
                        if health == "starting" {
                            ServiceState::Starting
                        } else {
                            ServiceState::Running
                        }
                    } else if o.exit_code.is_some_and(|c| c != 0)
                        && row.status != ProjectState::Stopped
                    {
                        ServiceState::Failed
                    } else {
                        ServiceState::Stopped
                    };
                    let detail = match (o.running, o.exit_code) {
                        (false, Some(c)) => format!("exited with code {c}"),
                        _ => String::new(),
                    };
                    (state, detail, o.container_id, o.started_at, o.restart_count)
                }
            };
            out.push(ServiceStatus {
                name: svc.name.clone(),
                state,
                container_id,
                started_at,
                restart_count,
                detail,
                health,
            });
        }
        out
    }

    /// GetProjectStatus.
    pub async fn status(&self, project_id: &str) -> Result<ProjectStatus, ProjectError> {
        let row = self.row(project_id)?;
        let manifest = Manifest::parse(row.manifest.as_bytes())?;
        let slot = self.slot(project_id);
        let open = slot.open();
        let services = match &open {
            Some(o) => self.service_states(o, &row).await,
            None => match self.load(&row, Load::Read, &BTreeMap::new()).await {
                Ok(o) => self.service_states(&o, &row).await,
                Err(_) => Vec::new(),
            },
        };
        let state = row.state_path.clone();
        let size = tokio::task::spawn_blocking(move || dir_size(&state))
            .await
            .unwrap_or(0);
        Ok(ProjectStatus {
            project_id: row.id.clone(),
            app_id: row.app_id.clone(),
            name: manifest.name,
            version: manifest.version,
            status: row.status,
            services,
            ports: persist::ports(&self.store, project_id)?,
            state_size_bytes: size,
            snapshot_count: self.snapshot_count(project_id).await,
            autosave_enabled: super::autosave::get(&self.store, project_id)?
                .is_some_and(|a| a.enabled),
            namespace: row.namespace,
            runtime: row.runtime,
            open: open.is_some(),
            state_path: row.state_path,
            package_path: row.package_path,
        })
    }

    /// GetProjectLogs; `tail` `None` means [`DEFAULT_TAIL_LINES`].
    pub async fn logs(
        &self,
        project_id: &str,
        service: Option<&str>,
        tail: Option<usize>,
        follow: bool,
    ) -> Result<LogFeed, ProjectError> {
        let row = self.row(project_id)?;
        let open = match self.slot(project_id).open() {
            Some(o) => o,
            None => Arc::new(self.load(&row, Load::Read, &BTreeMap::new()).await?),
        };
        let names: Vec<String> = match service.filter(|s| !s.is_empty()) {
            Some(s) => {
                if open.plan.service(s).is_none() {
                    return Err(ProjectError::NotFound(format!(
                        "project {project_id:?} has no service {s:?}"
                    )));
                }
                vec![s.to_owned()]
            }
            None => open.plan.services.iter().map(|s| s.name.clone()).collect(),
        };
        let tail = tail.unwrap_or(DEFAULT_TAIL_LINES);
        let (mut lines, follow) = open
            .rt
            .logs(&open.plan, &names, tail, follow)
            .await
            .map_err(|e| ProjectError::Internal(e.message))?;
        // Each service's lines are in order; a stable sort interleaves them.
        lines.sort_by(|a, b| a.timestamp.total_cmp(&b.timestamp));
        let skip = lines.len().saturating_sub(tail);
        Ok(LogFeed {
            tail: lines.split_off(skip),
            follow,
        })
    }

    /// ValidateCompose, for `runtime` (`None`: the default runtime).
    pub fn validate(&self, content: &[u8], runtime: Option<RuntimeKind>) -> ValidationReport {
        super::validate(
            content,
            runtime.unwrap_or(self.cfg.default_runtime).validation(),
        )
    }

    /// ResolvePorts. With `refresh`, each host port is checked to be
    /// served, and a service whose port is not is taken back by its
    /// runtime (native forwarders reopened); a requested port that
    /// something else took is a PORT_CONFLICT.
    pub async fn resolve_ports(
        &self,
        project_id: &str,
        refresh: bool,
    ) -> Result<Vec<PortMapping>, ProjectError> {
        let row = self.row(project_id)?;
        if !matches!(row.status, ProjectState::Running | ProjectState::Starting) {
            return Err(ProjectError::NotRunning(format!(
                "project {project_id:?} is not running, so its ports are not served"
            )));
        }
        let ports = persist::ports(&self.store, project_id)?;
        if refresh {
            let slot = self.slot(project_id);
            let _g = slot.op.lock().await;
            let Some(open) = slot.open() else {
                return Ok(ports);
            };
            for p in &ports {
                let served = super::ports::is_served(p).await;
                if served {
                    continue;
                }
                let Some(svc) = open.plan.service(&p.service) else {
                    continue;
                };
                let _ = open.rt.reattach(&open.plan, svc).await;
                if !super::ports::is_served(p).await
                    && !super::ports::is_free(&p.host_ip, p.host_port, p.protocol)
                {
                    return Err(ProjectError::PortConflict {
                        service: p.service.clone(),
                        host_port: p.host_port,
                        message: format!(
                            "host port {}/{} of service {} is held by another program; stop it, or stop and start the project to move the port",
                            p.host_port,
                            p.protocol.as_str(),
                            p.service
                        ),
                    });
                }
            }
        }
        Ok(ports)
    }
}
