//! The typed view of a resolved Compose file: the keys berth acts on.
//! Everything else stays visible through the [`Node`] tree.

use serde::Deserialize;

use crate::node::{Node, Ordered};

/// The parts of a Compose file that berth acts on. Everything else is in
/// the [`Node`] tree validation walks.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ComposeFile {
    /// `name`: the Compose project name, which `berth up` makes the
    /// project id; `None` when the file leaves the name to the caller.
    #[serde(default)]
    pub name: Option<String>,
    /// `services`: every service by name, in file order, so reports and
    /// ties in the start order follow the file.
    #[serde(default)]
    pub services: Ordered<Service>,
    /// `networks`: the project's networks by key; `None` for a key with no
    /// body (`backend:`), which takes every default.
    #[serde(default)]
    pub networks: Ordered<Option<TopLevelResource>>,
    /// `volumes`: the project's named volumes by key; `None` for a key
    /// with no body (`data:`), which takes every default.
    #[serde(default)]
    pub volumes: Ordered<Option<TopLevelResource>>,
}

/// A top-level network or volume definition.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TopLevelResource {
    /// `external`: true when the resource lives outside the project, which
    /// validation refuses (it would leave the project's namespace). A
    /// [`Node`] because the legacy form is a mapping, read as true.
    #[serde(default)]
    pub external: Option<Node>,
    /// `name`: a fixed engine-side name; ignored with a warning, since
    /// berth names resources inside the project's namespace.
    #[serde(default)]
    pub name: Option<String>,
    /// `driver`: the engine driver; only the plain one (`bridge` for
    /// networks, `local` for volumes) is honoured, others warn.
    #[serde(default)]
    pub driver: Option<String>,
}

