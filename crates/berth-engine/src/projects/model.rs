//! The project engine's plain types: what callers send and get back, and
//! the errors of seed 000 by name. Surfaces translate these to the wire.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// Where one service of a project is (seed 000 `ServiceStatus.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceState {
    /// Not running (never started, stopped, or exited as expected).
    Stopped,
    /// Started, not ready yet (waiting for its health check).
    Starting,
    /// Running (and healthy when it has a health check).
    Running,
    /// Being stopped.
    Stopping,
    /// Exited with a failure, failed its health check, or could not start.
    Failed,
}

impl ServiceState {
    /// The seed's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceState::Stopped => "stopped",
            ServiceState::Starting => "starting",
            ServiceState::Running => "running",
            ServiceState::Stopping => "stopping",
            ServiceState::Failed => "failed",
        }
    }
}

/// One service as reported to clients.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceStatus {
    /// The Compose service name.
    pub name: String,
    /// Where it is.
    pub state: ServiceState,
    /// The container id (Docker) or `native:<service id>` (native).
    pub container_id: String,
    /// When its current run started (seconds since the epoch).
    pub started_at: Option<f64>,
    /// Restarts the runtime made since the project started.
    pub restart_count: u32,
    /// Why it is in that state, in a sentence ("" when obvious).
    pub detail: String,
    /// `healthy`, `unhealthy`, `starting`, or "" without a health check.
    pub health: String,
}

/// `tcp` or `udp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl Protocol {
    /// `tcp` / `udp`.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }

    /// Parses [`as_str`](Self::as_str).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "tcp" => Some(Protocol::Tcp),
            "udp" => Some(Protocol::Udp),
            _ => None,
        }
    }
}

/// A host port that reaches a service's port.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortMapping {
    /// The Compose service.
    pub service: String,
    /// The port the service listens on (in its container, or on the host
    /// for native services).
    pub container_port: u16,
    /// The host port clients use.
    pub host_port: u16,
    /// tcp or udp.
    pub protocol: Protocol,
    /// The host IP the port is bound to ("" means all addresses).
    pub host_ip: String,
    /// The Compose file asked for this host port (so it is never moved:
    /// PORT_CONFLICT when it is taken).
    pub requested: bool,
}

/// Where a project is as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProjectState {
    /// Registered, not running.
    Stopped,
    /// StartProject is under way.
    Starting,
    /// Started; every service is up or completed.
    Running,
    /// StopProject is under way.
    Stopping,
    /// The last start failed, or a service failed since.
    Failed,
}

impl ProjectState {
    /// The spelling used by ListProjects and its filter.
    pub fn as_str(self) -> &'static str {
        match self {
            ProjectState::Stopped => "stopped",
            ProjectState::Starting => "starting",
            ProjectState::Running => "running",
            ProjectState::Stopping => "stopping",
            ProjectState::Failed => "failed",
        }
    }

    /// Parses [`as_str`](Self::as_str).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "stopped" => ProjectState::Stopped,
            "starting" => ProjectState::Starting,
            "running" => ProjectState::Running,
            "stopping" => ProjectState::Stopping,
            "failed" => ProjectState::Failed,
            _ => return None,
        })
    }
}

/// Which runtime runs a project's services.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeKind {
    /// Containers on a Docker Engine.
    Docker,
    /// Supervised host processes of berth's service engine.
    Native,
}

impl RuntimeKind {
    /// `docker` / `native`.
    pub fn as_str(self) -> &'static str {
        match self {
            RuntimeKind::Docker => "docker",
            RuntimeKind::Native => "native",
        }
    }

    /// Parses [`as_str`](Self::as_str).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "docker" => Some(RuntimeKind::Docker),
            "native" => Some(RuntimeKind::Native),
            _ => None,
        }
    }

    /// The validation flavour of this runtime.
    pub fn validation(self) -> super::Runtime {
        match self {
            RuntimeKind::Docker => super::Runtime::Docker,
            RuntimeKind::Native => super::Runtime::Native,
        }
    }
}

/// EnsureProject's request.
#[derive(Debug, Clone, Default)]
pub struct EnsureRequest {
    /// The project's id: `[a-z0-9][a-z0-9_-]*`, at most 63 characters.
    pub project_id: String,
    /// Must match the manifest's `app_id` when both are given.
    pub app_id: String,
    /// The project directory (holds the manifest and the Compose file).
    pub package_path: PathBuf,
    /// Where the project's state lives; empty for the default.
    pub state_path: Option<PathBuf>,
    /// The manifest document (JSON); empty to read `manifest.json` from
    /// `package_path`.
    pub manifest: Vec<u8>,
    /// The runtime to use; `None` for the daemon's default.
    pub runtime: Option<RuntimeKind>,
}

