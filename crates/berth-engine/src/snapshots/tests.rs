use super::*;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

fn meta(project: &str) -> SnapshotMeta {
    SnapshotMeta {
        project_id: project.into(),
        app_id: "dev.example.app".into(),
        app_version: "1.0.0".into(),
        reason: "manual".into(),
        ..Default::default()
    }
}

/// Pseudo-random bytes (xorshift), so chunks do not compress away.
fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2654435761).wrapping_add(1) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn fill(state: &Path) {
    fs::create_dir_all(state.join("db/empty")).unwrap();
    fs::write(state.join("db/blob.bin"), noise(700_000, 7)).unwrap();
    fs::write(state.join("notes.txt"), b"hello\n").unwrap();
    fs::write(state.join("empty-file"), b"").unwrap();
    let f = fs::File::create(state.join("sparse")).unwrap();
    f.set_len(8 << 20).unwrap();
    drop(f);
    std::os::unix::fs::symlink("db/blob.bin", state.join("link")).unwrap();
    std::os::unix::fs::symlink("/nowhere/at/all", state.join("dangling")).unwrap();
    fs::set_permissions(state.join("notes.txt"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::set_permissions(state.join("db/empty"), fs::Permissions::from_mode(0o750)).unwrap();
}

/// Everything a user would notice of a tree: names, kinds, bytes, modes,
/// link targets, mtimes of files.
fn describe(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let mut items: Vec<_> = fs::read_dir(dir).unwrap().flatten().collect();
        items.sort_by_key(|e| e.file_name());
        for e in items {
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            let m = fs::symlink_metadata(&p).unwrap();
            if m.file_type().is_symlink() {
                out.push(format!("{rel} -> {}", fs::read_link(&p).unwrap().display()));
            } else if m.is_dir() {
                out.push(format!("{rel}/ {:o}", m.mode() & 0o7777));
                walk(root, &p, out);
            } else {
                let h = blake3::hash(&fs::read(&p).unwrap());
                out.push(format!(
                    "{rel} {:o} {} {} {}",
                    m.mode() & 0o7777,
                    m.len(),
                    m.mtime(),
                    h
                ));
            }
        }
    }
    walk(root, root, &mut out);
    out
}

#[test]
fn save_modify_restore_gives_back_the_exact_tree() {
    let dir = tempfile::tempdir().unwrap();
    let store = SnapshotStore::open(&dir.path().join("store")).unwrap();
    let state = dir.path().join("state");
    fs::create_dir(&state).unwrap();
    fill(&state);
    let before = describe(&state);
    let snap = store.save(&state, meta("app")).unwrap();
    assert_eq!(snap.meta.parent_snapshot_id, "");

    fs::write(state.join("db/blob.bin"), b"overwritten").unwrap();
    fs::write(state.join("new-file"), b"added later").unwrap();
    fs::remove_file(state.join("link")).unwrap();
    assert_ne!(describe(&state), before);

    store.restore("app", &snap.snapshot_id, &state).unwrap();
    assert_eq!(describe(&state), before);
    assert!(
        !state.join("new-file").exists(),
        "files not in the snapshot are removed"
    );
    // The sparse file is sparse again: 8 MiB long, (almost) no blocks.
    let m = fs::metadata(state.join("sparse")).unwrap();
    assert_eq!(m.len(), 8 << 20);
    assert!(
        m.blocks() * 512 < 1 << 20,
        "sparse file took {} blocks",
        m.blocks()
    );
    // The same tree gives the same digest.
    let again = store.save(&state, meta("app")).unwrap();
    assert_eq!(again.state_digest, snap.state_digest);
    assert_eq!(again.meta.parent_snapshot_id, snap.snapshot_id);
}

#[test]
fn a_second_save_reads_only_what_changed_and_stores_only_new_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let store = SnapshotStore::open(&dir.path().join("store")).unwrap();
    let state = dir.path().join("state");
    fs::create_dir(&state).unwrap();
    for i in 0..20 {
        let p = state.join(format!("f{i}"));
        fs::write(&p, noise(100_000, i + 1)).unwrap();
        // Written an hour ago: files changed within the clock's
        // granularity of a save are read again by the next one.
        let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        let f = fs::File::options().write(true).open(&p).unwrap();
        f.set_times(fs::FileTimes::new().set_modified(hour_ago))
            .unwrap();
    }
    let first = store.save(&state, meta("app")).unwrap();
    assert_eq!(first.files_read, 20);
    assert!(first.added_bytes > 1_500_000);
    let mut f3 = fs::read(state.join("f3")).unwrap();
    f3[50_000] ^= 0xff;
    fs::write(state.join("f3"), f3).unwrap();
    let second = store.save(&state, meta("app")).unwrap();
    assert_eq!(second.files_read, 1);
    assert!(second.added_bytes < 300_000, "added {}", second.added_bytes);
    assert_ne!(second.state_digest, first.state_digest);
    let list = store.list("app").unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].snapshot_id, second.snapshot_id, "newest first");
}

