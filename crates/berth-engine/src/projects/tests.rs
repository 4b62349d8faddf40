//! The validation corpus: Compose files written like real projects, each
//! checked for exactly what a user would see in the report.

use super::compose::{
    Condition, DependsOn, Environment, Mount, PortEntry, PortMapping, VolumeEntry,
};
use super::validate::undefaulted_vars;
use super::*;

const WEB_DB_CACHE: &str = include_str!("corpus/web_db_cache.yaml");
const HEALTHCHECK_CHAIN: &str = include_str!("corpus/healthcheck_chain.yaml");
const PORTS: &str = include_str!("corpus/ports.yaml");
const REJECTED: &str = include_str!("corpus/rejected.yaml");
const CYCLE: &str = include_str!("corpus/cycle.yaml");
const UNKNOWN_DEP: &str = include_str!("corpus/unknown_dep.yaml");
const KITCHEN_SINK: &str = include_str!("corpus/kitchen_sink.yaml");
const MALFORMED: &str = include_str!("corpus/malformed.yaml");
const CONTAINER_SETTINGS: &str = include_str!("corpus/container_settings.yaml");

const INIT: &str =
    "berth runs every container under an init so that stop signals reach the service";
const NEEDS_COMMAND: &str =
    "the native runtime runs a service's command, not an image: give the service a `command`";
const BINDS_ONLY: &str =
    "the native runtime supports binds and named volumes only (native services are not mounted: they get the directories' paths in variables)";

fn paths(notes: &[FieldNote]) -> Vec<&str> {
    notes.iter().map(|n| n.path.as_str()).collect()
}

/// The reason given for `path` in `notes`; panics naming the path when it
/// is not there, so a missing classification fails loudly.
fn reason<'a>(notes: &'a [FieldNote], path: &str) -> &'a str {
    notes
        .iter()
        .find(|n| n.path == path)
        .unwrap_or_else(|| panic!("{path} not in {:?}", paths(notes)))
        .reason
        .as_str()
}

fn file(text: &str) -> ComposeFile {
    parse(text.as_bytes()).expect("corpus file parses").0
}

#[test]
fn web_db_cache_on_docker() {
    let r = validate(WEB_DB_CACHE.as_bytes(), Runtime::Docker);
    // berth runs images; it does not build them.
    assert!(!r.valid);
    assert_eq!(
        reason(&r.rejected_fields, "web.build"),
        "berth does not build images: build it beforehand and give the service its `image`"
    );
    assert_eq!(paths(&r.rejected_fields), ["web.build"]);
    assert_eq!(r.services, ["web", "db", "cache"]);
    assert_eq!(
        paths(&r.supported_fields),
        [
            "web.environment",
            "web.depends_on.db",
            "web.depends_on.cache",
            "db.image",
            "db.environment",
            "db.healthcheck",
            "cache.image",
            "cache.command",
        ]
    );
    assert_eq!(
        paths(&r.transformed_fields),
        [
            "volumes.pgdata",
            "web.init",
            "web.ports[0]",
            "web.restart",
            "db.init",
            "db.volumes[0]",
            "cache.init",
            "cache.volumes[0]",
        ]
    );
    let t = &r.transformed_fields;
    assert_eq!(reason(t, "web.init"), INIT);
    assert_eq!(
        reason(t, "web.ports[0]"),
        "the host side (8080 requested) is assigned by berth's port allocator, which keeps the requested one when free; forwarded to container port 8000"
    );
    assert_eq!(
        reason(t, "web.restart"),
        "mapped to berth's restart policy: autorestart on, unlimited restarts with berth's crash-loop backoff"
    );
    assert_eq!(
        reason(t, "db.volumes[0]"),
        "volume `pgdata` is namespaced per project (`<namespace>_pgdata`)"
    );
    assert_eq!(
        reason(t, "cache.volumes[0]"),
        "`./redis-data` is the project's own path, bound live at `/data`"
    );
    // POSTGRES_PASSWORD has a default in db, none in web.
    assert_eq!(
        r.warnings,
        [FieldNote {
            service: "web".into(),
            path: "web.environment.DATABASE_URL".into(),
            reason: "`${POSTGRES_PASSWORD}` has no default: set it in the environment or as a secret, or it is empty".into(),
        }]
    );
    assert_eq!(
        start_order(&file(WEB_DB_CACHE)).unwrap(),
        [vec!["db", "cache"], vec!["web"]]
    );
}

