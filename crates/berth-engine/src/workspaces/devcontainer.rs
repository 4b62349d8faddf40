//! `devcontainer.json` (the Development Container Specification, the file
//! `devcontainer up` reads): JSONC read with `jsonc-parser`, then a typed
//! view of the keys berth applies. Every other key is reported in
//! [`DevContainer::report`] (the same import-report idea as Compose's), never
//! silently dropped.

use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Where the container's image comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `image`: used as it is (pulled when it is not present).
    Image(String),
    /// `build`: a Dockerfile built with its context and args.
    Build {
        /// `build.dockerfile`, relative to the devcontainer.json's folder.
        dockerfile: String,
        /// `build.context` (default `.`), relative to the same folder.
        context: String,
        /// `build.args`.
        args: BTreeMap<String, String>,
        /// `build.target` (empty = the last stage).
        target: String,
    },
    /// `dockerComposeFile` + `service`: run through berth's Compose engine.
    Compose {
        /// The Compose files, relative to the devcontainer.json's folder.
        files: Vec<String>,
        /// The service the workspace lives in.
        service: String,
        /// `runServices` (empty = all).
        run_services: Vec<String>,
    },
}

/// A lifecycle command in any of its three forms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// A string: run by `/bin/sh -c`.
    Shell(String),
    /// An array: run as argv, without a shell.
    Argv(Vec<String>),
    /// An object: named commands (each a string or array) run in parallel.
    Parallel(Vec<(String, Command)>),
}

/// The lifecycle hooks, in the order `devcontainer up` runs them.
pub const LIFECYCLE: [&str; 6] = [
    "initializeCommand",
    "onCreateCommand",
    "updateContentCommand",
    "postCreateCommand",
    "postStartCommand",
    "postAttachCommand",
];

/// A `mounts` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountSpec {
    /// `bind`, `volume` or `tmpfs`.
    pub kind: String,
    /// The volume name or host path (empty for tmpfs).
    pub source: String,
    /// The path in the container.
    pub target: String,
    /// Mounted read-only.
    pub read_only: bool,
}

/// Docker settings `runArgs` map to (the ones berth applies).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunArgs {
    /// `--cap-add`.
    pub cap_add: Vec<String>,
    /// `--cap-drop`.
    pub cap_drop: Vec<String>,
    /// `--security-opt`.
    pub security_opt: Vec<String>,
    /// `--privileged`.
    pub privileged: bool,
    /// `--init`.
    pub init: bool,
    /// `-e`, `--env` (`KEY=VALUE`).
    pub env: Vec<(String, String)>,
    /// `-l`, `--label` (`KEY=VALUE`).
    pub labels: Vec<(String, String)>,
    /// `--add-host` (`HOST:IP`).
    pub add_host: Vec<String>,
    /// `-h`, `--hostname`.
    pub hostname: Option<String>,
    /// `--shm-size` in bytes.
    pub shm_size: Option<i64>,
    /// `-m`, `--memory` in bytes.
    pub memory: Option<i64>,
    /// `--device` (`HOST[:CONTAINER[:PERMS]]`).
    pub devices: Vec<String>,
}

/// The `runArgs` flags berth maps, for docs and reports.
pub const RUN_ARGS_SUPPORTED: &str = "--cap-add, --cap-drop, --security-opt, --privileged, --init, -e/--env, -l/--label, --add-host, -h/--hostname, --shm-size, -m/--memory, --device";

/// A parsed devcontainer.json.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DevContainer {
    /// `name`.
    pub name: Option<String>,
    /// Where the image comes from (`None` only before validation).
    pub source: Option<Source>,
    /// `workspaceFolder` (default `/workspaces/<repository folder>`).
    pub workspace_folder: Option<String>,
    /// `workspaceMount` (a mount string; default: the workspace volume).
    pub workspace_mount: Option<MountSpec>,
    /// `containerEnv`.
    pub container_env: BTreeMap<String, String>,
    /// `remoteEnv` (terminals and lifecycle commands after creation).
    pub remote_env: BTreeMap<String, String>,
    /// `remoteUser`.
    pub remote_user: Option<String>,
    /// `containerUser`.
    pub container_user: Option<String>,
    /// `mounts`.
    pub mounts: Vec<MountSpec>,
    /// `runArgs` that map to Docker settings.
    pub run_args: RunArgs,
    /// `forwardPorts` (container ports; `"service:port"` forms keep the port).
    pub forward_ports: Vec<u16>,
    /// `overrideCommand` (default true: keep the container up with a
    /// sleeping init instead of the image's command).
    pub override_command: bool,
    /// Lifecycle commands by hook name (see [`LIFECYCLE`]).
    pub lifecycle: BTreeMap<String, Command>,
    /// Keys that are not applied, each with why: the import report.
    pub report: Vec<String>,
}

