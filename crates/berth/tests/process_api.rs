//! The process API over a real socket, driven by a real client, including
//! every error path a client can provoke.

mod common;

use berth_client::ClientError;
use berth_wire::daemon::*;
use common::*;
use prost::Message;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

fn code(e: ClientError) -> (StatusCode, String) {
    match e {
        ClientError::Status { code, message } => (code, message),
        other => panic!("expected a status reply, got {other}"),
    }
}

fn reg(pid: u32, originator: &str) -> RegisterRequest {
    RegisterRequest {
        pid,
        kind: "test".into(),
        originator: originator.into(),
        ..Default::default()
    }
}

#[test]
fn status_reports_every_field() {
    let d = Daemon::start();
    let mut c = d.client();
    assert!(
        c.ping().unwrap() > 1_700_000_000_000,
        "server time is epoch ms"
    );
    let s = c.status().unwrap();
    assert_eq!(s.version, env!("CARGO_PKG_VERSION"));
    assert_eq!(s.socket_path, d.socket.display().to_string());
    assert_eq!(
        s.db_path,
        d.state_dir().join("berth/berth.db").display().to_string()
    );
    assert_eq!(s.scope, "global");
    assert_eq!(s.scope_hash, "");
    assert!(!s.scope_cwd.is_empty());
    assert_eq!(s.emergency_reserve, "armed");
    assert!(s.active_connections >= 1);
    assert_eq!(s.tracked_process_count, 0);
    assert!(d.state_dir().join("berth/berth.db").exists());
}

#[test]
fn register_list_unregister_with_real_facts() {
    let d = Daemon::start();
    let mut c = d.client();
    let s = Sleeper::new(60);
    let me = format!("itest:{}", std::process::id());
    c.register(reg(s.pid(), &me)).unwrap();
    let rows = c.list_active().unwrap();
    assert_eq!(rows.len(), 1);
    let p = &rows[0];
    assert_eq!(p.pid, s.pid());
    assert_eq!(
        p.command, "sleep 60",
        "read from /proc when the client sends none"
    );
    assert_eq!(p.state, ProcessState::Alive as i32);
    assert!(p.parent_alive, "the originator (this test) lives");
    assert!(p.last_validated_at > 0.0 && p.registered_at > 0.0);
    assert!(p.created_at > 0.0 && p.uptime_seconds < 60.0);
    assert_eq!(c.list_by_originator("itest").unwrap().len(), 1);
    assert!(c.list_by_originator("other").unwrap().is_empty());
    assert_eq!(c.status().unwrap().tracked_process_count, 1);
    c.unregister(s.pid()).unwrap();
    assert!(c.list_active().unwrap().is_empty());
    let (st, msg) = code(c.unregister(s.pid()).unwrap_err());
    assert_eq!(st, StatusCode::NotFound);
    assert!(msg.contains("not tracked"), "{msg}");
}

/// Issue 20: as the reference daemon, REGISTER records a pid whatever its
/// state; berth marks a wrong identity or a missing process dead at once.
#[test]
fn register_records_wrong_identity_and_missing_processes_as_dead() {
    let d = Daemon::start();
    let mut c = d.client();
    let s = Sleeper::new(60);
    let mut r = reg(s.pid(), "");
    r.created_at = 1_000_000_000.0;
    c.register(r).unwrap();
    c.register(reg(u32::MAX - 7, "")).unwrap();
    let (st, _) = code(c.register(reg(0, "")).unwrap_err());
    assert_eq!(st, StatusCode::InvalidArgument);
    let rows = c.list_active().unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    for row in &rows {
        assert_eq!(row.state, ProcessState::Dead as i32, "{row:?}");
        assert!(!row.identity_verified);
    }
    let wrong = rows.iter().find(|r| r.pid == s.pid()).unwrap();
    assert_eq!(wrong.created_at, 1_000_000_000.0, "the client's created_at");
    assert!(is_alive(s.pid()));
}

#[test]
fn dead_processes_are_reported_then_purged() {
    let d = Daemon::start();
    let mut c = d.client();
    let mut s = Sleeper::new(60);
    c.register(reg(s.pid(), "")).unwrap();
    s.0.kill().unwrap();
    s.0.wait().unwrap();
    assert!(
        c.list_active().unwrap().is_empty(),
        "LIST_ACTIVE lists the living (issue 20)"
    );
    let all = |c: &mut berth_client::Client| {
        c.call(RequestType::ListActive, |q| {
            q.list_active = Some(ListActiveRequest { include_dead: true })
        })
        .unwrap()
        .list_active
        .unwrap()
        .processes
    };
    let rows = all(&mut c);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].state, ProcessState::Dead as i32);
    assert_eq!(c.status().unwrap().tracked_process_count, 1);
    std::thread::sleep(Duration::from_millis(1200));
    assert!(
        all(&mut c).is_empty(),
        "purged after the retention (1 s here)"
    );
}

