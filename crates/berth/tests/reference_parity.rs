//! berth against the published running-process daemon (crates.io
//! `running-process` 4.10.21, `running-process-daemon`), run side by side in
//! the same test: each scenario is played on both daemons through the same
//! requests, and what a published client can observe is compared, so a
//! difference shows as a failing comparison (issue 20). berth-only facts
//! (its extension fields, its safety rules) are asserted after.
//!
//! The reference daemon is found in $RUNNING_PROCESS_BIN,
//! /opt/running-process/bin or PATH; missing, these tests skip with a
//! message unless `BERTH_REQUIRE_PEERS=1`.

mod common;

use berth_client::Client;
use berth_wire::daemon::*;
use berth_wire::envelope::PROTOCOL_VERSION;
use berth_wire::frame;
use common::*;
use prost::Message;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// One frame's body, or None on timeout or end of stream.
fn read_frame(sock: &mut UnixStream) -> Option<Vec<u8>> {
    let mut header = [0u8; frame::HEADER_LEN];
    sock.read_exact(&mut header).ok()?;
    let len = frame::body_len(header, frame::MAX_FRAME_LEN).ok()?;
    let mut body = vec![0u8; len];
    sock.read_exact(&mut body).ok()?;
    Some(body)
}

/// What the published Rust and Python clients send as `client_name`.
const PUBLISHED_CLIENT: &str = "running-process-client";
/// A variable only the daemons have: inherited or not, per env policy.
const DAEMON_ONLY: &str = "RP_PARITY_DAEMON_ONLY";

fn required() -> bool {
    std::env::var("BERTH_REQUIRE_PEERS").is_ok_and(|v| v == "1")
}

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

/// The reference daemon, in a private directory, stopped on drop.
struct Reference {
    dir: tempfile::TempDir,
    child: Option<Child>,
    socket: PathBuf,
}

