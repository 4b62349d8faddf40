//! Snapshots through the project engine on the native runtime: save,
//! restore (with its safety snapshot, stop and restart), mismatch,
//! concurrent saves, duplicate (issue 11).

use super::engine::{Projects, ProjectsConfig};
use super::model::*;
use crate::services::{LogConfig, Services, ServicesConfig};
use crate::store::Store;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// A project engine over a fresh store under `root`, native by default,
/// its service engine's log pump running (shared with `tests.rs`).
pub(super) async fn engine(root: &Path) -> (Arc<Services>, Arc<Projects>) {
    let store = Arc::new(Store::open(&root.join("b.db"), 0).unwrap());
    let services = Services::open(
        store.clone(),
        ServicesConfig {
            logs: LogConfig {
                dir: root.join("logs"),
                max_bytes: 1 << 20,
                keep: 2,
            },
            dump_path: root.join("dump.json"),
        },
    )
    .unwrap();
    tokio::spawn(services.clone().run_pump());
    let projects = Projects::open(
        store,
        services.clone(),
        ProjectsConfig {
            state_root: root.join("state"),
            default_runtime: RuntimeKind::Native,
            docker: None,
        },
    )
    .unwrap();
    (services, projects)
}

fn app(root: &Path, version: &str) -> std::path::PathBuf {
    let dir = root.join("app");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("compose.yaml"),
        "services:\n  web:\n    command: [\"sh\", \"-c\", \"exec sleep 60\"]\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("manifest.json"),
        format!(r#"{{"app_id":"dev.test.snap","name":"snap","version":"{version}"}}"#),
    )
    .unwrap();
    dir
}

async fn ensure(p: &Projects, id: &str, dir: &Path) -> Ensured {
    p.ensure(EnsureRequest {
        project_id: id.into(),
        package_path: dir.to_owned(),
        ..Default::default()
    })
    .await
    .unwrap()
}