#[test]
fn web_db_cache_on_native_rejects_what_needs_containers() {
    let r = validate(WEB_DB_CACHE.as_bytes(), Runtime::Native);
    assert!(!r.valid);
    assert_eq!(paths(&r.rejected_fields), ["web.build", "db.image"]);
    let x = &r.rejected_fields;
    assert_eq!(
        reason(x, "web.build"),
        "the native runtime cannot build images: give the service a `command` instead"
    );
    assert_eq!(reason(x, "db.image"), NEEDS_COMMAND);
    // No init on native, and an image with a command is transformed.
    assert_eq!(
        paths(&r.transformed_fields),
        [
            "volumes.pgdata",
            "web.ports[0]",
            "web.restart",
            "db.volumes[0]",
            "cache.image",
            "cache.volumes[0]"
        ]
    );
    // Native services are not mounted (issue 11): a named volume is a
    // directory under state_path whose path the service gets in a variable.
    assert_eq!(
        reason(&r.transformed_fields, "db.volumes[0]"),
        "native services are not mounted: volume `pgdata` is the directory `volumes/pgdata` under the project's state_path, its path in `$BERTH_VOLUME_PGDATA`, not at `/var/lib/postgresql/data`"
    );
    assert_eq!(
        reason(&r.transformed_fields, "cache.image"),
        "the native runtime runs the service's command directly; the image is not pulled"
    );
    assert_eq!(
        reason(&r.transformed_fields, "volumes.pgdata"),
        "a directory under the project's state_path (`volumes/pgdata`); a native service that lists it gets its path in `$BERTH_VOLUME_PGDATA`"
    );
}

#[test]
fn healthcheck_chain_runs_on_both_runtimes_in_order() {
    for rt in [Runtime::Docker, Runtime::Native] {
        let r = validate(HEALTHCHECK_CHAIN.as_bytes(), rt);
        assert!(r.valid, "{rt:?}: {:?}", r.rejected_fields);
        assert!(r.warnings.is_empty(), "{rt:?}: {:?}", r.warnings);
        assert_eq!(r.services, ["store", "migrate", "api", "proxy"]);
        for dep in [
            "migrate.depends_on.store",
            "api.depends_on.store",
            "api.depends_on.migrate",
            "proxy.depends_on.api",
        ] {
            assert!(paths(&r.supported_fields).contains(&dep), "{rt:?} {dep}");
        }
    }
    let native = validate(HEALTHCHECK_CHAIN.as_bytes(), Runtime::Native);
    let t = &native.transformed_fields;
    assert_eq!(
        reason(t, "api.ports[0]"),
        "the service's port 8000 is reached through a host port chosen by berth's port allocator"
    );
    assert_eq!(
        reason(t, "api.stop_grace_period"),
        "becomes the service's kill timeout"
    );
    assert_eq!(
        reason(t, "api.restart"),
        "mapped to berth's restart policy: autorestart after failing exits, max_restarts 3"
    );
    let f = file(HEALTHCHECK_CHAIN);
    let deps = f.services.get("api").unwrap().dependencies();
    assert_eq!(deps[0].condition, Ok(Condition::Healthy));
    assert_eq!(deps[1].condition, Ok(Condition::CompletedSuccessfully));
    let proxy = f.services.get("proxy").unwrap().dependencies();
    assert_eq!(proxy[0].condition, Ok(Condition::Started));
    assert_eq!(
        start_order(&f).unwrap(),
        [vec!["store"], vec!["migrate"], vec!["api"], vec!["proxy"]]
    );
}

#[test]
fn port_syntaxes_parse_to_mappings() {
    let f = file(PORTS);
    let ports = &f.services.get("edge").unwrap().ports;
    let m = |ip: Option<&str>, host: Option<(u16, u16)>, c: (u16, u16), p: &str| PortMapping {
        host_ip: ip.map(str::to_owned),
        host,
        container: c,
        protocol: p.into(),
    };
    let got: Vec<_> = ports.iter().map(PortEntry::mapping).collect();
    assert_eq!(got[0], Ok(m(None, None, (80, 80), "tcp")));
    assert_eq!(got[1], Ok(m(None, Some((8080, 8080)), (80, 80), "tcp")));
    assert_eq!(
        got[2],
        Ok(m(Some("127.0.0.1"), Some((8443, 8443)), (443, 443), "udp"))
    );
    assert_eq!(
        got[3],
        Ok(m(Some("::1"), Some((5353, 5353)), (53, 53), "udp"))
    );
    assert_eq!(got[4], Ok(m(None, Some((9000, 9002)), (9000, 9002), "tcp")));
    assert_eq!(ports[5], PortEntry::Number(3000));
    assert_eq!(got[5], Ok(m(None, None, (3000, 3000), "tcp")));
    assert_eq!(
        got[6],
        Ok(m(
            Some("0.0.0.0"),
            Some((18081, 18081)),
            (8081, 8081),
            "tcp"
        ))
    );
    assert_eq!(got[7], Ok(m(None, None, (8082, 8082), "tcp")));
    assert_eq!(
        got[8],
        Err("unknown protocol `icmp` (tcp, udp or sctp)".into())
    );
    assert_eq!(got[9], Err("`99999` is not a port number (1-65535)".into()));
    for bad in ["", "a:b", "1:2:3:4", "0", "9001-9000:80", "8000-8001:80-82"] {
        assert!(
            PortEntry::Short(bad.into()).mapping().is_err(),
            "{bad:?} should not parse"
        );
    }
}

