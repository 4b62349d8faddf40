//! From a resolved, validated Compose project (`berth_compose::load`:
//! interpolated, merged, profiles applied) to a [`Plan`]: commands in exec form,
//! environment, health checks with Compose's defaults, restart policies,
//! binds from outside the project backed under `state_path` (native services
//! get their paths and `BERTH_STATE_DIR` in variables), names namespaced, host ports from
//! the allocator.

use super::compose::{Command, ComposeFile, Environment, Mount, Node, Scalar};
use super::model::{PortMapping, ProjectError, Protocol, RuntimeKind};
use super::runtime::{
    ContainerSettings, HealthSpec, MountSource, Plan, PlannedMount, PlannedService, PlannedVolume,
    Probe, RestartPolicy,
};
use super::settings::{container_settings, Context};
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

/// Compose's health-check defaults.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_RETRIES: u32 = 3;

/// A port the Compose file publishes, before host ports are assigned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WantedPort {
    /// The service.
    pub service: String,
    /// Its port.
    pub container_port: u16,
    /// tcp / udp.
    pub protocol: Protocol,
    /// The host IP asked for ("" = all).
    pub host_ip: String,
    /// The host port asked for, if any.
    pub host_port: Option<u16>,
    /// A host range to take one free port from (`8000-8005:80`).
    pub host_range: Option<(u16, u16)>,
}

pub use berth_compose::units::parse_duration;

/// Reads an env file's text into `out` (the Compose format of
/// `berth_compose::dotenv`); `vars` are the variables its values may use.
fn parse_env_lines(
    text: &str,
    vars: &BTreeMap<String, String>,
    out: &mut BTreeMap<String, String>,
    what: &str,
) -> Result<(), ProjectError> {
    let parsed = berth_compose::dotenv::parse(text, vars)
        .map_err(|e| ProjectError::InvalidArgument(format!("{what}: {e}")))?;
    out.extend(parsed);
    Ok(())
}

/// The argv of a `command` or `entrypoint`. A string is split into words
/// in a container, as docker compose does (no shell: an image's own
/// ENTRYPOINT sees the words, and images without `/bin/sh` work); on the
/// native runtime it runs through `/bin/sh -c`, as a Procfile line does,
/// since a host command line is written for a shell (docs/project-api.md).
///
/// # Errors
/// A string with an unbalanced quote, at `what` (`web.command`).
fn argv(c: &Command, docker: bool, what: &str) -> Result<Vec<String>, ProjectError> {
    Ok(match c {
        Command::Shell(s) if docker => berth_compose::config::split_words(s)
            .map_err(|e| ProjectError::InvalidArgument(format!("{what}: {e}")))?,
        Command::Shell(s) => vec!["/bin/sh".into(), "-c".into(), s.clone()],
        Command::Exec(v) => v.clone(),
    })
}

fn scalar(s: &Scalar) -> String {
    match s {
        Scalar::Bool(b) => b.to_string(),
        Scalar::Int(i) => i.to_string(),
        Scalar::Float(f) => f.to_string(),
        Scalar::Str(s) => s.clone(),
    }
}

/// The namespace of project `id`.
pub fn namespace(id: &str) -> String {
    format!("berth-{id}")
}

/// Checks a project id: it names runtime resources and directories.
pub fn check_project_id(id: &str) -> Result<(), ProjectError> {
    let ok = !id.is_empty()
        && id.len() <= 63
        && id
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(ProjectError::InvalidArgument(format!(
            "project_id {id:?} must be 1-63 characters of lowercase letters, digits, - and _, starting with a letter or digit"
        )))
    }
}

/// A relative path made of plain components only (`..`, `/` and `~`
/// dropped), so a source can never point outside the directory it is
/// placed under.
fn confined(p: &str) -> PathBuf {
    let mut out = PathBuf::new();
    for c in Path::new(p.trim_start_matches('~')).components() {
        if let Component::Normal(n) = c {
            out.push(n);
        }
    }
    out
}

