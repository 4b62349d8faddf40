//! Numbered schema migrations. Append only: never edit a shipped step.

use rusqlite::Connection;

/// Each entry moves the schema from version `i` to `i + 1`.
const STEPS: &[&str] = &[
    // 1: the process registry.
    "CREATE TABLE tracked_processes (
        pid                INTEGER PRIMARY KEY,
        start_ticks        INTEGER NOT NULL,
        created_at         REAL    NOT NULL,
        kind               TEXT    NOT NULL DEFAULT '',
        command            TEXT    NOT NULL DEFAULT '',
        cwd                TEXT    NOT NULL DEFAULT '',
        originator         TEXT    NOT NULL DEFAULT '',
        containment        TEXT    NOT NULL DEFAULT '',
        registered_at      REAL    NOT NULL,
        parent_pid         INTEGER,
        parent_start_ticks INTEGER,
        state              INTEGER NOT NULL DEFAULT 1,
        last_validated_at  REAL    NOT NULL DEFAULT 0,
        dead_since         REAL
    );
    CREATE INDEX tracked_processes_originator ON tracked_processes(originator);",
    // 2: PTY and pipe sessions (records only; output lives in memory).
    "CREATE TABLE sessions (
        id          TEXT    PRIMARY KEY,
        name        TEXT    NOT NULL DEFAULT '',
        kind        TEXT    NOT NULL,
        pid         INTEGER NOT NULL,
        command     TEXT    NOT NULL,
        cwd         TEXT    NOT NULL,
        originator  TEXT    NOT NULL DEFAULT '',
        created_at  REAL    NOT NULL,
        merged      INTEGER NOT NULL DEFAULT 0,
        exited      INTEGER NOT NULL DEFAULT 0,
        exit_code   INTEGER,
        exited_at   REAL,
        outcome     TEXT
    );",
    // 3: supervised services (services/persist.rs).
    "CREATE TABLE services (
        id                INTEGER PRIMARY KEY AUTOINCREMENT,
        name              TEXT    NOT NULL UNIQUE,
        spec              TEXT    NOT NULL,
        status            TEXT    NOT NULL,
        reason            TEXT    NOT NULL DEFAULT '',
        pid               INTEGER NOT NULL DEFAULT 0,
        start_ticks       INTEGER NOT NULL DEFAULT 0,
        restart_count     INTEGER NOT NULL DEFAULT 0,
        unstable_restarts INTEGER NOT NULL DEFAULT 0,
        last_started_at   REAL    NOT NULL DEFAULT 0,
        last_exited_at    REAL    NOT NULL DEFAULT 0,
        last_exit_code    INTEGER NOT NULL DEFAULT 0,
        spool_out         TEXT    NOT NULL DEFAULT '',
        spool_out_pos     INTEGER NOT NULL DEFAULT 0,
        spool_err         TEXT    NOT NULL DEFAULT '',
        spool_err_pos     INTEGER NOT NULL DEFAULT 0
    );",
    // 4: Compose projects and their host ports (projects/persist.rs).
    "CREATE TABLE projects (
        id            TEXT    PRIMARY KEY,
        app_id        TEXT    NOT NULL,
        package_path  TEXT    NOT NULL,
        state_path    TEXT    NOT NULL,
        namespace     TEXT    NOT NULL,
        runtime       TEXT    NOT NULL,
        manifest      TEXT    NOT NULL,
        status        TEXT    NOT NULL DEFAULT 'stopped',
        detail        TEXT    NOT NULL DEFAULT '',
        autosave      INTEGER NOT NULL DEFAULT 0,
        created_at    REAL    NOT NULL,
        started_at    REAL    NOT NULL DEFAULT 0
    );
    CREATE TABLE project_ports (
        project_id     TEXT    NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
        service        TEXT    NOT NULL,
        container_port INTEGER NOT NULL,
        protocol       TEXT    NOT NULL,
        host_port      INTEGER NOT NULL,
        host_ip        TEXT    NOT NULL DEFAULT '',
        requested      INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (project_id, service, container_port, protocol)
    );",
    // 5: the node API's workspace tabs (tabs.rs, seed 004).
    "CREATE TABLE workspace_tabs (
        workspace_id   TEXT    NOT NULL,
        id             TEXT    NOT NULL,
        type           TEXT    NOT NULL,
        label          TEXT    NOT NULL,
        agent_id       TEXT,
        sort_order     INTEGER NOT NULL,
        created_at     TEXT    NOT NULL,
        acp_session_id TEXT,
        last_prompt    TEXT,
        PRIMARY KEY (workspace_id, id)
    );",
    // 6: autosave and retention per project (projects/autosave.rs,
    // issue 11); supersedes projects.autosave, which stays unused.
    "CREATE TABLE snapshot_autosave (
        project_id   TEXT    PRIMARY KEY,
        enabled      INTEGER NOT NULL,
        interval_s   INTEGER NOT NULL,
        keep_last    INTEGER NOT NULL DEFAULT 0,
        keep_hourly  INTEGER NOT NULL DEFAULT 0,
        keep_daily   INTEGER NOT NULL DEFAULT 0,
        keep_weekly  INTEGER NOT NULL DEFAULT 0,
        last_run     REAL    NOT NULL DEFAULT 0
    );",
    // 7: ACP agent sessions (agents/persist.rs, issue 15).
    "CREATE TABLE agent_sessions (
        id              TEXT PRIMARY KEY,
        workspace_id    TEXT NOT NULL,
        agent_type      TEXT NOT NULL,
        cwd             TEXT NOT NULL,
        mcp_servers     TEXT NOT NULL DEFAULT '[]',
        acp_session_id  TEXT,
        status          TEXT NOT NULL,
        transcript      TEXT NOT NULL DEFAULT '[]',
        last_prompt     TEXT,
        idempotency_key TEXT,
        created_at      TEXT NOT NULL
    );
    CREATE INDEX agent_sessions_workspace ON agent_sessions(workspace_id);",
    // 8: devcontainer workspaces (workspaces/persist.rs, seed 004).
    "CREATE TABLE workspaces (
        id               TEXT    PRIMARY KEY,
        repository       TEXT    NOT NULL,
        branch           TEXT    NOT NULL,
        status           TEXT    NOT NULL,
        step             TEXT    NOT NULL DEFAULT '',
        error            TEXT    NOT NULL DEFAULT '',
        container        TEXT    NOT NULL DEFAULT '',
        image            TEXT    NOT NULL DEFAULT '',
        remote_user      TEXT    NOT NULL DEFAULT '',
        workspace_folder TEXT    NOT NULL DEFAULT '',
        shell            TEXT    NOT NULL DEFAULT '',
        remote_env       TEXT    NOT NULL DEFAULT '{}',
        ports            TEXT    NOT NULL DEFAULT '[]',
        report           TEXT    NOT NULL DEFAULT '[]',
        populated        INTEGER NOT NULL DEFAULT 0,
        callback_token   TEXT,
        git_token        TEXT,
        compose_project  TEXT    NOT NULL DEFAULT '',
        created_at       REAL    NOT NULL,
        updated_at       REAL    NOT NULL
    );",
];

/// Applies every step newer than the database's `user_version`, each in its
/// own transaction together with the version bump.
pub(crate) fn apply(conn: &mut Connection) -> rusqlite::Result<()> {
    let current: usize =
        conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))? as usize;
    for (i, step) in STEPS.iter().enumerate().skip(current) {
        let tx = conn.transaction()?;
        tx.execute_batch(step)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}