#[test]
fn ports_report() {
    let r = validate(PORTS.as_bytes(), Runtime::Docker);
    assert!(!r.valid);
    assert_eq!(
        paths(&r.rejected_fields),
        ["edge.ports[8]", "edge.ports[9]"]
    );
    let t = &r.transformed_fields;
    assert_eq!(paths(t).len(), 9, "init and eight valid ports");
    assert_eq!(
        reason(t, "edge.ports[0]"),
        "container port 80 is reached through a host port chosen by berth's port allocator"
    );
    assert_eq!(
        reason(t, "edge.ports[4]"),
        "the host side (9000-9002 requested) is assigned by berth's port allocator, which keeps the requested one when free; forwarded to container port 9000-9002"
    );
    assert_eq!(
        reason(&r.warnings, "edge.ports[6]"),
        "`mode: host` is a swarm setting; ignored"
    );
}

#[test]
fn host_access_is_rejected_on_every_runtime() {
    let expected = [
        (
            "monitor.privileged",
            "privileged services get full control of the host",
        ),
        (
            "monitor.network_mode",
            "host networking bypasses berth's port allocation and exposes the host's interfaces",
        ),
        (
            "monitor.pid",
            "`pid: host` shares the host's namespace with the service",
        ),
        (
            "monitor.cap_add[0]",
            "capability SYS_PTRACE gives the service control over the host",
        ),
        (
            "monitor.security_opt[0]",
            "`apparmor:unconfined` turns off the service's confinement",
        ),
        (
            "monitor.volumes[0]",
            "binding `/proc` exposes the host to the service",
        ),
        (
            "monitor.volumes[1]",
            "binding `/var/run/docker.sock` exposes the host to the service",
        ),
        (
            "usb.devices[0]",
            "device `/dev/ttyUSB0:/dev/ttyUSB0` would give the service direct access to host hardware",
        ),
        (
            "usb.ipc",
            "`ipc: host` shares the host's namespace with the service",
        ),
        (
            "usb.userns_mode",
            "`userns_mode: host` shares the host's namespace with the service",
        ),
    ];
    let docker = validate(REJECTED.as_bytes(), Runtime::Docker);
    assert!(!docker.valid);
    let got: Vec<(&str, &str)> = docker
        .rejected_fields
        .iter()
        .map(|n| (n.path.as_str(), n.reason.as_str()))
        .collect();
    assert_eq!(got, expected);
    // A harmless capability and a project bind stay allowed on Docker.
    assert!(paths(&docker.supported_fields).contains(&"monitor.cap_add[1]"));
    assert!(paths(&docker.transformed_fields).contains(&"monitor.volumes[2]"));

    let native = validate(REJECTED.as_bytes(), Runtime::Native);
    for (path, why) in expected {
        assert_eq!(reason(&native.rejected_fields, path), why);
    }
    assert_eq!(
        reason(&native.rejected_fields, "monitor.cap_add[1]"),
        "native services run with the daemon's privileges; capabilities cannot be added"
    );
}

#[test]
fn dependency_cycle_is_an_error_naming_its_services() {
    let cycle = "dependency cycle: gateway -> auth -> users -> gateway";
    for rt in [Runtime::Docker, Runtime::Native] {
        let r = validate(CYCLE.as_bytes(), rt);
        assert!(!r.valid);
        let deps: Vec<_> = r
            .rejected_fields
            .iter()
            .filter(|n| n.path.contains(".depends_on."))
            .map(|n| (n.path.as_str(), n.reason.as_str()))
            .collect();
        assert_eq!(
            deps,
            [
                ("gateway.depends_on.auth", cycle),
                ("auth.depends_on.users", cycle),
                ("users.depends_on.gateway", cycle),
            ]
        );
        // frontend is downstream of the cycle, not part of it.
        assert!(paths(&r.supported_fields).contains(&"frontend.depends_on.gateway"));
    }
    let err = start_order(&file(CYCLE)).unwrap_err();
    assert_eq!(
        err,
        OrderError::Cycle(vec![
            "gateway".into(),
            "auth".into(),
            "users".into(),
            "gateway".into()
        ])
    );
    assert_eq!(err.to_string(), cycle);

    let own = "services:\n  loop:\n    image: busybox\n    depends_on: [loop]\n";
    let r = validate(own.as_bytes(), Runtime::Docker);
    assert_eq!(
        reason(&r.rejected_fields, "loop.depends_on.loop"),
        "dependency cycle: loop -> loop"
    );
}

