//! `berth up` and `berth project ...` as a user types them, on the native
//! runtime (no Docker needed): up is idempotent as `docker compose up`,
//! services start and stop one by one, and a project can be forgotten.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn project(root: &Path, name: &str, compose: &str) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("compose.yaml"), compose).unwrap();
    dir
}

fn ok(d: &Daemon, args: &[&str]) -> String {
    let out = d.berth(args);
    assert!(
        out.status.success(),
        "berth {args:?} failed: {}\n{}",
        stderr(&out),
        stdout(&out)
    );
    stdout(&out)
}

fn service_status(d: &Daemon, id: &str, svc: &str) -> String {
    let v: serde_json::Value =
        serde_json::from_str(&ok(d, &["project", "status", id, "--json"])).unwrap();
    v["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == svc)
        .map(|s| s["status"].as_str().unwrap().to_string())
        .unwrap_or_else(|| "absent".into())
}

fn logs(d: &Daemon, id: &str) -> String {
    ok(d, &["project", "logs", id])
}

const LOOP: &str =
    "services:\n  web:\n    command: [\"sh\", \"-c\", \"echo started-v1; exec sleep 1000\"]\n";

#[test]
fn up_again_is_a_no_op_starts_what_stopped_and_applies_edits() {
    let d = Daemon::start();
    let dir = project(d.dir.path(), "notes", LOOP);
    let p = dir.to_str().unwrap();
    let first = ok(&d, &["up", p]);
    assert!(first.contains("web      running"), "{first}");
    // Up again on a running project: nothing restarted.
    let again = ok(&d, &["up", p]);
    assert!(again.contains("web      running"), "{again}");
    assert!(wait_for(Duration::from_secs(5), || logs(&d, "notes")
        .contains("started-v1")));
    assert_eq!(logs(&d, "notes").matches("started-v1").count(), 1);

    // After down --keep, up starts it again.
    ok(&d, &["down", "--keep", p]);
    assert_eq!(service_status(&d, "notes", "web"), "stopped");
    ok(&d, &["up", p]);
    assert_eq!(service_status(&d, "notes", "web"), "running");

    // An edited file: the changed service is re-created, a new one started.
    std::fs::write(
        dir.join("compose.yaml"),
        LOOP.replace("v1", "v2") + "  db:\n    command: [\"sleep\", \"1000\"]\n",
    )
    .unwrap();
    ok(&d, &["up", p]);
    assert!(wait_for(Duration::from_secs(5), || logs(&d, "notes")
        .contains("started-v2")));
    assert_eq!(service_status(&d, "notes", "db"), "running");

    // A service removed from the file is stopped.
    std::fs::write(dir.join("compose.yaml"), LOOP.replace("v1", "v2")).unwrap();
    let out = ok(&d, &["up", p]);
    assert!(!out.contains("db"), "{out}");
    assert_eq!(logs(&d, "notes").matches("started-v2").count(), 1);
    ok(&d, &["down", p]);
}

#[test]
fn up_retries_a_failed_start() {
    let d = Daemon::start();
    let dir = project(
        d.dir.path(),
        "flaky",
        "services:\n  web:\n    command: [\"/nonexistent/server\"]\n",
    );
    let p = dir.to_str().unwrap();
    let failed = d.berth(&["up", p]);
    assert_eq!(failed.status.code(), Some(1), "{}", stdout(&failed));
    std::fs::write(dir.join("compose.yaml"), LOOP).unwrap();
    let out = ok(&d, &["up", p]);
    assert!(out.contains("web      running"), "{out}");
    ok(&d, &["down", p]);
}

#[test]
fn services_start_stop_and_restart_one_by_one_and_a_project_can_be_forgotten() {
    let d = Daemon::start();
    let dir = project(
        d.dir.path(),
        "pair",
        &(LOOP.to_string() + "  db:\n    command: [\"sleep\", \"1000\"]\n"),
    );
    let p = dir.to_str().unwrap();
    ok(&d, &["up", p]);
    let out = ok(&d, &["project", "stop", "pair", "db"]);
    assert_eq!(out, "stopped 1 service(s) of project pair\n");
    assert_eq!(service_status(&d, "pair", "db"), "stopped");
    assert_eq!(service_status(&d, "pair", "web"), "running");
    let list = ok(&d, &["projects"]);
    assert!(list.contains("running"), "{list}");

    let out = ok(&d, &["project", "start", "pair", "db"]);
    assert!(out.contains("db       running"), "{out}");

    ok(&d, &["project", "restart", "pair", "web"]);
    assert!(wait_for(Duration::from_secs(5), || logs(&d, "pair")
        .matches("started-v1")
        .count()
        == 2));
    assert_eq!(service_status(&d, "pair", "db"), "running");

    let out = ok(&d, &["project", "stop", "pair"]);
    assert_eq!(out, "stopped 2 service(s) of project pair\n");
    let out = ok(&d, &["project", "stop", "pair"]);
    assert_eq!(out, "project pair was not running\n");
    ok(&d, &["project", "restart", "pair"]);
    assert_eq!(service_status(&d, "pair", "web"), "running");

    let out = ok(&d, &["project", "forget", "pair", "--force"]);
    assert!(
        out.contains("removed native service berth-pair.web")
            && out.contains("project pair forgotten; its state stays in "),
        "{out}"
    );
    assert!(!ok(&d, &["projects"]).contains("pair"));
    // And it can be brought up again from scratch.
    let out = ok(&d, &["up", p]);
    assert!(out.contains("registered"), "{out}");
    ok(&d, &["down", p]);
}

/// Item 3 of issue 19: `up` says what `validate` knows, and `validate`
/// takes what `up` takes.
#[test]
fn up_prints_the_validators_warnings_first_and_validate_takes_a_directory() {
    let d = Daemon::start();
    let dir = project(
        d.dir.path(),
        "typo",
        "services:\n  web:\n    comand: [\"sleep\", \"100\"]\n",
    );
    let p = dir.to_str().unwrap();
    let out = d.berth(&["up", "--runtime", "native", p]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(
        lines[0], "warning: web.comand: unknown service key `comand`, ignored",
        "{err}"
    );
    assert!(
        lines[1].starts_with("berth: ") && lines[1].contains("give the service a `command`"),
        "{err}"
    );
    assert!(!err.contains("[INVALID_MANIFEST]"), "{err}");

    // validate DIR reads the directory's Compose file, as up does.
    let out = d.berth(&["validate", "--runtime", "native", p]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.starts_with(&format!(
            "{}: NOT valid (1 service: web)\n",
            dir.join("compose.yaml").display()
        )),
        "{text}"
    );
    assert!(
        text.contains("web.comand: unknown service key `comand`, ignored"),
        "{text}"
    );
    let out = d.berth(&["validate", d.dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("has no Compose file (looked for compose.yaml"),
        "{}",
        stderr(&out)
    );

    // An empty file's report says so in words.
    let empty = d.dir.path().join("empty.yaml");
    std::fs::write(&empty, "").unwrap();
    let out = d.berth(&["validate", empty.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).starts_with(&format!("{}: NOT valid (no services)\n", empty.display())),
        "{}",
        stdout(&out)
    );

    // A file that cannot be read as Compose does not claim it has no
    // services: it says it could not be read, then why.
    let bad = d.dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "services:\n  web:\n    command: [\"true\"]\n    ports: nonsense\n",
    )
    .unwrap();
    let out = d.berth(&["validate", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains("NOT valid (the file could not be read as Compose)")
            && text.contains("web.ports"),
        "{text}"
    );

    // Compose's own name for a volume (`<project>_<key>`, which the CLI's
    // resolved file spells out) is no override to warn about; another is.
    let vols = d.dir.path().join("vols");
    std::fs::create_dir_all(&vols).unwrap();
    let vfile = vols.join("compose.yaml");
    for (def, warned) in [("{}", false), ("{name: shared}", true)] {
        std::fs::write(
            &vfile,
            format!("services:\n  web:\n    image: busybox\n    volumes: [\"data:/data\"]\nvolumes:\n  data: {def}\n"),
        )
        .unwrap();
        let out = d.berth(&["validate", "--runtime", "docker", vfile.to_str().unwrap()]);
        let text = stdout(&out);
        assert_eq!(text.contains("volumes.data.name"), warned, "{def}: {text}");
    }

    // A warning on a file that runs is printed by up too.
    std::fs::write(
        dir.join("compose.yaml"),
        "services:\n  web:\n    command: [\"sleep\", \"100\"]\n    restrat: always\n",
    )
    .unwrap();
    let out = ok(&d, &["up", p]);
    assert!(
        out.contains("note: web.restrat: unknown service key `restrat`, ignored"),
        "{out}"
    );
    ok(&d, &["down", p]);
}

/// Item 4 of issue 19: `berth daemon stop` stops the services of projects
/// as it stops services (one rule); `berth up` starts them again.
#[test]
fn daemon_stop_stops_project_services_like_services() {
    let mut d = Daemon::start();
    let pidfile = d.dir.path().join("web.pid");
    let dir = project(
        d.dir.path(),
        "halt",
        &format!(
            "services:\n  web:\n    command: [\"sh\", \"-c\", \"echo $$$$ > {}; exec sleep 1000\"]\n",
            pidfile.display()
        ),
    );
    let p = dir.to_str().unwrap();
    ok(&d, &["up", p]);
    assert!(wait_for(Duration::from_secs(5), || {
        std::fs::read_to_string(&pidfile).is_ok_and(|s| s.ends_with('\n'))
    }));
    let pid: u32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(is_alive(pid));
    ok(&d, &["daemon", "stop"]);
    assert!(d.wait_exit(Duration::from_secs(20)), "{}", d.log());
    assert!(
        !is_alive(pid),
        "a stopped daemon stops its projects' services"
    );

    // The next daemon (started by the CLI) does not bring them back by
    // itself; `berth up` does.
    std::fs::remove_file(&pidfile).unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&ok(&d, &["project", "status", "halt", "--json"])).unwrap();
    assert_eq!(v["status"], "stopped", "{v}");
    assert_eq!(v["services"][0]["status"], "stopped", "{v}");
    ok(&d, &["up", p]);
    assert_eq!(v["services"][0]["name"], "web");
    assert!(wait_for(Duration::from_secs(5), || pidfile.exists()));
    ok(&d, &["down", p]);
    ok(&d, &["daemon", "stop"]);
}
