//! Supervised services (runpm requests 50-59) against a real daemon, with
//! real processes. Assertions are about order and outcome, never about how
//! long something took.

mod common;

use berth_wire::daemon::*;
use common::*;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// A service running `script` under /bin/sh, autorestart on.
fn sh_cfg(name: &str, script: &str) -> ServiceConfig {
    ServiceConfig {
        name: name.into(),
        cmd: vec!["/bin/sh".into(), "-c".into(), script.into()],
        autorestart: true,
        ..Default::default()
    }
}

/// A directory for the test's marker files, exported to services as `$M`.
fn marks(d: &Daemon) -> PathBuf {
    let m = d.dir.path().join("m");
    std::fs::create_dir_all(&m).unwrap();
    m
}

fn with_m(mut c: ServiceConfig, m: &Path) -> ServiceConfig {
    c.env.insert("M".into(), m.display().to_string());
    c
}

fn describe(d: &Daemon, target: &str) -> (ServiceState, String) {
    d.client().service_describe(target).unwrap()
}

fn wait_status(d: &Daemon, target: &str, status: &str) -> ServiceState {
    let mut last = None;
    let ok = wait_for(Duration::from_secs(30), || {
        let s = describe(d, target);
        let done = s.0.status == status;
        last = Some(s);
        done
    });
    let (s, why) = last.unwrap();
    assert!(ok, "{target} never became {status}: {} ({why})", s.status);
    s
}

