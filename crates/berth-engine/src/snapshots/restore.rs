//! Materialising a snapshot: the tree is built in a directory beside the
//! live state, then swapped in by renames. A crash leaves the old state
//! or the new one: [`recover`] (run before every save and restore) puts
//! back a state path a crash left between the two renames and removes
//! half-built trees.

use super::chunks::Chunks;
use super::model::{Entry, EntryKind, SnapshotError};
use std::fs;
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

const BUILD_SUFFIX: &str = ".berth-restore";
const OLD_SUFFIX: &str = ".berth-old";

fn sibling(state: &Path, suffix: &str) -> PathBuf {
    let mut s = state.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// A relative path of plain components only, or an error naming it: a
/// record is data, never trusted to point outside the tree.
fn safe_rel(p: &str) -> Result<&Path, SnapshotError> {
    let path = Path::new(p);
    if p.is_empty() || !path.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(SnapshotError::Corrupt(format!(
            "snapshot entry path {p:?} is not a plain relative path"
        )));
    }
    Ok(path)
}

fn set_mtime(path: &Path, ns: i64) -> std::io::Result<()> {
    let t = if ns >= 0 {
        UNIX_EPOCH + Duration::from_nanos(ns as u64)
    } else {
        UNIX_EPOCH - Duration::from_nanos(ns.unsigned_abs())
    };
    let f = fs::File::open(path)?;
    f.set_times(fs::FileTimes::new().set_modified(t))
}

/// Gives `p` (not following a symlink) the recorded owner and group. A
/// user who may not (not root, other ids) keeps the files as their own:
/// that is refused by the kernel with EPERM and is not an error.
fn set_owner(p: &Path, owner: Option<(u32, u32)>) -> std::io::Result<()> {
    let Some((uid, gid)) = owner else {
        return Ok(());
    };
    match std::os::unix::fs::lchown(p, Some(uid), Some(gid)) {
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Ok(()),
        r => r,
    }
}

/// Writes `entries` into the new directory `dest`.
pub(crate) fn build(entries: &[Entry], chunks: &Chunks, dest: &Path) -> Result<(), SnapshotError> {
    let io = |what: &str, p: &Path| SnapshotError::io(format!("cannot {what} {}", p.display()));
    // The state root is private (0700) as EnsureProject makes it.
    std::os::unix::fs::DirBuilderExt::mode(&mut fs::DirBuilder::new(), 0o700)
        .create(dest)
        .map_err(io("create", dest))?;
    let mut sorted: Vec<&Entry> = entries.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    let mut files = std::collections::HashSet::new();
    for e in &sorted {
        let p = dest.join(safe_rel(&e.path)?);
        match e.kind {
            EntryKind::Hardlink => {
                // Only to a regular file this build made (never through a
                // symlink or out of the tree).
                let t = e.target.as_deref().unwrap_or("");
                if !files.contains(t) {
                    return Err(SnapshotError::Corrupt(format!(
                        "hard link {:?} names {t:?}, which is not a file before it",
                        e.path
                    )));
                }
                fs::hard_link(dest.join(safe_rel(t)?), &p).map_err(io("link", &p))?;
            }
            EntryKind::Dir => fs::create_dir(&p).map_err(io("create", &p))?,
            EntryKind::Symlink => {
                std::os::unix::fs::symlink(e.target.as_deref().unwrap_or(""), &p)
                    .map_err(io("create symlink", &p))?;
                set_owner(&p, e.owner).map_err(io("set the owner of", &p))?;
            }
            EntryKind::File => {
                let mut f = fs::File::create(&p).map_err(io("create", &p))?;
                for c in &e.chunks {
                    let data = chunks.get(c)?;
                    if data.iter().all(|b| *b == 0) {
                        // Zeros become a hole again (sparse files stay sparse).
                        f.seek(SeekFrom::Current(data.len() as i64))
                            .map_err(io("write", &p))?;
                    } else {
                        f.write_all(&data).map_err(io("write", &p))?;
                    }
                }
                f.set_len(e.size).map_err(io("write", &p))?;
                f.sync_all().map_err(io("sync", &p))?;
                drop(f);
                // Before the mode: a change of owner clears set-id bits.
                set_owner(&p, e.owner).map_err(io("set the owner of", &p))?;
                fs::set_permissions(&p, fs::Permissions::from_mode(e.mode))
                    .map_err(io("set the mode of", &p))?;
                set_mtime(&p, e.mtime_ns).map_err(io("set the mtime of", &p))?;
                files.insert(e.path.as_str());
            }
        }
    }
    // Directories last and deepest first: filling them moved their mtimes.
    for e in sorted.iter().rev().filter(|e| e.kind == EntryKind::Dir) {
        let p = dest.join(&e.path);
        set_owner(&p, e.owner).map_err(io("set the owner of", &p))?;
        fs::set_permissions(&p, fs::Permissions::from_mode(e.mode))
            .map_err(io("set the mode of", &p))?;
        set_mtime(&p, e.mtime_ns).map_err(io("set the mtime of", &p))?;
    }
    fsync_tree(dest)?;
    Ok(())
}