#[test]
fn unknown_dependencies_and_conditions_are_errors() {
    let r = validate(UNKNOWN_DEP.as_bytes(), Runtime::Docker);
    assert!(!r.valid);
    let got: Vec<_> = r
        .rejected_fields
        .iter()
        .map(|n| (n.service.as_str(), n.path.as_str(), n.reason.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (
                "app",
                "app.depends_on.database",
                "depends on `database`, which is not defined"
            ),
            (
                "app",
                "app.depends_on.worker",
                "unknown condition `service_ready` (service_started, service_healthy or service_completed_successfully)"
            ),
            (
                "worker",
                "worker.depends_on.queue",
                "depends on `queue`, which is not defined"
            ),
        ]
    );
    assert_eq!(
        reason(&r.warnings, "app.depends_on.telemetry"),
        "optional dependency `telemetry` is not defined; skipped"
    );
    let err = start_order(&file(UNKNOWN_DEP)).unwrap_err();
    assert_eq!(
        err,
        OrderError::UnknownDependency {
            service: "app".into(),
            dependency: "database".into()
        }
    );
    assert_eq!(
        err.to_string(),
        "service `app` depends on `database`, which is not defined"
    );
}

#[test]
fn kitchen_sink_on_docker() {
    let r = validate(KITCHEN_SINK.as_bytes(), Runtime::Docker);
    assert!(!r.valid);
    assert_eq!(r.services, ["api", "worker"]);
    assert_eq!(
        paths(&r.rejected_fields),
        [
            "networks.legacy",
            "worker.scale",
            "worker.networks.missing",
            "worker.volumes[4]",
            "worker.gpus",
        ]
    );
    let x = &r.rejected_fields;
    assert_eq!(
        reason(x, "worker.volumes[4]"),
        "volume `cache` is not declared under the top-level `volumes`"
    );
    assert_eq!(
        reason(x, "worker.scale"),
        "berth runs one instance per service (host ports are allocated per service)"
    );
    // Keys merged in from the `x-common` anchor are reported like the rest.
    let t = &r.transformed_fields;
    assert_eq!(
        reason(t, "api.restart"),
        "mapped to berth's restart policy: autorestart on, unlimited restarts with berth's crash-loop backoff"
    );
    assert_eq!(
        reason(t, "api.logging"),
        "berth reads stdout and stderr through the engine's default log driver; the file's driver and options are not used"
    );
    assert_eq!(
        reason(t, "api.container_name"),
        "named within the project's namespace (`<namespace>-shop-api`) so projects never collide"
    );
    assert_eq!(
        reason(t, "api.deploy.restart_policy"),
        "mapped to berth's restart policy: autorestart (on-failure), max_restarts 5"
    );
    assert_eq!(
        reason(t, "worker.volumes[3]"),
        "the anonymous volume is created in the project's namespace"
    );
    assert_eq!(
        reason(t, "worker.networks.back"),
        "network `back` is namespaced per project (`<namespace>_back`)"
    );
    // Profiles select services now; ValidateCompose reports every one.
    assert!(paths(&r.supported_fields).contains(&"api.profiles"));
    assert_eq!(
        reason(t, "api.secrets[0]"),
        "the file of `stripe_key` (inside the project directory) is bind-mounted read-only at `/run/secrets/<name>` (or `target` under it)"
    );
    assert_eq!(
        reason(t, "api.configs[0]"),
        "the file of `shop_config` (inside the project directory) is bind-mounted read-only at `/<name>` (or its `target`)"
    );
    for p in [
        "secrets.stripe_key",
        "configs.shop_config",
        "worker.networks.back.aliases",
    ] {
        assert!(paths(&r.supported_fields).contains(&p), "{p}");
    }
    // Forced init is reported once even when the file asks for it.
    assert_eq!(paths(t).iter().filter(|p| **p == "api.init").count(), 1);
    for p in [
        "api.hostname",
        "api.user",
        "api.env_file",
        "api.expose",
        "api.read_only",
        "api.tmpfs",
        "api.ulimits",
        "api.stop_signal",
        "api.deploy.replicas",
        "api.deploy.resources",
        "api.labels",
        "worker.volumes[2]",
    ] {
        assert!(paths(&r.supported_fields).contains(&p), "{p}");
    }
    assert_eq!(
        paths(&r.warnings),
        [
            "version",
            "extras",
            "api.environment.API_KEY",
            "api.deploy.placement",
            "api.frobnicate",
        ]
    );
    assert_eq!(
        reason(&r.warnings, "api.frobnicate"),
        "unknown service key `frobnicate`, ignored"
    );
}