/// One service: the keys whose meaning validation and start order depend
/// on. Keys not listed here are still seen, through the [`Node`] tree.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Service {
    /// `services.<name>.image`: the image reference to run (`nginx:1.27`,
    /// `repo/app@sha256:...`); containers need one, since berth does not build.
    #[serde(default)]
    pub image: Option<String>,
    /// `services.<name>.build`: a build context or build mapping, kept as a
    /// [`Node`] only to report that berth does not build images.
    #[serde(default)]
    pub build: Option<Node>,
    /// `services.<name>.command`: replaces the image's default command; for
    /// the native runtime, the process itself.
    #[serde(default)]
    pub command: Option<Command>,
    /// `services.<name>.entrypoint`: replaces the image's entrypoint; the
    /// native runtime puts it before `command`.
    #[serde(default)]
    pub entrypoint: Option<Command>,
    /// `services.<name>.ports`: container ports to publish on the host, in
    /// any syntax (see [`PortEntry::mapping`]).
    #[serde(default)]
    pub ports: Vec<PortEntry>,
    /// `services.<name>.volumes`: mounts, short or long syntax (see
    /// [`VolumeEntry::mount`]).
    #[serde(default)]
    pub volumes: Vec<VolumeEntry>,
    /// `services.<name>.depends_on`: services to start first and when each
    /// counts as ready (see [`Service::dependencies`]).
    #[serde(default)]
    pub depends_on: Option<DependsOn>,
    /// `services.<name>.environment`: variables set in the service, over
    /// those of its `env_file`s.
    #[serde(default)]
    pub environment: Option<Environment>,
    /// `services.<name>.networks`: the project networks the service joins;
    /// `None` means the project's `default` network.
    #[serde(default)]
    pub networks: Option<ServiceNetworks>,
    /// `services.<name>.network_mode`: `none`, `host`, `service:<name>` or
    /// `container:<id>`; `service:` makes that service start first.
    #[serde(default)]
    pub network_mode: Option<String>,
    /// `services.<name>.pid`: the PID namespace to join (`host`,
    /// `service:<name>`); `service:` makes that service start first.
    #[serde(default)]
    pub pid: Option<String>,
    /// `services.<name>.ipc`: the IPC mode (`private`, `shareable`, `host`,
    /// `service:<name>`); `service:` makes that service start first.
    #[serde(default)]
    pub ipc: Option<String>,
    /// `services.<name>.uts`: the UTS (hostname) namespace; `host` shares the
    /// host's, which validation refuses.
    #[serde(default)]
    pub uts: Option<String>,
    /// `services.<name>.userns_mode`: the user namespace; `host` turns off
    /// the engine's remapping, which validation refuses.
    #[serde(default)]
    pub userns_mode: Option<String>,
    /// `services.<name>.cgroup`: `private` or `host` cgroup namespace; only
    /// `private` keeps the service from seeing the host's cgroups.
    #[serde(default)]
    pub cgroup: Option<String>,
    /// `services.<name>.privileged`: run with every capability and device;
    /// validation refuses `true`, as it hands over the host.
    #[serde(default)]
    pub privileged: Option<bool>,
    /// `services.<name>.devices`: host devices to expose (`/dev/x:/dev/y`
    /// or a mapping); validation refuses each, as direct hardware access.
    #[serde(default)]
    pub devices: Vec<Node>,
    /// `services.<name>.cap_add`: Linux capabilities to grant (`NET_ADMIN`
    /// or `CAP_NET_ADMIN`); those that control the host are refused.
    #[serde(default)]
    pub cap_add: Vec<String>,
    /// `services.<name>.security_opt`: security options (`label:...`,
    /// `seccomp:...`); those that turn confinement off are refused.
    #[serde(default)]
    pub security_opt: Vec<String>,
    /// `services.<name>.restart`: `no`, `always`, `on-failure[:N]` or
    /// `unless-stopped`; becomes the runtime's restart policy.
    #[serde(default)]
    pub restart: Option<String>,
    /// `services.<name>.init`: run an init as PID 1; berth always does for
    /// containers, so stop signals reach the service either way.
    #[serde(default)]
    pub init: Option<bool>,
    /// `services.<name>.healthcheck`: the probe berth runs to tell when
    /// `service_healthy` dependents may start.
    #[serde(default)]
    pub healthcheck: Option<Healthcheck>,
    /// `services.<name>.container_name`: a fixed container name; berth
    /// puts it under the project's namespace so projects never collide.
    #[serde(default)]
    pub container_name: Option<String>,
    /// `services.<name>.profiles`: the profiles that enable the service;
    /// empty means it is always enabled.
    #[serde(default)]
    pub profiles: Vec<String>,
    /// `services.<name>.links`: `service` or `service:alias`, a legacy way
    /// to reach another service; the linked service starts first.
    #[serde(default)]
    pub links: Vec<String>,
    /// `services.<name>.volumes_from`: `service[:ro|:rw]` or
    /// `container:<name>[:ro|:rw]`; a service named here starts first.
    #[serde(default)]
    pub volumes_from: Vec<String>,
}

/// `command`, `entrypoint` and `healthcheck.test`: a shell string or an argv.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged, expecting = "a command: a string or a list of strings")]
pub enum Command {
    /// One string; berth runs it with `/bin/sh -c`.
    Shell(String),
    /// An argv, run as is with no shell (the first item is the program).
    Exec(Vec<String>),
}

/// `services.<name>.healthcheck`: how to tell that a service is healthy.
/// Durations stay text (`1m30s`) here; the engine's plan parses them, so a
/// bad one is reported at its own path.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Healthcheck {
    /// `test`: the probe; `["CMD", prog, ...]` runs an argv,
    /// `["CMD-SHELL", s]` or a string runs a shell, `["NONE"]` disables.
    #[serde(default)]
    pub test: Option<Command>,
    /// `disable`: `true` turns off the check, the image's own included.
    #[serde(default)]
    pub disable: Option<bool>,
    /// `interval`: the time between probes (a Compose duration such as
    /// `30s`).
    #[serde(default)]
    pub interval: Option<String>,
    /// `timeout`: how long one probe may run before it counts as failed
    /// (a Compose duration).
    #[serde(default)]
    pub timeout: Option<String>,
    /// `retries`: how many failures in a row make the service unhealthy.
    #[serde(default)]
    pub retries: Option<u32>,
    /// `start_period`: time after start in which failures do not count,
    /// for slow starters (a Compose duration).
    #[serde(default)]
    pub start_period: Option<String>,
}

