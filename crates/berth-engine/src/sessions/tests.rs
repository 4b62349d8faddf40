use super::*;
use std::time::Instant;

fn engine(dir: &std::path::Path, backlog: usize) -> Arc<Sessions> {
    let store = Arc::new(Store::open(&dir.join("berth.db"), 0).unwrap());
    Arc::new(
        Sessions::open(
            store,
            SessionConfig {
                backlog_bytes: backlog,
                ..Default::default()
            },
        )
        .unwrap(),
    )
}

fn sh(cmd: &str) -> Vec<String> {
    vec!["/bin/sh".into(), "-c".into(), cmd.into()]
}

fn pty(e: &Arc<Sessions>, cmd: &str) -> Arc<Session> {
    e.spawn_pty(&PtySpawn {
        argv: sh(cmd),
        ..Default::default()
    })
    .unwrap()
}

fn opts(label: &str) -> AttachOptions {
    AttachOptions {
        stream: StreamId::Output,
        steal: false,
        read_only: false,
        replay: Replay::Raw,
        client: ClientInfo::default(),
        label: label.into(),
    }
}

/// Reads from `a` until `pred` holds for everything received, or 10 s pass.
async fn collect_until(a: &mut Attachment, mut pred: impl FnMut(&[u8]) -> bool) -> Vec<u8> {
    let mut got = a.initial.clone();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !pred(&got) && Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_millis(200), a.next(1 << 20)).await {
            Ok(Next::Data { bytes, .. }) => got.extend_from_slice(&bytes),
            Ok(Next::Eof) | Ok(Next::Evicted(_)) => break,
            Err(_) => {}
        }
    }
    got
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn pty_output_exit_code_and_natural_outcome() {
    let t = tempfile::tempdir().unwrap();
    let e = engine(t.path(), 1 << 20);
    let s = pty(&e, "echo hello-pty; exit 7");
    let exit = tokio::time::timeout(Duration::from_secs(10), s.wait_exit())
        .await
        .unwrap();
    assert_eq!(exit.code, 7);
    assert_eq!(exit.outcome, Outcome::NaturalExit);
    let (_, bytes, missed) = e.backlog(s.id(), StreamId::Output).unwrap();
    assert!(contains(&bytes, "hello-pty"));
    assert_eq!(missed, 0);
    assert_eq!(s.id().len(), 36);
    assert_eq!(&s.id()[14..15], "4", "UUID v4");
}

#[tokio::test]
async fn attach_steal_and_read_only_semantics() {
    let t = tempfile::tempdir().unwrap();
    let e = engine(t.path(), 1 << 20);
    let s = pty(&e, "sleep 30");
    let mut first = e.attach(s.id(), opts("first")).unwrap();
    assert!(matches!(
        e.attach(s.id(), opts("second")),
        Err(SessionError::AlreadyAttached(_))
    ));
    let watcher = e
        .attach(
            s.id(),
            AttachOptions {
                read_only: true,
                ..opts("watcher")
            },
        )
        .unwrap();
    assert!(!watcher.may_write());
    let _second = e
        .attach(
            s.id(),
            AttachOptions {
                steal: true,
                ..opts("second")
            },
        )
        .unwrap();
    assert_eq!(first.next(10).await, Next::Evicted("second".into()));
    assert!(e.list(Some(Kind::Pty), "")[0].attached.is_some());
    drop(_second);
    assert!(
        e.list(Some(Kind::Pty), "")[0].attached.is_none(),
        "dropping releases the slot"
    );
    e.terminate(s.id(), Some(Duration::from_millis(100)))
        .unwrap();
}