#[test]
fn rows_survive_kill_9_of_the_daemon() {
    let mut d = Daemon::start();
    let s = Sleeper::new(60);
    d.client().register(reg(s.pid(), "itest:1")).unwrap();
    d.kill9();
    d.spawn(&[]);
    let rows = d.client().list_active().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].pid, s.pid());
    assert_eq!(rows[0].originator, "itest:1");
}

#[test]
fn envelope_errors_are_named_and_the_connection_keeps_serving() {
    let d = Daemon::start();
    let mut c = d.client();
    let base = DaemonRequest {
        id: 41,
        protocol_version: 1,
        client_name: "t".into(),
        ..Default::default()
    };

    // Unknown type.
    let r = c
        .call_raw(&DaemonRequest {
            r#type: 999,
            ..base.clone()
        })
        .unwrap();
    assert_eq!(r.code, StatusCode::UnknownRequest as i32);
    assert_eq!(r.request_id, 41);
    assert!(r.message.contains("999"), "{}", r.message);
    let r = c
        .call_raw(&DaemonRequest {
            r#type: 0,
            ..base.clone()
        })
        .unwrap();
    assert_eq!(r.code, StatusCode::UnknownRequest as i32);

    // Missing payloads name the field, for every payload-carrying request.
    for (ty, field) in [
        (RequestType::Register, "register"),
        (RequestType::Unregister, "unregister"),
        (RequestType::SpawnDaemon, "spawn_daemon"),
        (RequestType::ListByOriginator, "list_by_originator"),
        (RequestType::GetProcessTree, "get_process_tree"),
        (RequestType::KillZombies, "kill_zombies"),
        (RequestType::KillTree, "kill_tree"),
        (RequestType::Shutdown, "shutdown"),
        (RequestType::SpawnPtySession, "spawn_pty_session"),
        (RequestType::AttachPtySession, "attach_pty_session"),
        (RequestType::WritePipeStdin, "write_pipe_stdin"),
        (RequestType::RegisterSessionTee, "register_session_tee"),
        (RequestType::GetSessionTeeStatus, "get_session_tee_status"),
    ] {
        let r = c
            .call_raw(&DaemonRequest {
                r#type: ty as i32,
                ..base.clone()
            })
            .unwrap();
        assert_eq!(r.code, StatusCode::InvalidArgument as i32, "{ty:?}");
        assert!(
            r.message.contains(&format!("`{field}`")),
            "{ty:?}: {}",
            r.message
        );
    }

    // Bad fields.
    let r = c
        .call_raw(&DaemonRequest {
            r#type: RequestType::KillTree as i32,
            kill_tree: Some(KillTreeRequest {
                pid: 1,
                timeout_seconds: -1.0,
            }),
            ..base.clone()
        })
        .unwrap();
    assert_eq!(r.code, StatusCode::InvalidArgument as i32);
    assert!(r.message.contains("timeout_seconds"), "{}", r.message);
    let r = c
        .call_raw(&DaemonRequest {
            r#type: RequestType::SpawnDaemon as i32,
            spawn_daemon: Some(SpawnDaemonRequest {
                command: "  ".into(),
                ..Default::default()
            }),
            ..base.clone()
        })
        .unwrap();
    assert!(r.message.contains("spawn_daemon.command"), "{}", r.message);

    // Future protocol versions.
    let r = c
        .call_raw(&DaemonRequest {
            protocol_version: 2,
            r#type: RequestType::Ping as i32,
            ..base.clone()
        })
        .unwrap();
    assert_eq!(r.code, StatusCode::VersionMismatch as i32);

    // Services are served: a missing payload is named.
    let r = c
        .call_raw(&DaemonRequest {
            r#type: RequestType::ServiceStart as i32,
            ..base.clone()
        })
        .unwrap();
    assert_eq!(r.code, StatusCode::InvalidArgument as i32);
    assert!(r.message.contains("service_start"), "{}", r.message);
    // The same connection still works.
    c.ping().unwrap();
}

