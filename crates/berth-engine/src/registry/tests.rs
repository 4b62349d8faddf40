use super::*;
use std::process::{Child, Command};

fn open(dir: &std::path::Path, retention: Duration) -> Registry {
    Registry::new(
        Arc::new(Store::open(&dir.join("berth.db"), 0).unwrap()),
        retention,
    )
}

fn sleeper() -> Child {
    Command::new("sleep").arg("60").spawn().unwrap()
}

fn reg(pid: u32) -> RegisterRequest {
    RegisterRequest {
        pid,
        kind: "test".into(),
        originator: "unit:1".into(),
        ..Default::default()
    }
}

#[test]
fn rows_survive_reopen_with_real_identity() {
    let t = tempfile::tempdir().unwrap();
    let mut c = sleeper();
    let started = ProcessIdentity::of(c.id()).unwrap();
    {
        let r = open(t.path(), Duration::from_secs(60));
        let row = r.register(&reg(c.id())).unwrap();
        assert_eq!(row.identity, started);
        assert_eq!(row.command, "sleep 60", "command read from /proc");
    }
    let r = open(t.path(), Duration::from_secs(60));
    let rows = r.list().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].state, ProcState::Alive);
    assert!(rows[0].last_validated_at > 0.0);
    assert!(rows[0].uptime_seconds() < 60.0);
    c.kill().unwrap();
    c.wait().unwrap();
}

#[tokio::test]
async fn created_at_far_from_the_kernel_start_time_is_recorded_dead_and_never_signalled() {
    let t = tempfile::tempdir().unwrap();
    let r = open(t.path(), Duration::from_secs(60));
    let mut c = sleeper();
    let start = ProcessIdentity::of(c.id()).unwrap().started_at();
    let mut q = reg(c.id());
    q.created_at = start + 0.5;
    let row = r.register(&q).unwrap();
    assert!(row.identity_verified(), "within tolerance");
    assert_eq!(row.state, ProcState::Alive);
    q.created_at = start - 3600.0;
    let row = r.register(&q).unwrap();
    assert!(!row.identity_verified());
    assert_eq!(row.state, ProcState::Dead, "not the registered process");
    assert_eq!(
        row.created_at,
        start - 3600.0,
        "the client's created_at is kept"
    );
    assert_eq!(
        row.identity.start_ticks,
        ProcessIdentity::of(c.id()).unwrap().start_ticks
    );
    let listed = r.list_active().unwrap();
    assert_eq!(listed.len(), 1, "listed, dead, until reaped");
    let found = r.kill_zombies(false, Duration::from_secs(1)).await.unwrap();
    assert_eq!(found.len(), 1);
    assert!(!found[0].killed, "{found:?}");
    assert!(c.try_wait().unwrap().is_none(), "never signalled");
    assert!(r.list().unwrap().is_empty(), "unregistered");
    c.kill().unwrap();
    c.wait().unwrap();
}

#[tokio::test]
async fn pids_that_do_not_exist_are_recorded_dead_and_reported_by_kill_zombies() {
    let t = tempfile::tempdir().unwrap();
    let r = open(t.path(), Duration::from_secs(60));
    assert!(matches!(
        r.register(&reg(0)),
        Err(RegistryError::InvalidArgument(_))
    ));
    let mut q = reg(u32::MAX - 1);
    q.created_at = 1000.0;
    q.command = "gone".into();
    let row = r.register(&q).unwrap();
    assert_eq!(row.state, ProcState::Dead);
    assert_eq!(row.identity.start_ticks, 0, "nothing observed");
    assert_eq!(r.list_active().unwrap().len(), 1);
    assert_eq!(r.list_by_originator("unit", false).unwrap().len(), 1);
    assert_eq!(r.count().unwrap(), 1);
    let dry = r.kill_zombies(true, Duration::from_secs(1)).await.unwrap();
    assert_eq!(dry.len(), 1);
    assert!(
        dry[0].reason.contains("no longer exists"),
        "{}",
        dry[0].reason
    );
    assert!(!dry[0].killed);
    let wet = r.kill_zombies(false, Duration::from_secs(1)).await.unwrap();
    assert!(
        wet[0].killed,
        "already dead counts as ended, as the reference"
    );
    assert!(r.list().unwrap().is_empty());
    let out = r
        .kill_tree(u32::MAX - 1, Duration::from_millis(10))
        .await
        .unwrap();
    assert_eq!(out.killed, 0, "killing what is gone is a success");
    assert!(matches!(
        r.unregister(4_000_000),
        Err(RegistryError::NotFound(_))
    ));
}

#[test]
fn dead_rows_are_reported_then_purged() {
    let t = tempfile::tempdir().unwrap();
    let r = open(t.path(), Duration::from_millis(300));
    let mut c = sleeper();
    r.register(&reg(c.id())).unwrap();
    c.kill().unwrap();
    c.wait().unwrap();
    let rows = r.list().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].state, ProcState::Dead);
    assert!(
        r.list_active().unwrap().is_empty(),
        "LIST_ACTIVE lists the living"
    );
    std::thread::sleep(Duration::from_millis(400));
    assert!(r.list().unwrap().is_empty());
    assert_eq!(r.count().unwrap(), 0);
}

