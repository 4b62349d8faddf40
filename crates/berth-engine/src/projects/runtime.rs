//! The runtime boundary: a [`Plan`] says what to run, a [`ProjectRuntime`]
//! runs one service of it at a time. Ordering, readiness, secrets, ports
//! and rollback belong to the orchestrator, so both runtimes behave alike.

use super::model::{LogEntry, PortMapping, Progress, RuntimeKind};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// What a project runs: built from its Compose file and manifest by
/// OpenProject, with every path under `state_path` and every name
/// namespaced.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The project id.
    pub project_id: String,
    /// Prefix of every runtime resource (`berth-<id>`).
    pub namespace: String,
    /// The project directory (relative paths in the Compose file resolve
    /// here).
    pub project_dir: PathBuf,
    /// Where state lives (bind sources and volumes are under it).
    pub state_path: PathBuf,
    /// Services in start order (dependencies first).
    pub services: Vec<PlannedService>,
    /// Start layers: each layer only depends on earlier ones.
    pub layers: Vec<Vec<String>>,
    /// Networks to create, already namespaced (at least the default one).
    pub networks: Vec<String>,
    /// Volumes to create.
    pub volumes: Vec<PlannedVolume>,
}

impl Plan {
    /// The planned service named `name`.
    pub fn service(&self, name: &str) -> Option<&PlannedService> {
        self.services.iter().find(|s| s.name == name)
    }
}

/// A named volume: a directory under `state_path` so snapshots see it.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedVolume {
    /// The name in the Compose file.
    pub compose_name: String,
    /// The namespaced runtime name (`<namespace>_<name>`).
    pub name: String,
    /// Its directory under `state_path/volumes/`.
    pub dir: PathBuf,
}

/// One service, ready to run.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedService {
    /// The Compose name.
    pub name: String,
    /// The image (Docker); `None` on native.
    pub image: Option<String>,
    /// `entrypoint`, exec form (a shell string becomes `/bin/sh -c`).
    pub entrypoint: Option<Vec<String>>,
    /// `command`, exec form (a shell string becomes `/bin/sh -c`).
    pub command: Option<Vec<String>>,
    /// `working_dir` (native: resolved against the project directory).
    pub working_dir: Option<String>,
    /// Environment: the Compose file's, then the secrets given at start.
    pub env: BTreeMap<String, String>,
    /// Host ports reaching this service.
    pub ports: Vec<PortMapping>,
    /// Mounts.
    pub mounts: Vec<PlannedMount>,
    /// The health check berth probes.
    pub healthcheck: Option<HealthSpec>,
    /// Services this one waits for, with the condition.
    pub depends_on: Vec<(String, super::compose::Condition)>,
    /// What the runtime does when the service exits by itself.
    pub restart: RestartPolicy,
    /// Run under an init (Docker; native services are process groups).
    pub init: bool,
    /// Grace between the stop signal and SIGKILL.
    pub stop_grace: Duration,
    /// The stop signal (`SIGTERM` unless the file says otherwise).
    pub stop_signal: String,
    /// `user` (Docker only).
    pub user: Option<String>,
    /// Networks it joins, namespaced.
    pub networks: Vec<String>,
    /// `container_name` when the file sets one, else `<namespace>-<name>`.
    pub container_name: String,
}

/// A mount of a service.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedMount {
    /// A host directory (already moved under `state_path`) or a volume.
    pub source: MountSource,
    /// The path inside the container.
    pub target: String,
    /// Read-only.
    pub read_only: bool,
}

/// Where a mount comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum MountSource {
    /// A host path.
    Bind(PathBuf),
    /// A planned volume, by namespaced name.
    Volume(String),
}

/// A health check, with Compose's defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthSpec {
    /// What to run.
    pub test: Probe,
    /// Time between probes once the service was healthy (berth probes
    /// sooner while it starts).
    pub interval: Duration,
    /// A probe running longer fails.
    pub timeout: Duration,
    /// Failures in a row, after `start_period`, that make it unhealthy.
    pub retries: u32,
    /// Failures during this period do not count.
    pub start_period: Duration,
}

/// A health probe command.
#[derive(Debug, Clone, PartialEq)]
pub enum Probe {
    /// `CMD`: an argv.
    Exec(Vec<String>),
    /// `CMD-SHELL` or a string: run by `/bin/sh -c`.
    Shell(String),
}

