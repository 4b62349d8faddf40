//! The Merkle digest of a snapshot's tree: each file is hashed from its
//! mode, size and chunk hashes, each symlink from its target, each hard
//! link from the path of the file it names, each
//! directory from its mode and its children's (name, hash) pairs in name
//! order, and the state digest is the root directory's hash. Modification
//! times and inode numbers are left out, so the same content, names and
//! permissions give the same digest on any machine.

use super::model::{Entry, EntryKind};
use std::collections::BTreeMap;

fn node_hash(e: &Entry, children: Option<&BTreeMap<String, [u8; 32]>>) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    match e.kind {
        EntryKind::File => {
            h.update(b"file\0");
            h.update(&e.mode.to_le_bytes());
            h.update(&e.size.to_le_bytes());
            for c in &e.chunks {
                h.update(c.hash.as_bytes());
                h.update(&c.len.to_le_bytes());
            }
        }
        EntryKind::Symlink => {
            h.update(b"link\0");
            h.update(e.target.as_deref().unwrap_or("").as_bytes());
        }
        EntryKind::Hardlink => {
            h.update(b"hardlink\0");
            h.update(e.target.as_deref().unwrap_or("").as_bytes());
        }
        EntryKind::Dir => {
            h.update(b"dir\0");
            h.update(&e.mode.to_le_bytes());
            dir_body(&mut h, children);
        }
    }
    *h.finalize().as_bytes()
}

fn dir_body(h: &mut blake3::Hasher, children: Option<&BTreeMap<String, [u8; 32]>>) {
    for (name, child) in children.into_iter().flatten() {
        h.update(&(name.len() as u64).to_le_bytes());
        h.update(name.as_bytes());
        h.update(child);
    }
}

fn split(path: &str) -> (&str, &str) {
    match path.rsplit_once('/') {
        Some((dir, name)) => (dir, name),
        None => ("", path),
    }
}

/// The state digest (64 hex) of `entries` (paths relative, any order).
pub(crate) fn digest(entries: &[Entry]) -> String {
    let mut order: Vec<&Entry> = entries.iter().collect();
    // Deepest first, so a directory's children are hashed before it.
    order.sort_by(|a, b| {
        let da = a.path.matches('/').count();
        let db = b.path.matches('/').count();
        db.cmp(&da).then_with(|| a.path.cmp(&b.path))
    });
    let mut kids: BTreeMap<String, BTreeMap<String, [u8; 32]>> = BTreeMap::new();
    for e in order {
        let own = kids.remove(&e.path);
        let hash = node_hash(e, own.as_ref());
        let (dir, name) = split(&e.path);
        kids.entry(dir.to_owned())
            .or_default()
            .insert(name.to_owned(), hash);
    }
    let mut h = blake3::Hasher::new();
    h.update(b"root\0");
    dir_body(&mut h, kids.get(""));
    h.finalize().to_hex().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, hash: &str) -> Entry {
        Entry {
            path: path.into(),
            kind: EntryKind::File,
            mode: 0o644,
            size: 1,
            mtime_ns: 5,
            target: None,
            chunks: vec![super::super::model::ChunkRef {
                hash: hash.into(),
                len: 1,
            }],
            owner: None,
        }
    }

    #[test]
    fn digest_ignores_order_and_mtime_but_not_content_or_place() {
        let dir = Entry {
            path: "d".into(),
            kind: EntryKind::Dir,
            mode: 0o755,
            size: 0,
            mtime_ns: 0,
            target: None,
            chunks: vec![],
            owner: None,
        };
        let a = vec![dir.clone(), file("d/x", "aa"), file("y", "bb")];
        let mut b = vec![file("y", "bb"), file("d/x", "aa"), dir.clone()];
        assert_eq!(digest(&a), digest(&b));
        b[0].mtime_ns = 99;
        assert_eq!(digest(&a), digest(&b));
        b[0].chunks[0].hash = "cc".into();
        assert_ne!(digest(&a), digest(&b));
        let moved = vec![dir, file("x", "aa"), file("y", "bb")];
        assert_ne!(digest(&a), digest(&moved));
    }
}
