//! Capturing a state tree: a walk that never follows symlinks, cutting
//! each regular file into content-defined chunks (FastCDC 2020) stored in
//! the chunk store. A file whose size, mtime and inode match the project's
//! file index is not read again: its chunk list is taken from the index,
//! so a second snapshot costs what changed, not the state's size.
//!
//! The walk (stat only) runs on the calling thread; the files to read are
//! then cut, hashed, compressed and written by a few worker threads
//! (largest first), since hashing and compression are CPU-bound. A changed
//! file the index knew is re-cut from its old chunk list ([`recut`]): only
//! its changed regions go through the chunker.
//!
//! Hard links: paths sharing one inode are read once; in the tree, the
//! first of them in path order is the file and the others are
//! [`EntryKind::Hardlink`] entries naming it, so a restore links them again.

use super::chunks::Batch;
use super::model::{ChunkRef, Entry, EntryKind, SnapshotError};
use super::recut;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

/// FastCDC bounds in bytes: chunks of 16-256 KiB, 64 KiB on average
/// (restic's are 512 KiB-8 MiB; smaller chunks find more sharing in the
/// small files of application state).
const MIN_CHUNK: u32 = 16 * 1024;
const AVG_CHUNK: u32 = 64 * 1024;
const MAX_CHUNK: u32 = 256 * 1024;

/// Files modified less than this before the save ends are not indexed.
const RACY_NS: i64 = 2_000_000_000;

/// Files up to this size are read whole and cut in memory; larger ones
/// are streamed.
const WHOLE_FILE: u64 = 64 << 20;

/// Worker threads cutting and compressing files: the machine's cores, at
/// most four (a save should not take a whole big machine).
fn workers() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 4)
}

/// What the index remembers of one file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Known {
    size: u64,
    mtime_ns: i64,
    ino: u64,
    chunks: Vec<ChunkRef>,
}

/// Where the workers' time went (nanoseconds summed over workers), for the
/// save's debug trace: reading files, finding cut points (re-cut hashing
/// or the chunker), and storing new chunks (hash, compress, write).
#[derive(Default)]
struct Spent {
    read: AtomicU64,
    cut: AtomicU64,
    store: AtomicU64,
    bytes: AtomicU64,
}

impl Spent {
    fn add(counter: &AtomicU64, since: std::time::Instant) {
        counter.fetch_add(since.elapsed().as_nanos() as u64, Ordering::Relaxed);
    }
}

/// A project's file index: path → what the last save saw.
pub(crate) type Index = HashMap<String, Known>;

/// A captured tree. Its new chunks are in the caller's batch, which
/// must be published before a record names them.
pub(crate) struct Captured {
    pub(crate) entries: Vec<Entry>,
    pub(crate) files_read: u64,
    pub(crate) index: Index,
}

/// A file the walk found changed: its entry's position and path, and
/// its chunks at the last save when the index knew it.
struct ToRead<'a> {
    entry: usize,
    path: PathBuf,
    size: u64,
    old: Option<&'a [ChunkRef]>,
}

/// The walk's state besides its output.
struct Walk<'a, 'b> {
    batch: &'a Batch<'b>,
    old: &'a Index,
    trusted: bool,
    todo: Vec<ToRead<'a>>,
    /// Paths of each multiply-linked inode met: (dev, ino) → entry
    /// positions, the first of which is read.
    links: HashMap<(u64, u64), Vec<usize>>,
}

fn mtime_ns(m: &fs::Metadata) -> i64 {
    m.mtime() * 1_000_000_000 + m.mtime_nsec()
}