/// The ports `file` publishes, expanded (ranges become single ports):
/// `berth_compose::ports::wanted`, which validation reports from too.
pub fn wanted_ports(file: &ComposeFile) -> Result<Vec<WantedPort>, ProjectError> {
    let wanted = berth_compose::ports::wanted(file)
        .map_err(|e| ProjectError::InvalidArgument(format!("{}: {}", e.path, e.reason)))?;
    wanted
        .into_iter()
        .map(|w| {
            let protocol = Protocol::parse(&w.protocol).ok_or_else(|| {
                ProjectError::InvalidArgument(format!(
                    "{}: protocol {} is not forwarded (tcp or udp)",
                    w.service, w.protocol
                ))
            })?;
            Ok(WantedPort {
                service: w.service,
                container_port: w.container_port,
                protocol,
                host_ip: w.host_ip,
                host_port: w.host_port,
                host_range: w.host_range,
            })
        })
        .collect()
}

fn environment(
    env: &Option<Environment>,
    out: &mut BTreeMap<String, String>,
    secrets: &BTreeMap<String, String>,
) {
    match env {
        None => {}
        Some(Environment::List(items)) => {
            for item in items {
                match item.split_once('=') {
                    Some((k, v)) => {
                        out.insert(k.to_owned(), v.to_owned());
                    }
                    // `- NAME` takes the value from the secrets given at
                    // start, like Compose takes it from its shell.
                    None => {
                        if let Some(v) = secrets.get(item) {
                            out.insert(item.clone(), v.clone());
                        }
                    }
                }
            }
        }
        Some(Environment::Map(m)) => {
            for (k, v) in &m.0 {
                match v {
                    Some(v) => {
                        out.insert(k.clone(), scalar(v));
                    }
                    None => {
                        if let Some(v) = secrets.get(k) {
                            out.insert(k.clone(), v.clone());
                        }
                    }
                }
            }
        }
    }
}

/// Reads `env_file` entries (relative to the project, confined to it).
fn env_files(
    node: &Node,
    project_dir: &Path,
    svc: &str,
    vars: &BTreeMap<String, String>,
    out: &mut BTreeMap<String, String>,
) -> Result<(), ProjectError> {
    let entries: Vec<(String, bool, Option<String>)> = match node.get("env_file") {
        None => return Ok(()),
        Some(Node::Str(s)) => vec![(s.clone(), true, None)],
        Some(Node::Seq(items)) => items
            .iter()
            .filter_map(|i| match i {
                Node::Str(s) => Some((s.clone(), true, None)),
                m @ Node::Map(_) => m.get("path").and_then(Node::as_str).map(|p| {
                    let required = !matches!(m.get("required"), Some(Node::Bool(false)));
                    let format = m.get("format").and_then(Node::as_str).map(str::to_owned);
                    (p.to_owned(), required, format)
                }),
                _ => None,
            })
            .collect(),
        Some(_) => return Ok(()),
    };
    for (path, required, format) in entries {
        let full = project_dir.join(confined(&path));
        let text = match std::fs::read_to_string(&full) {
            Ok(t) => t,
            Err(_) if !required => continue,
            Err(e) => {
                return Err(ProjectError::PathNotFound(format!(
                    "{svc}.env_file: cannot read {}: {e}",
                    full.display()
                )))
            }
        };
        let parsed = berth_compose::dotenv::parse_format(&text, format.as_deref(), vars)
            .map_err(|e| ProjectError::InvalidArgument(format!("{svc}.env_file {path}: {e}")))?;
        out.extend(parsed);
    }
    Ok(())
}

fn duration_at(node: &Node, key: &str, svc: &str) -> Result<Option<Duration>, ProjectError> {
    match node.get(key) {
        None | Some(Node::Null) => Ok(None),
        Some(Node::Int(n)) if *n >= 0 => Ok(Some(Duration::from_secs(*n as u64))),
        Some(Node::Str(s)) => parse_duration(s)
            .map(Some)
            .map_err(|e| ProjectError::InvalidArgument(format!("{svc}.{key}: {e}"))),
        Some(other) => Err(ProjectError::InvalidArgument(format!(
            "{svc}.{key}: `{other}` is not a duration"
        ))),
    }
}

