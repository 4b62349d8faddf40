//! The Docker runtime against a real engine (`.ci/docker-up` starts one and
//! imports `berth-test/busybox:latest`). The tests that need the engine
//! are `#[ignore]`d with that reason, so a plain `cargo test` counts them
//! as not run; `cargo test -- --include-ignored` (as `.ci/run` does) runs
//! them, and then a missing engine is a failure, never a silent pass.

use super::docker::DockerRuntime;
use super::model::{LogStream, PortMapping, Progress, Protocol};
use super::runtime::{
    MountSource, Plan, PlannedMount, PlannedService, PlannedVolume, Probe, ProjectRuntime,
    RestartPolicy, RuntimeErrorKind,
};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const IMAGE: &str = "berth-test/busybox:latest";

/// Why the engine tests are ignored by default.
const NEEDS_DOCKER: &str = "needs a Docker Engine: see README";

/// The runtime; a test that asked for it fails when no engine answers.
async fn runtime() -> DockerRuntime {
    match DockerRuntime::connect().await {
        Ok(rt) => rt,
        Err(e) => panic!("{NEEDS_DOCKER} (run .ci/docker-up and export its DOCKER_HOST): {e}"),
    }
}

/// An empty plan for project `id` with its default network.
fn plan(id: &str, state: &Path) -> Plan {
    let namespace = format!("berth-{id}");
    Plan {
        project_id: id.to_string(),
        namespace: namespace.clone(),
        project_dir: state.to_path_buf(),
        state_path: state.to_path_buf(),
        services: Vec::new(),
        layers: Vec::new(),
        networks: vec![format!("{namespace}_default")],
        volumes: Vec::new(),
    }
}

/// A busybox service running `command` on the plan's networks.
fn service(plan: &Plan, name: &str, command: &[&str]) -> PlannedService {
    PlannedService {
        name: name.to_string(),
        image: Some(IMAGE.to_string()),
        entrypoint: None,
        command: Some(command.iter().map(|s| s.to_string()).collect()),
        working_dir: None,
        env: BTreeMap::new(),
        ports: Vec::new(),
        mounts: Vec::new(),
        healthcheck: None,
        depends_on: Vec::new(),
        restart: RestartPolicy::No,
        init: false,
        stop_grace_period: None,
        stop_signal: None,
        user: None,
        networks: plan.networks.clone(),
        container_name: format!("{}-{}", plan.namespace, name),
        container: Default::default(),
    }
}

/// A host port free right now.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Polls `f` until it is true or `limit` passed.
async fn eventually(limit: Duration, mut f: impl AsyncFnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if f().await {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `GET /` on 127.0.0.1:`port`, the whole answer.
fn http_get(port: u16) -> Option<String> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    stream
        .write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    Some(answer)
}

#[tokio::test]
async fn a_silent_socket_is_unavailable_within_the_ping_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("silent.sock");
    // Accepts connections and never answers.
    let listener = tokio::net::UnixListener::bind(&socket).unwrap();
    let held = tokio::spawn(async move {
        let mut conns = Vec::new();
        while let Ok((conn, _)) = listener.accept().await {
            conns.push(conn);
        }
    });
    let path = socket.to_str().unwrap();
    let err = DockerRuntime::connect_to(path).await.unwrap_err();
    assert_eq!(err.kind, RuntimeErrorKind::Unavailable);
    assert!(err.message.contains(path), "{}", err.message);
    held.abort();
}

#[tokio::test]
#[ignore = "needs a Docker Engine: see README"]
async fn prepare_reports_present_images_and_fails_to_pull_missing_ones() {
    let rt = runtime().await;
    let state = tempfile::tempdir().unwrap();
    let mut p = plan("dt-prepare", state.path());
    p.services = vec![service(&p, "a", &["true"]), service(&p, "b", &["true"])];
    // ProgressFn is 'static: the closure owns its handle on the record.
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let pulled = rt
        .prepare(&p, &move |pr| record.lock().unwrap().push(pr))
        .await
        .unwrap();
    assert_eq!(pulled, 0);
    // One image for both services: reported once.
    assert_eq!(
        *seen.lock().unwrap(),
        vec![Progress::Image {
            image: IMAGE.into(),
            status: "present".into(),
            current: 0,
            total: 0
        }]
    );

    // A registry on a closed loopback port: the pull fails here without
    // the engine reaching for any outside registry.
    let missing = "127.0.0.1:9/berth-test/does-not-exist:1";
    p.services[1].image = Some(missing.into());
    let err = rt.prepare(&p, &|_| {}).await.unwrap_err();
    assert_eq!(err.kind, RuntimeErrorKind::ImagePull, "{err}");
    assert!(err.message.contains(missing), "{}", err.message);
}