/// Captures `root` (which must be a directory; a missing root is an
/// empty tree) into `batch`. `old` is the project's index from its last
/// save; with `trusted`, its chunks are known to exist (no prune since),
/// else each is looked for.
pub(crate) fn capture(
    root: &Path,
    batch: &Batch<'_>,
    old: &Index,
    trusted: bool,
) -> Result<Captured, SnapshotError> {
    let mut out = Captured {
        entries: Vec::new(),
        files_read: 0,
        index: Index::new(),
    };
    let mut w = Walk {
        batch,
        old,
        trusted,
        todo: Vec::new(),
        links: HashMap::new(),
    };
    let t0 = std::time::Instant::now();
    if root.exists() {
        walk(root, "", &mut w, &mut out)?;
    }
    let walked = t0.elapsed();
    out.files_read = w.todo.len() as u64;
    let spent = Spent::default();
    let read = read_all(w.todo, batch, trusted, &spent)?;
    let ms = |n: &AtomicU64| n.load(Ordering::Relaxed) as f64 / 1e6;
    tracing::debug!(
        walk_ms = walked.as_secs_f64() * 1000.0,
        workers_ms = (t0.elapsed() - walked).as_secs_f64() * 1000.0,
        files = out.files_read,
        bytes = spent.bytes.load(Ordering::Relaxed),
        read_ms = ms(&spent.read),
        cut_ms = ms(&spent.cut),
        store_ms = ms(&spent.store),
        "snapshot capture (worker times summed)"
    );
    for (entry, refs) in read {
        let e = &mut out.entries[entry];
        // A file that changed between the walk and the read is saved as
        // read, and left out of the index so the next save reads it again.
        let read: u64 = refs.iter().map(|c| u64::from(c.len)).sum();
        if read == e.size {
            if let Some(k) = out.index.get_mut(&e.path) {
                k.chunks = refs.clone();
            }
        } else {
            out.index.remove(&e.path);
            e.size = read;
        }
        e.chunks = refs;
    }
    // A file changed within the clock's granularity of the save could
    // change again with the same mtime (git's "racy" files): it is left
    // out of the index, so the next save reads it again.
    let start = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(i64::MAX);
    out.index.retain(|_, k| k.mtime_ns < start - RACY_NS);
    link_groups(&mut out.entries, &mut out.index, w.links.into_values());
    out.entries.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// Turns each group of paths of one inode (entry positions, the first
/// holding the bytes read) into one file, the first path in name order,
/// and [`EntryKind::Hardlink`] entries naming it. Positions are those
/// before the entries are sorted. Each path's index line gets the
/// inode's chunks (the paths not read had none).
fn link_groups(entries: &mut [Entry], index: &mut Index, groups: impl Iterator<Item = Vec<usize>>) {
    for group in groups.filter(|g| g.len() > 1) {
        let read = &entries[group[0]];
        let (chunks, size) = (read.chunks.clone(), read.size);
        let Some(&first) = group
            .iter()
            .min_by(|a, b| entries[**a].path.cmp(&entries[**b].path))
        else {
            continue;
        };
        let target = entries[first].path.clone();
        for &i in &group {
            let e = &mut entries[i];
            if let Some(k) = index.get_mut(&e.path) {
                k.chunks = chunks.clone();
            }
            if i == first {
                e.chunks = chunks.clone();
                e.size = size;
            } else {
                e.kind = EntryKind::Hardlink;
                e.target = Some(target.clone());
                e.chunks = Vec::new();
                e.size = 0;
            }
        }
    }
}

/// Reads, cuts and stores `todo` on [`workers`] threads, largest file
/// first; returns each entry's chunk list. The first error stops the
/// others.
fn read_all(
    mut todo: Vec<ToRead<'_>>,
    batch: &Batch<'_>,
    trusted: bool,
    spent: &Spent,
) -> Result<Vec<(usize, Vec<ChunkRef>)>, SnapshotError> {
    todo.sort_by_key(|f| std::cmp::Reverse(f.size));
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let done = Mutex::new(Vec::with_capacity(todo.len()));
    let failed: Mutex<Option<SnapshotError>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..workers().min(todo.len()) {
            s.spawn(|| {
                // One read buffer per worker, reused from file to file: a
                // fresh allocation per file costs page faults, zeroing
                // and unmapping (a quarter of a second save's CPU).
                let mut buf = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(f) = todo.get(i) else { break };
                    match read_file(f, batch, trusted, &mut buf, spent) {
                        Ok(refs) => done
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push((f.entry, refs)),
                        Err(e) => {
                            stop.store(true, Ordering::Relaxed);
                            failed
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .get_or_insert(e);
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = failed.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    Ok(done.into_inner().unwrap_or_else(|p| p.into_inner()))
}

fn walk<'a>(
    dir: &Path,
    rel: &str,
    w: &mut Walk<'a, '_>,
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
            owner: Some((meta.uid(), meta.gid())),
        };
        if ft.is_dir() {
            e.kind = EntryKind::Dir;
            out.entries.push(e);
            walk(&path, &relp, w, out)?;
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
            let prev = w.old.get(&relp);
            let known = prev.filter(|k| {
                k.size == e.size
                    && k.mtime_ns == e.mtime_ns
                    && k.ino == meta.ino()
                    && (w.trusted || k.chunks.iter().all(|c| w.batch.holds(&c.hash)))
            });
            // A second path of an inode already met is not read again:
            // `link_groups` gives it the bytes of the first.
            let again = if meta.nlink() > 1 {
                let paths = w.links.entry((meta.dev(), meta.ino())).or_default();
                paths.push(out.entries.len());
                paths.len() > 1
            } else {
                false
            };
            match known {
                Some(k) => e.chunks = k.chunks.clone(),
                None if again => {}
                None => w.todo.push(ToRead {
                    entry: out.entries.len(),
                    path,
                    size: e.size,
                    old: prev.map(|k| k.chunks.as_slice()),
                }),
            }
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

/// Cuts one file into chunks stored in `batch`: read whole up to
/// [`WHOLE_FILE`] (one read, cut in place, re-cut from its old chunks
/// when known), streamed beyond. `trusted`: the old chunks are stored
/// (else a reused one is looked for, and stored again when missing).
/// `buf` is the worker's read buffer.
fn read_file(
    f: &ToRead<'_>,
    batch: &Batch<'_>,
    trusted: bool,
    buf: &mut Vec<u8>,
    spent: &Spent,
) -> Result<Vec<ChunkRef>, SnapshotError> {
    let path = &f.path;
    let ioerr = |e: std::io::Error| SnapshotError::Io {
        context: format!("cannot read {}", path.display()),
        source: e,
    };
    let mut refs = Vec::new();
    if f.size <= WHOLE_FILE {
        use std::io::Read;
        let t = std::time::Instant::now();
        buf.clear();
        // The size the walk saw, and a byte more so a file that has not
        // grown since is read without growing the buffer again.
        buf.reserve(f.size as usize + 1);
        fs::File::open(path)
            .and_then(|mut file| file.read_to_end(buf))
            .map_err(ioerr)?;
        let data = buf.as_slice();
        spent.bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
        Spent::add(&spent.read, t);
        let t = std::time::Instant::now();
        let old = f.old.unwrap_or_default();
        let pieces = recut::recut(data, old, (MIN_CHUNK, AVG_CHUNK, MAX_CHUNK));
        Spent::add(&spent.cut, t);
        let t = std::time::Instant::now();
        for p in pieces {
            let bytes = &data[p.range];
            refs.push(match p.old.map(|k| &old[k]) {
                Some(c) if trusted || batch.holds(&c.hash) => c.clone(),
                _ => batch.put(bytes)?,
            });
        }
        Spent::add(&spent.store, t);
        return Ok(refs);
    }
    let f = fs::File::open(path).map_err(ioerr)?;
    let cdc = fastcdc::v2020::StreamCDC::new(
        std::io::BufReader::with_capacity(4 << 20, f),
        MIN_CHUNK,
        AVG_CHUNK,
        MAX_CHUNK,
    );
    for c in cdc {
        let c = c.map_err(|e| ioerr(std::io::Error::other(e.to_string())))?;
        refs.push(batch.put(&c.data)?);
    }
    Ok(refs)
}
