//! The project engine end to end on the native runtime: real processes,
//! a real SQLite file, real ports. The same scenarios run on Docker in
//! `crates/berth/tests/projects.rs` through the daemon.

use super::engine::{Projects, ProjectsConfig};
use super::model::*;
use crate::services::{LogConfig, Services, ServicesConfig};
use crate::store::Store;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

struct Env {
    root: std::path::PathBuf,
    _dir: Option<tempfile::TempDir>,
    services: Arc<Services>,
    projects: Arc<Projects>,
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// An engine over the files in `root` (a store, logs, state), recovering
/// whatever a previous engine there left.
async fn env_at(root: &Path) -> Env {
    env_with(root, RuntimeKind::Native).await
}

/// Like [`env_at`], with `default_runtime` (and no Docker Engine).
async fn env_with(root: &Path, default_runtime: RuntimeKind) -> Env {
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
    services.recover().unwrap();
    tokio::spawn(services.clone().run_pump());
    let projects = Projects::open(
        store,
        services.clone(),
        ProjectsConfig {
            state_root: root.join("state"),
            default_runtime,
            docker: None,
        },
    )
    .unwrap();
    projects.recover().await.unwrap();
    Env {
        root: root.to_owned(),
        _dir: None,
        services,
        projects,
    }
}

async fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let mut e = env_at(dir.path()).await;
    e._dir = Some(dir);
    e
}

/// Writes a project directory with `compose` and a manifest.
fn project(root: &Path, name: &str, compose: &str, secrets: &[&str]) -> std::path::PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("compose.yaml"), compose).unwrap();
    let secrets: Vec<String> = secrets.iter().map(|s| format!("{s:?}")).collect();
    std::fs::write(
        dir.join("manifest.json"),
        format!(
            r#"{{"app_id":"dev.test.{name}","name":"{name}","version":"1.0","secrets":[{}]}}"#,
            secrets.join(",")
        ),
    )
    .unwrap();
    dir
}

async fn up(e: &Env, id: &str, dir: &Path) -> Result<Started, ProjectError> {
    e.projects
        .ensure(EnsureRequest {
            project_id: id.into(),
            package_path: dir.to_owned(),
            ..Default::default()
        })
        .await?;
    e.projects.open_project(id, &|_| {}).await?;
    e.projects.start(id, BTreeMap::new()).await
}

fn state<'a>(s: &'a [ServiceStatus], name: &str) -> &'a ServiceStatus {
    s.iter()
        .find(|x| x.name == name)
        .unwrap_or_else(|| panic!("{name} not in {s:?}"))
}

const CHAIN: &str = r#"
services:
  db:
    command: ["sh", "-c", "echo db up; sleep 0.3; touch db.ready; exec sleep 1000"]
    healthcheck:
      test: ["CMD", "test", "-f", "db.ready"]
      interval: 30s
  migrate:
    command: ["sh", "-c", "test -f db.ready && echo migrated > migrate.done"]
    depends_on:
      db: {condition: service_healthy}
  api:
    command: ["sh", "-c", "test -f migrate.done && echo api sees migration; exec sleep 1000"]
    depends_on:
      migrate: {condition: service_completed_successfully}
      db: {condition: service_healthy}
"#;

