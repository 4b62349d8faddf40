//! `berth svc ...`: supervised services, over the process API's runpm
//! requests (50-59), and `berth svc apply FILE` for ecosystem files.

use crate::output;
use berth_client::{Client, ClientError};
use berth_wire::daemon::{ServiceConfig, ServiceState};
use clap::{ArgAction, Subcommand};
use serde::Deserialize;
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use toml::Spanned;

/// Environment key `berth svc apply` sets on each service it declares: the
/// absolute path of the file. It is how a later apply of the same file
/// knows which services the file owns (and stops those removed from it).
pub const APPLY_TAG: &str = "BERTH_APPLY_FILE";

#[derive(Subcommand)]
pub enum Svc {
    /// Define and start a service: `berth svc start NAME -- CMD ARGS...`.
    Start {
        /// Service name (letters, digits, . _ @ : + -).
        name: String,
        /// Working directory (default: the current one).
        #[arg(long)]
        cwd: Option<PathBuf>,
        /// Extra environment, KEY=VALUE; repeatable.
        #[arg(long = "env", short = 'e', value_name = "KEY=VALUE")]
        env: Vec<String>,
        /// Restart when it exits by itself.
        #[arg(long, default_value_t = true, action = ArgAction::Set)]
        autorestart: bool,
        /// Unstable restarts in a row before giving up (0: unlimited).
        #[arg(long, default_value_t = 0)]
        max_restarts: u32,
        /// Delay before a restart, doubled per consecutive unstable exit.
        #[arg(long, default_value_t = 0)]
        restart_delay_ms: u32,
        /// Grace between SIGTERM and SIGKILL on stop (0: 5000).
        #[arg(long, default_value_t = 0)]
        kill_timeout_ms: u32,
        /// A run shorter than this is unstable (0: 1000).
        #[arg(long, default_value_t = 0)]
        min_uptime_ms: u32,
        /// The program and its arguments (run directly, not by a shell).
        #[arg(last = true, required = true, num_args = 1..)]
        command: Vec<String>,
    },
    /// List services.
    #[command(alias = "list")]
    Ls {
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one service and why it is in its status.
    #[command(alias = "show")]
    Describe {
        /// Name or id.
        target: String,
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Print the last log lines (all services by default).
    Logs {
        /// Name or id.
        target: Option<String>,
        /// Keep printing new lines until interrupted.
        #[arg(short = 'f', long)]
        follow: bool,
        /// How many lines.
        #[arg(short = 'n', long, default_value_t = 100)]
        lines: u32,
    },
    /// Restart services (name, id or "all").
    Restart { target: String },
    /// Stop services (name, id or "all").
    Stop { target: String },
    /// Stop and forget services (name, id or "all"), logs included.
    Delete { target: String },
    /// Empty the logs (all services by default).
    Flush { target: Option<String> },
    /// Save the service set for `resurrect` / `berth daemon --resurrect`.
    Save,
    /// Start the saved services that are not running.
    Resurrect,
    /// Declare services from a TOML file; idempotent: new ones start,
    /// changed ones restart, ones removed from the file stop.
    Apply {
        /// The ecosystem file.
        file: PathBuf,
    },
}

fn env_pairs(env: &[String]) -> Result<HashMap<String, String>, String> {
    let mut out = HashMap::new();
    for e in env {
        let Some((k, v)) = e.split_once('=') else {
            return Err(format!("--env {e:?} must be KEY=VALUE"));
        };
        out.insert(k.to_string(), v.to_string());
    }
    Ok(out)
}

fn uptime(s: &ServiceState) -> String {
    if s.status == "online" && s.last_started_at > 0.0 {
        output::duration(berth_os::proc::now_epoch() - s.last_started_at)
    } else {
        "-".into()
    }
}

fn table(rows: &[(ServiceState, String)]) -> String {
    if rows.is_empty() {
        return "no services\n".into();
    }
    output::table(
        &[
            "ID", "NAME", "STATUS", "PID", "UPTIME", "RESTARTS", "COMMAND",
        ],
        rows.iter()
            .map(|(s, _)| {
                vec![
                    s.id.to_string(),
                    s.name.clone(),
                    s.status.clone(),
                    if s.pid == 0 {
                        "-".into()
                    } else {
                        s.pid.to_string()
                    },
                    uptime(s),
                    s.restart_count.to_string(),
                    s.config
                        .as_ref()
                        .map(|c| output::shell_join(&c.cmd))
                        .unwrap_or_default(),
                ]
            })
            .collect(),
    )
}

fn to_json(s: &ServiceState, reason: &str) -> serde_json::Value {
    let c = s.config.clone().unwrap_or_default();
    let env: BTreeMap<_, _> = c.env.into_iter().collect();
    json!({
        "id": s.id, "name": s.name, "status": s.status, "reason": reason, "pid": s.pid,
        "restart_count": s.restart_count, "last_started_at": s.last_started_at,
        "last_exited_at": s.last_exited_at, "last_exit_code": s.last_exit_code,
        "uptime_seconds": if s.status == "online" && s.last_started_at > 0.0 {
            berth_os::proc::now_epoch() - s.last_started_at } else { 0.0 },
        "config": {
            "cmd": c.cmd, "cwd": c.cwd, "env": env, "autorestart": c.autorestart,
            "max_restarts": c.max_restarts, "restart_delay_ms": c.restart_delay_ms,
            "kill_timeout_ms": c.kill_timeout_ms, "min_uptime_ms": c.min_uptime_ms,
        },
    })
}

fn describe_text(s: &ServiceState, reason: &str) -> String {
    let c = s.config.clone().unwrap_or_default();
    let mut out = format!(
        "name:          {}\nid:            {}\nstatus:        {}\nreason:        {}\npid:           {}\n\
         uptime:        {}\nrestarts:      {}\nlast exit:     {}\n",
        s.name,
        s.id,
        s.status,
        reason,
        if s.pid == 0 { "-".into() } else { s.pid.to_string() },
        uptime(s),
        s.restart_count,
        match s.last_exit_code {
            _ if s.last_exited_at == 0.0 => "-".to_string(),
            c if c < 0 => format!("signal {}", -c),
            c => format!("code {c}"),
        }
    );
    out.push_str(&format!(
        "command:       {}\ncwd:           {}\n",
        output::shell_join(&c.cmd),
        if c.cwd.is_empty() { "(home)" } else { &c.cwd }
    ));
    let env: BTreeMap<_, _> = c.env.iter().collect();
    for (k, v) in env {
        out.push_str(&format!("env:           {k}={v}\n"));
    }
    let ms = |v: u32, default: &str| {
        if v == 0 {
            default.to_string()
        } else {
            format!("{v} ms")
        }
    };
    out.push_str(&format!(
        "autorestart:   {}\nmax restarts:  {}\nrestart delay: {}\nkill timeout:  {}\nmin uptime:    {}\n",
        c.autorestart,
        if c.max_restarts == 0 { "unlimited".into() } else { c.max_restarts.to_string() },
        ms(c.restart_delay_ms, "0 ms"),
        ms(c.kill_timeout_ms, "5000 ms (default)"),
        ms(c.min_uptime_ms, "1000 ms (default)"),
    ));
    out
}

fn plural(n: u32) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// Runs one `berth svc` command.
pub fn run(c: &mut Client, cmd: Svc) -> Result<i32, ClientError> {
    use std::io::Write;
    match cmd {
        Svc::Start {
            name,
            cwd,
            env,
            autorestart,
            max_restarts,
            restart_delay_ms,
            kill_timeout_ms,
            min_uptime_ms,
            command,
        } => {
            let env = match env_pairs(&env) {
                Ok(e) => e,
                Err(e) => {
                    eprintln!("berth: {e}");
                    return Ok(2);
                }
            };
            let cwd = cwd
                .or_else(|| std::env::current_dir().ok())
                .map(|p| std::path::absolute(&p).unwrap_or(p).display().to_string())
                .unwrap_or_default();
            let s = c.service_start(ServiceConfig {
                name,
                cmd: command,
                cwd,
                env,
                autorestart,
                max_restarts,
                restart_delay_ms,
                kill_timeout_ms,
                min_uptime_ms,
            })?;
            println!("started {} (id {}, pid {})", s.name, s.id, s.pid);
        }
        Svc::Ls { json } => {
            let rows = c.service_list()?;
            if json {
                let v: Vec<_> = rows.iter().map(|(s, r)| to_json(s, r)).collect();
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            } else {
                print!("{}", table(&rows));
            }
        }
        Svc::Describe { target, json } => {
            let (s, reason) = c.service_describe(&target)?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&to_json(&s, &reason)).unwrap_or_default()
                );
            } else {
                print!("{}", describe_text(&s, &reason));
            }
        }
        Svc::Logs {
            target,
            follow,
            lines,
        } => {
            let target = target.unwrap_or_default();
            if !follow {
                print!("{}", c.service_logs(&target, lines)?);
                return Ok(0);
            }
            let (text, _) = c.service_logs_follow(&target, lines)?;
            print!("{text}");
            c.set_read_timeout(None)?;
            loop {
                let chunk = c.next_log_chunk()?;
                print!("{chunk}");
                let _ = std::io::stdout().flush();
            }
        }
        Svc::Restart { target } => {
            let n = c.service_restart(&target)?;
            println!("restarted {n} service{}", plural(n));
        }
        Svc::Stop { target } => {
            let n = c.service_stop(&target)?;
            println!("stopped {n} service{}", plural(n));
        }
        Svc::Delete { target } => {
            let n = c.service_delete(&target)?;
            println!("deleted {n} service{}", plural(n));
        }
        Svc::Flush { target } => {
            let n = c.service_flush(&target.unwrap_or_default())?;
            println!("flushed the logs of {n} service{}", plural(n));
        }
        Svc::Save => {
            let (path, n) = c.service_save()?;
            println!("saved {n} service{} to {path}", plural(n));
        }
        Svc::Resurrect => {
            let (n, summary) = c.service_resurrect()?;
            println!("resurrected {n} service{} ({summary})", plural(n));
        }
        Svc::Apply { file } => return apply(c, &file),
    }
    Ok(0)
}

// ---------------------------------------------------------------------------
// Ecosystem files
// ---------------------------------------------------------------------------

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

fn report(path: &Path, text: &str, e: &FileError) {
    let (line, col) = line_col(text, e.span.start);
    if e.key.is_empty() {
        eprintln!("berth: {}:{line}:{col}: {}", path.display(), e.message);
    } else {
        eprintln!(
            "berth: {}:{line}:{col}: {}: {}",
            path.display(),
            e.key,
            e.message
        );
    }
}

/// `berth svc apply FILE`.
fn apply(c: &mut Client, path: &Path) -> Result<i32, ClientError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("berth: cannot read {}: {e}", path.display());
            return Ok(2);
        }
    };
    let declared = match parse_file(path, &text) {
        Ok(d) => d,
        Err(e) => {
            report(path, &text, &e);
            return Ok(2);
        }
    };
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
                report(
                    path,
                    &text,
                    &FileError {
                        span,
                        key: format!("services.{name}.{key}"),
                        message: msg,
                    },
                );
                return Ok(1);
            }
            Err(e) => return Err(e),
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
