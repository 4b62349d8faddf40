//! PTY and pipe sessions through the process API with real programs in
//! real PTYs: attach/steal/detach, interrupt, resize, termination outcomes,
//! slow clients, backlog offsets, byte-exact pipes, tees, screen restore.

mod common;

use berth_client::{AttachStream, Client, ClientError, StreamFrame};
use berth_wire::daemon::*;
use common::*;
use std::time::{Duration, Instant};

fn sh(cmd: &str) -> Vec<String> {
    vec!["/bin/sh".into(), "-c".into(), cmd.into()]
}

fn spawn_pty(d: &Daemon, argv: Vec<String>) -> String {
    d.client()
        .spawn_pty(SpawnPtySessionRequest {
            argv,
            rows: 24,
            cols: 80,
            ..Default::default()
        })
        .unwrap()
        .session_id
}

fn attach(
    d: &Daemon,
    id: &str,
    f: impl FnOnce(&mut AttachPtySessionRequest),
) -> Result<(AttachPtySessionResponse, AttachStream), ClientError> {
    let mut r = AttachPtySessionRequest {
        session_id: id.into(),
        ..Default::default()
    };
    f(&mut r);
    d.client().attach_pty(r)
}

/// Reads PTY frames until `pred` holds on the output seen (including
/// `initial`), the stream ends, or 10 s pass. Returns output and the last
/// non-output frame.
fn read_until(
    s: &mut AttachStream,
    initial: &[u8],
    pred: impl Fn(&str) -> bool,
) -> (String, Option<pty_stream_frame::Frame>) {
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut out = initial.to_vec();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && !pred(&String::from_utf8_lossy(&out)) {
        match s.next_frame() {
            Ok(Some(StreamFrame::Pty(PtyStreamFrame {
                frame: Some(pty_stream_frame::Frame::Output(b)),
            }))) => out.extend(b),
            Ok(Some(StreamFrame::Pty(PtyStreamFrame { frame: Some(f) }))) => {
                return (String::from_utf8_lossy(&out).into(), Some(f))
            }
            Ok(None) => break,
            Ok(_) => {}
            Err(ClientError::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("{e}"),
        }
    }
    (String::from_utf8_lossy(&out).into(), None)
}

fn info(d: &Daemon, id: &str) -> PtySessionInfo {
    d.client()
        .list_pty("")
        .unwrap()
        .into_iter()
        .find(|s| s.session_id == id)
        .unwrap()
}

fn wait_exited(d: &Daemon, id: &str) -> PtySessionInfo {
    assert!(
        wait_for(Duration::from_secs(10), || info(d, id).exited),
        "session {id} did not exit"
    );
    info(d, id)
}

#[test]
fn spawn_attach_stream_and_exit_frame() {
    let d = Daemon::start();
    let id = spawn_pty(&d, sh("read x; echo got:$x; exit 5"));
    assert_eq!(id.len(), 36);
    let (resp, mut s) = attach(&d, &id, |r| {
        r.is_tty = true;
        r.term = "xterm-kitty".into();
    })
    .unwrap();
    assert!(!resp.backlog_truncated);
    let listed = info(&d, &id);
    assert!(listed.attached && listed.attached_is_tty);
    assert_eq!(listed.attached_term, "xterm-kitty");
    assert_eq!((listed.rows, listed.cols), (24, 80));
    let mut input = s.input().unwrap();
    input
        .send(pty_input_frame::Frame::Input(b"abc\r".to_vec()))
        .unwrap();
    let (out, last) = read_until(&mut s, &resp.backlog, |_| false);
    assert!(out.contains("got:abc"), "{out}");
    assert_eq!(last, Some(pty_stream_frame::Frame::ExitCode(5)));
    let done = wait_exited(&d, &id);
    assert_eq!(done.exit_code, 5);
    assert_eq!(
        done.termination_outcome,
        TerminationOutcome::NaturalExit as i32
    );
    assert!(done.exited_at >= done.created_at);
}

#[test]
fn second_attach_is_refused_steal_evicts_and_detach_releases() {
    let d = Daemon::start();
    let id = spawn_pty(&d, sh("sleep 60"));
    let (_, mut first) = attach(&d, &id, |_| {}).unwrap();
    let err = attach(&d, &id, |_| {}).err().unwrap();
    assert_eq!(err.code(), Some(StatusCode::AlreadyAttached));
    let mut thief = d.client();
    let r = thief
        .call_raw(&DaemonRequest {
            id: 1,
            r#type: RequestType::AttachPtySession as i32,
            protocol_version: 1,
            client_name: "thief-7".into(),
            attach_pty_session: Some(AttachPtySessionRequest {
                session_id: id.clone(),
                steal: true,
                ..Default::default()
            }),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(r.code, StatusCode::Ok as i32);
    let (_, last) = read_until(&mut first, &[], |_| false);
    assert_eq!(
        last,
        Some(pty_stream_frame::Frame::StolenBy("thief-7".into()))
    );
    // DETACH from a third connection releases the thief.
    d.client().detach_pty(&id).unwrap();
    assert!(wait_for(Duration::from_secs(5), || !info(&d, &id).attached));
    let (_, _again) = attach(&d, &id, |_| {}).unwrap();
    // Read-only viewers never conflict.
    let (_, _viewer) = attach(&d, &id, |r| r.read_only = true).unwrap();
    d.client().terminate_pty(&id, 100).unwrap();
}

#[test]
fn interrupt_reaches_the_foreground_job_of_a_shell() {
    let d = Daemon::start();
    let id = spawn_pty(
        &d,
        vec![
            "bash".into(),
            "--norc".into(),
            "--noprofile".into(),
            "-i".into(),
        ],
    );
    let (resp, mut s) = attach(&d, &id, |_| {}).unwrap();
    let mut input = s.input().unwrap();
    input
        .send(pty_input_frame::Frame::Input(
            b"PS1='$ '; sleep 100\r".to_vec(),
        ))
        .unwrap();
    assert!(wait_for(Duration::from_secs(5), || {
        berth_os::ProcessTable::snapshot()
            .descendants_deepest_first(info(&d, &id).pid)
            .iter()
            .any(|p| berth_os::proc::command_line(p.pid) == "sleep 100")
    }));
    input.send(pty_input_frame::Frame::Interrupt(true)).unwrap();
    input
        .send(pty_input_frame::Frame::Input(b"echo status=$?\r".to_vec()))
        .unwrap();
    let (out, _) = read_until(&mut s, &resp.backlog, |o| o.contains("status=130"));
    assert!(
        out.contains("status=130"),
        "sleep died of SIGINT and the shell lived on: {out}"
    );
    assert!(!info(&d, &id).exited);
    d.client().terminate_pty(&id, 100).unwrap();
}

#[test]
fn resize_without_attaching_is_seen_by_stty() {
    let d = Daemon::start();
    let id = spawn_pty(&d, sh("read x; stty size; sleep 60"));
    d.client().resize_pty(&id, 37, 111).unwrap();
    let (resp, mut s) = attach(&d, &id, |_| {}).unwrap();
    s.input()
        .unwrap()
        .send(pty_input_frame::Frame::Input(b"\r".to_vec()))
        .unwrap();
    let (out, _) = read_until(&mut s, &resp.backlog, |o| o.contains("37 111"));
    assert!(out.contains("37 111"), "{out}");
    // Attaching with a size resizes too, from a terminal only (as the
    // reference: a client that is not a terminal leaves the size alone).
    drop(s);
    let (_, s) = attach(&d, &id, |r| {
        r.rows = 50;
        r.cols = 150;
    })
    .unwrap();
    assert_eq!((info(&d, &id).rows, info(&d, &id).cols), (37, 111));
    drop(s);
    let (_, _s) = attach(&d, &id, |r| {
        r.rows = 50;
        r.cols = 150;
        r.is_tty = true;
    })
    .unwrap();
    assert_eq!((info(&d, &id).rows, info(&d, &id).cols), (50, 150));
    d.client().terminate_pty(&id, 100).unwrap();
}

#[test]
fn each_termination_path_records_its_outcome() {
    let d = Daemon::start();
    let natural = spawn_pty(&d, sh("exit 0"));
    let soft = spawn_pty(&d, sh("sleep 60"));
    let hard = spawn_pty(&d, sh("trap '' TERM HUP; while :; do sleep 1; done"));
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    d.client().terminate_pty(&soft, 5000).unwrap();
    d.client().terminate_pty(&hard, 300).unwrap();
    assert!(
        t.elapsed() < Duration::from_millis(250),
        "TERMINATE returns at once"
    );
    let expect = |id: &str, outcome: TerminationOutcome| {
        let i = wait_exited(&d, id);
        assert_eq!(i.termination_outcome, outcome as i32, "{id}");
        i
    };
    expect(&natural, TerminationOutcome::NaturalExit);
    expect(&soft, TerminationOutcome::SoftExit);
    assert_eq!(expect(&hard, TerminationOutcome::HardKilled).exit_code, 137);
    let b = d
        .client()
        .backlog(&hard, PipeStreamKind::Unspecified)
        .unwrap();
    assert!(b.exited && b.session_kind == "pty");
    assert_eq!(b.termination_outcome, TerminationOutcome::HardKilled as i32);
}

#[test]
fn a_client_that_never_reads_stalls_neither_the_child_nor_another_client() {
    let d = Daemon::start();
    let mut c = d.client();
    let total: usize = 32 << 20;
    let id = c
        .spawn_pipe(SpawnPipeSessionRequest {
            argv: sh(&format!("read go; head -c {total} /dev/zero; echo END")),
            ..Default::default()
        })
        .unwrap()
        .session_id;
    // The stuck client: attached, never reads a byte.
    let (_, _stuck) = d
        .client()
        .attach_pipe(AttachPipeStreamRequest {
            session_id: id.clone(),
            stream: PipeStreamKind::Stdout as i32,
            ..Default::default()
        })
        .unwrap();
    let (_, mut live) = d
        .client()
        .attach_pipe(AttachPipeStreamRequest {
            session_id: id.clone(),
            stream: PipeStreamKind::Stdout as i32,
            read_only: true,
            ..Default::default()
        })
        .unwrap();
    c.write_stdin(&id, b"go\n", false).unwrap();
    let mut got = 0usize;
    let mut missed = 0u64;
    let mut exit = None;
    while let Some(f) = live.next_frame().unwrap() {
        match f {
            StreamFrame::Pipe(PipeStreamFrame {
                frame: Some(pipe_stream_frame::Frame::Bytes(b)),
            }) => got += b.len(),
            StreamFrame::Pipe(PipeStreamFrame {
                frame: Some(pipe_stream_frame::Frame::MissedBytes(n)),
            }) => missed += n,
            StreamFrame::Pipe(PipeStreamFrame {
                frame: Some(pipe_stream_frame::Frame::ExitCode(c)),
            }) => {
                exit = Some(c);
                break;
            }
            _ => {}
        }
    }
    assert_eq!(missed, 0, "the reading client missed nothing");
    assert_eq!(got, total + 4);
    assert_eq!(exit, Some(0), "the child ran to the end");
}

#[test]
fn backlog_offsets_are_exact_after_wrap_around() {
    let d = Daemon::start_with(&["--backlog-kib", "64"]);
    let mut c = d.client();
    let id = c
        .spawn_pipe(SpawnPipeSessionRequest {
            argv: sh("head -c 300000 /dev/zero | tr '\\0' a; printf TAIL"),
            ..Default::default()
        })
        .unwrap()
        .session_id;
    assert!(wait_for(Duration::from_secs(10), || c
        .backlog(&id, PipeStreamKind::Stdout)
        .unwrap()
        .exited));
    let b = c.backlog(&id, PipeStreamKind::Stdout).unwrap();
    assert_eq!(b.backlog.len(), 64 * 1024);
    assert_eq!(b.bytes_missed, 300_004 - 64 * 1024);
    assert!(b.backlog.ends_with(b"TAIL"));
    // GET_SESSION_BACKLOG consumes nothing; an attach sees the same.
    let (r, _) = d
        .client()
        .attach_pipe(AttachPipeStreamRequest {
            session_id: id.clone(),
            stream: PipeStreamKind::Stdout as i32,
            ..Default::default()
        })
        .unwrap();
    assert!(r.backlog_truncated);
    assert_eq!(r.bytes_missed, b.bytes_missed);
    assert_eq!(r.backlog, b.backlog);
}

#[test]
fn pipe_output_is_byte_exact_including_binary() {
    let d = Daemon::start();
    let mut c = d.client();
    let id = c
        .spawn_pipe(SpawnPipeSessionRequest {
            argv: vec!["cat".into()],
            ..Default::default()
        })
        .unwrap()
        .session_id;
    let (_, mut s) = d
        .client()
        .attach_pipe(AttachPipeStreamRequest {
            session_id: id.clone(),
            stream: PipeStreamKind::Stdout as i32,
            ..Default::default()
        })
        .unwrap();
    let data: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    for chunk in data.chunks(70_000) {
        assert_eq!(
            c.write_stdin(&id, chunk, false).unwrap(),
            chunk.len() as u64
        );
    }
    c.write_stdin(&id, b"", true).unwrap();
    let err = c.write_stdin(&id, b"late", false).unwrap_err();
    assert_eq!(err.code(), Some(StatusCode::InvalidArgument));
    let mut got = Vec::new();
    let mut saw_eof = false;
    while let Some(f) = s.next_frame().unwrap() {
        match f {
            StreamFrame::Pipe(PipeStreamFrame {
                frame: Some(pipe_stream_frame::Frame::Bytes(b)),
            }) => got.extend(b),
            StreamFrame::Pipe(PipeStreamFrame {
                frame: Some(pipe_stream_frame::Frame::Eof(true)),
            }) => saw_eof = true,
            StreamFrame::Pipe(PipeStreamFrame {
                frame: Some(pipe_stream_frame::Frame::ExitCode(0)),
            }) => break,
            other => panic!(
                "unexpected frame {:?}",
                matches!(other, StreamFrame::Pipe(_))
            ),
        }
    }
    assert!(saw_eof);
    assert_eq!(got, data);
    // Separate stderr.
    let id = c
        .spawn_pipe(SpawnPipeSessionRequest {
            argv: sh("printf out; printf err >&2"),
            ..Default::default()
        })
        .unwrap()
        .session_id;
    assert!(wait_for(Duration::from_secs(5), || c
        .backlog(&id, PipeStreamKind::Stdout)
        .unwrap()
        .exited));
    assert_eq!(
        c.backlog(&id, PipeStreamKind::Stdout).unwrap().backlog,
        b"out"
    );
    assert_eq!(
        c.backlog(&id, PipeStreamKind::Stderr).unwrap().backlog,
        b"err"
    );
    let p = c
        .list_pipe("")
        .unwrap()
        .into_iter()
        .find(|p| p.session_id == id)
        .unwrap();
    assert!(!p.merge_stderr_into_stdout && p.exited);
}

#[test]
fn tee_to_a_file_and_its_status() {
    let d = Daemon::start();
    let mut c = d.client();
    let id = c
        .spawn_pipe(SpawnPipeSessionRequest {
            argv: sh("read go; seq 1 5000; read stop"),
            ..Default::default()
        })
        .unwrap()
        .session_id;
    let file = d.dir.path().join("tee.log");
    std::fs::write(&file, b"previous\n").unwrap();
    let h = c
        .register_tee(RegisterSessionTeeRequest {
            session_id: id.clone(),
            session_kind: TeeSessionKind::Pipe as i32,
            stream: TeeStreamKind::Stdout as i32,
            sink_kind: TeeSinkKind::File as i32,
            file_path: file.as_os_str().as_encoded_bytes().to_vec(),
            file_mode: TeeFileMode::Append as i32,
            ..Default::default()
        })
        .unwrap();
    c.write_stdin(&id, b"go\n", false).unwrap();
    let expected: String = std::iter::once("previous".to_string())
        .chain((1..=5000).map(|i| i.to_string()))
        .collect::<Vec<_>>()
        .join("\n")
        + "\n";
    assert!(wait_for(
        Duration::from_secs(5),
        || std::fs::read_to_string(&file).unwrap() == expected
    ));
    let st = c.tee_status(&id, TeeSessionKind::Pipe, h).unwrap();
    assert_eq!(
        (st.stream, st.missed_bytes, st.disconnected),
        (TeeStreamKind::Stdout as i32, 0, false)
    );
    c.unregister_tee(&id, TeeSessionKind::Pipe, h).unwrap();
    assert_eq!(
        c.tee_status(&id, TeeSessionKind::Pipe, h)
            .unwrap_err()
            .code(),
        Some(StatusCode::NotFound)
    );
    // Bad tees are named errors.
    let bad = c.register_tee(RegisterSessionTeeRequest {
        session_id: id.clone(),
        stream: TeeStreamKind::PtyOutput as i32,
        sink_kind: TeeSinkKind::File as i32,
        file_path: b"/tmp/x".to_vec(),
        ..Default::default()
    });
    assert_eq!(bad.unwrap_err().code(), Some(StatusCode::InvalidArgument));
    let rel = c.register_tee(RegisterSessionTeeRequest {
        session_id: id.clone(),
        stream: TeeStreamKind::Stdout as i32,
        sink_kind: TeeSinkKind::File as i32,
        file_path: b"relative.log".to_vec(),
        ..Default::default()
    });
    // A relative path is resolved against the daemon's working directory
    // (the sandbox here), as the reference daemon does (issue 20).
    let h = rel.unwrap();
    c.unregister_tee(&id, TeeSessionKind::Pipe, h).unwrap();
    assert!(d.dir.path().join("relative.log").exists());
    c.terminate_pipe(&id, 100).unwrap();
}

#[test]
fn a_full_screen_program_is_restored_on_reattach() {
    if std::process::Command::new("tmux")
        .arg("-V")
        .output()
        .is_err()
    {
        eprintln!("skipped: tmux is not installed");
        return;
    }
    let d = Daemon::start();
    let nums = d.dir.path().join("nums.txt");
    std::fs::write(
        &nums,
        (1..=300).map(|i| format!("line {i}\n")).collect::<String>(),
    )
    .unwrap();
    let id = d
        .client()
        .spawn_pty(SpawnPtySessionRequest {
            argv: vec!["less".into(), nums.display().to_string()],
            rows: 20,
            cols: 60,
            name: "pager".into(),
            ..Default::default()
        })
        .unwrap()
        .session_id;
    // Each terminal gets its own tmux server, so the second cannot race
    // the shutdown of the first.
    let server = std::cell::Cell::new(1);
    let tmux = |args: &[&str]| {
        let sock = format!("{}/tmux{}.sock", d.dir.path().display(), server.get());
        let o = std::process::Command::new("tmux")
            .arg("-S")
            .arg(&sock)
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let attach_cmd = format!(
        "env XDG_RUNTIME_DIR={} XDG_STATE_HOME={} {} attach pager",
        d.runtime_dir().display(),
        d.state_dir().display(),
        BERTH
    );
    tmux(&[
        "new-session",
        "-d",
        "-s",
        "t",
        "-x",
        "60",
        "-y",
        "20",
        &attach_cmd,
    ]);
    assert!(wait_for(Duration::from_secs(10), || tmux(&[
        "capture-pane",
        "-p",
        "-t",
        "t"
    ])
    .contains("line 19")));
    tmux(&["send-keys", "-t", "t", "Space"]);
    assert!(wait_for(Duration::from_secs(10), || tmux(&[
        "capture-pane",
        "-p",
        "-t",
        "t"
    ])
    .contains("line 38")));
    std::thread::sleep(Duration::from_millis(300));
    let before = tmux(&["capture-pane", "-p", "-t", "t"]);
    tmux(&["send-keys", "-t", "t", "C-\\"]);
    assert!(
        wait_for(Duration::from_secs(5), || !info(&d, &id).attached),
        "detached"
    );
    // Re-attach in a fresh terminal: the screen comes back, not the history.
    tmux(&["kill-server"]);
    server.set(2);
    tmux(&[
        "new-session",
        "-d",
        "-s",
        "u",
        "-x",
        "60",
        "-y",
        "20",
        &attach_cmd,
    ]);
    assert!(
        wait_for(Duration::from_secs(10), || tmux(&[
            "capture-pane",
            "-p",
            "-t",
            "u"
        ]) == before),
        "restored screen:\n{}\nexpected:\n{before}",
        tmux(&["capture-pane", "-p", "-t", "u"])
    );
    // The attached terminal's size follows its window (SIGWINCH).
    tmux(&["resize-window", "-t", "u", "-x", "70", "-y", "22"]);
    assert!(
        wait_for(Duration::from_secs(10), || {
            let i = info(&d, &id);
            (i.rows, i.cols) == (22, 70)
        }),
        "size after resize: {}x{}",
        info(&d, &id).rows,
        info(&d, &id).cols
    );
    tmux(&["kill-server"]);
    d.client().terminate_pty(&id, 100).unwrap();
}

#[test]
fn sessions_are_listed_honestly_after_a_daemon_restart() {
    let mut d = Daemon::start();
    let done = spawn_pty(&d, sh("exit 3"));
    wait_exited(&d, &done);
    let live = spawn_pty(&d, sh("sleep 60"));
    d.kill9();
    d.spawn(&[]);
    let old = info(&d, &done);
    assert!(old.exited && old.exit_code == 3);
    assert_eq!(
        old.termination_outcome,
        TerminationOutcome::NaturalExit as i32
    );
    let lost = info(&d, &live);
    assert!(lost.exited, "lost with the daemon, not forgotten");
    assert_eq!(
        lost.termination_outcome,
        TerminationOutcome::Unspecified as i32
    );
    let r = d.client().purge_sessions("").unwrap();
    assert_eq!((r.pty_purged, r.pipe_purged), (2, 0));
    assert!(d.client().list_pty("").unwrap().is_empty());
}

#[test]
fn bulk_terminate_filters_by_age_and_originator() {
    let d = Daemon::start();
    let mut c = d.client();
    let mk = |c: &mut Client, o: &str| {
        c.spawn_pipe(SpawnPipeSessionRequest {
            argv: sh("sleep 60"),
            originator: o.into(),
            ..Default::default()
        })
        .unwrap()
        .session_id
    };
    let a = mk(&mut c, "alpha");
    let b = mk(&mut c, "beta");
    let r = c.bulk_terminate(3600, "", 100).unwrap();
    assert_eq!(
        (r.pty_terminated, r.pipe_terminated),
        (0, 0),
        "none is an hour old"
    );
    let r = c.bulk_terminate(0, "alpha", 100).unwrap();
    assert_eq!((r.pty_terminated, r.pipe_terminated), (0, 1));
    assert!(wait_for(Duration::from_secs(5), || c
        .list_pipe("alpha")
        .unwrap()[0]
        .exited));
    assert!(!c.list_pipe("beta").unwrap()[0].exited);
    let _ = (a, b);
    c.bulk_terminate(0, "", 100).unwrap();
}

#[test]
fn bad_session_requests_are_named_errors() {
    let d = Daemon::start();
    let mut c = d.client();
    let e = c.spawn_pty(SpawnPtySessionRequest::default()).unwrap_err();
    assert!(e.to_string().contains("spawn_pty_session.argv"), "{e}");
    let e = c
        .spawn_pty(SpawnPtySessionRequest {
            argv: vec!["/no/such/program".into()],
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(e.code(), Some(StatusCode::InvalidArgument), "{e}");
    let e = c
        .spawn_pipe(SpawnPipeSessionRequest {
            argv: vec!["true".into()],
            cwd: "/no/such/dir".into(),
            ..Default::default()
        })
        .unwrap_err();
    assert!(e.to_string().contains("cwd"), "{e}");
    assert_eq!(
        c.terminate_pty("nope", 0).unwrap_err().code(),
        Some(StatusCode::NotFound)
    );
    let pipe = c
        .spawn_pipe(SpawnPipeSessionRequest {
            argv: sh("sleep 30"),
            ..Default::default()
        })
        .unwrap()
        .session_id;
    let e = d
        .client()
        .attach_pty(AttachPtySessionRequest {
            session_id: pipe.clone(),
            ..Default::default()
        })
        .err()
        .unwrap();
    // The session exists; asking it for a kind it is not is a bad request,
    // as the reference daemon answers (issue 19).
    assert_eq!(e.code(), Some(StatusCode::InvalidArgument));
    assert!(e.to_string().contains("pipe session"), "{e}");
    let e = d
        .client()
        .attach_pipe(AttachPipeStreamRequest {
            session_id: pipe.clone(),
            stream: 0,
            ..Default::default()
        })
        .err()
        .unwrap();
    assert!(e.to_string().contains("attach_pipe_stream.stream"), "{e}");
    c.terminate_pipe(&pipe, 100).unwrap();
    c.ping().unwrap();
}

#[test]
fn a_clean_daemon_stop_ends_sessions_and_records_how() {
    let mut d = Daemon::start();
    let id = spawn_pty(&d, sh("sleep 60"));
    let pid = info(&d, &id).pid;
    d.client().shutdown(true, 1.0).unwrap();
    assert!(d.wait_exit(Duration::from_secs(10)));
    assert!(
        !is_alive(pid),
        "the session's process ended with the daemon"
    );
    d.spawn(&[]);
    let after = info(&d, &id);
    assert!(after.exited);
    assert_eq!(
        after.termination_outcome,
        TerminationOutcome::SoftExit as i32,
        "ended by the daemon's stop, not lost"
    );
}

#[test]
fn a_stream_or_kind_the_session_lacks_is_invalid_argument_not_not_found() {
    // As the published reference daemon answers: the session exists, the
    // request names something it does not have.
    let d = Daemon::start();
    let mut c = d.client();
    let id = c
        .spawn_pipe(SpawnPipeSessionRequest {
            argv: sh("sleep 30"),
            merge_stderr_into_stdout: true,
            ..Default::default()
        })
        .unwrap()
        .session_id;
    let as_pty = attach(&d, &id, |_| {}).map(|_| ()).unwrap_err();
    assert_eq!(as_pty.code(), Some(StatusCode::InvalidArgument), "{as_pty}");
    assert!(as_pty.to_string().contains("is a pipe session"), "{as_pty}");
    let stderr = d
        .client()
        .attach_pipe(AttachPipeStreamRequest {
            session_id: id.clone(),
            stream: PipeStreamKind::Stderr as i32,
            ..Default::default()
        })
        .map(|_| ())
        .unwrap_err();
    assert_eq!(stderr.code(), Some(StatusCode::InvalidArgument), "{stderr}");
    assert!(
        stderr.to_string().contains("no separate stderr"),
        "{stderr}"
    );
    // A session that does not exist is still NOT_FOUND.
    let missing = attach(&d, "nosuch", |_| {}).map(|_| ()).unwrap_err();
    assert_eq!(missing.code(), Some(StatusCode::NotFound), "{missing}");
}