/// `restart`, unless `deploy.restart_policy` is set: it is the newer
/// spelling and wins, as in Compose. Its `condition: any` restarts without
/// limit (the engine counts attempts for `on-failure` only).
fn restart_policy(node: &Node) -> RestartPolicy {
    if let Some(p) = node.get("deploy").and_then(|d| d.get("restart_policy")) {
        return match p.get("condition").and_then(Node::as_str).unwrap_or("any") {
            "none" => RestartPolicy::No,
            "on-failure" => RestartPolicy::OnFailure(match p.get("max_attempts") {
                Some(Node::Int(n)) => u32::try_from(*n).unwrap_or(0),
                _ => 0,
            }),
            _ => RestartPolicy::Always,
        };
    }
    let s = match node.get("restart") {
        Some(Node::Str(s)) => s.as_str(),
        _ => "no",
    };
    match s {
        "always" => RestartPolicy::Always,
        "unless-stopped" => RestartPolicy::UnlessStopped,
        "on-failure" => RestartPolicy::OnFailure(0),
        s => match s.strip_prefix("on-failure:").and_then(|n| n.parse().ok()) {
            Some(n) => RestartPolicy::OnFailure(n),
            None => RestartPolicy::No,
        },
    }
}

/// The container name of service `name`: its `container_name` or the
/// service name, under the namespace so projects never collide.
fn container_name(ns: &str, name: &str, svc: &super::compose::Service) -> String {
    svc.container_name
        .as_ref()
        .map(|c| format!("{ns}-{}", confined(c).to_string_lossy()))
        .unwrap_or_else(|| format!("{ns}-{name}"))
}

/// The volume behind an anonymous mount of `service` at `target`: named
/// after both, so the same mount finds the same volume after a restart,
/// and namespaced so `remove` finds it.
fn anonymous_volume(ns: &str, service: &str, target: &str) -> String {
    let path: String = target
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("{ns}_{service}_anon{path}")
}

/// The engine's options for a long tmpfs mount's `size` (a byte size)
/// and `mode` (octal digits, as written).
fn tmpfs_options(t: &Node, at: &str) -> Result<String, ProjectError> {
    let mut opts = Vec::new();
    if let Some(size) = t.get("size") {
        let bytes = super::settings::parse_bytes(size)
            .map_err(|e| ProjectError::InvalidArgument(format!("{at}.size: {e}")))?;
        opts.push(format!("size={bytes}"));
    }
    match t.get("mode") {
        None => {}
        Some(m @ (Node::Int(_) | Node::Str(_))) => opts.push(format!("mode={m}")),
        Some(m) => {
            return Err(ProjectError::InvalidArgument(format!(
                "{at}.mode: `{m}` is not a mode"
            )))
        }
    }
    Ok(opts.join(","))
}

/// Reads `label_file` entries (relative to the project, confined to it)
/// into the labels; the file's own `labels` win.
fn label_files(
    node: &Node,
    project_dir: &Path,
    svc: &str,
    c: &mut ContainerSettings,
) -> Result<(), ProjectError> {
    let files: Vec<&str> = match node.get("label_file") {
        Some(Node::Str(s)) => vec![s.as_str()],
        Some(Node::Seq(items)) => items.iter().filter_map(Node::as_str).collect(),
        _ => return Ok(()),
    };
    let mut labels = BTreeMap::new();
    for file in files {
        let full = inside_project(project_dir, file)
            .map_err(|e| ProjectError::InvalidArgument(format!("{svc}.label_file: {e}")))?;
        let text = std::fs::read_to_string(&full).map_err(|e| {
            ProjectError::PathNotFound(format!(
                "{svc}.label_file: cannot read {}: {e}",
                full.display()
            ))
        })?;
        parse_env_lines(
            &text,
            &BTreeMap::new(),
            &mut labels,
            &format!("{svc}.label_file"),
        )?;
    }
    labels.extend(std::mem::take(&mut c.labels));
    c.labels = labels;
    Ok(())
}

/// `file` under the project directory: `..` and absolute prefixes are
/// dropped ([`confined`]), and a path that exists is resolved, so a
/// symlink leading out of the project is refused and the engine is given
/// the resolved path (a later swap of the link does not redirect it).
fn inside_project(project_dir: &Path, file: &str) -> Result<PathBuf, String> {
    let path = project_dir.join(confined(file));
    match (path.canonicalize(), project_dir.canonicalize()) {
        (Ok(real), Ok(root)) if real.starts_with(&root) => Ok(real),
        (Ok(_), Ok(_)) => Err(format!("`{file}` leads outside the project directory")),
        _ => Ok(path),
    }
}

