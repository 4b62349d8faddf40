//! Project rows and their host ports in SQLite (migration 4).
//!
//! `project_ports.requested` is 0 for a port the allocator chose, 1 for a
//! host port the Compose file asks for, and 2 ([`MOVED`]) for a port the
//! file asks for that this project does not use: a duplicate (issue 11)
//! gets a fresh host port instead, so it runs beside its source; the
//! allocator then keeps that port as it keeps any port it chose.

use super::model::{PortMapping, ProjectError, ProjectState, Protocol, RuntimeKind};
use crate::store::Store;
use rusqlite::{params, OptionalExtension, Row};
use std::path::PathBuf;

/// A registered project.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct ProjectRow {
    /// Its id.
    pub id: String,
    /// From the manifest.
    pub app_id: String,
    /// The project directory.
    pub package_path: PathBuf,
    /// Its state directory.
    pub state_path: PathBuf,
    /// Prefix of its runtime resources.
    pub namespace: String,
    /// Which runtime runs it.
    pub runtime: RuntimeKind,
    /// The manifest, as JSON.
    pub manifest: String,
    /// Where it is, as last recorded.
    pub status: ProjectState,
    /// Why (the last failure), or "".
    pub detail: String,
    /// Autosave snapshots on.
    pub autosave: bool,
    /// When it was registered.
    pub created_at: f64,
    /// When it last started.
    pub started_at: f64,
}

fn internal(e: impl std::fmt::Display) -> ProjectError {
    ProjectError::Internal(format!("project store: {e}"))
}

fn row(r: &Row<'_>) -> rusqlite::Result<ProjectRow> {
    let runtime: String = r.get("runtime")?;
    let status: String = r.get("status")?;
    Ok(ProjectRow {
        id: r.get("id")?,
        app_id: r.get("app_id")?,
        package_path: PathBuf::from(r.get::<_, String>("package_path")?),
        state_path: PathBuf::from(r.get::<_, String>("state_path")?),
        namespace: r.get("namespace")?,
        runtime: RuntimeKind::parse(&runtime).unwrap_or(RuntimeKind::Native),
        manifest: r.get("manifest")?,
        status: ProjectState::parse(&status).unwrap_or(ProjectState::Stopped),
        detail: r.get("detail")?,
        autosave: r.get::<_, i64>("autosave")? != 0,
        created_at: r.get("created_at")?,
        started_at: r.get("started_at")?,
    })
}

/// The project `id`.
pub(super) fn get(store: &Store, id: &str) -> Result<Option<ProjectRow>, ProjectError> {
    store
        .read("reading a project", |c| {
            c.query_row("SELECT * FROM projects WHERE id = ?1", [id], row)
                .optional()
        })
        .map_err(internal)
}

/// Every project, by id.
pub(super) fn all(store: &Store) -> Result<Vec<ProjectRow>, ProjectError> {
    store
        .read("listing projects", |c| {
            let mut st = c.prepare("SELECT * FROM projects ORDER BY id")?;
            let rows = st.query_map([], row)?.collect::<rusqlite::Result<Vec<_>>>();
            rows
        })
        .map_err(internal)
}

/// Inserts or replaces `p`.
pub(super) fn put(store: &Store, p: &ProjectRow) -> Result<(), ProjectError> {
    store
        .write("saving a project", |tx| put_tx(tx, p))
        .map(|_| ())
        .map_err(internal)
}

/// Registers `p` with its host ports in one transaction (a duplicate:
/// never registered without the ports it moved).
pub(super) fn put_with_ports(
    store: &Store,
    p: &ProjectRow,
    ports: &[PortMapping],
    moved: &[PortKey],
) -> Result<(), ProjectError> {
    store
        .write("registering a project", |tx| {
            put_tx(tx, p)?;
            ports_tx(tx, &p.id, ports, moved)
        })
        .map_err(internal)
}

fn put_tx(tx: &rusqlite::Transaction<'_>, p: &ProjectRow) -> rusqlite::Result<usize> {
    tx.execute(
        "INSERT INTO projects (id, app_id, package_path, state_path, namespace, runtime,
            manifest, status, detail, autosave, created_at, started_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
         ON CONFLICT(id) DO UPDATE SET app_id = ?2, package_path = ?3, state_path = ?4,
            namespace = ?5, runtime = ?6, manifest = ?7, status = ?8, detail = ?9,
            autosave = ?10, started_at = ?12",
        params![
            p.id,
            p.app_id,
            p.package_path.to_string_lossy(),
            p.state_path.to_string_lossy(),
            p.namespace,
            p.runtime.as_str(),
            p.manifest,
            p.status.as_str(),
            p.detail,
            p.autosave as i64,
            p.created_at,
            p.started_at,
        ],
    )
}

