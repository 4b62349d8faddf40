//! Compose projects end to end, through a real daemon's project API, on
//! both runtimes: native (always) and Docker (a real engine at
//! `DOCKER_HOST`, with the image `berth-test/busybox:latest` that
//! `.ci/docker-up` imports). Each scenario is one test per runtime
//! (`NAME::native`, `NAME::docker`); the Docker ones are `#[ignore]`d with
//! the reason, so a plain `cargo test` counts them as not run, and
//! `cargo test -- --include-ignored` (as `.ci/run` does) runs them, failing
//! when the engine is missing.

mod common;

use berth_client::project::{self, pb, SupervisorClient};
use common::docker::{require_docker, IMAGE};
use common::*;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tonic::transport::Channel;

#[derive(Clone, Copy, PartialEq, Debug)]
enum Rt {
    Native,
    Docker,
}

impl Rt {
    fn name(self) -> &'static str {
        match self {
            Rt::Native => "native",
            Rt::Docker => "docker",
        }
    }

    /// Lines that put a service on this runtime: the image on Docker
    /// (native services run their command on the host).
    fn image(self) -> String {
        match self {
            Rt::Native => String::new(),
            Rt::Docker => format!("    image: {IMAGE}\n"),
        }
    }

    /// `busybox` applets: on the host through the busybox binary, in the
    /// image as plain commands.
    fn bb(self) -> &'static str {
        match self {
            Rt::Native => "busybox ",
            Rt::Docker => "",
        }
    }
}

/// A test of the host's busybox (CI installs `busybox-static`) has it, or
/// fails saying so.
fn require_busybox() {
    let ok = std::process::Command::new("busybox")
        .arg("true")
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "needs busybox on the host (apt install busybox-static)");
}

/// One test per runtime for scenario `$name(rt)`: `$name::native` runs by
/// default (or is ignored with `$native_needs`), `$name::docker` is
/// ignored unless asked for (`--include-ignored`).
macro_rules! on_both_runtimes {
    ($name:ident) => {
        mod $name {
            #[test]
            fn native() {
                super::$name(super::Rt::Native)
            }
            #[test]
            #[ignore = "needs a Docker Engine: see README"]
            fn docker() {
                super::require_docker();
                super::$name(super::Rt::Docker)
            }
        }
    };
    ($name:ident, native_needs_busybox) => {
        mod $name {
            #[test]
            #[ignore = "needs busybox on the host: see README"]
            fn native() {
                super::require_busybox();
                super::$name(super::Rt::Native)
            }
            #[test]
            #[ignore = "needs a Docker Engine: see README"]
            fn docker() {
                super::require_docker();
                super::$name(super::Rt::Docker)
            }
        }
    };
}

fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

type Client = SupervisorClient<Channel>;

/// A project directory with a manifest.
fn write_project(root: &Path, id: &str, compose: &str, secrets: &[&str]) -> PathBuf {
    let dir = root.join(id);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("compose.yaml"), compose).unwrap();
    let secrets: Vec<String> = secrets.iter().map(|s| format!("{s:?}")).collect();
    std::fs::write(
        dir.join("manifest.json"),
        format!(
            r#"{{"app_id":"dev.test.{id}","name":"{id}","version":"2.0","secrets":[{}]}}"#,
            secrets.join(",")
        ),
    )
    .unwrap();
    dir
}

async fn ensure_open(c: &mut Client, id: &str, dir: &Path, rt: Rt) {
    c.ensure_project(pb::EnsureProjectRequest {
        project_id: id.into(),
        package_path: dir.to_string_lossy().into_owned(),
        runtime: rt.name().into(),
        ..Default::default()
    })
    .await
    .unwrap();
    c.open_project(pb::OpenProjectRequest {
        project_id: id.into(),
        ..Default::default()
    })
    .await
    .unwrap();
}

async fn start(
    c: &mut Client,
    id: &str,
    secrets: &[(&str, &str)],
) -> Result<pb::StartProjectResponse, tonic::Status> {
    c.start_project(pb::StartProjectRequest {
        project_id: id.into(),
        secrets: secrets
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Default::default()
    })
    .await
    .map(|r| r.into_inner())
}

async fn teardown(c: &mut Client, id: &str) {
    let _ = c
        .delete_project_runtime(pb::DeleteProjectRuntimeRequest {
            project_id: id.into(),
            force: true,
            ..Default::default()
        })
        .await;
}

async fn log_lines(c: &mut Client, id: &str, service: Option<&str>) -> Vec<(String, String)> {
    let mut s = c
        .get_project_logs(pb::GetProjectLogsRequest {
            project_id: id.into(),
            service_name: service.map(str::to_owned),
            follow: false,
            tail_lines: Some(200),
        })
        .await
        .unwrap()
        .into_inner();
    let mut out = Vec::new();
    while let Some(b) = s.message().await.unwrap() {
        out.extend(b.entries.into_iter().map(|e| (e.service_name, e.line)));
    }
    out
}

