//! The Compose file model: a typed view of the keys berth acts on, plus an
//! ordered generic tree ([`Node`]) of the whole document, so validation can
//! name every key a file uses (including ones berth does not know) in the
//! order the author wrote them.

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

/// A YAML value with mappings kept in file order (serde_json's map would
/// sort them, and reports should follow the file).
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(String, Node)>),
}

impl Node {
    /// The entry `key` of a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Node::Str(s) => Some(s),
            _ => None,
        }
    }

    /// YAML truthiness as Compose reads flags like `external: true`.
    pub fn is_true(&self) -> bool {
        match self {
            Node::Bool(b) => *b,
            Node::Map(_) => true,
            _ => false,
        }
    }
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Node::Null => f.write_str("null"),
            Node::Bool(b) => write!(f, "{b}"),
            Node::Int(i) => write!(f, "{i}"),
            Node::Float(x) => write!(f, "{x}"),
            Node::Str(s) => f.write_str(s),
            Node::Seq(_) => f.write_str("[...]"),
            Node::Map(_) => f.write_str("{...}"),
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Node;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any YAML value")
            }
            fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
                Ok(Node::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
                Ok(Node::Int(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Node, E> {
                Ok(i64::try_from(v).map_or(Node::Float(v as f64), Node::Int))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
                Ok(Node::Float(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Node, E> {
                Ok(Node::Str(v.to_owned()))
            }
            fn visit_string<E>(self, v: String) -> Result<Node, E> {
                Ok(Node::Str(v))
            }
            fn visit_unit<E>(self) -> Result<Node, E> {
                Ok(Node::Null)
            }
            fn visit_none<E>(self) -> Result<Node, E> {
                Ok(Node::Null)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
                Node::deserialize(d)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Node::Seq(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
                let mut entries = Vec::new();
                while let Some((k, v)) = map.next_entry::<Node, Node>()? {
                    // Keys such as `80:` or `true:` are scalars too; Compose
                    // treats every key as text.
                    entries.push((k.to_string(), v));
                }
                Ok(Node::Map(entries))
            }
        }
        d.deserialize_any(V)
    }
}

/// A mapping that keeps its entries in file order.
#[derive(Debug, Clone, PartialEq)]
pub struct Ordered<V>(pub Vec<(String, V)>);

impl<V> Default for Ordered<V> {
    fn default() -> Self {
        Ordered(Vec::new())
    }
}

impl<V> Ordered<V> {
    pub fn get(&self, key: &str) -> Option<&V> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.as_str())
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Ordered<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Vis<V>(std::marker::PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for Vis<V> {
            type Value = Ordered<V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping")
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Ordered::default())
            }
            fn visit_none<E>(self) -> Result<Self::Value, E> {
                Ok(Ordered::default())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries: Vec<(String, V)> = Vec::new();
                while let Some(key) = map.next_key::<Node>()? {
                    let key = key.to_string();
                    if entries.iter().any(|(k, _)| *k == key) {
                        return Err(de::Error::custom(format!("duplicate key `{key}`")));
                    }
                    entries.push((key, map.next_value()?));
                }
                Ok(Ordered(entries))
            }
        }
        d.deserialize_any(Vis(std::marker::PhantomData))
    }
}

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
                    Some(p) => Some(port_range(&p.to_string())?),
                };
                Ok(PortMapping {
                    host_ip: l.host_ip.clone(),
                    host,
                    container: single_port(&l.target.to_string())?,
                    protocol: protocol(l.protocol.as_deref().unwrap_or("tcp"))?,
                })
            }
        }
    }
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
    if let Some((lo, hi)) = host {
        if hi - lo != container.1 - container.0 && lo != hi {
            return Err(format!(
                "`{spec}`: host range and container range differ in size"
            ));
        }
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

/// A file that YAML or the model refused: the parser's message, which
/// carries the line and column when the parser knows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub String);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseError {}

/// Parses a Compose file into its typed model and its ordered tree.
pub fn parse(content: &[u8]) -> Result<(ComposeFile, Node), ParseError> {
    // The parser renders a source snippet after its first line; the first
    // line alone ("line L column C: ...") is what fits a report.
    let err = |e: serde_saphyr::Error| {
        let text = e.to_string();
        let first = text.lines().next().unwrap_or_default();
        ParseError(first.strip_prefix("error: ").unwrap_or(first).to_owned())
    };
    // YAML 1.2 booleans only, as Compose reads files: `command: [y]` and
    // `restart: no` are strings, not booleans.
    let options = || serde_saphyr::options! { strict_booleans: true };
    let tree: Node = serde_saphyr::from_slice_with_options(content, options()).map_err(err)?;
    if !matches!(tree, Node::Map(_)) {
        return Err(ParseError(
            "a Compose file must be a mapping with a `services` key".into(),
        ));
    }
    let file: ComposeFile =
        serde_saphyr::from_slice_with_options(content, options()).map_err(err)?;
    Ok((file, tree))
}
