//! berth driven by clients it did not write: PyPI's `running-process`
//! (Python) and the `runpm` / `running-process-daemon` binaries of crates.io's
//! `running-process`. They find berth through `XDG_RUNTIME_DIR`.
//!
//! Missing peers skip with a message, unless `BERTH_REQUIRE_PEERS=1` (CI).

mod common;

use common::*;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

fn required() -> bool {
    std::env::var("BERTH_REQUIRE_PEERS").is_ok_and(|v| v == "1")
}

fn skip(why: &str) {
    assert!(!required(), "BERTH_REQUIRE_PEERS=1 but {why}");
    eprintln!("skipped: {why}");
}

fn python_client() -> bool {
    Command::new("python3")
        .args(["-c", "import running_process.launch"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The published binary `name`, from $RUNNING_PROCESS_BIN, /opt/running-process/bin or PATH.
fn published(name: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(d) = std::env::var_os("RUNNING_PROCESS_BIN") {
        dirs.push(d.into());
    }
    dirs.push("/opt/running-process/bin".into());
    if let Some(p) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&p));
    }
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file())
}

fn python(d: &Daemon, script: &str) -> String {
    let out = d.command("python3").arg("-c").arg(script).output().unwrap();
    assert!(
        out.status.success(),
        "python failed: {}\n{}",
        stderr(&out),
        d.log()
    );
    stdout(&out)
}

#[test]
fn python_launch_detached_is_served_and_tracked_by_berth() {
    if !python_client() {
        return skip("the PyPI running-process client is not installed");
    }
    let d = Daemon::start();
    let out = python(
        &d,
        "from running_process.launch import launch_detached\n\
         p = launch_detached('sleep 45', originator='pytest:1', env={'A': 'b'})\n\
         print(p.pid, p.containment, p.originator)",
    );
    let mut parts = out.split_whitespace();
    let pid: u32 = parts.next().unwrap().parse().unwrap();
    assert_eq!(parts.next(), Some("detached"), "the reference's value");
    assert_eq!(parts.next(), Some("pytest:1"));
    let rows = d.client().list_active().unwrap();
    let row = rows
        .iter()
        .find(|p| p.pid == pid)
        .expect("berth tracks the launched process");
    assert_eq!(row.kind, "subprocess");
    assert!(is_alive(pid));
    // The published tools find a tool's processes by the
    // RUNNING_PROCESS_ORIGINATOR berth puts in the child's environment.
    let found = python(
        &d,
        "import running_process as rp\n\
         print(' '.join(str(p.pid) for p in rp.find_processes_by_originator('pytest')))",
    );
    assert!(
        found.split_whitespace().any(|p| p == pid.to_string()),
        "find_processes_by_originator found {found:?}, not {pid}"
    );
    assert!(d.client().kill_tree(pid, 1.0).unwrap() >= 1);
}

#[test]
fn python_running_process_registers_and_unregisters_with_berth() {
    if !python_client() {
        return skip("the PyPI running-process client is not installed");
    }
    let d = Daemon::start();
    let sock = d.socket.clone();
    let out = python(
        &d,
        &format!(
            "import running_process as rp, socket, struct, time\n\
             p = rp.RunningProcess(['sleep', '1.5'])\n\
             time.sleep(0.3)\n\
             print(p.pid if hasattr(p, 'pid') else p.get_pid())\n\
             import subprocess\n\
             print(subprocess.run([{berth:?}, '--socket', {sock:?}, 'ps', '--json'], capture_output=True, text=True).stdout.replace('\\n', ' '))\n\
             p.wait()\n",
            berth = BERTH,
            sock = sock.display().to_string()
        ),
    );
    let mut lines = out.lines();
    let pid: u32 = lines.next().unwrap().trim().parse().unwrap();
    let during: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert!(
        during
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["pid"] == pid && p["state"] == "alive"),
        "REGISTER from RunningProcess reached berth: {during}"
    );
    assert!(wait_for(Duration::from_secs(5), || d
        .client()
        .list_active()
        .unwrap()
        .iter()
        .all(|p| p.pid != pid)));
    assert!(
        d.log().contains("REQUEST_TYPE_UNREGISTER"),
        "the client unregistered"
    );
}