#[tokio::test]
async fn a_reader_that_never_reads_stalls_nobody() {
    let t = tempfile::tempdir().unwrap();
    let e = engine(t.path(), 64 * 1024);
    let s = e
        .spawn_pipe(&PipeSpawn {
            argv: sh("head -c 4194304 /dev/zero | tr '\\0' x; echo END"),
            ..Default::default()
        })
        .unwrap();
    let mut stuck = e.attach(s.id(), opts("stuck")).unwrap();
    let mut live = e
        .attach(
            s.id(),
            AttachOptions {
                read_only: true,
                ..opts("live")
            },
        )
        .unwrap();
    let mut total = live.initial.len() as u64;
    let mut missed_live = 0;
    loop {
        match tokio::time::timeout(Duration::from_secs(20), live.next(1 << 20))
            .await
            .unwrap()
        {
            Next::Data { missed, bytes } => {
                missed_live += missed;
                total += bytes.len() as u64;
            }
            Next::Eof => break,
            Next::Evicted(_) => unreachable!(),
        }
    }
    assert_eq!(missed_live, 0, "a reader keeping up misses nothing");
    assert_eq!(total, 4 * 1024 * 1024 + 4);
    assert_eq!(s.wait_exit().await.code, 0, "the child was never blocked");
    match stuck.next(1 << 20).await {
        Next::Data { missed, bytes } => {
            assert_eq!(
                missed,
                4 * 1024 * 1024 + 4 - 64 * 1024,
                "skipped to the oldest held byte, exactly"
            );
            assert_eq!(bytes.len(), 64 * 1024);
            assert!(bytes.ends_with(b"END\n"));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn terminate_outcomes_soft_and_hard() {
    let t = tempfile::tempdir().unwrap();
    let e = engine(t.path(), 1 << 20);
    let soft = pty(&e, "sleep 30");
    let hard = pty(&e, "trap '' TERM HUP; while :; do sleep 1; done");
    tokio::time::sleep(Duration::from_millis(200)).await;
    e.terminate(soft.id(), Some(Duration::from_secs(5)))
        .unwrap();
    e.terminate(hard.id(), Some(Duration::from_millis(300)))
        .unwrap();
    let s = tokio::time::timeout(Duration::from_secs(10), soft.wait_exit())
        .await
        .unwrap();
    let h = tokio::time::timeout(Duration::from_secs(10), hard.wait_exit())
        .await
        .unwrap();
    assert_eq!(s.outcome, Outcome::SoftExit);
    assert_eq!(h.outcome, Outcome::HardKilled);
    assert_eq!(h.code, 128 + 9);
}

#[tokio::test]
async fn resize_is_seen_by_the_child_and_the_screen() {
    let t = tempfile::tempdir().unwrap();
    let e = engine(t.path(), 1 << 20);
    let s = pty(&e, "read x; stty size");
    let mut a = e.attach(s.id(), opts("a")).unwrap();
    s.resize(41, 132).unwrap();
    s.write_input(b"go\r").await.unwrap();
    let got = collect_until(&mut a, |b| contains(b, "41 132")).await;
    assert!(
        contains(&got, "41 132"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    assert_eq!(s.screen().unwrap().snapshot().size, (41, 132));
}

#[tokio::test]
async fn pipe_output_is_byte_exact_and_stdin_closes() {
    let t = tempfile::tempdir().unwrap();
    let e = engine(t.path(), 1 << 20);
    let s = e
        .spawn_pipe(&PipeSpawn {
            argv: vec!["cat".into()],
            ..Default::default()
        })
        .unwrap();
    let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let mut a = e.attach(s.id(), opts("a")).unwrap();
    s.write_input(&data).await.unwrap();
    s.close_stdin().await.unwrap();
    assert!(matches!(
        s.write_input(b"x").await,
        Err(SessionError::InvalidArgument(_))
    ));
    let mut got = a.initial.clone();
    while let Next::Data { bytes, missed } = a.next(1 << 20).await {
        assert_eq!(missed, 0);
        got.extend_from_slice(&bytes);
    }
    assert_eq!(got, data);
    assert_eq!(s.wait_exit().await.code, 0);
}

#[tokio::test]
async fn stderr_is_separate_unless_merged() {
    let t = tempfile::tempdir().unwrap();
    let e = engine(t.path(), 1 << 20);
    let cmd = sh("echo out; echo err >&2");
    let apart = e
        .spawn_pipe(&PipeSpawn {
            argv: cmd.clone(),
            ..Default::default()
        })
        .unwrap();
    let merged = e
        .spawn_pipe(&PipeSpawn {
            argv: cmd,
            merge_stderr: true,
            ..Default::default()
        })
        .unwrap();
    apart.wait_exit().await;
    merged.wait_exit().await;
    assert_eq!(e.backlog(apart.id(), StreamId::Output).unwrap().1, b"out\n");
    assert_eq!(e.backlog(apart.id(), StreamId::Stderr).unwrap().1, b"err\n");
    assert_eq!(
        e.backlog(merged.id(), StreamId::Output).unwrap().1,
        b"out\nerr\n"
    );
    assert!(e.backlog(merged.id(), StreamId::Stderr).is_err());
}

#[tokio::test]
async fn screen_restore_reproduces_a_full_screen_program() {
    let t = tempfile::tempdir().unwrap();
    let e = engine(t.path(), 1 << 20);
    let s = e
        .spawn_pty(&PtySpawn {
            argv: sh("printf 'before\\r\\n\\033[?1049h\\033[2J\\033[1;1HTOP\\033[12;30H\\033[7mMIDDLE\\033[0m'; sleep 30"),
            rows: 24,
            cols: 80,
            ..Default::default()
        })
        .unwrap();
    let snap = loop {
        let snap = s.screen().unwrap().snapshot();
        if snap.text.contains("MIDDLE") {
            break snap;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let a = e
        .attach(
            s.id(),
            AttachOptions {
                replay: Replay::Screen,
                ..opts("a")
            },
        )
        .unwrap();
    let mut fresh = vt100::Parser::new(24, 80, 0);
    fresh.process(&a.initial);
    assert_eq!(fresh.screen().contents(), snap.text);
    assert!(fresh.screen().cell(11, 29).unwrap().inverse());
    assert!(
        !fresh.screen().contents().contains("before"),
        "the alternate screen, not the history"
    );
    drop(a);
    e.terminate(s.id(), Some(Duration::from_millis(100)))
        .unwrap();
}

#[tokio::test]
async fn raw_replay_drops_terminal_queries() {
    let t = tempfile::tempdir().unwrap();
    let e = engine(t.path(), 1 << 20);
    let s = pty(&e, "printf 'a\\033[6nb\\033[cc\\033]11;?\\007d'; sleep 30");
    loop {
        if contains(&e.backlog(s.id(), StreamId::Output).unwrap().1, "d") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let a = e.attach(s.id(), opts("a")).unwrap();
    assert!(
        contains(&a.initial, "abcd"),
        "{:?}",
        String::from_utf8_lossy(&a.initial)
    );
    assert!(
        contains(&e.backlog(s.id(), StreamId::Output).unwrap().1, "\x1b[6n"),
        "GET_SESSION_BACKLOG stays exact"
    );
    drop(a);
    e.terminate(s.id(), Some(Duration::from_millis(100)))
        .unwrap();
}

#[tokio::test]
async fn sessions_live_at_a_daemon_death_are_listed_as_lost() {
    let t = tempfile::tempdir().unwrap();
    let id = {
        let e = engine(t.path(), 1 << 20);
        let done = pty(&e, "exit 3");
        done.wait_exit().await;
        let live = pty(&e, "sleep 1");
        let _ = done;
        live.id().to_string()
    };
    let e = engine(t.path(), 1 << 20);
    let all = e.list(None, "");
    assert_eq!(all.len(), 2);
    let lost = all.iter().find(|s| s.id == id).unwrap();
    assert_eq!(lost.exit.unwrap().outcome, Outcome::Lost);
    let done = all.iter().find(|s| s.id != id).unwrap();
    assert_eq!(done.exit.unwrap().code, 3);
    assert_eq!(e.purge_exited("").unwrap(), (2, 0));
    assert!(
        engine(t.path(), 1 << 20).list(None, "").is_empty(),
        "purge is persistent"
    );
}

fn mkfifo(p: &std::path::Path) {
    berth_os::fsutil::make_fifo(p, 0o600).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tee_drop_oldest_never_slows_the_session() {
    let t = tempfile::tempdir().unwrap();
    let e = engine(t.path(), 1 << 20);
    let s = e
        .spawn_pipe(&PipeSpawn {
            argv: sh("read go; head -c 2000000 /dev/zero"),
            ..Default::default()
        })
        .unwrap();
    let fifo = t.path().join("fifo");
    mkfifo(&fifo);
    let h = e
        .register_tee(
            s.id(),
            TeeSpec {
                stream: TeeStream::Stdout,
                path: fifo.clone(),
                truncate: false,
                capacity: 4096,
                suppress_markers: false,
                block: false,
            },
        )
        .unwrap();
    // Nobody reads the FIFO yet: the session must still finish.
    s.write_input(b"go\n").await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), s.wait_exit())
        .await
        .expect("not slowed by the tee");
    let reader = std::thread::spawn(move || std::fs::read(&fifo).unwrap());
    let data = reader.join().unwrap();
    let st = e.tee_status(s.id(), h).unwrap();
    assert!(st.missed > 0, "{st:?}");
    assert!(
        contains(&data, "[berth tee: missed"),
        "a marker stands in for the dropped bytes"
    );
    assert!(data.len() < 2_000_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tee_block_delivers_every_byte_by_slowing_the_session() {
    let t = tempfile::tempdir().unwrap();
    let e = engine(t.path(), 1 << 20);
    let s = e
        .spawn_pipe(&PipeSpawn {
            argv: sh("read go; head -c 3000000 /dev/zero"),
            ..Default::default()
        })
        .unwrap();
    let fifo = t.path().join("fifo");
    mkfifo(&fifo);
    let h = e
        .register_tee(
            s.id(),
            TeeSpec {
                stream: TeeStream::Stdout,
                path: fifo.clone(),
                truncate: false,
                capacity: 4096,
                suppress_markers: false,
                block: true,
            },
        )
        .unwrap();
    s.write_input(b"go\n").await.unwrap();
    // With no reader on the FIFO, the session cannot finish.
    assert!(
        tokio::time::timeout(Duration::from_millis(800), s.wait_exit())
            .await
            .is_err(),
        "BLOCK holds the child back"
    );
    let reader = std::thread::spawn(move || std::fs::read(&fifo).unwrap());
    tokio::time::timeout(Duration::from_secs(20), s.wait_exit())
        .await
        .expect("finishes once the tee drains");
    let data = reader.join().unwrap();
    assert_eq!(data.len(), 3_000_000, "every byte, no marker");
    assert_eq!(e.tee_status(s.id(), h).unwrap().missed, 0);
}

#[tokio::test]
async fn a_viewer_that_keeps_reading_slowly_slows_the_child_and_misses_nothing() {
    let t = tempfile::tempdir().unwrap();
    let e = engine(t.path(), 64 * 1024);
    let s = e
        .spawn_pipe(&PipeSpawn {
            argv: sh("read go; head -c 2000000 /dev/zero"),
            ..Default::default()
        })
        .unwrap();
    let _stuck = e.attach(s.id(), opts("stuck")).unwrap();
    let mut slow = e
        .attach(
            s.id(),
            AttachOptions {
                read_only: true,
                ..opts("slow")
            },
        )
        .unwrap();
    s.write_input(b"go\n").await.unwrap();
    let (mut got, mut missed) = (0u64, 0u64);
    while let Next::Data { missed: m, bytes } = slow.next(16 * 1024).await {
        missed += m;
        got += bytes.len() as u64;
        // A consumer slower than the child, but never stuck.
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert_eq!((got, missed), (2_000_000, 0));
}

#[tokio::test]
async fn attach_starts_where_the_last_attachment_stopped() {
    let t = tempfile::tempdir().unwrap();
    let e = engine(t.path(), 1 << 20);
    let s = pty(&e, "echo one-x; sleep 0.5; echo two-x; sleep 30");
    let mut a = e.attach(s.id(), opts("first")).unwrap();
    let got = collect_until(&mut a, |b| contains(b, "two-x")).await;
    assert!(contains(&got, "one-x") && contains(&got, "two-x"));
    drop(a);
    // Everything was delivered: a new attachment starts at the end.
    let a = e.attach(s.id(), opts("second")).unwrap();
    assert!(
        !contains(&a.initial, "one-x") && !contains(&a.initial, "two-x"),
        "{:?}",
        String::from_utf8_lossy(&a.initial)
    );
    assert_eq!(a.bytes_missed, 0);
    drop(a);
    // A read-only viewer and the snapshot still see the whole ring.
    let mut ro = opts("viewer");
    ro.read_only = true;
    let v = e.attach(s.id(), ro).unwrap();
    assert!(contains(&v.initial, "one-x") && contains(&v.initial, "two-x"));
    let (_, held, _) = e.backlog(s.id(), StreamId::Output).unwrap();
    assert!(contains(&held, "one-x"));
    drop(v);
    e.terminate(s.id(), Some(Duration::from_millis(100)))
        .unwrap();
}

/// A ring smaller than one read (1 KiB): the output must not stall behind
/// a screen model that is not built yet (it used to wait for a model that
/// would only be built after 64 KiB), and the model must still see every
/// byte: a read larger than the ring goes in piece by piece.
#[tokio::test]
async fn a_ring_smaller_than_the_output_neither_stalls_nor_loses_bytes_for_the_screen() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path(), 1024);
    // A colour set early must survive 3 KiB of later output (the model
    // would lose it if any byte went past it), and the last lines must be
    // on the screen.
    let s = pty(
        &e,
        "printf '\\033[1;35m'; i=0; while [ $i -lt 300 ]; do echo line-$i; i=$((i+1)); done; \
         printf 'DONE\\n'",
    );
    let exit = tokio::time::timeout(Duration::from_secs(20), s.wait_exit())
        .await
        .expect("the session finished instead of stalling");
    assert_eq!(exit.code, 0);
    let screen = s.screen().unwrap();
    let text = screen.snapshot().text;
    assert!(text.contains("line-299\nDONE"), "{text:?}");
    assert!(!text.contains("line-200\n"), "only the last rows: {text:?}");
    let bold_magenta = screen.with_screen(|sc, _| {
        sc.cell(0, 0)
            .map(|c| c.bold() && c.fgcolor() == vt100::Color::Idx(5))
    });
    assert_eq!(bold_magenta, Some(true));
}