impl Healthcheck {
    /// False for `disable: true` and `test: ["NONE"]`, which turn off an
    /// image's own check.
    pub fn enabled(&self) -> bool {
        let none = matches!(&self.test, Some(Command::Exec(argv)) if argv.first().is_some_and(|a| a == "NONE"));
        !none && self.disable != Some(true)
    }
}

/// A port entry: a bare number, the short string form or the long mapping.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(
    untagged,
    expecting = "a port: a number, \"[HOST_IP:][HOST:]CONTAINER[/PROTOCOL]\" or a mapping with a numeric `target`"
)]
pub enum PortEntry {
    /// A container port alone (`- 80`), published on a host port the
    /// allocator picks. `u32` so an out-of-range number is reported by
    /// [`PortEntry::mapping`], not as a parse error.
    Number(u32),
    /// `[HOST_IP:][HOST:]CONTAINER[/PROTOCOL]`, ranges allowed
    /// (`127.0.0.1:8000-8005:80/tcp`).
    Short(String),
    /// The long syntax: a mapping with a numeric `target`.
    Long(LongPort),
}

/// The long syntax of `services.<name>.ports`: one container port and how
/// to publish it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct LongPort {
    /// `target`: the container port (1-65535, checked by
    /// [`PortEntry::mapping`] so the error names the entry).
    pub target: u32,
    /// `published`: the host port or range (`8080`, `"8000-8005"`), a
    /// number or a string, hence a [`Node`]; absent or empty lets the
    /// allocator choose.
    #[serde(default)]
    pub published: Option<Node>,
    /// `host_ip`: the host address to listen on; `None` for all of them.
    #[serde(default)]
    pub host_ip: Option<String>,
    /// `protocol`: `tcp` (the default), `udp` or `sctp`.
    #[serde(default)]
    pub protocol: Option<String>,
    /// `mode`: `ingress` or `host`, a Swarm setting berth ignores (with a
    /// warning for `host`).
    #[serde(default)]
    pub mode: Option<String>,
    /// `name`: a label for the port, for people; no effect on publishing.
    #[serde(default)]
    pub name: Option<String>,
    /// `app_protocol`: what speaks on the port (`http`, `grpc`), a hint
    /// only; no effect on publishing.
    #[serde(default)]
    pub app_protocol: Option<String>,
}

/// A port mapping after parsing either syntax. Ranges keep their bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortMapping {
    /// The host address to listen on, without an IPv6 address's brackets;
    /// `None` for all of them.
    pub host_ip: Option<String>,
    /// The requested host port or range; `None` lets the allocator choose.
    pub host: Option<(u16, u16)>,
    /// The container port range, inclusive (`(80, 80)` for one port).
    pub container: (u16, u16),
    /// `tcp`, `udp` or `sctp`, already checked.
    pub protocol: String,
}

impl PortEntry {
    /// Parses the entry, or says why it is not a port mapping.
    pub fn mapping(&self) -> Result<PortMapping, String> {
        match self {
            PortEntry::Number(n) => Ok(PortMapping {
                host_ip: None,
                host: None,
                container: single_port(&n.to_string())?,
                protocol: "tcp".into(),
            }),
            PortEntry::Short(s) => parse_short_port(s),
            PortEntry::Long(l) => {
                let host = match &l.published {
                    None | Some(Node::Null) => None,
                    Some(Node::Str(s)) if s.is_empty() => None,
                    Some(p) => Some(port_range(&p.to_string())?),
                };
                let container = single_port(&l.target.to_string())?;
                if let Some(h) = host {
                    same_size(&format!("published `{}`", fmt_range(h)), h, container)?;
                }
                Ok(PortMapping {
                    host_ip: l.host_ip.clone(),
                    host,
                    container,
                    protocol: protocol(l.protocol.as_deref().unwrap_or("tcp"))?,
                })
            }
        }
    }
}

/// `lo` or `lo-hi`.
pub fn fmt_range((lo, hi): (u16, u16)) -> String {
    if lo == hi {
        lo.to_string()
    } else {
        format!("{lo}-{hi}")
    }
}

