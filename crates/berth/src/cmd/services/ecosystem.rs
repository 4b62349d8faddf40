//! The ecosystem file of `berth svc apply`: TOML, one table per service
//! under `[services]`, parsed into the daemon's `ServiceConfig`s with the
//! span of each part, so an error points at the file's line, column and
//! key. Pure (no daemon, no I/O beyond checking that a `cwd` exists), and
//! self-contained so the fuzz target `fuzz/fuzz_targets/ecosystem.rs`
//! compiles this very file.

use berth_wire::daemon::ServiceConfig;
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
pub(super) struct Declared {
    /// The service as the daemon takes it.
    pub(super) config: ServiceConfig,
    /// Where its name, cmd, cwd and env are in the file.
    pub(super) spans: HashMap<&'static str, std::ops::Range<usize>>,
}

/// `line:column` (1-based) of byte `offset` in `text`.
pub(super) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rfind('\n').map(|i| offset - i).unwrap_or(offset + 1);
    (line, col)
}

/// A problem in the file: where, under which key, and what.
#[derive(Debug)]
pub(super) struct FileError {
    /// Byte range in the file.
    pub(super) span: std::ops::Range<usize>,
    /// `services.NAME.FIELD`, or empty for a TOML syntax error.
    pub(super) key: String,
    /// What is wrong.
    pub(super) message: String,
}

/// Parses `text`, the ecosystem file at `path` (relative `cwd`s resolve
/// against its directory; every service is tagged with its absolute path
/// in [`APPLY_TAG`]).
pub(super) fn parse_file(path: &Path, text: &str) -> Result<Vec<Declared>, FileError> {
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
pub(super) fn located(path: &Path, text: &str, e: &FileError) -> String {
    let (line, col) = line_col(text, e.span.start);
    if e.key.is_empty() {
        format!("{}:{line}:{col}: {}", path.display(), e.message)
    } else {
        format!("{}:{line}:{col}: {}: {}", path.display(), e.key, e.message)
    }
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
