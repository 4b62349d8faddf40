//! The resolved model as `docker compose config` prints it: the project
//! `name`, services with short forms expanded to the long ones (ports,
//! volumes, `depends_on`, `environment` as a mapping with `env_file`
//! contents merged in, `networks`), relative paths made absolute, and the
//! default network and resource names filled in. YAML (through
//! serde-saphyr's emitter, the same crate that parses the files) or JSON.

use std::path::Path;

use crate::dotenv;
use crate::error::LoadError;
use crate::files::{normalise, Files};
use crate::model::{fmt_range, PortEntry};
use crate::node::Node;
use crate::resolve::Project;

/// The canonical tree of `project`. `files` reads the `env_file`s.
pub fn canonical(project: &Project, files: &dyn Files) -> Result<Node, LoadError> {
    let mut out = Node::Map(vec![("name".into(), Node::Str(project.name.clone()))]);
    let mut services = Vec::new();
    let mut uses_default_network = false;
    for (name, svc) in project.tree.get("services").map_or(&[][..], Node::entries) {
        let s = service(project, files, name, svc)?;
        if s.get("networks")
            .is_some_and(|n| n.get("default").is_some())
        {
            uses_default_network = true;
        }
        services.push((name.clone(), s));
    }
    out.set("services", Node::Map(services));
    let mut networks: Vec<(String, Node)> = Vec::new();
    if uses_default_network {
        networks.push((
            "default".into(),
            Node::Map(vec![(
                "name".into(),
                Node::Str(format!("{}_default", project.name)),
            )]),
        ));
    }
    for key in ["networks", "volumes"] {
        let mut defs = if key == "networks" {
            std::mem::take(&mut networks)
        } else {
            Vec::new()
        };
        for (n, def) in project.tree.get(key).map_or(&[][..], Node::entries) {
            let mut d = match def {
                Node::Map(_) => def.clone(),
                _ => Node::Map(Vec::new()),
            };
            if d.get("name").is_none() && !d.get("external").is_some_and(Node::is_true) {
                d.set("name", Node::Str(format!("{}_{n}", project.name)));
            }
            match defs.iter_mut().find(|(k, _)| k == n) {
                Some((_, old)) => *old = d,
                None => defs.push((n.clone(), d)),
            }
        }
        if !defs.is_empty() {
            out.set(key, Node::Map(defs));
        }
    }
    for key in ["secrets", "configs"] {
        if let Some(Node::Map(defs)) = project.tree.get(key) {
            let mut defs = defs.clone();
            for (n, d) in defs.iter_mut() {
                if let Some(Node::Str(f)) = d.get_mut("file") {
                    *f = absolute(&project.dir, f);
                }
                if d.get("name").is_none() && matches!(d, Node::Map(_)) {
                    d.set("name", Node::Str(format!("{}_{n}", project.name)));
                }
            }
            out.set(key, Node::Map(defs));
        }
    }
    for (k, v) in project.tree.entries() {
        if k.starts_with("x-") {
            out.set(k, v.clone());
        }
    }
    Ok(out)
}

fn absolute(dir: &Path, p: &str) -> String {
    if p.starts_with('/') {
        p.to_owned()
    } else {
        normalise(&dir.join(p)).display().to_string()
    }
}