#[tokio::test]
#[ignore = "needs a Docker Engine: see README"]
async fn two_services_reach_each_other_by_name_and_publish_a_port() {
    let rt = runtime().await;
    let state = tempfile::tempdir().unwrap();
    let mut p = plan("dt-web", state.path());
    let _ = rt.remove(&p).await;
    let www = state.path().join("volumes/www");
    p.volumes = vec![PlannedVolume {
        compose_name: "www".into(),
        name: "berth-dt-web_www".into(),
        dir: www.clone(),
    }];
    let port = free_port();
    let mut web = service(
        &p,
        "web",
        &[
            "sh",
            "-c",
            "echo hello-berth > /www/index.html && exec httpd -f -p 8080 -h /www",
        ],
    );
    web.ports = vec![PortMapping {
        service: "web".into(),
        container_port: 8080,
        host_port: port,
        protocol: Protocol::Tcp,
        host_ip: "127.0.0.1".into(),
        requested: false,
    }];
    web.mounts = vec![PlannedMount {
        source: MountSource::Volume("berth-dt-web_www".into()),
        target: "/www".into(),
        read_only: false,
    }];
    let client = service(&p, "client", &["sleep", "1000"]);
    p.services = vec![web.clone(), client.clone()];

    rt.create_resources(&p).await.unwrap();
    // Creating what exists succeeds.
    rt.create_resources(&p).await.unwrap();
    let web_id = rt.start(&p, &web).await.unwrap();
    let client_id = rt.start(&p, &client).await.unwrap();
    assert_ne!(web_id, client_id);

    // The same service started again is found, not duplicated.
    assert_eq!(rt.start(&p, &web).await.unwrap(), web_id);

    let seen = rt.inspect(&p, "web").await.unwrap().unwrap();
    assert!(seen.running);
    assert_eq!(seen.container_id, web_id);
    assert_eq!(seen.exit_code, None);
    assert!(seen.started_at.unwrap() > 1.6e9);

    // The client resolves the web service by name on the project network.
    let by_name = Probe::Shell("wget -q -O- http://web:8080/ | grep -q hello-berth".into());
    let reached = eventually(Duration::from_secs(15), async || {
        rt.probe(&p, &client, &by_name, Duration::from_secs(5))
            .await
            .unwrap()
    })
    .await;
    assert!(reached, "client never reached web:8080");
    let fails = Probe::Exec(vec!["false".into()]);
    assert!(!rt
        .probe(&p, &client, &fails, Duration::from_secs(5))
        .await
        .unwrap());
    let slow = Probe::Exec(vec!["sleep".into(), "30".into()]);
    assert!(!rt
        .probe(&p, &client, &slow, Duration::from_millis(500))
        .await
        .unwrap());

    // The published port answers on the host.
    let answer = eventually(Duration::from_secs(10), async || {
        http_get(port).is_some_and(|a| a.contains("hello-berth"))
    })
    .await;
    assert!(answer, "127.0.0.1:{port} never served the index");
    // The volume is the directory under state_path.
    assert_eq!(
        std::fs::read_to_string(www.join("index.html")).unwrap(),
        "hello-berth\n"
    );

    // A changed service replaces its container.
    let mut changed = client.clone();
    changed.env.insert("CHANGED".into(), "1".into());
    let new_id = rt.start(&p, &changed).await.unwrap();
    assert_ne!(new_id, client_id);

    let mut removed = rt.remove(&p).await.unwrap();
    removed.sort();
    assert_eq!(removed.len(), 4, "{removed:?}");
    assert!(removed[0].starts_with("container berth-dt-web-client ("));
    assert!(removed[1].starts_with("container berth-dt-web-web ("));
    assert_eq!(removed[2], "network berth-dt-web_default");
    assert_eq!(removed[3], "volume berth-dt-web_www");
    assert_eq!(rt.inspect(&p, "web").await.unwrap(), None);
    assert!(www.join("index.html").exists(), "remove deleted state");
    // Removing what is gone succeeds, with nothing to say.
    assert_eq!(rt.remove(&p).await.unwrap(), Vec::<String>::new());
}