#[test]
fn the_digest_is_the_same_in_two_stores_for_the_same_tree() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    fs::create_dir(&a).unwrap();
    fill(&a);
    std::thread::sleep(std::time::Duration::from_millis(20));
    fs::create_dir(&b).unwrap();
    fill(&b);
    let s1 = SnapshotStore::open(&dir.path().join("s1")).unwrap();
    let s2 = SnapshotStore::open(&dir.path().join("s2")).unwrap();
    let d1 = s1.save(&a, meta("one")).unwrap().state_digest;
    let d2 = s2.save(&b, meta("two")).unwrap().state_digest;
    assert_eq!(d1, d2);
}

#[test]
fn chunks_are_shared_between_projects_and_prune_keeps_what_is_listed() {
    let dir = tempfile::tempdir().unwrap();
    let store = SnapshotStore::open(&dir.path().join("store")).unwrap();
    let state = dir.path().join("state");
    fs::create_dir(&state).unwrap();
    fs::write(state.join("big"), noise(500_000, 3)).unwrap();
    let a = store.save(&state, meta("one")).unwrap();
    let b = store.save(&state, meta("two")).unwrap();
    assert!(a.added_bytes > 0);
    assert_eq!(b.added_bytes, 0, "the second project shares every chunk");
    store.remove("one", &a.snapshot_id).unwrap();
    assert_eq!(
        store.prune().unwrap().chunks_removed,
        0,
        "project two still names them"
    );
    store.remove("two", &b.snapshot_id).unwrap();
    assert!(store.prune().unwrap().chunks_removed > 0);
    assert!(matches!(
        store.get("two", &b.snapshot_id),
        Err(SnapshotError::NotFound(_))
    ));
}

#[test]
fn a_crash_between_the_two_renames_leaves_the_old_state() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let old = dir.path().join("state.berth-old");
    fs::create_dir(&old).unwrap();
    fs::write(old.join("x"), b"old").unwrap();
    fs::create_dir(dir.path().join("state.berth-restore")).unwrap();
    restore::recover(&state).unwrap();
    assert_eq!(fs::read(state.join("x")).unwrap(), b"old");
    assert!(!old.exists());
    assert!(!dir.path().join("state.berth-restore").exists());
}

#[test]
fn a_record_naming_a_path_outside_the_tree_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let chunks = Chunks::new(dir.path().join("c"), dir.path().join("t"));
    let e = Entry {
        path: "../escape".into(),
        kind: EntryKind::Dir,
        mode: 0o755,
        size: 0,
        mtime_ns: 0,
        target: None,
        chunks: vec![],
        owner: None,
    };
    let err = restore::build(&[e], &chunks, &dir.path().join("out")).unwrap_err();
    assert!(matches!(err, SnapshotError::Corrupt(_)), "{err}");
    assert!(!dir.path().join("escape").exists());
}