fn service(
    project: &Project,
    files: &dyn Files,
    name: &str,
    svc: &Node,
) -> Result<Node, LoadError> {
    let mut s = svc.clone();
    let at = |k: &str| vec!["services".to_owned(), name.to_owned(), k.to_owned()];
    // environment: env_file contents, then the service's own entries.
    let mut env: Vec<(String, Node)> = Vec::new();
    let put = |k: String, v: Node, env: &mut Vec<(String, Node)>| match env
        .iter_mut()
        .find(|(e, _)| *e == k)
    {
        Some((_, old)) => *old = v,
        None => env.push((k, v)),
    };
    if let Some(ef) = s.remove("env_file") {
        let entries: Vec<(String, bool, Option<String>)> = match &ef {
            Node::Seq(items) => items
                .iter()
                .filter_map(|i| match i {
                    Node::Map(_) => Some((
                        i.get("path")?.scalar_text()?,
                        !matches!(i.get("required"), Some(Node::Bool(false))),
                        i.get("format").and_then(Node::scalar_text),
                    )),
                    other => Some((other.scalar_text()?, true, None)),
                })
                .collect(),
            other => other
                .scalar_text()
                .map(|p| (p, true, None))
                .into_iter()
                .collect(),
        };
        for (p, required, format) in entries {
            let path = normalise(&project.dir.join(&p));
            let text = match files.read(&path) {
                Ok(t) => t,
                Err(_) if !required => continue,
                Err(e) => {
                    return Err(LoadError::at(
                        &at("env_file"),
                        format!("cannot read {}: {e}", path.display()),
                    ))
                }
            };
            let parsed = dotenv::parse_format(&text, format.as_deref(), &project.vars)
                .map_err(|e| LoadError::at(&at("env_file"), format!("{}: {e}", path.display())))?;
            for (k, v) in parsed {
                put(k, Node::Str(v), &mut env);
            }
        }
    }
    match s.get("environment") {
        Some(Node::Map(e)) => {
            for (k, v) in e {
                let v = match v {
                    Node::Null => project
                        .vars
                        .get(k)
                        .map_or(Node::Null, |x| Node::Str(x.clone())),
                    other => Node::Str(other.scalar_text().unwrap_or_default()),
                };
                put(k.clone(), v, &mut env);
            }
        }
        Some(Node::Seq(items)) => {
            for i in items.iter().filter_map(Node::scalar_text) {
                match i.split_once('=') {
                    Some((k, v)) => put(k.to_owned(), Node::Str(v.to_owned()), &mut env),
                    None => {
                        let v = project
                            .vars
                            .get(&i)
                            .map_or(Node::Null, |x| Node::Str(x.clone()));
                        put(i, v, &mut env);
                    }
                }
            }
        }
        _ => {}
    }
    if env.is_empty() {
        s.remove("environment");
    } else {
        s.set("environment", Node::Map(env));
    }
    if let Some(Node::Seq(ports)) = s.get("ports") {
        let mut long = Vec::new();
        for (i, p) in ports.iter().enumerate() {
            let entry: PortEntry = serde_json::to_string(p)
                .ok()
                .and_then(|j| serde_json::from_str(&j).ok())
                .ok_or_else(|| LoadError::at(&at(&format!("ports[{i}]")), "not a port"))?;
            long.extend(port_long(&entry).map_err(|e| {
                let mut path = at("ports");
                path.push(format!("[{i}]"));
                LoadError::at(&path, e)
            })?);
        }
        s.set("ports", Node::Seq(long));
    }
    if let Some(Node::Seq(vols)) = s.get("volumes") {
        let long: Vec<Node> = vols.iter().map(|v| volume_long(&project.dir, v)).collect();
        s.set("volumes", Node::Seq(long));
    }
    match s.get("depends_on") {
        Some(Node::Seq(names)) => {
            let m = names
                .iter()
                .filter_map(Node::scalar_text)
                .map(|n| (n, dependency(&Node::Null)))
                .collect();
            s.set("depends_on", Node::Map(m));
        }
        Some(Node::Map(m)) => {
            let m = m.iter().map(|(n, d)| (n.clone(), dependency(d))).collect();
            s.set("depends_on", Node::Map(m));
        }
        _ => {}
    }
    let mode = s.get("network_mode").and_then(Node::as_str).is_some();
    match s.get("networks") {
        Some(Node::Seq(names)) => {
            let m = names
                .iter()
                .filter_map(Node::scalar_text)
                .map(|n| (n, Node::Null))
                .collect();
            s.set("networks", Node::Map(m));
        }
        None if !mode => s.set("networks", Node::Map(vec![("default".into(), Node::Null)])),
        _ => {}
    }
    // A `command` or `entrypoint` string is split into words as Compose
    // does (no shell: quotes group, nothing is expanded).
    for key in ["command", "entrypoint"] {
        if let Some(Node::Str(line)) = s.get(key) {
            let words = split_words(line).map_err(|e| LoadError::at(&at(key), e))?;
            s.set(key, Node::Seq(words.into_iter().map(Node::Str).collect()));
        }
    }
    if let Some(b) = s.get("build") {
        let b = build_long(&project.dir, b);
        s.set("build", b);
    }
    for path in TYPED_PATHS {
        retype(&mut s, path);
    }
    Ok(s)
}

