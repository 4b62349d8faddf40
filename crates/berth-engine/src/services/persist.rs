//! Service rows in SQLite: the definition (as JSON), the runtime state a
//! restarted daemon needs to re-adopt or restart it, and where its spools
//! were drained up to.

use super::logs::SpoolPos;
use super::{ServiceError, ServiceInfo, ServiceSpec, Status};
use crate::store::Store;
use rusqlite::{params, Row};

const COLUMNS: &str = "id, name, spec, status, reason, pid, start_ticks, restart_count, \
    unstable_restarts, last_started_at, last_exited_at, last_exit_code, \
    spool_out, spool_out_pos, spool_err, spool_err_pos";

fn spec_json(spec: &ServiceSpec) -> String {
    serde_json::to_string(spec).expect("a spec always serializes")
}

fn from_row(r: &Row<'_>) -> rusqlite::Result<(ServiceInfo, [SpoolPos; 2])> {
    let spec: String = r.get(2)?;
    let spec: ServiceSpec = serde_json::from_str(&spec).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Text, Box::new(e))
    })?;
    let status: String = r.get(3)?;
    let info = ServiceInfo {
        id: r.get(0)?,
        spec,
        status: Status::parse(&status).unwrap_or(Status::Stopped),
        reason: r.get(4)?,
        pid: r.get(5)?,
        start_ticks: r.get::<_, i64>(6)? as u64,
        restart_count: r.get(7)?,
        unstable_restarts: r.get(8)?,
        last_started_at: r.get(9)?,
        last_exited_at: r.get(10)?,
        last_exit_code: r.get(11)?,
    };
    let spools = [
        SpoolPos {
            path: r.get(12)?,
            pos: r.get::<_, i64>(13)? as u64,
        },
        SpoolPos {
            path: r.get(14)?,
            pos: r.get::<_, i64>(15)? as u64,
        },
    ];
    Ok((info, spools))
}

/// Every service, by id.
pub(crate) fn load_all(store: &Store) -> Result<Vec<(ServiceInfo, [SpoolPos; 2])>, ServiceError> {
    Ok(store.read("loading services", |c| {
        let mut st = c.prepare(&format!("SELECT {COLUMNS} FROM services ORDER BY id"))?;
        let rows = st.query_map([], from_row)?;
        rows.collect()
    })?)
}

/// Adds a new, stopped service and returns its id.
pub(crate) fn insert(store: &Store, spec: &ServiceSpec) -> Result<u32, ServiceError> {
    let json = spec_json(spec);
    let name = spec.name.clone();
    store
        .write("adding a service", |tx| {
            tx.execute(
                "INSERT INTO services (name, spec, status) VALUES (?1, ?2, 'stopped')",
                params![name, json],
            )?;
            Ok(tx.last_insert_rowid() as u32)
        })
        .map_err(|e| match e {
            crate::store::StoreError::Sqlite {
                source: rusqlite::Error::SqliteFailure(f, _),
                ..
            } if f.code == rusqlite::ErrorCode::ConstraintViolation => {
                ServiceError::invalid("name", format!("{name:?} is already taken"))
            }
            other => other.into(),
        })
}

/// Writes a service's definition and runtime state.
pub(crate) fn save(store: &Store, info: &ServiceInfo) -> Result<(), ServiceError> {
    let json = spec_json(&info.spec);
    store.write("saving a service", |tx| {
        tx.execute(
            "UPDATE services SET spec = ?2, status = ?3, reason = ?4, pid = ?5, start_ticks = ?6,
               restart_count = ?7, unstable_restarts = ?8, last_started_at = ?9,
               last_exited_at = ?10, last_exit_code = ?11
             WHERE id = ?1",
            params![
                info.id,
                json,
                info.status.as_str(),
                info.reason,
                info.pid,
                info.start_ticks as i64,
                info.restart_count,
                info.unstable_restarts,
                info.last_started_at,
                info.last_exited_at,
                info.last_exit_code
            ],
        )
    })?;
    Ok(())
}

/// Records how far each listed service's spools were drained.
pub(crate) fn save_spools(
    store: &Store,
    rows: &[(u32, [SpoolPos; 2])],
) -> Result<(), ServiceError> {
    if rows.is_empty() {
        return Ok(());
    }
    store.write("saving log positions", |tx| {
        let mut st = tx.prepare_cached(
            "UPDATE services SET spool_out = ?2, spool_out_pos = ?3, spool_err = ?4, spool_err_pos = ?5
             WHERE id = ?1",
        )?;
        for (id, [o, e]) in rows {
            st.execute(params![id, o.path, o.pos as i64, e.path, e.pos as i64])?;
        }
        Ok(())
    })?;
    Ok(())
}

/// Removes a service.
pub(crate) fn delete(store: &Store, id: u32) -> Result<(), ServiceError> {
    store.write("deleting a service", |tx| {
        tx.execute("DELETE FROM services WHERE id = ?1", [id])
    })?;
    Ok(())
}
