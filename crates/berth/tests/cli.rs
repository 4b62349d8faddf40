//! The `berth` CLI as a user types it: tables, JSON, one-line errors,
//! auto-start of the daemon, and `berth daemon --detach` / `stop`.

mod common;

use common::*;
use std::time::Duration;

#[test]
fn commands_auto_start_the_daemon_and_render_tables_and_json() {
    let d = Daemon::start();
    // Stop the harness daemon: the CLI must start its own.
    d.berth(&["daemon", "stop"]);
    let mut d = d;
    assert!(d.wait_exit(Duration::from_secs(5)));
    assert!(!exists(&d.socket));

    let out = d.berth(&["ping"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("pong in "), "{}", stdout(&out));
    assert!(
        exists(&d.socket) && exists(&d.compat),
        "auto-started daemon serves both sockets"
    );

    let spawned = d.berth(&["spawn", "--env", "X=1", "--", "sleep", "77"]);
    assert!(spawned.status.success(), "{}", stderr(&spawned));
    let pid: u32 = stdout(&spawned).trim().parse().unwrap();
    assert!(is_alive(pid));

    let table = stdout(&d.berth(&["ps"]));
    let header = table.lines().next().unwrap();
    assert!(
        header.starts_with("PID") && header.contains("STATE") && header.contains("COMMAND"),
        "{table}"
    );
    let row = table
        .lines()
        .find(|l| l.starts_with(&pid.to_string()))
        .expect("spawned row");
    assert!(row.contains("alive") && row.contains("sleep 77"), "{row}");

    let json: serde_json::Value =
        serde_json::from_slice(&d.berth(&["ps", "--json"]).stdout).unwrap();
    let p = json
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pid"] == pid)
        .unwrap();
    assert_eq!(p["state"], "alive");
    assert_eq!(p["kind"], "daemon");
    assert_eq!(p["containment"], "session");

    let tree = stdout(&d.berth(&["tree", &pid.to_string()]));
    assert!(tree.contains("sleep 77"), "{tree}");

    let killed = d.berth(&["kill-tree", &pid.to_string(), "--timeout", "2"]);
    assert!(killed.status.success(), "{}", stderr(&killed));
    assert!(stdout(&killed).starts_with("ended "), "{}", stdout(&killed));
    assert!(!is_alive(pid));

    let status: serde_json::Value =
        serde_json::from_slice(&d.berth(&["status", "--json"]).stdout).unwrap();
    assert_eq!(status["emergency_reserve"], "armed");
    assert_eq!(status["scope"], "global");

    let zombies = d.berth(&["zombies"]);
    assert!(zombies.status.success());
    assert_eq!(stdout(&zombies), "no orphaned processes\n");

    let stop = d.berth(&["daemon", "stop"]);
    assert!(stop.status.success(), "{}", stderr(&stop));
    assert!(wait_for(Duration::from_secs(5), || !exists(&d.socket)));
}

#[test]
fn errors_are_one_line_and_exit_non_zero() {
    let d = Daemon::start();
    for args in [
        vec!["tree", "4000000"],
        vec!["kill-tree", "4000000"],
        vec!["spawn", "--env", "NOEQUALS", "--", "true"],
        vec!["--scope", "../evil", "ping"],
    ] {
        let out = d.berth(&args);
        assert!(!out.status.success(), "{args:?}");
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("berth: "), "{args:?}: {err}");
    }
    let out = d.berth(&["--socket", "/nonexistent/x.sock", "ping"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("/nonexistent/x.sock"),
        "{}",
        stderr(&out)
    );
    let out = d.berth(&["daemon", "--listen", "tcp://127.0.0.1:1"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("unix:// and vsock://"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn daemon_detach_returns_once_serving_and_stop_removes_sockets() {
    let d = Daemon::start();
    d.berth(&["daemon", "stop"]);
    let mut d = d;
    assert!(d.wait_exit(Duration::from_secs(5)));
    let out = d.berth(&["daemon", "--detach", "--backlog-kib", "64"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("berth daemon started"),
        "{}",
        stdout(&out)
    );
    assert!(exists(&d.socket), "serving by the time --detach returns");
    // Options reach the background daemon.
    let id = stdout(&d.berth(&["run", "--", "head", "-c", "100000", "/dev/zero"]));
    assert!(wait_for(Duration::from_secs(5), || {
        d.berth(&["logs", id.trim()]).stdout.len() == 64 * 1024
    }));
    let again = d.berth(&["daemon", "--detach"]);
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("already running"),
        "{}",
        stderr(&again)
    );
    assert!(d.berth(&["daemon", "stop"]).status.success());
    assert!(wait_for(Duration::from_secs(5), || !exists(&d.socket)
        && !exists(&d.compat)));
    let out = d.berth(&["daemon", "stop"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no daemon is running"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn invoked_as_running_process_daemon_it_starts_berth() {
    let d = Daemon::start();
    d.berth(&["daemon", "stop"]);
    let mut d = d;
    assert!(d.wait_exit(Duration::from_secs(5)));
    let link = d.dir.path().join("running-process-daemon");
    std::os::unix::fs::symlink(BERTH, &link).unwrap();
    let mut child = d
        .command(&link)
        .args(["start", "--scope", "py"])
        .spawn()
        .unwrap();
    let sock = d.runtime_dir().join("running-process/daemon-py.sock");
    assert!(wait_for(Duration::from_secs(10), || {
        berth_client::Client::connect(&sock).is_ok()
    }));
    let s = berth_client::Client::connect(&sock)
        .unwrap()
        .status()
        .unwrap();
    assert_eq!(s.scope, "py");
    kill(child.id(), Signal::SIGTERM);
    assert!(child.wait().unwrap().success());
    assert!(!exists(&sock));
}

#[test]
fn session_commands_run_list_log_send_tee_kill_purge() {
    let d = Daemon::start();
    let ok = |args: &[&str]| {
        let o = d.berth(args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        stdout(&o)
    };
    let id = ok(&[
        "run",
        "--pty",
        "--name",
        "calc",
        "--",
        "sh",
        "-c",
        "while read l; do echo \"got $l\"; done",
    ]);
    let id = id.trim();
    assert_eq!(id.len(), 36);
    let tee = d.dir.path().join("calc.log");
    let handle = ok(&["tee", "calc", tee.to_str().unwrap()]);
    assert!(handle.trim().parse::<u64>().is_ok(), "{handle}");
    ok(&["send", "calc", "first"]);
    assert!(wait_for(Duration::from_secs(5), || ok(&["logs", "calc"])
        .contains("got first")));
    assert!(wait_for(Duration::from_secs(5), || {
        std::fs::read_to_string(&tee)
            .unwrap_or_default()
            .contains("got first")
    }));
    let pipe = ok(&[
        "run",
        "--separate-stderr",
        "--",
        "sh",
        "-c",
        "echo o; echo e >&2",
    ]);
    assert!(wait_for(Duration::from_secs(5), || ok(&[
        "logs",
        pipe.trim(),
        "--stderr"
    ]) == "e\n"));
    assert_eq!(ok(&["logs", pipe.trim()]), "o\n");
    let table = ok(&["sessions"]);
    let row = table.lines().find(|l| l.starts_with(id)).unwrap();
    assert!(
        row.contains("calc") && row.contains("pty") && row.contains("running"),
        "{row}"
    );
    let json: serde_json::Value = serde_json::from_str(&ok(&["sessions", "--json"])).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 2);
    ok(&["kill", "calc", "--grace", "200"]);
    assert!(wait_for(Duration::from_secs(5), || ok(&["sessions"])
        .lines()
        .any(|l| l.starts_with(id) && l.contains("terminated"))));
    // -f on an ended session prints what it held and returns.
    assert!(ok(&["logs", "-f", "calc"]).contains("got first"));
    assert_eq!(
        ok(&["sessions", "purge"]),
        "purged 1 pty and 1 pipe sessions\n"
    );
    let err = d.berth(&["attach", "nope"]);
    assert!(!err.status.success());
    assert_eq!(stderr(&err).lines().count(), 1, "{}", stderr(&err));
}

#[test]
fn a_detached_daemon_gets_the_relay_token_by_environment_not_argv() {
    let d = Daemon::start();
    d.berth(&["daemon", "stop"]);
    let mut d = d;
    assert!(d.wait_exit(Duration::from_secs(5)));
    let url = format!("ws://127.0.0.1:9/{}", std::process::id());
    let out = d.berth(&[
        "daemon",
        "--detach",
        "--relay",
        &url,
        "--relay-token",
        "s3cret-token",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let pid = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .find(|p| {
            std::fs::read(format!("/proc/{p}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(&url))
                .unwrap_or(false)
        })
        .expect("the detached daemon");
    let cmdline = String::from_utf8_lossy(&std::fs::read(format!("/proc/{pid}/cmdline")).unwrap())
        .into_owned();
    assert!(!cmdline.contains("s3cret-token"), "{cmdline}");
    let environ = String::from_utf8_lossy(&std::fs::read(format!("/proc/{pid}/environ")).unwrap())
        .into_owned();
    assert!(environ.contains("BERTH_RELAY_TOKEN=s3cret-token"));
    assert!(d.berth(&["daemon", "stop"]).status.success());
}
