//! Docker test scaffolding shared by the test files that drive the Docker
//! runtime: the busybox image `.ci/docker-up` imports, the check that a
//! Docker test has its engine, and a `docker` command runner.

use std::process::{Command, Stdio};

/// The image `.ci/docker-up` makes with `docker import` (no registry here).
pub(crate) const IMAGE: &str = "berth-test/busybox:latest";

/// A Docker test that runs has its engine and image, or fails saying so.
pub(crate) fn require_docker() {
    let ok = std::env::var_os("DOCKER_HOST").is_some()
        && Command::new("docker")
            .args(["image", "inspect", IMAGE])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    assert!(
        ok,
        "needs a Docker Engine with {IMAGE} at DOCKER_HOST: run .ci/docker-up and export its DOCKER_HOST"
    );
}

/// `docker ARGS`: (success, stdout + stderr).
pub(crate) fn docker(args: &[&str]) -> (bool, String) {
    let o = Command::new("docker").args(args).output().unwrap();
    (
        o.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}
