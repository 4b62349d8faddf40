//! The one way the crate reads files: [`Files`]. [`RealFiles`] reads the
//! file system; [`MemFiles`] is an in-memory tree for tests and fuzzing.

use std::collections::BTreeMap;
use std::io;
use std::path::{Component, Path, PathBuf};

/// Read access to a tree of text files.
pub trait Files {
    /// The whole file at `path`, as UTF-8 text.
    fn read(&self, path: &Path) -> io::Result<String>;
    /// Whether a file exists at `path`.
    fn exists(&self, path: &Path) -> bool;
}

/// The real file system.
#[derive(Debug, Clone, Copy, Default)]
pub struct RealFiles;

impl Files for RealFiles {
    fn read(&self, path: &Path) -> io::Result<String> {
        std::fs::read_to_string(path)
    }
    fn exists(&self, path: &Path) -> bool {
        path.is_file()
    }
}

/// Files held in memory, by path (paths are normalised lexically, so
/// `/p/./a/../b` and `/p/b` are the same file).
#[derive(Debug, Clone, Default)]
pub struct MemFiles(BTreeMap<PathBuf, String>);

impl MemFiles {
    /// No files; add them with [`MemFiles::insert`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) the file at `path`.
    pub fn insert(&mut self, path: impl AsRef<Path>, text: impl Into<String>) {
        self.0.insert(normalise(path.as_ref()), text.into());
    }
}

impl Files for MemFiles {
    fn read(&self, path: &Path) -> io::Result<String> {
        self.0
            .get(&normalise(path))
            .cloned()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "No such file or directory"))
    }
    fn exists(&self, path: &Path) -> bool {
        self.0.contains_key(&normalise(path))
    }
}

/// `path` with `.` dropped and `..` applied lexically.
pub fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}