#[test]
fn kitchen_sink_on_native_rejects_container_settings() {
    let r = validate(KITCHEN_SINK.as_bytes(), Runtime::Native);
    assert!(!r.valid);
    let x = &r.rejected_fields;
    for (path, why) in [
        (
            "api.hostname",
            "native services use the host's network identity",
        ),
        ("api.user", "native services run as the daemon's user"),
        (
            "api.networks.front",
            "native services share the host's network; only `default` can be honoured",
        ),
        (
            "api.secrets",
            "native services cannot see secrets mounted at container paths",
        ),
        (
            "api.read_only",
            "a container setting with no equivalent for native services",
        ),
        (
            "api.deploy.resources",
            "native services run without resource limits",
        ),
        ("worker.image", NEEDS_COMMAND),
        ("worker.volumes[2]", BINDS_ONLY),
    ] {
        assert_eq!(reason(x, path), why);
    }
    let t = &r.transformed_fields;
    assert_eq!(
        reason(t, "api.init"),
        "native services are not PID 1: berth stops their whole process tree"
    );
    assert_eq!(
        reason(t, "worker.volumes[0]"),
        "native services are not mounted: volume `uploads` is the directory `volumes/uploads` under the project's state_path, its path in `$BERTH_VOLUME_UPLOADS`, not at `/srv/uploads`"
    );
    assert_eq!(
        reason(t, "worker.volumes[1]"),
        "native services are not mounted: `./fixtures` stays at its path in the project directory (their default working directory), not at `/srv/fixtures`"
    );
    assert_eq!(
        reason(t, "api.stop_signal"),
        "sent to the service's process group at stop, then SIGKILL after the grace"
    );
    assert_eq!(
        reason(&r.warnings, "api.labels"),
        "`labels` have no effect on native services"
    );
}

#[test]
fn malformed_yaml_reports_line_and_column() {
    for rt in [Runtime::Docker, Runtime::Native] {
        let r = validate(MALFORMED.as_bytes(), rt);
        assert!(!r.valid);
        assert!(r.services.is_empty());
        assert_eq!(r.rejected_fields.len(), 1);
        let msg = &r.rejected_fields[0].reason;
        assert!(msg.contains("line 4 column 4"), "{msg}");
        assert!(!msg.contains('\n'), "{msg}");
    }
}

#[test]
fn hostile_and_odd_inputs_never_panic() {
    let cases: &[&[u8]] = &[
        b"",
        b"[]",
        b"42",
        b"services: 3",
        b"services:\n  a: 1\n",
        b"services:\n  a:\n    ports: 80\n",
        b"services:\n  a:\n    depends_on: 7\n",
        b"services:\n  a:\n    image: [1, 2]\n",
        b"\xff\xfe\x00garbage",
        b"services: &a\n  x: *a\n",
        b"{{{{{{{{{{{{{{{{{{{{",
        b"services:\n  \"bad name!\":\n    image: busybox\n",
        b"services:\n",
    ];
    for input in cases {
        for rt in [Runtime::Docker, Runtime::Native] {
            let r = validate(input, rt);
            assert!(
                !r.valid,
                "{:?} was accepted",
                String::from_utf8_lossy(input)
            );
            assert!(
                r.rejected_fields.iter().all(|n| !n.reason.is_empty()),
                "{:?}",
                r.rejected_fields
            );
        }
    }
    let r = validate(b"services:\n", Runtime::Docker);
    assert_eq!(
        reason(&r.rejected_fields, "services"),
        "the file defines no services"
    );
    // A value of the wrong shape is named by its path.
    let r = validate(b"services:\n  a:\n    ports: 80\n", Runtime::Docker);
    assert_eq!(r.rejected_fields[0].path, "a.ports");
    assert_eq!(r.rejected_fields[0].service, "a");
}