/// Why a devcontainer.json could not be used.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {why}")]
pub struct ConfigError {
    /// The file.
    pub file: String,
    /// What is wrong, naming the key.
    pub why: String,
}

fn str_map(v: &Value, key: &str, report: &mut Vec<String>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Some(o) = v.as_object() {
        for (k, val) in o {
            match val {
                Value::String(s) => {
                    out.insert(k.clone(), s.clone());
                }
                Value::Number(n) => {
                    out.insert(k.clone(), n.to_string());
                }
                Value::Bool(b) => {
                    out.insert(k.clone(), b.to_string());
                }
                Value::Null => {}
                _ => report.push(format!("{key}.{k}: not a string, ignored")),
            }
        }
    } else {
        report.push(format!("{key}: not an object, ignored"));
    }
    out
}

fn command(v: &Value, key: &str) -> Result<Command, String> {
    match v {
        Value::String(s) => Ok(Command::Shell(s.clone())),
        Value::Array(a) => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(String::from)
                    .ok_or_else(|| format!("{key}: an array command holds strings only"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Command::Argv),
        Value::Object(o) => {
            let mut out = Vec::new();
            for (name, c) in o {
                let c = command(c, &format!("{key}.{name}"))?;
                if matches!(c, Command::Parallel(_)) {
                    return Err(format!(
                        "{key}.{name}: a named command is a string or an array"
                    ));
                }
                out.push((name.clone(), c));
            }
            Ok(Command::Parallel(out))
        }
        _ => Err(format!("{key}: use a string, an array or an object")),
    }
}

/// Parses a mount string (`type=volume,source=x,target=/y[,readonly]`, the
/// Docker `--mount` syntax the spec uses) or object.
pub fn parse_mount(v: &Value) -> Result<MountSpec, String> {
    let mut m = MountSpec {
        kind: "volume".into(),
        source: String::new(),
        target: String::new(),
        read_only: false,
    };
    match v {
        Value::String(s) => {
            for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let (k, val) = part.split_once('=').unwrap_or((part, "true"));
                match k {
                    "type" => m.kind = val.to_string(),
                    "source" | "src" => m.source = val.to_string(),
                    "target" | "destination" | "dst" => m.target = val.to_string(),
                    "readonly" | "ro" => m.read_only = val != "false" && val != "0",
                    "consistency" => {}
                    other => return Err(format!("mount {s:?}: option {other:?} is not supported")),
                }
            }
        }
        Value::Object(o) => {
            if let Some(t) = o.get("type").and_then(Value::as_str) {
                m.kind = t.into();
            }
            m.source = o.get("source").and_then(Value::as_str).unwrap_or("").into();
            m.target = o.get("target").and_then(Value::as_str).unwrap_or("").into();
        }
        _ => return Err("a mount is a string or an object".into()),
    }
    if !matches!(m.kind.as_str(), "bind" | "volume" | "tmpfs") {
        return Err(format!(
            "mount type {:?}: use bind, volume or tmpfs",
            m.kind
        ));
    }
    if !m.target.starts_with('/') {
        return Err(format!(
            "mount target {:?} must be an absolute path",
            m.target
        ));
    }
    if m.kind != "tmpfs" && m.source.is_empty() {
        return Err(format!("mount to {} has no source", m.target));
    }
    Ok(m)
}

