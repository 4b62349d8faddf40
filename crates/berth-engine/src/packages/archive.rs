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

/// Whether symlink `link` to `target` resolves inside the package when
/// the kernel follows it, given which package paths are symlinks: a
/// `..` after a component that is itself a symlink climbs from that
/// symlink's target, not from where the text says (`d -> .` with
/// `q -> d/../x` leaves the package although `d/../x` reads as `x`). So
/// besides [`stays_inside`], no component the target passes through
/// (every one but the last) may be a symlink of the package; the last
/// may be, and is checked as a link of its own. Used by import and by
/// pack, so a package berth packs is one berth imports.
pub(crate) fn resolves_inside(link: &str, target: &str, is_symlink: &dyn Fn(&str) -> bool) -> bool {
    if !stays_inside(link, target) {
        return false;
    }
    let mut cur: Vec<&str> = link.split('/').collect();
    cur.pop();
    let parts: Vec<&str> = target
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 && is_symlink(&cur.join("/")) {
            return false;
        }
        if *part == ".." {
            if cur.pop().is_none() {
                return false;
            }
        } else {
            cur.push(part);
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
    // A symlink must not go out through another one.
    let is_symlink = |p: &str| matches!(out.get(p), Some(Item::Symlink(_)));
    for (name, item) in &out {
        if let Item::Symlink(target) = item {
            if !resolves_inside(name, target, &is_symlink) {
                return Err(invalid(format!(
                    "symlink {name} -> {target} passes through another symlink of the package; \
                     it could lead out"
                )));
            }
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

    /// The reviewer's escapes: through a link to `.`, and through a link
    /// deep in a tree that climbs back to the package root.
    #[test]
    fn a_symlink_may_not_climb_through_another() {
        let links = ["d", "a1/a2/d"];
        let is_link = |p: &str| links.contains(&p);
        assert!(!resolves_inside("q", "d/../ESC", &is_link));
        assert!(!resolves_inside(
            "q",
            "a1/a2/d/../../../etc/passwd",
            &is_link
        ));
        // Ending on a link, or going through real directories, is fine.
        assert!(resolves_inside("q", "d", &is_link));
        assert!(resolves_inside("x/q", "../a1/a2/f", &is_link));
        assert!(resolves_inside("x/q", "../a1/../b", &is_link));
        assert!(!resolves_inside("q", "../x", &is_link));
    }
}
