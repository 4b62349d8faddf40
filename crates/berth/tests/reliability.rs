//! Issue 21 (reliability), as a user meets it through `berth svc logs` and
//! native `berth project logs`: text is never cut inside a character
//! (item 5), and stdout and stderr lines keep the order they were written
//! in (item 6), and a daemon killed right after spawning a native
//! project's service never leaves it running twice (the chaos finding).
//! Soak, chaos and load runs are benches
//! (`crates/berth/benches/{soak,chaos,load}.rs`, `docs/reliability.md`).

mod common;

use common::*;
use std::path::Path;
use std::time::Duration;

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

/// `€` (E2 82 AC) in two writes a second apart: longer than the age at
/// which a partial line is logged.
const SLOW_CHAR: &str = r"printf 'price \342\202'; sleep 1; printf '\254 5\n'; exec sleep 100";

/// `o0` to stdout, `e0` to stderr, `o1`, ... 20 ms apart.
const ALTERNATE: &str = r#"i=0; while [ $i -lt 10 ]; do echo o$i; sleep 0.02; echo e$i >&2; sleep 0.02; i=$((i+1)); done; echo done; exec sleep 100"#;

fn compose(root: &Path, name: &str, script: &str) -> String {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    // `$$` is Compose's escape for a `$` the shell should see.
    let cmd = serde_json::to_string(&["sh", "-c", &script.replace('$', "$$")]).unwrap();
    std::fs::write(
        dir.join("compose.yaml"),
        format!("services:\n  web:\n    command: {cmd}\n"),
    )
    .unwrap();
    dir.to_str().unwrap().to_string()
}

/// The `o3`/`e7` words of a log, in the order it shows them.
fn order(text: &str) -> Vec<String> {
    text.split_whitespace()
        .filter(|w| {
            w.len() == 2
                && (w.starts_with('o') || w.starts_with('e'))
                && w[1..].parse::<u8>().is_ok()
        })
        .map(str::to_string)
        .collect()
}

fn written_order() -> Vec<String> {
    (0..10)
        .flat_map(|i| [format!("o{i}"), format!("e{i}")])
        .collect()
}

#[test]
fn a_character_written_in_two_slow_writes_is_logged_whole() {
    let d = Daemon::start();
    ok(&d, &["svc", "start", "slow", "--", "sh", "-c", SLOW_CHAR]);
    assert!(wait_for(Duration::from_secs(10), || ok(
        &d,
        &["svc", "logs", "slow"]
    )
    .contains(" 5\n")));
    let text = ok(&d, &["svc", "logs", "slow"]);
    assert!(!text.contains('\u{fffd}'), "{text}");
    assert!(
        text.contains(" out €") || text.contains("price €"),
        "{text}"
    );

    let p = compose(d.dir.path(), "slowchar", SLOW_CHAR);
    ok(&d, &["up", "--runtime", "native", &p]);
    assert!(wait_for(Duration::from_secs(10), || ok(
        &d,
        &["project", "logs", "slowchar"]
    )
    .contains(" 5")));
    let text = ok(&d, &["project", "logs", "slowchar"]);
    assert!(!text.contains('\u{fffd}'), "{text}");
    assert!(text.contains('€'), "{text}");
    ok(&d, &["down", &p]);
}

#[test]
fn stdout_and_stderr_lines_keep_the_order_they_were_written_in() {
    let d = Daemon::start();
    ok(&d, &["svc", "start", "alt", "--", "sh", "-c", ALTERNATE]);
    assert!(wait_for(Duration::from_secs(10), || ok(
        &d,
        &["svc", "logs", "alt"]
    )
    .contains(" done\n")));
    let text = ok(&d, &["svc", "logs", "alt", "--lines", "100"]);
    assert_eq!(order(&text), written_order(), "{text}");

    let p = compose(d.dir.path(), "alternate", ALTERNATE);
    ok(&d, &["up", "--runtime", "native", &p]);
    assert!(wait_for(Duration::from_secs(10), || ok(
        &d,
        &["project", "logs", "alternate"]
    )
    .contains("done")));
    let text = ok(&d, &["project", "logs", "alternate"]);
    assert_eq!(order(&text), written_order(), "{text}");
    ok(&d, &["down", &p]);
}

/// Pids whose command line is exactly `argv`.
fn pids_running(argv: &[&str]) -> Vec<u32> {
    let want: Vec<u8> = argv
        .iter()
        .flat_map(|a| [a.as_bytes(), b"\0"].concat())
        .collect();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == want))
        .collect()
}

/// The chaos finding: `kill -9` of the daemon after it spawned a native
/// service but before it recorded the pid left an orphan the restarted
/// daemon did not know, so the next `up` started the service a second
/// time. The test-only `BERTH_TEST_PAUSE_AFTER_SPAWN_MS` holds the daemon
/// in that window.
#[test]
fn a_daemon_killed_right_after_spawning_a_native_service_does_not_run_it_twice() {
    let mut d = Daemon::unstarted(&[]);
    d.spawn_with_env(&[], &[("BERTH_TEST_PAUSE_AFTER_SPAWN_MS", "5000")]);
    let argv = ["sleep", "7331959"];
    let dir = d.dir.path().join("twice");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("compose.yaml"),
        "services:\n  web:\n    command: [\"sleep\", \"7331959\"]\n",
    )
    .unwrap();
    let p = dir.to_str().unwrap().to_string();
    let mut up = d
        .command(BERTH)
        .args(["up", "--runtime", "native", &p])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let spawned = wait_for(Duration::from_secs(30), || !pids_running(&argv).is_empty());
    // The CLI first, so it cannot auto-start a daemon of its own.
    let _ = up.kill();
    let _ = up.wait();
    d.kill9();
    assert!(spawned, "the service never started: {}", d.log());

    d.spawn_with_env(&[], &[]);
    ok(&d, &["up", "--runtime", "native", &p]);
    let running = pids_running(&argv);
    let log = d.log();
    let _ = d.berth(&["down", &p]);
    for pid in pids_running(&argv) {
        kill(pid, Signal::SIGKILL);
    }
    assert_eq!(running.len(), 1, "{running:?} run {argv:?}: {log}");
}