#[test]
fn chain_starts_in_order_with_health_and_completion() {
    rt().block_on(async {
        let e = env().await;
        let dir = project(&e.root, "chain", CHAIN, &[]);
        let started = up(&e, "chain", &dir).await.unwrap();
        // The healthcheck interval is 30 s, yet the start takes well under
        // that: health is probed as soon as db starts.
        assert_eq!(state(&started.services, "db").state, ServiceState::Running);
        assert_eq!(state(&started.services, "db").health, "healthy");
        assert_eq!(state(&started.services, "api").state, ServiceState::Running);
        assert_eq!(
            std::fs::read_to_string(dir.join("migrate.done")).unwrap(),
            "migrated\n"
        );
        let st = e.projects.status("chain").await.unwrap();
        assert_eq!(st.status, ProjectState::Running);
        assert_eq!(st.version, "1.0");
        // Logs: the tail of every service (api may not have printed yet
        // when the start returns).
        let want = [("db", "db up"), ("api", "api sees migration")];
        let mut lines = Vec::new();
        for _ in 0..200 {
            let feed = e.projects.logs("chain", None, None, false).await.unwrap();
            lines = feed
                .tail
                .iter()
                .map(|l| (l.service.clone(), l.line.clone()))
                .collect();
            if want
                .iter()
                .all(|(s, l)| lines.contains(&(s.to_string(), l.to_string())))
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for (s, l) in want {
            assert!(
                lines.contains(&(s.to_string(), l.to_string())),
                "{s}: {l:?} not in {lines:?}"
            );
        }
        // A second start is refused; stop, then stop again is NOT_RUNNING.
        assert_eq!(
            e.projects
                .start("chain", BTreeMap::new())
                .await
                .unwrap_err()
                .code(),
            "ALREADY_RUNNING"
        );
        let stopped = e.projects.stop("chain", None).await.unwrap();
        assert!(stopped
            .services
            .iter()
            .all(|s| s.state == ServiceState::Stopped));
        assert_eq!(
            e.projects.stop("chain", None).await.unwrap_err().code(),
            "NOT_RUNNING"
        );
        // Started again from the open project.
        e.projects.start("chain", BTreeMap::new()).await.unwrap();
        e.projects.stop("chain", None).await.unwrap();
    });
}

#[test]
fn ensure_is_idempotent_and_conflicts_elsewhere() {
    rt().block_on(async {
        let e = env().await;
        let a = project(&e.root, "a", "services:\n  x:\n    command: sleep 9\n", &[]);
        let b = project(&e.root, "b", "services:\n  x:\n    command: sleep 9\n", &[]);
        let req = |dir: &Path| EnsureRequest {
            project_id: "p1".into(),
            package_path: dir.to_owned(),
            ..Default::default()
        };
        let first = e.projects.ensure(req(&a)).await.unwrap();
        assert!(first.created);
        assert_eq!(first.namespace, "berth-p1");
        assert!(first.state_path.is_dir());
        assert!(!e.projects.ensure(req(&a)).await.unwrap().created);
        let err = e.projects.ensure(req(&b)).await.unwrap_err();
        assert_eq!(err.code(), "CONFLICT");
        assert!(err.to_string().contains("package_path"), "{err}");
        let missing = e
            .projects
            .ensure(req(&e.root.join("nope")))
            .await
            .unwrap_err();
        assert_eq!(missing.code(), "PATH_NOT_FOUND");
        std::fs::write(a.join("manifest.json"), r#"{"app_id":"x"}"#).unwrap();
        let bad = e.projects.ensure(req(&a)).await.unwrap_err();
        assert_eq!(bad.code(), "INVALID_MANIFEST");
        assert!(bad.to_string().contains("name"), "{bad}");
        assert_eq!(
            e.projects
                .open_project("nobody", &|_| {})
                .await
                .unwrap_err()
                .code(),
            "NOT_FOUND"
        );
    });
}

#[test]
fn invalid_compose_is_refused_with_the_fields() {
    rt().block_on(async {
        let e = env().await;
        let dir = project(
            &e.root,
            "bad",
            "services:\n  x:\n    command: sleep 9\n    privileged: true\n    depends_on: [ghost]\n",
            &[],
        );
        let err = e
            .projects
            .ensure(EnsureRequest {
                project_id: "bad".into(),
                package_path: dir,
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), "INVALID_MANIFEST");
        let msg = err.to_string();
        assert!(msg.contains("x.privileged"), "{msg}");
        assert!(msg.contains("ghost"), "{msg}");
    });
}

#[test]
fn missing_secret_is_named_and_secrets_reach_services() {
    rt().block_on(async {
        let e = env().await;
        let dir = project(
            &e.root,
            "sec",
            "services:\n  x:\n    command: [\"sh\", \"-c\", \"echo \\\"$API_KEY\\\" > key.out; exec sleep 1000\"]\n",
            &["API_KEY"],
        );
        let err = up(&e, "sec", &dir).await.unwrap_err();
        assert_eq!(err.code(), "MISSING_SECRET");
        assert!(err.to_string().contains("API_KEY"), "{err}");
        assert_eq!(err.details()["secrets"], "API_KEY");
        let secrets = BTreeMap::from([("API_KEY".to_string(), "s3cret".to_string())]);
        e.projects.start("sec", secrets).await.unwrap();
        let mut got = String::new();
        for _ in 0..100 {
            got = std::fs::read_to_string(dir.join("key.out")).unwrap_or_default();
            if !got.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(got, "s3cret\n");
        e.projects.stop("sec", Some(Duration::from_secs(5))).await.unwrap();
    });
}

#[test]
fn start_failure_rolls_back_and_returns_the_log() {
    rt().block_on(async {
        let e = env().await;
        let dir = project(
            &e.root,
            "fail",
            r#"
services:
  base:
    command: ["sh", "-c", "exec sleep 1000"]
  broken:
    command: ["sh", "-c", "echo cannot open config >&2; sleep 0.3; exit 3"]
    healthcheck:
      test: ["CMD", "test", "-f", "never.ready"]
    depends_on: [base]
  top:
    command: ["sleep", "1000"]
    depends_on:
      broken: {condition: service_healthy}
"#,
            &[],
        );
        let err = up(&e, "fail", &dir).await.unwrap_err();
        let ProjectError::StartFailed {
            service,
            message,
            last_lines,
        } = &err
        else {
            panic!("{err:?}")
        };
        assert_eq!(service, "broken");
        assert!(message.contains("broken"), "{message}");
        assert!(
            last_lines.iter().any(|l| l.contains("cannot open config")),
            "{last_lines:?}"
        );
        // What was started was stopped again.
        let st = e.projects.status("fail").await.unwrap();
        assert_eq!(st.status, ProjectState::Failed);
        assert_ne!(state(&st.services, "base").state, ServiceState::Running);
        assert_eq!(state(&st.services, "top").container_id, "");
    });
}

#[test]
fn stop_escalates_to_sigkill_after_the_timeout() {
    rt().block_on(async {
        let e = env().await;
        let dir = project(
            &e.root,
            "stubborn",
            "services:\n  x:\n    command: [\"sh\", \"-c\", \"trap '' TERM; touch armed; while :; do sleep 0.1; done\"]\n",
            &[],
        );
        up(&e, "stubborn", &dir).await.unwrap();
        // Stop only once the shell ignores SIGTERM.
        for _ in 0..200 {
            if dir.join("armed").exists() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert!(dir.join("armed").exists(), "the service never started");
        let stopped = e
            .projects
            .stop("stubborn", Some(Duration::from_millis(300)))
            .await
            .unwrap();
        assert_eq!(state(&stopped.services, "x").state, ServiceState::Stopped);
        let info = e.services.describe("berth-stubborn.x").unwrap();
        assert!(info.reason.contains("SIGKILL"), "{}", info.reason);
    });
}

#[test]
fn ports_are_forwarded_stable_and_conflicts_named() {
    rt().block_on(async {
        let e = env().await;
        // A requested port that something holds.
        let holder = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
        let held = holder.local_addr().unwrap().port();
        let svc_port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let compose = format!(
            "services:\n  web:\n    command: [\"python3\", \"-m\", \"http.server\", \"{svc_port}\", \"--bind\", \"127.0.0.1\"]\n    ports: [\"{svc_port}\"]\n"
        );
        let dir = project(&e.root, "web", &compose, &[]);
        let started = up(&e, "web", &dir).await.unwrap();
        let p = &started.ports[0];
        assert_eq!(p.container_port, svc_port);
        assert_ne!(p.host_port, svc_port);
        // The forwarded port reaches the service.
        let mut ok = false;
        for _ in 0..100 {
            // Async: the forwarder runs on this same thread.
            if let Ok(out) = tokio::process::Command::new("python3")
                .args([
                    "-c",
                    &format!("import urllib.request as u; print(u.urlopen('http://127.0.0.1:{}/').status)", p.host_port),
                ])
                .output()
                .await
            {
                if String::from_utf8_lossy(&out.stdout).trim() == "200" {
                    ok = true;
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(ok, "no HTTP answer through host port {}", p.host_port);
        assert_eq!(e.projects.resolve_ports("web", true).await.unwrap(), started.ports);
        e.projects.stop("web", None).await.unwrap();
        assert_eq!(
            e.projects.resolve_ports("web", false).await.unwrap_err().code(),
            "NOT_RUNNING"
        );
        let again = e.projects.start("web", BTreeMap::new()).await.unwrap();
        assert_eq!(again.ports, started.ports, "host ports are stable");
        e.projects.stop("web", None).await.unwrap();

        let dir2 = project(
            &e.root,
            "clash",
            &format!("services:\n  x:\n    command: sleep 100\n    ports: [\"{held}:9999\"]\n"),
            &[],
        );
        let err = up(&e, "clash", &dir2).await.unwrap_err();
        assert_eq!(err.code(), "PORT_CONFLICT");
        assert!(err.to_string().contains(&held.to_string()), "{err}");
        drop(holder);
    });
}

#[test]
fn a_restarted_engine_finds_the_running_project_again() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let compose = "services:\n  x:\n    command: [\"sleep\", \"1000\"]\n  y:\n    command: [\"sleep\", \"1000\"]\n    depends_on: [x]\n";
    let first_ids = rt().block_on(async {
        let e = env_at(root).await;
        let d = project(root, "keep", compose, &[]);
        let s = up(&e, "keep", &d).await.unwrap();
        // The engine goes away without stopping anything (as the daemon
        // does after `kill -9`); the processes live on.
        s.services
            .iter()
            .map(|s| s.container_id.clone())
            .collect::<Vec<_>>()
    });
    rt().block_on(async {
        let e = env_at(root).await;
        let st = e.projects.status("keep").await.unwrap();
        assert_eq!(st.status, ProjectState::Running);
        assert!(st.open);
        let ids: Vec<_> = st.services.iter().map(|s| s.container_id.clone()).collect();
        assert_eq!(ids, first_ids, "same processes, not new ones");
        assert!(st.services.iter().all(|s| s.state == ServiceState::Running));
        assert_eq!(e.services.list().len(), 2, "nothing duplicated");
        e.projects.stop("keep", None).await.unwrap();
        e.projects.delete_runtime("keep", false).await.unwrap();
    });
}

#[test]
fn delete_runtime_needs_force_while_running_and_keeps_state() {
    rt().block_on(async {
        let e = env().await;
        let dir = project(
            &e.root,
            "del",
            // A source outside the project directory is a directory of the
            // project's state.
            "services:\n  x:\n    command: [\"sh\", \"-c\", \"exec sleep 1000\"]\n    volumes: [\"../data:/data\"]\n",
            &[],
        );
        up(&e, "del", &dir).await.unwrap();
        let st = e.projects.status("del").await.unwrap();
        assert!(st.state_path.join("binds/data").is_dir());
        std::fs::write(st.state_path.join("binds/data/f"), b"12345").unwrap();
        assert!(e.projects.status("del").await.unwrap().state_size_bytes >= 5);
        assert_eq!(
            e.projects.delete_runtime("del", false).await.unwrap_err().code(),
            "STILL_RUNNING"
        );
        let d = e.projects.delete_runtime("del", true).await.unwrap();
        assert_eq!(d.resources_removed.len(), 1, "{:?}", d.resources_removed);
        assert!(e.services.list().is_empty());
        assert!(st.state_path.join("binds/data/f").is_file(), "state is kept");
        let st = e.projects.status("del").await.unwrap();
        assert!(!st.open);
        assert_eq!(
            e.projects.start("del", BTreeMap::new()).await.unwrap_err().code(),
            "NOT_OPEN"
        );
        let listed = e.projects.list(Some("stopped")).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].service_count, 1);
        assert!(e.projects.list(Some("running")).await.unwrap().is_empty());
        assert_eq!(
            e.projects.list(Some("sideways")).await.unwrap_err().code(),
            "INVALID_ARGUMENT"
        );
    });
}

#[test]
fn logs_follow_sees_new_lines() {
    rt().block_on(async {
        let e = env().await;
        let dir = project(
            &e.root,
            "talk",
            "services:\n  x:\n    command: [\"sh\", \"-c\", \"echo first; sleep 0.5; echo second >&2; exec sleep 1000\"]\n",
            &[],
        );
        up(&e, "talk", &dir).await.unwrap();
        let mut feed = e.projects.logs("talk", Some("x"), Some(10), true).await.unwrap();
        let mut seen: Vec<(LogStream, String)> =
            feed.tail.iter().map(|l| (l.stream, l.line.clone())).collect();
        let rx = feed.follow.as_mut().unwrap();
        while !seen.iter().any(|(_, l)| l == "second") {
            let l = tokio::time::timeout(Duration::from_secs(10), rx.recv())
                .await
                .expect("a followed line")
                .unwrap();
            seen.push((l.stream, l.line));
        }
        assert!(seen.contains(&(LogStream::Stdout, "first".into())), "{seen:?}");
        assert!(seen.contains(&(LogStream::Stderr, "second".into())), "{seen:?}");
        assert_eq!(
            e.projects.logs("talk", Some("nope"), None, false).await.unwrap_err().code(),
            "NOT_FOUND"
        );
        e.projects.stop("talk", None).await.unwrap();
    });
}

#[test]
fn a_file_without_images_runs_natively_when_no_runtime_was_asked_for() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let e = env_with(dir.path(), RuntimeKind::Docker).await;
        let cmds = project(
            &e.root,
            "cmds",
            "services:\n  x:\n    command: sleep 9\n",
            &[],
        );
        let ensured = e
            .projects
            .ensure(EnsureRequest {
                project_id: "cmds".into(),
                package_path: cmds,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(ensured.runtime, RuntimeKind::Native);
        // An image-only file needs the engine, which is not there.
        let imgs = project(&e.root, "imgs", "services:\n  x:\n    image: nginx\n", &[]);
        let err = e
            .projects
            .ensure(EnsureRequest {
                project_id: "imgs".into(),
                package_path: imgs,
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), "UNAVAILABLE", "{err}");
    });
}

#[test]
fn health_is_watched_after_the_start() {
    rt().block_on(async {
        let e = env().await;
        let dir = project(
            &e.root,
            "watch",
            "services:\n  x:\n    command: [\"sh\", \"-c\", \"touch alive; exec sleep 300\"]\n    healthcheck:\n      test: [\"CMD\", \"test\", \"-f\", \"alive\"]\n      interval: 200ms\n      retries: 2\n",
            &[],
        );
        up(&e, "watch", &dir).await.unwrap();
        let health = |e: &Env| {
            let p = e.projects.clone();
            async move { p.status("watch").await.unwrap().services[0].health.clone() }
        };
        assert_eq!(health(&e).await, "healthy");
        let wait_for = |want: &'static str| {
            let e = &e;
            async move {
                for _ in 0..200 {
                    if health(e).await == want {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                panic!("health never became {want}");
            }
        };
        std::fs::remove_file(dir.join("alive")).unwrap();
        wait_for("unhealthy").await;
        std::fs::write(dir.join("alive"), b"").unwrap();
        wait_for("healthy").await;
        e.projects.stop("watch", None).await.unwrap();
        assert_eq!(health(&e).await, "");
    });
}

/// The log lines of `service` in project `id` (the last 100).
async fn lines_of(e: &Env, id: &str, service: &str) -> Vec<String> {
    let feed = e
        .projects
        .logs(id, Some(service), Some(100), false)
        .await
        .unwrap();
    feed.tail.into_iter().map(|l| l.line).collect()
}

/// Waits until every service of `id` logged "ready" (their traps are set).
async fn wait_ready(e: &Env, id: &str, services: &[&str]) {
    for s in services {
        let mut ok = false;
        for _ in 0..200 {
            if lines_of(e, id, s).await.iter().any(|l| l == "ready") {
                ok = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert!(ok, "{s} never said ready");
    }
}

/// A service that ignores SIGTERM (its children too: an ignored signal
/// stays ignored across exec).
const DEAF: &str = r#"["sh", "-c", "trap '' TERM; echo ready; while true; do sleep 0.1; done"]"#;
/// A service that says which signal ended it.
const POLITE: &str = r#"["sh", "-c", "trap 'echo got-INT; exit 0' INT; trap 'echo got-TERM; exit 0' TERM; echo ready; while true; do sleep 0.1; done"]"#;

#[test]
fn stop_honours_each_services_grace_period_and_signal() {
    rt().block_on(async {
        let e = env().await;
        let dir = project(
            &e.root,
            "grace",
            &format!(
                "services:\n  deaf:\n    command: {DEAF}\n    stop_grace_period: 1s\n  \
                 named:\n    command: {POLITE}\n    stop_signal: SIGINT\n    restart: always\n  \
                 short:\n    command: {POLITE}\n    stop_signal: INT\n  \
                 number:\n    command: {POLITE}\n    stop_signal: \"2\"\n  \
                 plain:\n    command: {POLITE}\n"
            ),
            &[],
        );
        up(&e, "grace", &dir).await.unwrap();
        wait_ready(&e, "grace", &["deaf", "named", "short", "number", "plain"]).await;
        // No explicit timeout: deaf gets its own 1 s, not the default 30 s.
        let t0 = std::time::Instant::now();
        let stopped = e.projects.stop("grace", None).await.unwrap();
        let took = t0.elapsed();
        assert!(took >= Duration::from_millis(900), "{took:?}");
        assert!(took < Duration::from_secs(10), "{took:?}");
        assert!(stopped
            .services
            .iter()
            .all(|s| s.state != ServiceState::Running));
        for s in ["named", "short", "number"] {
            let lines = lines_of(&e, "grace", s).await;
            assert!(lines.contains(&"got-INT".to_string()), "{s}: {lines:?}");
            assert!(!lines.contains(&"got-TERM".to_string()), "{s}: {lines:?}");
        }
        let plain = lines_of(&e, "grace", "plain").await;
        assert!(plain.contains(&"got-TERM".to_string()), "{plain:?}");
        // The exit its own stop signal caused did not restart `named`.
        tokio::time::sleep(Duration::from_millis(400)).await;
        let named = lines_of(&e, "grace", "named").await;
        assert_eq!(
            named.iter().filter(|l| *l == "ready").count(),
            1,
            "{named:?}"
        );
        let info = e.services.describe("berth-grace.named").unwrap();
        assert!(!info.status.is_up(), "{info:?}");
    });
}

#[test]
fn an_explicit_stop_timeout_wins_over_the_grace_period() {
    rt().block_on(async {
        let e = env().await;
        let dir = project(
            &e.root,
            "explicit",
            &format!("services:\n  deaf:\n    command: {DEAF}\n    stop_grace_period: 1m\n"),
            &[],
        );
        up(&e, "explicit", &dir).await.unwrap();
        wait_ready(&e, "explicit", &["deaf"]).await;
        let t0 = std::time::Instant::now();
        e.projects
            .stop("explicit", Some(Duration::from_secs(1)))
            .await
            .unwrap();
        let took = t0.elapsed();
        assert!(took >= Duration::from_millis(900), "{took:?}");
        assert!(took < Duration::from_secs(10), "{took:?}");
    });
}

#[test]
fn a_bad_stop_signal_fails_open_naming_it() {
    rt().block_on(async {
        let e = env().await;
        let dir = project(
            &e.root,
            "badsig",
            &format!("services:\n  x:\n    command: {POLITE}\n    stop_signal: SIGNOPE\n"),
            &[],
        );
        let err = up(&e, "badsig", &dir).await.unwrap_err();
        assert!(err.to_string().contains("SIGNOPE"), "{err}");
    });
}

/// On native a bind inside the project is the project's own path: the
/// service, which runs in the project directory, reads and writes it there
/// (a missing source is made, as Compose makes it); nothing is put under
/// state_path for it.
#[test]
fn native_binds_inside_the_project_are_its_own_paths() {
    rt().block_on(async {
        let e = env().await;
        let dir = project(
            &e.root,
            "nbind",
            "services:\n  x:\n    command: [\"sh\", \"-c\", \"cat app.conf; echo written > out/f; exec sleep 1000\"]\n    \
             volumes: [\"./app.conf:/etc/app.conf:ro\", \"./out:/out\"]\n",
            &[],
        );
        std::fs::write(dir.join("app.conf"), "conf-from-project\n").unwrap();
        up(&e, "nbind", &dir).await.unwrap();
        let mut lines = Vec::new();
        for _ in 0..200 {
            lines = lines_of(&e, "nbind", "x").await;
            if dir.join("out/f").is_file() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert_eq!(std::fs::read_to_string(dir.join("out/f")).unwrap(), "written\n");
        assert!(lines.contains(&"conf-from-project".to_string()), "{lines:?}");
        let st = e.projects.status("nbind").await.unwrap();
        assert!(!st.state_path.join("binds").exists());
        e.projects.stop("nbind", None).await.unwrap();
    });
}

/// A bind source that leads out of the project through a symlink is
/// refused, naming it, also when the part past the link does not exist
/// (berth would otherwise make that directory outside the project).
#[test]
fn a_bind_through_a_symlink_out_of_the_project_is_refused() {
    rt().block_on(async {
        let e = env().await;
        let outside = e.root.join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        for (id, source) in [("link1", "./escape"), ("link2", "./escape/new")] {
            let dir = project(
                &e.root,
                id,
                &format!(
                    "services:\n  x:\n    command: [\"sleep\", \"1000\"]\n    volumes: [\"{source}:/x\"]\n"
                ),
                &[],
            );
            std::os::unix::fs::symlink(&outside, dir.join("escape")).unwrap();
            let err = up(&e, id, &dir).await.unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains(source), "{msg}");
            assert!(msg.contains("outside the project directory"), "{msg}");
        }
        assert!(!outside.join("new").exists());
    });
}

/// Issue 17: a second `up` with nothing changed leaves a running service
/// with a published port alone (its forwarder is kept, not re-opened).
#[test]
fn a_second_up_keeps_a_service_with_a_forwarded_port() {
    rt().block_on(async {
        let e = env().await;
        let dir = project(
            &e.root,
            "p2",
            "services:\n  s:\n    command: [\"sleep\", \"1000\"]\n    ports: [\"9999\"]\n",
            &[],
        );
        let first = up(&e, "p2", &dir).await.unwrap();
        let pid = e.services.describe("berth-p2.s").unwrap().pid;
        for _ in 0..2 {
            let again = e
                .projects
                .start_services("p2", BTreeMap::new(), &[], true)
                .await
                .unwrap();
            assert_eq!(again.ports, first.ports);
            assert_eq!(state(&again.services, "s").state, ServiceState::Running);
        }
        let info = e.services.describe("berth-p2.s").unwrap();
        assert_eq!(info.pid, pid, "the service was not restarted");
        // The host port still answers.
        let host = first.ports[0].host_port;
        assert!(std::net::TcpStream::connect(("127.0.0.1", host)).is_ok());
        e.projects.stop("p2", None).await.unwrap();
    });
}

/// Issue 19: `env_file` values get what `berth config` shows: the default
/// format interpolates with the project's variables (its `.env`), `format:
/// raw` does not.
#[test]
fn env_file_values_are_interpolated_as_config_shows_them() {
    rt().block_on(async {
        let e = env().await;
        let dir = project(
            &e.root,
            "envf",
            "services:\n  s:\n    command: [\"sh\", \"-c\", \"printf '%s|%s' \\\"$$W\\\" \\\"$$R\\\" > out.txt; exec sleep 100\"]\n    env_file:\n      - w.env\n      - {path: r.env, format: raw}\n",
            &[],
        );
        std::fs::write(dir.join(".env"), "X=dotenv\n").unwrap();
        std::fs::write(dir.join("w.env"), "W=raw${X}\n").unwrap();
        std::fs::write(dir.join("r.env"), "R=raw${X}\n").unwrap();
        let expected = {
            let opts = berth_compose::Options {
                project_dir: Some(dir.clone()),
                ..Default::default()
            };
            let p = berth_compose::load(&berth_compose::RealFiles, &opts).unwrap();
            let tree = berth_compose::config::canonical(&p, &berth_compose::RealFiles).unwrap();
            let env = tree.get("services").unwrap().get("s").unwrap().get("environment").unwrap();
            format!(
                "{}|{}",
                env.get("W").unwrap().scalar_text().unwrap(),
                env.get("R").unwrap().scalar_text().unwrap()
            )
        };
        assert_eq!(expected, "rawdotenv|raw${X}");
        up(&e, "envf", &dir).await.unwrap();
        let out = dir.join("out.txt");
        let mut got = String::new();
        for _ in 0..200 {
            if let Ok(t) = std::fs::read_to_string(&out) {
                if t.contains('|') {
                    got = t;
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert_eq!(got, expected);
        e.projects.stop("envf", None).await.unwrap();
    });
}
