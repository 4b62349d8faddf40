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

impl PlannedService {
    /// The grace this service gets between its stop signal and SIGKILL:
    /// `explicit` (StopProject's `timeout_seconds`) when given, else its
    /// own `stop_grace_period`, else `default`.
    pub fn grace(&self, explicit: Option<Duration>, default: Duration) -> Duration {
        explicit.or(self.stop_grace_period).unwrap_or(default)
    }

    /// The stop signal as a number the kernel takes: SIGTERM when the file
    /// sets none; `SIGINT`, `INT` (any case) and `2` are the same signal,
    /// as Compose reads them. Errors name the service and the value.
    pub fn signal(&self) -> Result<berth_os::signal::Signal, String> {
        match &self.stop_signal {
            None => Ok(berth_os::signal::Signal::SIGTERM),
            Some(s) => parse_signal(s).ok_or_else(|| {
                format!(
                    "service {}: stop_signal {s:?} is not a signal (give a name such as SIGINT or INT, or a number)",
                    self.name
                )
            }),
        }
    }
}

/// `SIGINT`, `INT`, `sigint` or `2` as a signal; `None` for anything else.
pub fn parse_signal(s: &str) -> Option<berth_os::signal::Signal> {
    use berth_os::signal::Signal;
    let s = s.trim();
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).ok();
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse().ok()
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
    /// `stop_signal` as the file gives it (`SIGINT`, `INT` or a number);
    /// `None` stops with SIGTERM. See [`PlannedService::signal`].
    pub stop_signal: Option<String>,
    /// `stop_grace_period`: the grace between the stop signal and SIGKILL.
    /// `None` leaves it to the caller's default (StopProject: 30 s, seed
    /// 000); an explicit StopProject `timeout_seconds` overrides it.
    pub stop_grace_period: Option<Duration>,
    /// `user` (Docker only).
    pub user: Option<String>,
    /// Networks it joins, namespaced.
    pub networks: Vec<String>,
    /// `container_name` when the file sets one, else `<namespace>-<name>`.
    pub container_name: String,
    /// Container settings beyond the above (Docker only; native services
    /// leave it default).
    pub container: ContainerSettings,
}

/// The Compose keys a container honours beyond command, environment, ports
/// and mounts, with Compose's units already parsed (bytes, nano-CPUs,
/// microseconds) so the runtime passes them on unchanged. Everything is
/// empty or `None` when the file does not set it, so the engine's defaults
/// apply.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContainerSettings {
    /// `labels` and `label_file` (berth's own labels win over them).
    pub labels: BTreeMap<String, String>,
    /// `hostname`.
    pub hostname: Option<String>,
    /// `domainname`.
    pub domainname: Option<String>,
    /// `dns`.
    pub dns: Vec<String>,
    /// `dns_search`.
    pub dns_search: Vec<String>,
    /// `dns_opt`.
    pub dns_opt: Vec<String>,
    /// `extra_hosts` as `host:ip`.
    pub extra_hosts: Vec<String>,
    /// Extra network aliases per namespaced network: `networks.<n>.aliases`
    /// and the aliases other services give this one through `links`.
    pub network_aliases: BTreeMap<String, Vec<String>>,
    /// `network_mode: none` or `service:X` (as `container:<X's name>`);
    /// `None` joins the planned networks.
    pub network_mode: Option<String>,
    /// `expose`, as `port/proto`.
    pub expose: Vec<String>,
    /// `tmpfs` and `type: tmpfs` volumes: path to mount options.
    pub tmpfs: BTreeMap<String, String>,
    /// Anonymous volumes, as namespaced volume names (their mounts are in
    /// `mounts`); created with the project's labels.
    pub anonymous_volumes: Vec<String>,
    /// `volumes_from`, as `<container name>[:ro|:rw]`.
    pub volumes_from: Vec<String>,
    /// `read_only`.
    pub read_only: bool,
    /// `shm_size` in bytes.
    pub shm_size: Option<i64>,
    /// `ulimits`: name, soft, hard.
    pub ulimits: Vec<(String, i64, i64)>,
    /// `sysctls`.
    pub sysctls: BTreeMap<String, String>,
    /// `storage_opt`.
    pub storage_opt: BTreeMap<String, String>,
    /// `mem_limit` / `deploy.resources.limits.memory`, bytes.
    pub memory: Option<i64>,
    /// `mem_reservation` / `deploy.resources.reservations.memory`, bytes.
    pub memory_reservation: Option<i64>,
    /// `memswap_limit`, bytes (-1 = unlimited).
    pub memory_swap: Option<i64>,
    /// `mem_swappiness`.
    pub memory_swappiness: Option<i64>,
    /// `cpus` / `deploy.resources.limits.cpus`, in billionths of a CPU.
    pub nano_cpus: Option<i64>,
    /// `cpu_shares`.
    pub cpu_shares: Option<i64>,
    /// `cpu_period`, microseconds.
    pub cpu_period: Option<i64>,
    /// `cpu_quota`, microseconds.
    pub cpu_quota: Option<i64>,
    /// `cpu_rt_runtime`, microseconds.
    pub cpu_rt_runtime: Option<i64>,
    /// `cpu_rt_period`, microseconds.
    pub cpu_rt_period: Option<i64>,
    /// `cpuset`.
    pub cpuset: Option<String>,
    /// `pids_limit` / `deploy.resources.limits.pids`.
    pub pids_limit: Option<i64>,
    /// `blkio_config.weight`.
    pub blkio_weight: Option<u16>,
    /// `oom_kill_disable`.
    pub oom_kill_disable: Option<bool>,
    /// `oom_score_adj`.
    pub oom_score_adj: Option<i64>,
    /// `cap_add`.
    pub cap_add: Vec<String>,
    /// `cap_drop`.
    pub cap_drop: Vec<String>,
    /// `security_opt`.
    pub security_opt: Vec<String>,
    /// `group_add`.
    pub group_add: Vec<String>,
    /// `tty`.
    pub tty: bool,
    /// `stdin_open`.
    pub stdin_open: bool,
    /// `platform`, passed when the container is created.
    pub platform: Option<String>,
    /// `runtime`.
    pub runtime: Option<String>,
    /// `cgroup_parent`.
    pub cgroup_parent: Option<String>,
    /// `pid` (`service:X` as `container:<X's name>`).
    pub pid: Option<String>,
    /// `ipc` (`service:X` as `container:<X's name>`).
    pub ipc: Option<String>,
    /// `uts`.
    pub uts: Option<String>,
    /// `userns_mode`.
    pub userns_mode: Option<String>,
    /// `cgroup: private` (`host` is rejected).
    pub cgroup_private: bool,
}

