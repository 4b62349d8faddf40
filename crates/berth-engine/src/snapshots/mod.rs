//! The snapshot store (issue 11; seed 000 SaveSnapshot, RestoreSnapshot,
//! ListSnapshots): a content-addressed, deduplicated store shared by all
//! projects under one directory.
//!
//! ```text
//! <root>/chunks/<2 hex>/<BLAKE3 hex>   a chunk, zstd-compressed
//! <root>/snaps/<project>/<id>.json     a snapshot: info + tree (entries)
//! <root>/index/<project>.json          the file index of the last save
//! <root>/tmp/                          temporary files (cleared by prune)
//! ```
//!
//! A save writes its new chunks, fsyncs them, and only then writes its
//! record (atomically): a crash never lists a half-written snapshot, and
//! a listed one never misses a chunk. Prune removes only chunks no record
//! names, under the store's write lock (saves hold the read lock).
//!
//! Libraries: `fastcdc` (FastCDC 2020 chunking; boundaries follow content,
//! so an insertion changes few chunks), `blake3` (chunk names and the
//! Merkle digest), `zstd` (compression). They are well-kept and fast; the
//! store's layout and guarantees are berth's.

mod capture;
mod chunks;
pub mod model;
mod recut;
mod restore;
pub mod retention;
mod tree;

pub use model::{ChunkRef, Entry, EntryKind, SnapshotError, SnapshotInfo, SnapshotMeta};
pub use retention::Retention;

use chunks::Chunks;
use model::Record;
use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

/// Freezes what writes to a state tree while a save captures it
/// ([`SnapshotStore::save_frozen`]); the project engine freezes a
/// project's services with it (SIGSTOP of native process groups, Docker
/// pause). Called on the save's blocking thread.
pub trait Freezer: Send {
    /// Freezes; on an error nothing is left frozen (the freezer undoes
    /// what it did) and the save fails with the message.
    fn freeze(&mut self) -> Result<(), String>;
    /// Thaws what `freeze` froze; called once after every successful
    /// `freeze`, whatever happens between. Never fails (what cannot be
    /// thawed is logged by the freezer).
    fn thaw(&mut self);
}

/// Thaws on drop, so no path out of a save leaves services frozen.
struct FrozenGuard<'a>(&'a mut dyn Freezer);

impl<'a> FrozenGuard<'a> {
    fn freeze(f: &'a mut dyn Freezer) -> Result<Self, SnapshotError> {
        f.freeze().map_err(SnapshotError::Frozen)?;
        Ok(Self(f))
    }
}

impl Drop for FrozenGuard<'_> {
    fn drop(&mut self) {
        self.0.thaw();
    }
}

/// A project's file index as stored, with the prune generation it was
/// written in.
#[derive(serde::Serialize, serde::Deserialize, Default)]
struct IndexFile {
    prune_gen: u64,
    files: capture::Index,
}

/// What [`SnapshotStore::prune`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Chunks removed (no snapshot named them).
    pub chunks_removed: u64,
    /// Compressed bytes freed.
    pub bytes_freed: u64,
}

/// The store. Cheap to share behind an `Arc`; every method blocks on
/// disk I/O (call it from `spawn_blocking`).
pub struct SnapshotStore {
    root: PathBuf,
    chunks: Chunks,
    lock: RwLock<()>,
}