fn lines_of(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn code(e: &berth_client::ClientError) -> StatusCode {
    e.code().expect("a status reply")
}

#[test]
fn a_crash_loop_is_errored_after_exactly_max_restarts() {
    let d = Daemon::start();
    let m = marks(&d);
    let mut cfg = with_m(sh_cfg("loop", "echo run >> \"$M/runs\"; exit 3"), &m);
    cfg.max_restarts = 3;
    cfg.restart_delay_ms = 10;
    cfg.min_uptime_ms = 5000;
    d.client().service_start(cfg).unwrap();
    let s = wait_status(&d, "loop", "errored");
    assert_eq!(lines_of(&m.join("runs")).len(), 4, "1 start + 3 restarts");
    assert_eq!(s.restart_count, 3);
    assert_eq!(s.last_exit_code, 3);
    assert_eq!(s.pid, 0);
    let (_, why) = describe(&d, "loop");
    assert!(
        why.contains("crash loop") && why.contains("exit code 3") && why.contains("max_restarts 3"),
        "{why}"
    );
    // Errored is final: a Ping round trip later, still no fifth run.
    d.client().ping().unwrap();
    assert_eq!(lines_of(&m.join("runs")).len(), 4);
    assert!(d
        .client()
        .service_logs("loop", 100)
        .unwrap()
        .contains("berth crash loop"));
}

#[test]
fn backoff_grows_between_consecutive_unstable_restarts() {
    let d = Daemon::start();
    let m = marks(&d);
    let mut cfg = with_m(sh_cfg("flaky", "date +%s%N >> \"$M/starts\"; exit 1"), &m);
    cfg.max_restarts = 4;
    cfg.restart_delay_ms = 100;
    cfg.min_uptime_ms = 10_000;
    d.client().service_start(cfg).unwrap();
    wait_status(&d, "flaky", "errored");
    let t: Vec<u128> = lines_of(&m.join("starts"))
        .iter()
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(t.len(), 5);
    let gaps: Vec<u128> = t.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(
        gaps.windows(2).all(|g| g[1] > g[0]),
        "each wait longer than the last: {gaps:?} ns"
    );
}

#[test]
fn a_stable_run_resets_the_unstable_count() {
    let d = Daemon::start();
    let m = marks(&d);
    // Runs 1, 2 crash at once; run 3 is stable; 4, 5 crash; 6 stays up.
    // With max_restarts 2, only a reset after run 3 lets run 6 happen.
    let script = "n=$(( $(cat \"$M/n\" 2>/dev/null || echo 0) + 1 )); echo $n > \"$M/n\"; \
                  case $n in 3) sleep 1 ;; 6) exec sleep 1000 ;; esac; exit 1";
    let mut cfg = with_m(sh_cfg("reset", script), &m);
    cfg.max_restarts = 2;
    cfg.restart_delay_ms = 10;
    cfg.min_uptime_ms = 400;
    d.client().service_start(cfg).unwrap();
    assert!(
        wait_for(Duration::from_secs(30), || lines_of(&m.join("n"))
            .first()
            .is_some_and(|n| n == "6")),
        "run 6 never came: {:?} {:?}",
        lines_of(&m.join("n")),
        describe(&d, "reset")
    );
    let s = wait_status(&d, "reset", "online");
    assert_eq!(s.restart_count, 5);
    let log = d.client().service_logs("reset", 1000).unwrap();
    assert!(
        log.contains("restarting in 10 ms"),
        "the stable exit: {log}"
    );
    assert!(!log.contains("crash loop"), "{log}");
}

#[test]
fn stop_ends_the_whole_tree_with_sigkill_after_kill_timeout() {
    let d = Daemon::start();
    let m = marks(&d);
    let script = r#"trap 'echo term >> "$M/signals"' TERM
sh -c 'trap "" TERM; echo $$ >> "$M/pids"; exec sleep 1000' &
setsid sh -c 'echo $$ >> "$M/pids"; exec sleep 1000' &
echo $$ >> "$M/pids"
while :; do sleep 0.05; done"#;
    let mut cfg = with_m(sh_cfg("tree", script), &m);
    cfg.kill_timeout_ms = 300;
    let s = d.client().service_start(cfg).unwrap();
    assert!(wait_for(Duration::from_secs(10), || lines_of(
        &m.join("pids")
    )
    .len()
        == 3));
    let pids: Vec<u32> = lines_of(&m.join("pids"))
        .iter()
        .map(|p| p.parse().unwrap())
        .collect();
    assert!(pids.contains(&s.pid));
    assert!(pids.iter().all(|p| is_alive(*p)));
    assert_eq!(d.client().service_stop("tree").unwrap(), 1);
    for p in &pids {
        assert!(!is_alive(*p), "pid {p} of the tree survived the stop");
    }
    assert_eq!(
        lines_of(&m.join("signals")),
        ["term"],
        "SIGTERM came first and was survived"
    );
    let (s, why) = describe(&d, "tree");
    assert_eq!(s.status, "stopped");
    assert!(
        why.starts_with("stopped by request") && why.contains("SIGKILL"),
        "{why}"
    );
    assert_eq!(s.last_exit_code, -9);
}

#[test]
fn leftovers_of_an_exited_process_are_ended_before_the_restart() {
    let d = Daemon::start();
    let m = marks(&d);
    let script = "echo $$ >> \"$M/runs\"; sleep 1000 & echo $! >> \"$M/kids\"; sleep 0.3; exit 1";
    let mut cfg = with_m(sh_cfg("leaky", script), &m);
    cfg.min_uptime_ms = 100;
    cfg.kill_timeout_ms = 2000;
    d.client().service_start(cfg).unwrap();
    assert!(wait_for(Duration::from_secs(20), || lines_of(
        &m.join("runs")
    )
    .len()
        >= 2));
    // Read once run 2 exists: run 1's child must already be gone.
    let kids = lines_of(&m.join("kids"));
    let first: u32 = kids[0].parse().unwrap();
    assert!(!is_alive(first), "run 1's child outlived it into run 2");
    d.client().service_stop("leaky").unwrap();
    for k in lines_of(&m.join("kids")) {
        assert!(!is_alive(k.parse().unwrap()));
    }
}

#[test]
fn logs_rotate_by_size_and_keep_their_order() {
    let d = Daemon::start_with(&["--service-log-max-bytes", "4096", "--service-log-keep", "2"]);
    d.client()
        .service_start(sh_cfg("seq", "seq 1 3000; exec sleep 1000"))
        .unwrap();
    assert!(wait_for(Duration::from_secs(20), || d
        .client()
        .service_logs("seq", 1)
        .unwrap()
        .ends_with(" out 3000\n")));
    let text = d.client().service_logs("seq", 100_000).unwrap();
    let nums: Vec<u32> = text
        .lines()
        .filter_map(|l| l.split(" out ").nth(1))
        .map(|n| n.parse().unwrap())
        .collect();
    assert_eq!(nums.last(), Some(&3000));
    assert!(nums[0] > 1, "the oldest lines rotated away");
    assert!(
        nums.windows(2).all(|w| w[1] == w[0] + 1),
        "no line lost or reordered within what is kept"
    );
    for l in text.lines() {
        let ts = l.split(' ').next().unwrap();
        assert_eq!(ts.len(), 24, "RFC 3339 UTC timestamp with ms: {l}");
        assert!(ts.ends_with('Z') && ts.as_bytes()[10] == b'T', "{l}");
    }
    let dir = d.state_dir().join("berth/berth-logs");
    for f in ["seq.log", "seq.log.1", "seq.log.2"] {
        let len = std::fs::metadata(dir.join(f)).unwrap().len();
        assert!(len <= 4096, "{f} is {len} bytes");
    }
    assert!(!exists(&dir.join("seq.log.3")));
    // FLUSH empties them.
    assert_eq!(d.client().service_flush("seq").unwrap(), 1);
    assert_eq!(d.client().service_logs("seq", 100).unwrap(), "");
    assert!(!exists(&dir.join("seq.log.1")));
}

#[test]
fn follow_streams_lines_written_after_it_started_on_the_same_connection() {
    let d = Daemon::start();
    let m = marks(&d);
    let script = "echo before; while [ ! -e \"$M/go\" ]; do sleep 0.02; done; echo after-follow; exec sleep 1000";
    d.client()
        .service_start(with_m(sh_cfg("f", script), &m))
        .unwrap();
    assert!(wait_for(Duration::from_secs(10), || d
        .client()
        .service_logs("f", 10)
        .unwrap()
        .contains("out before")));
    let mut c = d.client();
    let (tail, follow_id) = c.service_logs_follow("f", 10).unwrap();
    assert!(
        tail.contains("out before") && !tail.contains("out after-follow"),
        "{tail:?}"
    );
    std::fs::write(m.join("go"), "").unwrap();
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    loop {
        let r = c.read_response().unwrap();
        assert_eq!(r.request_id, follow_id, "stream frames echo the follow id");
        assert_eq!(r.code, StatusCode::Ok as i32);
        let text = r.service_logs.unwrap().log_text;
        assert!(!text.contains("out before"), "no overlap with the tail");
        if text.contains("out after-follow") {
            break;
        }
    }
    // A request ends the stream and is answered on the same connection.
    let ping = c.ping().or_else(|_| c.ping());
    assert!(ping.is_ok(), "{ping:?}");
    // The published client polls instead: it gets the tail and no stream.
    let mut p = d.client();
    let req = DaemonRequest {
        id: 7,
        r#type: RequestType::ServiceLogs as i32,
        protocol_version: 1,
        client_name: "running-process-client".into(),
        service_logs: Some(ServiceLogsRequest {
            target: "f".into(),
            lines: 5,
            follow: true,
        }),
        ..Default::default()
    };
    assert_eq!(p.call_raw(&req).unwrap().request_id, 7);
    let again = DaemonRequest { id: 8, ..req };
    assert_eq!(p.call_raw(&again).unwrap().request_id, 8);
}

#[test]
fn save_and_resurrect_round_trip_without_duplicates() {
    let mut d = Daemon::start();
    let m = marks(&d);
    let mut c = d.client();
    c.service_start(with_m(
        sh_cfg("a", "echo run >> \"$M/a\"; exec sleep 1000"),
        &m,
    ))
    .unwrap();
    c.service_start(sh_cfg("b", "exec sleep 1000")).unwrap();
    c.service_stop("b").unwrap();
    let (path, n) = c.service_save().unwrap();
    assert_eq!(n, 2);
    let dump: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(dump["services"].as_array().unwrap().len(), 2);
    let old_pid = describe(&d, "a").0.pid;
    drop(c);

    // A stopping daemon stops its services; --resurrect brings back what ran.
    d.berth(&["daemon", "stop"]);
    assert!(d.wait_exit(Duration::from_secs(15)));
    assert!(!is_alive(old_pid));
    d.spawn(&["--resurrect"]);
    let a = wait_status(&d, "a", "online");
    assert_ne!(a.pid, old_pid);
    assert_eq!(describe(&d, "b").0.status, "stopped");
    assert_eq!(lines_of(&m.join("a")).len(), 2);

    // Resurrecting again starts nothing that already runs.
    let (started, summary) = d.client().service_resurrect().unwrap();
    assert_eq!(started, 0, "{summary}");
    assert_eq!(d.client().service_list().unwrap().len(), 2);
    assert_eq!(describe(&d, "a").0.pid, a.pid);
    assert_eq!(lines_of(&m.join("a")).len(), 2);
}

#[test]
fn kill9_during_save_leaves_the_previous_dump_intact() {
    let mut d = Daemon::start();
    let mut c = d.client();
    let big = "x".repeat(120 * 1024);
    for i in 0..8 {
        let mut cfg = sh_cfg(&format!("s{i}"), "exec sleep 1000");
        cfg.env.insert("BIG".into(), big.clone());
        c.service_start(cfg).unwrap();
    }
    let (path, n) = c.service_save().unwrap();
    assert_eq!(n, 8);
    let saves = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let saver = {
        let (sock, saves) = (d.socket.clone(), saves.clone());
        std::thread::spawn(move || {
            if let Ok(mut c) = berth_client::Client::connect(&sock) {
                while c.service_save().is_ok() {
                    saves.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
            }
        })
    };
    // Kill it in the middle of a stream of SAVEs.
    assert!(wait_for(Duration::from_secs(20), || saves
        .load(std::sync::atomic::Ordering::SeqCst)
        >= 3));
    d.kill9();
    saver.join().unwrap();
    let dump: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap())
        .expect("the dump is whole after kill -9");
    assert_eq!(dump["services"].as_array().unwrap().len(), 8);
    d.spawn(&[]);
    let dir = Path::new(&path).parent().unwrap();
    let temps: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(temps.is_empty(), "stale temp files are removed at start");
    assert_eq!(d.client().service_stop("all").unwrap(), 8);
}

fn beats(text: &str) -> Vec<u32> {
    text.lines()
        .filter_map(|l| l.split(" out beat ").nth(1))
        .map(|n| n.parse().unwrap())
        .collect()
}

#[test]
fn after_kill9_running_services_are_readopted_and_keep_logging() {
    let mut d = Daemon::start();
    let m = marks(&d);
    let script =
        "echo run >> \"$M/runs\"; i=0; while :; do i=$((i+1)); echo beat $i; sleep 0.02; done";
    let s = d
        .client()
        .service_start(with_m(sh_cfg("hb", script), &m))
        .unwrap();
    assert!(wait_for(Duration::from_secs(10), || beats(
        &d.client().service_logs("hb", 5).unwrap()
    )
    .len()
        >= 3));
    d.kill9();
    assert!(
        is_alive(s.pid),
        "a crash of the daemon does not end services"
    );
    // The service keeps writing while no daemon runs.
    let before = std::fs::metadata(d.state_dir().join("berth/berth-logs/.hb.out.spool"))
        .unwrap()
        .len();
    assert!(wait_for(Duration::from_secs(10), || std::fs::metadata(
        d.state_dir().join("berth/berth-logs/.hb.out.spool")
    )
    .unwrap()
    .len()
        > before + 200));
    d.spawn(&[]);
    let (st, why) = describe(&d, "hb");
    assert_eq!(st.status, "online");
    assert_eq!(st.pid, s.pid, "the same process, re-adopted");
    assert!(why.contains("re-adopted"), "{why}");
    assert_eq!(lines_of(&m.join("runs")).len(), 1, "no duplicate start");
    // Nothing written while the daemon was down is missing.
    let mut got = Vec::new();
    assert!(wait_for(Duration::from_secs(10), || {
        got = beats(&d.client().service_logs("hb", 100_000).unwrap());
        got.len() > 20
    }));
    let mut sorted = got.clone();
    sorted.dedup();
    let last = *sorted.last().unwrap();
    for n in 1..=last {
        assert!(sorted.contains(&n), "beat {n} missing from the log");
    }
    // The restart policy still applies to the adopted process.
    kill(s.pid, Signal::SIGKILL);
    assert!(wait_for(Duration::from_secs(10), || lines_of(
        &m.join("runs")
    )
    .len()
        == 2));
    let st = wait_status(&d, "hb", "online");
    assert_ne!(st.pid, s.pid);
    assert_eq!(st.restart_count, 1);
}

#[test]
fn bad_configs_and_targets_get_clear_errors() {
    let d = Daemon::start();
    let mut c = d.client();
    let err = |c: &mut berth_client::Client, cfg: ServiceConfig| c.service_start(cfg).unwrap_err();

    let mut cfg = sh_cfg("x", "true");
    cfg.cmd.clear();
    let e = err(&mut c, cfg);
    assert_eq!(code(&e), StatusCode::InvalidArgument);
    assert!(
        e.to_string()
            .contains("service_start.config.cmd: must not be empty"),
        "{e}"
    );

    let mut cfg = sh_cfg("x", "true");
    cfg.cmd = vec!["/no/such/program-for-berth".into()];
    let e = err(&mut c, cfg);
    assert!(e.to_string().contains("service_start.config.cmd[0]"), "{e}");

    let mut cfg = sh_cfg("x", "true");
    cfg.cwd = "/no/such/dir/for/berth".into();
    assert!(err(&mut c, cfg)
        .to_string()
        .contains("service_start.config.cwd"));

    for bad in ["", "all", "42", "a b"] {
        let e = err(&mut c, sh_cfg(bad, "true"));
        assert_eq!(code(&e), StatusCode::InvalidArgument);
        assert!(
            e.to_string().contains("service_start.config.name"),
            "{bad:?}: {e}"
        );
    }

    let mut cfg = sh_cfg("x", "true");
    cfg.env = HashMap::from([("A=B".into(), "1".into())]);
    assert!(err(&mut c, cfg)
        .to_string()
        .contains("service_start.config.env"));

    c.service_start(sh_cfg("dup", "exec sleep 1000")).unwrap();
    let e = err(&mut c, sh_cfg("dup", "exec sleep 1000"));
    assert_eq!(code(&e), StatusCode::InvalidArgument);
    assert!(
        e.to_string().contains("service_start.config.name") && e.to_string().contains("already"),
        "{e}"
    );

    let raw = c
        .call(RequestType::ServiceStart, |q| {
            q.service_start = Some(ServiceStartRequest { config: None })
        })
        .unwrap_err();
    assert!(raw.to_string().contains("service_start.config"), "{raw}");

    for (what, e) in [
        ("stop", c.service_stop("nope").unwrap_err()),
        ("restart", c.service_restart("nope").unwrap_err()),
        ("delete", c.service_delete("nope").unwrap_err()),
        ("describe", c.service_describe("nope").unwrap_err()),
        ("logs", c.service_logs("nope", 1).unwrap_err()),
        ("flush", c.service_flush("nope").unwrap_err()),
    ] {
        assert_eq!(code(&e), StatusCode::NotFound, "{what}");
        assert!(e.to_string().contains("target \"nope\""), "{what}: {e}");
    }
    assert_eq!(
        code(&c.service_stop("").unwrap_err()),
        StatusCode::InvalidArgument
    );
    assert_eq!(
        code(&c.service_describe("all").unwrap_err()),
        StatusCode::InvalidArgument
    );
    let mut cfg = sh_cfg("slow-stop", "true");
    cfg.kill_timeout_ms = u32::MAX;
    assert!(err(&mut c, cfg)
        .to_string()
        .contains("service_start.config.kill_timeout_ms"));
    let e = err(&mut c, sh_cfg(&"n".repeat(65), "true"));
    assert!(e.to_string().contains("longer than 64"), "{e}");
    // Extreme but valid values are served, not fatal.
    c.service_logs("", u32::MAX).unwrap();
    c.service_logs("dup", u32::MAX).unwrap();
    // Nothing bad stuck around, and the daemon still answers.
    let names: Vec<String> = c
        .service_list()
        .unwrap()
        .into_iter()
        .map(|(s, _)| s.name)
        .collect();
    assert_eq!(names, ["dup"]);
    c.ping().unwrap();
}

#[test]
fn env_cwd_and_autorestart_off_are_honoured() {
    let d = Daemon::start();
    let mut c = d.client();
    let mut cfg = sh_cfg("once", "echo \"$FOO $(pwd)\"");
    cfg.env.insert("FOO".into(), "bar".into());
    cfg.cwd = d.dir.path().display().to_string();
    cfg.autorestart = false;
    c.service_start(cfg).unwrap();
    let s = wait_status(&d, "once", "stopped");
    assert_eq!(s.last_exit_code, 0);
    assert_eq!(s.restart_count, 0);
    assert!(wait_for(Duration::from_secs(5), || c
        .service_logs("once", 10)
        .unwrap()
        .contains(&format!("out bar {}", d.dir.path().display()))));
    let mut cfg = sh_cfg("fails", "exit 2");
    cfg.autorestart = false;
    c.service_start(cfg).unwrap();
    wait_status(&d, "fails", "errored");
    let (s, why) = describe(&d, "fails");
    assert_eq!(s.last_exit_code, 2);
    assert!(
        why.contains("exit code 2") && why.contains("autorestart is off"),
        "{why}"
    );
    // A stopped service starts again under the same id.
    let again = c.service_start(sh_cfg("fails", "exec sleep 1000")).unwrap();
    assert_eq!(again.id, s.id);
    assert_eq!(again.status, "online");
    assert_eq!(c.service_restart("fails").unwrap(), 1);
    assert_eq!(describe(&d, "fails").0.restart_count, 1);
}

#[test]
fn apply_declares_services_idempotently_and_points_at_bad_keys() {
    let d = Daemon::start();
    let file = d.dir.path().join("services.toml");
    let write = |s: &str| std::fs::write(&file, s).unwrap();
    let apply = || d.berth(&["svc", "apply", file.to_str().unwrap()]);
    write(
        "[services.a]\ncmd = [\"sleep\", \"1000\"]\n\n[services.b]\ncmd = \"exec sleep 1001\"\nmax_restarts = 2\n",
    );
    let out = apply();
    assert!(out.status.success(), "{}", stderr(&out));
    let a = wait_status(&d, "a", "online");
    let b = wait_status(&d, "b", "online");
    assert_eq!(b.config.as_ref().unwrap().max_restarts, 2);
    assert_eq!(
        b.config.as_ref().unwrap().cwd,
        d.dir.path().display().to_string(),
        "cwd defaults to the file's directory"
    );

    let out = apply();
    assert!(out.status.success());
    assert!(stdout(&out).contains("a: unchanged") && stdout(&out).contains("b: unchanged"));
    assert_eq!(describe(&d, "a").0.pid, a.pid);
    assert_eq!(describe(&d, "b").0.pid, b.pid);

    write("[services.a]\ncmd = [\"sleep\", \"1000\"]\n\n[services.b]\ncmd = \"exec sleep 1002\"\n");
    let out = apply();
    assert!(
        stdout(&out).contains("b: restarted (changed)"),
        "{}",
        stdout(&out)
    );
    assert_eq!(describe(&d, "a").0.pid, a.pid);
    let b2 = describe(&d, "b").0;
    assert_ne!(b2.pid, b.pid);
    assert!(!is_alive(b.pid));

    write("[services.b]\ncmd = \"exec sleep 1002\"\n");
    let out = apply();
    assert!(stdout(&out).contains("a: stopped"), "{}", stdout(&out));
    assert_eq!(describe(&d, "a").0.status, "stopped");
    assert_eq!(describe(&d, "b").0.pid, b2.pid);

    // Errors name the key and its line; nothing changes.
    write("[services.b]\ncmd = \"exec sleep 1002\"\n\n[services.c]\ncmd = []\n");
    let out = apply();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("services.toml:5:7: services.c.cmd: must not be empty"),
        "{}",
        stderr(&out)
    );
    write("[services.b]\ncmd = \"x\"\nrestart_dealy_ms = 5\n");
    let out = apply();
    assert!(
        stderr(&out).contains("services.toml:3:1") && stderr(&out).contains("restart_dealy_ms"),
        "{}",
        stderr(&out)
    );
    assert!(d
        .client()
        .service_describe("c")
        .is_err_and(|e| e.code() == Some(StatusCode::NotFound)));
}

