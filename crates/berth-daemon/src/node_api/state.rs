//! What the node API's handlers share: settings, the token validator, the
//! terminal table, and the browser cookie grants.

use super::auth::Validator;
use super::config::NodeApiConfig;
use super::terminals::Terminals;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a `vm_session_<workspaceId>` cookie is valid (seed 004's
/// agent: 24 h).
pub const COOKIE_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// Who a cookie stands for.
#[derive(Debug, Clone)]
pub struct Grant {
    /// The token's user.
    pub sub: String,
    /// The workspace the token was for.
    pub workspace: String,
    /// When the cookie stops being accepted.
    pub expires: Instant,
}

/// Shared state of the node API.
pub struct NodeState {
    /// Settings.
    pub cfg: NodeApiConfig,
    /// Checks tokens.
    pub validator: Validator,
    /// Browser terminals over the session engine.
    pub terminals: std::sync::Arc<Terminals>,
    /// ACP agent sessions (`/agent/ws`, `/workspaces/{id}/agent-sessions`).
    pub agents: std::sync::Arc<berth_engine::agents::Agents>,
    /// When the node API started (for `/health`'s uptime).
    pub started: Instant,
    /// Cookie value → grant (random 32-byte values; in memory, so a
    /// restarted daemon asks for a token again).
    pub grants: Mutex<HashMap<String, Grant>>,
}

impl NodeState {
    /// A new cookie for `sub` in `workspace`; returns its value.
    pub fn grant(&self, sub: &str, workspace: &str) -> Result<String, String> {
        let mut raw = [0u8; 32];
        getrandom::fill(&mut raw).map_err(|e| format!("no randomness for a cookie: {e}"))?;
        let value: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        let mut g = self.grants.lock().unwrap_or_else(|p| p.into_inner());
        g.retain(|_, v| v.expires > Instant::now());
        g.insert(
            value.clone(),
            Grant {
                sub: sub.to_string(),
                workspace: workspace.to_string(),
                expires: Instant::now() + COOKIE_LIFETIME,
            },
        );
        Ok(value)
    }

    /// The grant behind cookie `value`, if it is valid for `workspace`.
    pub fn grant_for(&self, value: &str, workspace: &str) -> Option<Grant> {
        let g = self.grants.lock().unwrap_or_else(|p| p.into_inner());
        g.get(value)
            .filter(|v| v.workspace == workspace && v.expires > Instant::now())
            .cloned()
    }
}
