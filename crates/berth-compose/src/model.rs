//! The typed view of a resolved Compose file: the keys berth acts on.
//! Everything else stays visible through the [`Node`] tree.

use serde::Deserialize;

use crate::node::{Node, Ordered};

/// The parts of a Compose file that berth acts on. Everything else is in
/// the [`Node`] tree validation walks.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ComposeFile {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub services: Ordered<Service>,
    #[serde(default)]
    pub networks: Ordered<Option<TopLevelResource>>,
    #[serde(default)]
    pub volumes: Ordered<Option<TopLevelResource>>,
}

/// A top-level network or volume definition.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TopLevelResource {
    #[serde(default)]
    pub external: Option<Node>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub driver: Option<String>,
}

/// One service: the keys whose meaning validation and start order depend
/// on. Keys not listed here are still seen, through the [`Node`] tree.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Service {
    #[serde(default)]
    pub image: Option<String>,
    #[serde(default)]
    pub build: Option<Node>,
    #[serde(default)]
    pub command: Option<Command>,
    #[serde(default)]
    pub entrypoint: Option<Command>,
    #[serde(default)]
    pub ports: Vec<PortEntry>,
    #[serde(default)]
    pub volumes: Vec<VolumeEntry>,
    #[serde(default)]
    pub depends_on: Option<DependsOn>,
    #[serde(default)]
    pub environment: Option<Environment>,
    #[serde(default)]
    pub networks: Option<ServiceNetworks>,
    #[serde(default)]
    pub network_mode: Option<String>,
    #[serde(default)]
    pub pid: Option<String>,
    #[serde(default)]
    pub ipc: Option<String>,
    #[serde(default)]
    pub uts: Option<String>,
    #[serde(default)]
    pub userns_mode: Option<String>,
    #[serde(default)]
    pub cgroup: Option<String>,
    #[serde(default)]
    pub privileged: Option<bool>,
    #[serde(default)]
    pub devices: Vec<Node>,
    #[serde(default)]
    pub cap_add: Vec<String>,
    #[serde(default)]
    pub security_opt: Vec<String>,
    #[serde(default)]
    pub restart: Option<String>,
    #[serde(default)]
    pub init: Option<bool>,
    #[serde(default)]
    pub healthcheck: Option<Healthcheck>,
    #[serde(default)]
    pub container_name: Option<String>,
    #[serde(default)]
    pub profiles: Vec<String>,
    #[serde(default)]
    pub links: Vec<String>,
    #[serde(default)]
    pub volumes_from: Vec<String>,
}

/// `command`, `entrypoint` and `healthcheck.test`: a shell string or an argv.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged, expecting = "a command: a string or a list of strings")]
pub enum Command {
    Shell(String),
    Exec(Vec<String>),
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Healthcheck {
    #[serde(default)]
    pub test: Option<Command>,
    #[serde(default)]
    pub disable: Option<bool>,
    #[serde(default)]
    pub interval: Option<String>,
    #[serde(default)]
    pub timeout: Option<String>,
    #[serde(default)]
    pub retries: Option<u32>,
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
    Number(u32),
    Short(String),
    Long(LongPort),
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct LongPort {
    pub target: u32,
    #[serde(default)]
    pub published: Option<Node>,
    #[serde(default)]
    pub host_ip: Option<String>,
    #[serde(default)]
    pub protocol: Option<String>,
    #[serde(default)]
    pub mode: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub app_protocol: Option<String>,
}

/// A port mapping after parsing either syntax. Ranges keep their bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortMapping {
    pub host_ip: Option<String>,
    /// The requested host port or range; `None` lets the allocator choose.
    pub host: Option<(u16, u16)>,
    pub container: (u16, u16),
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
    Short(String),
    Long(LongVolume),
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct LongVolume {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub read_only: Option<bool>,
}

/// What a volume entry mounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mount {
    /// A host path (relative paths are relative to the project directory).
    Bind {
        source: String,
        target: String,
    },
    /// A volume declared at top level, by its key.
    Named {
        name: String,
        target: String,
    },
    /// A fresh volume with no name.
    Anonymous {
        target: String,
    },
    Tmpfs {
        target: String,
    },
    /// `npipe`, `cluster`, `image` and anything else.
    Other {
        kind: String,
        target: String,
    },
}

impl VolumeEntry {
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
    List(Vec<String>),
    Map(Ordered<DependsOnLong>),
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct DependsOnLong {
    #[serde(default)]
    pub condition: Option<String>,
    #[serde(default)]
    pub restart: Option<bool>,
    #[serde(default)]
    pub required: Option<bool>,
}

/// When a dependency counts as ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    Started,
    Healthy,
    CompletedSuccessfully,
}

impl Condition {
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
    pub service: String,
    pub condition: Result<Condition, String>,
    /// `required: false` lets the dependency be absent.
    pub required: bool,
}

impl DependsOn {
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
    List(Vec<String>),
    Map(Ordered<Option<Scalar>>),
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged, expecting = "a string, number or boolean")]
pub enum Scalar {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

/// `networks` of a service: names, or a mapping with per-network options.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(
    untagged,
    expecting = "a list of network names, or a mapping of network names to options"
)]
pub enum ServiceNetworks {
    List(Vec<String>),
    Map(Ordered<Option<Node>>),
}

impl ServiceNetworks {
    pub fn names(&self) -> Vec<String> {
        match self {
            ServiceNetworks::List(v) => v.clone(),
            ServiceNetworks::Map(m) => m.keys().map(str::to_owned).collect(),
        }
    }
}
