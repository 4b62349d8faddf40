//! Reading a `.vibeapp` archive into memory with every entry checked,
//! before anything is written: paths are plain relative paths (no `/`
//! prefix, no `..`), only files, directories and symlinks that stay inside
//! the package, no duplicates, and caps on sizes and counts so a
//! decompression bomb is refused while it is read.

use super::model::PackageError;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

/// Bytes of all files together, uncompressed.
pub(crate) const MAX_TOTAL_BYTES: u64 = 512 << 20;
/// Entries in an archive.
pub(crate) const MAX_ENTRIES: usize = 100_000;
/// zstd's frame magic.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// One checked entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Item {
    Dir(u32),
    File(u32, Vec<u8>),
    Symlink(String),
}

fn invalid(m: String) -> PackageError {
    PackageError::InvalidPackage(m)
}

/// `p` as a plain relative path (`a/b`), or why not.
fn plain(p: &Path) -> Result<String, PackageError> {
    let mut parts = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(s) => parts.push(
                s.to_str()
                    .ok_or_else(|| invalid(format!("entry {} is not UTF-8", p.display())))?
                    .to_owned(),
            ),
            Component::CurDir => {}
            _ => {
                return Err(invalid(format!(
                    "entry {} is absolute or climbs out with ..",
                    p.display()
                )))
            }
        }
    }
    if parts.is_empty() {
        return Err(invalid(format!("entry {:?} has no name", p.display())));
    }
    Ok(parts.join("/"))
}

/// Whether symlink `link` (a package path) to `target` stays inside.
fn stays_inside(link: &str, target: &str) -> bool {
    if target.starts_with('/') {
        return false;
    }
    let mut depth: Vec<&str> = link.split('/').collect();
    depth.pop();
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if depth.pop().is_none() {
                    return false;
                }
            }
            p => depth.push(p),
        }
    }
    true
}

/// Reads and checks the archive `bytes` (a tar, zstd-compressed or not).
pub(crate) fn read(bytes: &[u8]) -> Result<BTreeMap<String, Item>, PackageError> {
    let raw: Box<dyn Read + '_> = if bytes.starts_with(&ZSTD_MAGIC) {
        Box::new(
            zstd::stream::read::Decoder::new(bytes)
                .map_err(|e| invalid(format!("the zstd stream is damaged: {e}")))?,
        )
    } else {
        Box::new(bytes)
    };
    // The decompressed stream itself is capped (headers included).
    let capped = raw.take(MAX_TOTAL_BYTES + (MAX_ENTRIES as u64) * 1024);
    let mut ar = tar::Archive::new(capped);
    let mut out = BTreeMap::new();
    let mut total = 0u64;
    let entries = ar
        .entries()
        .map_err(|e| invalid(format!("not a tar archive: {e}")))?;
    for e in entries {
        let mut e = e.map_err(|e| invalid(format!("damaged tar entry: {e}")))?;
        if out.len() >= MAX_ENTRIES {
            return Err(invalid(format!("more than {MAX_ENTRIES} entries")));
        }
        let path: PathBuf = e
            .path()
            .map_err(|e| invalid(format!("unreadable entry name: {e}")))?
            .into_owned();
        // `./`, the root that `tar -C dir .` writes, is no entry of its own.
        if e.header().entry_type().is_dir() && path.components().all(|c| c == Component::CurDir) {
            continue;
        }
        let name = plain(&path)?;
        let mode = e.header().mode().unwrap_or(0o644) & 0o755;
        let kind = e.header().entry_type();
        let item = if kind.is_dir() {
            Item::Dir(mode | 0o700)
        } else if kind.is_file() {
            let size = e.header().size().unwrap_or(u64::MAX);
            total = total.saturating_add(size);
            if total > MAX_TOTAL_BYTES {
                return Err(invalid(format!(
                    "the files are larger than {MAX_TOTAL_BYTES} bytes in all (at {name})"
                )));
            }
            let mut data = Vec::with_capacity(size.min(1 << 20) as usize);
            e.read_to_end(&mut data)
                .map_err(|e| invalid(format!("cannot read {name}: {e}")))?;
            Item::File(mode | 0o600, data)
        } else if kind.is_symlink() {
            let target = e
                .link_name()
                .ok()
                .flatten()
                .and_then(|t| t.to_str().map(str::to_owned))
                .ok_or_else(|| invalid(format!("symlink {name} has no readable target")))?;
            if !stays_inside(&name, &target) {
                return Err(invalid(format!(
                    "symlink {name} -> {target} leads out of the package"
                )));
            }
            Item::Symlink(target)
        } else if kind.is_hard_link() {
            return Err(invalid(format!(
                "{name} is a hard link; packages hold none"
            )));
        } else if kind.is_pax_global_extensions() || kind.is_pax_local_extensions() {
            continue;
        } else {
            return Err(invalid(format!(
                "{name} is a device, FIFO or other special file; packages hold none"
            )));
        };
        if out.insert(name.clone(), item).is_some() {
            return Err(invalid(format!("{name} appears twice in the archive")));
        }
    }
    // A symlinked directory must not let a later path go out through it.
    for name in out.keys() {
        let mut prefix = String::new();
        for part in name
            .split('/')
            .collect::<Vec<_>>()
            .iter()
            .rev()
            .skip(1)
            .rev()
        {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(part);
            if matches!(out.get(&prefix), Some(Item::Symlink(_))) {
                return Err(invalid(format!("{name} lies under the symlink {prefix}")));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_may_point_inside_only() {
        assert!(stays_inside("a/b", "c"));
        assert!(stays_inside("a/b", "../c"));
        assert!(!stays_inside("a/b", "../../c"));
        assert!(!stays_inside("b", "/etc/passwd"));
    }
}
