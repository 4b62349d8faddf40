//! The workspace engine's plain types: requests, records, events, errors.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Where a workspace is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Being provisioned (clone, image, container, lifecycle commands).
    Creating,
    /// Its container runs and every lifecycle command succeeded.
    Ready,
    /// A provisioning step failed; `step` and `error` say which and why.
    Failed,
    /// Being removed.
    Deleting,
}

impl Status {
    /// `creating`, `ready`, `failed`, `deleting`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Ready => "ready",
            Status::Failed => "failed",
            Status::Deleting => "deleting",
        }
    }

    /// The inverse of [`Status::as_str`] (an unknown word reads as failed).
    pub fn parse(s: &str) -> Status {
        match s {
            "creating" => Status::Creating,
            "ready" => Status::Ready,
            "deleting" => Status::Deleting,
            _ => Status::Failed,
        }
    }
}

/// A forwarded port: `forwardPorts` entry → host port (127.0.0.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForwardedPort {
    /// The port in the container.
    pub container_port: u16,
    /// The host port berth's allocator gave it (bound on 127.0.0.1).
    pub host_port: u16,
}

/// `POST /workspaces`' body, as the engine needs it.
#[derive(Debug, Clone, Default)]
pub struct CreateRequest {
    /// The control plane's id (`[A-Za-z0-9._-]{1,64}`).
    pub workspace_id: String,
    /// A git URL or a local path.
    pub repository: String,
    /// The branch to check out (empty = the remote's default).
    pub branch: String,
    /// The token callbacks for this workspace carry (else the node's
    /// `CALLBACK_TOKEN`). Kept in the store to report after a restart.
    pub callback_token: Option<String>,
    /// A short-lived git token: used for the clone and served to the
    /// container's credential helper; never logged.
    pub git_token: Option<String>,
}

/// One workspace as the store keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct Workspace {
    /// The control plane's id.
    pub id: String,
    /// Repository URL or path.
    pub repository: String,
    /// Branch.
    pub branch: String,
    /// Where it is.
    pub status: Status,
    /// The step running, or the one that failed.
    pub step: String,
    /// Why it failed (empty otherwise).
    pub error: String,
    /// Container name (`berth-ws-<id>`, or the Compose service's).
    pub container: String,
    /// Image it runs.
    pub image: String,
    /// The user terminals and lifecycle commands run as (empty = image's).
    pub remote_user: String,
    /// The folder the repository is in, inside the container.
    pub workspace_folder: String,
    /// The shell terminals start (found in the container when ready).
    pub shell: String,
    /// `remoteEnv`.
    pub remote_env: BTreeMap<String, String>,
    /// Forwarded ports.
    pub ports: Vec<ForwardedPort>,
    /// The import report: devcontainer.json keys not applied, and why.
    pub report: Vec<String>,
    /// The volume holds the repository (so a re-creation keeps the files).
    pub populated: bool,
    /// The token callbacks of this workspace carry.
    pub callback_token: Option<String>,
    /// The Compose project of a Compose-based workspace (empty otherwise).
    pub compose_project: String,
    /// The short-lived git token (in the store, 0700, so a restarted
    /// daemon can finish provisioning; never logged or put in an image).
    pub git_token: Option<String>,
    /// Seconds since the epoch.
    pub created_at: f64,
    /// Seconds since the epoch.
    pub updated_at: f64,
}

impl Workspace {
    /// The named volume holding the repository's files.
    pub fn volume(&self) -> String {
        volume_name(&self.id)
    }
}

/// The named volume of workspace `id`: `berth-ws-<id>`.
pub fn volume_name(id: &str) -> String {
    format!("berth-ws-{id}")
}

/// A status change the control plane is told about.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The workspace.
    pub workspace_id: String,
    /// `creating`, `ready`, `failed` or `deleted`.
    pub status: &'static str,
    /// The failing step (failed only).
    pub step: String,
    /// The error (failed only).
    pub error: String,
    /// The last lines of the provisioning log, tokens redacted (failed only).
    pub log_tail: String,
    /// The workspace's callback token, if it brought one.
    pub callback_token: Option<String>,
}

/// How a terminal of a workspace is started: `docker exec` with a TTY.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TerminalLaunch {
    /// `docker -H unix://… exec -it -u USER -w FOLDER -e K=V … CONTAINER SHELL`.
    pub argv: Vec<String>,
    /// The folder inside the container.
    pub work_dir: String,
    /// The shell inside the container.
    pub shell: String,
}

/// A workspace container as Docker reports it (`GET /containers`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerInfo {
    /// Container id.
    pub id: String,
    /// Container name.
    pub name: String,
    /// The workspace it belongs to.
    pub workspace_id: String,
    /// Image.
    pub image: String,
    /// Docker's state word (`running`, `exited`…).
    pub state: String,
    /// Docker's status text (`Up 3 minutes`).
    pub status: String,
    /// Creation time, seconds since the epoch.
    pub created: i64,
}

/// A refused or failed workspace operation.
#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    /// The request is malformed; names the field.
    #[error("{0}")]
    BadRequest(String),
    /// No such workspace.
    #[error("no workspace {0:?}")]
    NotFound(String),
    /// Docker is not reachable or refused.
    #[error("{0}")]
    Docker(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}