/// Splits a Compose command string into its words: POSIX shell quoting,
/// no expansion (Compose Specification, services.command: "the value can
/// also be a list, in a manner similar to Dockerfile"; a string is split
/// the way docker compose's shell-words parser does).
///
/// Errors: an unbalanced quote, named.
pub fn split_words(line: &str) -> Result<Vec<String>, String> {
    shlex::split(line).ok_or_else(|| format!("cannot split {line:?} into words: unbalanced quote"))
}

/// Service attributes the specification types as numbers or booleans; a
/// value given as a string (usually from interpolation) is printed with
/// its type, as docker compose does.
const TYPED_PATHS: &[&[&str]] = &[
    &["scale"],
    &["cpu_count"],
    &["cpu_percent"],
    &["cpu_shares"],
    &["cpus"],
    &["pids_limit"],
    &["oom_score_adj"],
    &["privileged"],
    &["read_only"],
    &["tty"],
    &["stdin_open"],
    &["init"],
    &["oom_kill_disable"],
    &["healthcheck", "retries"],
    &["healthcheck", "disable"],
    &["deploy", "replicas"],
    &["deploy", "restart_policy", "max_attempts"],
];

fn retype(node: &mut Node, path: &[&str]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut at = node;
    for p in parents {
        match at.get_mut(p) {
            Some(n) => at = n,
            None => return,
        }
    }
    let Some(v) = at.get_mut(last) else {
        return;
    };
    if let Node::Str(text) = v {
        let t = text.trim();
        *v = if let Ok(i) = t.parse::<i64>() {
            Node::Int(i)
        } else if let Ok(f) = t.parse::<f64>() {
            Node::Float(f)
        } else if let Some(b) = crate::units::parse_bool(v) {
            Node::Bool(b)
        } else {
            return;
        };
    }
}

/// The long form of `build`: a context path becomes
/// `{context, dockerfile: Dockerfile}`; a local context is made absolute
/// (a Git URL or remote context is kept as written).
fn build_long(dir: &Path, b: &Node) -> Node {
    let mut long = match b {
        Node::Str(ctx) => Node::Map(vec![("context".into(), Node::Str(ctx.clone()))]),
        Node::Map(_) => b.clone(),
        other => return other.clone(),
    };
    if long.get("context").is_none() {
        long.set("context", Node::Str(".".into()));
    }
    if let Some(Node::Str(ctx)) = long.get_mut("context") {
        if !ctx.contains("://") && !ctx.starts_with("git@") && !ctx.ends_with(".git") {
            *ctx = absolute(dir, ctx);
        }
    }
    if long.get("dockerfile").is_none() && long.get("dockerfile_inline").is_none() {
        long.set("dockerfile", Node::Str("Dockerfile".into()));
    }
    long
}