#[tokio::test]
#[ignore = "needs a Docker Engine: see README"]
async fn stop_under_init_ends_sleep_as_pid_1() {
    let rt = runtime().await;
    let state = tempfile::tempdir().unwrap();
    let mut p = plan("dt-stop", state.path());
    let _ = rt.remove(&p).await;
    let mut sleeper = service(&p, "sleeper", &["sleep", "1000"]);
    sleeper.init = true;
    p.services = vec![sleeper.clone()];
    rt.create_resources(&p).await.unwrap();
    rt.start(&p, &sleeper).await.unwrap();
    assert!(rt.inspect(&p, "sleeper").await.unwrap().unwrap().running);

    rt.stop(&p, &sleeper, Duration::from_secs(10))
        .await
        .unwrap();
    let seen = rt.inspect(&p, "sleeper").await.unwrap().unwrap();
    assert!(!seen.running);
    assert!(seen.exit_code.is_some());
    // Stopping what is stopped, or gone, succeeds.
    rt.stop(&p, &sleeper, Duration::from_secs(10))
        .await
        .unwrap();
    rt.remove(&p).await.unwrap();
    rt.stop(&p, &sleeper, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(rt.inspect(&p, "sleeper").await.unwrap(), None);
}

#[tokio::test]
#[ignore = "needs a Docker Engine: see README"]
async fn logs_tell_streams_apart_and_follow_new_lines() {
    let rt = runtime().await;
    let state = tempfile::tempdir().unwrap();
    let mut p = plan("dt-logs", state.path());
    let _ = rt.remove(&p).await;
    let talker = service(
        &p,
        "talker",
        &[
            "sh",
            "-c",
            "echo out-1; echo err-1 >&2; while [ ! -e /tmp/go ]; do sleep 1; done; echo late-1; exec sleep 1000",
        ],
    );
    p.services = vec![talker.clone()];
    rt.create_resources(&p).await.unwrap();
    rt.start(&p, &talker).await.unwrap();
    let services = vec!["talker".to_string(), "absent".to_string()];

    let mut tail = Vec::new();
    let got_both = eventually(Duration::from_secs(10), async || {
        tail = rt.logs(&p, &services, 10, false).await.unwrap().0;
        tail.len() >= 2
    })
    .await;
    assert!(got_both, "{tail:?}");
    let out = tail.iter().find(|e| e.line == "out-1").unwrap();
    assert_eq!(out.stream, LogStream::Stdout);
    assert_eq!(out.service, "talker");
    assert!(out.timestamp > 1.6e9);
    let err = tail.iter().find(|e| e.line == "err-1").unwrap();
    assert_eq!(err.stream, LogStream::Stderr);
    let last_one = rt.logs(&p, &services, 1, false).await.unwrap().0;
    assert_eq!(last_one.len(), 1, "{last_one:?}");

    let (tail, rx) = rt.logs(&p, &services, 10, true).await.unwrap();
    assert_eq!(tail.len(), 2, "{tail:?}");
    let mut rx = rx.unwrap();
    let go = Probe::Exec(vec!["touch".into(), "/tmp/go".into()]);
    assert!(rt
        .probe(&p, &talker, &go, Duration::from_secs(5))
        .await
        .unwrap());
    let next = tokio::time::timeout(Duration::from_secs(15), rx.recv())
        .await
        .expect("no followed line")
        .expect("follow channel closed");
    assert_eq!(next.line, "late-1");
    assert_eq!(next.stream, LogStream::Stdout);
    drop(rx);
    rt.remove(&p).await.unwrap();
}

#[tokio::test]
#[ignore = "needs a Docker Engine: see README"]
async fn a_taken_host_port_is_port_taken() {
    let rt = runtime().await;
    let state = tempfile::tempdir().unwrap();
    let mut p = plan("dt-port", state.path());
    let _ = rt.remove(&p).await;
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port();
    let mut web = service(&p, "web", &["sleep", "1000"]);
    web.ports = vec![PortMapping {
        service: "web".into(),
        container_port: 80,
        host_port: port,
        protocol: Protocol::Tcp,
        host_ip: "127.0.0.1".into(),
        requested: true,
    }];
    p.services = vec![web.clone()];
    rt.create_resources(&p).await.unwrap();
    let err = rt.start(&p, &web).await.unwrap_err();
    assert_eq!(err.kind, RuntimeErrorKind::PortTaken, "{err}");
    assert!(err.message.contains("berth-dt-port-web"), "{}", err.message);
    // The failed container is not left behind.
    assert_eq!(rt.inspect(&p, "web").await.unwrap(), None);
    drop(holder);
    rt.remove(&p).await.unwrap();
}

#[tokio::test]
#[ignore = "needs a Docker Engine: see README"]
async fn settings_reach_the_container_and_on_failure_restarts_it() {
    let rt = runtime().await;
    let state = tempfile::tempdir().unwrap();
    let mut p = plan("dt-settings", state.path());
    let _ = rt.remove(&p).await;
    let mut job = service(
        &p,
        "job",
        &["echo \"$GREETING in $(pwd) as $(id -u)\"; exit 3"],
    );
    job.entrypoint = Some(vec!["/bin/sh".into(), "-c".into()]);
    job.env.insert("GREETING".into(), "hello".into());
    job.working_dir = Some("/tmp".into());
    job.user = Some("0".into());
    job.restart = RestartPolicy::OnFailure(2);
    p.services = vec![job.clone()];
    rt.create_resources(&p).await.unwrap();
    rt.start(&p, &job).await.unwrap();

    // Two restarts, then it stays down with the job's own exit code.
    let mut last = None;
    let settled = eventually(Duration::from_secs(20), async || {
        last = rt.inspect(&p, "job").await.unwrap();
        last.as_ref()
            .is_some_and(|o| !o.running && o.restart_count == 2 && o.exit_code == Some(3))
    })
    .await;
    assert!(settled, "{last:?}");
    let (lines, _) = rt.logs(&p, &["job".to_string()], 100, false).await.unwrap();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(
        lines.iter().all(|e| e.line == "hello in /tmp as 0"),
        "{lines:?}"
    );
    rt.remove(&p).await.unwrap();
}

/// A Compose file's container settings, planned by `plan::build`, are in
/// effect in the container: the engine reports them and the service sees
/// them. Anonymous volumes are labelled and go with `remove`.
#[tokio::test]
#[ignore = "needs a Docker Engine: see README"]
async fn compose_container_settings_take_effect() {
    let rt = runtime().await;
    let project = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    std::fs::write(project.path().join("token.txt"), "s3cret\n").unwrap();
    let yaml = format!(
        r#"
services:
  box:
    image: {IMAGE}
    command:
      - sh
      - -c
      - >-
        echo "host=$(hostname)";
        grep -q '10.1.2.3.*db.local' /etc/hosts && echo hosts-ok;
        touch /rootfile 2>/dev/null && echo root-rw || echo root-ro;
        echo x > /scratch/f && echo tmpfs-ok;
        echo y > /data/f && echo anon-ok;
        echo "secret=$(cat /run/secrets/token)";
        echo z 2>/dev/null > /run/secrets/token && echo secret-rw || echo secret-ro;
        sleep 1000
    hostname: boxhost
    labels:
      com.example.team: shop
      berth.project: spoofed
    extra_hosts: ["db.local:10.1.2.3"]
    tmpfs: /scratch
    read_only: true
    mem_limit: 64m
    cpus: 0.5
    cap_drop: [NET_RAW]
    volumes: [/data]
    secrets: [token]
    deploy:
      restart_policy: {{ condition: on-failure, max_attempts: 2 }}
secrets:
  token:
    file: ../../token.txt
"#
    );
    let (file, tree) = super::compose::parse(yaml.as_bytes()).unwrap();
    let secrets = BTreeMap::new();
    let p = super::plan::build(&super::plan::PlanInput {
        project_id: "dt-fields",
        file: &file,
        tree: &tree,
        project_dir: project.path(),
        state_path: state.path(),
        runtime: super::model::RuntimeKind::Docker,
        ports: &[],
        secrets: &secrets,
        vars: &secrets,
    })
    .unwrap();
    let _ = rt.remove(&p).await;
    let svc = p.service("box").unwrap().clone();
    rt.create_resources(&p).await.unwrap();
    rt.start(&p, &svc).await.unwrap();

    let want = [
        "host=boxhost",
        "hosts-ok",
        "root-ro",
        "tmpfs-ok",
        "anon-ok",
        "secret=s3cret",
        "secret-ro",
    ];
    let mut lines = Vec::new();
    let seen = eventually(Duration::from_secs(20), async || {
        let (entries, _) = rt.logs(&p, &["box".to_string()], 100, false).await.unwrap();
        lines = entries.into_iter().map(|e| e.line).collect::<Vec<_>>();
        lines.len() >= want.len()
    })
    .await;
    assert!(seen, "{lines:?}");
    assert_eq!(lines, want);

    let docker = rt.client();
    let info = docker
        .inspect_container(&svc.container_name, None)
        .await
        .unwrap();
    let host = info.host_config.unwrap();
    assert_eq!(host.memory, Some(64 << 20));
    assert_eq!(host.nano_cpus, Some(500_000_000));
    assert_eq!(host.readonly_rootfs, Some(true));
    assert_eq!(host.cap_drop, Some(vec!["NET_RAW".to_string()]));
    assert_eq!(
        host.extra_hosts,
        Some(vec!["db.local:10.1.2.3".to_string()])
    );
    assert!(host.tmpfs.unwrap().contains_key("/scratch"));
    let restart = host.restart_policy.unwrap();
    assert_eq!(
        restart.name,
        Some(bollard::models::RestartPolicyNameEnum::ON_FAILURE)
    );
    assert_eq!(restart.maximum_retry_count, Some(2));
    let labels = info.config.unwrap().labels.unwrap();
    assert_eq!(labels["com.example.team"], "shop");
    // The file cannot take over berth's own labels.
    assert_eq!(labels["berth.project"], "dt-fields");

    let anon = "berth-dt-fields_box_anon-data";
    let volume = docker.inspect_volume(anon).await.unwrap();
    assert_eq!(volume.labels["berth.project"], "dt-fields");
    let removed = rt.remove(&p).await.unwrap();
    assert!(removed.contains(&format!("volume {anon}")), "{removed:?}");
    assert!(docker.inspect_volume(anon).await.is_err());
}

/// Aliases from `links` and `networks.<n>.aliases` resolve on the
/// project network, and `network_mode: service:X` shares X's network.
#[tokio::test]
#[ignore = "needs a Docker Engine: see README"]
async fn aliases_and_shared_network_mode() {
    let rt = runtime().await;
    let project = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let yaml = format!(
        r#"
services:
  db:
    image: {IMAGE}
    command: [sleep, "1000"]
    networks:
      default:
        aliases: [primary]
  app:
    image: {IMAGE}
    command: [sh, -c, "nslookup database >/dev/null && nslookup primary >/dev/null && echo resolved; sleep 1000"]
    links: ["db:database"]
  sidecar:
    image: {IMAGE}
    network_mode: service:app
    command: [sh, -c, "hostname; sleep 1000"]
"#
    );
    let (file, tree) = super::compose::parse(yaml.as_bytes()).unwrap();
    let secrets = BTreeMap::new();
    let p = super::plan::build(&super::plan::PlanInput {
        project_id: "dt-alias",
        file: &file,
        tree: &tree,
        project_dir: project.path(),
        state_path: state.path(),
        runtime: super::model::RuntimeKind::Docker,
        ports: &[],
        secrets: &secrets,
        vars: &secrets,
    })
    .unwrap();
    let _ = rt.remove(&p).await;
    rt.create_resources(&p).await.unwrap();
    for svc in &p.services {
        rt.start(&p, svc).await.unwrap();
    }
    let mut lines = Vec::new();
    let seen = eventually(Duration::from_secs(20), async || {
        let (entries, _) = rt
            .logs(&p, &["app".to_string(), "sidecar".to_string()], 100, false)
            .await
            .unwrap();
        lines = entries.into_iter().map(|e| e.line).collect::<Vec<_>>();
        lines.len() >= 2
    })
    .await;
    assert!(seen, "{lines:?}");
    assert!(lines.contains(&"resolved".to_string()), "{lines:?}");
    let info = rt
        .client()
        .inspect_container("berth-dt-alias-sidecar", None)
        .await
        .unwrap();
    // The engine keeps the name or resolves it to the id.
    let mode = info.host_config.unwrap().network_mode.unwrap_or_default();
    let app = rt
        .client()
        .inspect_container("berth-dt-alias-app", None)
        .await
        .unwrap();
    assert!(
        mode == "container:berth-dt-alias-app"
            || mode == format!("container:{}", app.id.unwrap_or_default()),
        "{mode}"
    );
    rt.remove(&p).await.unwrap();
}

/// Plans `yaml` for Docker as project `id`, with `project` as its directory.
fn plan_yaml(id: &str, yaml: &str, project: &Path, state: &Path) -> Plan {
    let (file, tree) = super::compose::parse(yaml.as_bytes()).unwrap();
    super::plan::build(&super::plan::PlanInput {
        project_id: id,
        file: &file,
        tree: &tree,
        project_dir: project,
        state_path: state,
        runtime: super::model::RuntimeKind::Docker,
        ports: &[],
        secrets: &BTreeMap::new(),
        vars: &BTreeMap::new(),
    })
    .unwrap()
}

/// Waits up to `limit` for `service`'s logs to hold `line`; returns them.
async fn logs_until(
    rt: &DockerRuntime,
    p: &Plan,
    service: &str,
    line: &str,
    limit: Duration,
) -> Vec<String> {
    let mut lines = Vec::new();
    eventually(limit, async || {
        lines = rt
            .logs(p, &[service.to_string()], 100, false)
            .await
            .unwrap()
            .0
            .into_iter()
            .map(|e| e.line)
            .collect();
        lines.iter().any(|l| l == line)
    })
    .await;
    lines
}

/// `./file:/target` and `./dir:/target` show the project's own file and
/// directory, live: a file bound over a file the image has, a file at a
/// new path, a directory whose host edits the service sees, and `:ro`.
#[tokio::test]
#[ignore = "needs a Docker Engine: see README"]
async fn relative_binds_show_the_projects_own_files_live() {
    let rt = runtime().await;
    let project = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let dir = project.path();
    std::fs::write(dir.join("app.conf"), "conf-from-project\n").unwrap();
    std::fs::write(dir.join("group"), "project-group:x:4242:\n").unwrap();
    std::fs::create_dir(dir.join("site")).unwrap();
    std::fs::write(dir.join("site/index.html"), "first\n").unwrap();
    let yaml = format!(
        r#"
services:
  box:
    image: {IMAGE}
    command:
      - sh
      - -c
      - >-
        cat /etc/app.conf; grep project-group /etc/group;
        cat /usr/share/site/index.html;
        echo x 2>/dev/null > /etc/app.conf && echo conf-rw || echo conf-ro;
        while [ ! -e /usr/share/site/go ]; do sleep 0.2; done;
        cat /usr/share/site/index.html; echo from-box > /usr/share/site/back;
        exec sleep 1000
    volumes:
      - ./app.conf:/etc/app.conf:ro
      - ./group:/etc/group:ro
      - ./site:/usr/share/site
"#
    );
    let p = plan_yaml("dt-binds", &yaml, dir, state.path());
    let _ = rt.remove(&p).await;
    rt.create_resources(&p).await.unwrap();
    rt.start(&p, &p.services[0]).await.unwrap();
    let lines = logs_until(&rt, &p, "box", "conf-ro", Duration::from_secs(15)).await;
    for want in [
        "conf-from-project",
        "project-group:x:4242:",
        "first",
        "conf-ro",
    ] {
        assert!(lines.iter().any(|l| l == want), "{want}: {lines:?}");
    }
    // Host edits show inside; the service's writes show on the host.
    std::fs::write(dir.join("site/index.html"), "second\n").unwrap();
    std::fs::write(dir.join("site/go"), "").unwrap();
    let lines = logs_until(&rt, &p, "box", "second", Duration::from_secs(15)).await;
    assert!(lines.iter().any(|l| l == "second"), "{lines:?}");
    let back = eventually(Duration::from_secs(5), async || {
        dir.join("site/back").is_file()
    })
    .await;
    assert!(back, "the service's write did not reach the project");
    assert!(!state.path().join("binds").exists());
    rt.remove(&p).await.unwrap();
}

/// Each service's `stop_grace_period` and `stop_signal` hold when the
/// project stops without an explicit timeout: SIGINT (however it is
/// written) reaches the service, and one that ignores SIGTERM is killed
/// after its own 1 s, not the default 30 s.
#[tokio::test]
#[ignore = "needs a Docker Engine: see README"]
async fn stop_uses_each_services_signal_and_grace_period() {
    let rt = runtime().await;
    let project = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let polite = "trap 'echo got-INT; exit 0' INT; trap 'echo got-TERM; exit 0' TERM; echo ready; while true; do sleep 0.1; done";
    let yaml = format!(
        r#"
services:
  deaf:
    image: {IMAGE}
    command: ["sh", "-c", "trap '' TERM; echo ready; while true; do sleep 0.1; done"]
    stop_grace_period: 1s
  named:
    image: {IMAGE}
    command: ["sh", "-c", "{polite}"]
    stop_signal: SIGINT
  short:
    image: {IMAGE}
    command: ["sh", "-c", "{polite}"]
    stop_signal: INT
  number:
    image: {IMAGE}
    command: ["sh", "-c", "{polite}"]
    stop_signal: "2"
  plain:
    image: {IMAGE}
    command: ["sh", "-c", "{polite}"]
"#
    );
    let p = plan_yaml("dt-grace", &yaml, project.path(), state.path());
    let _ = rt.remove(&p).await;
    rt.create_resources(&p).await.unwrap();
    for s in &p.services {
        rt.start(&p, s).await.unwrap();
    }
    for s in &p.services {
        let lines = logs_until(&rt, &p, &s.name, "ready", Duration::from_secs(15)).await;
        assert!(lines.iter().any(|l| l == "ready"), "{}: {lines:?}", s.name);
    }
    let t0 = Instant::now();
    let failures = super::orchestrate::stop_all(&rt, &p, None, Duration::from_secs(30)).await;
    let took = t0.elapsed();
    assert!(failures.is_empty(), "{failures:?}");
    assert!(took >= Duration::from_millis(900), "{took:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    for s in ["named", "short", "number"] {
        let lines = logs_until(&rt, &p, s, "got-INT", Duration::from_secs(5)).await;
        assert!(lines.iter().any(|l| l == "got-INT"), "{s}: {lines:?}");
        assert!(!lines.iter().any(|l| l == "got-TERM"), "{s}: {lines:?}");
    }
    let lines = logs_until(&rt, &p, "plain", "got-TERM", Duration::from_secs(5)).await;
    assert!(lines.iter().any(|l| l == "got-TERM"), "{lines:?}");
    rt.remove(&p).await.unwrap();
}

/// A follow keeps streaming while a `restart:` policy reruns the
/// container: every run's line arrives, once, in order.
#[tokio::test]
#[ignore = "needs a Docker Engine: see README"]
async fn follow_keeps_streaming_across_restarts() {
    let rt = runtime().await;
    let state = tempfile::tempdir().unwrap();
    let mut p = plan("dt-refollow", state.path());
    let _ = rt.remove(&p).await;
    // The container's own filesystem survives its restarts: count runs.
    let mut job = service(
        &p,
        "job",
        &[
            "sh",
            "-c",
            "n=$(cat /tmp/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > /tmp/n; echo run-$n; sleep 0.5; exit 1",
        ],
    );
    job.restart = RestartPolicy::Always;
    p.services = vec![job.clone()];
    rt.create_resources(&p).await.unwrap();
    rt.start(&p, &job).await.unwrap();
    let (tail, rx) = rt.logs(&p, &["job".to_string()], 10, true).await.unwrap();
    let mut rx = rx.unwrap();
    let mut seen: Vec<String> = tail.into_iter().map(|e| e.line).collect();
    while seen.len() < 4 {
        let next = tokio::time::timeout(Duration::from_secs(20), rx.recv())
            .await
            .unwrap_or_else(|_| panic!("no line after {seen:?}"))
            .unwrap_or_else(|| panic!("the follow ended after {seen:?}"));
        seen.push(next.line);
    }
    assert_eq!(seen, ["run-1", "run-2", "run-3", "run-4"]);
    drop(rx);
    rt.remove(&p).await.unwrap();
}
