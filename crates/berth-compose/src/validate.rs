//! Validation of a resolved Compose project (the model the runtimes
//! receive, see [`crate::resolve`]) against what a berth runtime can honour:
//! every key a service uses is reported as supported, transformed (berth
//! changes it, and says how) or rejected (berth will not run the file), and
//! the file as a whole gets warnings for what is ignored or may be unset.
//!
//! Rejections are the security and honesty boundary: a key that would give
//! a service the host (privileged, host namespaces, devices, dangerous
//! capabilities) is refused on every runtime, and the native runtime
//! refuses what it cannot honour rather than silently dropping it.

use crate::error::LoadError;
use crate::model::{fmt_range, ComposeFile, Condition, Mount, PortEntry, Service};
use crate::node::Node;
use crate::order::layers;
use crate::resolve::Project;

pub use crate::report::{FieldNote, Runtime, ValidationReport};

/// A check the caller adds for one service key: whether its runtime can
/// read `key: value` of `service` in `file` (the engine passes the code
/// that builds a container's settings, so what it would refuse at `up`
/// is refused here first). The error is the reason, without the path.
pub type ValueCheck<'a> = &'a dyn Fn(&ComposeFile, &str, &str, &Node) -> Result<(), String>;

/// Validates the resolved `project` for `runtime`.
pub fn validate(
    project: &Project,
    runtime: Runtime,
    value_check: Option<ValueCheck<'_>>,
) -> ValidationReport {
    let mut r = ValidationReport::default();
    let tree = &project.tree;
    let names = |key: &str| match tree.get(key) {
        Some(Node::Map(m)) => m.iter().map(|(k, _)| k.clone()).collect(),
        _ => Vec::new(),
    };
    let file_defs = (names("secrets"), names("configs"));
    for n in &project.notes {
        r.warnings.push(n.clone());
    }
    Checker {
        runtime,
        file: &project.file,
        project_name: &project.name,
        r: &mut r,
        file_defs,
        unset: &project.unset,
        value_check,
    }
    .check(tree);
    r.valid = r.rejected_fields.is_empty();
    r
}

/// The report of a project that could not be resolved: one rejection
/// naming the path and the problem.
pub fn rejected(err: &LoadError) -> ValidationReport {
    ValidationReport {
        valid: false,
        rejected_fields: vec![note(&err.service, &err.path, err.reason.clone())],
        ..Default::default()
    }
}

/// A value as an error shows it: scalars as written, others by kind.
fn describe(v: &Node) -> String {
    match v {
        Node::Seq(_) | Node::Map(_) | Node::Null => v.kind().to_owned(),
        other => format!("`{other}`"),
    }
}

fn note(service: &str, path: &str, reason: impl Into<String>) -> FieldNote {
    FieldNote {
        service: service.to_owned(),
        path: path.to_owned(),
        reason: reason.into(),
    }
}

/// Capabilities that amount to control of the host or of other processes.
const DANGEROUS_CAPS: &[&str] = &[
    "ALL",
    "SYS_ADMIN",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_PTRACE",
    "SYS_BOOT",
    "SYS_TIME",
    "NET_ADMIN",
    "MAC_ADMIN",
    "MAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "BPF",
    "PERFMON",
    "SYSLOG",
    "LINUX_IMMUTABLE",
];

/// Container settings the native runtime has no equivalent for.
const CONTAINER_ONLY: &[&str] = &[
    "read_only",
    "tmpfs",
    "shm_size",
    "sysctls",
    "ulimits",
    "storage_opt",
    "platform",
    "runtime",
    "oom_kill_disable",
    "oom_score_adj",
    "mem_limit",
    "mem_reservation",
    "mem_swappiness",
    "memswap_limit",
    "cpu_shares",
    "cpu_period",
    "cpu_quota",
    "cpu_rt_runtime",
    "cpu_rt_period",
    "cpus",
    "cpuset",
    "pids_limit",
    "blkio_config",
    "cgroup_parent",
    "volumes_from",
    "label_file",
];

/// Keys about the service's network identity.
const NETWORK_IDENTITY: &[&str] = &[
    "hostname",
    "domainname",
    "dns",
    "dns_search",
    "dns_opt",
    "extra_hosts",
    "links",
];

/// One dependency of a cycle, and the key of `from` that creates it.
struct Edge {
    from: String,
    to: String,
    key: &'static str,
    cycle: String,
}

struct Checker<'a> {
    runtime: Runtime,
    file: &'a ComposeFile,
    /// The resolved project name: `<name>_<key>` is the resource name
    /// Compose itself gives (and `config` writes), so it is no override.
    project_name: &'a str,
    r: &'a mut ValidationReport,
    /// Names of the top-level secrets and configs.
    file_defs: (Vec<String>, Vec<String>),
    /// Variables interpolation found unset, by the path that read them.
    unset: &'a [(String, String)],
    value_check: Option<ValueCheck<'a>>,
}