impl Probe {
    /// The argv to run.
    pub fn argv(&self) -> Vec<String> {
        match self {
            Probe::Exec(v) => v.clone(),
            Probe::Shell(s) => vec!["/bin/sh".into(), "-c".into(), s.clone()],
        }
    }
}

/// Compose `restart`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartPolicy {
    /// `no` (the default).
    No,
    /// `always`.
    Always,
    /// `on-failure[:max]` (0 = unlimited).
    OnFailure(u32),
    /// `unless-stopped`.
    UnlessStopped,
}

/// What the runtime sees of a service.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    /// Its process or container runs.
    pub running: bool,
    /// The exit code of its last run, when it ended.
    pub exit_code: Option<i32>,
    /// When its current (or last) run started, seconds since the epoch.
    pub started_at: Option<f64>,
    /// Restarts the runtime made.
    pub restart_count: u32,
    /// Container id, or `native:<id>`.
    pub container_id: String,
}

/// A runtime failure. `kind` lets the orchestrator pick the seed code.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct RuntimeError {
    /// What went wrong, broadly.
    pub kind: RuntimeErrorKind,
    /// What went wrong, for a person.
    pub message: String,
}

/// Broad failure kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeErrorKind {
    /// An image could not be pulled or found.
    ImagePull,
    /// A host port is taken.
    PortTaken,
    /// The engine does not answer.
    Unavailable,
    /// Anything else.
    Other,
}

impl RuntimeError {
    /// A failure of `kind`.
    pub fn new(kind: RuntimeErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// An [`RuntimeErrorKind::Other`] failure.
    pub fn other(message: impl Into<String>) -> Self {
        Self::new(RuntimeErrorKind::Other, message)
    }
}

/// Receives OpenProject's progress.
pub type ProgressFn = dyn Fn(Progress) + Send + Sync;

/// A place services run. Every method is idempotent where it can be
/// (creating what exists, stopping what is stopped, removing what is gone
/// all succeed), because the orchestrator retries after a daemon restart.
#[async_trait::async_trait]
pub trait ProjectRuntime: Send + Sync {
    /// Which runtime this is.
    fn kind(&self) -> RuntimeKind;

    /// Makes the plan's images available (pulling the missing ones),
    /// reporting progress. Returns how many were pulled.
    async fn prepare(&self, plan: &Plan, progress: &ProgressFn) -> Result<u32, RuntimeError>;

    /// Creates the project's networks and volumes.
    async fn create_resources(&self, plan: &Plan) -> Result<(), RuntimeError>;

    /// Starts `svc` (creating it, or replacing a stale one). Host ports are
    /// bound by the runtime as `svc.ports` says. Returns the container id.
    async fn start(&self, plan: &Plan, svc: &PlannedService) -> Result<String, RuntimeError>;

    /// What runs of `service` now; `None` when it does not exist.
    async fn inspect(&self, plan: &Plan, service: &str) -> Result<Option<Observed>, RuntimeError>;

    /// Runs one health probe inside the service; true when it passed.
    async fn probe(
        &self,
        plan: &Plan,
        svc: &PlannedService,
        probe: &Probe,
        timeout: Duration,
    ) -> Result<bool, RuntimeError>;

    /// Stops `svc`: its stop signal, then SIGKILL after `timeout`.
    async fn stop(
        &self,
        plan: &Plan,
        svc: &PlannedService,
        timeout: Duration,
    ) -> Result<(), RuntimeError>;

    /// The last `tail` lines of each of `services` (each oldest first) and,
    /// with `follow`, later lines until the receiver is dropped.
    async fn logs(
        &self,
        plan: &Plan,
        services: &[String],
        tail: usize,
        follow: bool,
    ) -> Result<(Vec<LogEntry>, Option<tokio::sync::mpsc::Receiver<LogEntry>>), RuntimeError>;

    /// Takes back a service a previous daemon left running, without
    /// changing it (native: reopens its host ports). True when it runs.
    async fn reattach(&self, plan: &Plan, svc: &PlannedService) -> Result<bool, RuntimeError> {
        Ok(self
            .inspect(plan, &svc.name)
            .await?
            .is_some_and(|o| o.running))
    }

    /// Removes every runtime resource of the project (containers,
    /// networks, volumes as runtime objects; never the state directory).
    /// Returns one line per resource removed.
    async fn remove(&self, plan: &Plan) -> Result<Vec<String>, RuntimeError>;
}