/// EnsureProject's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Ensured {
    /// The id.
    pub project_id: String,
    /// The namespace of its containers, networks and volumes.
    pub namespace: String,
    /// False when the project was already registered the same way.
    pub created: bool,
    /// Where its state lives.
    pub state_path: PathBuf,
    /// The runtime that runs it.
    pub runtime: RuntimeKind,
}

/// OpenProject's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Opened {
    /// The id.
    pub project_id: String,
    /// Its services, in start order.
    pub services: Vec<ServiceStatus>,
    /// Images pulled (0 when all were present, and on native).
    pub images_pulled: u32,
    /// What the user should know: validation warnings and transformations.
    pub warnings: Vec<String>,
}

/// Progress of OpenProject, for the CLI's bars.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    /// An image is being made available.
    Image {
        /// The image reference.
        image: String,
        /// `present`, `pulling`, `extracting`, `pulled`, ... as the engine says.
        status: String,
        /// Bytes done so far (0 when unknown).
        current: u64,
        /// Bytes in all (0 when unknown).
        total: u64,
    },
    /// A note for the user.
    Note(String),
}

/// StartProject's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Started {
    /// The id.
    pub project_id: String,
    /// Its services after the start.
    pub services: Vec<ServiceStatus>,
    /// Its host ports.
    pub ports: Vec<PortMapping>,
}

/// StopProject's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Stopped {
    /// The id.
    pub project_id: String,
    /// Its services after the stop.
    pub services: Vec<ServiceStatus>,
}

/// DeleteProjectRuntime's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Deleted {
    /// The id.
    pub project_id: String,
    /// What was removed, one line each (`container web (3f2a...)`, ...).
    pub resources_removed: Vec<String>,
}

/// One line of ListProjects.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectSummary {
    /// The id.
    pub project_id: String,
    /// From the manifest.
    pub app_id: String,
    /// From the manifest.
    pub name: String,
    /// Where it is.
    pub status: ProjectState,
    /// Services in its Compose file.
    pub service_count: u32,
    /// Host ports allocated to it.
    pub port_count: u32,
}

/// GetProjectStatus's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectStatus {
    /// The id.
    pub project_id: String,
    /// From the manifest.
    pub app_id: String,
    /// From the manifest.
    pub name: String,
    /// From the manifest.
    pub version: String,
    /// Where it is.
    pub status: ProjectState,
    /// Its services.
    pub services: Vec<ServiceStatus>,
    /// Its host ports.
    pub ports: Vec<PortMapping>,
    /// Bytes under `state_path`, measured.
    pub state_size_bytes: u64,
    /// Snapshots taken of it.
    pub snapshot_count: u32,
    /// Whether autosave snapshots are on.
    pub autosave_enabled: bool,
    /// Its namespace.
    pub namespace: String,
    /// Its runtime.
    pub runtime: RuntimeKind,
    /// Whether it is open (loaded, planned).
    pub open: bool,
    /// Where its state lives.
    pub state_path: PathBuf,
    /// Its directory.
    pub package_path: PathBuf,
}

/// stdout or stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogStream {
    /// stdout.
    Stdout,
    /// stderr.
    Stderr,
}

impl LogStream {
    /// `stdout` / `stderr`.
    pub fn as_str(self) -> &'static str {
        match self {
            LogStream::Stdout => "stdout",
            LogStream::Stderr => "stderr",
        }
    }
}

/// One line a service wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct LogEntry {
    /// When it was captured (seconds since the epoch).
    pub timestamp: f64,
    /// The Compose service.
    pub service: String,
    /// Which stream.
    pub stream: LogStream,
    /// The line, without its newline.
    pub line: String,
}

/// GetProjectLogs's answer: the tail, then (with `follow`) new lines as
/// they come until the receiver is dropped.
#[derive(Debug)]
pub struct LogFeed {
    /// The last lines, oldest first, merged across services by time.
    pub tail: Vec<LogEntry>,
    /// New lines, when following.
    pub follow: Option<tokio::sync::mpsc::Receiver<LogEntry>>,
}