#[tokio::test]
async fn kill_tree_ends_grandchildren_and_escalates() {
    // A parent that ignores SIGTERM, with a child and a grandchild.
    let mut c = Command::new("sh")
        .args(["-c", "trap '' TERM; sh -c 'sleep 60 & wait' & wait"])
        .spawn()
        .unwrap();
    let pid = c.id();
    for _ in 0..200 {
        if ProcessTable::snapshot()
            .descendants_deepest_first(pid)
            .len()
            >= 2
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let t = tempfile::tempdir().unwrap();
    let r = open(t.path(), Duration::from_secs(60));
    let out = r.kill_tree(pid, Duration::from_millis(300)).await.unwrap();
    assert_eq!(out.killed, 3);
    assert!(
        out.hard_killed >= 1,
        "the TERM-ignoring parent needed SIGKILL"
    );
    c.wait().unwrap();
    let again = r.kill_tree(pid, Duration::from_millis(10)).await.unwrap();
    assert_eq!(again.killed, 0, "idempotent");
}

#[tokio::test]
async fn kill_tree_ends_a_reparented_member_of_the_roots_session() {
    let t = tempfile::tempdir().unwrap();
    let r = open(t.path(), Duration::from_secs(60));
    let mark = t.path().join("gc");
    let row = r
        .spawn_detached(&SpawnRequest {
            command: format!(
                "sh -c 'sleep 61 & echo $! > {}'; exec sleep 62",
                mark.display()
            ),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut gc = None;
    for _ in 0..300 {
        if let Ok(s) = std::fs::read_to_string(&mark) {
            if s.ends_with('\n') {
                gc = s.trim().parse::<u32>().ok();
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let gc = ProcessIdentity::of(gc.expect("grandchild pid")).unwrap();
    assert!(!ProcessTable::snapshot()
        .descendants_deepest_first(row.identity.pid)
        .contains(&gc));
    let out = r
        .kill_tree(row.identity.pid, Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(out.killed, 2);
    assert!(!gc.is_running());
}

use berth_os::proc::ProcessTable;

#[tokio::test]
async fn orphans_are_found_dry_run_spares_them_and_kill_ends_them() {
    let t = tempfile::tempdir().unwrap();
    let r = open(t.path(), Duration::from_secs(60));
    let mut owner = sleeper();
    let mut orphan = sleeper();
    let mut kept = sleeper();
    let mut q = reg(orphan.id());
    q.originator = format!("tool:{}", owner.id());
    r.register(&q).unwrap();
    let mut q = reg(kept.id());
    q.originator = format!("tool:{}", std::process::id());
    r.register(&q).unwrap();
    owner.kill().unwrap();
    owner.wait().unwrap();

    let dry = r.kill_zombies(true, Duration::from_secs(1)).await.unwrap();
    assert_eq!(dry.len(), 1);
    assert_eq!(dry[0].pid, orphan.id());
    assert!(!dry[0].killed);
    assert_eq!(
        dry[0].reason,
        format!(
            "originator tool:{} (PID {}) of process {} is dead",
            owner.id(),
            owner.id(),
            orphan.id()
        )
    );
    assert!(
        orphan.try_wait().unwrap().is_none(),
        "dry run signals nothing"
    );

    let real = r.kill_zombies(false, Duration::from_secs(1)).await.unwrap();
    assert_eq!(real.len(), 1);
    assert!(real[0].killed);
    assert!(orphan.wait().unwrap().code().is_none(), "ended by a signal");
    assert!(
        kept.try_wait().unwrap().is_none(),
        "a process whose owner lives is untouched"
    );
    assert_eq!(r.list().unwrap().len(), 1);
    kept.kill().unwrap();
    kept.wait().unwrap();
}

#[tokio::test]
async fn spawn_detached_layers_env_and_starts_a_session() {
    let t = tempfile::tempdir().unwrap();
    let r = open(t.path(), Duration::from_secs(60));
    let out = t.path().join("env.txt");
    let req = SpawnRequest {
        command: format!(
            "echo \"$A-$B-${{HOME:-none}}\" > {}; sleep 30",
            out.display()
        ),
        cwd: t.path().display().to_string(),
        env: vec![
            ("A".into(), "1".into()),
            ("B".into(), "x".into()),
            ("A".into(), "2".into()),
        ],
        clear_inherited_env: true,
        originator: "unit:1".into(),
        ..Default::default()
    };
    let row = r.spawn_detached(&req).await.unwrap();
    let st = berth_os::proc::read_stat(row.identity.pid).unwrap();
    assert_eq!(st.session, row.identity.pid as i32, "leads its own session");
    for _ in 0..200 {
        if std::fs::read_to_string(&out)
            .map(|s| s.ends_with('\n'))
            .unwrap_or(false)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "2-x-none\n");
    assert_eq!(row.containment, "detached");
    assert_eq!(row.containment_detail, "session");
    assert_eq!(row.kind, "subprocess");
    r.kill_tree(row.identity.pid, Duration::from_secs(1))
        .await
        .unwrap();
    let bad = SpawnRequest {
        command: "true".into(),
        cwd: "/nonexistent/dir".into(),
        ..Default::default()
    };
    let err = r.spawn_detached(&bad).await.unwrap_err().to_string();
    assert!(err.contains("spawn_daemon.cwd"), "{err}");
}