/// A mount of a service.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedMount {
    /// A host directory (the project's own path, or one made under
    /// `state_path` for a source from outside the project) or a volume.
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

    /// Freezes the plan's running services so a snapshot sees their files
    /// at rest (issue 11): native process groups get SIGSTOP, Docker
    /// containers are paused. Returns handles for [`thaw`](Self::thaw);
    /// on an error nothing is left frozen. Default: nothing to freeze.
    async fn freeze(&self, plan: &Plan) -> Result<Vec<String>, RuntimeError> {
        let _ = plan;
        Ok(Vec::new())
    }

    /// Thaws what [`freeze`](Self::freeze) returned. Never fails: what
    /// cannot be thawed (it ended meanwhile) is logged.
    async fn thaw(&self, plan: &Plan, frozen: Vec<String>) {
        let _ = (plan, frozen);
    }

    /// Removes every runtime resource of the project (containers,
    /// networks, volumes as runtime objects; never the state directory).
    /// Returns one line per resource removed.
    async fn remove(&self, plan: &Plan) -> Result<Vec<String>, RuntimeError>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_os::signal::Signal;

    #[test]
    fn stop_signals_read_as_compose_reads_them() {
        for s in ["SIGINT", "INT", "int", "SigInt", "2", " 2 "] {
            assert_eq!(parse_signal(s), Some(Signal::SIGINT), "{s}");
        }
        assert_eq!(parse_signal("SIGQUIT"), Some(Signal::SIGQUIT));
        assert_eq!(parse_signal("15"), Some(Signal::SIGTERM));
        for s in ["", "SIG", "NOPE", "999", "-2"] {
            assert_eq!(parse_signal(s), None, "{s}");
        }
    }

    #[test]
    fn bind_sources_inside_the_project_are_decided_on_the_text() {
        use super::super::compose::bind_in_project;
        use std::path::Path;
        let dir = Path::new("/p/proj");
        let inside = |s: &str| bind_in_project(dir, s).map(|p| p.to_string_lossy().into_owned());
        assert_eq!(inside("./app.conf").as_deref(), Some("app.conf"));
        assert_eq!(inside("site/").as_deref(), Some("site"));
        assert_eq!(inside("./a/../b").as_deref(), Some("b"));
        assert_eq!(inside(".").as_deref(), Some(""));
        assert_eq!(inside("/p/proj/x").as_deref(), Some("x"));
        for out in [
            "../x",
            "./a/../../x",
            "/etc",
            "/p/proj/../other",
            "~/x",
            "/p/projx",
        ] {
            assert_eq!(inside(out), None, "{out}");
        }
        // Without a directory, only relative sources can be inside.
        assert_eq!(
            bind_in_project(Path::new(""), "./x").as_deref(),
            Some(Path::new("x"))
        );
        assert_eq!(bind_in_project(Path::new(""), "/x"), None);
    }
}