fn check_id(what: &str, id: &str) -> Result<(), SnapshotError> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(SnapshotError::NotFound(format!(
            "{what} {id:?} is not a valid id (letters, digits, '-' and '_')"
        )))
    }
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl SnapshotStore {
    /// Opens (creating) the store at `root` (a private 0700 directory).
    pub fn open(root: &Path) -> Result<Self, SnapshotError> {
        for d in ["", "chunks", "snaps", "index", "tmp"] {
            let p = root.join(d);
            berth_os::fsutil::ensure_private_dir(&p)
                .map_err(SnapshotError::io(format!("cannot create {}", p.display())))?;
        }
        Ok(Self {
            root: root.to_path_buf(),
            chunks: Chunks::new(root.join("chunks"), root.join("tmp")),
            lock: RwLock::new(()),
        })
    }

    fn snap_dir(&self, project: &str) -> PathBuf {
        self.root.join("snaps").join(project)
    }
    fn index_path(&self, project: &str) -> PathBuf {
        self.root.join("index").join(format!("{project}.json"))
    }

    /// Captures `state` (a directory; missing means empty) as a new
    /// snapshot of `meta.project_id`. `parent_snapshot_id` is filled with
    /// the project's newest snapshot. Errors: `Io`/`Unsupported` (the
    /// save failed; nothing is listed).
    pub fn save(&self, state: &Path, meta: SnapshotMeta) -> Result<SnapshotInfo, SnapshotError> {
        self.save_inner(state, meta, None)
    }

    /// [`save`](Self::save) of a state that running services write:
    /// a first pass reads the tree while they run, then `freezer` freezes
    /// them while a second pass captures only what changed since (by the
    /// first pass's index), and thaws them (on every path, errors and
    /// panics included). The pause is in [`SnapshotInfo::paused_ms`].
    /// Errors: those of `save`, and `Frozen` when freezing failed.
    pub fn save_frozen(
        &self,
        state: &Path,
        meta: SnapshotMeta,
        freezer: &mut dyn Freezer,
    ) -> Result<SnapshotInfo, SnapshotError> {
        self.save_inner(state, meta, Some(freezer))
    }

    fn save_inner(
        &self,
        state: &Path,
        mut meta: SnapshotMeta,
        freezer: Option<&mut dyn Freezer>,
    ) -> Result<SnapshotInfo, SnapshotError> {
        check_id("project", &meta.project_id)?;
        let _g = self.lock.read().unwrap_or_else(|p| p.into_inner());
        let t0 = std::time::Instant::now();
        restore::recover(state)?;
        let project = meta.project_id.clone();
        meta.parent_snapshot_id = self.newest_id(&project);
        let gen = self.prune_gen();
        let old: IndexFile = fs::read(self.index_path(&project))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        // The chunks an index names were whole when it was written; only a
        // prune since can have removed some, so only then are they checked.
        let trusted = old.prune_gen == gen;
        let t_index = t0.elapsed();
        let batch = self.chunks.batch();
        let mut cap = capture::capture(state, &batch, &old.files, trusted)?;
        let mut paused_ms = 0;
        if let Some(freezer) = freezer {
            let first_read = cap.files_read;
            let started = std::time::Instant::now();
            let frozen = FrozenGuard::freeze(freezer)?;
            let second = capture::capture(state, &batch, &cap.index, true);
            drop(frozen);
            paused_ms = started.elapsed().as_millis() as u64;
            cap = second?;
            cap.files_read += first_read;
        }
        let added_bytes = batch.added_bytes();
        let t_capture = t0.elapsed();
        batch.publish()?;
        let t_publish = t0.elapsed();
        let ts = now();
        let digest = tree::digest(&cap.entries);
        let salt = blake3::hash(format!("{project}{ts}{digest}{}", std::process::id()).as_bytes());
        let info = SnapshotInfo {
            snapshot_id: format!("{:013}-{}", (ts * 1000.0) as u64, &salt.to_hex()[..8]),
            timestamp: ts,
            state_digest: digest,
            size_bytes: cap.entries.iter().map(|e| e.size).sum(),
            added_bytes,
            files_read: cap.files_read,
            paused_ms,
            entry_count: cap.entries.len() as u64,
            meta,
        };
        let record = Record {
            info: info.clone(),
            entries: cap.entries,
        };
        let dir = self.snap_dir(&project);
        berth_os::fsutil::ensure_private_dir(&dir).map_err(SnapshotError::io(format!(
            "cannot create {}",
            dir.display()
        )))?;
        let bytes = serde_json::to_vec(&record)
            .map_err(|e| SnapshotError::Corrupt(format!("cannot encode the snapshot: {e}")))?;
        let path = dir.join(format!("{}.json", info.snapshot_id));
        berth_os::fsutil::atomic_write(&path, &bytes).map_err(SnapshotError::io(format!(
            "cannot write {}",
            path.display()
        )))?;
        let t_record = t0.elapsed();
        let index = IndexFile {
            prune_gen: gen,
            files: cap.index,
        };
        if let Ok(idx) = serde_json::to_vec(&index) {
            let p = self.index_path(&project);
            if let Err(e) = berth_os::fsutil::atomic_write(&p, &idx) {
                tracing::warn!(path = %p.display(), "cannot write the file index: {e}");
            }
        }
        // Where a save's time goes (cumulative milliseconds since it
        // began), for `BERTH_LOG=debug` and the benchmark.
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
        tracing::debug!(
            project = %project,
            index_read_ms = ms(t_index),
            captured_ms = ms(t_capture),
            published_ms = ms(t_publish),
            record_written_ms = ms(t_record),
            index_written_ms = ms(t0.elapsed()),
            files_read = info.files_read,
            paused_ms = info.paused_ms,
            "snapshot save phases"
        );
        Ok(info)
    }

    /// The id of the project's newest record ("" for none): ids sort by
    /// time, so it is the greatest name.
    fn newest_id(&self, project: &str) -> String {
        fs::read_dir(self.snap_dir(project))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|f| {
                let name = f.file_name().to_string_lossy().into_owned();
                let id = name.strip_suffix(".json")?;
                (!name.starts_with('.')).then(|| id.to_owned())
            })
            .max()
            .unwrap_or_default()
    }

    /// How many prunes the store has seen (`prune-gen`; 0 when none).
    fn prune_gen(&self) -> u64 {
        fs::read_to_string(self.root.join("prune-gen"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }

    fn read_record(&self, project: &str, id: &str) -> Result<Record, SnapshotError> {
        check_id("project", project)?;
        check_id("snapshot", id)?;
        let path = self.snap_dir(project).join(format!("{id}.json"));
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(SnapshotError::NotFound(format!(
                    "project {project:?} has no snapshot {id:?}"
                )))
            }
            Err(e) => {
                return Err(SnapshotError::Io {
                    context: format!("cannot read {}", path.display()),
                    source: e,
                })
            }
        };
        serde_json::from_slice(&bytes)
            .map_err(|e| SnapshotError::Corrupt(format!("{} is damaged: {e}", path.display())))
    }

    /// One snapshot's info. Errors: `NotFound`.
    pub fn get(&self, project: &str, id: &str) -> Result<SnapshotInfo, SnapshotError> {
        Ok(self.read_record(project, id)?.info)
    }

    /// One snapshot's tree, in path order. Errors: `NotFound`.
    pub fn entries(&self, project: &str, id: &str) -> Result<Vec<Entry>, SnapshotError> {
        Ok(self.read_record(project, id)?.entries)
    }

    /// The project's snapshots, newest first.
    pub fn list(&self, project: &str) -> Result<Vec<SnapshotInfo>, SnapshotError> {
        check_id("project", project)?;
        let _g = self.lock.read().unwrap_or_else(|p| p.into_inner());
        self.list_unlocked(project)
    }

    fn list_unlocked(&self, project: &str) -> Result<Vec<SnapshotInfo>, SnapshotError> {
        let dir = self.snap_dir(project);
        let mut out = Vec::new();
        let rd = match fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => {
                return Err(SnapshotError::Io {
                    context: format!("cannot list {}", dir.display()),
                    source: e,
                })
            }
        };
        for f in rd.flatten() {
            let name = f.file_name().to_string_lossy().into_owned();
            let Some(id) = name
                .strip_suffix(".json")
                .filter(|_| !name.starts_with('.'))
            else {
                continue;
            };
            match self.read_record(project, id) {
                Ok(r) => out.push(r.info),
                Err(e) => tracing::warn!("skipping snapshot {id}: {e}"),
            }
        }
        out.sort_by(|a, b| b.snapshot_id.cmp(&a.snapshot_id));
        Ok(out)
    }

    /// Replaces `state` by snapshot `id` of `project`, exactly: built
    /// beside it, then swapped by rename (see [`restore`]). Errors:
    /// `NotFound`, `Io`, `Corrupt` (the live state is then untouched).
    pub fn restore(
        &self,
        project: &str,
        id: &str,
        state: &Path,
    ) -> Result<SnapshotInfo, SnapshotError> {
        let _g = self.lock.read().unwrap_or_else(|p| p.into_inner());
        let rec = self.read_record(project, id)?;
        restore::replace(&rec.entries, &self.chunks, state)?;
        Ok(rec.info)
    }

    /// Builds snapshot `id` of `project` into `dest`, which must not
    /// exist (DuplicateProject's copy of the state).
    pub fn materialize(&self, project: &str, id: &str, dest: &Path) -> Result<(), SnapshotError> {
        let _g = self.lock.read().unwrap_or_else(|p| p.into_inner());
        let rec = self.read_record(project, id)?;
        restore::build(&rec.entries, &self.chunks, dest)
    }

    /// Puts back a state path a crash left mid-restore (see [`restore`]).
    pub fn recover(&self, state: &Path) -> Result<(), SnapshotError> {
        restore::recover(state)
    }

    /// Removes snapshot `id` of `project` (its chunks go at the next
    /// prune). Errors: `NotFound`.
    pub fn remove(&self, project: &str, id: &str) -> Result<(), SnapshotError> {
        let _g = self.lock.read().unwrap_or_else(|p| p.into_inner());
        self.remove_unlocked(project, id)
    }

    fn remove_unlocked(&self, project: &str, id: &str) -> Result<(), SnapshotError> {
        self.read_record(project, id)?;
        let dir = self.snap_dir(project);
        let path = dir.join(format!("{id}.json"));
        fs::remove_file(&path).map_err(SnapshotError::io(format!(
            "cannot remove {}",
            path.display()
        )))?;
        // The removal is made durable before a prune can free the
        // record's chunks: a crash must not bring back a record whose
        // chunks are gone.
        if let Ok(d) = fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// Applies `policy` ([`retention`]) to the project's snapshots whose
    /// reason is `reason` (autosave retention passes "autosave": manual
    /// and safety snapshots are never forgotten by a policy) and removes
    /// the records it does not keep, oldest first. Their chunks go at the
    /// next [`prune`](Self::prune). Returns the removed ids. A crash
    /// midway leaves some of them listed, never a damaged one.
    pub fn forget(
        &self,
        project: &str,
        reason: &str,
        policy: &Retention,
    ) -> Result<Vec<String>, SnapshotError> {
        check_id("project", project)?;
        let _g = self.lock.read().unwrap_or_else(|p| p.into_inner());
        let list: Vec<SnapshotInfo> = self
            .list_unlocked(project)?
            .into_iter()
            .filter(|s| s.meta.reason == reason)
            .collect();
        let times: Vec<f64> = list.iter().map(|s| s.timestamp).collect();
        let keep = retention::keep(&times, policy);
        let mut removed = Vec::new();
        for (s, kept) in list.iter().zip(keep).rev() {
            if !kept {
                self.remove_unlocked(project, &s.snapshot_id)?;
                removed.push(s.snapshot_id.clone());
            }
        }
        Ok(removed)
    }

    /// Removes every chunk no snapshot record names, and stale temporary
    /// files. A crash midway leaves only fewer unreferenced chunks.
    pub fn prune(&self) -> Result<Pruned, SnapshotError> {
        let _g = self.lock.write().unwrap_or_else(|p| p.into_inner());
        // Every file index written before this prune is distrusted from
        // now on (its chunks are checked again): durable before a chunk
        // goes.
        let gen = self.root.join("prune-gen");
        berth_os::fsutil::atomic_write(&gen, (self.prune_gen() + 1).to_string().as_bytes())
            .map_err(SnapshotError::io(format!("cannot write {}", gen.display())))?;
        let mut used = HashSet::new();
        let snaps = self.root.join("snaps");
        for p in fs::read_dir(&snaps)
            .map_err(SnapshotError::io(format!(
                "cannot list {}",
                snaps.display()
            )))?
            .flatten()
        {
            let project = p.file_name().to_string_lossy().into_owned();
            let infos = self.list_unlocked(&project)?;
            for info in &infos {
                // A record that cannot be read keeps everything: prune
                // never guesses.
                let rec = self.read_record(&project, &info.snapshot_id)?;
                for e in rec.entries {
                    used.extend(e.chunks.into_iter().map(|c| c.hash));
                }
            }
            // Damaged records are skipped by list: refuse to prune then,
            // naming them, so the user can move them away (or restore
            // them from a backup) and prune again.
            let listed: HashSet<String> = infos
                .iter()
                .map(|i| format!("{}.json", i.snapshot_id))
                .collect();
            let damaged: Vec<String> = fs::read_dir(p.path())
                .map(|rd| {
                    rd.flatten()
                        .map(|f| f.file_name().to_string_lossy().into_owned())
                        .filter(|n| !n.starts_with('.') && !listed.contains(n))
                        .map(|n| p.path().join(n).display().to_string())
                        .collect()
                })
                .unwrap_or_default();
            if !damaged.is_empty() {
                return Err(SnapshotError::Corrupt(format!(
                    "snapshot records of project {project:?} cannot be read ({}); nothing was pruned, \
                     since their chunks may still be needed",
                    damaged.join(", ")
                )));
            }
        }
        let mut out = Pruned::default();
        for (hash, path, len) in self.chunks.all()? {
            if !used.contains(&hash) && fs::remove_file(&path).is_ok() {
                out.chunks_removed += 1;
                out.bytes_freed += len;
            }
        }
        if let Ok(rd) = fs::read_dir(self.root.join("tmp")) {
            for f in rd.flatten() {
                let _ = fs::remove_file(f.path());
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