/// Parses a size such as `512m`, `2g`, `1024` into bytes.
fn size(s: &str) -> Option<i64> {
    let s = s.trim().to_ascii_lowercase();
    let (num, mult) = match s.chars().last()? {
        'k' => (&s[..s.len() - 1], 1i64 << 10),
        'm' => (&s[..s.len() - 1], 1 << 20),
        'g' => (&s[..s.len() - 1], 1 << 30),
        'b' => (&s[..s.len() - 1], 1),
        _ => (s.as_str(), 1),
    };
    num.parse::<i64>().ok().map(|n| n * mult)
}

fn kv(s: &str) -> (String, String) {
    let (k, v) = s.split_once('=').unwrap_or((s, ""));
    (k.to_string(), v.to_string())
}

/// Maps `runArgs` to Docker settings; flags that do not map are reported.
pub fn parse_run_args(args: &[String], report: &mut Vec<String>) -> RunArgs {
    let mut out = RunArgs::default();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with('-') => (f.to_string(), Some(v.to_string())),
            _ => (a.clone(), None),
        };
        let takes_value = matches!(
            flag.as_str(),
            "--cap-add"
                | "--cap-drop"
                | "--security-opt"
                | "-e"
                | "--env"
                | "-l"
                | "--label"
                | "--add-host"
                | "-h"
                | "--hostname"
                | "--shm-size"
                | "-m"
                | "--memory"
                | "--device"
        );
        let value = if takes_value {
            match inline.clone() {
                Some(v) => Some(v),
                None => {
                    i += 1;
                    args.get(i).cloned()
                }
            }
        } else {
            None
        };
        let v = value.clone().unwrap_or_default();
        match flag.as_str() {
            "--cap-add" => out.cap_add.push(v),
            "--cap-drop" => out.cap_drop.push(v),
            "--security-opt" => out.security_opt.push(v),
            "--privileged" => out.privileged = inline.as_deref() != Some("false"),
            "--init" => out.init = inline.as_deref() != Some("false"),
            "-e" | "--env" => out.env.push(kv(&v)),
            "-l" | "--label" => out.labels.push(kv(&v)),
            "--add-host" => out.add_host.push(v),
            "-h" | "--hostname" => out.hostname = Some(v),
            "--shm-size" => match size(&v) {
                Some(n) => out.shm_size = Some(n),
                None => report.push(format!("runArgs: --shm-size {v:?} is not a size, ignored")),
            },
            "-m" | "--memory" => match size(&v) {
                Some(n) => out.memory = Some(n),
                None => report.push(format!("runArgs: --memory {v:?} is not a size, ignored")),
            },
            "--device" => out.devices.push(v),
            other => report.push(format!(
                "runArgs: {other} is not applied (berth maps {RUN_ARGS_SUPPORTED})"
            )),
        }
        i += 1;
    }
    out
}

fn port(v: &Value) -> Option<u16> {
    match v {
        Value::Number(n) => n.as_u64().and_then(|p| u16::try_from(p).ok()),
        Value::String(s) => s.rsplit(':').next()?.parse().ok(),
        _ => None,
    }
}

impl DevContainer {
    /// Reads devcontainer.json text (JSONC: `//` and `/* */` comments,
    /// trailing commas). `file` names the file in errors. Errors: text that
    /// does not parse (with its position), a value of the wrong shape
    /// (naming the key), or no `image`, `build` or `dockerComposeFile`.
    pub fn parse(file: &str, text: &str) -> Result<DevContainer, ConfigError> {
        let err = |why: String| ConfigError {
            file: file.to_string(),
            why,
        };
        let opts = jsonc_parser::ParseOptions::default();
        let v: Value = jsonc_parser::parse_to_serde_value(text, &opts)
            .map_err(|e| err(format!("not valid JSONC: {e}")))?;
        let Value::Object(o) = v else {
            return Err(err("the top level must be an object".into()));
        };
        Self::from_object(&o).map_err(err)
    }