#[test]
fn the_cli_drives_services() {
    let d = Daemon::start();
    let run = |args: &[&str]| {
        let o = d.berth(args);
        assert!(o.status.success(), "berth {args:?}: {}", stderr(&o));
        stdout(&o)
    };
    let out = run(&[
        "svc",
        "start",
        "web",
        "-e",
        "GREETING=hello",
        "--",
        "sh",
        "-c",
        "echo $GREETING from web; exec sleep 1000",
    ]);
    assert!(out.starts_with("started web (id 1, pid "), "{out}");
    let ls = run(&["svc", "ls"]);
    assert!(ls.starts_with("ID  NAME  STATUS  PID"), "{ls}");
    assert!(ls.contains("web   online"), "{ls}");
    let json: serde_json::Value = serde_json::from_str(&run(&["svc", "ls", "--json"])).unwrap();
    assert_eq!(json[0]["name"], "web");
    assert_eq!(json[0]["status"], "online");
    assert_eq!(json[0]["reason"], "started");
    assert_eq!(json[0]["config"]["env"]["GREETING"], "hello");
    assert!(run(&["svc", "describe", "web"]).contains("reason:        started"));
    assert!(wait_for(Duration::from_secs(5), || run(&[
        "svc", "logs", "web", "-n", "5"
    ])
    .contains("out hello from web")));
    assert!(run(&["svc", "logs"]).contains("[web] out hello from web"));
    // `logs -f` keeps printing what comes after it started.
    let mut follow = d
        .command(BERTH)
        .args(["svc", "logs", "web", "-f", "-n", "1"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = std::io::BufReader::new(follow.stdout.take().unwrap());
    let mut first = String::new();
    std::io::BufRead::read_line(&mut reader, &mut first).unwrap();
    assert!(first.contains("out hello from web"), "{first}");
    assert_eq!(run(&["svc", "restart", "1"]), "restarted 1 service\n");
    let mut seen = String::new();
    while !seen.contains("out hello from web") {
        seen.clear();
        std::io::BufRead::read_line(&mut reader, &mut seen).unwrap();
        assert!(!seen.is_empty(), "follow ended early");
    }
    let _ = follow.kill();
    let _ = follow.wait();
    assert!(run(&["svc", "describe", "web", "--json"]).contains("\"restart_count\": 1"));
    assert_eq!(run(&["svc", "flush"]), "flushed the logs of 1 service\n");
    assert!(run(&["svc", "save"]).starts_with("saved 1 service to /"));
    assert_eq!(run(&["svc", "stop", "all"]), "stopped 1 service\n");
    assert!(run(&["svc", "resurrect"]).starts_with("resurrected 1 service"));
    assert_eq!(run(&["svc", "delete", "web"]), "deleted 1 service\n");
    assert_eq!(run(&["svc", "ls"]), "no services\n");
    let o = d.berth(&["svc", "stop", "ghost"]);
    assert!(!o.status.success());
    assert_eq!(
        stderr(&o),
        "berth: no service is named \"ghost\" (`berth svc ls` lists them)\n"
    );
}

// ---------------------------------------------------------------------------
// The published runpm CLI drives berth through the compatible socket.
// ---------------------------------------------------------------------------

fn runpm() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(d) = std::env::var_os("RUNNING_PROCESS_BIN") {
        dirs.push(d.into());
    }
    dirs.push("/opt/running-process/bin".into());
    if let Some(p) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&p));
    }
    dirs.into_iter()
        .map(|d| d.join("runpm"))
        .find(|p| p.is_file())
}

