//! Workspace rows in the store (migration 8): one row per workspace, so a
//! repeated POST finds it and a restarted daemon knows what it was doing.

use super::model::{Status, Workspace};
use crate::store::{Store, StoreError};
use rusqlite::{params, OptionalExtension};

const COLS: &str = "id, repository, branch, status, step, error, container, image, remote_user, \
    workspace_folder, shell, remote_env, ports, report, populated, callback_token, compose_project, \
    created_at, updated_at, git_token";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Workspace> {
    let json = |i: usize| -> rusqlite::Result<String> { r.get(i) };
    Ok(Workspace {
        id: r.get(0)?,
        repository: r.get(1)?,
        branch: r.get(2)?,
        status: Status::parse(&r.get::<_, String>(3)?),
        step: r.get(4)?,
        error: r.get(5)?,
        container: r.get(6)?,
        image: r.get(7)?,
        remote_user: r.get(8)?,
        workspace_folder: r.get(9)?,
        shell: r.get(10)?,
        remote_env: serde_json::from_str(&json(11)?).unwrap_or_default(),
        ports: serde_json::from_str(&json(12)?).unwrap_or_default(),
        report: serde_json::from_str(&json(13)?).unwrap_or_default(),
        populated: r.get::<_, i64>(14)? != 0,
        callback_token: r.get(15)?,
        compose_project: r.get(16)?,
        created_at: r.get(17)?,
        updated_at: r.get(18)?,
        git_token: r.get(19)?,
    })
}

/// Saves `w` (insert or replace).
pub(crate) fn put(store: &Store, w: &Workspace) -> Result<(), StoreError> {
    let env = serde_json::to_string(&w.remote_env).unwrap_or_else(|_| "{}".into());
    let ports = serde_json::to_string(&w.ports).unwrap_or_else(|_| "[]".into());
    let report = serde_json::to_string(&w.report).unwrap_or_else(|_| "[]".into());
    store.write("saving a workspace", |tx| {
        tx.execute(
            &format!(
                "INSERT OR REPLACE INTO workspaces ({COLS}) VALUES \
                 (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)"
            ),
            params![
                w.id,
                w.repository,
                w.branch,
                w.status.as_str(),
                w.step,
                w.error,
                w.container,
                w.image,
                w.remote_user,
                w.workspace_folder,
                w.shell,
                env,
                ports,
                report,
                w.populated as i64,
                w.callback_token,
                w.compose_project,
                w.created_at,
                w.updated_at,
                w.git_token
            ],
        )
        .map(|_| ())
    })
}

/// The workspace `id`, if any.
pub(crate) fn get(store: &Store, id: &str) -> Result<Option<Workspace>, StoreError> {
    store.read("reading a workspace", |c| {
        c.query_row(
            &format!("SELECT {COLS} FROM workspaces WHERE id = ?1"),
            [id],
            row,
        )
        .optional()
    })
}

/// Every workspace, oldest first.
pub(crate) fn list(store: &Store) -> Result<Vec<Workspace>, StoreError> {
    store.read("listing workspaces", |c| {
        let mut st = c.prepare(&format!(
            "SELECT {COLS} FROM workspaces ORDER BY created_at, id"
        ))?;
        let rows = st.query_map([], row)?;
        rows.collect()
    })
}

/// Forgets workspace `id`.
pub(crate) fn remove(store: &Store, id: &str) -> Result<(), StoreError> {
    store.write("removing a workspace", |tx| {
        tx.execute("DELETE FROM workspaces WHERE id = ?1", [id])
            .map(|_| ())
    })
}