#[test]
fn docker_needs_an_image_and_native_a_command() {
    let text = "services:\n  bare:\n    environment: [A=1]\n";
    let docker = validate(text.as_bytes(), Runtime::Docker);
    assert_eq!(
        reason(&docker.rejected_fields, "bare.image"),
        "a container needs an `image`"
    );
    let native = validate(text.as_bytes(), Runtime::Native);
    assert_eq!(
        reason(&native.rejected_fields, "bare.command"),
        "the native runtime runs a service's command: give the service a `command`"
    );
    let runs = "services:\n  ok:\n    command: [sleep, infinity]\n    restart: no\n";
    let native = validate(runs.as_bytes(), Runtime::Native);
    assert!(native.valid, "{:?}", native.rejected_fields);
    assert_eq!(
        reason(&native.transformed_fields, "ok.restart"),
        "mapped to berth's restart policy: autorestart off"
    );
    let bad = "services:\n  ok:\n    command: [sleep, infinity]\n    restart: sometimes\n";
    assert_eq!(
        reason(
            &validate(bad.as_bytes(), Runtime::Native).rejected_fields,
            "ok.restart"
        ),
        "unknown restart policy `sometimes` (no, always, on-failure[:N], unless-stopped)"
    );
}

#[test]
fn short_and_long_forms_read_alike() {
    let f = file(
        "services:
  a:
    image: x
    environment: [A=1, B]
    depends_on: [b]
    volumes: ['./src:/app:ro', 'data:/data', '/tmp/anon']
  b:
    image: x
    environment: {A: 1, B: null, C: true}
    depends_on:
      c: {condition: service_healthy}
  c:
    image: x
",
    );
    let a = f.services.get("a").unwrap();
    let b = f.services.get("b").unwrap();
    assert!(matches!(&a.environment, Some(Environment::List(v)) if v.len() == 2));
    assert!(matches!(&b.environment, Some(Environment::Map(m)) if m.0.len() == 3));
    assert!(matches!(&a.depends_on, Some(DependsOn::List(_))));
    assert!(matches!(&b.depends_on, Some(DependsOn::Map(_))));
    assert_eq!(b.dependencies()[0].condition, Ok(Condition::Healthy));
    let mounts: Vec<_> = a.volumes.iter().map(VolumeEntry::mount).collect();
    assert_eq!(
        mounts,
        [
            Ok(Mount::Bind {
                source: "./src".into(),
                target: "/app".into()
            }),
            Ok(Mount::Named {
                name: "data".into(),
                target: "/data".into()
            }),
            Ok(Mount::Anonymous {
                target: "/tmp/anon".into()
            }),
        ]
    );
    // b waits for c's health, but c has no healthcheck.
    let r = validate(
        "services:\n  b:\n    command: [x]\n    depends_on:\n      c: {condition: service_healthy}\n  c:\n    command: [y]\n".as_bytes(),
        Runtime::Native,
    );
    assert_eq!(
        reason(&r.rejected_fields, "b.depends_on.c"),
        "`c` has no healthcheck, so service_healthy can never be met"
    );
    assert_eq!(start_order(&f).unwrap(), [vec!["c"], vec!["b"], vec!["a"]]);
}

#[test]
fn yaml_1_1_booleans_stay_strings() {
    // Compose reads YAML 1.2: `y`, `no` and `on` are plain words.
    let f = file("services:\n  a:\n    image: x\n    command: [y, no, on]\n");
    assert_eq!(
        f.services.get("a").unwrap().command,
        Some(super::compose::Command::Exec(vec![
            "y".into(),
            "no".into(),
            "on".into()
        ]))
    );
    let r = validate(
        b"services:\n  a:\n    image: x\n    privileged: yes\n",
        Runtime::Docker,
    );
    assert!(!r.valid, "`privileged: yes` is not a boolean in Compose");
}

#[test]
fn interpolation_needs_defaults() {
    assert_eq!(undefaulted_vars("${A}"), ["A"]);
    assert_eq!(undefaulted_vars("$A and $B_2"), ["A", "B_2"]);
    assert_eq!(undefaulted_vars("${A:?must be set}"), ["A"]);
    assert!(undefaulted_vars("${A:-x} ${B-y} ${C:+z} $$D 5$").is_empty());
    assert_eq!(undefaulted_vars("${A:-${B}}"), ["B"]);
    assert_eq!(undefaulted_vars("${A}${A}"), ["A", "A"]);
}