fn save(id: &str) -> SaveRequest {
    SaveRequest {
        project_id: id.into(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_of_a_running_project_stops_it_restores_exactly_and_restarts_it() {
    let dir = tempfile::tempdir().unwrap();
    let (services, p) = engine(dir.path()).await;
    let pkg = app(dir.path(), "1.0");
    let state = ensure(&p, "snap", &pkg).await.state_path;
    std::fs::write(state.join("data.txt"), b"version one").unwrap();
    p.open_project("snap", &|_| {}).await.unwrap();
    p.start("snap", BTreeMap::new()).await.unwrap();

    let mut labels = BTreeMap::new();
    labels.insert("k".to_owned(), "v".to_owned());
    let one = p
        .save_snapshot(SaveRequest {
            project_id: "snap".into(),
            reason: "manual".into(),
            labels,
        })
        .await
        .unwrap();
    assert_eq!(one.meta.labels["k"], "v");
    assert_eq!(one.meta.app_version, "1.0");
    std::fs::write(state.join("data.txt"), b"version two").unwrap();
    std::fs::write(state.join("extra"), b"x").unwrap();

    let r = p
        .restore_snapshot(RestoreRequest {
            project_id: "snap".into(),
            snapshot_id: one.snapshot_id.clone(),
            create_safety_snapshot: true,
            allow_version_mismatch: false,
        })
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(state.join("data.txt")).unwrap(),
        b"version one"
    );
    assert!(!state.join("extra").exists());
    assert_eq!(r.restored_snapshot_id, one.snapshot_id);
    assert!(!r.safety_snapshot_id.is_empty());
    let st = p.status("snap").await.unwrap();
    assert_eq!(st.status, ProjectState::Running, "{st:?}");
    assert_eq!(st.snapshot_count, 2);
    let list = p.list_snapshots("snap").await.unwrap();
    assert_eq!(list[0].snapshot_id, r.safety_snapshot_id);
    assert_eq!(list[0].meta.reason, "before-restore");
    assert_eq!(list[0].meta.parent_snapshot_id, one.snapshot_id);

    // The safety snapshot brings back what the restore replaced.
    p.restore_snapshot(RestoreRequest {
        project_id: "snap".into(),
        snapshot_id: r.safety_snapshot_id.clone(),
        create_safety_snapshot: false,
        allow_version_mismatch: false,
    })
    .await
    .unwrap();
    assert_eq!(std::fs::read(state.join("extra")).unwrap(), b"x");

    // Errors.
    let e = p.save_snapshot(save("nope")).await.unwrap_err();
    assert_eq!(e.code(), "NOT_FOUND");
    let bad = RestoreRequest {
        project_id: "snap".into(),
        snapshot_id: "0000000000000-deadbeef".into(),
        create_safety_snapshot: true,
        allow_version_mismatch: false,
    };
    assert_eq!(
        p.restore_snapshot(bad).await.unwrap_err().code(),
        "NOT_FOUND"
    );

    // A new app version refuses the old snapshot unless allowed.
    app(dir.path(), "2.0");
    ensure(&p, "snap", &pkg).await;
    let mut req = RestoreRequest {
        project_id: "snap".into(),
        snapshot_id: one.snapshot_id.clone(),
        create_safety_snapshot: false,
        allow_version_mismatch: false,
    };
    let e = p.restore_snapshot(req.clone()).await.unwrap_err();
    assert_eq!(e.code(), "SNAPSHOT_MISMATCH");
    req.allow_version_mismatch = true;
    p.restore_snapshot(req).await.unwrap();
    p.stop("snap", None).await.unwrap();
    services.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_save_at_the_same_time_is_save_in_progress() {
    let dir = tempfile::tempdir().unwrap();
    let (services, p) = engine(dir.path()).await;
    let state = ensure(&p, "busy", &app(dir.path(), "1.0")).await.state_path;
    let noise: Vec<u8> = (0..40_000_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(state.join("big"), noise).unwrap();
    let (a, b) = tokio::join!(p.save_snapshot(save("busy")), p.save_snapshot(save("busy")));
    assert!(a.is_ok(), "{a:?}");
    assert_eq!(b.unwrap_err().code(), "SAVE_IN_PROGRESS");
    assert!(
        p.save_snapshot(save("busy")).await.is_ok(),
        "free again after"
    );
    services.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_gets_its_own_state_and_runs_beside_its_source() {
    let dir = tempfile::tempdir().unwrap();
    let (services, p) = engine(dir.path()).await;
    let src = ensure(&p, "orig", &app(dir.path(), "1.0")).await;
    std::fs::write(src.state_path.join("db"), b"rows").unwrap();
    p.open_project("orig", &|_| {}).await.unwrap();
    p.start("orig", BTreeMap::new()).await.unwrap();

    let d = p.duplicate("orig", "copy", None).await.unwrap();
    assert_ne!(d.state_path, src.state_path);
    assert_ne!(d.namespace, src.namespace);
    assert_eq!(std::fs::read(d.state_path.join("db")).unwrap(), b"rows");
    std::fs::write(d.state_path.join("db"), b"changed in the copy").unwrap();
    assert_eq!(std::fs::read(src.state_path.join("db")).unwrap(), b"rows");

    p.open_project("copy", &|_| {}).await.unwrap();
    p.start("copy", BTreeMap::new()).await.unwrap();
    assert_eq!(
        p.status("orig").await.unwrap().status,
        ProjectState::Running
    );
    assert_eq!(
        p.status("copy").await.unwrap().status,
        ProjectState::Running
    );

    assert_eq!(
        p.duplicate("orig", "copy", None).await.unwrap_err().code(),
        "CONFLICT"
    );
    assert_eq!(
        p.duplicate("ghost", "x2", None).await.unwrap_err().code(),
        "NOT_FOUND"
    );
    let e = p
        .duplicate("orig", "x3", Some("0000000000000-00000000"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "NOT_FOUND");
    assert!(
        !dir.path().join("state/x3").exists(),
        "a refused duplicate leaves nothing"
    );
    p.stop("orig", None).await.unwrap();
    p.stop("copy", None).await.unwrap();
    services.shutdown().await;
}

/// An app whose service publishes the fixed host port `port`
/// (`"PORT:8080"`) as the reviewer's `cap` did.
fn ported_app(root: &Path, port: u16) -> std::path::PathBuf {
    let dir = root.join("ported");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("compose.yaml"),
        format!(
            "services:\n  web:\n    command: [\"sh\", \"-c\", \"exec sleep 60\"]\n    ports: [\"127.0.0.1:{port}:8080\"]\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("manifest.json"),
        r#"{"app_id":"dev.test.ported","name":"ported","version":"1"}"#,
    )
    .unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_of_a_project_with_a_fixed_host_port_gets_a_fresh_one_and_runs_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    let (services, p) = engine(dir.path()).await;
    let fixed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let pkg = ported_app(dir.path(), fixed);
    ensure(&p, "cap", &pkg).await;
    p.open_project("cap", &|_| {}).await.unwrap();
    p.start("cap", BTreeMap::new()).await.unwrap();

    let d = p.duplicate("cap", "cap2", None).await.unwrap();
    assert_eq!(d.ports.len(), 1, "{:?}", d.ports);
    let moved = d.ports[0].host_port;
    assert_ne!(moved, fixed);
    assert!(!d.ports[0].requested);
    // Status reports the copy's port before it ever ran.
    assert_eq!(p.status("cap2").await.unwrap().ports, d.ports);

    p.open_project("cap2", &|_| {}).await.unwrap();
    p.start("cap2", BTreeMap::new()).await.unwrap();
    for id in ["cap", "cap2"] {
        assert_eq!(p.status(id).await.unwrap().status, ProjectState::Running);
    }
    // Both host ports are served (by each project's forwarder).
    for port in [fixed, moved] {
        assert!(
            std::net::TcpListener::bind(("127.0.0.1", port)).is_err(),
            "port {port} is not held"
        );
    }
    // The moved port is kept across a restart of the copy.
    p.stop("cap2", None).await.unwrap();
    p.start("cap2", BTreeMap::new()).await.unwrap();
    assert_eq!(p.status("cap2").await.unwrap().ports[0].host_port, moved);
    assert_eq!(p.status("cap").await.unwrap().ports[0].host_port, fixed);

    // Stopping, removing and forgetting the copy never need a port.
    p.stop("cap2", None).await.unwrap();
    p.delete_runtime("cap2", false).await.unwrap();
    p.forget("cap2", false).await.unwrap();

    // A second registration of the same files (its port is fixed and
    // held by `cap`) can still be looked at, removed and forgotten.
    ensure(&p, "twin", &pkg).await;
    p.status("twin").await.unwrap();
    let e = p.open_project("twin", &|_| {}).await.unwrap_err();
    assert_eq!(e.code(), "PORT_CONFLICT", "{e}");
    p.delete_runtime("twin", false).await.unwrap();
    p.forget("twin", false).await.unwrap();

    p.stop("cap", None).await.unwrap();
    services.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_duplicate_leaves_no_snapshot_and_leftover_copies_are_settled_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let (services, p) = engine(dir.path()).await;
    let src = ensure(&p, "orig", &app(dir.path(), "1.0")).await;
    std::fs::write(src.state_path.join("db"), b"rows").unwrap();
    // Someone's directory is where the copy would go.
    std::fs::create_dir_all(dir.path().join("state/taken")).unwrap();
    let e = p.duplicate("orig", "taken", None).await.unwrap_err();
    assert_eq!(e.code(), "DUPLICATE_FAILED");
    assert!(e.to_string().contains("already exists"), "{e}");
    assert!(
        p.list_snapshots("orig").await.unwrap().is_empty(),
        "a refused duplicate took a snapshot"
    );
    // A snapshot that does not exist: refused, nothing left.
    let e = p
        .duplicate("orig", "ghost", Some("0000000000000-00000000"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "NOT_FOUND");
    assert!(!dir.path().join("state/.duplicate-ghost").exists());
    assert!(p.list_snapshots("orig").await.unwrap().is_empty());

    // What a killed daemon leaves: a half copy and a half import.
    let half = dir.path().join("state/.duplicate-copy");
    std::fs::create_dir_all(half.join("db")).unwrap();
    let packages = super::engine::package_roots(&dir.path().join("state")).0;
    let import = packages.join("dev.test.snap/.import-4242-0");
    std::fs::create_dir_all(&import).unwrap();
    std::fs::write(import.join("manifest.json"), b"{").unwrap();
    services.shutdown().await;
    drop(p);
    let (services, p) = engine(dir.path()).await;
    assert!(!half.exists(), "the half copy is still there");
    assert!(!import.exists(), "the half import is still there");
    assert!(dir.path().join("state/taken").exists(), "not a leftover");
    // The retry works.
    let d = p.duplicate("orig", "copy", None).await.unwrap();
    assert_eq!(std::fs::read(d.state_path.join("db")).unwrap(), b"rows");

    // Killed after the copy was registered and before its rename: the
    // next open finishes the rename.
    std::fs::rename(&d.state_path, &half).unwrap();
    services.shutdown().await;
    drop(p);
    let (services, p) = engine(dir.path()).await;
    assert!(!half.exists());
    assert_eq!(std::fs::read(d.state_path.join("db")).unwrap(), b"rows");
    assert_eq!(p.status("copy").await.unwrap().state_path, d.state_path);
    services.shutdown().await;
}

/// Counter files the writer below rewrites.
const COUNTERS: usize = 400;

/// A native service that rewrites [`COUNTERS`] files in order with a
/// counter, as fast as the shell can: at any instant the files hold i,
/// ..., i, (one being written: empty or i), i-1, ..., i-1.
fn counter_app(root: &Path, state: &Path) -> std::path::PathBuf {
    let dir = root.join("counter");
    std::fs::create_dir_all(&dir).unwrap();
    let script = format!(
        "cd {s} && i=0; while :; do i=$((i+1)); for k in $(seq 0 {last}); do \
         echo $i > c$k; done; done",
        s = state.display(),
        last = COUNTERS - 1
    );
    // `$$` is a `$` once Compose has interpolated the file.
    let script = script.replace('$', "$$");
    std::fs::write(
        dir.join("compose.yaml"),
        format!(
            "services:\n  writer:\n    command: [\"sh\", \"-c\", {}]\n",
            serde_json::to_string(&script).unwrap()
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("manifest.json"),
        r#"{"app_id":"dev.test.counter","name":"counter","version":"1"}"#,
    )
    .unwrap();
    dir
}

/// The counters (`None`: the file is missing or being written).
fn counters(state: &Path) -> Vec<Option<u64>> {
    (0..COUNTERS)
        .map(|k| {
            std::fs::read_to_string(state.join(format!("c{k}")))
                .ok()
                .and_then(|s| s.trim().parse().ok())
        })
        .collect()
}

/// Whether `c` is a state the writer passes through: all but at most one
/// (the file being written) known, non-increasing, and one step apart at
/// most from first to last.
fn consistent(c: &[Option<u64>]) -> bool {
    let known: Vec<u64> = c.iter().flatten().copied().collect();
    known.len() + 1 >= c.len()
        && known.windows(2).all(|w| w[0] >= w[1])
        && known
            .first()
            .zip(known.last())
            .is_some_and(|(a, b)| a - b <= 1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_project_is_frozen_while_a_save_captures_it_so_its_files_agree() {
    let dir = tempfile::tempdir().unwrap();
    let (services, p) = engine(dir.path()).await;
    let state = dir.path().join("state/frz");
    let pkg = counter_app(dir.path(), &state);
    assert_eq!(ensure(&p, "frz", &pkg).await.state_path, state);
    p.open_project("frz", &|_| {}).await.unwrap();
    p.start("frz", BTreeMap::new()).await.unwrap();
    // Wait until the writer has gone round twice.
    while !counters(&state).iter().all(|c| c.is_some_and(|c| c >= 2)) {
        let st = p.status("frz").await.unwrap();
        assert_eq!(st.status, ProjectState::Running, "{st:?}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    for round in 0..5 {
        let snap = p.save_snapshot(save("frz")).await.unwrap();
        let copy = format!("frz-copy{round}");
        let d = p
            .duplicate("frz", &copy, Some(&snap.snapshot_id))
            .await
            .unwrap();
        let c = counters(&d.state_path);
        assert!(
            consistent(&c),
            "round {round}: the snapshot caught the writer at work: {c:?}"
        );
    }
    // Thawed: the writer goes on.
    let before = counters(&state)[0].unwrap_or(0);
    while counters(&state)[0].unwrap_or(0) <= before {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    p.stop("frz", None).await.unwrap();
    // Nothing runs: nothing is frozen.
    let idle = p.save_snapshot(save("frz")).await.unwrap();
    assert_eq!(idle.paused_ms, 0);
    services.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autosave_snapshots_a_running_project_when_due_and_keeps_what_its_policy_keeps() {
    use crate::snapshots::Retention;
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    let (services, p) = engine(dir.path()).await;
    let state = ensure(&p, "auto", &app(dir.path(), "1.0")).await.state_path;
    std::fs::write(state.join("db"), b"rows").unwrap();
    assert!(
        !p.status("auto").await.unwrap().autosave_enabled,
        "off by default"
    );
    assert!(!p.autosave("auto").unwrap().enabled);

    let keep2 = Retention {
        keep_last: 2,
        ..Default::default()
    };
    let e = p
        .set_autosave("auto", Some((Duration::from_secs(10), Some(keep2))))
        .unwrap_err();
    assert_eq!(e.code(), "INVALID_ARGUMENT");
    assert_eq!(
        p.set_autosave("ghost", Some((Duration::from_secs(60), Some(keep2))))
            .unwrap_err()
            .code(),
        "NOT_FOUND"
    );
    p.set_autosave("auto", Some((Duration::from_secs(60), Some(keep2))))
        .unwrap();
    assert!(p.status("auto").await.unwrap().autosave_enabled);
    let manual = p.save_snapshot(save("auto")).await.unwrap();

    // Stopped projects are not autosaved.
    let t0 = berth_os::proc::now_epoch();
    assert!(p.autosave_due(t0).await.is_empty());

    p.open_project("auto", &|_| {}).await.unwrap();
    p.start("auto", BTreeMap::new()).await.unwrap();
    let mut autosaved = Vec::new();
    for (k, at) in [0.0, 10.0, 61.0, 122.0, 183.0].into_iter().enumerate() {
        let done = p.autosave_due(t0 + at).await;
        if k == 1 {
            assert!(done.is_empty(), "not due 10 s after the last one");
            continue;
        }
        assert_eq!(done.len(), 1, "at +{at} s: {done:?}");
        let s = done[0].1.as_ref().unwrap();
        assert_eq!(s.meta.reason, "autosave");
        autosaved.push(s.snapshot_id.clone());
    }
    // keep_last 2 of the four autosaves; the manual one is never forgotten.
    let ids: Vec<String> = p
        .list_snapshots("auto")
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.snapshot_id)
        .collect();
    assert_eq!(
        ids,
        vec![
            autosaved[3].clone(),
            autosaved[2].clone(),
            manual.snapshot_id.clone()
        ]
    );

    // Off keeps the policy; prune still applies it.
    let off = p.set_autosave("auto", None).unwrap();
    assert!(!off.enabled && off.retention == keep2 && off.last_run > 0.0);
    // On again with a new interval and no retention keeps the policy.
    let on = p
        .set_autosave("auto", Some((Duration::from_secs(3600), None)))
        .unwrap();
    assert!(on.enabled && on.retention == keep2);
    p.set_autosave("auto", None).unwrap();
    assert!(!p.status("auto").await.unwrap().autosave_enabled);
    assert!(p.autosave_due(t0 + 1000.0).await.is_empty());
    let r = p.prune_snapshots(Some("auto")).await.unwrap();
    assert!(r.snapshots_removed.is_empty());
    p.stop("auto", None).await.unwrap();
    services.shutdown().await;
}

/// A service the user stopped while the project ran stays stopped after a
/// restore; the others start again (review finding: the restore started
/// every service).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_starts_again_only_the_services_that_ran() {
    let dir = tempfile::tempdir().unwrap();
    let (_services, p) = engine(dir.path()).await;
    let pkg = app(dir.path(), "1.0");
    std::fs::write(
        pkg.join("compose.yaml"),
        "services:\n  web:\n    command: [\"sh\", \"-c\", \"exec sleep 60\"]\n  \
         worker:\n    command: [\"sh\", \"-c\", \"exec sleep 60\"]\n",
    )
    .unwrap();
    ensure(&p, "two", &pkg).await;
    p.open_project("two", &|_| {}).await.unwrap();
    p.start("two", BTreeMap::new()).await.unwrap();
    p.stop_services("two", None, &["worker".to_owned()])
        .await
        .unwrap();
    let before = p.status("two").await.unwrap();
    let one = p.save_snapshot(save("two")).await.unwrap();
    p.restore_snapshot(RestoreRequest {
        project_id: "two".into(),
        snapshot_id: one.snapshot_id,
        create_safety_snapshot: false,
        allow_version_mismatch: false,
    })
    .await
    .unwrap();
    let st = p.status("two").await.unwrap();
    let svc = |st: &ProjectStatus, name: &str| {
        st.services
            .iter()
            .find(|s| s.name == name)
            .cloned()
            .unwrap()
    };
    assert_eq!(st.status, ProjectState::Running, "{st:?}");
    assert_eq!(svc(&st, "web").state, ServiceState::Running, "{st:?}");
    // The worker was not started again: not running, and its last run
    // is the one from before the restore.
    assert_ne!(svc(&st, "worker").state, ServiceState::Running, "{st:?}");
    assert_eq!(
        svc(&st, "worker").started_at,
        svc(&before, "worker").started_at,
        "{st:?}"
    );
    p.stop("two", None).await.unwrap();
}

/// A project whose state path was removed by hand is not saved as an
/// empty tree (autosave's keep-last would rotate the good snapshots out):
/// SAVE_FAILED naming the path, and the list is unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_save_of_a_removed_state_path_fails_and_lists_nothing_new() {
    let dir = tempfile::tempdir().unwrap();
    let (_services, p) = engine(dir.path()).await;
    let pkg = app(dir.path(), "1.0");
    let state = ensure(&p, "gone", &pkg).await.state_path;
    std::fs::write(state.join("data.txt"), b"kept").unwrap();
    p.save_snapshot(save("gone")).await.unwrap();
    std::fs::remove_dir_all(&state).unwrap();
    let e = p.save_snapshot(save("gone")).await.unwrap_err();
    assert_eq!(e.code(), "SAVE_FAILED", "{e}");
    assert!(e.to_string().contains(&state.display().to_string()), "{e}");
    assert_eq!(p.list_snapshots("gone").await.unwrap().len(), 1);
}
