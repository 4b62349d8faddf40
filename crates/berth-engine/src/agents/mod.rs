//! Agent sessions (issue 15; seed 004 "Agent Sessions", "ACP Gateway"):
//! coding agents (Claude Code, Codex, Gemini CLI, Mistral Vibe, OpenCode,
//! Amp, or any configured program) run as child processes speaking the
//! Agent Client Protocol on their stdio, with berth as the client.
//!
//! `types` (which command per agent type), `rpc` (the process and JSON-RPC
//! over its stdio), `hub` (ordered fan-out and replay to viewers),
//! `session` (lifecycle, prompts with retries, client-side methods),
//! `retry` (transient errors, backoff), `fs` (workspace confinement),
//! `persist` (the store). [`Agents`] is the table of sessions.

pub mod fs;
pub mod hub;
pub mod persist;
pub mod retry;
pub mod rpc;
pub mod session;
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
    /// Words put before every agent and terminal command (empty on the
    /// host; the hook for `docker exec -i CONTAINER` once workspaces run
    /// in containers).
    pub command_prefix: Vec<String>,
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
}

/// What a new session needs.
#[derive(Debug, Clone, Default)]
pub struct NewSession {
    /// berth's id (a random v4 id when `None`).
    pub id: Option<String>,
    /// The workspace.
    pub workspace: String,
    /// Working directory; must exist. It is also the root the agent's
    /// `fs/*` and `terminal/*` calls are confined to.
    pub cwd: PathBuf,
    /// ACP `McpServer` objects (checked against the ACP schema).
    pub mcp_servers: serde_json::Value,
    /// A client's key: a second create with the same key in the same
    /// workspace returns the first session.
    pub idempotency_key: Option<String>,
}

/// The agent sessions of this daemon.
pub struct Agents {
    ctx: Arc<Ctx>,
    map: Mutex<HashMap<String, Arc<AgentSession>>>,
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
        });
        let rows = persist::load(&ctx.store).map_err(|e| AgentError::Store(e.to_string()))?;
        let map = rows
            .into_iter()
            .map(|r| (r.id.clone(), AgentSession::from_row(ctx.clone(), r)))
            .collect();
        Ok(Self {
            ctx,
            map: Mutex::new(map),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<AgentSession>>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The configured agent types.
    pub fn types(&self) -> &AgentTypes {
        &self.ctx.types
    }

    /// A new session (no agent yet), or the existing one with the same id
    /// or idempotency key in the workspace. Errors name the bad field.
    pub fn create(&self, req: NewSession) -> Result<Arc<AgentSession>, AgentError> {
        let mcp = if req.mcp_servers.is_null() {
            serde_json::json!([])
        } else {
            req.mcp_servers.clone()
        };
        serde_json::from_value::<Vec<agent_client_protocol::v1::schema::McpServer>>(mcp.clone())
            .map_err(|e| {
                AgentError::Invalid(format!("mcpServers: not a list of ACP MCP servers: {e}"))
            })?;
        if !req.cwd.is_absolute() || !req.cwd.is_dir() {
            return Err(AgentError::Invalid(format!(
                "cwd {:?}: must be an existing absolute directory",
                req.cwd.display().to_string()
            )));
        }
        let mut map = self.lock();
        if let Some(k) = &req.idempotency_key {
            if let Some(s) = map.values().find(|s| {
                s.workspace == req.workspace && s.view().idempotency_key.as_deref() == Some(k)
            }) {
                return Ok(s.clone());
            }
        }
        if let Some(id) = &req.id {
            if let Some(s) = map.get(id) {
                if s.workspace != req.workspace {
                    return Err(AgentError::NotFound(id.clone()));
                }
                return Ok(s.clone());
            }
        }
        let id = match req.id {
            Some(id) if !id.is_empty() && id.len() <= 128 => id,
            Some(_) => return Err(AgentError::Invalid("sessionId: 1 to 128 characters".into())),
            None => berth_os::ids::uuid_v4().map_err(|e| AgentError::Spawn(e.to_string()))?,
        };
        let s = AgentSession::new(
            self.ctx.clone(),
            id.clone(),
            req.workspace,
            req.cwd,
            mcp,
            req.idempotency_key,
        );
        map.insert(id, s.clone());
        Ok(s)
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