    fn from_object(o: &Map<String, Value>) -> Result<DevContainer, String> {
        let mut d = DevContainer {
            override_command: true,
            ..Default::default()
        };
        let mut report = Vec::new();
        let s = |k: &str| -> Result<Option<String>, String> {
            match o.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(format!("{k}: expected a string")),
            }
        };
        for (key, val) in o {
            match key.as_str() {
                "name" => d.name = s("name")?,
                "image" => d.source = s("image")?.map(Source::Image),
                "build" | "dockerFile" | "context" => {}
                "dockerComposeFile" | "service" | "runServices" => {}
                "workspaceFolder" => d.workspace_folder = s("workspaceFolder")?,
                "workspaceMount" => {
                    d.workspace_mount =
                        Some(parse_mount(val).map_err(|e| format!("workspaceMount: {e}"))?)
                }
                "containerEnv" => d.container_env = str_map(val, key, &mut report),
                "remoteEnv" => d.remote_env = str_map(val, key, &mut report),
                "remoteUser" => d.remote_user = s("remoteUser")?,
                "containerUser" => d.container_user = s("containerUser")?,
                "mounts" => {
                    let list = val.as_array().ok_or("mounts: expected an array")?;
                    for m in list {
                        d.mounts
                            .push(parse_mount(m).map_err(|e| format!("mounts: {e}"))?);
                    }
                }
                "runArgs" => {
                    let list: Vec<String> = val
                        .as_array()
                        .ok_or("runArgs: expected an array of strings")?
                        .iter()
                        .map(|x| x.as_str().map(String::from))
                        .collect::<Option<_>>()
                        .ok_or("runArgs: expected an array of strings")?;
                    d.run_args = parse_run_args(&list, &mut report);
                }
                "forwardPorts" | "appPort" => {
                    let list = match val {
                        Value::Array(a) => a.clone(),
                        other => vec![other.clone()],
                    };
                    for p in &list {
                        match port(p) {
                            Some(p) if p > 0 => d.forward_ports.push(p),
                            _ => return Err(format!("{key}: {p} is not a port (1-65535 or \"host:port\")")),
                        }
                    }
                }
                "overrideCommand" => {
                    d.override_command = val
                        .as_bool()
                        .ok_or("overrideCommand: expected true or false")?
                }
                k if LIFECYCLE.contains(&k) => {
                    d.lifecycle.insert(k.to_string(), command(val, k)?);
                }
                "$schema" => {}
                "customizations" | "extensions" | "settings" => {
                    report.push(format!("{key}: editor settings, not used by berth"))
                }
                "portsAttributes" | "otherPortsAttributes" => {
                    report.push(format!("{key}: editor port display hints, not used by berth"))
                }
                "shutdownAction" => report.push(
                    "shutdownAction: berth keeps workspaces running until DELETE".into(),
                ),
                "features" => report.push(
                    "features: dev container Features are not installed (they need a registry); put the tools in the image or Dockerfile".into(),
                ),
                other => report.push(format!("{other}: not supported by berth, ignored")),
            }
        }
        // Where the image comes from: image, build (or the old dockerFile),
        // or Compose; exactly one.
        let build = match o.get("build") {
            Some(Value::Object(b)) => Some(b.clone()),
            Some(_) => return Err("build: expected an object".into()),
            None => o.get("dockerFile").map(|f| {
                let mut b = Map::new();
                b.insert("dockerfile".into(), f.clone());
                if let Some(c) = o.get("context") {
                    b.insert("context".into(), c.clone());
                }
                b
            }),
        };
        if let Some(b) = build {
            if d.source.is_some() {
                return Err("image and build are both set: use one".into());
            }
            let dockerfile = b
                .get("dockerfile")
                .and_then(Value::as_str)
                .ok_or("build.dockerfile: expected a path")?
                .to_string();
            let context = b
                .get("context")
                .and_then(Value::as_str)
                .unwrap_or(".")
                .to_string();
            let target = b
                .get("target")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let args = b
                .get("args")
                .map(|a| str_map(a, "build.args", &mut report))
                .unwrap_or_default();
            for k in b.keys() {
                if !matches!(k.as_str(), "dockerfile" | "context" | "args" | "target") {
                    report.push(format!("build.{k}: not supported by berth, ignored"));
                }
            }
            d.source = Some(Source::Build {
                dockerfile,
                context,
                args,
                target,
            });
        }
        if let Some(f) = o.get("dockerComposeFile") {
            if d.source.is_some() {
                return Err("dockerComposeFile is set with image or build: use one".into());
            }
            let files = match f {
                Value::String(s) => vec![s.clone()],
                Value::Array(a) => a
                    .iter()
                    .map(|x| x.as_str().map(String::from))
                    .collect::<Option<Vec<_>>>()
                    .ok_or("dockerComposeFile: expected a path or an array of paths")?,
                _ => return Err("dockerComposeFile: expected a path or an array of paths".into()),
            };
            let service = s("service")?.ok_or("dockerComposeFile needs service")?;
            let run_services = match o.get("runServices") {
                Some(Value::Array(a)) => a
                    .iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect(),
                _ => Vec::new(),
            };
            d.source = Some(Source::Compose {
                files,
                service,
                run_services,
            });
        }
        if d.source.is_none() {
            return Err(
                "no image, build.dockerfile or dockerComposeFile: berth does not know what to run"
                    .into(),
            );
        }
        if let Some(Source::Compose { .. }) = &d.source {
            if !d.run_args.eq(&RunArgs::default()) {
                report.push("runArgs: not applied to a Compose-based workspace (set them in the Compose file)".into());
            }
        }
        report.sort();
        d.report = report;
        Ok(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonc_with_comments_and_trailing_commas() {
        let d = DevContainer::parse(
            "devcontainer.json",
            r#"{
              // the base image
              "image": "busybox:latest", /* local */
              "remoteUser": "dev",
              "containerEnv": {"A": "1", "N": 2,},
              "forwardPorts": [8080, "db:5432"],
              "postCreateCommand": ["touch", "/tmp/x"],
              "postStartCommand": {"a": "echo a", "b": ["echo", "b"]},
              "runArgs": ["--cap-add=SYS_PTRACE", "--init", "-e", "K=V", "--gpus", "all"],
              "features": {"ghcr.io/x/y:1": {}},
              "mounts": ["type=volume,source=cache,target=/cache"],
            }"#,
        )
        .unwrap();
        assert_eq!(d.source, Some(Source::Image("busybox:latest".into())));
        assert_eq!(d.container_env["N"], "2");
        assert_eq!(d.forward_ports, vec![8080, 5432]);
        assert_eq!(
            d.lifecycle["postCreateCommand"],
            Command::Argv(vec!["touch".into(), "/tmp/x".into()])
        );
        assert!(
            matches!(d.lifecycle["postStartCommand"], Command::Parallel(ref v) if v.len() == 2)
        );
        assert_eq!(d.run_args.cap_add, vec!["SYS_PTRACE"]);
        assert!(d.run_args.init);
        assert_eq!(d.run_args.env, vec![("K".into(), "V".into())]);
        assert!(d.report.iter().any(|r| r.starts_with("features:")));
        assert!(d.report.iter().any(|r| r.contains("--gpus")));
        assert_eq!(d.mounts[0].source, "cache");
    }

