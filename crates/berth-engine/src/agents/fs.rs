//! `fs/read_text_file` and `fs/write_text_file` (ACP client methods)
//! confined to the session's workspace root: the path must be absolute,
//! hold no `..`, and resolve (symlinks followed) inside the canonical
//! root; writes are atomic.

use std::path::{Component, Path, PathBuf};

/// Checks `path` against `root` (canonical) for reading: the canonical
/// file must lie inside `root`.
pub fn resolve_read(root: &Path, path: &str) -> Result<PathBuf, String> {
    let p = lexical(path)?;
    let real = p
        .canonicalize()
        .map_err(|e| format!("cannot open {path}: {e}"))?;
    inside(root, &real, path)?;
    Ok(real)
}

/// Checks `path` against `root` for writing: its directory must resolve
/// inside `root`, and an existing file (or link) too.
pub fn resolve_write(root: &Path, path: &str) -> Result<PathBuf, String> {
    let p = lexical(path)?;
    let name = p
        .file_name()
        .ok_or_else(|| format!("{path}: names no file"))?
        .to_owned();
    let dir = p
        .parent()
        .ok_or_else(|| format!("{path}: has no directory"))?
        .canonicalize()
        .map_err(|e| format!("cannot write {path}: its directory: {e}"))?;
    inside(root, &dir, path)?;
    let target = dir.join(name);
    if std::fs::symlink_metadata(&target).is_ok() {
        let real = target
            .canonicalize()
            .map_err(|e| format!("cannot write {path}: {e}"))?;
        inside(root, &real, path)?;
        return Ok(real);
    }
    Ok(target)
}

fn lexical(path: &str) -> Result<PathBuf, String> {
    let p = Path::new(path);
    if !p.is_absolute() {
        return Err(format!("{path:?}: ACP paths must be absolute"));
    }
    if p.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(format!("{path:?}: `..` is not allowed"));
    }
    Ok(p.to_path_buf())
}

fn inside(root: &Path, real: &Path, asked: &str) -> Result<(), String> {
    if real.starts_with(root) {
        Ok(())
    } else {
        Err(format!(
            "{asked:?} is outside the workspace root {}",
            root.display()
        ))
    }
}

/// The text of `file`, from 1-based `line` and at most `limit` lines.
pub fn read(file: &Path, line: Option<u32>, limit: Option<u32>) -> Result<String, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    if line.is_none() && limit.is_none() {
        return Ok(text);
    }
    let start = line.unwrap_or(1).max(1) as usize - 1;
    let take = limit.map(|l| l as usize).unwrap_or(usize::MAX);
    Ok(text
        .split_inclusive('\n')
        .skip(start)
        .take(take)
        .collect::<String>())
}

/// Writes `content` to `file` atomically.
pub fn write(file: &Path, content: &str) -> Result<(), String> {
    berth_os::fsutil::atomic_write(file, content.as_bytes())
        .map_err(|e| format!("{}: {e}", file.display()))
}

/// Whether absolute `path` is `root` or below it, judged on its words
/// alone (no `..`, `.` or empty components allowed): for paths inside a
/// workspace container, which the host cannot resolve.
pub fn lexically_under(path: &Path, root: &Path) -> bool {
    use std::path::Component;
    path.is_absolute()
        && path
            .components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_)))
        && path.starts_with(root)
}
