//! Session records in SQLite, so that after a daemon restart every old
//! session is listed honestly (its exit, or that it was lost).

use super::{ExitInfo, Kind, Outcome, Session, SessionError};
use crate::store::Store;
use berth_os::proc::now_epoch;
use rusqlite::params;

pub(super) struct Record {
    pub id: String,
    pub name: String,
    pub kind: Kind,
    pub pid: u32,
    pub command: String,
    pub cwd: String,
    pub originator: String,
    pub created_at: f64,
    pub merged: bool,
    pub exit: ExitInfo,
}

fn outcome_str(o: Outcome) -> &'static str {
    match o {
        Outcome::NaturalExit => "natural",
        Outcome::SoftExit => "soft",
        Outcome::HardKilled => "hard",
        Outcome::Lost => "lost",
    }
}

fn outcome_of(s: &str) -> Outcome {
    match s {
        "natural" => Outcome::NaturalExit,
        "soft" => Outcome::SoftExit,
        "hard" => Outcome::HardKilled,
        _ => Outcome::Lost,
    }
}

pub(super) fn insert(store: &Store, s: &Session) -> Result<(), SessionError> {
    store.write("recording a session", |tx| {
        tx.execute(
            "INSERT INTO sessions (id, name, kind, pid, command, cwd, originator, created_at, merged)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![s.id, s.name, s.kind.as_str(), s.pid, s.command, s.cwd, s.originator, s.created_at, s.merged],
        )
    })?;
    Ok(())
}

pub(super) fn update_exit(store: &Store, id: &str, e: &ExitInfo) -> Result<(), SessionError> {
    store.write("recording a session's exit", |tx| {
        tx.execute(
            "UPDATE sessions SET exited = 1, exit_code = ?2, exited_at = ?3, outcome = ?4 WHERE id = ?1",
            params![id, e.code, e.at, outcome_str(e.outcome)],
        )
    })?;
    Ok(())
}

pub(super) fn delete(store: &Store, ids: &[String]) -> Result<(), SessionError> {
    if ids.is_empty() {
        return Ok(());
    }
    store.write("purging sessions", |tx| {
        let mut st = tx.prepare_cached("DELETE FROM sessions WHERE id = ?1")?;
        for id in ids {
            st.execute([id])?;
        }
        Ok(())
    })?;
    Ok(())
}

/// Marks sessions that were live at the last stop as lost, then loads all.
pub(super) fn load_and_mark_lost(store: &Store) -> Result<Vec<Record>, SessionError> {
    let now = now_epoch();
    store.write("marking lost sessions", |tx| {
        tx.execute(
            "UPDATE sessions SET exited = 1, exit_code = -1, exited_at = ?1, outcome = 'lost' WHERE exited = 0",
            [now],
        )
    })?;
    Ok(store.read("loading sessions", |c| {
        let mut st = c.prepare(
            "SELECT id, name, kind, pid, command, cwd, originator, created_at, merged, exit_code, exited_at, outcome
             FROM sessions",
        )?;
        let rows = st.query_map([], |r| {
            Ok(Record {
                id: r.get(0)?,
                name: r.get(1)?,
                kind: if r.get::<_, String>(2)? == "pipe" { Kind::Pipe } else { Kind::Pty },
                pid: r.get(3)?,
                command: r.get(4)?,
                cwd: r.get(5)?,
                originator: r.get(6)?,
                created_at: r.get(7)?,
                merged: r.get(8)?,
                exit: ExitInfo {
                    code: r.get::<_, Option<i32>>(9)?.unwrap_or(-1),
                    at: r.get::<_, Option<f64>>(10)?.unwrap_or(now),
                    outcome: outcome_of(&r.get::<_, Option<String>>(11)?.unwrap_or_default()),
                },
            })
        })?;
        rows.collect()
    })?)
}
