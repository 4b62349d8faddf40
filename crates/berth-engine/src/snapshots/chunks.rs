//! The chunk store: each chunk is a file `chunks/<2 hex>/<64 hex>` named
//! by the BLAKE3 of its bytes and holding them zstd-compressed. Writing
//! a chunk that exists is a no-op (deduplication across snapshots and
//! projects); a new chunk goes to a unique temporary file that is renamed
//! into place, so a chunk file is always whole.

use super::model::{ChunkRef, SnapshotError};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// zstd level: 3 is zstd's default, a good speed/ratio balance.
const ZSTD_LEVEL: i32 = 3;

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

impl Chunks {
    pub(crate) fn new(dir: PathBuf, tmp: PathBuf) -> Self {
        Self { dir, tmp }
    }

    pub(crate) fn path(&self, hash: &str) -> PathBuf {
        self.dir.join(&hash[..2]).join(hash)
    }

    /// Stores `data` unless a chunk of that hash exists. Returns its
    /// reference and the compressed bytes added (0 when it existed), and
    /// records a new file in `fresh` so the caller can fsync it.
    pub(crate) fn put(
        &self,
        data: &[u8],
        fresh: &mut Vec<PathBuf>,
    ) -> Result<(ChunkRef, u64), SnapshotError> {
        let hash = blake3::hash(data).to_hex().to_string();
        let r = ChunkRef {
            hash: hash.clone(),
            len: data.len() as u32,
        };
        let path = self.path(&hash);
        if path.exists() {
            return Ok((r, 0));
        }
        let packed = zstd::bulk::compress(data, ZSTD_LEVEL)
            .map_err(SnapshotError::io(format!("cannot compress chunk {hash}")))?;
        let parent = self.dir.join(&hash[..2]);
        fs::create_dir_all(&parent).map_err(SnapshotError::io(format!(
            "cannot create {}",
            parent.display()
        )))?;
        let tmp = tmp_name(&self.tmp, "chunk");
        let write = || -> std::io::Result<()> {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(&packed)?;
            fs::rename(&tmp, &path)
        };
        if let Err(e) = write() {
            let _ = fs::remove_file(&tmp);
            return Err(SnapshotError::Io {
                context: format!("cannot write chunk {}", path.display()),
                source: e,
            });
        }
        fresh.push(path);
        Ok((r, packed.len() as u64))
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

/// Fsyncs `files`, then their directories, so what a record names is on
/// disk before the record is.
pub(crate) fn sync_all(files: &[PathBuf]) -> Result<(), SnapshotError> {
    let mut dirs = std::collections::BTreeSet::new();
    for f in files {
        fs::File::open(f)
            .and_then(|h| h.sync_all())
            .map_err(SnapshotError::io(format!("cannot sync {}", f.display())))?;
        if let Some(d) = f.parent() {
            dirs.insert(d.to_path_buf());
        }
    }
    for d in dirs {
        fs::File::open(&d)
            .and_then(|h| h.sync_all())
            .map_err(SnapshotError::io(format!("cannot sync {}", d.display())))?;
    }
    Ok(())
}