/// A host range must match the container range port for port, or be
/// published for one container port (`8000-8005:80`: one free port of the
/// range is used). One host port for a container range is refused: a
/// port cannot forward to several. `what` names the entry in the message.
fn same_size(what: &str, host: (u16, u16), container: (u16, u16)) -> Result<(), String> {
    let single = container.0 == container.1;
    if host.1 - host.0 != container.1 - container.0 && host.0 != host.1 && !single {
        return Err(format!(
            "{what}: host range and container range differ in size"
        ));
    }
    Ok(())
}

fn protocol(p: &str) -> Result<String, String> {
    match p {
        "tcp" | "udp" | "sctp" => Ok(p.to_owned()),
        _ => Err(format!("unknown protocol `{p}` (tcp, udp or sctp)")),
    }
}

fn single_port(s: &str) -> Result<(u16, u16), String> {
    match s.parse::<u16>() {
        Ok(p) if p > 0 => Ok((p, p)),
        _ => Err(format!("`{s}` is not a port number (1-65535)")),
    }
}

fn port_range(s: &str) -> Result<(u16, u16), String> {
    match s.split_once('-') {
        None => single_port(s),
        Some((a, b)) => {
            let (lo, hi) = (single_port(a)?.0, single_port(b)?.0);
            if lo > hi {
                return Err(format!("port range `{s}` runs backwards"));
            }
            Ok((lo, hi))
        }
    }
}

/// `[HOST_IP:][HOST[-HOST]:]CONTAINER[-CONTAINER][/PROTOCOL]`; an IPv6
/// host address is written in brackets.
fn parse_short_port(spec: &str) -> Result<PortMapping, String> {
    let (rest, proto) = match spec.rsplit_once('/') {
        Some((r, p)) => (r, protocol(p)?),
        None => (spec, "tcp".to_owned()),
    };
    let (host_ip, rest) = match rest.strip_prefix('[') {
        Some(v6) => {
            let (ip, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("`{spec}`: unclosed `[` in the host address"))?;
            let after = after
                .strip_prefix(':')
                .ok_or_else(|| format!("`{spec}`: expected `:` after the host address"))?;
            (Some(ip.to_owned()), after)
        }
        None => (None, rest),
    };
    let parts: Vec<&str> = rest.split(':').collect();
    let (host_ip, host, container) = match (host_ip, parts.as_slice()) {
        (None, [c]) => (None, None, *c),
        (ip, [h, c]) if ip.is_some() || !h.contains('.') => (ip, Some(*h), *c),
        // `1.2.3.4:80` would be ambiguous; Compose reads IP:HOST:CONTAINER only.
        (None, [ip, h, c]) => (Some((*ip).to_owned()), Some(*h), *c),
        _ => {
            return Err(format!(
                "`{spec}` is not [HOST_IP:][HOST:]CONTAINER[/PROTOCOL]"
            ))
        }
    };
    let host = match host {
        None | Some("") => None,
        Some(h) => Some(port_range(h)?),
    };
    let container = port_range(container)?;
    if let Some(h) = host {
        same_size(&format!("`{spec}`"), h, container)?;
    }
    Ok(PortMapping {
        host_ip,
        host,
        container,
        protocol: proto,
    })
}

/// A volume entry in short (`SRC:DST[:MODE]`) or long form.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(
    untagged,
    expecting = "a volume: \"[SOURCE:]TARGET[:MODE]\" or a mapping with `type` and `target`"
)]
pub enum VolumeEntry {
    /// `[SOURCE:]TARGET[:MODE]` (`./data:/var/lib/data:ro`); a source that
    /// looks like a path is a bind mount, any other names a volume.
    Short(String),
    /// The long syntax: a mapping with `type` and `target`.
    Long(LongVolume),
}

