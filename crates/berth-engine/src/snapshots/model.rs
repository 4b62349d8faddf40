//! The shapes of the snapshot store: file entries, snapshot records and
//! the store's errors (issue 11; seed 000 methods 9-11).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What a tree entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    /// A directory.
    Dir,
    /// A regular file (its bytes are in `chunks`).
    File,
    /// A symbolic link (its target is in `target`).
    Symlink,
    /// Another name of a regular file (a hard link): `target` is the
    /// path of the file entry holding the bytes, which comes before it in
    /// path order; restored with `link(2)`.
    Hardlink,
}

/// One piece of a file: the BLAKE3 hash (64 hex) naming a stored chunk
/// and its uncompressed length in bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkRef {
    /// BLAKE3 of the chunk's bytes, lower-case hex.
    pub hash: String,
    /// Its length in bytes.
    pub len: u32,
}

/// One file, directory or symlink of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Relative to the state path, `/`-separated, never `..` or absolute.
    pub path: String,
    /// Its kind.
    pub kind: EntryKind,
    /// Permission bits (`st_mode & 0o7777`).
    pub mode: u32,
    /// Bytes (files; 0 otherwise).
    pub size: u64,
    /// Modification time, nanoseconds since the Unix epoch.
    pub mtime_ns: i64,
    /// The link target (symlinks), or the linked file's path (hard links).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The file's bytes in order (files only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chunks: Vec<ChunkRef>,
    /// Owner and group ids (`None` in records made before they were
    /// kept). Restored when the restoring user may set them (root, or
    /// the same ids); not part of the digest, which must not depend on
    /// the machine's users.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<(u32, u32)>,
}

/// Who a snapshot belongs to and why it was taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct SnapshotMeta {
    /// The project it was taken of.
    pub project_id: String,
    /// The project's app id (manifest).
    pub app_id: String,
    /// The app's version when taken (manifest).
    pub app_version: String,
    /// "manual", "autosave", "before-upgrade" or "before-restore".
    pub reason: String,
    /// Free labels given by the caller.
    pub labels: BTreeMap<String, String>,
    /// The project's previous snapshot ("" for the first).
    pub parent_snapshot_id: String,
}

/// A stored snapshot without its entries (ListSnapshots' line).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotInfo {
    /// The id: `<unix ms, 13 digits>-<8 hex>`, so ids sort by time.
    pub snapshot_id: String,
    /// When it was taken, seconds since the Unix epoch.
    pub timestamp: f64,
    /// The Merkle root of its tree (64 hex BLAKE3): the same tree gives
    /// the same digest on any machine (mtimes are not part of it).
    pub state_digest: String,
    /// Bytes of the files it holds (their logical sizes).
    pub size_bytes: u64,
    /// Compressed bytes this snapshot added to the store (new chunks).
    pub added_bytes: u64,
    /// Files read by the save (the others were unchanged by the index;
    /// a frozen save counts both of its passes).
    pub files_read: u64,
    /// Milliseconds the project's services were frozen while the save
    /// captured what changed (0 when nothing was frozen).
    #[serde(default)]
    pub paused_ms: u64,
    /// Files, directories and symlinks in it.
    pub entry_count: u64,
    /// Whom it belongs to and why.
    pub meta: SnapshotMeta,
}

/// A snapshot record as stored: its info and its tree.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Record {
    pub(crate) info: SnapshotInfo,
    pub(crate) entries: Vec<Entry>,
}

/// What the snapshot store refuses or fails with.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// No snapshot has that id (for that project).
    #[error("{0}")]
    NotFound(String),
    /// The state tree holds something a snapshot cannot carry (a name
    /// that is not UTF-8); says which.
    #[error("{0}")]
    Unsupported(String),
    /// The store's files could not be read or written.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, naming the path.
        context: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A stored chunk or record is damaged.
    #[error("{0}")]
    Corrupt(String),
    /// The services writing the state could not be frozen for the save.
    #[error("cannot freeze the project's services: {0}")]
    Frozen(String),
}

impl SnapshotError {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> SnapshotError {
        let context = context.into();
        move |source| SnapshotError::Io { context, source }
    }
}