fn raw_reply(stream: &mut UnixStream) -> Option<DaemonResponse> {
    let mut h = [0u8; 4];
    stream.read_exact(&mut h).ok()?;
    let mut b = vec![0u8; u32::from_be_bytes(h) as usize];
    stream.read_exact(&mut b).ok()?;
    Some(DaemonResponse::decode(&b[..]).unwrap())
}

fn closed(stream: &mut UnixStream) -> bool {
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut b = [0u8; 1];
    matches!(stream.read(&mut b), Ok(0))
}

#[test]
fn malformed_frames_get_an_error_then_close_without_disturbing_others() {
    let d = Daemon::start();
    let mut bystander = d.client();
    bystander.ping().unwrap();

    // Garbage protobuf.
    let mut s = UnixStream::connect(&d.socket).unwrap();
    s.write_all(&[0, 0, 0, 3, 0xff, 0xff, 0xff]).unwrap();
    let r = raw_reply(&mut s).expect("an error reply before closing");
    assert_eq!(r.code, StatusCode::InvalidArgument as i32);
    assert!(r.message.contains("malformed"), "{}", r.message);
    assert!(closed(&mut s));

    // A frame over 4 MiB is refused from its header alone.
    let mut s = UnixStream::connect(&d.socket).unwrap();
    s.write_all(&((4u32 << 20) + 1).to_be_bytes()).unwrap();
    let r = raw_reply(&mut s).expect("an error reply before closing");
    assert!(r.message.contains("exceeds"), "{}", r.message);
    assert!(closed(&mut s));

    // A client that vanishes mid-frame.
    let mut s = UnixStream::connect(&d.socket).unwrap();
    s.write_all(&[0, 0, 1, 0, 1, 2]).unwrap();
    drop(s);

    bystander.ping().unwrap();
    d.client().ping().unwrap();
}

#[test]
fn requests_pipelined_on_one_connection_are_answered_in_order() {
    let d = Daemon::start();
    let mut s = UnixStream::connect(&d.socket).unwrap();
    let mut bytes = Vec::new();
    for id in 1..=20u64 {
        let req = DaemonRequest {
            id,
            r#type: RequestType::Ping as i32,
            protocol_version: 1,
            ping: Some(PingRequest {}),
            ..Default::default()
        };
        bytes.extend(berth_wire::frame::encode(&req).unwrap());
    }
    s.write_all(&bytes).unwrap();
    for id in 1..=20u64 {
        assert_eq!(raw_reply(&mut s).unwrap().request_id, id);
    }
}

#[test]
fn spawn_daemon_detaches_layers_env_and_is_tracked() {
    let d = Daemon::start();
    let mut c = d.client();
    let out = d.dir.path().join("env.txt");
    let r = c
        .spawn_daemon(SpawnDaemonRequest {
            command: format!(
                "echo \"$ONE:$TWO:${{PATH:+inherited}}\" > {}; exec sleep 60",
                out.display()
            ),
            cwd: d.dir.path().display().to_string(),
            env: vec![
                KeyValue {
                    key: "ONE".into(),
                    value: "a".into(),
                },
                KeyValue {
                    key: "TWO".into(),
                    value: "b".into(),
                },
                KeyValue {
                    key: "ONE".into(),
                    value: "last".into(),
                },
            ],
            originator: "itest".into(),
            clear_inherited_env: false,
            ..Default::default()
        })
        .unwrap();
    assert!(r.pid > 0 && r.created_at > 0.0);
    assert_eq!(r.containment, "detached");
    assert_eq!(r.containment_detail, "session");
    assert_eq!(r.cwd, d.dir.path().display().to_string());
    assert!(wait_for(Duration::from_secs(5), || {
        std::fs::read_to_string(&out)
            .map(|s| s.ends_with('\n'))
            .unwrap_or(false)
    }));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "last:b:inherited\n");
    let stat = berth_os::proc::read_stat(r.pid).unwrap();
    assert_eq!(stat.session, r.pid as i32, "new session");
    assert!(std::fs::read_link(format!("/proc/{}/fd/0", r.pid))
        .unwrap()
        .ends_with("null"));
    let rows = c.list_active().unwrap();
    assert!(rows
        .iter()
        .any(|p| p.pid == r.pid && p.kind == "subprocess" && p.originator == "itest"));

    // clear_inherited_env replaces the environment.
    let out2 = d.dir.path().join("env2.txt");
    c.spawn_daemon(SpawnDaemonRequest {
        command: format!(
            "echo \"${{XDG_RUNTIME_DIR:-none}}:$ONE\" > {}",
            out2.display()
        ),
        env: vec![KeyValue {
            key: "ONE".into(),
            value: "1".into(),
        }],
        clear_inherited_env: true,
        ..Default::default()
    })
    .unwrap();
    assert!(wait_for(Duration::from_secs(5), || {
        std::fs::read_to_string(&out2)
            .map(|s| s.ends_with('\n'))
            .unwrap_or(false)
    }));
    assert_eq!(std::fs::read_to_string(&out2).unwrap(), "none:1\n");

    // The daemon's death does not take the spawned process with it.
    drop(c);
    let mut d = d;
    d.kill9();
    assert!(is_alive(r.pid));
    kill(r.pid, Signal::SIGKILL);
}