    #[test]
    fn build_and_compose_forms() {
        let d = DevContainer::parse(
            "f",
            r#"{"build": {"dockerfile": "Dockerfile", "context": "..", "args": {"V": "1"}}}"#,
        )
        .unwrap();
        assert!(matches!(d.source, Some(Source::Build { ref context, .. }) if context == ".."));
        let d = DevContainer::parse(
            "f",
            r#"{"dockerComposeFile": ["a.yml", "b.yml"], "service": "app"}"#,
        )
        .unwrap();
        assert!(matches!(d.source, Some(Source::Compose { ref files, .. }) if files.len() == 2));
    }

    #[test]
    fn bad_files_name_the_problem() {
        let e = DevContainer::parse("x.json", "{\"image\": }").unwrap_err();
        assert!(e.to_string().contains("x.json: not valid JSONC"), "{e}");
        let e = DevContainer::parse("x.json", "{\"name\": \"n\"}").unwrap_err();
        assert!(e.to_string().contains("no image"), "{e}");
        let e = DevContainer::parse("x.json", "{\"image\": \"i\", \"forwardPorts\": [99999]}")
            .unwrap_err();
        assert!(e.to_string().contains("forwardPorts"), "{e}");
        let e = DevContainer::parse("x.json", "{\"image\": \"i\", \"postStartCommand\": 3}")
            .unwrap_err();
        assert!(e.to_string().contains("postStartCommand"), "{e}");
    }
}
