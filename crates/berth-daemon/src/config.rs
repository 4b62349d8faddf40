//! Daemon configuration, resolved from flags and the environment.

use crate::addr::ListenAddr;
use berth_engine::sessions::SessionConfig;
use berth_os::dirs;
use std::path::PathBuf;
use std::time::Duration;

/// Everything the daemon needs to start.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    /// Named scope, isolating sockets and database; `None` is the global one.
    pub scope: Option<String>,
    /// Process-API listeners.
    pub listen: Vec<ListenAddr>,
    /// SQLite database path.
    pub db_path: PathBuf,
    /// Bytes pre-allocated as the emergency reserve (0 disables it).
    pub reserve_bytes: u64,
    /// How long dead registry rows are reported before they are purged.
    pub dead_retention: Duration,
    /// How often the registry is validated in the background.
    pub sweep_interval: Duration,
    /// Restart the services of the last SAVE at start.
    pub resurrect: bool,
    /// Size at which a service log is rotated.
    pub service_log_max_bytes: u64,
    /// Rotated service logs kept.
    pub service_log_keep: u32,
    /// Session engine tunables (backlog size, default grace).
    pub sessions: SessionConfig,
    /// Outbound agent link to a remote-protocol relay, if configured.
    pub relay: Option<crate::remote_link::RelayLinkConfig>,
    /// Project-API (gRPC) listeners: the scope's `project.sock`, plus
    /// every `--listen-project`. vsock port 1024 is only bound when asked.
    pub project_listen: Vec<ListenAddr>,
    /// Which runtime runs projects that do not ask for one.
    pub project_runtime: ProjectRuntimeChoice,
    /// The guest API (seed 002): `guest.sock` and vsock port 5002.
    pub guest_api: crate::guest_api::GuestApiConfig,
    /// The node API (seed 004), if `--node-api` asked for it.
    pub node_api: Option<crate::node_api::config::NodeApiConfig>,
}

/// `--project-runtime`: the default runtime of projects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProjectRuntimeChoice {
    /// Docker when a Docker Engine answers at start, else native.
    #[default]
    Auto,
    /// Docker; the daemon does not start without a Docker Engine.
    Docker,
    /// Supervised host processes.
    Native,
}

impl std::str::FromStr for ProjectRuntimeChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "docker" => Ok(Self::Docker),
            "native" => Ok(Self::Native),
            _ => Err(format!(
                "{s:?} is not a project runtime; use auto, docker or native"
            )),
        }
    }
}

/// Default size at which a service log rotates: 10 MiB.
pub const DEFAULT_SERVICE_LOG_MAX_BYTES: u64 = 10 << 20;
/// Default rotated service logs kept.
pub const DEFAULT_SERVICE_LOG_KEEP: u32 = 3;

/// Default emergency reserve: 4 MiB.
pub const DEFAULT_RESERVE_BYTES: u64 = 4 << 20;

impl DaemonConfig {
    /// Defaults for `scope`: berth's own socket, the running-process
    /// compatible socket, and the per-scope database.
    pub fn for_scope(scope: Option<String>) -> Result<Self, String> {
        if let Some(s) = &scope {
            dirs::validate_scope(s)?;
        }
        let sc = scope.as_deref();
        let guest_api = crate::guest_api::GuestApiConfig::for_scope(sc);
        Ok(Self {
            listen: vec![
                ListenAddr::Unix(dirs::daemon_socket(sc)),
                ListenAddr::Unix(dirs::compat_socket(sc)),
            ],
            db_path: dirs::database(sc),
            project_listen: vec![ListenAddr::Unix(dirs::project_socket(sc))],
            scope,
            reserve_bytes: DEFAULT_RESERVE_BYTES,
            dead_retention: Duration::from_secs(60),
            sweep_interval: Duration::from_secs(15),
            resurrect: false,
            service_log_max_bytes: DEFAULT_SERVICE_LOG_MAX_BYTES,
            service_log_keep: DEFAULT_SERVICE_LOG_KEEP,
            sessions: SessionConfig::default(),
            relay: None,
            project_runtime: ProjectRuntimeChoice::Auto,
            guest_api,
            node_api: None,
        })
    }

    /// Service files live beside the database, named after it, so scopes
    /// and `--db` keep them apart: `<stem>-logs/` and `<stem>.services.json`.
    pub fn services_config(&self) -> berth_engine::services::ServicesConfig {
        let dir = self
            .db_path
            .parent()
            .map(|p| p.to_path_buf())
            .unwrap_or_default();
        let stem = self
            .db_path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "berth".into());
        berth_engine::services::ServicesConfig {
            logs: berth_engine::services::LogConfig {
                dir: dir.join(format!("{stem}-logs")),
                max_bytes: self.service_log_max_bytes.max(1),
                keep: self.service_log_keep,
            },
            dump_path: dir.join(format!("{stem}.services.json")),
        }
    }

    /// Project state (default state paths) lives beside the database, like
    /// the service files: `<dir>/projects/`, or `<dir>/<stem>-projects/`
    /// for a database not named `berth.db`, so scopes keep theirs apart.
    pub fn projects_state_root(&self) -> PathBuf {
        let dir = self
            .db_path
            .parent()
            .map(|p| p.to_path_buf())
            .unwrap_or_default();
        match self.db_path.file_stem().and_then(|s| s.to_str()) {
            Some("berth") | None => dir.join("projects"),
            Some(stem) => dir.join(format!("{stem}-projects")),
        }
    }

    /// The first Unix socket, which STATUS reports and the CLI prefers.
    pub fn primary_socket(&self) -> Option<&PathBuf> {
        self.listen.iter().find_map(|a| match a {
            ListenAddr::Unix(p) => Some(p),
            _ => None,
        })
    }
}
