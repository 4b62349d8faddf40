//! The emergency reserve: a full disk releases it so that state is still
//! recorded, and STATUS says so. Needs root (to mount a small tmpfs).

mod common;

use common::*;
use std::io::Write;
use std::process::Command;
use std::time::Duration;

struct Mount(std::path::PathBuf);

impl Mount {
    fn tmpfs(at: &std::path::Path, size: &str) -> Option<Self> {
        std::fs::create_dir_all(at).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Mount(at.to_path_buf()))
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// A daemon whose state directory is a tmpfs of `size`; these tests are
/// ignored by default (they need root), and fail when run without it.
fn mounted_state(size: &str, extra: &[&str]) -> (Mount, Daemon) {
    assert_eq!(
        berth_os::dirs::uid(),
        0,
        "needs root: it mounts a small tmpfs"
    );
    let mut d = Daemon::unstarted(extra);
    let m = Mount::tmpfs(&d.state_dir(), size).expect("cannot mount a tmpfs here");
    d.spawn(extra);
    (m, d)
}

#[test]
#[ignore = "needs root (it mounts a tmpfs): see README"]
fn a_full_disk_releases_the_reserve_and_the_write_still_lands() {
    let (_m, mut d) = mounted_state("16m", &["--reserve-mib", "4"]);
    let mut c = d.client();
    assert_eq!(c.status().unwrap().emergency_reserve, "armed");
    // Fill every remaining byte.
    let mut f = std::fs::File::create(d.state_dir().join("filler")).unwrap();
    let chunk = vec![7u8; 64 * 1024];
    while f.write_all(&chunk).is_ok() {}
    while f.write_all(&chunk[..512]).is_ok() {}
    drop(f);
    let s = Sleeper::new(60);
    c.register(berth_wire::daemon::RegisterRequest {
        pid: s.pid(),
        command: "x".repeat(256 * 1024),
        ..Default::default()
    })
    .expect("the registration lands in the space the reserve freed");
    assert_eq!(c.status().unwrap().emergency_reserve, "released");
    assert!(!d
        .state_dir()
        .join("berth/.berth-emergency-reserve")
        .exists());
    // And it is really stored: it survives a crash.
    d.kill9();
    d.spawn(&["--reserve-mib", "4"]);
    assert!(d
        .client()
        .list_active()
        .unwrap()
        .iter()
        .any(|p| p.pid == s.pid()));
}

#[test]
#[ignore = "needs root (it mounts a tmpfs): see README"]
fn a_reserve_that_cannot_be_allocated_is_degraded() {
    let (_m, d) = mounted_state("2m", &["--reserve-mib", "4"]);
    assert_eq!(d.client().status().unwrap().emergency_reserve, "degraded");
    d.client().ping().unwrap();
}

fn sh_service(name: &str) -> berth_wire::daemon::ServiceConfig {
    berth_wire::daemon::ServiceConfig {
        name: name.into(),
        cmd: vec!["/bin/sh".into(), "-c".into(), "exec sleep 600".into()],
        autorestart: true,
        ..Default::default()
    }
}

/// The saved service list parses and names exactly `names`.
fn dump_names(d: &Daemon) -> Vec<String> {
    let text = std::fs::read_to_string(d.state_dir().join("berth/berth.services.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("the service dump is not valid JSON ({e}): {text:?}"));
    let list = v
        .as_array()
        .cloned()
        .or_else(|| v["services"].as_array().cloned())
        .unwrap_or_else(|| panic!("no service list in {v}"));
    let mut names: Vec<String> = list
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

fn integrity_ok(d: &Daemon) {
    let db = rusqlite::Connection::open_with_flags(
        d.state_dir().join("berth/berth.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let r: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(r, "ok");
}

/// Issue 21, item 3: SAVE on a full disk either lands (the reserve made
/// room) or fails naming the cause; the dump on disk is never torn, and
/// the daemon keeps serving.
#[test]
#[ignore = "needs root (it mounts a tmpfs): see README"]
fn a_save_on_a_full_disk_never_tears_the_dump() {
    let (_m, mut d) = mounted_state("16m", &["--reserve-mib", "4"]);
    let mut c = d.client();
    c.service_start(sh_service("a")).unwrap();
    c.service_save().unwrap();
    assert_eq!(dump_names(&d), ["a"]);
    c.service_start(sh_service("b")).unwrap();
    let mut f = std::fs::File::create(d.state_dir().join("filler")).unwrap();
    let chunk = vec![7u8; 64 * 1024];
    while f.write_all(&chunk).is_ok() {}
    while f.write_all(&chunk[..512]).is_ok() {}
    drop(f);
    match c.service_save() {
        Ok(_) => assert_eq!(dump_names(&d), ["a", "b"]),
        Err(e) => {
            let msg = e.to_string();
            assert!(
                msg.contains("No space") || msg.contains("space"),
                "the error should say the disk is full: {msg}"
            );
            assert_eq!(dump_names(&d), ["a"], "a failed save left the old dump");
        }
    }
    c.ping().unwrap();
    // Nothing torn after a crash either.
    d.kill9();
    integrity_ok(&d);
    std::fs::remove_file(d.state_dir().join("filler")).unwrap();
    d.spawn(&["--reserve-mib", "4"]);
    d.client().ping().unwrap();
    d.client().service_delete("all").unwrap();
}

/// Issue 21, item 3: a state directory on a read-only file system (a
/// disk remounted read-only after errors): the daemon says so, naming the
/// cause, instead of serving with state it cannot keep; nothing already
/// on disk is harmed, and it serves again once the disk is writable.
#[test]
#[ignore = "needs root (it mounts a tmpfs): see README"]
fn a_read_only_state_dir_gives_clear_errors_and_no_corruption() {
    let (m, mut d) = mounted_state("32m", &[]);
    let mut c = d.client();
    c.service_start(sh_service("ro")).unwrap();
    c.service_save().unwrap();
    // Nothing may hold a file open for writing across a remount.
    c.service_delete("all").unwrap();
    c.service_start(sh_service("kept")).unwrap();
    c.service_save().unwrap();
    c.service_delete("all").unwrap();
    c.shutdown(true, 5.0).unwrap();
    assert!(d.wait_exit(Duration::from_secs(10)));
    let remount = |mode: &str| {
        let out = Command::new("mount")
            .args(["-o", &format!("remount,{mode}")])
            .arg(&m.0)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "remount {mode}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    remount("ro");
    let out = d
        .command(BERTH)
        .args(["daemon"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "a daemon that cannot keep state must not serve"
    );
    assert!(
        err.contains("Read-only") || err.contains("read-only"),
        "the error should name the cause: {err}"
    );
    assert!(
        err.contains(&*d.state_dir().to_string_lossy()),
        "and the path: {err}"
    );
    remount("rw");
    integrity_ok(&d);
    assert_eq!(dump_names(&d), ["kept"]);
    d.spawn(&[]);
    d.client().ping().unwrap();
}