impl Reference {
    fn start() -> Option<Self> {
        let Some(bin) = published("running-process-daemon") else {
            assert!(
                !required(),
                "BERTH_REQUIRE_PEERS=1 but running-process-daemon is not installed"
            );
            eprintln!(
                "skipped: running-process-daemon (crates.io running-process) is not installed"
            );
            return None;
        };
        let dir = tempfile::Builder::new()
            .prefix("rp-ref")
            .tempdir_in("/tmp")
            .unwrap();
        let run = dir.path().join("run");
        std::fs::create_dir(&run).unwrap();
        std::fs::set_permissions(&run, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .unwrap();
        let socket = run.join("ref.sock");
        let log = std::fs::File::create(dir.path().join("ref.log")).unwrap();
        let child = Command::new(bin)
            .args(["start", "--socket-path"])
            .arg(&socket)
            .arg("--db-path")
            .arg(dir.path().join("ref.db"))
            .current_dir(dir.path())
            .env("XDG_RUNTIME_DIR", &run)
            .env("XDG_STATE_HOME", dir.path().join("state"))
            .env(DAEMON_ONLY, "daemon-only")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let r = Reference {
            dir,
            child: Some(child),
            socket,
        };
        assert!(
            wait_for(Duration::from_secs(15), || Client::connect(&r.socket)
                .is_ok()),
            "the reference daemon did not start: {}",
            std::fs::read_to_string(r.dir.path().join("ref.log")).unwrap_or_default()
        );
        Some(r)
    }
}

impl Drop for Reference {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            kill(c.id(), Signal::SIGTERM);
            if !wait_for(Duration::from_secs(5), || c.try_wait().unwrap().is_some()) {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

/// berth and the reference, both started with [`DAEMON_ONLY`] in their
/// environment.
struct Pair {
    berth: Daemon,
    reference: Reference,
}

impl Pair {
    fn start() -> Option<Self> {
        let reference = Reference::start()?;
        let mut berth = Daemon::unstarted(&[]);
        berth.spawn_with_env(&[], &[(DAEMON_ONLY, "daemon-only")]);
        Some(Pair { berth, reference })
    }

    /// The two sockets, labelled.
    fn sockets(&self) -> [(&'static str, PathBuf); 2] {
        [
            ("berth", self.berth.socket.clone()),
            ("reference", self.reference.socket.clone()),
        ]
    }

    /// Runs `scenario` against both and asserts the observations are equal.
    fn compare<T: std::fmt::Debug + PartialEq>(
        &self,
        what: &str,
        mut scenario: impl FnMut(&mut Peer) -> T,
    ) -> T {
        let [b, r] = self.sockets().map(|(name, path)| {
            let mut peer = Peer {
                name,
                socket: path,
                next: 1,
            };
            scenario(&mut peer)
        });
        assert_eq!(
            b, r,
            "{what}: berth (left) differs from the reference (right)"
        );
        b
    }
}

/// One daemon, spoken to as a published client speaks.
struct Peer {
    name: &'static str,
    socket: PathBuf,
    next: u64,
}

impl Peer {
    fn client(&self) -> Client {
        Client::connect(&self.socket).unwrap()
    }

    /// Sends one request with the published client's name; returns the
    /// response whatever its code.
    fn call(&mut self, ty: RequestType, fill: impl FnOnce(&mut DaemonRequest)) -> DaemonResponse {
        let mut req = DaemonRequest {
            id: self.next,
            r#type: ty as i32,
            protocol_version: PROTOCOL_VERSION,
            client_name: PUBLISHED_CLIENT.into(),
            ..Default::default()
        };
        self.next += 1;
        fill(&mut req);
        self.client().call_raw(&req).unwrap()
    }

    fn ok(&mut self, ty: RequestType, fill: impl FnOnce(&mut DaemonRequest)) -> DaemonResponse {
        let r = self.call(ty, fill);
        assert_eq!(
            r.code,
            StatusCode::Ok as i32,
            "{}: {} answered {}: {}",
            self.name,
            ty.as_str_name(),
            r.code,
            r.message
        );
        r
    }

    fn list_active(&mut self) -> Vec<TrackedProcess> {
        self.ok(RequestType::ListActive, |q| {
            q.list_active = Some(Default::default())
        })
        .list_active
        .unwrap()
        .processes
    }

    fn kill_tree(&mut self, pid: u32) -> DaemonResponse {
        self.call(RequestType::KillTree, |q| {
            q.kill_tree = Some(KillTreeRequest {
                pid,
                timeout_seconds: 1.0,
            })
        })
    }

    fn spawn_detached(
        &mut self,
        command: &str,
        fill: impl FnOnce(&mut SpawnDaemonRequest),
    ) -> SpawnDaemonResponse {
        let mut p = SpawnDaemonRequest {
            command: command.into(),
            ..Default::default()
        };
        fill(&mut p);
        self.ok(RequestType::SpawnDaemon, |q| q.spawn_daemon = Some(p))
            .spawn_daemon
            .unwrap()
    }

    fn spawn_pty(&mut self, p: SpawnPtySessionRequest) -> SpawnPtySessionResponse {
        self.ok(RequestType::SpawnPtySession, |q| {
            q.spawn_pty_session = Some(p)
        })
        .spawn_pty_session
        .unwrap()
    }

    fn spawn_pipe(&mut self, p: SpawnPipeSessionRequest) -> SpawnPipeSessionResponse {
        self.ok(RequestType::SpawnPipeSession, |q| {
            q.spawn_pipe_session = Some(p)
        })
        .spawn_pipe_session
        .unwrap()
    }

    fn backlog(&mut self, session_id: &str) -> Vec<u8> {
        self.ok(RequestType::GetSessionBacklog, |q| {
            q.get_session_backlog = Some(GetSessionBacklogRequest {
                session_id: session_id.into(),
                ..Default::default()
            })
        })
        .get_session_backlog
        .unwrap()
        .backlog
    }

    fn terminate_pty(&mut self, session_id: &str) {
        self.call(RequestType::TerminatePtySession, |q| {
            q.terminate_pty_session = Some(TerminatePtySessionRequest {
                session_id: session_id.into(),
                grace_ms: 200,
            })
        });
    }

    fn terminate_pipe(&mut self, session_id: &str) {
        self.call(RequestType::TerminatePipeSession, |q| {
            q.terminate_pipe_session = Some(TerminatePipeSessionRequest {
                session_id: session_id.into(),
                grace_ms: 200,
            })
        });
    }

    fn pty_info(&mut self, session_id: &str) -> PtySessionInfo {
        self.ok(RequestType::ListPtySessions, |q| {
            q.list_pty_sessions = Some(Default::default())
        })
        .list_pty_sessions
        .unwrap()
        .sessions
        .into_iter()
        .find(|s| s.session_id == session_id)
        .unwrap()
    }

    /// Attaches to a PTY session as a published client does, reads until
    /// `until` has been seen (or 5 s), and returns (the ATTACH backlog,
    /// everything read including it). Dropping the stream detaches.
    fn attach_read(&mut self, session_id: &str, until: &str) -> (String, String) {
        let req = DaemonRequest {
            id: self.next,
            r#type: RequestType::AttachPtySession as i32,
            protocol_version: PROTOCOL_VERSION,
            client_name: PUBLISHED_CLIENT.into(),
            attach_pty_session: Some(AttachPtySessionRequest {
                session_id: session_id.into(),
                rows: 24,
                cols: 80,
                is_tty: true,
                ..Default::default()
            }),
            ..Default::default()
        };
        self.next += 1;
        // The typed attach sends berth-cli as the name; this is what a
        // published client sends, framed by hand on a raw socket.
        let mut sock = UnixStream::connect(&self.socket).unwrap();
        sock.write_all(&frame::encode(&req).unwrap()).unwrap();
        let resp = DaemonResponse::decode(&read_frame(&mut sock).unwrap()[..]).unwrap();
        assert_eq!(
            resp.code,
            StatusCode::Ok as i32,
            "{}: {}",
            self.name,
            resp.message
        );
        let backlog =
            String::from_utf8_lossy(&resp.attach_pty_session.unwrap().backlog).into_owned();
        let mut seen = backlog.clone();
        sock.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !seen.contains(until) && std::time::Instant::now() < deadline {
            if let Some(body) = read_frame(&mut sock) {
                if let Ok(PtyStreamFrame {
                    frame: Some(pty_stream_frame::Frame::Output(b)),
                }) = PtyStreamFrame::decode(&body[..])
                {
                    seen.push_str(&String::from_utf8_lossy(&b));
                }
            }
        }
        (backlog, seen)
    }
}

/// The fields of a tracked process a published client reads, minus `state`,
/// `uptime_seconds` and timestamps (berth reports a dead registration as
/// DEAD at once; the reference reports ALIVE until its reaper runs).
fn observable(p: &TrackedProcess) -> (u32, String, String, String, String, String, u64) {
    (
        p.pid,
        p.kind.clone(),
        p.command.clone(),
        p.cwd.clone(),
        p.originator.clone(),
        p.containment.clone(),
        (p.created_at * 1000.0).round() as u64,
    )
}

fn register(pid: u32, created_at: f64, command: &str, originator: &str) -> RegisterRequest {
    RegisterRequest {
        pid,
        created_at,
        kind: "subprocess".into(),
        command: command.into(),
        cwd: "/tmp".into(),
        originator: originator.into(),
        containment: "contained".into(),
    }
}

/// Classes 1 and 2: what the reference records and how it is seen.
#[test]
fn register_accepts_dead_and_mismatching_pids_as_the_reference_does() {
    let Some(pair) = Pair::start() else { return };
    let seen = pair.compare("REGISTER of pids that are not running", |p| {
        let codes: Vec<i32> = [
            (4_000_050, 1000.0, "TEST:1"),
            (4_000_051, 2000.0, "OTHER:2"),
        ]
        .into_iter()
        .map(|(pid, at, orig)| {
            p.call(RequestType::Register, |q| {
                q.register = Some(register(pid, at, "fake-dead-cmd", orig))
            })
            .code
        })
        .collect();
        let active: Vec<_> = p.list_active().iter().map(observable).collect();
        let by_tool: Vec<u32> = p
            .ok(RequestType::ListByOriginator, |q| {
                q.list_by_originator = Some(ListByOriginatorRequest {
                    tool: "TEST".into(),
                    ..Default::default()
                })
            })
            .list_by_originator
            .unwrap()
            .processes
            .iter()
            .map(|t| t.pid)
            .collect();
        let count = p
            .ok(RequestType::Status, |q| q.status = Some(StatusRequest {}))
            .status
            .unwrap()
            .tracked_process_count;
        let zombies = |p: &mut Peer, dry_run| -> Vec<(u32, String, bool)> {
            let mut z: Vec<_> = p
                .ok(RequestType::KillZombies, |q| {
                    q.kill_zombies = Some(KillZombiesRequest { dry_run })
                })
                .kill_zombies
                .unwrap()
                .zombies
                .into_iter()
                .map(|z| (z.pid, z.command, z.killed))
                .collect();
            z.sort();
            z
        };
        let dry = zombies(p, true);
        let still = p.list_active().len();
        let wet = zombies(p, false);
        let after = p.list_active().len();
        // KILL_TREE of a pid no process holds: OK, nothing killed.
        let kt = p.kill_tree(4_000_052);
        (
            codes,
            active,
            by_tool,
            count,
            dry,
            still,
            wet,
            after,
            kt.code,
            kt.kill_tree.map(|k| k.processes_killed),
        )
    });
    assert_eq!(seen.0, vec![StatusCode::Ok as i32; 2]);
    assert_eq!(seen.1.len(), 2);
    assert_eq!(seen.8, StatusCode::Ok as i32);
    assert_eq!(seen.9, Some(0));

    // berth only: a live pid registered with a created_at that is not its
    // start time is recorded, reported dead, and never signalled.
    let s = Sleeper::new(60);
    let mut p = Peer {
        name: "berth",
        socket: pair.berth.socket.clone(),
        next: 100,
    };
    p.ok(RequestType::Register, |q| {
        q.register = Some(register(s.pid(), 1000.0, "not-this-sleep", "SAFE:1"))
    });
    let row = p
        .list_active()
        .into_iter()
        .find(|t| t.pid == s.pid())
        .expect("the registration is listed");
    assert_eq!(row.state, ProcessState::Dead as i32);
    assert!(!row.identity_verified, "berth extension 101");
    let z = p
        .ok(RequestType::KillZombies, |q| {
            q.kill_zombies = Some(KillZombiesRequest { dry_run: false })
        })
        .kill_zombies
        .unwrap()
        .zombies;
    let z = z.iter().find(|z| z.pid == s.pid()).expect("reported");
    assert!(!z.killed, "{z:?}");
    assert!(
        is_alive(s.pid()),
        "a mismatching identity is never signalled"
    );
}

/// Classes 3 and 4: SPAWN_DAEMON's reported values, and an exited process
/// leaving LIST_ACTIVE.
#[test]
fn spawned_processes_report_reference_values_and_leave_the_active_list_when_they_exit() {
    let Some(pair) = Pair::start() else { return };
    let seen = pair.compare("SPAWN_DAEMON values and LIST_ACTIVE", |p| {
        let long = p.spawn_detached("sleep 30", |r| r.originator = "PARITY:1".into());
        let row = p
            .list_active()
            .into_iter()
            .find(|t| t.pid == long.pid)
            .expect("listed");
        let short = p.spawn_detached("sleep 0.2", |_| {});
        let left = wait_for(Duration::from_secs(5), || {
            p.list_active().iter().all(|t| t.pid != short.pid)
        });
        let kt = p.kill_tree(long.pid);
        // The count is not compared: the reference counts the signals it
        // sent, berth the processes of the tree that ended.
        (
            long.containment,
            long.command,
            long.originator,
            row.kind,
            row.containment,
            row.originator,
            left,
            kt.code,
            kt.kill_tree.is_some_and(|k| k.processes_killed >= 1),
        )
    });
    assert_eq!(seen.0, "detached");
    assert_eq!(seen.3, "subprocess");
    assert!(seen.6, "an exited process leaves LIST_ACTIVE");
    assert!(seen.8);

    // berth only: the detail is in the extension field, and an exited
    // process stays visible with include_dead.
    let mut p = Peer {
        name: "berth",
        socket: pair.berth.socket.clone(),
        next: 100,
    };
    let r = p.spawn_detached("sleep 0.1", |_| {});
    assert_eq!(r.containment_detail, "session");
    assert!(wait_for(Duration::from_secs(5), || {
        p.list_active().iter().all(|t| t.pid != r.pid)
    }));
    let all = p
        .ok(RequestType::ListActive, |q| {
            q.list_active = Some(ListActiveRequest { include_dead: true })
        })
        .list_active
        .unwrap()
        .processes;
    assert!(
        all.iter()
            .any(|t| t.pid == r.pid && t.state == ProcessState::Dead as i32),
        "include_dead (berth extension 100) keeps the exited: {all:?}"
    );
}

/// Class 5: ATTACH returns the output accumulated since the previous
/// ATTACH, so re-attaching after a detach does not replay what the first
/// ATTACH returned; GET_SESSION_BACKLOG does not consume, and shows what
/// the next ATTACH would return.
#[test]
fn reattaching_a_pty_session_does_not_replay_the_first_backlog() {
    let Some(pair) = Pair::start() else { return };
    pair.compare("detach and re-attach", |p| {
        let s = p.spawn_pty(SpawnPtySessionRequest {
            argv: vec![
                "/bin/sh".into(),
                "-c".into(),
                "echo first-part; sleep 1.5; echo second-part; sleep 30".into(),
            ],
            ..Default::default()
        });
        let mut snapshot = String::new();
        assert!(wait_for(Duration::from_secs(5), || {
            snapshot = String::from_utf8_lossy(&p.backlog(&s.session_id)).into_owned();
            snapshot.contains("first-part")
        }));
        let again = String::from_utf8_lossy(&p.backlog(&s.session_id)).contains("first-part");
        let (backlog1, _) = p.attach_read(&s.session_id, "first-part");
        // Detached (the stream is closed); the second line arrives now.
        std::thread::sleep(Duration::from_millis(2500));
        let (backlog2, seen2) = p.attach_read(&s.session_id, "second-part");
        // The snapshot is what the next ATTACH would return: nothing yet.
        let after = String::from_utf8_lossy(&p.backlog(&s.session_id)).into_owned();
        p.terminate_pty(&s.session_id);
        (
            again,
            backlog1.contains("first-part"),
            backlog2.contains("first-part"),
            backlog2.contains("second-part"),
            seen2.matches("first-part").count(),
            after.contains("first-part") || after.contains("second-part"),
        )
    });
}

/// Class 5, berth only (the rule): output an attachment received
/// live is not replayed by the next ATTACH either. (The reference replays
/// it: its ring is drained only by ATTACH itself.) A read-only viewer
/// (berth extension) still gets the whole held backlog.
#[test]
fn output_received_live_is_not_replayed_on_reattach() {
    let d = Daemon::start();
    let mut p = Peer {
        name: "berth",
        socket: d.socket.clone(),
        next: 1,
    };
    let s = p.spawn_pty(SpawnPtySessionRequest {
        argv: vec![
            "/bin/sh".into(),
            "-c".into(),
            "sleep 0.5; echo live-part; sleep 1.5; echo later-part; sleep 30".into(),
        ],
        ..Default::default()
    });
    let (backlog1, seen1) = p.attach_read(&s.session_id, "live-part");
    assert!(
        !backlog1.contains("live-part") && seen1.contains("live-part"),
        "received live"
    );
    let (backlog2, seen2) = p.attach_read(&s.session_id, "later-part");
    assert!(
        !backlog2.contains("live-part"),
        "not replayed: {backlog2:?}"
    );
    assert_eq!(seen2.matches("live-part").count(), 0);
    assert!(seen2.contains("later-part"));
    let mut c = d.client();
    let (ro, _stream) = Client::connect(&d.socket)
        .unwrap()
        .attach_pty(AttachPtySessionRequest {
            session_id: s.session_id.clone(),
            read_only: true,
            ..Default::default()
        })
        .unwrap();
    let ro = String::from_utf8_lossy(&ro.backlog).into_owned();
    assert!(
        ro.contains("live-part") && ro.contains("later-part"),
        "{ro:?}"
    );
    let snap = String::from_utf8_lossy(
        &c.backlog(&s.session_id, PipeStreamKind::Stdout)
            .unwrap()
            .backlog,
    )
    .into_owned();
    assert!(
        snap.contains("live-part"),
        "GET_SESSION_BACKLOG consumes nothing"
    );
    c.terminate_pty(&s.session_id, 200).unwrap();
}

/// Class 6: RUNNING_PROCESS_ORIGINATOR / RUNNING_PROCESS_IS_DAEMON / HOME
/// in every spawn mode and env mode.
#[test]
fn children_see_the_reference_environment_metadata_in_every_mode() {
    let Some(pair) = Pair::start() else { return };
    const PROBE: &str =
        "echo \"O=${RUNNING_PROCESS_ORIGINATOR-unset} D=${RUNNING_PROCESS_IS_DAEMON-unset} \
H=${HOME-unset} X=${RP_PARITY_DAEMON_ONLY-unset} C=${C-unset} END\"";
    // (legacy clear_inherited_env, environment_policy)
    let modes = [
        (false, EnvironmentPolicy::Unspecified),
        (true, EnvironmentPolicy::Unspecified),
        (true, EnvironmentPolicy::UserBaseline),
        (false, EnvironmentPolicy::Inherit),
        (true, EnvironmentPolicy::Clear),
    ];
    let client_env = vec![KeyValue {
        key: "C".into(),
        value: "client".into(),
    }];
    let out_dir = tempfile::tempdir().unwrap();
    let seen = pair.compare("child environments", |p| {
        let mut lines = Vec::new();
        for (i, (clear, policy)) in modes.iter().enumerate() {
            // Detached.
            let file = out_dir.path().join(format!("{}-{i}", p.name));
            let r = p.spawn_detached(&format!("{PROBE} > {}", file.display()), |r| {
                r.env = client_env.clone();
                r.clear_inherited_env = *clear;
                r.environment_policy = *policy as i32;
                r.originator = "env-parity".into();
            });
            assert!(wait_for(Duration::from_secs(5), || {
                std::fs::read_to_string(&file).is_ok_and(|s| s.contains("END"))
            }));
            lines.push(format!(
                "detached {clear} {policy:?}: {}",
                std::fs::read_to_string(&file).unwrap().trim()
            ));
            p.kill_tree(r.pid);
            // Pipe and PTY, with and without an originator.
            for originator in ["", "sess-parity"] {
                let argv = vec!["/bin/sh".into(), "-c".into(), format!("{PROBE}; sleep 5")];
                let pipe = p.spawn_pipe(SpawnPipeSessionRequest {
                    argv: argv.clone(),
                    env: client_env.clone(),
                    clear_inherited_env: *clear,
                    environment_policy: *policy as i32,
                    originator: originator.into(),
                    ..Default::default()
                });
                let pty = p.spawn_pty(SpawnPtySessionRequest {
                    argv,
                    env: client_env.clone(),
                    clear_inherited_env: *clear,
                    environment_policy: *policy as i32,
                    originator: originator.into(),
                    ..Default::default()
                });
                for (kind, id) in [("pipe", &pipe.session_id), ("pty", &pty.session_id)] {
                    let mut text = String::new();
                    assert!(
                        wait_for(Duration::from_secs(5), || {
                            text = String::from_utf8_lossy(&p.backlog(id)).into_owned();
                            text.contains("END")
                        }),
                        "{}: {kind} probe: {text:?}",
                        p.name
                    );
                    let line = text
                        .lines()
                        .find(|l| l.contains("END"))
                        .unwrap()
                        .trim()
                        .to_string();
                    lines.push(format!("{kind} {clear} {policy:?} {originator:?}: {line}"));
                }
                p.terminate_pipe(&pipe.session_id);
                p.terminate_pty(&pty.session_id);
            }
        }
        lines
    });
    let home = nix_home();
    assert!(
        seen.iter()
            .any(|l| l.starts_with("detached") && l.contains("O=env-parity D=1")),
        "{seen:#?}"
    );
    assert!(
        seen.iter()
            .any(|l| l.starts_with("pty true UserBaseline") && l.contains(&format!("H={home}"))),
        "{seen:#?}"
    );
}

fn nix_home() -> String {
    let out = Command::new("sh")
        .args(["-c", "getent passwd $(id -u) | cut -d: -f6"])
        .output()
        .unwrap();
    stdout(&out).trim().to_string()
}

/// Class 7: a relative cwd is accepted wherever a path arrives.
#[test]
fn relative_cwd_is_accepted_as_by_the_reference() {
    let Some(pair) = Pair::start() else { return };
    pair.compare("cwd \".\"", |p| {
        let svc = p.call(RequestType::ServiceStart, |q| {
            q.service_start = Some(ServiceStartRequest {
                config: Some(ServiceConfig {
                    name: "rel-cwd".into(),
                    cmd: vec!["sleep".into(), "30".into()],
                    cwd: ".".into(),
                    ..Default::default()
                }),
            })
        });
        let spawn = p.call(RequestType::SpawnDaemon, |q| {
            q.spawn_daemon = Some(SpawnDaemonRequest {
                command: "sleep 5".into(),
                cwd: ".".into(),
                ..Default::default()
            })
        });
        let pipe = p.call(RequestType::SpawnPipeSession, |q| {
            q.spawn_pipe_session = Some(SpawnPipeSessionRequest {
                argv: vec!["sleep".into(), "5".into()],
                cwd: ".".into(),
                ..Default::default()
            })
        });
        p.call(RequestType::ServiceDelete, |q| {
            q.service_delete = Some(ServiceDeleteRequest {
                target: "rel-cwd".into(),
            })
        });
        if let Some(s) = spawn.spawn_daemon.as_ref() {
            p.kill_tree(s.pid);
        }
        if let Some(s) = pipe.spawn_pipe_session.as_ref() {
            p.terminate_pipe(&s.session_id);
        }
        (svc.code, spawn.code, pipe.code)
    });

    // The published runpm CLI passes `--cwd .` through as typed.
    let Some(runpm) = published("runpm") else {
        assert!(
            !required(),
            "BERTH_REQUIRE_PEERS=1 but runpm is not installed"
        );
        return;
    };
    let d = &pair.berth;
    let work = d.dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let out = d
        .command(&runpm)
        .current_dir(&work)
        .args(["start", "--cwd", ".", "--name", "dot-cwd", "sleep", "30"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "runpm start --cwd .: {}{}",
        stdout(&out),
        stderr(&out)
    );
    let mut c = d.client();
    let svc = c
        .service_list()
        .unwrap()
        .into_iter()
        .find(|(s, _)| s.name == "dot-cwd")
        .expect("runpm started the service on berth");
    assert_eq!(svc.0.status, "online");
    c.service_delete("dot-cwd").unwrap();
}

/// Class 8: an ATTACH from a client that is not a terminal does not resize.
#[test]
fn a_non_terminal_attach_leaves_the_pty_size_alone() {
    let Some(pair) = Pair::start() else { return };
    pair.compare("ATTACH is_tty false with 999x999", |p| {
        let s = p.spawn_pty(SpawnPtySessionRequest {
            argv: vec!["sleep".into(), "30".into()],
            rows: 24,
            cols: 80,
            ..Default::default()
        });
        let mut c = p.client();
        let resp = c
            .call_raw(&DaemonRequest {
                id: 1,
                r#type: RequestType::AttachPtySession as i32,
                protocol_version: PROTOCOL_VERSION,
                client_name: PUBLISHED_CLIENT.into(),
                attach_pty_session: Some(AttachPtySessionRequest {
                    session_id: s.session_id.clone(),
                    rows: 999,
                    cols: 999,
                    is_tty: false,
                    ..Default::default()
                }),
                ..Default::default()
            })
            .unwrap();
        std::thread::sleep(Duration::from_millis(200));
        let info = p.pty_info(&s.session_id);
        drop(c);
        p.terminate_pty(&s.session_id);
        (resp.code, info.rows, info.cols)
    });
}

/// Class 9: GET_PROCESS_TREE's text, which the published tools print.
#[test]
fn process_tree_text_has_the_reference_format() {
    let Some(pair) = Pair::start() else { return };
    let mut root = Command::new("sh")
        .args(["-c", "sh -c 'sleep 41 & sleep 42 & wait' & wait"])
        .spawn()
        .unwrap();
    assert!(wait_for(Duration::from_secs(5), || {
        berth_os::ProcessTable::snapshot()
            .descendants_deepest_first(root.id())
            .len()
            == 3
    }));
    let text = pair.compare("GET_PROCESS_TREE text", |p| {
        let mut tree = |pid| {
            p.ok(RequestType::GetProcessTree, |q| {
                q.get_process_tree = Some(GetProcessTreeRequest { pid })
            })
            .get_process_tree
            .unwrap()
            .tree_display
        };
        let shown = tree(root.id());
        // The reference orders siblings as its process table hashes them;
        // compare the lines with both branch connectors alike, as a set.
        let mut lines: Vec<String> = shown
            .lines()
            .map(|l| l.replace("├── ", "*── ").replace("└── ", "*── "))
            .collect();
        lines.sort();
        (lines, shown.ends_with('\n'), tree(4_000_053))
    });
    assert_eq!(text.0.len(), 4, "{:?}", text.0);
    assert!(!text.1, "no trailing newline");
    assert_eq!(mask_pids(&text.2), "Process N not found");
    let mut berth = Peer {
        name: "berth",
        socket: pair.berth.socket.clone(),
        next: 100,
    };
    let shown = berth
        .ok(RequestType::GetProcessTree, |q| {
            q.get_process_tree = Some(GetProcessTreeRequest { pid: root.id() })
        })
        .get_process_tree
        .unwrap()
        .tree_display;
    assert_eq!(
        mask_pids(&shown),
        "sh (pid=N) sh -c sh -c 'sleep N & sleep N & wait' & wait\n└── sh (pid=N)\n    ├── sleep (pid=N)\n    └── sleep (pid=N)"
    );
    // berth's own client keeps berth's richer tree.
    let tree = pair.berth.client().process_tree(root.id()).unwrap();
    assert!(tree.contains("sleep 41"), "{tree}");
    for id in berth_os::ProcessTable::snapshot().descendants_deepest_first(root.id()) {
        kill(id.pid, Signal::SIGKILL);
    }
    root.kill().ok();
    root.wait().ok();
}

fn mask_pids(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find(|c: char| c.is_ascii_digit()) {
        out.push_str(&rest[..i]);
        let end = rest[i..]
            .find(|c: char| !c.is_ascii_digit())
            .map(|e| i + e)
            .unwrap_or(rest.len());
        out.push('N');
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// Class 10: KILL_TREE ends descendants re-parented after their parent
/// exited, since they stay in the root's session and process group.
#[test]
fn kill_tree_ends_a_grandchild_whose_parent_already_exited() {
    let d = Daemon::start();
    let mut c = d.client();
    let mark = d.dir.path().join("grandchild.pid");
    let r = c
        .spawn_daemon(SpawnDaemonRequest {
            command: format!(
                "sh -c 'sleep 63 & echo $! > {}'; exec sleep 64",
                mark.display()
            ),
            ..Default::default()
        })
        .unwrap();
    assert!(wait_for(Duration::from_secs(5), || {
        std::fs::read_to_string(&mark).is_ok_and(|s| s.ends_with('\n'))
    }));
    let grandchild: u32 = std::fs::read_to_string(&mark)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(is_alive(grandchild));
    // The pid file is written before the inner shell exits: wait until the
    // grandchild's parent is no longer in the root's session (re-parented).
    assert!(
        wait_for(Duration::from_secs(5), || {
            berth_os::proc::read_stat(grandchild).is_ok_and(|st| {
                berth_os::proc::read_stat(st.ppid).map_or(true, |p| p.session != r.pid as i32)
            })
        }),
        "the grandchild's parent exits"
    );
    let st = berth_os::proc::read_stat(grandchild).unwrap();
    assert_ne!(st.ppid, r.pid, "re-parented: its parent exited");
    assert_eq!(st.session, r.pid as i32, "still in the root's session");
    let n = c.kill_tree(r.pid, 1.0).unwrap();
    assert_eq!(n, 2, "the root and the re-parented grandchild");
    assert!(wait_for(Duration::from_secs(2), || !is_alive(grandchild)));
    // Idempotent: again is a success with nothing killed.
    assert_eq!(c.kill_tree(r.pid, 1.0).unwrap(), 0);
}