/// The long syntax of `services.<name>.volumes`. Other keys (`bind`,
/// `volume`, `tmpfs` options) are read from the [`Node`] tree.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct LongVolume {
    /// `type`: `bind`, `volume`, `tmpfs`, `npipe`, `cluster` or `image`;
    /// required, since it decides what `source` means.
    #[serde(rename = "type")]
    pub kind: String,
    /// `source`: the host path of a bind, or the top-level key of a
    /// volume; absent or empty makes a volume anonymous.
    #[serde(default)]
    pub source: Option<String>,
    /// `target`: the path inside the container. Optional here so that
    /// [`VolumeEntry::mount`] can say which entry lacks it.
    #[serde(default)]
    pub target: Option<String>,
    /// `read_only`: mount it read-only.
    #[serde(default)]
    pub read_only: Option<bool>,
}

/// What a volume entry mounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mount {
    /// A host path (relative paths are relative to the project directory).
    Bind {
        /// The host path as written (`./data`, `/srv/x`, `~/x`).
        source: String,
        /// The path inside the container.
        target: String,
    },
    /// A volume declared at top level, by its key.
    Named {
        /// The key under top-level `volumes`.
        name: String,
        /// The path inside the container.
        target: String,
    },
    /// A fresh volume with no name.
    Anonymous {
        /// The path inside the container.
        target: String,
    },
    /// A memory-backed file system that lives as long as the container.
    Tmpfs {
        /// The path inside the container.
        target: String,
    },
    /// `npipe`, `cluster`, `image` and anything else.
    Other {
        /// The `type` as written, for the message that refuses it.
        kind: String,
        /// The path inside the container.
        target: String,
    },
}

impl VolumeEntry {
    /// What the entry mounts, or why it cannot be read: no target, a bind
    /// without a source, too many `:` parts. A short form's `MODE` is not
    /// checked here.
    pub fn mount(&self) -> Result<Mount, String> {
        match self {
            VolumeEntry::Short(s) => {
                let parts: Vec<&str> = s.split(':').collect();
                let (src, dst) = match parts.as_slice() {
                    [dst] => (None, *dst),
                    [src, dst] | [src, dst, _] => (Some(*src), *dst),
                    _ => return Err(format!("`{s}` is not SOURCE:TARGET[:MODE]")),
                };
                if dst.is_empty() {
                    return Err(format!("`{s}` has no target path"));
                }
                let target = dst.to_owned();
                Ok(match src {
                    None => Mount::Anonymous { target },
                    Some(src) if is_host_path(src) => Mount::Bind {
                        source: src.to_owned(),
                        target,
                    },
                    Some(name) => Mount::Named {
                        name: name.to_owned(),
                        target,
                    },
                })
            }
            VolumeEntry::Long(l) => {
                let target = l
                    .target
                    .clone()
                    .ok_or_else(|| format!("a `{}` mount needs a target", l.kind))?;
                let source = l.source.clone().filter(|s| !s.is_empty());
                Ok(match (l.kind.as_str(), source) {
                    ("bind", Some(source)) => Mount::Bind { source, target },
                    ("bind", None) => return Err("a bind mount needs a source".into()),
                    ("volume", Some(name)) => Mount::Named { name, target },
                    ("volume", None) => Mount::Anonymous { target },
                    ("tmpfs", _) => Mount::Tmpfs { target },
                    (kind, _) => Mount::Other {
                        kind: kind.to_owned(),
                        target,
                    },
                })
            }
        }
    }
}

/// Where a bind `source` lands inside the project directory `dir`, decided
/// on the text alone (`.` dropped, `..` taken back, nothing on disk
/// followed): the path relative to `dir` (empty for `dir` itself), or
/// `None` when it leads out: `..` past `dir`, `~`, or an absolute path not
/// under `dir` (with a relative `dir`, every absolute path).
pub fn bind_in_project(dir: &std::path::Path, source: &str) -> Option<std::path::PathBuf> {
    use std::path::{Component, Path, PathBuf};
    let src = Path::new(source);
    let rel = match (source.starts_with('~'), src.is_absolute()) {
        (true, _) => return None,
        (false, true) if dir.is_absolute() => src.strip_prefix(dir).ok()?,
        (false, true) => return None,
        (false, false) => src,
    };
    let mut out = PathBuf::new();
    for c in rel.components() {
        match c {
            Component::CurDir => {}
            Component::Normal(n) => out.push(n),
            Component::ParentDir if out.pop() => {}
            _ => return None,
        }
    }
    Some(out)
}