fn fsync_tree(dir: &Path) -> Result<(), SnapshotError> {
    for e in fs::read_dir(dir)
        .map_err(SnapshotError::io(format!("cannot list {}", dir.display())))?
        .flatten()
    {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            fsync_tree(&e.path())?;
        }
    }
    // A directory without search permission cannot be opened; its entries
    // were synced by the files' own fsyncs and the parent's.
    if let Ok(f) = fs::File::open(dir) {
        let _ = f.sync_all();
    }
    Ok(())
}

fn sync_parent(p: &Path) {
    if let Some(d) = p.parent() {
        if let Ok(f) = fs::File::open(d) {
            let _ = f.sync_all();
        }
    }
}

/// Makes `state` whole after a crash: a state path missing while its old
/// copy exists gets the old copy back (the swap had not happened); a
/// leftover old copy beside a present state (the swap had happened) and
/// any half-built tree are removed.
pub(crate) fn recover(state: &Path) -> Result<(), SnapshotError> {
    let old = sibling(state, OLD_SUFFIX);
    let built = sibling(state, BUILD_SUFFIX);
    if old.exists() {
        if !state.exists() {
            fs::rename(&old, state).map_err(SnapshotError::io(format!(
                "cannot put back {}",
                state.display()
            )))?;
            sync_parent(state);
        } else {
            remove_tree(&old)?;
        }
    }
    if built.exists() {
        remove_tree(&built)?;
    }
    Ok(())
}

fn remove_tree(p: &Path) -> Result<(), SnapshotError> {
    // Directories restored without write permission are made writable
    // so their entries can go.
    make_writable(p);
    fs::remove_dir_all(p).map_err(SnapshotError::io(format!("cannot remove {}", p.display())))
}

fn make_writable(p: &Path) {
    if let Ok(m) = fs::symlink_metadata(p) {
        if m.is_dir() {
            let _ = fs::set_permissions(p, fs::Permissions::from_mode(0o700));
            if let Ok(rd) = fs::read_dir(p) {
                for e in rd.flatten() {
                    make_writable(&e.path());
                }
            }
        }
    }
}

/// Replaces `state` by the tree of `entries` exactly (files not in the
/// snapshot are gone afterwards).
pub(crate) fn replace(
    entries: &[Entry],
    chunks: &Chunks,
    state: &Path,
) -> Result<(), SnapshotError> {
    recover(state)?;
    let built = sibling(state, BUILD_SUFFIX);
    let old = sibling(state, OLD_SUFFIX);
    if let Err(e) = build(entries, chunks, &built) {
        let _ = remove_tree(&built);
        return Err(e);
    }
    sync_parent(&built);
    if state.exists() {
        fs::rename(state, &old).map_err(SnapshotError::io(format!(
            "cannot move {} aside",
            state.display()
        )))?;
    }
    fs::rename(&built, state).map_err(SnapshotError::io(format!(
        "cannot move the restored tree to {}",
        state.display()
    )))?;
    sync_parent(state);
    if old.exists() {
        remove_tree(&old)?;
    }
    Ok(())
}
