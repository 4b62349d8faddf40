//! `berth svc apply FILE`: services declared in a TOML ecosystem file,
//! applied idempotently. New ones start, changed ones restart, and the
//! ones this file declared before but no longer does stop. Errors point at
//! the file's line, column and key.

use crate::ctx::Ctx;
use crate::error::{CliError, CmdResult};
use berth_client::ClientError;
use berth_wire::daemon::{ServiceConfig, ServiceState};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use toml::Spanned;

/// Environment key `berth svc apply` sets on each service it declares: the
/// absolute path of the file. It is how a later apply of the same file
/// knows which services the file owns (and stops those removed from it).
pub(super) const APPLY_TAG: &str = "BERTH_APPLY_FILE";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EcoFile {
    #[serde(default)]
    services: BTreeMap<Spanned<String>, Spanned<Entry>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Cmd {
    Argv(Vec<String>),
    Shell(String),
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    cmd: Spanned<Cmd>,
    #[serde(default)]
    cwd: Option<Spanned<String>>,
    #[serde(default)]
    env: Option<Spanned<BTreeMap<String, String>>>,
    #[serde(default = "yes")]
    autorestart: bool,
    #[serde(default)]
    max_restarts: u32,
    #[serde(default)]
    restart_delay_ms: u32,
    #[serde(default)]
    kill_timeout_ms: u32,
    #[serde(default)]
    min_uptime_ms: u32,
}

/// A declared service and where its parts sit in the file.
struct Declared {
    config: ServiceConfig,
    spans: HashMap<&'static str, std::ops::Range<usize>>,
}

/// `line:column` (1-based) of byte `offset` in `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rfind('\n').map(|i| offset - i).unwrap_or(offset + 1);
    (line, col)
}

#[derive(Debug)]
struct FileError {
    span: std::ops::Range<usize>,
    key: String,
    message: String,
}

fn parse_file(path: &Path, text: &str) -> Result<Vec<Declared>, FileError> {
    let eco: EcoFile = toml::from_str(text).map_err(|e| FileError {
        span: e.span().unwrap_or(0..0),
        key: String::new(),
        message: e.message().trim().to_string(),
    })?;
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let dir = abs.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut out = Vec::new();
    for (name, entry) in eco.services {
        let key = |f: &str| format!("services.{}.{f}", name.get_ref());
        let e = entry.get_ref();
        let bad = |span: std::ops::Range<usize>, f: &str, m: String| FileError {
            span,
            key: key(f),
            message: m,
        };
        let n = name.get_ref();
        if n.is_empty()
            || n.len() > 64
            || n.starts_with('.')
            || n == "all"
            || n.chars().all(|c| c.is_ascii_digit())
            || !n
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._@:+-".contains(c))
        {
            return Err(FileError {
                span: name.span(),
                key: format!("services.{n}"),
                message: "a service name uses 1-64 of [A-Za-z0-9._@:+-], not starting with '.', \
                          not \"all\", not all digits"
                    .into(),
            });
        }
        let cmd = match e.cmd.get_ref() {
            Cmd::Argv(v) => v.clone(),
            Cmd::Shell(s) => vec!["/bin/sh".into(), "-c".into(), s.clone()],
        };
        if cmd.is_empty()
            || cmd[0].trim().is_empty()
            || matches!(e.cmd.get_ref(), Cmd::Shell(s) if s.trim().is_empty())
        {
            return Err(bad(
                e.cmd.span(),
                "cmd",
                "must not be empty: a program and its arguments, or a shell command line".into(),
            ));
        }
        let cwd = match &e.cwd {
            Some(c) => {
                let p = dir.join(c.get_ref());
                if !p.is_dir() {
                    return Err(bad(
                        c.span(),
                        "cwd",
                        format!("{} is not an existing directory", p.display()),
                    ));
                }
                p
            }
            None => dir.clone(),
        };
        let mut env: HashMap<String, String> = HashMap::new();
        if let Some(en) = &e.env {
            for (k, v) in en.get_ref() {
                if k.is_empty() || k.contains('=') || k == APPLY_TAG {
                    return Err(bad(
                        en.span(),
                        "env",
                        format!("{k:?} is not a usable variable name"),
                    ));
                }
                env.insert(k.clone(), v.clone());
            }
        }
        env.insert(APPLY_TAG.into(), abs.display().to_string());
        let mut spans = HashMap::new();
        spans.insert("name", name.span());
        spans.insert("cmd", e.cmd.span());
        if let Some(c) = &e.cwd {
            spans.insert("cwd", c.span());
        }
        if let Some(en) = &e.env {
            spans.insert("env", en.span());
        }
        out.push(Declared {
            config: ServiceConfig {
                name: n.clone(),
                cmd,
                cwd: cwd.display().to_string(),
                env,
                autorestart: e.autorestart,
                max_restarts: e.max_restarts,
                restart_delay_ms: e.restart_delay_ms,
                kill_timeout_ms: e.kill_timeout_ms,
                min_uptime_ms: e.min_uptime_ms,
            },
            spans,
        });
        let _ = entry.span();
    }
    Ok(out)
}

