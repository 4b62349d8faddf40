//! Agent sessions (issue 15; seed 004 "Agent Sessions", "ACP Gateway"):
//! coding agents (Claude Code, Codex, Gemini CLI, Mistral Vibe, OpenCode,
//! Amp, or any configured program) run as child processes speaking the
//! Agent Client Protocol on their stdio, with berth as the client.
//!
//! `types` (which command per agent type), `rpc` (the process and JSON-RPC
//! over its stdio), `hub` (ordered fan-out and replay to viewers),
//! `session` (lifecycle, prompts with retries, client-side methods),
//! `retry` (transient errors, backoff), `fs` (workspace confinement),
//! `persist` (the store), `place` (host or workspace container),
//! `transcript` (the bounds of a session's transcript),
//! `idle` (the cleanup of unattended sessions). [`Agents`] is the table
//! of sessions.

pub mod fs;
pub mod hub;
pub mod idle;
pub mod persist;
pub mod place;
pub mod retry;
pub mod rpc;
pub mod session;
pub mod transcript;
pub mod types;

use crate::sessions::Sessions;
use crate::store::Store;
use crate::tabs::Tabs;
pub use hub::{Event, Out, Viewer};
pub use session::{AgentSession, SessionView};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
pub use types::AgentTypes;

/// Why an agent operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// No such agent type.
    #[error("unknown agent type {ty:?}; configured types: {known} (add one with BERTH_ACP_AGENT_<TYPE>)")]
    UnknownType {
        /// What was asked for.
        ty: String,
        /// The configured types, comma-separated.
        known: String,
    },
    /// Bad input, named.
    #[error("{0}")]
    Invalid(String),
    /// No workspace has this id (and host agents are not enabled).
    #[error("no workspace {0:?} on this node: an agent session runs in its workspace's container (set BERTH_ACP_HOST_WORKSPACES=1 to run agents of other workspace ids on the host)")]
    NoWorkspace(String),
    /// No such session (in this workspace).
    #[error("no agent session {0:?} in this workspace")]
    NotFound(String),
    /// The agent program could not be started.
    #[error("{0}")]
    Spawn(String),
    /// `initialize`, `session/new` or `session/load` failed.
    #[error("ACP handshake failed: {0}")]
    Handshake(String),
    /// The session has no running agent.
    #[error("{0}")]
    NotRunning(String),
    /// A prompt is already running.
    #[error("{0}")]
    Busy(String),
    /// The agent answered a prompt with an error (after the retries).
    #[error("the agent answered with an error: {0}")]
    Rpc(rpc::RpcError),
    /// The store failed.
    #[error("{0}")]
    Store(String),
}

/// Checks a client-chosen session id (an agent session's or a
/// terminal's): `[A-Za-z0-9._:-]{1,128}` (seed 004's agent), so it is
/// safe in a path segment, a query and a log line; the error names the
/// rule.
pub fn check_session_id(id: &str) -> Result<(), String> {
    let ok = (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "session id {id:?} is invalid: use 1 to 128 of A-Z a-z 0-9 . _ : -"
        ))
    }
}

/// Settings of the gateway (seed 004 "Configuration"; berth's own
/// additions documented in docs/node-api.md).
#[derive(Debug, Clone)]
pub struct AgentSettings {
    /// ACP_PROMPT_RETRY_MAX_RETRIES (2): retries after the first attempt.
    pub max_retries: u32,
    /// ACP_PROMPT_RETRY_INITIAL_BACKOFF (15 s).
    pub initial_backoff: Duration,
    /// ACP_PROMPT_RETRY_MAX_BACKOFF (2 min).
    pub max_backoff: Duration,
    /// ACP_NOTIF_SERIALIZE_TIMEOUT (5 s): the most one delivery step of
    /// the ordered queue may take before it is reported and skipped past.
    pub serialize_timeout: Duration,
    /// ACP_REPLAY_BUFFER_SIZE (5000): events kept for late viewers.
    pub replay_cap: usize,
    /// ACP_VIEWER_QUEUE (4096): events queued per viewer before a viewer
    /// that does not read is dropped.
    pub viewer_queue: usize,
    /// Words put before every agent and terminal command, before a
    /// workspace container's `docker exec` prefix (empty by default).
    pub command_prefix: Vec<String>,
    /// The working directory of a host session created without one.
    pub host_cwd: PathBuf,
    /// Sessions made by `/agent/ws` without a session id are stopped and
    /// forgotten after this long with no viewer and no prompt
    /// (ACP_IDLE_SESSION_TIMEOUT, berth's: 30 min).
    pub idle_timeout: Duration,
    /// SIGTERM → SIGKILL grace when an agent is stopped (3 s).
    pub stop_grace: Duration,
}

