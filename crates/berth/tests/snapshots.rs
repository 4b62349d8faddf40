//! Snapshots end to end through a real daemon (issue 11; seed 000 methods
//! 9-12): the CLI's `berth snapshot` and `berth duplicate` with `--json`,
//! and kill -9 of the daemon in the middle of a save and of a restore:
//! after a restart the list and every listed snapshot are intact, and the
//! state is the old tree or the new one.

mod common;

use berth_client::project::{self, pb};
use common::*;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn write_project(root: &Path, id: &str) -> PathBuf {
    let dir = root.join(id);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("compose.yaml"),
        "services:\n  web:\n    command: [\"sh\", \"-c\", \"exec sleep 300\"]\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("manifest.json"),
        format!(r#"{{"app_id":"dev.test.{id}","name":"{id}","version":"1.0"}}"#),
    )
    .unwrap();
    dir
}

/// Registers `id` (native) and returns its state path.
fn ensure(d: &Daemon, id: &str) -> PathBuf {
    let dir = write_project(d.dir.path(), id);
    tokio_rt().block_on(async {
        let mut c = project::connect(&d.project_socket).await.unwrap();
        let r = c
            .ensure_project(pb::EnsureProjectRequest {
                project_id: id.into(),
                package_path: dir.to_string_lossy().into_owned(),
                runtime: "native".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        PathBuf::from(r.state_path)
    })
}

fn json(d: &Daemon, args: &[&str]) -> serde_json::Value {
    let out = d.berth(args);
    assert!(out.status.success(), "berth {args:?}: {}", stderr(&out));
    serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("{e}: {}", stdout(&out)))
}

/// Pseudo-random bytes that do not compress, fast to make.
fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v = Vec::with_capacity(n);
    while v.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(n);
    v
}