#[test]
fn process_tree_and_kill_tree_cover_all_descendants() {
    let d = Daemon::start();
    let mut c = d.client();
    let r = c
        .spawn_daemon(SpawnDaemonRequest {
            command: "trap '' TERM; sh -c 'sleep 61 & sleep 62 & wait' & wait".into(),
            ..Default::default()
        })
        .unwrap();
    assert!(wait_for(Duration::from_secs(5), || {
        berth_os::ProcessTable::snapshot()
            .descendants_deepest_first(r.pid)
            .len()
            == 3
    }));
    let tree = c.process_tree(r.pid).unwrap();
    assert!(
        tree.contains("sleep 61") && tree.contains("sleep 62"),
        "{tree}"
    );
    assert!(tree.lines().count() == 4, "{tree}");
    let t = std::time::Instant::now();
    let n = c.kill_tree(r.pid, 0.3).unwrap();
    assert_eq!(n, 4, "root (ignoring TERM, so SIGKILLed), sh, two sleeps");
    assert!(
        t.elapsed() >= Duration::from_millis(300),
        "waited for the grace period before SIGKILL"
    );
    assert!(!is_alive(r.pid));
    assert_eq!(
        c.kill_tree(r.pid, 1.0).unwrap(),
        0,
        "ending what is gone is a success (issue 20)"
    );
    let (st, _) = code(c.process_tree(4_000_000).unwrap_err());
    assert_eq!(st, StatusCode::NotFound);
    let (st, msg) = code(c.kill_tree(d.pid(), 1.0).unwrap_err());
    assert_eq!(st, StatusCode::InvalidArgument, "{msg}");
}

#[test]
fn kill_zombies_dry_run_then_kill_and_reused_pids_are_never_signalled() {
    let mut d = Daemon::start();
    let mut owner = Sleeper::new(60);
    let orphan = Sleeper::new(60);
    let bystander = Sleeper::new(60);
    {
        let mut c = d.client();
        c.register(reg(orphan.pid(), &format!("tool:{}", owner.pid())))
            .unwrap();
        c.register(reg(bystander.pid(), "tool:1")).unwrap();
    }
    // Make the bystander's row look like an earlier holder of its pid.
    d.kill9();
    let db = rusqlite::Connection::open(d.state_dir().join("berth/berth.db")).unwrap();
    db.execute(
        "UPDATE tracked_processes SET start_ticks = start_ticks - 5 WHERE pid = ?1",
        [bystander.pid()],
    )
    .unwrap();
    drop(db);
    d.spawn(&[]);
    owner.0.kill().unwrap();
    owner.0.wait().unwrap();

    let mut c = d.client();
    let dry = c.kill_zombies(true).unwrap();
    assert_eq!(dry.len(), 2, "{dry:?}");
    assert!(dry.iter().all(|z| !z.killed));
    let o = dry.iter().find(|z| z.pid == orphan.pid()).unwrap();
    assert_eq!(
        o.reason,
        format!(
            "originator tool:{0} (PID {0}) of process {1} is dead",
            owner.pid(),
            orphan.pid()
        ),
        "the reference's wording"
    );
    let b = dry.iter().find(|z| z.pid == bystander.pid()).unwrap();
    assert!(
        b.reason.starts_with(&format!(
            "PID {} reused: registered creation_time=",
            bystander.pid()
        )),
        "{}",
        b.reason
    );
    assert!(is_alive(orphan.pid()), "dry run signals nothing");

    let real = c.kill_zombies(false).unwrap();
    assert!(real.iter().find(|z| z.pid == orphan.pid()).unwrap().killed);
    assert!(
        !real
            .iter()
            .find(|z| z.pid == bystander.pid())
            .unwrap()
            .killed
    );
    assert!(wait_for(Duration::from_secs(5), || !is_alive(orphan.pid())));
    assert!(
        is_alive(bystander.pid()),
        "the new holder of a reused pid is never signalled"
    );
    assert!(
        c.list_active().unwrap().is_empty(),
        "both were unregistered"
    );
}