#[test]
fn python_client_auto_spawns_berth_as_running_process_daemon() {
    if !python_client() {
        return skip("the PyPI running-process client is not installed");
    }
    let d = Daemon::start();
    d.berth(&["daemon", "stop"]);
    let mut d = d;
    assert!(d.wait_exit(Duration::from_secs(5)));
    // The client spawns `running-process-daemon start` found beside its
    // interpreter (or on a fixed system PATH). Give it an interpreter whose
    // neighbour is berth, without touching system directories.
    let info = Command::new("python3")
        .args([
            "-c",
            "import sys, os; print(os.path.realpath(sys.executable)); print(sys.prefix)",
        ])
        .output()
        .unwrap();
    let info = stdout(&info);
    let mut lines = info.lines();
    let (exe, prefix) = (
        lines.next().unwrap().to_string(),
        lines.next().unwrap().to_string(),
    );
    let bin = d.dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy(&exe, bin.join("python3")).unwrap();
    std::os::unix::fs::symlink(BERTH, bin.join("running-process-daemon")).unwrap();
    let out = d
        .command(bin.join("python3"))
        .env("PYTHONHOME", &prefix)
        .env("RUNNING_PROCESS_DAEMON_START_TIMEOUT_MS", "10000")
        .args(["-c", "from running_process.launch import launch_detached\nprint(launch_detached('sleep 30').pid)"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let pid: u32 = stdout(&out).trim().parse().unwrap();
    let mut c = berth_client::Client::connect(&d.compat).unwrap();
    assert_eq!(
        c.status().unwrap().version,
        env!("CARGO_PKG_VERSION"),
        "berth answered"
    );
    assert!(c.list_active().unwrap().iter().any(|p| p.pid == pid));
    c.kill_tree(pid, 1.0).unwrap();
    c.shutdown(true, 1.0).unwrap();
}

#[test]
fn published_runpm_and_running_process_daemon_talk_to_berth() {
    let (Some(runpm), Some(rpd)) = (published("runpm"), published("running-process-daemon")) else {
        return skip(
            "runpm / running-process-daemon from crates.io running-process are not installed",
        );
    };
    let d = Daemon::start();
    let s = Sleeper::new(60);
    let mut gone = Command::new("true").spawn().unwrap();
    gone.wait().unwrap();
    d.client()
        .register(berth_wire::daemon::RegisterRequest {
            pid: s.pid(),
            originator: format!("peer:{}", gone.id()),
            kind: "k".into(),
            ..Default::default()
        })
        .unwrap();
    let run = |bin: &PathBuf, args: &[&str]| {
        let out = d.command(bin).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{} {args:?}: {}",
            bin.display(),
            stderr(&out)
        );
        stdout(&out)
    };
    assert!(run(&runpm, &["ping"]).starts_with("OK"), "runpm ping");
    assert!(run(&rpd, &["ping"]).starts_with("pong"));
    let status = run(&rpd, &["status"]);
    assert!(
        status.contains(env!("CARGO_PKG_VERSION")) && status.contains("berth.db"),
        "{status}"
    );
    let list = run(&rpd, &["list"]);
    assert!(
        list.contains(&s.pid().to_string()) && list.contains("sleep 60"),
        "{list}"
    );
    let tree = run(&rpd, &["tree", &s.pid().to_string()]);
    assert!(tree.contains("sleep 60"), "{tree}");
    let zombies = run(&rpd, &["kill-zombies", "--dry-run"]);
    assert!(
        zombies.contains(&s.pid().to_string()),
        "its originator is gone, so it is an orphan: {zombies}"
    );
    assert!(is_alive(s.pid()), "dry run");
}

#[test]
fn published_running_process_daemon_manages_berth_sessions() {
    let Some(rpd) = published("running-process-daemon") else {
        return skip("running-process-daemon from crates.io running-process is not installed");
    };
    let d = Daemon::start();
    let mut c = d.client();
    let pty = c
        .spawn_pty(berth_wire::daemon::SpawnPtySessionRequest {
            argv: vec![
                "/bin/sh".into(),
                "-c".into(),
                "echo pty-says-hi; sleep 60".into(),
            ],
            ..Default::default()
        })
        .unwrap()
        .session_id;
    let pipe = c
        .spawn_pipe(berth_wire::daemon::SpawnPipeSessionRequest {
            argv: vec![
                "/bin/sh".into(),
                "-c".into(),
                "echo pipe-says-hi; echo to-stderr >&2; sleep 60".into(),
            ],
            originator: "old".into(),
            ..Default::default()
        })
        .unwrap()
        .session_id;
    let run = |args: &[&str]| {
        let out = d.command(&rpd).args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        stdout(&out)
    };
    assert!(wait_for(Duration::from_secs(5), || run(&[
        "sessions", "log", &pty
    ])
    .contains("pty-says-hi")));
    let list = run(&["sessions", "list"]);
    assert!(list.contains(&pty) && list.contains(&pipe), "{list}");
    assert!(run(&["sessions", "log", &pipe]).contains("pipe-says-hi"));
    assert!(run(&["sessions", "log", &pipe, "--stream", "stderr"]).contains("to-stderr"));
    run(&["sessions", "terminate", &pty, "--grace-ms", "200"]);
    assert!(wait_for(Duration::from_secs(5), || c
        .list_pty("")
        .unwrap()
        .iter()
        .any(|s| s.session_id == pty && s.exited)));
    run(&[
        "sessions",
        "kill-older",
        "--older-than",
        "0",
        "--originator",
        "old",
        "--grace-ms",
        "200",
    ]);
    assert!(wait_for(Duration::from_secs(5), || c
        .list_pipe("")
        .unwrap()
        .iter()
        .any(|s| s.session_id == pipe && s.exited)));
    run(&["sessions", "purge"]);
    assert!(
        c.list_pty("").unwrap().is_empty() && c.list_pipe("").unwrap().is_empty(),
        "purged through the published CLI"
    );
}