/// `tree` with every `$` in its strings and keys written as `$$`, as docker
/// compose prints its resolved model: the output is itself a Compose file,
/// and loading it again must give the same values, not interpolate them.
fn escape_dollars(tree: &Node) -> Node {
    let esc = |s: &str| s.replace('$', "$$");
    match tree {
        Node::Str(s) => Node::Str(esc(s)),
        Node::Seq(items) => Node::Seq(items.iter().map(escape_dollars).collect()),
        Node::Map(entries) => Node::Map(
            entries
                .iter()
                .map(|(k, v)| (esc(k), escape_dollars(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn dependency(d: &Node) -> Node {
    let get = |k: &str| d.get(k).cloned();
    Node::Map(vec![
        (
            "condition".into(),
            get("condition").unwrap_or(Node::Str("service_started".into())),
        ),
        (
            "required".into(),
            get("required").unwrap_or(Node::Bool(true)),
        ),
        (
            "restart".into(),
            get("restart").unwrap_or(Node::Bool(false)),
        ),
    ])
}

/// The long form of a port entry: one per container port.
fn port_long(entry: &PortEntry) -> Result<Vec<Node>, String> {
    let m = entry.mapping()?;
    let (mode, name, app) = match entry {
        PortEntry::Long(l) => (l.mode.clone(), l.name.clone(), l.app_protocol.clone()),
        _ => (None, None, None),
    };
    let (c0, c1) = m.container;
    Ok((c0..=c1)
        .map(|c| {
            let k = c - c0;
            let mut e = Vec::new();
            if let Some(n) = &name {
                e.push(("name".into(), Node::Str(n.clone())));
            }
            e.push((
                "mode".into(),
                Node::Str(mode.clone().unwrap_or_else(|| "ingress".into())),
            ));
            if let Some(ip) = &m.host_ip {
                e.push(("host_ip".into(), Node::Str(ip.clone())));
            }
            e.push(("target".into(), Node::Int(i64::from(c))));
            if let Some((h0, h1)) = m.host {
                let published = if c0 == c1 {
                    fmt_range((h0, h1))
                } else {
                    (h0 + k).to_string()
                };
                e.push(("published".into(), Node::Str(published)));
            }
            e.push(("protocol".into(), Node::Str(m.protocol.clone())));
            if let Some(a) = &app {
                e.push(("app_protocol".into(), Node::Str(a.clone())));
            }
            Node::Map(e)
        })
        .collect())
}

/// The long form of a volume entry; bind sources made absolute.
fn volume_long(dir: &Path, v: &Node) -> Node {
    match v {
        Node::Map(_) => {
            let mut v = v.clone();
            if v.get("type").and_then(Node::as_str) == Some("bind") {
                if let Some(Node::Str(s)) = v.get_mut("source") {
                    *s = absolute(dir, s);
                }
            }
            v
        }
        Node::Str(s) => {
            let parts: Vec<&str> = s.split(':').collect();
            let (src, dst, mode) = match parts.as_slice() {
                [dst] => (None, *dst, None),
                [src, dst] => (Some(*src), *dst, None),
                [src, dst, mode, ..] => (Some(*src), *dst, Some(*mode)),
                [] => (None, "", None),
            };
            let mut e = Vec::new();
            match src {
                None => {
                    e.push(("type".into(), Node::Str("volume".into())));
                    e.push(("target".into(), Node::Str(dst.into())));
                }
                Some(src) if src.starts_with(['/', '.', '~', '$']) => {
                    e.push(("type".into(), Node::Str("bind".into())));
                    e.push(("source".into(), Node::Str(absolute(dir, src))));
                    e.push(("target".into(), Node::Str(dst.into())));
                }
                Some(name) => {
                    e.push(("type".into(), Node::Str("volume".into())));
                    e.push(("source".into(), Node::Str(name.into())));
                    e.push(("target".into(), Node::Str(dst.into())));
                }
            }
            if let Some(mode) = mode {
                if mode.split(',').any(|m| m == "ro") {
                    e.push(("read_only".into(), Node::Bool(true)));
                }
            }
            if src.is_some_and(|s| s.starts_with(['/', '.', '~', '$'])) {
                e.push((
                    "bind".into(),
                    Node::Map(vec![("create_host_path".into(), Node::Bool(true))]),
                ));
            }
            Node::Map(e)
        }
        other => other.clone(),
    }
}

/// `tree` as YAML.
pub fn to_yaml(tree: &Node) -> String {
    serde_saphyr::to_string(&escape_dollars(tree))
        .unwrap_or_else(|e| format!("# cannot render: {e}\n"))
}

/// `tree` as JSON, indented.
pub fn to_json(tree: &Node) -> String {
    serde_json::to_string_pretty(&escape_dollars(tree)).unwrap_or_default() + "\n"
}