/// Removes project `id` and its ports (`berth project forget`).
pub(super) fn delete(store: &Store, id: &str) -> Result<(), ProjectError> {
    store
        .write("forgetting a project", |tx| {
            tx.execute("DELETE FROM project_ports WHERE project_id = ?1", [id])?;
            tx.execute("DELETE FROM projects WHERE id = ?1", [id])
        })
        .map(|_| ())
        .map_err(internal)
}

/// Records where project `id` is.
pub(super) fn set_status(
    store: &Store,
    id: &str,
    status: ProjectState,
    detail: &str,
    started_at: Option<f64>,
) -> Result<(), ProjectError> {
    store
        .write("saving a project's status", |tx| {
            tx.execute(
                "UPDATE projects SET status = ?2, detail = ?3,
                    started_at = COALESCE(?4, started_at) WHERE id = ?1",
                params![id, status.as_str(), detail, started_at],
            )
        })
        .map(|_| ())
        .map_err(internal)
}

/// `requested` of a port the file asks for that this project moved.
const MOVED: i64 = 2;

/// A port's identity in a project: (service, container port, protocol).
pub(super) type PortKey = (String, u16, Protocol);

/// The key of `p`.
pub(super) fn port_key(p: &PortMapping) -> PortKey {
    (p.service.clone(), p.container_port, p.protocol)
}

fn port_row(r: &Row<'_>) -> rusqlite::Result<PortMapping> {
    let proto: String = r.get("protocol")?;
    Ok(PortMapping {
        service: r.get("service")?,
        container_port: r.get::<_, i64>("container_port")? as u16,
        host_port: r.get::<_, i64>("host_port")? as u16,
        protocol: Protocol::parse(&proto).unwrap_or(Protocol::Tcp),
        host_ip: r.get("host_ip")?,
        requested: r.get::<_, i64>("requested")? == 1,
    })
}

/// The host ports of project `id`.
pub(super) fn ports(store: &Store, id: &str) -> Result<Vec<PortMapping>, ProjectError> {
    store
        .read("reading project ports", |c| {
            let mut st = c.prepare(
                "SELECT * FROM project_ports WHERE project_id = ?1
                 ORDER BY service, container_port, protocol",
            )?;
            let rows = st
                .query_map([id], port_row)?
                .collect::<rusqlite::Result<Vec<_>>>();
            rows
        })
        .map_err(internal)
}

/// The ports of project `id` whose requested host port it does not use
/// (a duplicate's, see the module docs).
pub(super) fn moved_ports(store: &Store, id: &str) -> Result<Vec<PortKey>, ProjectError> {
    store
        .read("reading project ports", |c| {
            let mut st =
                c.prepare("SELECT * FROM project_ports WHERE project_id = ?1 AND requested = ?2")?;
            let rows = st
                .query_map(params![id, MOVED], |r| port_row(r).map(|p| port_key(&p)))?
                .collect::<rusqlite::Result<Vec<_>>>();
            rows
        })
        .map_err(internal)
}

/// Every host port held by a project other than `except`, with its owner.
pub(super) fn ports_of_others(
    store: &Store,
    except: &str,
) -> Result<Vec<(String, PortMapping)>, ProjectError> {
    store
        .read("reading project ports", |c| {
            let mut st = c.prepare("SELECT * FROM project_ports WHERE project_id != ?1")?;
            let rows = st
                .query_map([except], |r| Ok((r.get("project_id")?, port_row(r)?)))?
                .collect::<rusqlite::Result<Vec<_>>>();
            rows
        })
        .map_err(internal)
}

/// Replaces the host ports of project `id`, in one transaction; those
/// whose key is in `moved` are recorded as moved.
pub(super) fn set_ports(
    store: &Store,
    id: &str,
    ports: &[PortMapping],
    moved: &[PortKey],
) -> Result<(), ProjectError> {
    store
        .write("saving project ports", |tx| ports_tx(tx, id, ports, moved))
        .map_err(internal)
}

fn ports_tx(
    tx: &rusqlite::Transaction<'_>,
    id: &str,
    ports: &[PortMapping],
    moved: &[PortKey],
) -> rusqlite::Result<()> {
    tx.execute("DELETE FROM project_ports WHERE project_id = ?1", [id])?;
    for p in ports {
        tx.execute(
            "INSERT INTO project_ports (project_id, service, container_port, protocol,
                host_port, host_ip, requested) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                id,
                p.service,
                p.container_port,
                p.protocol.as_str(),
                p.host_port,
                p.host_ip,
                if moved.contains(&port_key(p)) {
                    MOVED
                } else {
                    p.requested as i64
                },
            ],
        )?;
    }
    Ok(())
}