#[test]
fn links_network_mode_and_volumes_from_order_the_start() {
    let text = "services:
  app:
    image: x
    network_mode: service:vpn
    volumes_from: ['data:ro']
    links: ['db:database']
    depends_on:
      cache: {condition: service_started, required: false}
  vpn: {image: x}
  data: {image: x}
  db: {image: x}
  cache: {image: x, depends_on: [db]}
";
    let r = validate(text.as_bytes(), Runtime::Docker);
    assert!(r.valid, "{:?}", r.rejected_fields);
    for p in ["app.network_mode", "app.volumes_from", "app.links"] {
        assert!(paths(&r.supported_fields).contains(&p), "{p}");
    }
    assert_eq!(
        start_order(&file(text)).unwrap(),
        [vec!["vpn", "data", "db"], vec!["cache"], vec!["app"]]
    );

    let cyclic = "services:
  app: {image: x, links: [db]}
  db: {image: x, volumes_from: [app]}
  ghost: {image: x, network_mode: 'service:nobody'}
";
    let r = validate(cyclic.as_bytes(), Runtime::Docker);
    let got: Vec<_> = r
        .rejected_fields
        .iter()
        .map(|n| (n.path.as_str(), n.reason.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("app.links", "dependency cycle: app -> db -> app"),
            ("db.volumes_from", "dependency cycle: app -> db -> app"),
            ("ghost.network_mode", "service `nobody` is not defined"),
        ]
    );
    assert_eq!(
        start_order(&file(cyclic)).unwrap_err(),
        OrderError::UnknownDependency {
            service: "ghost".into(),
            dependency: "nobody".into()
        }
    );
}
#[test]
fn shape_errors_say_what_was_expected_and_where() {
    let r = validate(
        b"services:\n  a:\n    ports:\n      - target: '80'\n",
        Runtime::Docker,
    );
    // The field is named by its path, with what was expected.
    assert_eq!(r.rejected_fields[0].path, "a.ports[0]");
    assert_eq!(
        r.rejected_fields[0].reason,
        "expected a port: a number, \"[HOST_IP:][HOST:]CONTAINER[/PROTOCOL]\" or a mapping with a numeric `target`"
    );
    let r = validate(
        b"services:\n  a:\n    image: x\n    image: y\n",
        Runtime::Docker,
    );
    assert!(
        r.rejected_fields[0]
            .reason
            .starts_with("line 4 column 5: duplicate key \"image\""),
        "{:?}",
        r.rejected_fields
    );
}

/// Every container setting validation calls supported is one berth passes
/// to Docker; what it cannot pass is rejected or warned about as ignored.
#[test]
fn container_settings_on_docker_are_honoured_or_reported() {
    let r = validate(CONTAINER_SETTINGS.as_bytes(), Runtime::Docker);
    assert!(!r.valid);
    assert_eq!(
        paths(&r.rejected_fields),
        [
            "secrets.from_env",
            "app.ipc",
            "app.networks.default.ipv4_address",
            "side.network_mode",
            "side.mac_address",
            "side.external_links",
            "side.volumes_from",
            "side.scale",
            "helper.secrets[0]",
        ]
    );
    let x = &r.rejected_fields;
    assert_eq!(
        reason(x, "secrets.from_env"),
        "berth mounts secrets from files only: give it a `file:` in the project directory"
    );
    assert_eq!(
        reason(x, "side.network_mode"),
        "`network_mode: bridge` is not supported: use `none`, `service:<name>` or the project's `networks`"
    );
    assert_eq!(
        reason(x, "helper.secrets[0]"),
        "`nowhere` is not defined under the top-level `secrets`"
    );
    assert_eq!(
        reason(x, "side.scale"),
        "berth runs exactly one instance of every service; remove a service it should not run"
    );
    for p in [
        "app.image",
        "app.hostname",
        "app.labels",
        "app.extra_hosts",
        "app.tmpfs",
        "app.read_only",
        "app.mem_limit",
        "app.cpus",
        "app.cap_drop",
        "app.blkio_config.weight",
        "app.networks.default.aliases",
        "app.deploy.resources",
        "secrets.token",
    ] {
        assert!(paths(&r.supported_fields).contains(&p), "{p}");
    }
    let t = &r.transformed_fields;
    assert_eq!(
        reason(t, "app.pull_policy"),
        "berth pulls an image only when it is missing (`pull_policy: missing`)"
    );
    assert_eq!(
        reason(t, "app.deploy.restart_policy"),
        "mapped to berth's restart policy: autorestart (any), unlimited restarts: `max_attempts` applies to on-failure only"
    );
    assert_eq!(
        paths(&r.warnings),
        [
            "networks.default.driver",
            "networks.default.ipam",
            "volumes.data.labels",
            "app.build",
            "app.blkio_config.device_read_bps",
            "app.cpu_count",
            "app.isolation",
            "app.annotations",
            "app.networks.default.priority",
            "app.secrets[0].mode",
            "app.deploy.resources.reservations.cpus",
            "app.deploy.restart_policy.delay",
            "helper.volumes[0].bind",
            "helper.volumes[1].tmpfs.noexec",
            "helper.attach",
        ]
    );
    assert_eq!(
        reason(&r.warnings, "app.build"),
        "berth does not build images: the service runs `image`, which must exist or be pullable"
    );
}