fn tree(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            if e.file_type().unwrap().is_dir() {
                out.push((rel + "/", Vec::new()));
                walk(root, &p, out);
            } else {
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    walk(root, root, &mut out);
    out.sort();
    out
}

#[test]
fn cli_saves_lists_restores_and_duplicates_with_seed_field_names() {
    let d = Daemon::start();
    let state = ensure(&d, "notes");
    std::fs::create_dir_all(state.join("db/empty")).unwrap();
    std::fs::write(state.join("db/rows"), b"one\n").unwrap();
    let before = tree(&state);

    let s = json(
        &d,
        &["snapshot", "save", "notes", "--label", "who=test", "--json"],
    );
    let id = s["snapshot_id"].as_str().unwrap().to_owned();
    assert_eq!(s["state_digest"].as_str().unwrap().len(), 64);
    assert_eq!(s["size_bytes"], 4);
    assert!(s["timestamp"].as_str().unwrap().ends_with('Z'));

    std::fs::write(state.join("db/rows"), b"one\ntwo\n").unwrap();
    std::fs::write(state.join("stray"), b"x").unwrap();
    let r = json(&d, &["snapshot", "restore", "notes", &id, "--json"]);
    assert_eq!(r["restored_snapshot_id"], id.as_str());
    let safety = r["safety_snapshot_id"].as_str().unwrap().to_owned();
    assert!(!safety.is_empty());
    assert_eq!(tree(&state), before);

    let ls = json(&d, &["snapshot", "ls", "notes", "--json"]);
    let snaps = ls["snapshots"].as_array().unwrap();
    assert_eq!(snaps.len(), 2);
    assert_eq!(snaps[0]["snapshot_id"], safety.as_str(), "newest first");
    assert_eq!(snaps[0]["reason"], "before-restore");
    assert_eq!(snaps[0]["parent_snapshot_id"], id.as_str());
    assert_eq!(snaps[1]["labels"]["who"], "test");
    assert_eq!(snaps[1]["app_version"], "1.0");
    let st = json(&d, &["project", "status", "notes", "--json"]);
    assert_eq!(st["snapshot_count"], 2);
    assert_eq!(st["autosave_enabled"], false);

    let dup = json(
        &d,
        &["duplicate", "notes", "notes2", "--from", &id, "--json"],
    );
    assert_eq!(dup["new_project_id"], "notes2");
    let dup_state = PathBuf::from(dup["state_path"].as_str().unwrap());
    assert_eq!(tree(&dup_state), before);

    let out = d.berth(&["snapshot", "restore", "notes", "0000000000000-00000000"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("no snapshot"), "{}", stderr(&out));
}

#[test]
fn kill_9_during_save_and_restore_keeps_every_listed_snapshot_and_a_whole_state() {
    let mut d = Daemon::start();
    let state = ensure(&d, "crashy");
    std::fs::write(state.join("small"), b"first state").unwrap();
    let first = json(&d, &["snapshot", "save", "crashy", "--json"]);
    let first_id = first["snapshot_id"].as_str().unwrap().to_owned();
    // Enough data that the save is still running when the daemon dies.
    for i in 0..8 {
        std::fs::write(state.join(format!("big{i}")), noise(24 << 20, i + 1)).unwrap();
    }
    let big = tree(&state);

    // kill -9 in the middle of a save.
    let mut save = d.command(BERTH);
    save.args(["snapshot", "save", "crashy", "--json"]);
    let mut child = save
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    d.kill9();
    let _ = child.wait();
    d.spawn(&[]);
    let ls = json(&d, &["snapshot", "ls", "crashy", "--json"]);
    let ids: Vec<String> = ls["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["snapshot_id"].as_str().unwrap().to_owned())
        .collect();
    assert!(ids.contains(&first_id), "{ids:?}");
    assert_eq!(tree(&state), big, "a save never changes the state");

    // A full save of the big state, then kill -9 in the middle of a
    // restore of the small one: afterwards the state is one of the two.
    let full = json(&d, &["snapshot", "save", "crashy", "--json"]);
    let full_id = full["snapshot_id"].as_str().unwrap().to_owned();
    let mut restore = d.command(BERTH);
    restore.args(["snapshot", "restore", "crashy", &first_id, "--no-safety"]);
    let mut child = restore
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(150));
    d.kill9();
    let _ = child.wait();
    d.spawn(&[]);
    let small = vec![("small".to_owned(), b"first state".to_vec())];
    let now = tree(&state);
    assert!(now == big || now == small, "a mixed state after kill -9");

    // Every listed snapshot restores to exactly what it held.
    let ls = json(&d, &["snapshot", "ls", "crashy", "--json"]);
    let listed: Vec<String> = ls["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["snapshot_id"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        listed.contains(&first_id) && listed.contains(&full_id),
        "{listed:?}"
    );
    json(
        &d,
        &[
            "snapshot",
            "restore",
            "crashy",
            &full_id,
            "--no-safety",
            "--json",
        ],
    );
    assert_eq!(tree(&state), big);
    json(
        &d,
        &[
            "snapshot",
            "restore",
            "crashy",
            &first_id,
            "--no-safety",
            "--json",
        ],
    );
    assert_eq!(tree(&state), small);

    // Prune keeps what is listed.
    json(&d, &["snapshot", "prune", "--json"]);
    json(
        &d,
        &[
            "snapshot",
            "restore",
            "crashy",
            &full_id,
            "--no-safety",
            "--json",
        ],
    );
    assert_eq!(tree(&state), big);
}

/// A package made with the system's `tar` and `sha256sum`, unsigned.
fn unsigned_package(root: &Path) -> PathBuf {
    let src = root.join("pkg-src");
    std::fs::create_dir_all(src.join("www")).unwrap();
    std::fs::write(
        src.join("manifest.json"),
        r#"{"app_id":"dev.test.pkg","name":"Pkg","version":"0.1.0"}"#,
    )
    .unwrap();
    std::fs::write(
        src.join("compose.yaml"),
        "services:\n  web:\n    command: [\"sleep\", \"30\"]\n",
    )
    .unwrap();
    std::fs::write(src.join("www/index.html"), "hi").unwrap();
    let sums = std::process::Command::new("sh")
        .current_dir(&src)
        .args([
            "-c",
            "sha256sum manifest.json compose.yaml www/index.html > SHA256SUMS",
        ])
        .status()
        .unwrap();
    assert!(sums.success());
    let out = root.join("pkg.vibeapp");
    let tar = std::process::Command::new("tar")
        .arg("-cf")
        .arg(&out)
        .arg("-C")
        .arg(&src)
        .arg(".")
        .status()
        .unwrap();
    assert!(tar.success());
    out
}

#[test]
fn cli_import_refuses_an_unsigned_package_unless_told_and_registers_it() {
    let d = Daemon::start();
    let pkg = unsigned_package(d.dir.path());
    let p = pkg.to_str().unwrap();
    let out = d.berth(&["import", p]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("not signed"), "{}", stderr(&out));
    let r = json(&d, &["import", p, "--no-verify", "--json"]);
    assert_eq!(r["trust_status"], "unsigned");
    assert_eq!(r["app_id"], "dev.test.pkg");
    assert_eq!(r["version"], "0.1.0");
    let dir = PathBuf::from(r["package_path"].as_str().unwrap());
    assert_eq!(std::fs::read(dir.join("www/index.html")).unwrap(), b"hi");
    // The unpacked package is a project directory.
    tokio_rt().block_on(async {
        let mut c = project::connect(&d.project_socket).await.unwrap();
        let e = c
            .ensure_project(pb::EnsureProjectRequest {
                project_id: "pkg".into(),
                package_path: dir.display().to_string(),
                runtime: "native".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(e.created);
    });
}