impl Default for AgentSettings {
    fn default() -> Self {
        Self {
            max_retries: 2,
            initial_backoff: Duration::from_secs(15),
            max_backoff: Duration::from_secs(120),
            serialize_timeout: Duration::from_secs(5),
            replay_cap: 5000,
            viewer_queue: 4096,
            command_prefix: Vec::new(),
            host_cwd: PathBuf::from("/"),
            idle_timeout: Duration::from_secs(30 * 60),
            stop_grace: Duration::from_secs(3),
        }
    }
}

/// What every session shares.
pub struct Ctx {
    /// Settings.
    pub settings: AgentSettings,
    /// Agent type → command.
    pub types: AgentTypes,
    /// Where sessions are kept.
    pub store: Arc<Store>,
    /// Backs `terminal/*`.
    pub sessions: Arc<Sessions>,
    /// Chat tabs.
    pub tabs: Arc<Tabs>,
    /// Where a workspace's agents run (none: on the host).
    placer: Mutex<Option<place::Placer>>,
}

impl Ctx {
    /// Where workspace `ws`'s agents run, with working directory
    /// `workdir` (see [`place::Placement`]); the host without a placer.
    pub fn place(&self, ws: &str, workdir: Option<&str>) -> place::Placement {
        let p = self
            .placer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        p.map_or(place::Placement::Host, |p| p(ws, workdir))
    }
}

/// What a new session needs.
#[derive(Debug, Clone, Default)]
pub struct NewSession {
    /// berth's id (a random v4 id when `None`).
    pub id: Option<String>,
    /// The workspace.
    pub workspace: String,
    /// Working directory (default: the workspace folder in a container,
    /// `AgentSettings::host_cwd` on the host); on the host it must exist.
    /// It is also the root the agent's `fs/*` and `terminal/*` calls are
    /// confined to.
    pub cwd: Option<PathBuf>,
    /// ACP `McpServer` objects (checked against the ACP schema).
    pub mcp_servers: serde_json::Value,
    /// A client's key: a second create with the same key in the same
    /// workspace returns the first session.
    pub idempotency_key: Option<String>,
    /// Stopped and forgotten after `AgentSettings::idle_timeout` with no
    /// viewer and no prompt (a `/agent/ws` session made without an id).
    pub ephemeral: bool,
}

/// The agent sessions of this daemon.
pub struct Agents {
    ctx: Arc<Ctx>,
    map: Arc<Mutex<HashMap<String, Arc<AgentSession>>>>,
}

impl Agents {
    /// The table, with the stored sessions loaded (those that were running
    /// when the daemon stopped come back `suspended`).
    pub fn open(
        settings: AgentSettings,
        types: AgentTypes,
        store: Arc<Store>,
        sessions: Arc<Sessions>,
        tabs: Arc<Tabs>,
    ) -> Result<Self, AgentError> {
        let ctx = Arc::new(Ctx {
            settings,
            types,
            store,
            sessions,
            tabs,
            placer: Mutex::new(None),
        });
        let rows = persist::load(&ctx.store).map_err(|e| AgentError::Store(e.to_string()))?;
        let map = rows
            .into_iter()
            .map(|r| (r.id.clone(), AgentSession::from_row(ctx.clone(), r)))
            .collect();
        Ok(Self {
            ctx,
            map: Arc::new(Mutex::new(map)),
        })
    }

