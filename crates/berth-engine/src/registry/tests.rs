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

#[test]
fn created_at_far_from_the_kernel_start_time_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let r = open(t.path(), Duration::from_secs(60));
    let mut c = sleeper();
    let start = ProcessIdentity::of(c.id()).unwrap().started_at();
    let mut q = reg(c.id());
    q.created_at = start + 0.5;
    assert!(r.register(&q).is_ok(), "within tolerance");
    q.created_at = start - 3600.0;
    let err = r.register(&q).unwrap_err().to_string();
    assert!(
        err.contains("created_at") && err.contains("different process"),
        "{err}"
    );
    c.kill().unwrap();
    c.wait().unwrap();
}

#[test]
fn unknown_pids_are_named_errors() {
    let t = tempfile::tempdir().unwrap();
    let r = open(t.path(), Duration::from_secs(60));
    assert!(matches!(
        r.register(&reg(0)),
        Err(RegistryError::InvalidArgument(_))
    ));
    assert!(matches!(
        r.register(&reg(u32::MAX - 1)),
        Err(RegistryError::NotFound(_))
    ));
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
    assert!(matches!(
        r.kill_tree(pid, Duration::from_millis(10)).await,
        Err(RegistryError::NotFound(_))
    ));
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
    assert!(dry[0].reason.contains("is gone"), "{}", dry[0].reason);
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
    assert_eq!(row.containment, "session");
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
