//! The project engine: registry of projects, their plans, ports and the
//! orchestration of start and stop over a [`ProjectRuntime`].

use super::model::*;
use super::runtime::{ProgressFn, ProjectRuntime};
use super::ValidationReport;
use crate::services::Services;
use crate::store::Store;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

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

/// The project engine.
pub struct Projects {
    store: Arc<Store>,
    services: Arc<Services>,
    cfg: ProjectsConfig,
}

impl Projects {
    /// Opens the engine; call [`recover`](Self::recover) next.
    pub fn open(
        store: Arc<Store>,
        services: Arc<Services>,
        cfg: ProjectsConfig,
    ) -> Result<Arc<Self>, ProjectError> {
        Ok(Arc::new(Self {
            store,
            services,
            cfg,
        }))
    }

    /// Finds the projects a previous daemon left running and takes them
    /// back (reopened, ports forwarded again, nothing duplicated).
    pub async fn recover(&self) -> Result<(), ProjectError> {
        let _ = (&self.store, &self.services, &self.cfg);
        Err(ProjectError::Internal("not built yet".into()))
    }

    /// EnsureProject.
    pub async fn ensure(&self, req: EnsureRequest) -> Result<Ensured, ProjectError> {
        let _ = req;
        Err(ProjectError::Internal("not built yet".into()))
    }

    /// OpenProject.
    pub async fn open_project(
        &self,
        project_id: &str,
        progress: &ProgressFn,
    ) -> Result<Opened, ProjectError> {
        let _ = (project_id, progress);
        Err(ProjectError::Internal("not built yet".into()))
    }

    /// StartProject.
    pub async fn start(
        &self,
        project_id: &str,
        secrets: BTreeMap<String, String>,
    ) -> Result<Started, ProjectError> {
        let _ = (project_id, secrets);
        Err(ProjectError::Internal("not built yet".into()))
    }

    /// StopProject; `timeout` `None` means [`DEFAULT_STOP_TIMEOUT`].
    pub async fn stop(
        &self,
        project_id: &str,
        timeout: Option<Duration>,
    ) -> Result<Stopped, ProjectError> {
        let _ = (project_id, timeout);
        Err(ProjectError::Internal("not built yet".into()))
    }

    /// DeleteProjectRuntime.
    pub async fn delete_runtime(
        &self,
        project_id: &str,
        force: bool,
    ) -> Result<Deleted, ProjectError> {
        let _ = (project_id, force);
        Err(ProjectError::Internal("not built yet".into()))
    }

    /// ListProjects; `filter` is a [`ProjectState`] spelling.
    pub async fn list(&self, filter: Option<&str>) -> Result<Vec<ProjectSummary>, ProjectError> {
        let _ = filter;
        Err(ProjectError::Internal("not built yet".into()))
    }

    /// GetProjectStatus.
    pub async fn status(&self, project_id: &str) -> Result<ProjectStatus, ProjectError> {
        let _ = project_id;
        Err(ProjectError::Internal("not built yet".into()))
    }

    /// GetProjectLogs; `tail` `None` means [`DEFAULT_TAIL_LINES`].
    pub async fn logs(
        &self,
        project_id: &str,
        service: Option<&str>,
        tail: Option<usize>,
        follow: bool,
    ) -> Result<LogFeed, ProjectError> {
        let _ = (project_id, service, tail, follow);
        Err(ProjectError::Internal("not built yet".into()))
    }

    /// ValidateCompose, for `runtime` (`None`: the default runtime).
    pub fn validate(&self, content: &[u8], runtime: Option<RuntimeKind>) -> ValidationReport {
        super::validate(
            content,
            runtime.unwrap_or(self.cfg.default_runtime).validation(),
        )
    }

    /// ResolvePorts.
    pub async fn resolve_ports(
        &self,
        project_id: &str,
        refresh: bool,
    ) -> Result<Vec<PortMapping>, ProjectError> {
        let _ = (project_id, refresh);
        Err(ProjectError::Internal("not built yet".into()))
    }
}
