//! Workspace tabs (seed 004 "Tab Management"): the terminal and chat tabs
//! a workspace's web UI shows, kept in the store so they survive daemon
//! restarts and page reloads. A small engine: rows in, rows out.

use crate::store::{Store, StoreError};
use rusqlite::{params, OptionalExtension};
use std::sync::Arc;

/// One tab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tab {
    /// The tab's id (a terminal tab's is its session id).
    pub id: String,
    /// The workspace it belongs to.
    pub workspace_id: String,
    /// `terminal` or `chat`.
    pub kind: String,
    /// What the tab shows as its title.
    pub label: String,
    /// The agent of a chat tab.
    pub agent_id: Option<String>,
    /// Position, ascending.
    pub sort_order: i64,
    /// RFC 3339 creation time.
    pub created_at: String,
    /// The ACP session of a chat tab.
    pub acp_session_id: Option<String>,
    /// The last prompt of a chat tab.
    pub last_prompt: Option<String>,
}

/// The tab store.
pub struct Tabs {
    store: Arc<Store>,
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Tab> {
    Ok(Tab {
        workspace_id: r.get(0)?,
        id: r.get(1)?,
        kind: r.get(2)?,
        label: r.get(3)?,
        agent_id: r.get(4)?,
        sort_order: r.get(5)?,
        created_at: r.get(6)?,
        acp_session_id: r.get(7)?,
        last_prompt: r.get(8)?,
    })
}

const COLS: &str =
    "workspace_id, id, type, label, agent_id, sort_order, created_at, acp_session_id, last_prompt";

impl Tabs {
    /// Tabs over `store`.
    pub fn new(store: Arc<Store>) -> Self {
        Self { store }
    }

    /// The store the tabs live in (other node-API engines keep their rows
    /// next to them).
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The tabs of `workspace`, by sort order then creation.
    pub fn list(&self, workspace: &str) -> Result<Vec<Tab>, StoreError> {
        self.store.read("listing tabs", |c| {
            let mut st = c.prepare(&format!(
                "SELECT {COLS} FROM workspace_tabs WHERE workspace_id = ?1 ORDER BY sort_order, created_at, id"
            ))?;
            let rows = st.query_map([workspace], row)?;
            rows.collect()
        })
    }

    /// Adds `tab` at the end of its workspace (its `sort_order` is set to
    /// one past the last), or replaces the tab with the same id.
    pub fn put(&self, tab: &Tab) -> Result<Tab, StoreError> {
        self.store.write("saving a tab", |tx| {
            let existing: Option<i64> = tx
                .query_row(
                    "SELECT sort_order FROM workspace_tabs WHERE workspace_id = ?1 AND id = ?2",
                    params![tab.workspace_id, tab.id],
                    |r| r.get(0),
                )
                .optional()?;
            let order = match existing {
                Some(o) => o,
                None => tx.query_row(
                    "SELECT COALESCE(MAX(sort_order) + 1, 0) FROM workspace_tabs WHERE workspace_id = ?1",
                    [&tab.workspace_id],
                    |r| r.get(0),
                )?,
            };
            tx.execute(
                &format!("INSERT OR REPLACE INTO workspace_tabs ({COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"),
                params![
                    tab.workspace_id,
                    tab.id,
                    tab.kind,
                    tab.label,
                    tab.agent_id,
                    order,
                    tab.created_at,
                    tab.acp_session_id,
                    tab.last_prompt
                ],
            )?;
            Ok(Tab {
                sort_order: order,
                ..tab.clone()
            })
        })
    }

    /// Renames tab `id`; `false` if there is none.
    pub fn relabel(&self, workspace: &str, id: &str, label: &str) -> Result<bool, StoreError> {
        self.store.write("renaming a tab", |tx| {
            Ok(tx.execute(
                "UPDATE workspace_tabs SET label = ?3 WHERE workspace_id = ?1 AND id = ?2",
                params![workspace, id, label],
            )? > 0)
        })
    }

    /// Removes tab `id`; `false` if there was none.
    pub fn remove(&self, workspace: &str, id: &str) -> Result<bool, StoreError> {
        self.store.write("removing a tab", |tx| {
            Ok(tx.execute(
                "DELETE FROM workspace_tabs WHERE workspace_id = ?1 AND id = ?2",
                params![workspace, id],
            )? > 0)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tabs_keep_their_order_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.db");
        let tab = |id: &str| Tab {
            id: id.into(),
            workspace_id: "w".into(),
            kind: "terminal".into(),
            label: id.into(),
            agent_id: None,
            sort_order: 0,
            created_at: "2026-01-01T00:00:00Z".into(),
            acp_session_id: None,
            last_prompt: None,
        };
        {
            let t = Tabs::new(Arc::new(Store::open(&path, 0).unwrap()));
            assert_eq!(t.put(&tab("a")).unwrap().sort_order, 0);
            assert_eq!(t.put(&tab("b")).unwrap().sort_order, 1);
            assert!(t.relabel("w", "a", "shell").unwrap());
            assert_eq!(t.put(&tab("c")).unwrap().sort_order, 2);
            assert!(t.remove("w", "c").unwrap());
            assert!(!t.remove("w", "c").unwrap());
        }
        let t = Tabs::new(Arc::new(Store::open(&path, 0).unwrap()));
        let l = t.list("w").unwrap();
        assert_eq!(
            l.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert_eq!(l[0].label, "shell");
        assert!(t.list("other").unwrap().is_empty());
    }
}