#[test]
fn joining_a_pid_or_ipc_namespace_orders_the_start() {
    let text = "services:
  app: {image: x, pid: 'service:base', ipc: 'service:base'}
  base: {image: x}
  odd: {image: x, uts: 'service:base', ipc: 'service:ghost'}
";
    let r = validate(text.as_bytes(), Runtime::Docker);
    assert_eq!(paths(&r.rejected_fields), ["odd.uts", "odd.ipc"]);
    assert_eq!(
        reason(&r.rejected_fields, "odd.uts"),
        "`uts` cannot join another service; only `pid` and `ipc` can"
    );
    for p in ["app.pid", "app.ipc"] {
        assert!(paths(&r.supported_fields).contains(&p), "{p}");
    }
    let ok = "services:
  app: {image: x, pid: 'service:base'}
  base: {image: x}
";
    assert_eq!(start_order(&file(ok)).unwrap(), [vec!["base"], vec!["app"]]);
}

#[test]
fn unreadable_container_values_are_rejected_with_the_plans_reason() {
    let text = "services:
  a:
    image: x
    mem_limit: lots
    cpus: 0.5
    ulimits: {nofile: {soft: 1}}
    extra_hosts: [nocolon]
    deploy: {resources: {limits: {memory: huge}}}
";
    let r = validate(text.as_bytes(), Runtime::Docker);
    let x = &r.rejected_fields;
    assert_eq!(
        paths(x),
        ["a.mem_limit", "a.ulimits", "a.extra_hosts", "a.deploy"]
    );
    assert_eq!(
        reason(x, "a.mem_limit"),
        "`lots` is not a byte size (like 512m or 1g)"
    );
    assert_eq!(reason(x, "a.ulimits"), "`nofile` needs `soft` and `hard`");
    assert_eq!(
        reason(x, "a.deploy"),
        "a.deploy.resources.limits.memory: `huge` is not a byte size (like 512m or 1g)"
    );
}

/// A project using an override file, profiles, `extends` and `include`
/// runs on the native runtime exactly as resolved: the override's
/// service joins, a service of an inactive profile does not run, the one
/// an active service needs does, the extended service gets its base's
/// environment, the included project's service runs; `stop` ends them.
#[test]
fn override_profiles_extends_and_include_run_natively() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let pkg = root.join("shop");
    std::fs::create_dir_all(pkg.join("extra")).unwrap();
    let write = |p: &str, t: &str| std::fs::write(pkg.join(p), t).unwrap();
    write(
        "manifest.json",
        r#"{"app_id":"dev.test.shop","name":"shop","version":"1","profiles":["web"]}"#,
    );
    write(
        "compose.yaml",
        "name: shop
include: [extra/compose.yaml]
services:
  base:
    command: [sleep, '30']
    environment: {GREETING: hello}
    profiles: [never]
  web:
    extends: base
    profiles: [web]
    depends_on: [db]
  db:
    command: [sleep, '30']
    profiles: [storage]
  tools:
    command: [sleep, '30']
    profiles: [tools]
",
    );
    write(
        "compose.override.yaml",
        "services:\n  worker:\n    command: [sleep, '30']\n",
    );
    write(
        "extra/compose.yaml",
        "services:\n  cache:\n    command: [sleep, '${SLEEP}']\n",
    );
    write("extra/.env", "SLEEP=30\n");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (_services, projects) = super::snapshot_tests::engine(root).await;
        projects
            .ensure(EnsureRequest {
                project_id: "shop".into(),
                package_path: pkg.clone(),
                ..Default::default()
            })
            .await
            .unwrap();
        projects.open_project("shop", &|_| {}).await.unwrap();
        projects
            .start("shop", std::collections::BTreeMap::new())
            .await
            .unwrap();
        let st = projects.status("shop").await.unwrap();
        let mut names: Vec<&str> = st.services.iter().map(|s| s.name.as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, ["cache", "db", "web", "worker"]);
        assert!(
            st.services.iter().all(|s| s.state == ServiceState::Running),
            "{:?}",
            st.services
        );
        projects.stop("shop", None).await.unwrap();
        let st = projects.status("shop").await.unwrap();
        assert!(
            st.services.iter().all(|s| s.state != ServiceState::Running),
            "{:?}",
            st.services
        );
    });
}
