//! The chunk store: each chunk is a file `chunks/<2 hex>/<64 hex>` named
//! by the BLAKE3 of its bytes and holding them zstd-compressed. Writing
//! a chunk that exists is a no-op (deduplication across snapshots and
//! projects). A save's new chunks are a [`Batch`]: written to temporary
//! files, made durable with one `syncfs` and only then renamed into
//! place, so a chunk file under its name is always whole and on disk,
//! even after a crash (a later save trusts a chunk that exists).

use super::model::{ChunkRef, SnapshotError};
use std::collections::HashSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// zstd level: 1 is zstd's fastest; on application state it compresses
/// within a few percent of level 3 at about twice the speed, and a save
/// runs while the project's services may be paused.
const ZSTD_LEVEL: i32 = 1;

static TMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// The chunk directory of a store.
pub(crate) struct Chunks {
    dir: PathBuf,
    tmp: PathBuf,
}

/// A unique temporary name under `tmp`.
pub(crate) fn tmp_name(tmp: &Path, what: &str) -> PathBuf {
    let n = TMP_SEQ.fetch_add(1, Ordering::Relaxed);
    tmp.join(format!("{what}-{}-{n}", std::process::id()))
}

/// The new chunks of one save, shared by its worker threads. Dropped
/// without [`Batch::publish`], it removes its temporary files.
pub(crate) struct Batch<'a> {
    chunks: &'a Chunks,
    /// Hashes this batch already holds (two files with the same chunk).
    seen: Mutex<HashSet<[u8; 32]>>,
    /// (temporary file, final path) of each new chunk.
    pending: Mutex<Vec<(PathBuf, PathBuf)>>,
    /// Compressed bytes of the new chunks.
    added: AtomicU64,
}

impl Batch<'_> {
    /// Stores `data` unless a chunk of that hash exists or this batch
    /// has it; returns its reference.
    pub(crate) fn put(&self, data: &[u8]) -> Result<ChunkRef, SnapshotError> {
        let hash = blake3::hash(data);
        let hex = hash.to_hex().to_string();
        let r = ChunkRef {
            hash: hex.clone(),
            len: data.len() as u32,
        };
        let path = self.chunks.path(&hex);
        if path.exists() {
            return Ok(r);
        }
        if !self
            .seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(*hash.as_bytes())
        {
            return Ok(r);
        }
        let packed = zstd::bulk::compress(data, ZSTD_LEVEL)
            .map_err(SnapshotError::io(format!("cannot compress chunk {hex}")))?;
        let tmp = tmp_name(&self.chunks.tmp, "chunk");
        let write = || -> std::io::Result<()> { fs::File::create(&tmp)?.write_all(&packed) };
        if let Err(e) = write() {
            let _ = fs::remove_file(&tmp);
            return Err(SnapshotError::Io {
                context: format!("cannot write chunk {}", tmp.display()),
                source: e,
            });
        }
        self.added.fetch_add(packed.len() as u64, Ordering::Relaxed);
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((tmp, path));
        Ok(r)
    }

    /// Whether chunk `hash` (64 hex) is stored or held by this batch.
    pub(crate) fn holds(&self, hash: &str) -> bool {
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return false;
        }
        if self.chunks.path(hash).exists() {
            return true;
        }
        blake3::Hash::from_hex(hash).is_ok_and(|h| {
            self.seen
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains(h.as_bytes())
        })
    }

    /// Compressed bytes of the chunks this batch added.
    pub(crate) fn added_bytes(&self) -> u64 {
        self.added.load(Ordering::Relaxed)
    }

    /// Makes the new chunks durable, then renames them into place and
    /// makes the renames durable: after it returns, a record naming them
    /// may be written. One `syncfs` each way instead of an fsync per
    /// chunk (a save of 1 GiB makes ~16 000 chunks).
    pub(crate) fn publish(self) -> Result<(), SnapshotError> {
        let pending = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()));
        if pending.is_empty() {
            return Ok(());
        }
        let sync = |what: &str| {
            berth_os::fsutil::sync_filesystem(&self.chunks.dir).map_err(SnapshotError::io(format!(
                "cannot sync {} ({what})",
                self.chunks.dir.display()
            )))
        };
        sync("new chunks")?;
        let mut made = HashSet::new();
        let mut result = Ok(());
        for (tmp, path) in &pending {
            let mut step = || -> std::io::Result<()> {
                if let Some(parent) = path.parent() {
                    if !made.contains(parent) {
                        fs::create_dir_all(parent)?;
                        made.insert(parent.to_path_buf());
                    }
                }
                fs::rename(tmp, path)
            };
            if let Err(e) = step() {
                result = Err(SnapshotError::Io {
                    context: format!("cannot store chunk {}", path.display()),
                    source: e,
                });
                break;
            }
        }
        if result.is_err() {
            for (tmp, _) in &pending {
                let _ = fs::remove_file(tmp);
            }
            return result;
        }
        sync("chunk names")
    }
}

impl Drop for Batch<'_> {
    fn drop(&mut self) {
        for (tmp, _) in self
            .pending
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            let _ = fs::remove_file(tmp);
        }
    }
}

impl Chunks {
    pub(crate) fn new(dir: PathBuf, tmp: PathBuf) -> Self {
        Self { dir, tmp }
    }

    pub(crate) fn path(&self, hash: &str) -> PathBuf {
        self.dir.join(&hash[..2]).join(hash)
    }

    /// A new, empty batch of chunks for one save.
    pub(crate) fn batch(&self) -> Batch<'_> {
        Batch {
            chunks: self,
            seen: Mutex::new(HashSet::new()),
            pending: Mutex::new(Vec::new()),
            added: AtomicU64::new(0),
        }
    }

    /// The bytes of chunk `r`, checked against its hash and length.
    pub(crate) fn get(&self, r: &ChunkRef) -> Result<Vec<u8>, SnapshotError> {
        if r.hash.len() != 64 || !r.hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(SnapshotError::Corrupt(format!(
                "chunk name {:?} is not a BLAKE3 hash",
                r.hash
            )));
        }
        let path = self.path(&r.hash);
        let packed = fs::read(&path).map_err(SnapshotError::io(format!(
            "cannot read chunk {}",
            path.display()
        )))?;
        let data = zstd::bulk::decompress(&packed, r.len as usize).map_err(|e| {
            SnapshotError::Corrupt(format!("chunk {} does not decompress: {e}", path.display()))
        })?;
        if data.len() != r.len as usize || blake3::hash(&data).to_hex().as_str() != r.hash {
            return Err(SnapshotError::Corrupt(format!(
                "chunk {} does not match its hash",
                path.display()
            )));
        }
        Ok(data)
    }

    /// Every stored chunk: (hash, path, compressed bytes).
    pub(crate) fn all(&self) -> Result<Vec<(String, PathBuf, u64)>, SnapshotError> {
        let mut out = Vec::new();
        let rd = match fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => {
                return Err(SnapshotError::Io {
                    context: format!("cannot list {}", self.dir.display()),
                    source: e,
                })
            }
        };
        for sub in rd.flatten() {
            let Ok(files) = fs::read_dir(sub.path()) else {
                continue;
            };
            for f in files.flatten() {
                let name = f.file_name().to_string_lossy().into_owned();
                let len = f.metadata().map(|m| m.len()).unwrap_or(0);
                out.push((name, f.path(), len));
            }
        }
        Ok(out)
    }
}
