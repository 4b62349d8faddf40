//! Capturing a state tree: a walk that never follows symlinks, cutting
//! each regular file into content-defined chunks (FastCDC 2020) stored in
//! the chunk store. A file whose size, mtime and inode match the project's
//! file index is not read again: its chunk list is taken from the index,
//! so a second snapshot costs what changed, not the state's size.

use super::chunks::Chunks;
use super::model::{ChunkRef, Entry, EntryKind, SnapshotError};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// FastCDC bounds in bytes: chunks of 16-256 KiB, 64 KiB on average
/// (restic's are 512 KiB-8 MiB; smaller chunks find more sharing in the
/// small files of application state).
const MIN_CHUNK: u32 = 16 * 1024;
const AVG_CHUNK: u32 = 64 * 1024;
const MAX_CHUNK: u32 = 256 * 1024;

/// Files modified less than this before the save ends are not indexed.
const RACY_NS: i64 = 2_000_000_000;

/// What the index remembers of one file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Known {
    size: u64,
    mtime_ns: i64,
    ino: u64,
    chunks: Vec<ChunkRef>,
}

/// A project's file index: path → what the last save saw.
pub(crate) type Index = HashMap<String, Known>;

/// A captured tree.
pub(crate) struct Captured {
    pub(crate) entries: Vec<Entry>,
    pub(crate) added_bytes: u64,
    pub(crate) files_read: u64,
    pub(crate) fresh: Vec<PathBuf>,
    pub(crate) index: Index,
}

fn mtime_ns(m: &fs::Metadata) -> i64 {
    m.mtime() * 1_000_000_000 + m.mtime_nsec()
}

/// Captures `root` (which must be a directory; a missing root is an
/// empty tree). `old` is the project's index from its last save.
pub(crate) fn capture(
    root: &Path,
    chunks: &Chunks,
    old: &Index,
) -> Result<Captured, SnapshotError> {
    let mut out = Captured {
        entries: Vec::new(),
        added_bytes: 0,
        files_read: 0,
        fresh: Vec::new(),
        index: Index::new(),
    };
    if root.exists() {
        walk(root, "", chunks, old, &mut out)?;
    }
    // A file changed within the clock's granularity of the save could
    // change again with the same mtime (git's "racy" files): it is left
    // out of the index, so the next save reads it again.
    let start = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(i64::MAX);
    out.index.retain(|_, k| k.mtime_ns < start - RACY_NS);
    out.entries.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

fn walk(
    dir: &Path,
    rel: &str,
    chunks: &Chunks,
    old: &Index,
    out: &mut Captured,
) -> Result<(), SnapshotError> {
    let rd =
        fs::read_dir(dir).map_err(SnapshotError::io(format!("cannot list {}", dir.display())))?;
    for item in rd {
        let item = item.map_err(SnapshotError::io(format!("cannot list {}", dir.display())))?;
        let path = item.path();
        let name = item.file_name();
        let Some(name) = name.to_str() else {
            return Err(SnapshotError::Unsupported(format!(
                "{} has a name that is not UTF-8",
                path.display()
            )));
        };
        let relp = if rel.is_empty() {
            name.to_owned()
        } else {
            format!("{rel}/{name}")
        };
        let meta = fs::symlink_metadata(&path)
            .map_err(SnapshotError::io(format!("cannot stat {}", path.display())))?;
        let ft = meta.file_type();
        let mut e = Entry {
            path: relp.clone(),
            kind: EntryKind::File,
            mode: meta.mode() & 0o7777,
            size: 0,
            mtime_ns: mtime_ns(&meta),
            target: None,
            chunks: Vec::new(),
        };
        if ft.is_dir() {
            e.kind = EntryKind::Dir;
            out.entries.push(e);
            walk(&path, &relp, chunks, old, out)?;
        } else if ft.is_symlink() {
            let t = fs::read_link(&path).map_err(SnapshotError::io(format!(
                "cannot read link {}",
                path.display()
            )))?;
            let Some(t) = t.to_str() else {
                return Err(SnapshotError::Unsupported(format!(
                    "symlink {} has a target that is not UTF-8",
                    path.display()
                )));
            };
            e.kind = EntryKind::Symlink;
            e.target = Some(t.to_owned());
            out.entries.push(e);
        } else if ft.is_file() {
            e.size = meta.len();
            let known = old.get(&relp).filter(|k| {
                k.size == e.size
                    && k.mtime_ns == e.mtime_ns
                    && k.ino == meta.ino()
                    && k.chunks.iter().all(|c| chunks.path(&c.hash).exists())
            });
            e.chunks = match known {
                Some(k) => k.chunks.clone(),
                None => {
                    out.files_read += 1;
                    read_file(&path, chunks, out)?
                }
            };
            out.index.insert(
                relp,
                Known {
                    size: e.size,
                    mtime_ns: e.mtime_ns,
                    ino: meta.ino(),
                    chunks: e.chunks.clone(),
                },
            );
            out.entries.push(e);
        } else {
            // FIFOs, sockets and devices are made by the running app, not
            // data: they are left out (and said so).
            tracing::info!(path = %path.display(), "snapshot skips a special file");
        }
    }
    Ok(())
}

fn read_file(
    path: &Path,
    chunks: &Chunks,
    out: &mut Captured,
) -> Result<Vec<ChunkRef>, SnapshotError> {
    let f = fs::File::open(path)
        .map_err(SnapshotError::io(format!("cannot open {}", path.display())))?;
    let cdc = fastcdc::v2020::StreamCDC::new(
        std::io::BufReader::with_capacity(1 << 20, f),
        MIN_CHUNK,
        AVG_CHUNK,
        MAX_CHUNK,
    );
    let mut refs = Vec::new();
    for c in cdc {
        let c = c.map_err(|e| SnapshotError::Io {
            context: format!("cannot read {}", path.display()),
            source: std::io::Error::other(e.to_string()),
        })?;
        let (r, added) = chunks.put(&c.data, &mut out.fresh)?;
        out.added_bytes += added;
        refs.push(r);
    }
    Ok(refs)
}
