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
    assert_eq!(p["kind"], "subprocess");
    assert_eq!(p["containment"], "detached");

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
        vec!["spawn", "--env", "NOEQUALS", "--", "true"],
        vec!["--scope", "../evil", "ping"],
    ] {
        let out = d.berth(&args);
        assert!(!out.status.success(), "{args:?}");
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("berth: "), "{args:?}: {err}");
    }
    // Ending what is already gone is a success (issue 20, as the reference).
    let out = d.berth(&["kill-tree", "4000000"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "ended 0 processes\n");
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
    assert!(
        handle.starts_with("tee 1: copying output of session calc into ")
            && handle.ends_with("; `berth tee calc --stop 1` stops it\n"),
        "{handle}"
    );
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

/// Item 2 of issue 19: a refusal is said in the CLI's commands and flags,
/// in one style (`berth: MESSAGE`), with the daemon's code only under `-v`
/// or `--json`.
#[test]
fn errors_speak_in_commands_and_flags_with_the_code_only_on_request() {
    let d = Daemon::start();
    let err = |args: &[&str]| {
        let out = d.berth(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        stderr(&out)
    };
    assert_eq!(
        err(&["project", "status", "nosuch"]),
        "berth: no project has the id \"nosuch\"; `berth projects` lists them, `berth up DIR` registers one\n"
    );
    assert_eq!(
        err(&["-v", "project", "status", "nosuch"]),
        "berth: no project has the id \"nosuch\"; `berth projects` lists them, `berth up DIR` registers one [NOT_FOUND]\n"
    );
    assert_eq!(
        err(&["svc", "stop", "nosuch"]),
        "berth: no service is named \"nosuch\" (`berth svc ls` lists them)\n"
    );
    assert_eq!(
        err(&["svc", "stop", "nosuch", "--verbose"]),
        "berth: no service is named \"nosuch\" (`berth svc ls` lists them) [NOT_FOUND]\n"
    );
    let json: serde_json::Value =
        serde_json::from_str(&err(&["svc", "describe", "nosuch", "--json"])).unwrap();
    assert_eq!(json["code"], "NOT_FOUND");
    assert_eq!(json["status"], 1);
    assert_eq!(
        json["error"],
        "no service is named \"nosuch\" (`berth svc ls` lists them)"
    );
    assert_eq!(
        err(&["projects", "--status", "bogus"]),
        "berth: --status \"bogus\" is not one of running, starting, stopping, stopped, failed\n"
    );
    assert_eq!(
        err(&["tree", "4000000"]),
        "berth: 4000000: no such process\n"
    );

    // A running project refuses `project rm` in the CLI's words.
    let dir = d.dir.path().join("busy");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("compose.yaml"),
        "services:\n  web:\n    command: [\"sleep\", \"1000\"]\n",
    )
    .unwrap();
    assert!(d.berth(&["up", dir.to_str().unwrap()]).status.success());
    assert_eq!(
        err(&["project", "rm", "busy"]),
        "berth: project \"busy\" still runs web: stop it first (`berth down --keep`), or pass --force\n"
    );
    for args in [
        &["project", "rm", "busy"][..],
        &["project", "logs", "busy", "--service", "nosuch"],
        &["svc", "logs", "nosuch"],
        &["kill", "nosuch"],
    ] {
        let e = err(args);
        for api in [
            "STATUS_CODE_",
            "Project ",
            "Project,",
            "[NOT",
            "[STILL",
            "service_",
            "_id ",
        ] {
            assert!(!e.contains(api), "{args:?}: {e}");
        }
    }
    assert!(d.berth(&["down", dir.to_str().unwrap()]).status.success());
}

/// Item 5 of issue 19: user text in a line-oriented record (logs, tables)
/// is escaped, so each item stays one line.
#[test]
fn multi_line_commands_stay_one_line_in_logs_and_tables() {
    let d = Daemon::start();
    let script = "echo one\necho two\nexec sleep 100";
    let out = d.berth(&["svc", "start", "ml", "--", "sh", "-c", script]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = d.berth(&["svc", "start", "other", "--", "sleep", "100"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(wait_for(Duration::from_secs(5), || stdout(
        &d.berth(&["svc", "logs"])
    )
    .contains("[ml] out two")));
    let logs = stdout(&d.berth(&["svc", "logs"]));
    let lines: Vec<&str> = logs.lines().collect();
    // Every line of the merged log is a record of one service.
    for l in &lines {
        assert!(
            l.contains(" [ml] ") || l.contains(" [other] "),
            "a stray line: {l:?} in\n{logs}"
        );
    }
    assert!(
        logs.contains("berth started pid ")
            && logs.contains(": sh -c echo one\\necho two\\nexec sleep 100\n"),
        "{logs}"
    );
    let table = stdout(&d.berth(&["svc", "ls"]));
    assert_eq!(table.lines().count(), 3, "one row per service:\n{table}");
    // The command cell is a line bash reads back as the same argv.
    assert!(
        table.contains("sh -c $'echo one\\necho two\\nexec sleep 100'"),
        "{table}"
    );
    d.berth(&["svc", "delete", "all"]);
}

/// Item 6 of issue 19: the small things a user notices.
#[test]
fn small_things_a_user_notices() {
    let d = Daemon::start();
    let run = |args: &[&str]| {
        let out = d.berth(args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        stdout(&out)
    };
    // An empty `ps` says where the rest is.
    assert!(run(&["ps"]).contains("services: `berth svc ls`, sessions: `berth sessions`"));

    let id = run(&[
        "run",
        "--",
        "sh",
        "-c",
        "echo out; echo err >&2; exec sleep 100",
    ]);
    let id = id.trim();
    // A unique prefix of the id names the session.
    assert!(wait_for(Duration::from_secs(5), || d
        .berth(&["logs", &id[..6]])
        .stdout
        .starts_with(b"out")));
    // --stderr of a merged session says how to get stderr apart.
    let out = d.berth(&["logs", &id[..6], "--stderr"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        format!("berth: session {id} merges stderr into its output, so `berth logs {id}` has both; to keep stderr apart, start it with `berth run --separate-stderr`\n")
    );
    // tee says what it does and how to stop it; --stop stops it.
    let file = d.dir.path().join("tee.out");
    let out = run(&["tee", id, file.to_str().unwrap()]);
    assert_eq!(
        out,
        format!(
            "tee 1: copying output of session {id} into {}; `berth tee {id} --stop 1` stops it\n",
            file.display()
        )
    );
    assert_eq!(
        run(&["tee", id, "--stop", "1"]),
        format!("stopped tee 1 of session {id}\n")
    );
    // attach without a terminal fails and says what to use instead.
    let out = d.berth(&["attach", id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with("berth: attach needs a terminal on stdin; to watch "),
        "{}",
        stderr(&out)
    );
    // The hint is one that works for this (pipe) session: logs -f, not
    // --read-only (a pipe session has no screen to watch).
    assert!(
        stderr(&out).contains(&format!("`berth logs -f {id}`"))
            && !stderr(&out).contains("--read-only"),
        "{}",
        stderr(&out)
    );
    // kill says what it did.
    assert_eq!(run(&["kill", id]), format!("ended session {id}\n"));

    // A closed pipe ends a command quietly.
    assert!(run(&["svc", "start", "chatty", "--", "seq", "200000"]).starts_with("started"));
    assert!(wait_for(Duration::from_secs(10), || run(&[
        "svc", "logs", "chatty", "-n", "3"
    ])
    .contains("200000")));
    let mut cmd = d.command("bash");
    cmd.args([
        "-c",
        &format!("{BERTH} svc logs chatty -n 100000 | head -1; echo status=${{PIPESTATUS[0]}}"),
    ]);
    let out = cmd.output().unwrap();
    assert_eq!(stderr(&out), "", "no panic on a closed pipe");
    assert!(stdout(&out).ends_with("status=0\n"), "{}", stdout(&out));

    // A unique prefix names a service; an ambiguous one is refused.
    assert!(run(&["svc", "describe", "chat"]).contains("chatty"));
    assert!(run(&["svc", "start", "chatter", "--", "sleep", "100"]).starts_with("started"));
    let out = d.berth(&["svc", "stop", "chat"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "berth: service prefix \"chat\" fits 2 services (chatty, chatter); give more of the name\n"
    );
    assert_eq!(run(&["svc", "stop", "chatte"]), "stopped 1 service\n");

    // Help text: one default, no doubled backslash, every flag explained.
    let help = run(&["attach", "--help"]);
    assert!(help.contains("(detach with Ctrl-\\)"), "{help}");
    let key = help.lines().find(|l| l.contains("--detach-key")).unwrap();
    assert_eq!(key.matches("default").count(), 1, "{key}");
    let help = run(&["run", "--help"]);
    let cols = help.lines().find(|l| l.contains("--cols")).unwrap();
    assert!(cols.contains("Terminal columns"), "{cols}");
    run(&["svc", "delete", "all"]);
}

/// Item 7 of issue 19: completions for bash, zsh and fish, and the man
/// page, generated from the command line (no daemon needed).
#[test]
fn completions_and_man_pages_cover_the_commands() {
    let d = Daemon::unstarted(&[]);
    let out = |args: &[&str]| {
        let o = d.berth(args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        stdout(&o)
    };
    let bash = out(&["completions", "bash"]);
    assert!(bash.contains("complete -F _berth") || bash.contains("-F _berth berth"));
    assert!(bash.contains("forget") && bash.contains("--separate-stderr"));
    // bash accepts the script.
    let script = d.dir.path().join("berth.bash");
    std::fs::write(&script, &bash).unwrap();
    let check = std::process::Command::new("bash")
        .args([
            "-c",
            &format!("source {} && complete -p berth", script.display()),
        ])
        .output()
        .unwrap();
    assert!(
        stdout(&check).contains("_berth berth"),
        "{}",
        stderr(&check)
    );
    assert!(out(&["completions", "zsh"]).starts_with("#compdef berth"));
    assert!(out(&["completions", "fish"]).contains("complete -c berth"));
    let bad = d.berth(&["completions", "tcsh"]);
    assert_eq!(bad.status.code(), Some(2));

    let man = out(&["man"]);
    assert!(
        man.contains(".TH berth 1"),
        "{}",
        &man[..200.min(man.len())]
    );
    assert!(man.contains("completions"));
    let dir = d.dir.path().join("man1");
    out(&["man", "--dir", dir.to_str().unwrap()]);
    for page in [
        "berth.1",
        "berth-up.1",
        "berth-project-forget.1",
        "berth-svc-logs.1",
    ] {
        assert!(dir.join(page).is_file(), "{page}");
    }
    assert!(!dir.join("berth-help.1").exists());
    // Neither started a daemon.
    assert!(!exists(&d.socket));
}

#[test]
fn ps_lists_the_living_and_ps_all_also_the_exited_still_retained() {
    let d = Daemon::start();
    let mut child = Sleeper::new(60);
    let pid = child.pid();
    d.client()
        .register(berth_wire::daemon::RegisterRequest {
            pid,
            kind: "test".into(),
            originator: "cli-test:1".into(),
            ..Default::default()
        })
        .unwrap();
    assert!(stdout(&d.berth(&["ps"])).contains(&pid.to_string()));
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    // LIST_ACTIVE drops an exited process (issue 20); --all still shows it.
    assert!(
        wait_for(Duration::from_secs(30), || !stdout(&d.berth(&["ps"]))
            .contains(&pid.to_string())),
        "{}",
        stdout(&d.berth(&["ps"]))
    );
    let all = stdout(&d.berth(&["ps", "--all"]));
    let row = all
        .lines()
        .find(|l| l.contains(&pid.to_string()))
        .unwrap_or_else(|| panic!("no row for {pid}: {all}"));
    assert!(row.contains("dead"), "{row}");
    let by_tool = stdout(&d.berth(&["ps", "--all", "--originator", "cli-test"]));
    assert!(by_tool.contains(&pid.to_string()), "{by_tool}");
}