#[test]
fn shutdown_replies_then_stops_and_removes_its_sockets() {
    let mut d = Daemon::start();
    assert!(exists(&d.socket) && exists(&d.compat));
    let mut c = d.client();
    c.shutdown(true, 2.0).unwrap();
    assert!(d.wait_exit(Duration::from_secs(5)));
    assert!(!exists(&d.socket) && !exists(&d.compat));
}

#[test]
fn sigterm_stops_cleanly_and_stale_sockets_are_replaced() {
    let mut d = Daemon::start();
    kill(d.pid(), Signal::SIGTERM);
    assert!(d.wait_exit(Duration::from_secs(5)));
    assert!(!exists(&d.socket));
    // A socket file left by a crashed daemon.
    let stale = std::os::unix::net::UnixListener::bind(&d.socket).unwrap();
    drop(stale);
    assert!(exists(&d.socket));
    d.spawn(&[]);
    d.client().ping().unwrap();
}

#[test]
fn a_second_daemon_on_the_same_socket_is_refused_and_the_first_keeps_serving() {
    let d = Daemon::start();
    let out = d.command(BERTH).args(["daemon"]).output().unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("already serving"), "{}", stderr(&out));
    d.client().ping().unwrap();
}

#[test]
fn socket_directories_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let d = Daemon::start();
    for s in [&d.socket, &d.compat] {
        let mode = std::fs::metadata(s.parent().unwrap())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700, "{}", s.display());
    }
}

#[test]
fn peers_with_a_foreign_uid_are_refused() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    if berth_os::dirs::uid() != 0 {
        eprintln!("skipped: needs root to connect as another uid");
        return;
    }
    let d = Daemon::start();
    // The listeners that bind after the process API tighten run/berth back
    // to 0700 when they do: wait for them before opening it.
    let later = [
        d.project_socket.clone(),
        d.runtime_dir().join("berth/guest.sock"),
    ];
    assert!(
        wait_for(Duration::from_secs(30), || later.iter().all(|s| s.exists())),
        "not every socket came up: {later:?}"
    );
    // Open the path (not the daemon's check) so only SO_PEERCRED stands in the way.
    for p in [
        d.dir.path().to_path_buf(),
        d.runtime_dir(),
        d.socket.parent().unwrap().to_path_buf(),
    ] {
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o711)).unwrap();
    }
    std::fs::set_permissions(&d.socket, std::fs::Permissions::from_mode(0o777)).unwrap();
    let script = format!(
        "import socket,struct\ns=socket.socket(socket.AF_UNIX)\ns.connect({:?})\n\
         s.settimeout(5)\ntry:\n  s.sendall(bytes([0,0,0,4, 8,1,16,40]))\n  print('reply' if s.recv(4) else 'closed')\nexcept (ConnectionResetError, BrokenPipeError):\n  print('closed')",
        d.socket.display().to_string()
    );
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "closed",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    d.client().ping().unwrap();
}

#[test]
fn scope_isolates_sockets_and_database() {
    let d = Daemon::start_with(&["--scope", "ci-1"]);
    assert!(d.socket.ends_with("berth/daemon-ci-1.sock"));
    assert!(d.compat.ends_with("running-process/daemon-ci-1.sock"));
    assert!(exists(&d.socket) && exists(&d.compat));
    assert!(
        !exists(&d.runtime_dir().join("berth/daemon.sock")),
        "the global socket is not used"
    );
    let mut c = d.client();
    let s = c.status().unwrap();
    assert_eq!((s.scope.as_str(), s.scope_hash.as_str()), ("ci-1", "ci-1"));
    assert!(s.db_path.ends_with("berth-ci-1.db"));
}

#[test]
fn vsock_listeners_bind_beside_unix_ones() {
    if !std::path::Path::new("/dev/vsock").exists() {
        eprintln!("skipped: no /dev/vsock on this machine");
        return;
    }
    let port = 20_000 + std::process::id() % 20_000;
    let mut d = Daemon::unstarted(&[]);
    let sock = format!("unix://{}", d.socket.display());
    let vsock = format!("vsock://any:{port}");
    d.spawn(&["--listen", &sock, "--listen", &vsock]);
    assert!(
        d.log().contains(&format!("vsock://{}:{port}", u32::MAX)),
        "{}",
        d.log()
    );
    d.client().ping().unwrap();
    // Only the listeners asked for: no compat socket.
    assert!(!exists(&d.compat));
}