#[test]
fn forget_applies_the_policy_to_one_reason_only_and_prune_frees_what_it_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let store = SnapshotStore::open(&dir.path().join("store")).unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let mut auto = Vec::new();
    let mut manual = None;
    for i in 0..5u8 {
        // Ids sort by the millisecond they were taken in.
        std::thread::sleep(std::time::Duration::from_millis(2));
        std::fs::write(state.join("f"), vec![i; 100_000]).unwrap();
        let mut m = meta("app");
        if i == 2 {
            manual = Some(store.save(&state, m).unwrap());
            continue;
        }
        m.reason = "autosave".into();
        auto.push(store.save(&state, m).unwrap());
    }
    let policy = Retention {
        keep_last: 2,
        ..Default::default()
    };
    let removed = store.forget("app", "autosave", &policy).unwrap();
    assert_eq!(
        removed,
        vec![auto[0].snapshot_id.clone(), auto[1].snapshot_id.clone()],
        "oldest first"
    );
    let listed: Vec<String> = store
        .list("app")
        .unwrap()
        .into_iter()
        .map(|s| s.snapshot_id)
        .collect();
    let manual = manual.unwrap();
    assert_eq!(
        listed,
        vec![
            auto[3].snapshot_id.clone(),
            auto[2].snapshot_id.clone(),
            manual.snapshot_id.clone()
        ]
    );
    let pruned = store.prune().unwrap();
    assert!(pruned.chunks_removed >= 2, "{pruned:?}");
    // What is listed is whole.
    for id in &listed {
        let out = dir.path().join(format!("out-{id}"));
        store.materialize("app", id, &out).unwrap();
    }
    assert!(store
        .forget("app", "autosave", &Retention::default())
        .unwrap()
        .is_empty());
}

#[test]
fn owners_are_kept_and_restored_when_the_user_may_set_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = SnapshotStore::open(&dir.path().join("store")).unwrap();
    let state = dir.path().join("state");
    fs::create_dir_all(state.join("d")).unwrap();
    fs::write(state.join("d/f"), b"data").unwrap();
    std::os::unix::fs::symlink("d/f", state.join("l")).unwrap();
    let root = berth_os::dirs::uid() == 0;
    if root {
        for p in ["d", "d/f", "l"] {
            std::os::unix::fs::lchown(state.join(p), Some(1234), Some(5678)).unwrap();
        }
    }
    let (uid, gid) = if root {
        (1234, 5678)
    } else {
        let m = fs::metadata(&state).unwrap();
        (m.uid(), m.gid())
    };
    let snap = store.save(&state, meta("own")).unwrap();
    let entries = store.entries("own", &snap.snapshot_id).unwrap();
    assert!(
        entries.iter().all(|e| e.owner == Some((uid, gid))),
        "{entries:?}"
    );
    let out = dir.path().join("out");
    store.materialize("own", &snap.snapshot_id, &out).unwrap();
    for p in ["d", "d/f", "l"] {
        let m = fs::symlink_metadata(out.join(p)).unwrap();
        assert_eq!((m.uid(), m.gid()), (uid, gid), "{p}");
    }
    // The digest does not depend on who owns the files.
    let other = SnapshotStore::open(&dir.path().join("store2")).unwrap();
    if root {
        for p in ["d", "d/f", "l"] {
            std::os::unix::fs::lchown(state.join(p), Some(0), Some(0)).unwrap();
        }
    }
    assert_eq!(
        other.save(&state, meta("own")).unwrap().state_digest,
        snap.state_digest
    );
}

/// Hard links: one content saved once under several paths, restored as
/// links of one inode (a write through one path shows through the
/// others), and the digest names the links.
#[test]
fn hard_links_are_saved_once_and_restored_as_links() {
    let dir = tempfile::tempdir().unwrap();
    let store = SnapshotStore::open(&dir.path().join("store")).unwrap();
    let state = dir.path().join("state");
    fs::create_dir_all(state.join("b")).unwrap();
    fs::write(state.join("b/data"), noise(300_000, 3)).unwrap();
    fs::hard_link(state.join("b/data"), state.join("a-link")).unwrap();
    fs::hard_link(state.join("b/data"), state.join("c-link")).unwrap();
    let s1 = store.save(&state, meta("p")).unwrap();
    let entries = store.entries("p", &s1.snapshot_id).unwrap();
    let kind = |p: &str| entries.iter().find(|e| e.path == p).unwrap().clone();
    // The first path in name order holds the bytes; the others name it.
    assert_eq!(kind("a-link").kind, EntryKind::File);
    assert!(!kind("a-link").chunks.is_empty());
    for p in ["b/data", "c-link"] {
        assert_eq!(kind(p).kind, EntryKind::Hardlink, "{p}");
        assert_eq!(kind(p).target.as_deref(), Some("a-link"));
    }
    assert_eq!(s1.size_bytes, 300_000, "the content is counted once");

    fs::write(state.join("b/data"), b"changed").unwrap();
    store.restore("p", &s1.snapshot_id, &state).unwrap();
    let ino = |p: &str| fs::metadata(state.join(p)).unwrap().ino();
    assert_eq!(ino("a-link"), ino("b/data"));
    assert_eq!(ino("a-link"), ino("c-link"));
    assert_eq!(fs::metadata(state.join("a-link")).unwrap().nlink(), 3);
    assert_eq!(fs::read(state.join("c-link")).unwrap(), noise(300_000, 3));
    fs::write(state.join("b/data"), b"through one name").unwrap();
    assert_eq!(fs::read(state.join("a-link")).unwrap(), b"through one name");

    // A second save of the restored links (new inode) names them the same.
    store.restore("p", &s1.snapshot_id, &state).unwrap();
    let s2 = store.save(&state, meta("p")).unwrap();
    assert_eq!(s2.state_digest, s1.state_digest);
    // The same bytes as separate files are another tree.
    let other = dir.path().join("other");
    fs::create_dir_all(other.join("b")).unwrap();
    for p in ["a-link", "b/data", "c-link"] {
        fs::write(other.join(p), noise(300_000, 3)).unwrap();
    }
    let s3 = store.save(&other, meta("q")).unwrap();
    assert_ne!(s3.state_digest, s1.state_digest);
}

