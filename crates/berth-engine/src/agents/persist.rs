//! Agent sessions in the store (`agent_sessions`, migration 7): what a
//! suspended or crashed session needs to be resumed after a daemon
//! restart: agent type, working directory, MCP servers, the ACP session
//! id and the transcript.

use crate::store::{Store, StoreError};
use rusqlite::params;

/// One stored session.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// berth's id of the session.
    pub id: String,
    /// The workspace.
    pub workspace_id: String,
    /// Agent type, empty before one was selected.
    pub agent_type: String,
    /// Working directory (the workspace root of its fs methods).
    pub cwd: String,
    /// MCP servers, JSON array as ACP has them.
    pub mcp_servers: String,
    /// The agent's session id.
    pub acp_session_id: Option<String>,
    /// Status when written.
    pub status: String,
    /// Transcript, JSON array of `{role, text}`.
    pub transcript: String,
    /// The last prompt's text.
    pub last_prompt: Option<String>,
    /// The client's idempotency key.
    pub idempotency_key: Option<String>,
    /// RFC 3339.
    pub created_at: String,
}

const COLS: &str = "id, workspace_id, agent_type, cwd, mcp_servers, acp_session_id, status, transcript, last_prompt, idempotency_key, created_at";

/// Inserts or replaces `r`.
pub fn save(store: &Store, r: &Row) -> Result<(), StoreError> {
    store.write("saving an agent session", |tx| {
        tx.execute(
            &format!("INSERT OR REPLACE INTO agent_sessions ({COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"),
            params![
                r.id,
                r.workspace_id,
                r.agent_type,
                r.cwd,
                r.mcp_servers,
                r.acp_session_id,
                r.status,
                r.transcript,
                r.last_prompt,
                r.idempotency_key,
                r.created_at
            ],
        )?;
        Ok(())
    })
}

/// Removes session `id`.
pub fn delete(store: &Store, id: &str) -> Result<(), StoreError> {
    store.write("removing an agent session", |tx| {
        tx.execute("DELETE FROM agent_sessions WHERE id = ?1", [id])?;
        Ok(())
    })
}

/// Every stored session.
pub fn load(store: &Store) -> Result<Vec<Row>, StoreError> {
    store.read("loading agent sessions", |c| {
        let mut st = c.prepare(&format!(
            "SELECT {COLS} FROM agent_sessions ORDER BY created_at, id"
        ))?;
        let rows = st.query_map([], |r| {
            Ok(Row {
                id: r.get(0)?,
                workspace_id: r.get(1)?,
                agent_type: r.get(2)?,
                cwd: r.get(3)?,
                mcp_servers: r.get(4)?,
                acp_session_id: r.get(5)?,
                status: r.get(6)?,
                transcript: r.get(7)?,
                last_prompt: r.get(8)?,
                idempotency_key: r.get(9)?,
                created_at: r.get(10)?,
            })
        })?;
        rows.collect()
    })
}