/// Compose's rule: a source that looks like a path is a bind mount,
/// anything else names a volume.
fn is_host_path(s: &str) -> bool {
    s.starts_with('/') || s.starts_with('.') || s.starts_with('~') || s.starts_with('$')
}

/// `depends_on`: a list of names, or a mapping with conditions.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(
    untagged,
    expecting = "a list of service names, or a mapping of service names to `condition`s"
)]
pub enum DependsOn {
    /// `[db, cache]`: each required, and ready once started.
    List(Vec<String>),
    /// `{db: {condition: service_healthy}}`: each with its own options.
    Map(Ordered<DependsOnLong>),
}

/// One entry of the long `depends_on` syntax.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct DependsOnLong {
    /// `condition`: `service_started` (the default), `service_healthy` or
    /// `service_completed_successfully`; text so an unknown one can be
    /// reported by name.
    #[serde(default)]
    pub condition: Option<String>,
    /// `restart`: restart this service when the dependency is restarted.
    #[serde(default)]
    pub restart: Option<bool>,
    /// `required`: `false` lets the project start without the dependency;
    /// `None` means required.
    #[serde(default)]
    pub required: Option<bool>,
}

/// When a dependency counts as ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// `service_started`: once it has been started.
    Started,
    /// `service_healthy`: once its healthcheck passes, so it needs one.
    Healthy,
    /// `service_completed_successfully`: once it has exited with status 0,
    /// for one-shot jobs such as migrations.
    CompletedSuccessfully,
}

impl Condition {
    /// The condition of its Compose spelling (`service_healthy`), or
    /// `None` for any other text.
    pub fn parse(s: &str) -> Option<Condition> {
        match s {
            "service_started" => Some(Condition::Started),
            "service_healthy" => Some(Condition::Healthy),
            "service_completed_successfully" => Some(Condition::CompletedSuccessfully),
            _ => None,
        }
    }
}

/// One dependency after reading either syntax. An unknown condition is
/// kept as text so validation can name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    /// The service depended on, by name.
    pub service: String,
    /// When it counts as ready, or the unknown condition as written.
    pub condition: Result<Condition, String>,
    /// `required: false` lets the dependency be absent.
    pub required: bool,
}

impl DependsOn {
    /// The dependencies in file order. Unless said otherwise, one is
    /// required and ready once started, in either syntax.
    pub fn dependencies(&self) -> Vec<Dependency> {
        match self {
            DependsOn::List(names) => names
                .iter()
                .map(|n| Dependency {
                    service: n.clone(),
                    condition: Ok(Condition::Started),
                    required: true,
                })
                .collect(),
            DependsOn::Map(m) => {
                m.0.iter()
                    .map(|(n, long)| {
                        let cond = long.condition.as_deref().unwrap_or("service_started");
                        Dependency {
                            service: n.clone(),
                            condition: Condition::parse(cond).ok_or_else(|| cond.to_owned()),
                            required: long.required.unwrap_or(true),
                        }
                    })
                    .collect()
            }
        }
    }
}

impl Service {
    /// Its `depends_on` entries (none without the key); see
    /// [`DependsOn::dependencies`].
    pub fn dependencies(&self) -> Vec<Dependency> {
        self.depends_on
            .as_ref()
            .map(DependsOn::dependencies)
            .unwrap_or_default()
    }