/// The host path a bind `source` mounts: inside the project directory the
/// project's own path, live, resolved (its deepest existing part must
/// resolve inside the project, so no symlink leads the mount, or the
/// directory made for a missing source, out of it); elsewhere a directory
/// of the project's under `state_path/binds/`.
fn bind_source(input: &PlanInput<'_>, source: &str) -> Result<PathBuf, String> {
    let dir = input.project_dir;
    let Some(rel) = super::compose::bind_in_project(dir, source) else {
        return Ok(input.state_path.join("binds").join(confined(source)));
    };
    let path = dir.join(rel);
    let mut existing = path.as_path();
    while !existing.exists() {
        match existing.parent() {
            Some(p) => existing = p,
            None => break,
        }
    }
    let (Ok(real), Ok(root)) = (existing.canonicalize(), dir.canonicalize()) else {
        return Ok(path);
    };
    if !real.starts_with(&root) {
        return Err(format!(
            "`{source}` leads outside the project directory through a symlink"
        ));
    }
    // (Joining an empty rest would add a trailing `/`.)
    match path.strip_prefix(existing) {
        Ok(rest) if !rest.as_os_str().is_empty() => Ok(real.join(rest)),
        _ => Ok(real),
    }
}

#[derive(Clone, Copy)]
enum FileKind {
    Secret,
    Config,
}

impl FileKind {
    fn key(self) -> &'static str {
        match self {
            FileKind::Secret => "secrets",
            FileKind::Config => "configs",
        }
    }
}

/// The read-only bind mounts of a service's `secrets` (at
/// `/run/secrets/<name>`, or `target` under it) or `configs` (at
/// `/<name>`, or `target`). Only `file:` sources are mounted (validation
/// rejects the others); they resolve inside the project directory, and one
/// that leads out of it through a symlink is refused.
fn file_mounts(
    input: &PlanInput<'_>,
    node: &Node,
    svc: &str,
    kind: FileKind,
) -> Result<Vec<PlannedMount>, ProjectError> {
    let key = kind.key();
    let Some(Node::Seq(refs)) = node.get(key) else {
        return Ok(Vec::new());
    };
    let bad = |why: String| ProjectError::InvalidArgument(format!("{svc}.{key}: {why}"));
    let mut out = Vec::new();
    for r in refs {
        let (source, target) = match r {
            Node::Str(s) => (s.as_str(), None),
            m @ Node::Map(_) => (
                m.get("source")
                    .and_then(Node::as_str)
                    .ok_or_else(|| bad("an entry needs a `source`".into()))?,
                m.get("target").and_then(Node::as_str),
            ),
            other => return Err(bad(format!("`{other}` is not a name or a mapping"))),
        };
        let file = input
            .tree
            .get(key)
            .and_then(|defs| defs.get(source))
            .and_then(|d| d.get("file"))
            .and_then(Node::as_str)
            .ok_or_else(|| {
                bad(format!(
                    "`{source}` is not defined with a `file:` at top level"
                ))
            })?;
        let path = inside_project(input.project_dir, file).map_err(bad)?;
        let target = match (kind, target) {
            (_, Some(t)) if t.starts_with('/') => t.to_owned(),
            (FileKind::Secret, t) => format!("/run/secrets/{}", t.unwrap_or(source)),
            (FileKind::Config, t) => format!("/{}", t.unwrap_or(source)),
        };
        out.push(PlannedMount {
            source: MountSource::Bind(path),
            target,
            read_only: true,
        });
    }
    Ok(out)
}

