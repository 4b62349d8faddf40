//! Engine tests with real processes on a current-thread runtime, like the
//! daemon's.

use super::*;

fn engine(t: &tempfile::TempDir) -> Arc<Services> {
    let store = Arc::new(Store::open(&t.path().join("b.db"), 0).unwrap());
    Services::open(
        store,
        ServicesConfig {
            logs: LogConfig {
                dir: t.path().join("logs"),
                max_bytes: 1 << 20,
                keep: 2,
            },
            dump_path: t.path().join("dump.json"),
        },
    )
    .unwrap()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn sh(name: &str, script: &str) -> ServiceSpec {
    ServiceSpec {
        name: name.into(),
        cmd: vec!["/bin/sh".into(), "-c".into(), script.into()],
        autorestart: true,
        ..Default::default()
    }
}

#[test]
fn start_logs_stop_and_delete() {
    let t = tempfile::tempdir().unwrap();
    rt().block_on(async {
        let s = engine(&t);
        s.recover().unwrap();
        tokio::spawn(s.clone().run_pump());
        let mut spec = sh("echo", "echo hello; echo oops >&2; exec sleep 30");
        spec.env.insert("X".into(), "1".into());
        let info = s.start(spec.clone()).await.unwrap();
        assert_eq!(info.status, Status::Online);
        assert!(info.pid > 0);
        let err = s.start(spec).await.unwrap_err();
        assert!(
            matches!(err, ServiceError::Invalid { ref field, .. } if field == "name"),
            "{err}"
        );
        let mut text = String::new();
        for _ in 0..200 {
            text = s.logs("echo", 10).unwrap();
            if text.contains("err oops") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(
            text.contains(" out hello\n") && text.contains(" err oops\n"),
            "{text}"
        );
        assert_eq!(s.stop("echo").await.unwrap(), 1);
        let d = s.describe("echo").unwrap();
        assert_eq!(d.status, Status::Stopped);
        assert!(d.reason.starts_with("stopped by request"), "{}", d.reason);
        assert!(!berth_os::ProcessIdentity {
            pid: info.pid,
            start_ticks: info.start_ticks
        }
        .is_running());
        assert_eq!(s.delete("all").await.unwrap(), 1);
        assert!(s.list().is_empty());
        assert!(matches!(s.describe("echo"), Err(ServiceError::NotFound(_))));
    });
}

#[test]
fn a_missing_program_is_refused_and_not_kept() {
    let t = tempfile::tempdir().unwrap();
    rt().block_on(async {
        let s = engine(&t);
        let mut spec = sh("x", "");
        spec.cmd = vec!["/no/such/berth-program".into()];
        let e = s.start(spec).await.unwrap_err();
        assert!(
            matches!(e, ServiceError::Invalid { ref field, .. } if field == "cmd[0]"),
            "{e}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(s.list().is_empty());
    });
}

#[test]
fn a_process_the_daemon_never_recorded_is_found_by_its_spool() {
    let t = tempfile::tempdir().unwrap();
    // A daemon starts a service, then dies before recording its pid.
    let pid = rt().block_on(async {
        let s = engine(&t);
        s.recover().unwrap();
        let info = s.start(sh("lost", "exec sleep 30")).await.unwrap();
        let mut forgotten = info.clone();
        forgotten.pid = 0;
        forgotten.start_ticks = 0;
        persist::save(&s.shared.store, &forgotten).unwrap();
        info.pid
    });
    // The runtime (and with it the supervisor) is gone; the process lives.
    let id = berth_os::ProcessIdentity::of(pid).unwrap();
    assert!(id.is_running());
    rt().block_on(async {
        let s = engine(&t);
        let report = s.recover().unwrap();
        assert_eq!(report.adopted, 1, "{report:?}");
        let d = s.describe("lost").unwrap();
        assert_eq!((d.pid, d.start_ticks), (id.pid, id.start_ticks));
        assert_eq!(s.stop("lost").await.unwrap(), 1);
        assert!(!id.is_running());
    });
}