    /// Services this one must start after, each with the key that says so:
    /// `depends_on` (optional ones too: they order the start when present),
    /// and what Compose also treats as
    /// dependencies: `links` (`db` or `db:alias`), `network_mode:
    /// service:X`, `pid`/`ipc: service:X` and `volumes_from: X[:ro]`
    /// (`container:` sources are not services).
    pub fn start_after(&self) -> Vec<(String, &'static str)> {
        let mut out: Vec<(String, &'static str)> = Vec::new();
        let mut add = |s: &str, key: &'static str| {
            if !out.iter().any(|(o, _)| o == s) {
                out.push((s.to_owned(), key));
            }
        };
        for d in &self.dependencies() {
            add(&d.service, "depends_on");
        }
        for l in &self.links {
            add(l.split(':').next().unwrap_or_default(), "links");
        }
        if let Some(s) = self
            .network_mode
            .as_deref()
            .and_then(|m| m.strip_prefix("service:"))
        {
            add(s, "network_mode");
        }
        // Joining another service's PID or IPC namespace needs it running.
        for (mode, key) in [(&self.pid, "pid"), (&self.ipc, "ipc")] {
            if let Some(s) = mode.as_deref().and_then(|m| m.strip_prefix("service:")) {
                add(s, key);
            }
        }
        for v in self
            .volumes_from
            .iter()
            .filter(|v| !v.starts_with("container:"))
        {
            add(v.split(':').next().unwrap_or_default(), "volumes_from");
        }
        out
    }
}

/// `environment`: `["K=V", "K"]` or `{K: V}`; values are scalars or null.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(
    untagged,
    expecting = "a list of `KEY=VALUE` strings, or a mapping of names to scalar values"
)]
pub enum Environment {
    /// `["K=V", "K"]`; a bare `K` takes its value from the variables given
    /// at start, and is left out when they lack it.
    List(Vec<String>),
    /// `{K: V}`; a null value acts like a bare `K` of the list form.
    Map(Ordered<Option<Scalar>>),
}

/// A value of an `environment` mapping, kept in its YAML type so it turns
/// into the text the author wrote (`true`, `3`, `0.5`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged, expecting = "a string, number or boolean")]
pub enum Scalar {
    /// `true` or `false`.
    Bool(bool),
    /// A whole number.
    Int(i64),
    /// A number with a fraction or an exponent.
    Float(f64),
    /// Any other text.
    Str(String),
}

/// `networks` of a service: names, or a mapping with per-network options.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(
    untagged,
    expecting = "a list of network names, or a mapping of network names to options"
)]
pub enum ServiceNetworks {
    /// `[front, back]`: each joined with default options.
    List(Vec<String>),
    /// `{front: {aliases: [web]}}`: per-network options (aliases,
    /// addresses, ...) kept as a [`Node`]; null for none.
    Map(Ordered<Option<Node>>),
}

impl ServiceNetworks {
    /// The network names in file order, from either syntax.
    pub fn names(&self) -> Vec<String> {
        match self {
            ServiceNetworks::List(v) => v.clone(),
            ServiceNetworks::Map(m) => m.keys().map(str::to_owned).collect(),
        }
    }
}

/// The variable holding a native project's `state_path` (issue 11): native
/// services are not mounted, so this is how they find their persistent
/// data, the tree a snapshot captures.
pub const STATE_DIR_VAR: &str = "BERTH_STATE_DIR";

/// The variable naming the directory of a named volume or a state-backed
/// bind for a native service (issue 11): `BERTH_VOLUME_<NAME>` for the
/// volume `name`, `BERTH_BIND_<TARGET>` for a bind whose source is moved
/// under `state_path` (`kind` is `"VOLUME"` or `"BIND"`). `name` is
/// upper-cased, every run of characters other than ASCII letters and
/// digits becomes one `_`, leading and trailing `_` dropped: `pg-data`
/// gives `BERTH_VOLUME_PG_DATA`, the target `/var/lib/db` gives
/// `BERTH_BIND_VAR_LIB_DB`.
pub fn native_mount_var(kind: &str, name: &str) -> String {
    let mut out = format!("BERTH_{kind}_");
    let start = out.len();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_uppercase());
        } else if out.len() > start && !out.ends_with('_') {
            out.push('_');
        }
    }
    while out.len() > start && out.ends_with('_') {
        out.pop();
    }
    out
}

#[cfg(test)]
mod native_var_tests {
    #[test]
    fn mount_variables_are_shell_names() {
        assert_eq!(
            super::native_mount_var("VOLUME", "pg-data"),
            "BERTH_VOLUME_PG_DATA"
        );
        assert_eq!(
            super::native_mount_var("BIND", "/var/lib//db/"),
            "BERTH_BIND_VAR_LIB_DB"
        );
    }
}
