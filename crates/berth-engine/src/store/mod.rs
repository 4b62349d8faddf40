//! The one SQLite file that holds everything berth must not forget.
//!
//! WAL mode with `synchronous=NORMAL`: a committed transaction survives a
//! crash of the daemon (including `kill -9`); only an OS crash may lose the
//! last few commits. Schema changes are numbered migrations applied in order
//! at open, tracked by `PRAGMA user_version`.

mod migrations;
pub mod reserve;

use reserve::Reserve;
use rusqlite::{Connection, ErrorCode};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// A failure of the store, with the operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite reported an error.
    #[error("database error while {op}: {source}")]
    Sqlite {
        /// What berth was doing.
        op: &'static str,
        /// The underlying error.
        source: rusqlite::Error,
    },
    /// The file system refused to create the state directory.
    #[error("cannot prepare state directory {path}: {source}")]
    Dir {
        /// The directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// Shared handle to the database; cheap to lock, used from every engine.
pub struct Store {
    conn: Mutex<Connection>,
    path: PathBuf,
    reserve: Reserve,
}

impl Store {
    /// Opens (creating if needed) the database at `path`, applies pending
    /// migrations, and arms an emergency reserve of `reserve_bytes` beside it.
    pub fn open(path: &Path, reserve_bytes: u64) -> Result<Self, StoreError> {
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Dir {
            path: dir.to_path_buf(),
            source,
        })?;
        let reserve = Reserve::arm(&dir.join(".berth-emergency-reserve"), reserve_bytes);
        let sql = |op| move |source| StoreError::Sqlite { op, source };
        let mut conn = Connection::open(path).map_err(sql("opening the database"))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(sql("setting busy timeout"))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(sql("enabling WAL"))?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(sql("setting synchronous"))?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(sql("enabling foreign keys"))?;
        migrations::apply(&mut conn).map_err(sql("migrating the schema"))?;
        Ok(Self {
            conn: Mutex::new(conn),
            path: path.to_path_buf(),
            reserve,
        })
    }

    /// Path of the database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The emergency reserve that is released when the disk fills.
    pub fn reserve(&self) -> &Reserve {
        &self.reserve
    }

    /// Runs a read (or a write that needs no disk-full handling).
    pub fn read<T>(
        &self,
        op: &'static str,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        f(&self.lock()).map_err(|source| StoreError::Sqlite { op, source })
    }

    /// Runs `f` inside a transaction. If the disk is full, the emergency
    /// reserve is released and the transaction tried once more, so the
    /// write that matters most (recording state) still lands.
    pub fn write<T>(
        &self,
        op: &'static str,
        f: impl Fn(&rusqlite::Transaction<'_>) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let mut conn = self.lock();
        let attempt = |conn: &mut Connection| -> rusqlite::Result<T> {
            let tx = conn.transaction()?;
            let out = f(&tx)?;
            tx.commit()?;
            Ok(out)
        };
        match attempt(&mut conn) {
            Err(e) if is_disk_full(&e) && self.reserve.release() => {
                tracing::warn!("disk full while {op}: released the emergency reserve and retrying");
                attempt(&mut conn).map_err(|source| StoreError::Sqlite { op, source })
            }
            other => other.map_err(|source| StoreError::Sqlite { op, source }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (the
        // transaction rolls back on drop), so poisoning is not fatal.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// True for SQLite's disk-full error and for I/O errors caused by ENOSPC.
pub fn is_disk_full(e: &rusqlite::Error) -> bool {
    match e {
        rusqlite::Error::SqliteFailure(f, _) => {
            f.code == ErrorCode::DiskFull
                || (f.code == ErrorCode::SystemIoFailure && f.extended_code == libc::ENOSPC)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_idempotent_and_wal_is_on() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("berth.db");
        let s = Store::open(&p, 0).unwrap();
        let mode: String = s
            .read("q", |c| {
                c.query_row("PRAGMA journal_mode", [], |r| r.get(0))
            })
            .unwrap();
        assert_eq!(mode.to_lowercase(), "wal");
        let v1: i64 = s
            .read("q", |c| {
                c.query_row("PRAGMA user_version", [], |r| r.get(0))
            })
            .unwrap();
        drop(s);
        let s = Store::open(&p, 0).unwrap();
        let v2: i64 = s
            .read("q", |c| {
                c.query_row("PRAGMA user_version", [], |r| r.get(0))
            })
            .unwrap();
        assert_eq!(v1, v2);
        assert!(v1 >= 1);
    }
}
