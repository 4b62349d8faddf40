//! Snapshots end to end through a real daemon (issue 11; seed 000 methods
//! 9-12): the CLI's `berth snapshot` and `berth duplicate` with `--json`,
//! and kill -9 of the daemon in the middle of a save and of a restore:
//! after a restart the list and every listed snapshot are intact, and the
//! state is the old tree or the new one.

mod common;

use berth_client::project::{self, pb};
use common::docker::{docker, require_docker, IMAGE};
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
    unsigned_package_with(root, "hi", "pkg.vibeapp")
}

/// [`unsigned_package`] with `index` as `www/index.html`, at `root/name`.
fn unsigned_package_with(root: &Path, index: &str, name: &str) -> PathBuf {
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
    std::fs::write(src.join("www/index.html"), index).unwrap();
    let sums = std::process::Command::new("sh")
        .current_dir(&src)
        .args([
            "-c",
            "sha256sum manifest.json compose.yaml www/index.html > SHA256SUMS",
        ])
        .status()
        .unwrap();
    assert!(sums.success());
    let out = root.join(name);
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
    // The hint names what a CLI user types and what an RPC caller sets.
    for said in ["not signed", "--no-verify", "verify_signature"] {
        assert!(stderr(&out).contains(said), "{said}: {}", stderr(&out));
    }
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

#[test]
fn reimporting_a_version_a_running_project_uses_never_replaces_it_and_crash_leftovers_go() {
    let mut d = Daemon::start();
    let root = d.dir.path().to_owned();
    let first = unsigned_package(&root);
    let r = json(
        &d,
        &["import", first.to_str().unwrap(), "--no-verify", "--json"],
    );
    let dir = PathBuf::from(r["package_path"].as_str().unwrap());
    let call = |f: &str| {
        let (socket, dir, f) = (d.project_socket.clone(), dir.clone(), f.to_owned());
        tokio_rt().block_on(async move {
            let mut c = project::connect(&socket).await.unwrap();
            let id = "notes".to_string();
            match f.as_str() {
                "up" => {
                    c.ensure_project(pb::EnsureProjectRequest {
                        project_id: id.clone(),
                        package_path: dir.display().to_string(),
                        runtime: "native".into(),
                        ..Default::default()
                    })
                    .await
                    .unwrap();
                    c.open_project(pb::OpenProjectRequest {
                        project_id: id.clone(),
                        ..Default::default()
                    })
                    .await
                    .unwrap();
                    c.start_project(pb::StartProjectRequest {
                        project_id: id,
                        ..Default::default()
                    })
                    .await
                    .unwrap();
                }
                _ => {
                    c.stop_project(pb::StopProjectRequest {
                        project_id: id,
                        ..Default::default()
                    })
                    .await
                    .unwrap();
                }
            }
        })
    };
    call("up");
    let changed = unsigned_package_with(&root, "changed", "pkg2.vibeapp");
    let out = d.berth(&["import", changed.to_str().unwrap(), "--no-verify"]);
    assert!(!out.status.success(), "replaced under a running project");
    for said in ["other contents", "project notes", "stop it"] {
        assert!(stderr(&out).contains(said), "{said}: {}", stderr(&out));
    }
    assert_eq!(std::fs::read(dir.join("www/index.html")).unwrap(), b"hi");
    // The same package again is already there: accepted, untouched.
    let again = json(
        &d,
        &["import", first.to_str().unwrap(), "--no-verify", "--json"],
    );
    assert_eq!(again["package_path"], r["package_path"]);
    // Stopped, the project's package may be replaced.
    call("stop");
    json(
        &d,
        &["import", changed.to_str().unwrap(), "--no-verify", "--json"],
    );
    assert_eq!(
        std::fs::read(dir.join("www/index.html")).unwrap(),
        b"changed"
    );

    // What a daemon killed in the middle of an import leaves (its
    // temporary beside the version) is gone after the restart.
    let half = dir.parent().unwrap().join(".import-99999-0");
    std::fs::create_dir_all(half.join("www")).unwrap();
    d.kill9();
    d.spawn(&[]);
    json(&d, &["snapshot", "ls", "notes", "--json"]);
    assert!(!half.exists(), "{} is left", half.display());
}

#[test]
fn kill_9_during_duplicate_leaves_no_half_copy_and_a_retry_works() {
    let mut d = Daemon::start();
    let state = ensure(&d, "big");
    // Enough data that the copy is being written when the daemon dies.
    for i in 0..8 {
        std::fs::write(state.join(format!("big{i}")), noise(24 << 20, i + 1)).unwrap();
    }
    let want = tree(&state);
    let root = state.parent().unwrap().to_owned();
    let temp = root.join(".duplicate-copy");
    let mut dup = d.command(BERTH);
    dup.args(["duplicate", "big", "copy"]);
    let mut child = dup
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // The copy is written to its temporary; kill -9 while it is.
    let mut seen = false;
    for _ in 0..120_000 {
        if temp.exists() {
            seen = true;
            break;
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(seen, "the copy was never written to {}", temp.display());
    d.kill9();
    let _ = child.wait();
    assert!(!root.join("copy").exists(), "a half copy under the new id");
    d.spawn(&[]);
    // The next daemon removed the temporary of the unfinished copy, and
    // the retry works (or, killed after the copy was registered, the
    // daemon finished its rename).
    let registered = d.berth(&["project", "status", "copy"]).status.success();
    assert!(!temp.exists(), "{} is left", temp.display());
    if !registered {
        let r = json(&d, &["project", "duplicate", "big", "copy", "--json"]);
        assert_eq!(r["new_project_id"], "copy");
    }
    let st = json(&d, &["project", "status", "copy", "--json"]);
    let copy = PathBuf::from(st["state_path"].as_str().unwrap());
    assert_eq!(copy, root.join("copy"));
    assert_eq!(tree(&copy), want);
}

/// Unpacks a `.vibeapp` (zstd tar) into `dest`.
fn unpack(pkg: &Path, dest: &Path) {
    let bytes = std::fs::read(pkg).unwrap();
    let tarball = zstd::stream::decode_all(bytes.as_slice()).unwrap();
    tar::Archive::new(tarball.as_slice()).unpack(dest).unwrap();
}

#[test]
fn a_package_signed_by_berth_pack_verifies_with_minisign_and_imports_trusted_once_its_key_is() {
    let d = Daemon::start();
    let root = d.dir.path();
    let app = root.join("notes-app");
    std::fs::create_dir_all(app.join("www")).unwrap();
    std::fs::write(
        app.join("compose.yaml"),
        "services:\n  web:\n    command: [\"sh\", \"-c\", \"exec sleep 300\"]\n    volumes:\n      - /srv/media:/media\n      - ./www:/www\n",
    )
    .unwrap();
    std::fs::write(
        app.join("manifest.json"),
        r#"{"app_id":"dev.test.notes","name":"notes","version":"2.1","secrets":[{"name":"API_TOKEN","optional":true}]}"#,
    )
    .unwrap();
    std::fs::write(app.join("www/index.html"), b"<h1>notes</h1>\n").unwrap();
    std::os::unix::fs::symlink("www/index.html", app.join("home.html")).unwrap();

    let key = root.join("dev");
    let k = json(&d, &["key", "generate", key.to_str().unwrap(), "--json"]);
    let key_id = k["key_id"].as_str().unwrap().to_owned();
    assert_eq!(key_id.len(), 16);
    let out = d.berth(&["key", "generate", key.to_str().unwrap()]);
    assert!(!out.status.success(), "an existing key is not replaced");

    let pkg = root.join("notes.vibeapp");
    let p = json(
        &d,
        &[
            "pack",
            app.to_str().unwrap(),
            "-o",
            pkg.to_str().unwrap(),
            "--sign",
            root.join("dev.key").to_str().unwrap(),
            "--json",
        ],
    );
    assert_eq!(p["signed_by"], key_id.as_str());
    assert_eq!(p["app_id"], "dev.test.notes");
    let caps: Vec<&str> = p["capabilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(caps, vec!["bind:/srv/media", "secret:API_TOKEN"]);

    // The minisign tool verifies the list with the signer's key.
    let x = root.join("unpacked");
    unpack(&pkg, &x);
    for pubkey in [x.join("signer.pub"), root.join("dev.pub")] {
        let v = std::process::Command::new("minisign")
            .args(["-Vm", "SHA256SUMS", "-p"])
            .arg(&pubkey)
            .current_dir(&x)
            .output()
            .expect("minisign on PATH (.ci/run installs it)");
        assert!(v.status.success(), "minisign -V: {}", stderr(&v));
    }

    let i = json(&d, &["import", pkg.to_str().unwrap(), "--json"]);
    assert_eq!(i["trust_status"], "untrusted");
    let secrets = i["capabilities"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c.as_str() == Some("secret:API_TOKEN"))
        .count();
    assert_eq!(secrets, 1, "each capability listed once: {i}");

    // A relative directory, and `.`, pack the same app (the manifest's
    // Compose file is found once, and `.` is named by its directory).
    for (cwd, arg) in [(root, "notes-app"), (app.as_path(), ".")] {
        let out = d
            .command(BERTH)
            .current_dir(cwd)
            .args(["pack", arg, "-o"])
            .arg(root.join("rel.vibeapp"))
            .arg("--json")
            .output()
            .unwrap();
        assert!(out.status.success(), "pack {arg}: {}", stderr(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["app_id"], "dev.test.notes", "pack {arg}: {v}");
        std::fs::remove_file(root.join("rel.vibeapp")).unwrap();
    }
    let bare = root.join("bare-app");
    std::fs::create_dir_all(&bare).unwrap();
    std::fs::write(
        bare.join("compose.yaml"),
        "services:\n  w:\n    command: [\"true\"]\n",
    )
    .unwrap();
    let out = d
        .command(BERTH)
        .current_dir(&bare)
        .args(["pack", ".", "-o"])
        .arg(root.join("bare.vibeapp"))
        .arg("--json")
        .output()
        .unwrap();
    assert!(out.status.success(), "pack .: {}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["name"], "bare-app", "{v}");
    let t = json(
        &d,
        &[
            "trust",
            "add",
            root.join("dev.pub").to_str().unwrap(),
            "--json",
        ],
    );
    assert_eq!(t["key_id"], key_id.as_str());
    let ls = json(&d, &["trust", "ls", "--json"]);
    assert_eq!(ls["keys"][0]["key_id"], key_id.as_str());
    let i = json(&d, &["import", pkg.to_str().unwrap(), "--json"]);
    assert_eq!(i["trust_status"], "trusted");
    assert_eq!(i["version"], "2.1");
    let dir = i["package_path"].as_str().unwrap().to_owned();
    assert_eq!(
        std::fs::read(Path::new(&dir).join("www/index.html")).unwrap(),
        b"<h1>notes</h1>\n"
    );

    // The imported app runs.
    let out = d.berth(&["up", &dir, "--id", "notes", "--runtime", "native", "-q"]);
    assert!(out.status.success(), "berth up: {}", stderr(&out));
    let st = json(&d, &["project", "status", "notes", "--json"]);
    assert_eq!(st["status"], "running", "{st}");
    let out = d.berth(&["down", "notes"]);
    assert!(out.status.success(), "berth down: {}", stderr(&out));

    // Untrusting makes it untrusted again.
    let r = json(&d, &["trust", "rm", &key_id, "--json"]);
    assert_eq!(r["key_id"], key_id.to_ascii_uppercase().as_str(), "{r}");
    let i = json(&d, &["import", pkg.to_str().unwrap(), "--json"]);
    assert_eq!(i["trust_status"], "untrusted");
}

#[test]
fn cli_autosave_settings_and_prune_by_retention_with_seed_field_names() {
    let d = Daemon::start();
    let state = ensure(&d, "auto");
    std::fs::write(state.join("db"), b"rows").unwrap();
    let a = json(
        &d,
        &[
            "snapshot",
            "autosave",
            "auto",
            "--every",
            "15m",
            "--keep-last",
            "5",
            "--keep-daily",
            "7",
            "--json",
        ],
    );
    assert_eq!(a["enabled"], true);
    assert_eq!(a["interval_seconds"], 900);
    assert_eq!(a["retention"]["keep_last"], 5);
    assert_eq!(a["retention"]["keep_daily"], 7);
    let st = json(&d, &["project", "status", "auto", "--json"]);
    assert_eq!(st["autosave_enabled"], true);
    let out = d.berth(&["snapshot", "autosave", "auto", "--every", "10s"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("too short"), "{}", stderr(&out));
    // Bounded above too (a year), and the refusal changes nothing.
    for every in ["9000h", "1e300"] {
        let out = d.berth(&["snapshot", "autosave", "auto", "--every", every]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "a usage error: {}",
            stderr(&out)
        );
        assert!(stderr(&out).contains("too long"), "{}", stderr(&out));
    }
    let st = json(&d, &["project", "status", "auto", "--json"]);
    assert_eq!(st["autosave_enabled"], true);
    let off = json(&d, &["snapshot", "autosave", "auto", "--off", "--json"]);
    assert_eq!(off["enabled"], false);
    assert_eq!(off["retention"]["keep_last"], 5, "off keeps the policy");
    let st = json(&d, &["project", "status", "auto", "--json"]);
    assert_eq!(st["autosave_enabled"], false);
    // Days, as the limit is stated; `--every` alone keeps the retention.
    let a = json(
        &d,
        &["snapshot", "autosave", "auto", "--every", "1d", "--json"],
    );
    assert_eq!(a["interval_seconds"], 86_400);
    assert_eq!(a["retention"]["keep_last"], 5);
    assert_eq!(a["retention"]["keep_daily"], 7);
    let a = json(
        &d,
        &[
            "snapshot",
            "autosave",
            "auto",
            "--every",
            "1d12h",
            "--keep-weekly",
            "2",
            "--json",
        ],
    );
    assert_eq!(a["interval_seconds"], 129_600);
    assert_eq!(a["retention"]["keep_weekly"], 2);
    assert_eq!(
        a["retention"]["keep_last"], 0,
        "a --keep-* option sets the whole retention"
    );
    let out = d.berth(&["snapshot", "autosave", "auto", "--every", "366d"]);
    assert!(stderr(&out).contains("too long"), "{}", stderr(&out));
    let out = d.berth(&["snapshot", "autosave", "auto", "--every", "xd"]);
    assert!(
        stderr(&out).contains("`xd` is not a duration"),
        "{}",
        stderr(&out)
    );
    json(&d, &["snapshot", "autosave", "auto", "--off", "--json"]);

    let s = json(&d, &["snapshot", "save", "auto", "--json"]);
    assert_eq!(s["paused_ms"], 0, "nothing runs, nothing is paused");
    let p = json(&d, &["snapshot", "prune", "auto", "--json"]);
    assert_eq!(
        p["snapshots_removed"],
        serde_json::json!([]),
        "manual ones stay"
    );
    assert_eq!(
        json(&d, &["snapshot", "ls", "auto", "--json"])["snapshots"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn kill_9_during_prune_keeps_every_listed_snapshot_whole() {
    let mut d = Daemon::start();
    let state = ensure(&d, "gc");
    let mut trees = Vec::new();
    let mut ids = Vec::new();
    for round in 0..3u64 {
        for i in 0..4 {
            std::fs::write(
                state.join(format!("f{i}")),
                noise(6 << 20, round * 10 + i + 1),
            )
            .unwrap();
        }
        trees.push(tree(&state));
        let s = json(&d, &["snapshot", "save", "gc", "--json"]);
        ids.push(s["snapshot_id"].as_str().unwrap().to_owned());
    }
    // The middle snapshot goes: its ~400 chunks are garbage.
    let r = json(&d, &["snapshot", "rm", "gc", &ids[1], "--json"]);
    assert_eq!(r["snapshot_id"], ids[1].as_str(), "{r}");

    let mut prune = d.command(BERTH);
    prune.args(["snapshot", "prune", "--json"]);
    let mut child = prune
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(120));
    d.kill9();
    let _ = child.wait();
    d.spawn(&[]);

    let ls = json(&d, &["snapshot", "ls", "gc", "--json"]);
    let listed: Vec<String> = ls["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["snapshot_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed, vec![ids[2].clone(), ids[0].clone()]);
    for (k, id) in [(0, &ids[0]), (2, &ids[2])] {
        json(
            &d,
            &["snapshot", "restore", "gc", id, "--no-safety", "--json"],
        );
        assert_eq!(
            tree(&state),
            trees[k],
            "snapshot {id} after kill -9 in prune"
        );
    }
    // The interrupted prune's work is finished by the next one.
    json(&d, &["snapshot", "prune", "--json"]);
    json(
        &d,
        &[
            "snapshot",
            "restore",
            "gc",
            &ids[0],
            "--no-safety",
            "--json",
        ],
    );
    assert_eq!(tree(&state), trees[0]);
}

/// Registers `id` (native) on the project API at `socket`.
fn ensure_at(socket: &Path, root: &Path, id: &str) -> PathBuf {
    let dir = write_project(root, id);
    tokio_rt().block_on(async {
        let mut c = project::connect(socket).await.unwrap();
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

/// Two scopes in one state directory keep their own snapshot store,
/// trust store and unpacked packages: a project id used in both lists
/// only its own snapshots, a key trusted in one scope is unknown in the
/// other, and `berth trust` follows `--scope` (or `--db`) to the store
/// the scope's daemon reads.
#[test]
fn scopes_keep_their_own_snapshots_trust_store_and_packages() {
    let d = Daemon::start();
    let root = d.dir.path();
    let log = std::fs::File::create(root.join("daemon-two.log")).unwrap();
    let mut two = d
        .command(BERTH)
        .args(["daemon", "--scope", "two", "--dead-retention-secs", "1"])
        .current_dir(root)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let two_socket = root.join("run/berth/project-two.sock");
    let up = wait_for(Duration::from_secs(10), || {
        tokio_rt().block_on(project::connect(&two_socket)).is_ok()
    });
    let stop = |two: &mut std::process::Child| {
        let _ = two.kill();
        let _ = two.wait();
    };
    if !up {
        stop(&mut two);
        panic!(
            "the scope's daemon did not start: {}",
            std::fs::read_to_string(root.join("daemon-two.log")).unwrap_or_default()
        );
    }
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let a = ensure_at(&d.project_socket, &root.join("a"), "same");
        let b = ensure_at(&two_socket, &root.join("b"), "same");
        assert_ne!(a, b);
        std::fs::write(a.join("who"), b"default").unwrap();
        std::fs::write(b.join("who"), b"two").unwrap();
        let s = json(&d, &["snapshot", "save", "same", "--json"]);
        let ls = json(&d, &["--scope", "two", "snapshot", "ls", "same", "--json"]);
        assert_eq!(ls["snapshots"], serde_json::json!([]), "{ls}");
        json(
            &d,
            &["--scope", "two", "snapshot", "save", "same", "--json"],
        );
        let ls = json(&d, &["snapshot", "ls", "same", "--json"]);
        let ids: Vec<&str> = ls["snapshots"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["snapshot_id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, vec![s["snapshot_id"].as_str().unwrap()]);

        // A signed package; its key trusted in the default scope only.
        let app = root.join("app");
        std::fs::create_dir_all(&app).unwrap();
        std::fs::write(
            app.join("compose.yaml"),
            "services:\n  w:\n    command: [\"true\"]\n",
        )
        .unwrap();
        let key = root.join("k");
        json(&d, &["key", "generate", key.to_str().unwrap(), "--json"]);
        let pkg = root.join("app.vibeapp");
        let pkg = pkg.to_str().unwrap();
        let sk = root.join("k.key");
        json(
            &d,
            &[
                "pack",
                app.to_str().unwrap(),
                "-o",
                pkg,
                "--sign",
                sk.to_str().unwrap(),
                "--json",
            ],
        );
        let pk = root.join("k.pub");
        let t1 = json(&d, &["trust", "add", pk.to_str().unwrap(), "--json"]);
        let ls2 = json(&d, &["--scope", "two", "trust", "ls", "--json"]);
        assert_eq!(ls2["keys"], serde_json::json!([]), "{ls2}");
        let i1 = json(&d, &["import", pkg, "--json"]);
        let i2 = json(&d, &["--scope", "two", "import", pkg, "--json"]);
        assert_eq!(i1["trust_status"], "trusted");
        assert_eq!(i2["trust_status"], "untrusted");
        assert_ne!(i1["package_path"], i2["package_path"]);
        let t2 = json(
            &d,
            &[
                "--scope",
                "two",
                "trust",
                "add",
                pk.to_str().unwrap(),
                "--json",
            ],
        );
        assert_ne!(t1["trust_dir"], t2["trust_dir"]);
        let i2 = json(&d, &["--scope", "two", "import", pkg, "--json"]);
        assert_eq!(i2["trust_status"], "trusted");
        // `--db` names a daemon's database: the scope's gives its store.
        let db = d.state_dir().join("berth/berth-two.db");
        let via_db = json(&d, &["trust", "--db", db.to_str().unwrap(), "ls", "--json"]);
        assert_eq!(via_db["keys"].as_array().unwrap().len(), 1, "{via_db}");
    }));
    stop(&mut two);
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

/// A project on the Docker runtime whose named volume is backed under its
/// state path: saved while its container runs (the container is paused
/// for the capture, the pause is reported, and it runs again after),
/// changed from inside the container, restored: the restarted container
/// sees the saved bytes and not the later file.
#[test]
#[ignore = "needs a Docker Engine: see README"]
fn docker_project_with_a_named_volume_is_saved_while_running_and_restored() {
    require_docker();
    let d = Daemon::start();
    let id = format!("snapvol{}", std::process::id());
    let dir = d.dir.path().join(&id);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("compose.yaml"),
        format!(
            "services:\n  db:\n    image: {IMAGE}\n    command: [\"sh\", \"-c\", \"[ -f /data/boot ] || echo first-boot > /data/boot; exec sleep 600\"]\n    volumes:\n      - data:/data\nvolumes:\n  data: {{}}\n"
        ),
    )
    .unwrap();
    let out = d.berth(&[
        "up",
        dir.to_str().unwrap(),
        "--id",
        &id,
        "--runtime",
        "docker",
        "-q",
    ]);
    assert!(out.status.success(), "berth up: {}", stderr(&out));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let st = json(&d, &["project", "status", &id, "--json"]);
        assert_eq!(st["status"], "running", "{st}");
        let state = PathBuf::from(st["state_path"].as_str().unwrap());
        let container = || {
            let (ok, out) = docker(&[
                "ps",
                "-q",
                "--filter",
                &format!("label=berth.project={id}"),
                "--filter",
                "label=berth.service=db",
            ]);
            assert!(ok, "docker ps: {out}");
            let c = out.trim().to_owned();
            assert!(
                !c.is_empty() && !c.contains('\n'),
                "one running container: {out:?}"
            );
            c
        };
        let exec = |cmd: &str| {
            let (ok, out) = docker(&["exec", &container(), "sh", "-c", cmd]);
            assert!(ok, "docker exec {cmd}: {out}");
            out
        };
        exec("printf saved-bytes > /data/w && mkdir -p /data/sub && printf deep > /data/sub/x");
        // The volume is a directory under the state path.
        let vol = state.join("volumes/data");
        assert_eq!(std::fs::read(vol.join("w")).unwrap(), b"saved-bytes");

        let s = json(&d, &["snapshot", "save", &id, "--json"]);
        let snap = s["snapshot_id"].as_str().unwrap().to_owned();
        assert!(
            s["paused_ms"].as_u64().is_some_and(|ms| ms > 0),
            "a running Docker project is paused for the capture: {s}"
        );
        let (_, status) = docker(&["inspect", "-f", "{{.State.Status}}", &container()]);
        assert_eq!(
            status.trim(),
            "running",
            "the container runs again after the save"
        );

        exec("printf changed > /data/w && rm -r /data/sub && printf later > /data/extra");
        assert_eq!(exec("cat /data/w"), "changed");

        let r = json(&d, &["snapshot", "restore", &id, &snap, "--json"]);
        assert!(
            r["safety_snapshot_id"]
                .as_str()
                .is_some_and(|x| !x.is_empty()),
            "{r}"
        );
        let st = json(&d, &["project", "status", &id, "--json"]);
        assert_eq!(st["status"], "running", "restarted after the restore: {st}");
        assert_eq!(exec("cat /data/w"), "saved-bytes");
        assert_eq!(exec("cat /data/sub/x"), "deep");
        assert_eq!(exec("cat /data/boot"), "first-boot\n");
        assert_eq!(
            exec("[ -e /data/extra ] && echo yes || echo no").trim(),
            "no"
        );
    }));
    let out = d.berth(&["down", &id]);
    assert!(
        out.status.success() || result.is_err(),
        "berth down: {}",
        stderr(&out)
    );
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

/// What `GET /who` on `127.0.0.1:port` answers (headers and body),
/// asked again until it holds `want` (a container just started may not
/// listen yet) or 30 s passed.
fn http_get(port: u16, want: &str) -> String {
    use std::io::{Read, Write};
    let mut last = String::new();
    let asked = std::time::Instant::now();
    while asked.elapsed() < Duration::from_secs(30) {
        last.clear();
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.write_all(b"GET /who HTTP/1.0\r\n\r\n");
            let _ = s.read_to_string(&mut last);
        }
        if last.contains(want) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    last
}

/// The reviewer's case: a Docker project publishing a fixed host port is
/// duplicated; the copy gets a fresh host port (reported by `berth
/// duplicate` and `project status`), starts beside its running source,
/// both answer on their own ports, and `down`, `project rm` and `project
/// forget` of the copy never fail on the port.
#[test]
#[ignore = "needs a Docker Engine: see README"]
fn docker_duplicate_of_a_project_with_a_fixed_host_port_runs_beside_it() {
    require_docker();
    let d = Daemon::start();
    let id = format!("cap{}", std::process::id());
    let copy = format!("{id}-2");
    let fixed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dir = d.dir.path().join(&id);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("compose.yaml"),
        format!(
            "services:\n  web:\n    image: {IMAGE}\n    command: [\"sh\", \"-c\", \"exec httpd -f -p 8080 -h /data\"]\n    ports: [\"127.0.0.1:{fixed}:8080\"]\n    volumes:\n      - data:/data\nvolumes:\n  data: {{}}\n"
        ),
    )
    .unwrap();
    let out = d.berth(&[
        "up",
        dir.to_str().unwrap(),
        "--id",
        &id,
        "--runtime",
        "docker",
        "-q",
    ]);
    assert!(out.status.success(), "berth up: {}", stderr(&out));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let st = json(&d, &["project", "status", &id, "--json"]);
        let state = PathBuf::from(st["state_path"].as_str().unwrap());
        std::fs::write(state.join("volumes/data/who"), b"source").unwrap();
        assert!(http_get(fixed, "source").contains("source"));

        let dup = json(&d, &["duplicate", &id, &copy, "--json"]);
        let moved = dup["ports"][0]["host_port"].as_u64().unwrap() as u16;
        assert_ne!(moved, fixed, "{dup}");
        let st2 = json(&d, &["project", "status", &copy, "--json"]);
        let copy_state = PathBuf::from(st2["state_path"].as_str().unwrap());
        std::fs::write(copy_state.join("volumes/data/who"), b"copy").unwrap();
        let out = d.berth(&["project", "start", &copy]);
        assert!(out.status.success(), "start the copy: {}", stderr(&out));
        assert!(http_get(fixed, "source").contains("source"));
        assert!(http_get(moved, "copy").contains("copy"));
        let st2 = json(&d, &["project", "status", &copy, "--json"]);
        assert_eq!(st2["status"], "running", "{st2}");

        for args in [
            vec!["down", copy.as_str()],
            vec!["project", "rm", copy.as_str()],
            vec!["project", "forget", copy.as_str()],
        ] {
            let out = d.berth(&args);
            assert!(out.status.success(), "berth {args:?}: {}", stderr(&out));
        }
        assert!(
            http_get(fixed, "source").contains("source"),
            "the source still runs"
        );
    }));
    let out = d.berth(&["down", &id]);
    if let Err(e) = result {
        let _ = d.berth(&["down", &copy]);
        std::panic::resume_unwind(e);
    }
    assert!(out.status.success(), "berth down: {}", stderr(&out));
}

/// An unsigned package of 1 500 files of 64 KiB (about 94 MiB): its
/// unpacking takes long enough to be killed in the middle.
fn big_package(root: &Path) -> PathBuf {
    let src = root.join("big-src");
    std::fs::create_dir_all(src.join("data")).unwrap();
    std::fs::write(
        src.join("manifest.json"),
        r#"{"app_id":"dev.test.bigpkg","name":"Big","version":"1.0.0"}"#,
    )
    .unwrap();
    std::fs::write(
        src.join("compose.yaml"),
        "services:\n  web:\n    command: [\"sleep\", \"30\"]\n",
    )
    .unwrap();
    for i in 0..1500u64 {
        std::fs::write(src.join(format!("data/f{i}")), noise(64 << 10, i + 7)).unwrap();
    }
    let sums = std::process::Command::new("sh")
        .current_dir(&src)
        .args([
            "-c",
            "find . -type f ! -name SHA256SUMS | sed 's#^\\./##' | sort | xargs sha256sum > SHA256SUMS",
        ])
        .status()
        .unwrap();
    assert!(sums.success());
    let out = root.join("big.vibeapp");
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
fn kill_9_during_import_leaves_a_temporary_the_next_daemon_removes_and_a_retry_works() {
    let mut d = Daemon::start();
    let pkg = big_package(d.dir.path());
    let app_dir = d.state_dir().join("berth/packages/dev.test.bigpkg");
    let temps = || -> Vec<PathBuf> {
        std::fs::read_dir(&app_dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(".import-"))
            .map(|e| e.path())
            .collect()
    };
    let mut import = d.command(BERTH);
    import.args(["import", pkg.to_str().unwrap(), "--no-verify"]);
    let mut child = import
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // The package is being unpacked to its temporary; kill -9 then.
    let mut seen = false;
    for _ in 0..120_000 {
        if !temps().is_empty() {
            seen = true;
            break;
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(seen, "the import never unpacked to a temporary");
    d.kill9();
    let _ = child.wait();
    assert!(!temps().is_empty(), "the kill left no temporary to test");
    d.spawn(&[]);
    let r = json(
        &d,
        &["import", pkg.to_str().unwrap(), "--no-verify", "--json"],
    );
    assert!(temps().is_empty(), "left: {:?}", temps());
    let dir = PathBuf::from(r["package_path"].as_str().unwrap());
    assert_eq!(
        std::fs::read(dir.join("data/f1499")).unwrap(),
        noise(64 << 10, 1499 + 7)
    );
}

/// Issue 11: labels the CLI cannot keep as given (an empty key, a key
/// given twice, a huge value) and key files of the wrong kind are refused
/// with a sentence that says what is wrong; nothing is saved.
#[test]
fn cli_refuses_bad_labels_and_key_files_of_the_wrong_kind() {
    let d = Daemon::start();
    ensure(&d, "lab");
    let huge = format!("k={}", "x".repeat(2000));
    for (args, why) in [
        (vec!["--label", "=x"], "empty key"),
        (
            vec!["--label", "a=1", "--label", "a=2"],
            "the key \"a\" is given twice",
        ),
        (vec!["--label", huge.as_str()], "the longest is 1024"),
    ] {
        let mut all = vec!["snapshot", "save", "lab"];
        all.extend(args);
        let out = d.berth(&all);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(stderr(&out).contains(why), "{why}: {}", stderr(&out));
    }
    let ls = json(&d, &["snapshot", "ls", "lab", "--json"]);
    assert_eq!(ls["snapshots"], serde_json::json!([]));
    let s = json(
        &d,
        &["snapshot", "save", "lab", "--label", "a=1=2", "--json"],
    );
    assert!(!s["snapshot_id"].as_str().unwrap().is_empty());

    let root = d.dir.path();
    let key = root.join("dev");
    json(&d, &["key", "generate", key.to_str().unwrap(), "--json"]);
    let app = write_project(root, "app");
    let out = d.berth(&[
        "pack",
        app.to_str().unwrap(),
        "-o",
        root.join("app.vibeapp").to_str().unwrap(),
        "--sign",
        root.join("dev.pub").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("this is a public key file"),
        "{}",
        stderr(&out)
    );
    assert!(!root.join("app.vibeapp").exists());
    let out = d.berth(&["trust", "add", root.join("dev.key").to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("this is a secret key file"),
        "{}",
        stderr(&out)
    );
    let ls = d.berth(&["trust", "ls"]);
    assert!(!stdout(&ls).contains("dev"), "{}", stdout(&ls));
}

/// Issue 11: a native service finds its named volume and state-backed
/// bind through `BERTH_VOLUME_<NAME>` and `BERTH_BIND_<TARGET>`, both
/// under state_path, so what it writes there is in the next snapshot.
#[test]
fn native_services_write_their_volumes_under_state_path() {
    let d = Daemon::start();
    let dir = d.dir.path().join("vols");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("compose.yaml"),
        "services:\n  app:\n    command: [\"sh\", \"-c\", \"echo v > \\\"$$BERTH_VOLUME_PG_DATA/f\\\"; echo b > \\\"$$BERTH_BIND_SRV_UP/g\\\"; echo \\\"$$BERTH_STATE_DIR\\\" > \\\"$$BERTH_STATE_DIR/where\\\"; exec sleep 300\"]\n    volumes: [\"pg-data:/var/lib/pg\", \"/srv/uploads:/srv/up\"]\nvolumes:\n  pg-data: {}\n",
    )
    .unwrap();
    let out = d.berth(&["up", dir.to_str().unwrap(), "--runtime", "native"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let st = json(&d, &["project", "status", "vols", "--json"]);
    let state = PathBuf::from(st["state_path"].as_str().unwrap());
    let where_ = state.join("where");
    assert!(
        wait_for(Duration::from_secs(10), || where_.exists()),
        "the service did not write {}",
        where_.display()
    );
    assert_eq!(
        std::fs::read_to_string(&where_).unwrap().trim_end(),
        state.to_str().unwrap()
    );
    assert_eq!(
        std::fs::read(state.join("volumes/pg-data/f")).unwrap(),
        b"v\n"
    );
    assert_eq!(
        std::fs::read(state.join("binds/srv/uploads/g")).unwrap(),
        b"b\n"
    );
    let s = json(&d, &["snapshot", "save", "vols", "--json"]);
    assert!(s["size_bytes"].as_u64().unwrap() >= 4, "{s}");
    d.berth(&["down", "vols"]);
}