/// `FILE:LINE:COL: KEY: MESSAGE`, where `e` is in `text`.
fn located(path: &Path, text: &str, e: &FileError) -> String {
    let (line, col) = line_col(text, e.span.start);
    if e.key.is_empty() {
        format!("{}:{line}:{col}: {}", path.display(), e.message)
    } else {
        format!("{}:{line}:{col}: {}: {}", path.display(), e.key, e.message)
    }
}

/// `berth svc apply FILE`: exit status 2 when the file cannot be read or
/// parsed (nothing changed), 1 when the daemon refuses a service (those
/// before it in the file were applied).
pub(super) fn apply(ctx: &mut Ctx, path: &Path) -> CmdResult {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::usage(format!("cannot read {}: {e}", path.display())))?;
    let declared =
        parse_file(path, &text).map_err(|e| CliError::usage(located(path, &text, &e)))?;
    let c = ctx.client()?;
    let abs = std::path::absolute(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string();
    let current: HashMap<String, ServiceState> = c
        .service_list()?
        .into_iter()
        .map(|(s, _)| (s.name.clone(), s))
        .collect();
    for d in &declared {
        let name = d.config.name.clone();
        let existing = current.get(&name);
        let up = existing.is_some_and(|s| s.status == "online" || s.status == "starting");
        let same = existing.and_then(|s| s.config.as_ref()) == Some(&d.config);
        let what = match (existing, same, up) {
            (Some(_), true, true) => {
                println!("{name}: unchanged");
                continue;
            }
            (Some(_), true, false) => "started",
            (Some(_), false, true) => {
                c.service_stop(&name)?;
                "restarted (changed)"
            }
            (Some(_), false, false) => "started (changed)",
            (None, _, _) => "started",
        };
        match c.service_start(d.config.clone()) {
            Ok(s) => println!("{name}: {what} (id {}, pid {})", s.id, s.pid),
            Err(ClientError::Status { message, .. }) => {
                // Point at the field the daemon names, where the file has it.
                let field = message
                    .strip_prefix("service_start.config.")
                    .and_then(|m| m.split_once(':'))
                    .map(|(f, m)| (f.to_string(), m.trim().to_string()));
                let (key, msg) = field.unwrap_or(("name".into(), message.clone()));
                let base = key.split(['[', '.']).next().unwrap_or("name");
                let span = d
                    .spans
                    .get(base)
                    .or_else(|| d.spans.get("name"))
                    .cloned()
                    .unwrap_or(0..0);
                return Err(CliError::failed(located(
                    path,
                    &text,
                    &FileError {
                        span,
                        key: format!("services.{name}.{key}"),
                        message: msg,
                    },
                )));
            }
            Err(e) => return Err(e.into()),
        }
    }
    for (name, s) in &current {
        let owned = s
            .config
            .as_ref()
            .and_then(|c| c.env.get(APPLY_TAG))
            .is_some_and(|f| *f == abs);
        let declared_now = declared.iter().any(|d| &d.config.name == name);
        if owned && !declared_now && (s.status == "online" || s.status == "starting") {
            c.service_stop(name)?;
            println!("{name}: stopped (no longer in {})", path.display());
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_point_at_the_key_and_line() {
        let text = "[services.web]\ncmd = []\n";
        let e = parse_file(Path::new("/tmp/x.toml"), text).err().unwrap();
        assert_eq!(e.key, "services.web.cmd");
        assert_eq!(line_col(text, e.span.start), (2, 7));
        let text = "[services.web]\ncmd = \"sleep 1\"\ncmdd = 1\n";
        let e = parse_file(Path::new("/tmp/x.toml"), text).err().unwrap();
        assert!(e.message.contains("cmdd"), "{}", e.message);
        assert_eq!(line_col(text, e.span.start).0, 3);
        let text = "[services.all]\ncmd = \"x\"\n";
        let e = parse_file(Path::new("/tmp/x.toml"), text).err().unwrap();
        assert_eq!(e.key, "services.all");
    }

    #[test]
    fn a_declared_service_is_tagged_with_its_file() {
        let text =
            "[services.web]\ncmd = [\"sleep\", \"5\"]\nenv = { A = \"1\" }\nmax_restarts = 3\n";
        let d = parse_file(Path::new("/tmp/eco.toml"), text).unwrap();
        assert_eq!(d.len(), 1);
        let c = &d[0].config;
        assert_eq!(c.cmd, ["sleep", "5"]);
        assert_eq!(c.cwd, "/tmp");
        assert!(c.autorestart);
        assert_eq!(
            c.env.get(APPLY_TAG).map(String::as_str),
            Some("/tmp/eco.toml")
        );
        assert_eq!(c.env.get("A").map(String::as_str), Some("1"));
    }
}