/// Everything needed to build a plan.
pub struct PlanInput<'a> {
    /// Project id.
    pub project_id: &'a str,
    /// The parsed Compose file and its tree.
    pub file: &'a ComposeFile,
    /// The tree of the same file.
    pub tree: &'a Node,
    /// The project directory.
    pub project_dir: &'a Path,
    /// The state directory.
    pub state_path: &'a Path,
    /// The runtime.
    pub runtime: RuntimeKind,
    /// Host ports, from the allocator.
    pub ports: &'a [PortMapping],
    /// Secrets given at start (empty at open).
    pub secrets: &'a BTreeMap<String, String>,
    /// The variables the project was interpolated with (its `.env`, env
    /// files and the secrets): `env_file` values in the default format
    /// are interpolated with them, as `berth config` shows them.
    pub vars: &'a BTreeMap<String, String>,
}

/// Builds the plan. The file must have passed validation for `runtime`.
pub fn build(input: &PlanInput<'_>) -> Result<Plan, ProjectError> {
    let ns = namespace(input.project_id);
    let layers = super::validate::start_order(input.file)
        .map_err(|e| ProjectError::InvalidArgument(format!("the Compose file: {e}")))?;
    let docker = input.runtime == RuntimeKind::Docker;
    let mut volumes = Vec::new();
    for (name, _) in &input.file.volumes.0 {
        volumes.push(PlannedVolume {
            compose_name: name.clone(),
            name: format!("{ns}_{name}"),
            dir: input.state_path.join("volumes").join(confined(name)),
        });
    }
    let mut networks = vec![format!("{ns}_default")];
    for (name, _) in &input.file.networks.0 {
        let n = format!("{ns}_{name}");
        if !networks.contains(&n) {
            networks.push(n);
        }
    }
    let empty = Node::Null;
    let services_node = input.tree.get("services").unwrap_or(&empty);
    let container_names: BTreeMap<String, String> = input
        .file
        .services
        .0
        .iter()
        .map(|(name, svc)| (name.clone(), container_name(&ns, name, svc)))
        .collect();
    // `links: [db:database]` makes `database` another name of `db`.
    let mut link_aliases: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (_, svc) in &input.file.services.0 {
        for link in &svc.links {
            if let Some((target, alias)) = link.split_once(':') {
                let a = link_aliases.entry(target.to_owned()).or_default();
                if !alias.is_empty() && !a.iter().any(|x| x == alias) {
                    a.push(alias.to_owned());
                }
            }
        }
    }
    let mut services = Vec::new();
    for name in layers.iter().flatten() {
        let Some(svc) = input.file.services.get(name) else {
            continue;
        };
        let node = services_node.get(name).unwrap_or(&empty);
        let mut env = BTreeMap::new();
        env_files(node, input.project_dir, name, input.vars, &mut env)?;
        environment(&svc.environment, &mut env, input.secrets);
        for (k, v) in input.secrets {
            env.insert(k.clone(), v.clone());
        }
        let healthcheck = match &svc.healthcheck {
            Some(h) if h.enabled() => match &h.test {
                Some(test) => {
                    let probe = match test {
                        Command::Shell(s) => Probe::Shell(s.clone()),
                        Command::Exec(v) => match v.first().map(String::as_str) {
                            Some("CMD-SHELL") => Probe::Shell(v[1..].join(" ")),
                            Some("CMD") => Probe::Exec(v[1..].to_vec()),
                            _ => Probe::Exec(v.clone()),
                        },
                    };
                    let hnode = node.get("healthcheck").unwrap_or(&empty);
                    let hname = format!("{name}.healthcheck");
                    Some(HealthSpec {
                        test: probe,
                        interval: duration_at(hnode, "interval", &hname)?
                            .unwrap_or(DEFAULT_INTERVAL),
                        timeout: duration_at(hnode, "timeout", &hname)?.unwrap_or(DEFAULT_TIMEOUT),
                        retries: h.retries.unwrap_or(DEFAULT_RETRIES).max(1),
                        start_period: duration_at(hnode, "start_period", &hname)?
                            .unwrap_or_default(),
                    })
                }
                None => None,
            },
            _ => None,
        };
        let svc_networks: Vec<String> = match &svc.networks {
            Some(n) => n.names().iter().map(|n| format!("{ns}_{n}")).collect(),
            None => vec![format!("{ns}_default")],
        };
        let mut container = if docker {
            let mut c = container_settings(
                node,
                &Context {
                    service: name,
                    namespace: &ns,
                    container_names: &container_names,
                    link_aliases: link_aliases.get(name).map_or(&[], Vec::as_slice),
                    networks: &svc_networks,
                },
            )?;
            label_files(node, input.project_dir, name, &mut c)?;
            c
        } else {
            ContainerSettings::default()
        };
        let mut mounts = Vec::new();
        let volume_nodes = match node.get("volumes") {
            Some(Node::Seq(items)) => items.as_slice(),
            _ => &[],
        };
        for (i, entry) in svc.volumes.iter().enumerate() {
            let Ok(m) = entry.mount() else { continue };
            let read_only = match entry {
                super::compose::VolumeEntry::Short(s) => {
                    s.rsplit(':')
                        .next()
                        .is_some_and(|o| o.split(',').any(|f| f == "ro"))
                        && s.matches(':').count() == 2
                }
                super::compose::VolumeEntry::Long(l) => l.read_only == Some(true),
            };
            match m {
                Mount::Bind { source, target } => {
                    let host = bind_source(input, &source).map_err(|why| {
                        ProjectError::InvalidArgument(format!("{name}.volumes[{i}]: {why}"))
                    })?;
                    // Native services are not mounted: one whose bind is
                    // backed under state_path finds it through a variable.
                    if !docker && host.starts_with(input.state_path) {
                        env.insert(
                            berth_compose::model::native_mount_var("BIND", &target),
                            host.to_string_lossy().into_owned(),
                        );
                    }
                    mounts.push(PlannedMount {
                        source: MountSource::Bind(host),
                        target,
                        read_only,
                    })
                }
                Mount::Named { name: vol, target } if !docker => {
                    let dir = input.state_path.join("volumes").join(confined(&vol));
                    env.insert(
                        berth_compose::model::native_mount_var("VOLUME", &vol),
                        dir.to_string_lossy().into_owned(),
                    );
                    mounts.push(PlannedMount {
                        source: MountSource::Bind(dir),
                        target,
                        read_only,
                    })
                }
                Mount::Named { name: vol, target } if docker => mounts.push(PlannedMount {
                    source: MountSource::Volume(format!("{ns}_{vol}")),
                    target,
                    read_only,
                }),
                Mount::Anonymous { target } if docker => {
                    let volume = anonymous_volume(&ns, name, &target);
                    container.anonymous_volumes.push(volume.clone());
                    mounts.push(PlannedMount {
                        source: MountSource::Volume(volume),
                        target,
                        read_only,
                    });
                }
                Mount::Tmpfs { target } if docker => {
                    let opts = volume_nodes
                        .get(i)
                        .and_then(|n| n.get("tmpfs"))
                        .map(|t| tmpfs_options(t, &format!("{name}.volumes[{i}].tmpfs")))
                        .transpose()?
                        .unwrap_or_default();
                    container.tmpfs.insert(target, opts);
                }
                _ => {}
            }
        }
        if !docker {
            env.insert(
                berth_compose::model::STATE_DIR_VAR.to_owned(),
                input.state_path.to_string_lossy().into_owned(),
            );
        }
        if docker {
            for kind in [FileKind::Secret, FileKind::Config] {
                mounts.extend(file_mounts(input, node, name, kind)?);
            }
        }
        let working_dir = node.get("working_dir").and_then(Node::as_str).map(|w| {
            if docker {
                w.to_owned()
            } else {
                input
                    .project_dir
                    .join(confined(w))
                    .to_string_lossy()
                    .into_owned()
            }
        });
        services.push(PlannedService {
            name: name.clone(),
            image: if docker { svc.image.clone() } else { None },
            entrypoint: svc
                .entrypoint
                .as_ref()
                .map(|c| argv(c, docker, &format!("{name}.entrypoint")))
                .transpose()?,
            command: svc
                .command
                .as_ref()
                .map(|c| argv(c, docker, &format!("{name}.command")))
                .transpose()?,
            working_dir,
            env,
            ports: input
                .ports
                .iter()
                .filter(|p| &p.service == name)
                .cloned()
                .collect(),
            mounts,
            healthcheck,
            depends_on: svc
                .dependencies()
                .into_iter()
                .filter_map(|d| Some((d.service, d.condition.ok()?)))
                .collect(),
            restart: restart_policy(node),
            // Containers always get an init (validation reports it); a
            // native service is its own process group instead.
            init: docker,
            stop_grace_period: duration_at(node, "stop_grace_period", name)?,
            stop_signal: node.get("stop_signal").map(|n| n.to_string()),
            user: node.get("user").and_then(Node::as_str).map(str::to_owned),
            networks: svc_networks,
            container_name: container_name(&ns, name, svc),
            container,
        });
    }
    Ok(Plan {
        project_id: input.project_id.to_owned(),
        namespace: ns,
        project_dir: input.project_dir.to_owned(),
        state_path: input.state_path.to_owned(),
        services,
        layers,
        networks,
        volumes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_confined() {
        assert_eq!(confined("../../etc/passwd"), PathBuf::from("etc/passwd"));
        assert_eq!(confined("/var/lib/db"), PathBuf::from("var/lib/db"));
        assert_eq!(confined("~/data"), PathBuf::from("data"));
        assert_eq!(confined("./data/"), PathBuf::from("data"));
    }

    /// The plan of `yaml` for project `p` in `dir`.
    fn plan_of(yaml: &str, dir: &Path, runtime: RuntimeKind) -> Result<Plan, ProjectError> {
        let (file, tree) = super::super::compose::parse(yaml.as_bytes()).expect("parses");
        build(&PlanInput {
            project_id: "p",
            file: &file,
            tree: &tree,
            project_dir: dir,
            state_path: &dir.join("state"),
            runtime,
            ports: &[],
            secrets: &BTreeMap::new(),
            vars: &BTreeMap::new(),
        })
    }

    /// Issue 11: native services are not mounted, so they get state_path,
    /// their named volumes' and state-backed binds' directories in
    /// variables; containers get none of them.
    #[test]
    fn native_services_find_their_state_in_variables() {
        let dir = tempfile::tempdir().unwrap();
        let yaml = "services:\n  app:\n    command: [\"true\"]\n    volumes: [\"notes:/data\", \"/srv/up-loads:/up\", \"./site:/site\"]\nvolumes:\n  notes: {}\n";
        let plan = plan_of(yaml, dir.path(), RuntimeKind::Native).unwrap();
        let state = dir.path().join("state");
        let env = &plan.service("app").unwrap().env;
        let var = |k: &str| env.get(k).map(String::as_str);
        assert_eq!(var("BERTH_STATE_DIR"), state.to_str());
        assert_eq!(
            var("BERTH_VOLUME_NOTES"),
            state.join("volumes/notes").to_str()
        );
        assert_eq!(
            var("BERTH_BIND_UP"),
            state.join("binds/srv/up-loads").to_str()
        );
        // A bind inside the project is the project's own path: no variable.
        assert_eq!(env.keys().filter(|k| k.starts_with("BERTH_")).count(), 3);
        let docker = "services:\n  app:\n    image: x\n    volumes: [\"notes:/data\"]\nvolumes:\n  notes: {}\n";
        let plan = plan_of(docker, dir.path(), RuntimeKind::Docker).unwrap();
        assert!(plan.service("app").unwrap().env.is_empty());
    }

    #[test]
    fn a_command_string_is_split_in_containers_and_run_by_a_shell_natively() {
        let dir = tempfile::tempdir().unwrap();
        let yaml = "services:\n  db:\n    image: x\n    command: postgres -c 'shared_buffers=1 GB' --verbose\n    entrypoint: docker-entrypoint.sh\n";
        let plan = plan_of(yaml, dir.path(), RuntimeKind::Docker).unwrap();
        let db = plan.service("db").unwrap();
        // The image's entrypoint sees `postgres` first, as under docker
        // compose; a shell would hide it behind `/bin/sh`.
        assert_eq!(
            db.command.as_deref().unwrap(),
            ["postgres", "-c", "shared_buffers=1 GB", "--verbose"]
        );
        assert_eq!(db.entrypoint.as_deref().unwrap(), ["docker-entrypoint.sh"]);
        let native = "services:\n  db:\n    command: echo a && echo b\n";
        let plan = plan_of(native, dir.path(), RuntimeKind::Native).unwrap();
        assert_eq!(
            plan.service("db").unwrap().command.as_deref().unwrap(),
            ["/bin/sh", "-c", "echo a && echo b"]
        );
        let bad = "services:\n  db:\n    image: x\n    command: echo 'unclosed\n";
        let err = plan_of(bad, dir.path(), RuntimeKind::Docker).unwrap_err();
        assert!(
            err.to_string().contains("db.command") && err.to_string().contains("unbalanced quote"),
            "{err}"
        );
    }

    #[test]
    fn docker_services_get_their_container_settings() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("labels.env"), "team=ops\ntier=db\n").unwrap();
        std::fs::write(dir.path().join("key"), "k").unwrap();
        let yaml = r#"
services:
  db:
    image: x
    label_file: ../labels.env
    labels: { tier: primary }
    volumes: [/var/lib/db, { type: tmpfs, target: /cache, tmpfs: { size: 1m, mode: 1777 } }]
    secrets: [key, { source: key, target: other }]
    configs: [{ source: conf, target: /etc/app.conf }]
    deploy:
      restart_policy: { condition: on-failure, max_attempts: 4 }
  web:
    image: x
    links: ["db:database"]
    pid: service:db
secrets:
  key: { file: ./key }
configs:
  conf: { file: ../../key }
"#;
        let plan = plan_of(yaml, dir.path(), RuntimeKind::Docker).unwrap();
        let db = plan.service("db").unwrap();
        // The file's own labels win over its label_file.
        assert_eq!(
            db.container.labels,
            BTreeMap::from([
                ("team".into(), "ops".into()),
                ("tier".into(), "primary".into())
            ])
        );
        assert_eq!(
            db.container.anonymous_volumes,
            ["berth-p_db_anon-var-lib-db"]
        );
        assert_eq!(db.container.tmpfs["/cache"], "size=1048576,mode=1777");
        assert_eq!(
            db.container.network_aliases,
            BTreeMap::from([("berth-p_default".into(), vec!["database".into()])])
        );
        assert_eq!(db.restart, RestartPolicy::OnFailure(4));
        let key = dir.path().join("key").canonicalize().unwrap();
        let binds: Vec<_> = db
            .mounts
            .iter()
            .filter_map(|m| match &m.source {
                MountSource::Bind(p) => Some((p.clone(), m.target.as_str(), m.read_only)),
                MountSource::Volume(_) => None,
            })
            .collect();
        assert_eq!(
            binds,
            [
                (key.clone(), "/run/secrets/key", true),
                (key.clone(), "/run/secrets/other", true),
                (key, "/etc/app.conf", true),
            ]
        );
        let web = plan.service("web").unwrap();
        assert_eq!(web.container.pid.as_deref(), Some("container:berth-p-db"));

        // Native services carry no container settings.
        let native = plan_of(
            "services:\n  a:\n    command: [x]\n    hostname: h\n    mem_limit: lots\n",
            dir.path(),
            RuntimeKind::Native,
        )
        .unwrap();
        assert_eq!(native.services[0].container, ContainerSettings::default());
    }

    #[cfg(unix)]
    #[test]
    fn secret_files_stay_inside_the_project() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("shadow"), "x").unwrap();
        std::os::unix::fs::symlink(outside.path().join("shadow"), dir.path().join("link")).unwrap();
        let yaml =
            "services:\n  a:\n    image: x\n    secrets: [s]\nsecrets:\n  s: { file: ./link }\n";
        let err = plan_of(yaml, dir.path(), RuntimeKind::Docker).unwrap_err();
        assert!(
            err.to_string()
                .contains("a.secrets: `./link` leads outside the project directory"),
            "{err}"
        );
        let err = plan_of(
            "services:\n  a:\n    image: x\n    mem_limit: lots\n",
            dir.path(),
            RuntimeKind::Docker,
        )
        .unwrap_err();
        assert!(err.to_string().contains("a.mem_limit: `lots`"), "{err}");
    }

    #[test]
    fn project_ids() {
        assert!(check_project_id("todo-1").is_ok());
        assert!(check_project_id("Todo").is_err());
        assert!(check_project_id("-x").is_err());
        assert!(check_project_id("a/b").is_err());
        assert!(check_project_id("").is_err());
    }
}