    /// Sets where each workspace's agents run (the daemon's workspaces);
    /// without it every session runs on the host.
    pub fn set_placer(&self, p: place::Placer) {
        *self.ctx.placer.lock().unwrap_or_else(|p| p.into_inner()) = Some(p);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<AgentSession>>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The configured agent types.
    pub fn types(&self) -> &AgentTypes {
        &self.ctx.types
    }

    /// A new session (no agent yet), or the existing one with the same id
    /// or idempotency key in the workspace. Errors name the bad field;
    /// [`AgentError::NoWorkspace`] when the workspace does not exist (and
    /// host agents are off), [`AgentError::NotRunning`] when it is not
    /// ready.
    pub fn create(&self, req: NewSession) -> Result<Arc<AgentSession>, AgentError> {
        self.create_or_join(req).map(|(s, _)| s)
    }

    /// As [`Agents::create`], and whether the session is new (`false`:
    /// the existing one with the same id or idempotency key, whose agent
    /// type and cwd the caller may compare with what it asked for).
    pub fn create_or_join(&self, req: NewSession) -> Result<(Arc<AgentSession>, bool), AgentError> {
        let container = match self.ctx.place(&req.workspace, None) {
            place::Placement::Missing => return Err(AgentError::NoWorkspace(req.workspace)),
            place::Placement::NotReady(why) => return Err(AgentError::NotRunning(why)),
            place::Placement::Host => None,
            place::Placement::Container { folder, .. } => Some(folder),
        };
        let mcp = if req.mcp_servers.is_null() {
            serde_json::json!([])
        } else {
            req.mcp_servers.clone()
        };
        serde_json::from_value::<Vec<agent_client_protocol::v1::schema::McpServer>>(mcp.clone())
            .map_err(|e| {
                AgentError::Invalid(format!("mcpServers: not a list of ACP MCP servers: {e}"))
            })?;
        let cwd = match (&container, req.cwd) {
            (Some(folder), None) => PathBuf::from(folder),
            (Some(folder), Some(c)) => {
                if !fs::lexically_under(&c, std::path::Path::new(folder)) {
                    return Err(AgentError::Invalid(format!(
                        "cwd {:?}: must be an absolute directory in the workspace folder {folder} (no ..)",
                        c.display().to_string()
                    )));
                }
                c
            }
            (None, c) => {
                let c = c.unwrap_or_else(|| self.ctx.settings.host_cwd.clone());
                if !c.is_absolute() || !c.is_dir() {
                    return Err(AgentError::Invalid(format!(
                        "cwd {:?}: must be an existing absolute directory",
                        c.display().to_string()
                    )));
                }
                c
            }
        };
        if let Some(id) = &req.id {
            check_session_id(id).map_err(AgentError::Invalid)?;
        }
        let mut map = self.lock();
        if let Some(k) = &req.idempotency_key {
            if let Some(s) = map.values().find(|s| {
                s.workspace == req.workspace && s.view().idempotency_key.as_deref() == Some(k)
            }) {
                return Ok((s.clone(), false));
            }
        }
        if let Some(id) = &req.id {
            if let Some(s) = map.get(id) {
                if s.workspace != req.workspace {
                    return Err(AgentError::NotFound(id.clone()));
                }
                return Ok((s.clone(), false));
            }
        }
        let id = match req.id {
            Some(id) => id,
            None => berth_os::ids::uuid_v4().map_err(|e| AgentError::Spawn(e.to_string()))?,
        };
        let s = AgentSession::new(
            self.ctx.clone(),
            id.clone(),
            req.workspace,
            cwd,
            mcp,
            req.idempotency_key,
        );
        map.insert(id, s.clone());
        if req.ephemeral {
            idle::watch(
                &s,
                Arc::downgrade(&self.map),
                self.ctx.settings.idle_timeout,
            );
        }
        Ok((s, true))
    }

    /// Session `id` of `workspace`.
    pub fn get(&self, workspace: &str, id: &str) -> Result<Arc<AgentSession>, AgentError> {
        self.lock()
            .get(id)
            .filter(|s| s.workspace == workspace)
            .cloned()
            .ok_or_else(|| AgentError::NotFound(id.to_string()))
    }

    /// The sessions of `workspace`, oldest first.
    pub fn list(&self, workspace: &str) -> Vec<SessionView> {
        let mut v: Vec<SessionView> = self
            .lock()
            .values()
            .filter(|s| s.workspace == workspace)
            .map(|s| s.view())
            .collect();
        v.sort_by(|a, b| (&a.created_at, &a.id).cmp(&(&b.created_at, &b.id)));
        v
    }

    /// Stops every running agent (daemon shutdown): they come back
    /// `suspended`.
    pub async fn suspend_all(&self) {
        let all: Vec<Arc<AgentSession>> = self.lock().values().cloned().collect();
        for s in all {
            if s.view().pid.is_some() {
                let _ = s.halt("suspended").await;
            }
        }
    }
}

#[cfg(test)]
mod tests;