/// Whether `line` shows up in the logs (of `service`) within 10 s.
async fn logged(c: &mut Client, id: &str, service: Option<&str>, line: &str) -> bool {
    for _ in 0..100 {
        if log_lines(c, id, service)
            .await
            .iter()
            .any(|(_, l)| l == line)
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

fn status_of<'a>(s: &'a [pb::ServiceStatus], name: &str) -> &'a pb::ServiceStatus {
    s.iter()
        .find(|x| x.name == name)
        .unwrap_or_else(|| panic!("{name} not in {s:?}"))
}

/// db serves HTTP only after a delay and is healthy then; api fetches from
/// db when it starts, so it only works if it started after db was healthy.
fn order_compose(rt: Rt, port: u16) -> String {
    let (img, bb) = (rt.image(), rt.bb());
    let (listen, url) = match rt {
        Rt::Native => (
            format!("127.0.0.1:{port}"),
            format!("http://127.0.0.1:{port}/"),
        ),
        Rt::Docker => ("80".to_string(), "http://db/".to_string()),
    };
    let local = match rt {
        Rt::Native => url.clone(),
        Rt::Docker => "http://127.0.0.1/".to_string(),
    };
    format!(
        r#"services:
  db:
{img}    command: ["sh", "-c", "sleep 0.7; mkdir -p www; echo db-content > www/index.html; exec {bb}httpd -f -p {listen} -h www"]
    healthcheck:
      test: ["CMD-SHELL", "{bb}wget -q -O /dev/null {local}"]
      interval: 30s
      retries: 3
  api:
{img}    command: ["sh", "-c", "{bb}wget -q -O- {url} && echo api saw db; exec sleep 300"]
    depends_on:
      db:
        condition: service_healthy
"#
    )
}

