//! The emergency reserve: a full disk releases it so that state is still
//! recorded, and STATUS says so. Needs root (to mount a small tmpfs).

mod common;

use common::*;
use std::io::Write;
use std::process::Command;

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