/// Why a project request was refused: the error codes of seed 000, plus
/// `InvalidArgument` for requests that are malformed and `Internal` for
/// failures of berth itself.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProjectError {
    /// The manifest is not valid; says which field and why.
    #[error("{0}")]
    InvalidManifest(String),
    /// A path the request names does not exist.
    #[error("{0}")]
    PathNotFound(String),
    /// The id is registered with another directory, app or state path.
    #[error("{0}")]
    Conflict(String),
    /// No project has that id (or no service that name).
    #[error("{0}")]
    NotFound(String),
    /// An image could not be pulled.
    #[error("{0}")]
    ImagePullFailed(String),
    /// OpenProject on an open project.
    #[error("{0}")]
    AlreadyOpen(String),
    /// StartProject on a project that was not opened.
    #[error("{0}")]
    NotOpen(String),
    /// StartProject on a running project.
    #[error("{0}")]
    AlreadyRunning(String),
    /// A service failed to start or to become ready; what was started was
    /// stopped again.
    #[error("{message}")]
    StartFailed {
        /// The service that failed.
        service: String,
        /// What happened.
        message: String,
        /// Its last log lines.
        last_lines: Vec<String>,
    },
    /// Secrets the manifest requires were not given.
    #[error("{message}")]
    MissingSecret {
        /// Their names.
        names: Vec<String>,
        /// What to do.
        message: String,
    },
    /// The project is not running.
    #[error("{0}")]
    NotRunning(String),
    /// The project is running and `force` was not given.
    #[error("{0}")]
    StillRunning(String),
    /// A requested host port is taken.
    #[error("{message}")]
    PortConflict {
        /// The service asking for it.
        service: String,
        /// The port.
        host_port: u16,
        /// What holds it, when known, and what to do.
        message: String,
    },
    /// The request is malformed; names the field.
    #[error("{0}")]
    InvalidArgument(String),
    /// The runtime or the store failed.
    #[error("{0}")]
    Internal(String),
    /// The runtime the project needs does not answer.
    #[error("{0}")]
    Unavailable(String),
    /// SaveSnapshot while a save (or restore) of the project runs.
    #[error("{0}")]
    SaveInProgress(String),
    /// SaveSnapshot could not capture the state; says why.
    #[error("{0}")]
    SaveFailed(String),
    /// RestoreSnapshot of a snapshot of another app (or app version).
    #[error("{0}")]
    SnapshotMismatch(String),
    /// RestoreSnapshot could not replace the state (it is unchanged).
    #[error("{0}")]
    RestoreFailed(String),
    /// DuplicateProject could not make the copy (nothing is left of it).
    #[error("{0}")]
    DuplicateFailed(String),
    /// ImportPackage of a malformed archive; names the entry and rule.
    #[error("{0}")]
    InvalidPackage(String),
    /// ImportPackage: the signature does not verify, or is missing while
    /// verification was asked for.
    #[error("{0}")]
    SignatureInvalid(String),
    /// ImportPackage: a file differs from, is missing from, or is added
    /// to the signed list.
    #[error("{0}")]
    Tampered(String),
}

impl ProjectError {
    /// The machine-readable name clients match on (seed 000's codes).
    pub fn code(&self) -> &'static str {
        match self {
            ProjectError::InvalidManifest(_) => "INVALID_MANIFEST",
            ProjectError::PathNotFound(_) => "PATH_NOT_FOUND",
            ProjectError::Conflict(_) => "CONFLICT",
            ProjectError::NotFound(_) => "NOT_FOUND",
            ProjectError::ImagePullFailed(_) => "IMAGE_PULL_FAILED",
            ProjectError::AlreadyOpen(_) => "ALREADY_OPEN",
            ProjectError::NotOpen(_) => "NOT_OPEN",
            ProjectError::AlreadyRunning(_) => "ALREADY_RUNNING",
            ProjectError::StartFailed { .. } => "START_FAILED",
            ProjectError::MissingSecret { .. } => "MISSING_SECRET",
            ProjectError::NotRunning(_) => "NOT_RUNNING",
            ProjectError::StillRunning(_) => "STILL_RUNNING",
            ProjectError::PortConflict { .. } => "PORT_CONFLICT",
            ProjectError::InvalidArgument(_) => "INVALID_ARGUMENT",
            ProjectError::Internal(_) => "INTERNAL",
            ProjectError::Unavailable(_) => "UNAVAILABLE",
            ProjectError::SaveInProgress(_) => "SAVE_IN_PROGRESS",
            ProjectError::SaveFailed(_) => "SAVE_FAILED",
            ProjectError::SnapshotMismatch(_) => "SNAPSHOT_MISMATCH",
            ProjectError::RestoreFailed(_) => "RESTORE_FAILED",
            ProjectError::DuplicateFailed(_) => "DUPLICATE_FAILED",
            ProjectError::InvalidPackage(_) => "INVALID_PACKAGE",
            ProjectError::SignatureInvalid(_) => "SIGNATURE_INVALID",
            ProjectError::Tampered(_) => "TAMPERED",
        }
    }

    /// Extra facts for machines: the failing service, missing secret names,
    /// the conflicting port.
    pub fn details(&self) -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        match self {
            ProjectError::StartFailed {
                service,
                last_lines,
                ..
            } => {
                m.insert("service".into(), service.clone());
                m.insert("last_log_lines".into(), last_lines.join("\n"));
            }
            ProjectError::MissingSecret { names, .. } => {
                m.insert("secrets".into(), names.join(","));
            }
            ProjectError::PortConflict {
                service, host_port, ..
            } => {
                m.insert("service".into(), service.clone());
                m.insert("host_port".into(), host_port.to_string());
            }
            _ => {}
        }
        m
    }
}

