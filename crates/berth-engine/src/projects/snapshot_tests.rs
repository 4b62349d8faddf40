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