/// As above for a plain service whose process sends its output elsewhere,
/// so its spool cannot identify it: the restarted daemon finds it by its
/// `BERTH_SERVICE_ID` marker, adopts it, and a stop ends it.
#[test]
fn a_service_killed_in_the_spawn_window_is_adopted_by_its_marker() {
    let mut d = Daemon::unstarted(&[]);
    d.spawn_with_env(&[], &[("BERTH_TEST_PAUSE_AFTER_SPAWN_MS", "5000")]);
    let argv = ["sleep", "7331960"];
    let mut start = d
        .command(BERTH)
        .args(["svc", "start", "quiet", "--", "sh", "-c"])
        .arg("exec sleep 7331960 >/dev/null 2>&1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let spawned = wait_for(Duration::from_secs(30), || !pids_running(&argv).is_empty());
    let _ = start.kill();
    let _ = start.wait();
    d.kill9();
    assert!(spawned, "the service never started: {}", d.log());
    let first = pids_running(&argv);

    d.spawn_with_env(&[], &[]);
    let listed = ok(&d, &["svc", "list"]);
    let _ = d.berth(&["svc", "stop", "quiet"]);
    let left = pids_running(&argv);
    let log = d.log();
    for pid in left.iter().chain(&first) {
        kill(*pid, Signal::SIGKILL);
    }
    assert!(
        listed.contains(&first[0].to_string()),
        "not adopted: {listed}\n{log}"
    );
    assert!(left.is_empty(), "{left:?} still run {argv:?}: {log}");
}

/// Open descriptors of `pid`.
fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// One PTY session and one pipe session (stdin left open, as a client that
/// never closes it leaves it) that print a line and exit.
fn spawn_ended_pair(c: &mut berth_client::Client, i: usize) -> [String; 2] {
    use berth_wire::daemon::{SpawnPipeSessionRequest, SpawnPtySessionRequest};
    let script = format!("echo ended-{i}");
    let pty = c
        .spawn_pty(SpawnPtySessionRequest {
            argv: vec!["sh".into(), "-c".into(), script.clone()],
            ..Default::default()
        })
        .unwrap()
        .session_id;
    let pipe = c
        .spawn_pipe(SpawnPipeSessionRequest {
            argv: vec!["sh".into(), "-c".into(), script],
            ..Default::default()
        })
        .unwrap()
        .session_id;
    [pty, pipe]
}

fn all_exited(c: &mut berth_client::Client) -> bool {
    c.list_pty("").unwrap().iter().all(|s| s.exited)
        && c.list_pipe("").unwrap().iter().all(|s| s.exited)
}

/// The soak finding: an ended session kept its PTY master (a pipe session
/// its stdin pipe) until a client purged it, so a client that never purged
/// ran the daemon out of descriptors. Ended sessions stay listed with their
/// output, but hold no descriptors.
#[test]
fn ended_sessions_hold_no_descriptors_until_purged() {
    use berth_wire::daemon::PipeStreamKind;
    let d = Daemon::start();
    let mut c = d.client();
    // Warm up: whatever the first sessions open once (the screen worker,
    // the store's statements) is not a per-session cost.
    spawn_ended_pair(&mut c, 0);
    assert!(wait_for(Duration::from_secs(20), || all_exited(&mut c)));
    let pid = d.pid();
    // Settled: the last session's readers have let go.
    let mut before = fd_count(pid);
    wait_for(Duration::from_secs(5), || {
        let now = fd_count(pid);
        let same = now == before;
        before = now;
        same
    });

    const N: usize = 25;
    let ids: Vec<[String; 2]> = (1..=N).map(|i| spawn_ended_pair(&mut c, i)).collect();
    assert!(
        wait_for(Duration::from_secs(60), || all_exited(&mut c)),
        "the sessions did not end"
    );
    // Each session had two or three descriptors while it ran; once ended,
    // none is left (a little slack for the store and the connection).
    let settled = wait_for(Duration::from_secs(20), || fd_count(pid) <= before + 3);
    let after = fd_count(pid);
    assert!(
        settled,
        "{N} ended PTY and {N} ended pipe sessions still hold descriptors: {before} before, {after} after"
    );
    // Still listed, with their exit and their output.
    assert_eq!(c.list_pty("").unwrap().len(), N + 1);
    assert_eq!(c.list_pipe("").unwrap().len(), N + 1);
    let [pty, pipe] = &ids[N - 1];
    for (id, kind) in [
        (pty, PipeStreamKind::Stdout),
        (pipe, PipeStreamKind::Stdout),
    ] {
        let b = c.backlog(id, kind).unwrap();
        assert!(b.exited, "{id}");
        assert!(
            String::from_utf8_lossy(&b.backlog).contains(&format!("ended-{N}")),
            "{id}: {:?}",
            String::from_utf8_lossy(&b.backlog)
        );
    }
    // A write to an ended session is refused, naming why.
    let err = c.write_stdin(pipe, b"late\n", false).unwrap_err();
    assert!(err.to_string().contains("exited"), "{err}");
}
