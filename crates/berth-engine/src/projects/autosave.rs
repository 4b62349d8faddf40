//! Autosave settings per project in SQLite (migration 6; issue 11):
//! whether it is on, how often, the retention applied to autosave
//! snapshots, and when it last ran. Off by default (no row).

use super::model::ProjectError;
use crate::snapshots::Retention;
use crate::store::Store;
use rusqlite::{params, OptionalExtension, Row};
use std::time::Duration;

/// The shortest autosave interval accepted: a save costs what changed,
/// but it pauses the project's services.
pub const MIN_INTERVAL: Duration = Duration::from_secs(60);

/// The longest autosave interval accepted (365 days): a longer one is a
/// typing mistake (or an overflow), not a schedule; turn autosave off
/// instead.
pub const MAX_INTERVAL: Duration = Duration::from_secs(365 * 24 * 3600);

/// Checks an autosave interval against [`MIN_INTERVAL`] and
/// [`MAX_INTERVAL`]; the error names the interval and the bound.
pub fn check_interval(interval: Duration) -> Result<(), String> {
    if interval < MIN_INTERVAL {
        return Err(format!(
            "an autosave interval of {} s is too short; the shortest is {} s (1 minute)",
            interval.as_secs(),
            MIN_INTERVAL.as_secs()
        ));
    }
    if interval > MAX_INTERVAL {
        return Err(format!(
            "an autosave interval of {} s is too long; the longest is {} s (365 days)",
            interval.as_secs(),
            MAX_INTERVAL.as_secs()
        ));
    }
    Ok(())
}

/// A project's autosave settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Autosave {
    /// Whether autosave snapshots are taken.
    pub enabled: bool,
    /// Time between two autosaves of a running project.
    pub interval: Duration,
    /// What `berth snapshot prune ID` and each autosave keep of the
    /// project's autosave snapshots.
    pub retention: Retention,
    /// When the last autosave ran (seconds since the epoch; 0 = never).
    pub last_run: f64,
}

fn internal(e: crate::store::StoreError) -> ProjectError {
    ProjectError::Internal(e.to_string())
}

fn row(r: &Row<'_>) -> rusqlite::Result<(String, Autosave)> {
    let n = |k: &str| -> rusqlite::Result<u32> {
        Ok(r.get::<_, i64>(k)?.clamp(0, u32::MAX as i64) as u32)
    };
    Ok((
        r.get("project_id")?,
        Autosave {
            enabled: r.get::<_, i64>("enabled")? != 0,
            interval: Duration::from_secs(r.get::<_, i64>("interval_s")?.max(0) as u64),
            retention: Retention {
                keep_last: n("keep_last")?,
                keep_hourly: n("keep_hourly")?,
                keep_daily: n("keep_daily")?,
                keep_weekly: n("keep_weekly")?,
            },
            last_run: r.get("last_run")?,
        },
    ))
}

/// Project `id`'s settings (`None`: never set, so off).
pub(super) fn get(store: &Store, id: &str) -> Result<Option<Autosave>, ProjectError> {
    store
        .read("reading autosave settings", |c| {
            c.query_row(
                "SELECT * FROM snapshot_autosave WHERE project_id = ?1",
                [id],
                row,
            )
            .optional()
        })
        .map(|o| o.map(|(_, a)| a))
        .map_err(internal)
}

/// Every project with autosave on.
pub(super) fn enabled(store: &Store) -> Result<Vec<(String, Autosave)>, ProjectError> {
    store
        .read("listing autosave settings", |c| {
            let mut st =
                c.prepare("SELECT * FROM snapshot_autosave WHERE enabled = 1 ORDER BY project_id")?;
            let rows = st.query_map([], row)?.collect::<rusqlite::Result<Vec<_>>>();
            rows
        })
        .map_err(internal)
}

/// Stores project `id`'s settings (keeping `last_run`).
pub(super) fn put(store: &Store, id: &str, a: &Autosave) -> Result<(), ProjectError> {
    store
        .write("saving autosave settings", |tx| {
            tx.execute(
                "INSERT INTO snapshot_autosave (project_id, enabled, interval_s, keep_last,
                    keep_hourly, keep_daily, keep_weekly, last_run)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT(project_id) DO UPDATE SET enabled = ?2, interval_s = ?3,
                    keep_last = ?4, keep_hourly = ?5, keep_daily = ?6, keep_weekly = ?7",
                params![
                    id,
                    a.enabled as i64,
                    a.interval.as_secs() as i64,
                    a.retention.keep_last,
                    a.retention.keep_hourly,
                    a.retention.keep_daily,
                    a.retention.keep_weekly,
                    a.last_run,
                ],
            )
        })
        .map(|_| ())
        .map_err(internal)
}

/// Records that project `id`'s autosave ran at `at`.
pub(super) fn mark_run(store: &Store, id: &str, at: f64) -> Result<(), ProjectError> {
    store
        .write("recording an autosave", |tx| {
            tx.execute(
                "UPDATE snapshot_autosave SET last_run = ?2 WHERE project_id = ?1",
                params![id, at],
            )
        })
        .map(|_| ())
        .map_err(internal)
}

/// Forgets project `id`'s settings (the project is forgotten).
pub(super) fn delete(store: &Store, id: &str) -> Result<(), ProjectError> {
    store
        .write("forgetting autosave settings", |tx| {
            tx.execute("DELETE FROM snapshot_autosave WHERE project_id = ?1", [id])
        })
        .map(|_| ())
        .map_err(internal)
}