#[test]
#[ignore = "needs runpm from crates.io running-process: see README"]
fn published_runpm_drives_berth_services() {
    let runpm = runpm().expect(
        "needs runpm from crates.io running-process (cargo install --locked running-process --features daemon)",
    );
    let d = Daemon::start();
    // The compatible socket is bound just after berth's own.
    assert!(wait_for(Duration::from_secs(10), || {
        berth_client::Client::connect(&d.compat).is_ok()
    }));
    let run = |args: &[&str]| {
        let out = d.command(&runpm).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "runpm {args:?}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        stdout(&out)
    };
    assert!(run(&["ping"]).starts_with("OK (server_time_ms="));
    let out = run(&[
        "start",
        "--name",
        "web",
        "--",
        "sh",
        "-c",
        "echo hello runpm; exec sleep 1000",
    ]);
    assert!(out.starts_with("started 'web' (id=1, pid="), "{out}");
    assert!(out.trim_end().ends_with("status=online)"), "{out}");
    let list = run(&["list"]);
    assert!(list.contains("web") && list.contains("online"), "{list}");
    let json: serde_json::Value = serde_json::from_str(&run(&["list", "--json"])).unwrap();
    assert_eq!(json[0]["status"], "online");
    let show = run(&["show", "web"]);
    assert!(show.contains("status:        online"), "{show}");
    // One service's log in the reference daemon's layout, as runpm prints it.
    assert!(wait_for(Duration::from_secs(5), || run(&["logs", "web"])
        .contains("[stdout] hello runpm")));
    assert!(!run(&["logs", "web"]).contains("berth started"));
    assert!(run(&["logs"]).contains("[web] out hello runpm"));
    assert_eq!(run(&["stop", "web"]), "stop: 1 service(s)\n");
    assert_eq!(describe(&d, "web").0.status, "stopped");
    assert_eq!(run(&["restart", "web"]), "restart: 1 service(s)\n");
    let pid = describe(&d, "web").0.pid;
    assert!(is_alive(pid));
    assert_eq!(run(&["save"]), "OK: save\n");
    assert_eq!(run(&["delete", "web"]), "delete: 1 service(s)\n");
    assert!(!is_alive(pid));
    assert_eq!(run(&["list"]), "no services\n");
    assert_eq!(run(&["resurrect"]), "OK: resurrect\n");
    let s = wait_status(&d, "web", "online");
    assert_ne!(s.pid, pid);
    assert!(run(&["flush", "web"]).starts_with("OK"));
    let bad = d.command(&runpm).args(["stop", "ghost"]).output().unwrap();
    assert!(!bad.status.success());
    assert!(
        stderr(&bad).contains("target \"ghost\""),
        "{}",
        stderr(&bad)
    );
    Command::new("true").status().unwrap();
}
