//! `berth config` and the Compose options of `berth up` (issue 17): the
//! resolved model printed as `docker compose config` does, and a project
//! made of an override file, profiles, `extends` and `include` run under
//! the Compose project name, on the native runtime and (when an engine is
//! at DOCKER_HOST) on Docker.

mod common;

use common::{stderr, stdout, Daemon, BERTH};
use std::path::Path;
use std::process::Command;

const IMAGE: &str = "berth-test/busybox:latest";

/// A project: `name: shop`; `web` extends `base` and needs `db`
/// (profile `storage`, pulled in); `tools` (profile `tools`) does not run;
/// the override adds `worker`; the include adds `cache` with its own
/// `.env`. `image` is the line each service gets (empty on native).
fn write_shop(dir: &Path, image: &str) {
    std::fs::create_dir_all(dir.join("extra")).unwrap();
    let svc = |cmd: &str| format!("{image}    command: [\"sleep\", \"{cmd}\"]\n");
    std::fs::write(
        dir.join("compose.yaml"),
        format!(
            "name: shop
include: [extra/compose.yaml]
services:
  base:
{}    environment: {{GREETING: hello}}
    profiles: [never]
  web:
    extends: base
    profiles: [web]
    depends_on: [db]
  db:
{}    profiles: [storage]
  tools:
{}    profiles: [tools]
",
            svc("30"),
            svc("30"),
            svc("30")
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("compose.override.yaml"),
        format!("services:\n  worker:\n{}", svc("30")),
    )
    .unwrap();
    std::fs::write(
        dir.join("extra/compose.yaml"),
        format!("services:\n  cache:\n{}", svc("${NAP}")),
    )
    .unwrap();
    std::fs::write(dir.join("extra/.env"), "NAP=30\n").unwrap();
}

fn config(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(BERTH)
        .arg("config")
        .args(args)
        .current_dir(dir)
        .env_remove("COMPOSE_PROFILES")
        .env_remove("COMPOSE_PROJECT_NAME")
        .output()
        .unwrap()
}

#[test]
fn config_prints_the_resolved_model() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("Shop Dir");
    write_shop(&dir, "");
    let out = config(&dir, &["--profile", "web"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let yaml = stdout(&out);
    assert!(yaml.starts_with("name: shop\n"), "{yaml}");
    // extends: the base's environment; include: the included .env used.
    assert!(yaml.contains("GREETING: hello"), "{yaml}");
    assert!(
        yaml.contains("- sleep\n    - \"30\"")
            || yaml.contains("- '30'")
            || yaml.contains("- \"30\""),
        "{yaml}"
    );
    let out = config(&dir, &["--profile", "web", "--services"]);
    // Own services, then included ones, then the override's.
    assert_eq!(stdout(&out), "web\ndb\ncache\nworker\n");
    let out = config(&dir, &["--profiles"]);
    assert_eq!(stdout(&out), "never\nstorage\ntools\nweb\n");
    let out = config(&dir, &["--profile", "web", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["name"], "shop");
    assert_eq!(v["services"]["cache"]["command"][1], "30");
    assert_eq!(
        v["services"]["web"]["depends_on"]["db"]["condition"],
        "service_started"
    );
    // -f replaces the default files (no override then).
    let out = config(
        &dir,
        &["-f", "compose.yaml", "--profile", "web", "--services"],
    );
    assert_eq!(stdout(&out), "web\ndb\ncache\n");
    // -q: only the exit status; an error names the path.
    let out = config(&dir, &["-q"]);
    assert!(
        out.status.success() && stdout(&out).is_empty(),
        "{}",
        stderr(&out)
    );
    std::fs::write(
        dir.join("compose.override.yaml"),
        "services:\n  worker:\n    command: [\"${NEED:?give NEED}\"]\n",
    )
    .unwrap();
    let out = config(&dir, &["-q"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out)
            .contains("worker.command[0]: required variable `NEED` is missing a value: give NEED"),
        "{}",
        stderr(&out)
    );
}

fn docker_available() -> bool {
    let ok = std::env::var_os("DOCKER_HOST").is_some()
        && Command::new("docker")
            .args(["image", "inspect", IMAGE])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var("BERTH_REQUIRE_DOCKER").as_deref() != Ok("1"),
            "BERTH_REQUIRE_DOCKER=1 but no Docker Engine with {IMAGE} at DOCKER_HOST (run .ci/docker-up)"
        );
        eprintln!("skipping the Docker half: no engine with {IMAGE} at DOCKER_HOST");
    }
    ok
}

#[test]
fn up_and_down_follow_the_compose_project() {
    let mut runs = vec![("native", String::new())];
    if docker_available() {
        runs.push(("docker", format!("    image: {IMAGE}\n")));
    }
    for (runtime, image) in runs {
        let d = Daemon::start();
        let dir = d.dir.path().join("shop-src");
        write_shop(&dir, &image);
        let out = d.berth(&[
            "up",
            dir.to_str().unwrap(),
            "--runtime",
            runtime,
            "--profile",
            "web",
        ]);
        assert!(
            out.status.success(),
            "{runtime}: {}\n{}",
            stdout(&out),
            stderr(&out)
        );
        // The project id is the Compose project name.
        assert!(stdout(&out).contains("project shop"), "{}", stdout(&out));
        let out = d.berth(&["project", "status", "shop"]);
        let text = stdout(&out);
        for s in ["web", "db", "worker", "cache"] {
            assert!(text.contains(s), "{runtime}: {s} missing in {text}");
        }
        assert!(!text.contains("tools"), "{runtime}: {text}");
        // `down DIR` finds the project by the same name.
        let out = d.berth(&["down", dir.to_str().unwrap()]);
        assert!(out.status.success(), "{runtime}: {}", stderr(&out));
        let out = d.berth(&["projects", "--status", "running"]);
        assert!(
            !stdout(&out).contains("shop"),
            "{runtime}: {}",
            stdout(&out)
        );
    }
}

/// Issue 19: Compose's project-name order (-p, COMPOSE_PROJECT_NAME,
/// `name:`, the directory), and an invalid -p refused with the rule.
#[test]
fn project_name_follows_compose_precedence() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("Shop Dir");
    write_shop(&dir, "");
    let name = |args: &[&str], env: Option<&str>| {
        let mut c = Command::new(BERTH);
        c.arg("config")
            .args(args)
            .args(["--format", "json"])
            .current_dir(&dir)
            .env_remove("COMPOSE_PROFILES")
            .env_remove("COMPOSE_PROJECT_NAME");
        if let Some(e) = env {
            c.env("COMPOSE_PROJECT_NAME", e);
        }
        let out = c.output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
        v["name"].as_str().unwrap().to_owned()
    };
    assert_eq!(name(&[], None), "shop");
    assert_eq!(name(&[], Some("from-env")), "from-env");
    assert_eq!(name(&["-p", "flag"], Some("from-env")), "flag");
    let out = config(&dir, &["-p", "My Proj"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("\"My Proj\" is not a valid project name")
            && err.contains("lowercase letters, digits, dashes and underscores"),
        "{err}"
    );
    // The directory's name is still normalised.
    std::fs::write(
        dir.join("compose.yaml"),
        "services:\n  a:\n    command: [\"true\"]\n",
    )
    .unwrap();
    std::fs::remove_file(dir.join("compose.override.yaml")).unwrap();
    assert_eq!(name(&[], None), "shopdir");
}

/// Issue 19: `config` (and `config -q`) refuses what `validate` and `up`
/// refuse, naming the path and the reason; unknown keys are warnings on
/// stderr.
#[test]
fn config_fails_on_what_up_refuses() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let cases = [
        (
            "    healthcheck:\n      test: [\"exit 0\"]\n",
            "a.healthcheck.test",
        ),
        ("    stop_grace_period: forever\n", "a.stop_grace_period"),
        ("    depends_on: [nosuch]\n", "a.depends_on.nosuch"),
        ("    mem_limit: lots\n", "a.mem_limit"),
    ];
    for (extra, path) in cases {
        std::fs::write(
            dir.join("compose.yaml"),
            format!("services:\n  a:\n    command: [\"true\"]\n{extra}"),
        )
        .unwrap();
        for args in [&["-q"][..], &[][..]] {
            let out = config(dir, args);
            assert_eq!(out.status.code(), Some(1), "{extra}");
            assert!(stderr(&out).contains(path), "{}", stderr(&out));
        }
    }
    std::fs::write(dir.join("compose.yaml"), "").unwrap();
    let out = config(dir, &["-q"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no services"), "{}", stderr(&out));
    std::fs::write(
        dir.join("compose.yaml"),
        "services:\n  a:\n    command: [\"true\"]\n    bogus: 1\n",
    )
    .unwrap();
    let out = config(dir, &["-q"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("a.bogus"), "{}", stderr(&out));
}