fn dependency_order_waits_for_health_on_both_runtimes(rt: Rt) {
    let d = Daemon::start();
    {
        // Natively the services are the host's busybox httpd and wget.
        tokio_rt().block_on(async {
            let mut c = project::connect(&d.project_socket).await.unwrap();
            let id = format!("order-{}", rt.name());
            let dir = write_project(d.dir.path(), &id, &order_compose(rt, free_port()), &[]);
            ensure_open(&mut c, &id, &dir, rt).await;
            let started = start(&mut c, &id, &[]).await.unwrap();
            let db = status_of(&started.services, "db");
            assert_eq!(db.status, "running", "{rt:?}");
            assert_eq!(db.health, "healthy", "{rt:?}");
            assert!(
                !db.started_at.is_empty() && db.started_at.ends_with('Z'),
                "{db:?}"
            );
            assert!(
                logged(&mut c, &id, Some("api"), "api saw db").await,
                "{rt:?}: api started before db served"
            );
            let st = c
                .get_project_status(pb::GetProjectStatusRequest {
                    project_id: id.clone(),
                })
                .await
                .unwrap()
                .into_inner();
            assert_eq!(st.status, "running");
            assert_eq!(st.version, "2.0");
            assert_eq!(st.runtime, rt.name());
            let listed = c
                .list_projects(pb::ListProjectsRequest {
                    filter_status: Some("running".into()),
                })
                .await
                .unwrap()
                .into_inner()
                .projects;
            assert!(listed
                .iter()
                .any(|p| p.project_id == id && p.service_count == 2));
            let stopped = c
                .stop_project(pb::StopProjectRequest {
                    project_id: id.clone(),
                    timeout_seconds: Some(5),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner();
            assert!(
                stopped.services.iter().all(|s| s.status == "stopped"),
                "{stopped:?}"
            );
            teardown(&mut c, &id).await;
        });
    }
}
on_both_runtimes!(
    dependency_order_waits_for_health_on_both_runtimes,
    native_needs_busybox
);

fn missing_secret_and_port_conflict_are_named(rt: Rt) {
    let d = Daemon::start();
    {
        tokio_rt().block_on(async {
            let mut c = project::connect(&d.project_socket).await.unwrap();
            let img = rt.image();
            let id = format!("secret-{}", rt.name());
            let compose = format!(
                "services:\n  x:\n{img}    command: [\"sh\", \"-c\", \"echo key=$$API_KEY; exec sleep 300\"]\n"
            );
            let dir = write_project(d.dir.path(), &id, &compose, &["API_KEY"]);
            ensure_open(&mut c, &id, &dir, rt).await;
            let err = start(&mut c, &id, &[]).await.unwrap_err();
            assert_eq!(err.code(), tonic::Code::InvalidArgument);
            assert_eq!(project::error_code(&err), Some("MISSING_SECRET"));
            assert!(err.message().contains("API_KEY"), "{err:?}");
            start(&mut c, &id, &[("API_KEY", "k1")]).await.unwrap();
            assert!(
                logged(&mut c, &id, None, "key=k1").await,
                "{rt:?}: the secret did not reach the service"
            );
            teardown(&mut c, &id).await;

            let holder = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
            let held = holder.local_addr().unwrap().port();
            let id = format!("clash-{}", rt.name());
            let compose = format!(
                "services:\n  web:\n{img}    command: [\"sleep\", \"300\"]\n    ports: [\"{held}:8080\"]\n"
            );
            let dir = write_project(d.dir.path(), &id, &compose, &[]);
            ensure_open(&mut c, &id, &dir, rt).await;
            let err = start(&mut c, &id, &[]).await.unwrap_err();
            assert_eq!(project::error_code(&err), Some("PORT_CONFLICT"), "{err:?}");
            assert!(err.message().contains(&held.to_string()), "{err:?}");
            assert_eq!(project::error_detail(&err, "host_port"), Some(held.to_string()));
            drop(holder);
            teardown(&mut c, &id).await;
        });
    }
}
on_both_runtimes!(missing_secret_and_port_conflict_are_named);

fn a_failed_start_rolls_back_and_reports_the_log(rt: Rt) {
    let d = Daemon::start();
    {
        tokio_rt().block_on(async {
            let mut c = project::connect(&d.project_socket).await.unwrap();
            let img = rt.image();
            let id = format!("fail-{}", rt.name());
            let compose = format!(
                r#"services:
  base:
{img}    command: ["sleep", "300"]
  broken:
{img}    command: ["sh", "-c", "echo cannot read config.toml >&2; sleep 0.5; exit 3"]
    healthcheck:
      test: ["CMD", "test", "-f", "never"]
    depends_on: [base]
  top:
{img}    command: ["sleep", "300"]
    depends_on:
      broken:
        condition: service_healthy
"#
            );
            let dir = write_project(d.dir.path(), &id, &compose, &[]);
            ensure_open(&mut c, &id, &dir, rt).await;
            let err = start(&mut c, &id, &[]).await.unwrap_err();
            assert_eq!(err.code(), tonic::Code::Aborted, "{err:?}");
            assert_eq!(project::error_code(&err), Some("START_FAILED"));
            assert_eq!(
                project::error_detail(&err, "service").as_deref(),
                Some("broken")
            );
            let lines = project::error_detail(&err, "last_log_lines").unwrap_or_default();
            assert!(
                lines.contains("cannot read config.toml"),
                "{rt:?}: {lines:?}"
            );
            let st = c
                .get_project_status(pb::GetProjectStatusRequest {
                    project_id: id.clone(),
                })
                .await
                .unwrap()
                .into_inner();
            assert_eq!(st.status, "failed");
            assert_ne!(
                status_of(&st.services, "base").status,
                "running",
                "rolled back"
            );
            assert_eq!(
                status_of(&st.services, "top").container_id,
                "",
                "never created"
            );
            teardown(&mut c, &id).await;
        });
    }
}
on_both_runtimes!(a_failed_start_rolls_back_and_reports_the_log);

fn stop_escalates_to_kill_after_the_timeout(rt: Rt) {
    let d = Daemon::start();
    {
        tokio_rt().block_on(async {
            let mut c = project::connect(&d.project_socket).await.unwrap();
            let img = rt.image();
            let id = format!("stubborn-{}", rt.name());
            let compose = format!(
                "services:\n  x:\n{img}    command: [\"sh\", \"-c\", \"trap '' TERM; echo armed; while :; do sleep 0.1; done\"]\n  quick:\n{img}    command: [\"sleep\", \"300\"]\n"
            );
            let dir = write_project(d.dir.path(), &id, &compose, &[]);
            ensure_open(&mut c, &id, &dir, rt).await;
            start(&mut c, &id, &[]).await.unwrap();
            // Stop only once the shell ignores SIGTERM.
            assert!(
                logged(&mut c, &id, Some("x"), "armed").await,
                "{rt:?}: x never started"
            );
            let stopped = c
                .stop_project(pb::StopProjectRequest {
                    project_id: id.clone(),
                    timeout_seconds: Some(1),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner();
            for s in &stopped.services {
                assert_eq!(s.status, "stopped", "{rt:?}: {s:?}");
            }
            // x outlived SIGTERM and was killed: SIGKILL's status (137 in
            // a container, -9 for a native process); quick ended on TERM.
            let x = status_of(&stopped.services, "x");
            assert!(
                x.detail.contains("137") || x.detail.contains("-9"),
                "{rt:?}: {x:?}"
            );
            let quick = status_of(&stopped.services, "quick");
            assert!(!quick.detail.contains("137") && !quick.detail.contains("-9"), "{rt:?}: {quick:?}");
            // A second stop has nothing to do.
            let again = c
                .stop_project(pb::StopProjectRequest {
                    project_id: id.clone(),
                    timeout_seconds: None,
                    ..Default::default()
                })
                .await
                .unwrap_err();
            assert_eq!(project::error_code(&again), Some("NOT_RUNNING"));
            teardown(&mut c, &id).await;
        });
    }
}

/// Ids of what runs the project, as the runtime names them.
async fn container_ids(c: &mut Client, id: &str) -> Vec<String> {
    c.get_project_status(pb::GetProjectStatusRequest {
        project_id: id.into(),
    })
    .await
    .unwrap()
    .into_inner()
    .services
    .into_iter()
    .map(|s| s.container_id)
    .collect()
}
on_both_runtimes!(stop_escalates_to_kill_after_the_timeout);

fn a_restarted_daemon_finds_running_projects_again(rt: Rt) {
    let mut d = Daemon::start();
    let rts = vec![rt];
    let mut before: HashMap<String, Vec<String>> = HashMap::new();
    for &rt in &rts {
        tokio_rt().block_on(async {
            let mut c = project::connect(&d.project_socket).await.unwrap();
            let img = rt.image();
            let id = format!("survive-{}", rt.name());
            let compose = format!(
                "services:\n  a:\n{img}    command: [\"sleep\", \"300\"]\n    ports: [\"8080\"]\n  b:\n{img}    command: [\"sleep\", \"300\"]\n    depends_on: [a]\n"
            );
            let dir = write_project(d.dir.path(), &id, &compose, &[]);
            ensure_open(&mut c, &id, &dir, rt).await;
            start(&mut c, &id, &[]).await.unwrap();
            before.insert(id.clone(), container_ids(&mut c, &id).await);
        });
    }
    // A crash leaves the projects running and the next daemon takes them
    // back; a graceful stop stops them, as it stops services (one rule,
    // README "Services"), and `up` starts them again.
    for graceful in [false, true] {
        if graceful {
            let out = d.berth(&["daemon", "stop"]);
            assert!(out.status.success(), "{}", stderr(&out));
            assert!(d.wait_exit(Duration::from_secs(20)), "daemon did not stop");
        } else {
            d.kill9();
        }
        d.spawn(&[]);
        for &rt in &rts {
            tokio_rt().block_on(async {
                let mut c = project::connect(&d.project_socket).await.unwrap();
                let id = format!("survive-{}", rt.name());
                let how = if graceful {
                    "graceful restart"
                } else {
                    "kill -9"
                };
                let st = c
                    .get_project_status(pb::GetProjectStatusRequest {
                        project_id: id.clone(),
                    })
                    .await
                    .unwrap()
                    .into_inner();
                if graceful {
                    assert_eq!(st.status, "stopped", "{rt:?} after {how}: {st:?}");
                    assert!(
                        st.services.iter().all(|s| s.status == "stopped"),
                        "{how}: {st:?}"
                    );
                    teardown(&mut c, &id).await;
                    return;
                }
                assert_eq!(st.status, "running", "{rt:?} after {how}: {st:?}");
                assert!(st.open);
                assert!(
                    st.services.iter().all(|s| s.status == "running"),
                    "{how}: {st:?}"
                );
                assert_eq!(
                    container_ids(&mut c, &id).await,
                    before[&id],
                    "{rt:?} after {how}: not duplicated"
                );
                // Starting again is refused rather than duplicating.
                let err = start(&mut c, &id, &[]).await.unwrap_err();
                assert_eq!(project::error_code(&err), Some("ALREADY_RUNNING"));
                let ports = c
                    .resolve_ports(pb::ResolvePortsRequest {
                        project_id: id.clone(),
                        refresh: true,
                    })
                    .await
                    .unwrap()
                    .into_inner()
                    .ports;
                assert_eq!(ports.len(), 1);
                // The host port is served again after the restart.
                let port = ports[0].host_port as u16;
                assert!(
                    tokio::net::TcpStream::connect(("127.0.0.1", port))
                        .await
                        .is_ok(),
                    "{rt:?}: host port {port} not served after {how}"
                );
            });
        }
    }
    if rts.contains(&Rt::Native) {
        let out = d.berth(&["svc", "ls"]);
        assert!(!stdout(&out).contains("survive-native"), "{}", stdout(&out));
    }
}
on_both_runtimes!(a_restarted_daemon_finds_running_projects_again);

#[test]
fn invalid_compose_gets_a_clear_report_and_is_not_registered() {
    let d = Daemon::start();
    tokio_rt().block_on(async {
        let mut c = project::connect(&d.project_socket).await.unwrap();
        let compose = "services:\n  web:\n    command: [\"sleep\", \"1\"]\n    privileged: true\n    depends_on: [ghost]\n";
        let r = c
            .validate_compose(pb::ValidateComposeRequest {
                compose_content: compose.into(),
                runtime: "native".into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(!r.valid);
        let rejected: Vec<_> = r.rejected_fields.iter().map(|n| n.path.as_str()).collect();
        assert!(rejected.contains(&"web.privileged"), "{rejected:?}");
        assert!(rejected.contains(&"web.depends_on.ghost"), "{rejected:?}");
        let dir = write_project(d.dir.path(), "bad", compose, &[]);
        let err = c
            .ensure_project(pb::EnsureProjectRequest {
                project_id: "bad".into(),
                package_path: dir.to_string_lossy().into_owned(),
                runtime: "native".into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(project::error_code(&err), Some("INVALID_MANIFEST"));
        assert!(err.message().contains("web.privileged"), "{err:?}");
        let list = c
            .list_projects(pb::ListProjectsRequest::default())
            .await
            .unwrap()
            .into_inner()
            .projects;
        assert!(list.is_empty());
    });
}

#[test]
fn cli_up_runs_the_example_and_down_removes_it() {
    let d = Daemon::start();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/notes");
    // A copy, so the example directory stays clean.
    let dir = d.dir.path().join("notes");
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["compose.yaml", "manifest.json"] {
        std::fs::copy(example.join(f), dir.join(f)).unwrap();
    }
    let out = d.berth(&["up", dir.to_str().unwrap(), "--runtime", "native"]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    for s in ["build", "web", "clock"] {
        assert!(text.contains(s), "{text}");
    }
    let url = text
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {text}"))
        .to_string();
    let body = std::process::Command::new("python3")
        .args([
            "-c",
            &format!("import urllib.request as u; print(u.urlopen('{url}/').read().decode())"),
        ])
        .output()
        .unwrap();
    assert!(
        stdout(&body).contains("berth notes"),
        "{url}: {}{}",
        stdout(&body),
        stderr(&body)
    );
    // The page shows the clock and the notes: it fetches clock.txt, which
    // the clock service keeps writing, and notes.txt.
    assert!(
        stdout(&body).contains("show(\"clock.txt\"")
            && stdout(&body).contains("show(\"notes.txt\""),
        "{}",
        stdout(&body)
    );
    let fetch = |file: &str| {
        let o = std::process::Command::new("python3")
            .args([
                "-c",
                &format!(
                    "import urllib.request as u; print(u.urlopen('{url}/{file}').read().decode())"
                ),
            ])
            .output()
            .unwrap();
        stdout(&o)
    };
    assert!(
        wait_for(Duration::from_secs(10), || fetch("clock.txt")
            .ends_with("Z\n\n")),
        "clock.txt: {:?}",
        fetch("clock.txt")
    );
    // Issue 11: what the example writes lives under its state_path (the
    // project directory stays as it was), so a snapshot holds the notes
    // and a restore brings them back, served again by the restarted web.
    assert!(!dir.join("site").exists());
    let st = d.berth(&["project", "status", "notes", "--json"]);
    let st: serde_json::Value = serde_json::from_str(&stdout(&st)).unwrap();
    let notes = Path::new(st["state_path"].as_str().unwrap()).join("site/notes.txt");
    let first = std::fs::read_to_string(&notes).unwrap();
    assert!(first.starts_with("first note"), "{first}");
    assert_eq!(fetch("notes.txt"), format!("{first}\n"));
    let out = d.berth(&["snapshot", "save", "notes", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let saved: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(
        saved["size_bytes"].as_u64().unwrap() > first.len() as u64,
        "{saved}"
    );
    std::fs::write(&notes, "overwritten\n").unwrap();
    assert_eq!(fetch("notes.txt"), "overwritten\n\n");
    let snap = saved["snapshot_id"].as_str().unwrap();
    let out = d.berth(&["snapshot", "restore", "notes", snap]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&notes).unwrap(), first);
    assert!(
        wait_for(Duration::from_secs(10), || fetch("notes.txt")
            == format!("{first}\n")),
        "notes.txt after restore: {:?}",
        fetch("notes.txt")
    );
    let out = d.berth(&["projects"]);
    assert!(
        stdout(&out).contains("notes") && stdout(&out).contains("running"),
        "{}",
        stdout(&out)
    );
    let out = d.berth(&["project", "logs", "notes", "--service", "build"]);
    assert!(stdout(&out).contains("site built"), "{}", stdout(&out));
    let out = d.berth(&["down", "notes"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("removed"), "{}", stdout(&out));
    let out = d.berth(&["projects", "--status", "running"]);
    assert!(!stdout(&out).contains("notes"), "{}", stdout(&out));
    let out = d.berth(&[
        "validate",
        example.join("compose.yaml").to_str().unwrap(),
        "--runtime",
        "native",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("valid"), "{}", stdout(&out));
}

/// A loopback registry serving one image (see `registry.py`); killed on drop.
struct Registry {
    child: std::process::Child,
    port: u16,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn registry(dir: &Path, repo: &str, tag: &str) -> Registry {
    let saved = dir.join("saved.tar");
    let out = std::process::Command::new("docker")
        .args(["save", IMAGE, "-o", saved.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "docker save: {}", stderr(&out));
    let port_file = dir.join("registry.port");
    let child = std::process::Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/registry.py"))
        .args([
            saved.to_str().unwrap(),
            repo,
            tag,
            port_file.to_str().unwrap(),
        ])
        .spawn()
        .unwrap();
    assert!(
        wait_for(Duration::from_secs(30), || port_file.exists()),
        "the test registry did not start"
    );
    let port = std::fs::read_to_string(&port_file)
        .unwrap()
        .parse()
        .unwrap();
    Registry { child, port }
}

#[test]
#[ignore = "needs a Docker Engine: see README"]
fn images_are_pulled_with_progress_and_a_missing_one_fails_by_name() {
    require_docker();
    let d = Daemon::start();
    let reg = registry(d.dir.path(), "berth/pulltest", "1");
    let image = format!("127.0.0.1:{}/berth/pulltest:1", reg.port);
    tokio_rt().block_on(async {
        let mut c = project::connect(&d.project_socket).await.unwrap();
        let compose =
            format!("services:\n  x:\n    image: {image}\n    command: [\"sleep\", \"300\"]\n");
        let dir = write_project(d.dir.path(), "pull", &compose, &[]);
        c.ensure_project(pb::EnsureProjectRequest {
            project_id: "pull".into(),
            package_path: dir.to_string_lossy().into_owned(),
            runtime: "docker".into(),
            ..Default::default()
        })
        .await
        .unwrap();
        let mut events = c
            .open_project_with_progress(pb::OpenProjectRequest {
                project_id: "pull".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let (mut statuses, mut done) = (Vec::new(), None);
        while let Some(ev) = events.message().await.unwrap() {
            match ev.event {
                Some(pb::open_project_progress::Event::Image(i)) => {
                    assert_eq!(i.image, image);
                    statuses.push(i.status);
                }
                Some(pb::open_project_progress::Event::Done(r)) => done = Some(r),
                _ => {}
            }
        }
        let done = done.expect("the stream ends with the OpenProject answer");
        assert_eq!(done.images_pulled, 1, "{statuses:?}");
        assert!(statuses.len() > 1, "progress was reported: {statuses:?}");
        let started = start(&mut c, "pull", &[]).await.unwrap();
        assert_eq!(started.services[0].status, "running");
        teardown(&mut c, "pull").await;
    });
    let _ = std::process::Command::new("docker")
        .args(["image", "rm", &image])
        .output();
    // Through the CLI: a missing image is IMAGE_PULL_FAILED (shown with
    // -v), naming it.
    let missing = format!("127.0.0.1:{}/berth/missing:1", reg.port);
    let dir = write_project(
        d.dir.path(),
        "nopull",
        &format!("services:\n  x:\n    image: {missing}\n"),
        &[],
    );
    let out = d.berth(&["-v", "up", dir.to_str().unwrap(), "--runtime", "docker"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("IMAGE_PULL_FAILED") && err.contains(&missing),
        "{err}"
    );
}

/// `berth down` gives each service its own `stop_grace_period` (a service
/// ignoring SIGTERM with 1 s is killed after about 1 s, not 30) and sends
/// its `stop_signal` (SIGINT, however it is written).
fn down_honours_stop_grace_period_and_stop_signal(rt: Rt) {
    let d = Daemon::start();
    {
        tokio_rt().block_on(async {
            let mut c = project::connect(&d.project_socket).await.unwrap();
            let img = rt.image();
            let id = format!("grace-{}", rt.name());
            let polite = "trap 'echo got-INT; exit 0' INT; trap 'echo got-TERM; exit 0' TERM; echo ready; while :; do sleep 0.1; done";
            let compose = format!(
                "services:\n  deaf:\n{img}    command: [\"sh\", \"-c\", \"trap '' TERM; echo ready; while :; do sleep 0.1; done\"]\n    stop_grace_period: 1s\n  \
                 named:\n{img}    command: [\"sh\", \"-c\", \"{polite}\"]\n    stop_signal: SIGINT\n  \
                 short:\n{img}    command: [\"sh\", \"-c\", \"{polite}\"]\n    stop_signal: INT\n  \
                 plain:\n{img}    command: [\"sh\", \"-c\", \"{polite}\"]\n"
            );
            let dir = write_project(d.dir.path(), &id, &compose, &[]);
            ensure_open(&mut c, &id, &dir, rt).await;
            start(&mut c, &id, &[]).await.unwrap();
            for s in ["deaf", "named", "short", "plain"] {
                assert!(
                    logged(&mut c, &id, Some(s), "ready").await,
                    "{rt:?}: {s} never started"
                );
            }
            let t0 = std::time::Instant::now();
            let out = d.berth(&["down", &id, "--keep"]);
            let took = t0.elapsed();
            assert!(out.status.success(), "{rt:?}: {}", stderr(&out));
            assert!(took >= Duration::from_millis(900), "{rt:?}: {took:?}");
            assert!(took < Duration::from_secs(15), "{rt:?}: {took:?}");
            for s in ["named", "short"] {
                assert!(
                    logged(&mut c, &id, Some(s), "got-INT").await,
                    "{rt:?}: {s}: {:?}",
                    log_lines(&mut c, &id, Some(s)).await
                );
            }
            assert!(
                logged(&mut c, &id, Some("plain"), "got-TERM").await,
                "{rt:?}: {:?}",
                log_lines(&mut c, &id, Some("plain")).await
            );
            teardown(&mut c, &id).await;
        });
    }
}

on_both_runtimes!(down_honours_stop_grace_period_and_stop_signal);

/// Relative binds are the project's own file and directory, live: on
/// Docker mounted at their targets (a file over a file the image has, a
/// directory), on native at their own paths in the project directory,
/// where the service runs.
fn relative_binds_show_the_projects_own_files(rt: Rt) {
    let d = Daemon::start();
    {
        tokio_rt().block_on(async {
            let mut c = project::connect(&d.project_socket).await.unwrap();
            let img = rt.image();
            let id = format!("binds-{}", rt.name());
            let (conf, site) = match rt {
                Rt::Docker => ("/etc/group", "/usr/share/site"),
                Rt::Native => ("./group", "./site"),
            };
            let compose = format!(
                "services:\n  box:\n{img}    command: [\"sh\", \"-c\", \"cat {conf}; while [ ! -e {site}/go ]; do sleep 0.1; done; cat {site}/index.html; exec sleep 300\"]\n    \
                 volumes: [\"./group:/etc/group:ro\", \"./site:/usr/share/site\"]\n"
            );
            let dir = write_project(d.dir.path(), &id, &compose, &[]);
            std::fs::write(dir.join("group"), "project-group:x:4242:\n").unwrap();
            std::fs::create_dir_all(dir.join("site")).unwrap();
            std::fs::write(dir.join("site/index.html"), "first\n").unwrap();
            ensure_open(&mut c, &id, &dir, rt).await;
            start(&mut c, &id, &[]).await.unwrap();
            assert!(
                logged(&mut c, &id, Some("box"), "project-group:x:4242:").await,
                "{rt:?}: {:?}",
                log_lines(&mut c, &id, Some("box")).await
            );
            // An edit on the host shows inside.
            std::fs::write(dir.join("site/index.html"), "edited\n").unwrap();
            std::fs::write(dir.join("site/go"), "").unwrap();
            assert!(
                logged(&mut c, &id, Some("box"), "edited").await,
                "{rt:?}: {:?}",
                log_lines(&mut c, &id, Some("box")).await
            );
            teardown(&mut c, &id).await;
        });
    }
}

on_both_runtimes!(relative_binds_show_the_projects_own_files);

/// A followed log keeps streaming while a `restart:` policy reruns a
/// service that prints a line and exits: each run's line arrives once.
fn a_followed_log_streams_across_restarts(rt: Rt) {
    let d = Daemon::start();
    {
        tokio_rt().block_on(async {
            let mut c = project::connect(&d.project_socket).await.unwrap();
            let img = rt.image();
            let id = format!("refollow-{}", rt.name());
            // Counts its runs in a file that survives restarts (the
            // project directory on native, the container's root on Docker).
            let compose = format!(
                "services:\n  job:\n{img}    command: [\"sh\", \"-c\", \"n=$$(cat n 2>/dev/null || echo 0); n=$$((n+1)); echo $$n > n; echo run-$$n; sleep 0.5; exit 1\"]\n    restart: always\n"
            );
            let dir = write_project(d.dir.path(), &id, &compose, &[]);
            ensure_open(&mut c, &id, &dir, rt).await;
            start(&mut c, &id, &[]).await.unwrap();
            let mut s = c
                .get_project_logs(pb::GetProjectLogsRequest {
                    project_id: id.clone(),
                    service_name: Some("job".into()),
                    follow: true,
                    tail_lines: Some(100),
                })
                .await
                .unwrap()
                .into_inner();
            let mut seen: Vec<String> = Vec::new();
            while seen.len() < 3 {
                let batch = tokio::time::timeout(Duration::from_secs(20), s.message())
                    .await
                    .unwrap_or_else(|_| panic!("{rt:?}: nothing more after {seen:?}"))
                    .unwrap()
                    .unwrap_or_else(|| panic!("{rt:?}: the follow ended after {seen:?}"));
                seen.extend(batch.entries.into_iter().map(|e| e.line));
            }
            assert_eq!(seen[..3], ["run-1", "run-2", "run-3"], "{rt:?}");
            drop(s);
            teardown(&mut c, &id).await;
        });
    }
}
on_both_runtimes!(a_followed_log_streams_across_restarts);

/// Issue 19: `berth validate` reports on the project `up` runs: with no
/// argument the current directory, its override file, `extends` from
/// another file, `-p`/`--profile`; and by default the runtime `up` would
/// use (the README's example is valid: it runs natively).
#[test]
fn validate_sees_the_resolved_project_up_runs() {
    let d = Daemon::start();
    let dir = d.dir.path().join("proj");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("compose.yaml"),
        "services:\n  b:\n    extends: {file: common.yaml, service: base}\n  p:\n    command: [\"sleep\", \"1\"]\n    profiles: [extra]\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("common.yaml"),
        "services:\n  base:\n    command: [\"sleep\", \"1\"]\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("compose.override.yaml"),
        "services:\n  o:\n    command: [\"sleep\", \"1\"]\n",
    )
    .unwrap();
    let validate = |args: &[&str]| {
        d.command(BERTH)
            .arg("validate")
            .args(args)
            .current_dir(&dir)
            .env_remove("COMPOSE_PROFILES")
            .env_remove("COMPOSE_PROJECT_NAME")
            .output()
            .unwrap()
    };
    let out = validate(&[]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).starts_with(&format!(
            "{}: valid (2 services: b, o)\n",
            dir.join("compose.yaml").display()
        )),
        "{}",
        stdout(&out)
    );
    let out = validate(&["--profile", "extra", "-p", "named", "."]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("3 services: b, p, o"),
        "{}",
        stdout(&out)
    );
    let out = validate(&["-f", "compose.yaml"]);
    assert!(stdout(&out).contains("1 service: b"), "{}", stdout(&out));
    let out = validate(&["-p", "Bad Name"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("not a valid project name"),
        "{}",
        stdout(&out)
    );

    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/notes");
    let out = d.berth(&["validate", example.to_str().unwrap()]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
}

/// Issue 19: `project restart` says it restarted, and a service that
/// cannot start is named in a sentence ("service x could not start").
#[test]
fn restart_says_restarted_and_start_failures_read_well() {
    let d = Daemon::start();
    let dir = d.dir.path().join("rs");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("compose.yaml"),
        "services:\n  s:\n    command: [\"sleep\", \"100\"]\n",
    )
    .unwrap();
    let out = d.berth(&["up", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = d.berth(&["project", "restart", "rs"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("restarted 1 service(s) of project rs"),
        "{}",
        stdout(&out)
    );
    assert!(!stdout(&out).contains("stopped"), "{}", stdout(&out));
    d.berth(&["down", "rs"]);
    let bad = d.dir.path().join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(
        bad.join("compose.yaml"),
        "services:\n  web:\n    command: [\"/nonexistent/prog\"]\n",
    )
    .unwrap();
    let out = d.berth(&["up", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(!err.contains("it could not"), "{err}");
}

/// Issue 19: `up` without `--profile` leaves running the services an
/// earlier `up --profile` started (as docker compose does); a service
/// deleted from the files is stopped.
#[test]
fn up_without_a_profile_keeps_what_an_earlier_profile_started() {
    let d = Daemon::start();
    let dir = d.dir.path().join("prof");
    std::fs::create_dir_all(&dir).unwrap();
    let write = |extra: &str| {
        std::fs::write(
            dir.join("compose.yaml"),
            format!("services:\n  a:\n    command: [\"sleep\", \"100\"]\n  p:\n    command: [\"sleep\", \"100\"]\n    profiles: [extra]\n{extra}"),
        )
        .unwrap();
    };
    write("  gone:\n    command: [\"sleep\", \"100\"]\n");
    let up = |args: &[&str]| {
        let out = d
            .command(BERTH)
            .arg("up")
            .args(args)
            .arg(&dir)
            .env_remove("COMPOSE_PROFILES")
            .env_remove("COMPOSE_PROJECT_NAME")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
        stdout(&out)
    };
    let first = up(&["--profile", "extra"]);
    assert!(first.contains("gone"), "{first}");
    let pid = |name: &str| {
        let out = d.berth(&["svc", "describe", name, "--json"]);
        let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap_or_default();
        (v["status"].clone(), v["pid"].clone())
    };
    let before = pid("berth-prof.p");
    assert!(before.1.as_u64().is_some_and(|p| p > 0), "{before:?}");
    write("");
    let second = up(&[]);
    let line = second
        .lines()
        .find(|l| l.split_whitespace().next() == Some("p"))
        .unwrap_or_else(|| panic!("p not listed: {second}"));
    assert!(line.contains("running"), "{second}");
    assert_eq!(pid("berth-prof.p"), before, "p kept running as it was");
    assert!(!second.lines().any(|l| l.starts_with("gone")), "{second}");
    d.berth(&["down", "prof"]);
}