/// SaveSnapshot's `reason`s (seed 000 method 9).
pub const SNAPSHOT_REASONS: [&str; 4] = ["manual", "autosave", "before-upgrade", "before-restore"];

/// The longest snapshot label key, in bytes (a name, not data).
pub const MAX_LABEL_KEY: usize = 128;
/// The longest snapshot label value, in bytes: labels are notes kept in
/// every listing, not a place for data.
pub const MAX_LABEL_VALUE: usize = 1024;
/// The most labels one snapshot carries.
pub const MAX_LABELS: usize = 64;

/// Checks SaveSnapshot's `labels` (issue 11): each key non-empty and at
/// most [`MAX_LABEL_KEY`] bytes, each value at most [`MAX_LABEL_VALUE`]
/// bytes, at most [`MAX_LABELS`] of them. Errors: a sentence naming the
/// label (its key, or its first 32 characters) and the limit.
pub fn check_labels<'a>(
    labels: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<(), String> {
    let short = |s: &str| -> String {
        let mut t: String = s.chars().take(32).collect();
        if t.len() < s.len() {
            t.push_str("...");
        }
        t
    };
    for (n, (k, v)) in labels.into_iter().enumerate() {
        if n == MAX_LABELS {
            return Err(format!("more than {MAX_LABELS} labels"));
        }
        if k.is_empty() {
            return Err(format!("label ={} has an empty key", short(v)));
        }
        if k.len() > MAX_LABEL_KEY {
            return Err(format!(
                "label key {:?} is {} bytes; the longest is {MAX_LABEL_KEY}",
                short(k),
                k.len()
            ));
        }
        if v.len() > MAX_LABEL_VALUE {
            return Err(format!(
                "label {k:?} has a value of {} bytes; the longest is {MAX_LABEL_VALUE}",
                v.len()
            ));
        }
    }
    Ok(())
}

/// SaveSnapshot's request.
#[derive(Debug, Clone, Default)]
pub struct SaveRequest {
    /// The project.
    pub project_id: String,
    /// One of [`SNAPSHOT_REASONS`]; "" means "manual".
    pub reason: String,
    /// Free labels.
    pub labels: BTreeMap<String, String>,
}

/// RestoreSnapshot's request.
#[derive(Debug, Clone)]
pub struct RestoreRequest {
    /// The project.
    pub project_id: String,
    /// The snapshot to restore.
    pub snapshot_id: String,
    /// Take a `before-restore` snapshot first (the seed's default: true).
    pub create_safety_snapshot: bool,
    /// Accept a snapshot of another app_version (berth extension).
    pub allow_version_mismatch: bool,
}

/// RestoreSnapshot's answer.
#[derive(Debug, Clone)]
pub struct Restored {
    /// The project.
    pub project_id: String,
    /// The snapshot now in place.
    pub restored_snapshot_id: String,
    /// The `before-restore` snapshot ("" when none was asked for).
    pub safety_snapshot_id: String,
    /// Its services after the restore (restarted if they ran).
    pub services: Vec<ServiceStatus>,
}

/// DuplicateProject's answer.
#[derive(Debug, Clone)]
pub struct Duplicated {
    /// The new project's id.
    pub new_project_id: String,
    /// Its namespace.
    pub namespace: String,
    /// Its own state path (a copy of the source's state).
    pub state_path: PathBuf,
    /// Its host ports: each one the Compose file fixes is moved to a free
    /// port (`requested` false), so the copy runs beside its source.
    pub ports: Vec<PortMapping>,
}