impl Checker<'_> {
    fn native(&self) -> bool {
        self.runtime == Runtime::Native
    }

    fn ok(&mut self, svc: &str, path: String) {
        self.r.supported_fields.push(note(svc, &path, ""));
    }

    fn changed(&mut self, svc: &str, path: String, why: impl Into<String>) {
        self.r.transformed_fields.push(note(svc, &path, why));
    }

    fn reject(&mut self, svc: &str, path: String, why: impl Into<String>) {
        self.r.rejected_fields.push(note(svc, &path, why));
    }

    fn warn(&mut self, svc: &str, path: String, why: impl Into<String>) {
        self.r.warnings.push(note(svc, &path, why));
    }

    /// Supported on Docker; rejected on native with `why`.
    fn docker_only(&mut self, svc: &str, path: String, why: &str) {
        if self.native() {
            self.reject(svc, path, why);
        } else {
            self.ok(svc, path);
        }
    }

    /// Warns about each variable read under `path` that was unset and
    /// had no default: it became empty.
    fn unset_warnings(&mut self, svc: &str, path: &str) {
        for (at, var) in self.unset {
            let under = at == path
                || at
                    .strip_prefix(path)
                    .is_some_and(|r| r.starts_with('.') || r.starts_with('['));
            if under {
                self.r.warnings.push(note(
                    svc,
                    at,
                    format!("`${{{var}}}` has no default: set it in the environment or as a secret, or it is empty"),
                ));
            }
        }
    }

    fn check(mut self, tree: &Node) {
        let Node::Map(top) = tree else { return };
        for (key, value) in top {
            self.top_level(key, value);
        }
        if self.file.services.0.is_empty() {
            self.reject("", "services".into(), "the file defines no services");
        }
        // Each edge of a cycle is reported at the field that creates it.
        let cycle_edges: Vec<Edge> = match layers(self.file) {
            Ok(_) => Vec::new(),
            Err(cycle) => cycle
                .windows(2)
                .map(|w| {
                    let key = self
                        .file
                        .services
                        .get(&w[0])
                        .and_then(|s| s.start_after().into_iter().find(|(d, _)| *d == w[1]))
                        .map_or("depends_on", |(_, k)| k);
                    Edge {
                        from: w[0].clone(),
                        to: w[1].clone(),
                        key,
                        cycle: cycle.join(" -> "),
                    }
                })
                .collect(),
        };
        let services = tree.get("services");
        for (name, svc) in &self.file.services.0 {
            self.r.services.push(name.clone());
            let node = services.and_then(|s| s.get(name)).unwrap_or(&Node::Null);
            self.service(name, svc, node, &cycle_edges);
        }
    }

    fn top_level(&mut self, key: &str, value: &Node) {
        let path = key.to_owned();
        match key {
            "services" => {}
            k if k.starts_with("x-") => {}
            "version" => self.warn(
                "",
                path,
                "`version` is obsolete in the Compose specification and ignored",
            ),
            "name" => self.changed(
                "",
                path,
                "the Compose project name (normalised as Compose does); `berth up` makes it the project id, and the runtime namespace is `berth-<project id>`",
            ),
            "networks" | "volumes" => {
                let Node::Map(entries) = value else { return };
                for (n, def) in entries {
                    let path = format!("{key}.{n}");
                    if def.get("external").is_some_and(Node::is_true) {
                        self.reject(
                            "",
                            path,
                            format!("external {key} live outside the project's namespace"),
                        );
                    } else if self.native() && key == "volumes" {
                        self.changed(
                            "",
                            path,
                            format!(
                                "a directory under the project's state_path (`volumes/{n}`); a native service that lists it gets its path in `${}`",
                                crate::model::native_mount_var("VOLUME", n)
                            ),
                        );
                    } else if self.native() {
                        self.warn(
                            "",
                            path,
                            format!("native services run on the host: {key} have no effect"),
                        );
                    } else {
                        self.changed(
                            "",
                            path.clone(),
                            format!("created in the project's namespace (`<namespace>_{n}`)"),
                        );
                        self.resource_options(&path, key, n, def);
                    }
                }
            }
            "secrets" | "configs" => {
                if self.native() {
                    self.warn(
                        "",
                        path,
                        format!("native services cannot mount {key}; only used ones are rejected"),
                    );
                    return;
                }
                let Node::Map(entries) = value else { return };
                for (n, def) in entries {
                    let path = format!("{key}.{n}");
                    if def.get("file").and_then(Node::as_str).is_some() {
                        self.ok("", path);
                    } else {
                        self.reject(
                            "",
                            path,
                            format!("berth mounts {key} from files only: give it a `file:` in the project directory"),
                        );
                    }
                }
            }
            _ => self.warn("", path, format!("unknown top-level key `{key}`, ignored")),
        }
    }

    fn service(&mut self, name: &str, svc: &Service, node: &Node, cycle: &[Edge]) {
        let valid_name = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !valid_name {
            self.reject(
                name,
                name.to_owned(),
                "a service name must start with a letter or digit and use only letters, digits, `.`, `_` and `-`",
            );
        }
        let Node::Map(entries) = node else {
            if !matches!(node, Node::Null) {
                self.reject(name, name.to_owned(), "a service must be a mapping");
            }
            return;
        };
        if !self.native() && svc.image.is_none() && svc.build.is_none() {
            self.reject(
                name,
                format!("{name}.image"),
                "a container needs an `image`",
            );
        }
        if self.native()
            && svc.image.is_none()
            && svc.build.is_none()
            && svc.command.is_none()
            && svc.entrypoint.is_none()
        {
            self.reject(
                name,
                format!("{name}.command"),
                "the native runtime runs a service's command: give the service a `command`",
            );
        }
        // Compose runs containers under an init when asked; berth always
        // does, so SIGTERM reaches a service running as PID 1.
        if !self.native() {
            self.changed(
                name,
                format!("{name}.init"),
                "berth runs every container under an init so that stop signals reach the service",
            );
        }
        for (key, value) in entries {
            if let Some(shape) = crate::shape::of(key).filter(|s| !s.fits(value)) {
                self.reject(
                    name,
                    format!("{name}.{key}"),
                    format!("expected {}, not {}", shape.expected(), describe(value)),
                );
                continue;
            }
            self.service_key(name, svc, key, value, cycle);
            if !self.native() {
                self.container_value(name, key, value);
            }
            self.unset_warnings(name, &format!("{name}.{key}"));
        }
    }

    /// Rejects a container setting whose value the plan could not read
    /// (`mem_limit: lots`, `cpus: half`, ...), with the plan's own
    /// message, unless the key was rejected already.
    fn container_value(&mut self, name: &str, key: &str, value: &Node) {
        let path = format!("{name}.{key}");
        if self
            .r
            .rejected_fields
            .iter()
            .any(|n| n.service == name && n.path.starts_with(&path))
        {
            return;
        }
        if let Some(Err(why)) = self.value_check.map(|c| c(self.file, name, key, value)) {
            self.reject(name, path, why);
        }
    }

    fn service_key(&mut self, name: &str, svc: &Service, key: &str, value: &Node, cycle: &[Edge]) {
        let path = format!("{name}.{key}");
        let host_value = value.as_str() == Some("host");
        match key {
            "image" => {
                if !self.native() {
                    self.ok(name, path);
                } else if svc.command.is_none() && svc.entrypoint.is_none() {
                    self.reject(
                        name,
                        path,
                        "the native runtime runs a service's command, not an image: give the service a `command`",
                    );
                } else {
                    self.changed(
                        name,
                        path,
                        "the native runtime runs the service's command directly; the image is not pulled",
                    );
                }
            }
            "build" => {
                if self.native() {
                    self.reject(
                        name,
                        path,
                        "the native runtime cannot build images: give the service a `command` instead",
                    );
                } else if svc.image.is_none() {
                    self.reject(
                        name,
                        path,
                        "berth does not build images: build it beforehand and give the service its `image`",
                    );
                } else {
                    self.warn(
                        name,
                        path,
                        "berth does not build images: the service runs `image`, which must exist or be pullable",
                    );
                }
            }
            "command" | "entrypoint" | "environment" => self.ok(name, path),
            "env_file" => {
                let mut bad = false;
                if let Node::Seq(items) = value {
                    for (i, item) in items.iter().enumerate() {
                        match item.get("format").map(|f| f.scalar_text()) {
                            None => {}
                            Some(Some(f)) if f == "dotenv" || f == "raw" => {}
                            Some(f) => {
                                self.reject(
                                    name,
                                    format!("{path}[{i}].format"),
                                    format!(
                                        "unknown env_file format `{}` (dotenv or raw)",
                                        f.unwrap_or_default()
                                    ),
                                );
                                bad = true;
                            }
                        }
                    }
                }
                if !bad {
                    self.ok(name, path);
                }
            }
            "healthcheck" => self.healthcheck(name, path, value),
            "expose" => {
                if self.native() {
                    self.warn(name, path, "native services listen on the host; `expose` has no effect");
                } else {
                    self.ok(name, path);
                }
            }
            "attach" => self.warn(
                name,
                path,
                "berth keeps every service's logs; `attach` is ignored",
            ),
            "profiles" => self.ok(name, path),
            "labels" => {
                if self.native() {
                    self.warn(name, path, format!("`{key}` have no effect on native services"));
                } else {
                    self.ok(name, path);
                }
            }
            "annotations" => self.warn(
                name,
                path,
                "annotations need a newer engine API than berth's 1.41; ignored",
            ),
            "external_links" => self.reject(
                name,
                path,
                "linking to containers outside the project breaks its isolation",
            ),
            "mac_address" => self.reject(
                name,
                path,
                "berth cannot set a MAC address (engine API 1.41 has no per-network MAC)",
            ),
            "cpu_count" | "cpu_percent" | "isolation" => self.warn(
                name,
                path,
                format!("`{key}` applies to Windows containers only; ignored"),
            ),
            "blkio_config" => self.blkio(name, &path, value),
            "ports" => self.ports(name, svc),
            "volumes" => self.volumes(name, svc, value),
            "depends_on" => self.depends_on(name, svc, cycle),
            "networks" => self.networks(name, svc, value),
            // `restart: false` is the boolean spelling of `no`.
            "restart" => match value {
                Node::Bool(false) => self.restart(name, path, "no"),
                v => self.restart(name, path, v.as_str().unwrap_or_default()),
            },
            "init" => {
                if self.native() {
                    self.changed(
                        name,
                        path,
                        "native services are not PID 1: berth stops their whole process tree",
                    );
                }
            }
            "container_name" => self.changed(
                name,
                path,
                format!(
                    "named within the project's namespace (`<namespace>-{}`) so projects never collide",
                    value
                ),
            ),
            "privileged" => {
                if value.is_true() {
                    self.reject(name, path, "privileged services get full control of the host");
                } else {
                    self.ok(name, path);
                }
            }
            "network_mode" => {
                let mode = value.as_str().unwrap_or_default();
                if host_value {
                    self.reject(
                        name,
                        path,
                        "host networking bypasses berth's port allocation and exposes the host's interfaces",
                    );
                } else if self.native() {
                    self.reject(
                        name,
                        path,
                        "native services share the host's network; `network_mode` cannot be honoured",
                    );
                } else if mode.starts_with("service:") {
                    if !self.implicit_dependency(name, svc, key, cycle) {
                        self.ok(name, path);
                    }
                } else if mode.starts_with("container:") {
                    self.reject(
                        name,
                        path,
                        "joining a container outside the project breaks its isolation",
                    );
                } else if mode == "none" {
                    self.ok(name, path);
                } else {
                    self.reject(
                        name,
                        path,
                        format!("`network_mode: {value}` is not supported: use `none`, `service:<name>` or the project's `networks`"),
                    );
                }
            }
            "pid" | "ipc" | "uts" | "userns_mode" | "cgroup" => {
                let mode = value.as_str().unwrap_or_default();
                if host_value {
                    self.reject(
                        name,
                        path,
                        format!("`{key}: host` shares the host's namespace with the service"),
                    );
                } else if mode.starts_with("container:") {
                    self.reject(
                        name,
                        path,
                        "joining a container outside the project breaks its isolation",
                    );
                } else if key == "cgroup" && mode != "private" && !self.native() {
                    self.reject(name, path, "`cgroup` must be `private` (or `host`, which is refused)");
                } else if mode.starts_with("service:") && !matches!(key, "pid" | "ipc") {
                    self.reject(
                        name,
                        path,
                        format!("`{key}` cannot join another service; only `pid` and `ipc` can"),
                    );
                } else if !self.implicit_dependency(name, svc, key, cycle) {
                    // `service:X` of pid/ipc was checked like a dependency.
                    self.docker_only(
                        name,
                        path,
                        "native services share the host's namespaces; this cannot be honoured",
                    );
                }
            }
            "devices" => match value {
                Node::Seq(items) if !items.is_empty() => {
                    for (i, d) in items.iter().enumerate() {
                        self.reject(
                            name,
                            format!("{path}[{i}]"),
                            format!("device `{d}` would give the service direct access to host hardware"),
                        );
                    }
                }
                _ => self.ok(name, path),
            },
            "device_cgroup_rules" => self.reject(
                name,
                path,
                "device cgroup rules give the service access to host devices",
            ),
            "cap_add" => {
                for (i, cap) in svc.cap_add.iter().enumerate() {
                    let bare = cap.trim_start_matches("CAP_").to_ascii_uppercase();
                    let p = format!("{path}[{i}]");
                    if DANGEROUS_CAPS.contains(&bare.as_str()) {
                        self.reject(
                            name,
                            p,
                            format!("capability {bare} gives the service control over the host"),
                        );
                    } else {
                        self.docker_only(
                            name,
                            p,
                            "native services run with the daemon's privileges; capabilities cannot be added",
                        );
                    }
                }
            }
            "cap_drop" => self.docker_only(
                name,
                path,
                "native services run with the daemon's privileges; capabilities cannot be dropped",
            ),
            "security_opt" => {
                for (i, opt) in svc.security_opt.iter().enumerate() {
                    let p = format!("{path}[{i}]");
                    if opt.contains("unconfined") || opt.replace('=', ":") == "label:disable" {
                        self.reject(name, p, format!("`{opt}` turns off the service's confinement"));
                    } else {
                        self.docker_only(
                            name,
                            p,
                            "native services are not confined by security options",
                        );
                    }
                }
            }
            "user" | "group_add" => self.docker_only(
                name,
                path,
                "native services run as the daemon's user",
            ),
            "working_dir" => {
                if self.native() {
                    self.changed(
                        name,
                        path,
                        "a directory on the host for native services; a relative one is taken from the project directory",
                    );
                } else {
                    self.ok(name, path);
                }
            }
            "stop_grace_period" => {
                if self.native() {
                    self.changed(name, path, "becomes the service's kill timeout");
                } else {
                    self.ok(name, path);
                }
            }
            "stop_signal" => {
                if self.native() {
                    self.changed(name, path, "sent to the service's process group at stop, then SIGKILL after the grace");
                } else {
                    self.ok(name, path);
                }
            }
            "tty" | "stdin_open" => self.docker_only(
                name,
                path,
                "native services run without a terminal or stdin",
            ),
            "logging" => self.changed(
                name,
                path,
                if self.native() {
                    "berth captures stdout and stderr in its own rotated logs; the logging driver is not used"
                } else {
                    "berth reads stdout and stderr through the engine's default log driver; the file's driver and options are not used"
                },
            ),
            "secrets" | "configs" => {
                if self.native() {
                    self.reject(
                        name,
                        path,
                        format!("native services cannot see {key} mounted at container paths"),
                    );
                } else {
                    self.file_refs(name, &path, key, value);
                }
            }
            "deploy" => self.deploy(name, value),
            "scale" => self.replicas(name, path, value),
            "pull_policy" => {
                if self.native() {
                    self.warn(name, path, "the native runtime pulls no image; ignored");
                } else if matches!(value.as_str(), Some("missing" | "if_not_present")) {
                    self.ok(name, path);
                } else {
                    self.changed(
                        name,
                        path,
                        "berth pulls an image only when it is missing (`pull_policy: missing`)",
                    );
                }
            }
            "develop" => self.warn(name, path, "`develop` (compose watch) is not supported; ignored"),
            "gpus" => self.reject(name, path, "berth passes no GPUs to services"),
            "use_api_socket" => self.reject(
                name,
                path,
                "access to the Docker engine gives the service control of every container",
            ),
            "post_start" | "pre_stop" => self.reject(
                name,
                path,
                "lifecycle hooks are not run by berth",
            ),
            "credential_spec" => self.reject(name, path, "Windows credential specs are not supported"),
            "provider" | "models" => self.reject(
                name,
                path,
                format!("`{key}` services are not supported by berth"),
            ),
            k if k.starts_with("x-") => {}
            "links" | "volumes_from" if self.implicit_dependency(name, svc, key, cycle) => {}
            "volumes_from" if svc.volumes_from.iter().any(|v| v.starts_with("container:")) => {
                self.reject(
                    name,
                    path,
                    "sharing volumes of a container outside the project breaks its isolation",
                )
            }
            k if NETWORK_IDENTITY.contains(&k) => self.docker_only(
                name,
                path,
                "native services use the host's network identity",
            ),
            k if CONTAINER_ONLY.contains(&k) => self.docker_only(
                name,
                path,
                "a container setting with no equivalent for native services",
            ),
            _ => self.warn(name, path, format!("unknown service key `{key}`, ignored")),
        }
    }

    /// Rejects the services `key` makes this one depend on that are
    /// undefined or close a cycle; true when it rejected any.
    fn implicit_dependency(
        &mut self,
        name: &str,
        svc: &Service,
        key: &str,
        cycle: &[Edge],
    ) -> bool {
        let mut rejected = false;
        for (dep, _) in svc.start_after().into_iter().filter(|(_, k)| *k == key) {
            let path = format!("{name}.{key}");
            if let Some(e) = cycle
                .iter()
                .find(|e| e.from == name && e.to == dep && e.key == key)
            {
                self.reject(name, path, format!("dependency cycle: {}", e.cycle));
                rejected = true;
            } else if self.file.services.get(&dep).is_none() {
                self.reject(name, path, format!("service `{dep}` is not defined"));
                rejected = true;
            }
        }
        rejected
    }

    fn ports(&mut self, name: &str, svc: &Service) {
        for (i, entry) in svc.ports.iter().enumerate() {
            let path = format!("{name}.ports[{i}]");
            let m = match entry.mapping() {
                Ok(m) => m,
                Err(e) => {
                    self.reject(name, path, e);
                    continue;
                }
            };
            if self.native() && m.protocol == "sctp" {
                self.reject(name, path, "the native runtime forwards tcp and udp only");
                continue;
            }
            // What the engine's allocator takes: the same function refuses
            // at `up`.
            if let Err(e) = crate::ports::entry(name, i, entry) {
                self.reject(name, path, e.reason);
                continue;
            }
            let to = match self.native() {
                false => format!("container port {}", fmt_range(m.container)),
                true => format!("the service's port {}", fmt_range(m.container)),
            };
            let why = match m.host {
                Some(h) if h.0 != h.1 && m.container.0 == m.container.1 => format!(
                    "one free port of the host range {} is published (berth's port allocator picks it and keeps it across restarts); forwarded to {to}",
                    fmt_range(h)
                ),
                Some(h) => format!(
                    "the host side ({} requested) is assigned by berth's port allocator, which keeps the requested one when free; forwarded to {to}",
                    fmt_range(h)
                ),
                None => format!("{to} is reached through a host port chosen by berth's port allocator"),
            };
            if matches!(entry, PortEntry::Long(l) if l.mode.as_deref() == Some("host")) {
                self.warn(
                    name,
                    path.clone(),
                    "`mode: host` is a swarm setting; ignored",
                );
            }
            self.changed(name, path, why);
        }
    }

    fn volumes(&mut self, name: &str, svc: &Service, value: &Node) {
        for (i, entry) in svc.volumes.iter().enumerate() {
            let path = format!("{name}.volumes[{i}]");
            // Of a long entry's options, only a tmpfs's `size` and `mode`
            // reach the engine.
            if let Some(Node::Map(opts)) = match value {
                Node::Seq(items) => items.get(i),
                _ => None,
            } {
                for (k, v) in opts {
                    match k.as_str() {
                        "type" | "source" | "target" | "read_only" => {}
                        "tmpfs" => {
                            let Node::Map(t) = v else { continue };
                            for (o, _) in t.iter().filter(|(o, _)| o != "size" && o != "mode") {
                                self.warn(
                                    name,
                                    format!("{path}.tmpfs.{o}"),
                                    "not passed to the engine; ignored",
                                );
                            }
                        }
                        _ => self.warn(
                            name,
                            format!("{path}.{k}"),
                            "mount options are not passed to the engine; ignored",
                        ),
                    }
                }
            }
            let mount = match entry.mount() {
                Ok(m) => m,
                Err(e) => {
                    self.reject(name, path, e);
                    continue;
                }
            };
            match mount {
                Mount::Bind { source, target } => {
                    let s = source.trim_end_matches('/');
                    if s.is_empty()
                        || s.ends_with("docker.sock")
                        || ["/proc", "/sys", "/dev", "/boot"]
                            .iter()
                            .any(|p| s == *p || s.starts_with(&format!("{p}/")))
                    {
                        self.reject(
                            name,
                            path,
                            format!("binding `{source}` exposes the host to the service"),
                        );
                    } else if crate::model::bind_in_project(std::path::Path::new(""), &source).is_some() {
                        let how = if self.native() {
                            format!("native services are not mounted: `{source}` stays at its path in the project directory (their default working directory), not at `{target}`")
                        } else {
                            format!("`{source}` is the project's own path, bound live at `{target}`")
                        };
                        self.changed(name, path, how);
                    } else if self.native() {
                        self.changed(
                            name,
                            path,
                            format!(
                                "native services are not mounted: `{source}` is not used; the service gets the directory `binds/{}` under the project's state_path, its path in `${}`, not at `{target}`",
                                state_bind_dir(&source),
                                crate::model::native_mount_var("BIND", &target)
                            ),
                        );
                    } else {
                        self.changed(
                            name,
                            path,
                            format!("`{source}` is not used: the service gets the directory `binds/{}` under the project's state_path, mounted at `{target}`", state_bind_dir(&source)),
                        );
                    }
                }
                Mount::Named { name: vol, .. } if self.file.volumes.get(&vol).is_none() => self
                    .reject(
                        name,
                        path,
                        format!("volume `{vol}` is not declared under the top-level `volumes`"),
                    ),
                Mount::Named { name: vol, target } if self.native() => self.changed(
                    name,
                    path,
                    format!(
                        "native services are not mounted: volume `{vol}` is the directory `volumes/{vol}` under the project's state_path, its path in `${}`, not at `{target}`",
                        crate::model::native_mount_var("VOLUME", &vol)
                    ),
                ),
                _ if self.native() => self.reject(
                    name,
                    path,
                    "the native runtime supports binds and named volumes only (native services are not mounted: they get the directories' paths in variables)",
                ),
                Mount::Named { name: vol, .. } => self.changed(
                    name,
                    path,
                    format!("volume `{vol}` is namespaced per project (`<namespace>_{vol}`)"),
                ),
                Mount::Anonymous { .. } => self.changed(
                    name,
                    path,
                    "the anonymous volume is created in the project's namespace",
                ),
                Mount::Tmpfs { .. } => self.ok(name, path),
                Mount::Other { kind, .. } => {
                    self.reject(name, path, format!("`{kind}` mounts are not supported"))
                }
            }
        }
    }

    fn depends_on(&mut self, name: &str, svc: &Service, cycle: &[Edge]) {
        for dep in svc.dependencies() {
            let path = format!("{name}.depends_on.{}", dep.service);
            if let Some(e) = cycle
                .iter()
                .find(|e| e.from == name && e.to == dep.service && e.key == "depends_on")
            {
                self.reject(name, path, format!("dependency cycle: {}", e.cycle));
                continue;
            }
            let Some(target) = self.file.services.get(&dep.service) else {
                if dep.required {
                    self.reject(
                        name,
                        path,
                        format!("depends on `{}`, which is not defined", dep.service),
                    );
                } else {
                    self.warn(
                        name,
                        path,
                        format!(
                            "optional dependency `{}` is not defined; skipped",
                            dep.service
                        ),
                    );
                }
                continue;
            };
            match dep.condition {
                Err(c) => self.reject(
                    name,
                    path,
                    format!("unknown condition `{c}` (service_started, service_healthy or service_completed_successfully)"),
                ),
                Ok(Condition::Healthy)
                    if !target.healthcheck.as_ref().is_some_and(|h| h.enabled()) =>
                {
                    let why = format!(
                        "`{}` has no healthcheck, so service_healthy can never be met",
                        dep.service
                    );
                    if self.native() {
                        self.reject(name, path, why);
                    } else {
                        self.warn(
                            name,
                            path.clone(),
                            format!("`{}` defines no healthcheck; its image must", dep.service),
                        );
                        self.ok(name, path);
                    }
                }
                Ok(_) => self.ok(name, path),
            }
        }
    }

    fn networks(&mut self, name: &str, svc: &Service, node: &Node) {
        let Some(nets) = &svc.networks else { return };
        for net in nets.names() {
            let path = format!("{name}.networks.{net}");
            if self.native() {
                if net == "default" {
                    self.ok(name, path);
                } else {
                    self.reject(
                        name,
                        path,
                        "native services share the host's network; only `default` can be honoured",
                    );
                }
            } else if net != "default" && self.file.networks.get(&net).is_none() {
                self.reject(
                    name,
                    path,
                    format!("network `{net}` is not declared under the top-level `networks`"),
                );
            } else {
                self.changed(
                    name,
                    path.clone(),
                    format!("network `{net}` is namespaced per project (`<namespace>_{net}`)"),
                );
                let Some(Node::Map(opts)) = node.get(&net) else {
                    continue;
                };
                for (k, _) in opts {
                    let p = format!("{path}.{k}");
                    match k.as_str() {
                        "aliases" => self.ok(name, p),
                        "ipv4_address" | "ipv6_address" => self.reject(
                            name,
                            p,
                            "berth's networks have no fixed subnet, so addresses cannot be fixed: reach the service by name",
                        ),
                        _ => self.warn(name, p, format!("`{k}` is not passed to the engine; ignored")),
                    }
                }
            }
        }
    }

    /// `healthcheck.test` is a string (run by the container's shell) or a
    /// list whose first item is `NONE`, `CMD` or `CMD-SHELL`; its
    /// durations are Compose durations.
    fn healthcheck(&mut self, name: &str, path: String, value: &Node) {
        let mut bad = false;
        match value.get("test") {
            None | Some(Node::Str(_)) => {}
            Some(Node::Seq(items)) => {
                let first = items.first().and_then(Node::as_str);
                if !matches!(first, Some("NONE" | "CMD" | "CMD-SHELL")) {
                    self.reject(
                        name,
                        format!("{path}.test"),
                        format!(
                            "expected a string, or a list whose first item is NONE, CMD or CMD-SHELL (not {})",
                            first.map_or_else(|| "an empty list".to_owned(), |f| format!("`{f}`"))
                        ),
                    );
                    bad = true;
                } else if first != Some("NONE") && items.len() < 2 {
                    self.reject(
                        name,
                        format!("{path}.test"),
                        "expected a command after CMD or CMD-SHELL",
                    );
                    bad = true;
                }
            }
            Some(other) => {
                self.reject(
                    name,
                    format!("{path}.test"),
                    format!("expected a string or a list, not {}", other.kind()),
                );
                bad = true;
            }
        }
        for key in ["interval", "timeout", "start_period", "start_interval"] {
            match value.get(key) {
                None | Some(Node::Null) => {}
                Some(Node::Int(n)) if *n >= 0 => {}
                Some(Node::Str(s)) if crate::units::parse_duration(s).is_ok() => {}
                Some(other) => {
                    self.reject(
                        name,
                        format!("{path}.{key}"),
                        format!("expected a duration (like 30s, 1m30s, 500ms), not `{other}`"),
                    );
                    bad = true;
                }
            }
        }
        if !bad {
            self.ok(name, path);
        }
    }

    fn restart(&mut self, name: &str, path: String, policy: &str) {
        let why = match policy.split_once(':') {
            _ if policy == "no" => "autorestart off".to_owned(),
            _ if policy == "always" || policy == "unless-stopped" => {
                "autorestart on, unlimited restarts with berth's crash-loop backoff".to_owned()
            }
            _ if policy == "on-failure" => {
                "autorestart after failing exits, unlimited restarts with berth's crash-loop backoff"
                    .to_owned()
            }
            Some(("on-failure", n)) if n.parse::<u32>().is_ok() => {
                format!("autorestart after failing exits, max_restarts {n}")
            }
            _ => {
                self.reject(
                    name,
                    path,
                    format!("unknown restart policy `{policy}` (no, always, on-failure[:N], unless-stopped)"),
                );
                return;
            }
        };
        self.changed(
            name,
            path,
            format!("mapped to berth's restart policy: {why}"),
        );
    }

    /// Options of a top-level network or volume beyond `external`: berth
    /// creates a plain bridge network, and a volume backed by a directory
    /// under state_path, so the others are ignored.
    fn resource_options(&mut self, path: &str, key: &str, n: &str, def: &Node) {
        let Node::Map(opts) = def else { return };
        let plain = if key == "networks" { "bridge" } else { "local" };
        let default_name = format!("{}_{n}", self.project_name);
        for (k, v) in opts {
            if k == "external"
                || (k == "driver" && v.as_str() == Some(plain))
                || (k == "name" && v.as_str() == Some(default_name.as_str()))
            {
                continue;
            }
            let why = if key == "networks" {
                format!("`{k}` is ignored: berth creates a plain bridge network")
            } else {
                format!(
                    "`{k}` is ignored: the volume is a directory under the project's state_path"
                )
            };
            self.warn("", format!("{path}.{k}"), why);
        }
    }

    /// A service's `secrets` or `configs`: each must name a top-level one
    /// (whose `file:` is checked there); it is mounted read-only.
    fn file_refs(&mut self, name: &str, path: &str, key: &str, value: &Node) {
        let Node::Seq(refs) = value else {
            self.reject(name, path.to_owned(), format!("`{key}` must be a list"));
            return;
        };
        let defs = match key {
            "secrets" => self.file_defs.0.clone(),
            _ => self.file_defs.1.clone(),
        };
        let at = match key {
            "secrets" => "`/run/secrets/<name>` (or `target` under it)",
            _ => "`/<name>` (or its `target`)",
        };
        for (i, r) in refs.iter().enumerate() {
            let p = format!("{path}[{i}]");
            let source = match r {
                Node::Str(s) => Some(s.as_str()),
                m => m.get("source").and_then(Node::as_str),
            };
            let Some(source) = source else {
                self.reject(name, p, "an entry needs a `source`");
                continue;
            };
            if !defs.iter().any(|d| d == source) {
                self.reject(
                    name,
                    p,
                    format!("`{source}` is not defined under the top-level `{key}`"),
                );
                continue;
            }
            self.changed(
                name,
                p.clone(),
                format!("the file of `{source}` (inside the project directory) is bind-mounted read-only at {at}"),
            );
            if let Node::Map(opts) = r {
                for (k, _) in opts
                    .iter()
                    .filter(|(k, _)| matches!(k.as_str(), "uid" | "gid" | "mode"))
                {
                    self.warn(
                        name,
                        format!("{p}.{k}"),
                        format!("`{k}` is not honoured: the file keeps its owner and mode"),
                    );
                }
            }
        }
    }

    /// `blkio_config`: the weight is passed on; per-device settings name
    /// host devices and are ignored.
    fn blkio(&mut self, name: &str, path: &str, value: &Node) {
        if self.native() {
            self.reject(
                name,
                path.to_owned(),
                "a container setting with no equivalent for native services",
            );
            return;
        }
        let Node::Map(opts) = value else { return };
        for (k, _) in opts {
            let p = format!("{path}.{k}");
            if k == "weight" {
                self.ok(name, p);
            } else {
                self.warn(
                    name,
                    p,
                    "per-device I/O settings are not passed to the engine; ignored",
                );
            }
        }
    }

    /// `deploy.resources`: the CPU, memory and pids limits and the memory
    /// reservation are honoured; the rest (CPU reservations, devices) is
    /// not.
    fn resources(&mut self, name: &str, path: &str, value: &Node) {
        let Node::Map(groups) = value else { return };
        for (group, v) in groups {
            let Node::Map(items) = v else { continue };
            for (k, _) in items {
                let honoured = matches!(
                    (group.as_str(), k.as_str()),
                    ("limits", "cpus" | "memory" | "pids") | ("reservations", "memory")
                );
                if !honoured {
                    self.warn(
                        name,
                        format!("{path}.{group}.{k}"),
                        "not passed to the engine; ignored",
                    );
                }
            }
        }
    }

    fn replicas(&mut self, name: &str, path: String, value: &Node) {
        match value {
            Node::Int(1) => self.ok(name, path),
            Node::Int(0) => self.reject(
                name,
                path,
                "berth runs exactly one instance of every service; remove a service it should not run",
            ),
            _ => self.reject(
                name,
                path,
                "berth runs one instance per service (host ports are allocated per service)",
            ),
        }
    }

    fn deploy(&mut self, name: &str, value: &Node) {
        let Node::Map(entries) = value else { return };
        for (key, v) in entries {
            let path = format!("{name}.deploy.{key}");
            match key.as_str() {
                "replicas" => self.replicas(name, path, v),
                "resources" => {
                    self.docker_only(
                        name,
                        path.clone(),
                        "native services run without resource limits",
                    );
                    if !self.native() {
                        self.resources(name, &path, v);
                    }
                }
                "restart_policy" => {
                    let cond = v.get("condition").and_then(Node::as_str).unwrap_or("any");
                    let max = v.get("max_attempts").map(Node::to_string);
                    let why = match (cond, max) {
                        ("none", _) => "autorestart off".to_owned(),
                        ("on-failure", Some(m)) => {
                            format!("autorestart (on-failure), max_restarts {m}")
                        }
                        ("on-failure", None) => {
                            "autorestart (on-failure), unlimited restarts".to_owned()
                        }
                        ("any", Some(_)) => "autorestart (any), unlimited restarts: `max_attempts` applies to on-failure only".to_owned(),
                        ("any", None) => "autorestart (any), unlimited restarts".to_owned(),
                        (c, _) => {
                            self.reject(
                                name,
                                path,
                                format!("unknown restart condition `{c}` (none, on-failure or any)"),
                            );
                            continue;
                        }
                    };
                    self.changed(
                        name,
                        path.clone(),
                        format!("mapped to berth's restart policy: {why}"),
                    );
                    if let Node::Map(opts) = v {
                        for (k, _) in opts.iter().filter(|(k, _)| k == "delay" || k == "window") {
                            self.warn(
                                name,
                                format!("{path}.{k}"),
                                format!(
                                    "`{k}` is not honoured; restarts follow the engine's backoff"
                                ),
                            );
                        }
                    }
                }
                "mode" | "placement" | "update_config" | "rollback_config" | "endpoint_mode"
                | "labels" => self.warn(
                    name,
                    path,
                    format!("`deploy.{key}` is a swarm setting; ignored"),
                ),
                _ => self.warn(name, path, format!("unknown deploy key `{key}`, ignored")),
            }
        }
    }
}

/// The directory under `state_path/binds/` that backs a bind from outside
/// the project (`../x`, `/srv/x`, `~/x`): the source's plain components,
/// as the engine's plan places it (`/srv/x` gives `srv/x`).
fn state_bind_dir(source: &str) -> String {
    std::path::Path::new(source.trim_start_matches('~'))
        .components()
        .filter_map(|c| match c {
            std::path::Component::Normal(n) => Some(n.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("/")
}