/// A changed file is re-cut from its old chunks: the second save's tree
/// is the one a fresh store cuts from scratch (same digest), and it adds
/// only the chunks around the change.
#[test]
fn a_changed_file_is_recut_to_the_same_chunks_a_fresh_cut_gives() {
    let dir = tempfile::tempdir().unwrap();
    let store = SnapshotStore::open(&dir.path().join("store")).unwrap();
    let state = dir.path().join("state");
    fs::create_dir(&state).unwrap();
    let mut big = noise(4 << 20, 11);
    fs::write(state.join("big"), &big).unwrap();
    let first = store.save(&state, meta("p")).unwrap();
    // Overwrite 10 KiB in the middle and insert 3 bytes near the start.
    big[2_000_000..2_010_240].copy_from_slice(&noise(10_240, 12));
    big.splice(100_000..100_000, [1u8, 2, 3]);
    fs::write(state.join("big"), &big).unwrap();
    let second = store.save(&state, meta("p")).unwrap();
    assert_eq!(second.files_read, 1);
    assert!(
        second.added_bytes < first.added_bytes / 10,
        "only the chunks around the changes are new: {} of {}",
        second.added_bytes,
        first.added_bytes
    );
    let fresh = SnapshotStore::open(&dir.path().join("fresh")).unwrap();
    let again = fresh.save(&state, meta("p")).unwrap();
    assert_eq!(second.state_digest, again.state_digest);
    assert_eq!(
        store.entries("p", &second.snapshot_id).unwrap()[0].chunks,
        fresh.entries("p", &again.snapshot_id).unwrap()[0].chunks
    );
}

/// A damaged record keeps prune from removing anything (its chunks may
/// still be needed), and the error names the file so the user can deal
/// with it (review finding: the message named nothing).
#[test]
fn prune_refuses_and_names_a_damaged_record() {
    let dir = tempfile::tempdir().unwrap();
    let store = SnapshotStore::open(&dir.path().join("store")).unwrap();
    let state = dir.path().join("state");
    fs::create_dir_all(&state).unwrap();
    fs::write(state.join("a"), noise(200_000, 1)).unwrap();
    let one = store.save(&state, meta("p")).unwrap();
    fs::write(state.join("a"), noise(200_000, 2)).unwrap();
    let two = store.save(&state, meta("p")).unwrap();
    let record = dir
        .path()
        .join("store/snaps/p")
        .join(format!("{}.json", one.snapshot_id));
    assert!(record.exists(), "{}", record.display());
    fs::write(&record, b"{ not json").unwrap();
    let listed = store.list("p").unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].snapshot_id, two.snapshot_id);
    let e = store.prune().unwrap_err().to_string();
    assert!(e.contains(&record.display().to_string()), "{e}");
    // Nothing went: the intact snapshot still materializes.
    store
        .materialize("p", &two.snapshot_id, &dir.path().join("out"))
        .unwrap();
}
