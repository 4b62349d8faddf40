//! `berth svc ...`: supervised services, over the process API's runpm
//! requests (50-59), and `berth svc apply FILE` for ecosystem files
//! (`apply`).

mod apply;
mod ecosystem;

use crate::ctx::Ctx;
use crate::error::{CliError, CmdResult};
use crate::{key_value, output};
use berth_wire::daemon::{ServiceConfig, ServiceState};
use clap::{ArgAction, Subcommand};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The services group.
#[derive(Subcommand)]
pub(crate) enum Command {
    /// Supervised services: start, ls, describe, logs, stop, restart, apply...
    Svc {
        #[command(subcommand)]
        cmd: SvcCommand,
    },
}

/// `berth svc ...`.
#[derive(Subcommand)]
pub(crate) enum SvcCommand {
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

/// A service named by its name, its id, "all" (or nothing), or a unique
/// prefix of its name (as git takes commit prefixes). A prefix that fits
/// several services is refused naming them; one that fits none is passed
/// on for the daemon to say so.
fn resolve(c: &mut berth_client::Client, target: &str) -> Result<String, CliError> {
    if target.is_empty() || target == "all" {
        return Ok(target.to_string());
    }
    let list = c.service_list()?;
    if list
        .iter()
        .any(|(s, _)| s.name == target || s.id.to_string() == target)
    {
        return Ok(target.to_string());
    }
    let fits: Vec<&str> = list
        .iter()
        .map(|(s, _)| s.name.as_str())
        .filter(|n| n.starts_with(target))
        .collect();
    match fits.as_slice() {
        [one] => Ok((*one).to_string()),
        [] => Ok(target.to_string()),
        many => Err(CliError::failed(format!(
            "service prefix {target:?} fits {} services ({}); give more of the name",
            many.len(),
            many.join(", ")
        ))),
    }
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

impl Command {
    /// Runs one `berth svc` command against the daemon (started if needed).
    pub(crate) fn run(self, ctx: &mut Ctx) -> CmdResult {
        let Command::Svc { cmd } = self;
        cmd.run(ctx)
    }
}

impl SvcCommand {
    fn run(self, ctx: &mut Ctx) -> CmdResult {
        use std::io::Write;
        match self {
            SvcCommand::Start {
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
                let env = key_value::pairs("--env", &env)
                    .map_err(CliError::usage)?
                    .into_iter()
                    .collect();
                let cwd = cwd
                    .or_else(|| std::env::current_dir().ok())
                    .map(|p| std::path::absolute(&p).unwrap_or(p).display().to_string())
                    .unwrap_or_default();
                let s = ctx.client()?.service_start(ServiceConfig {
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
            SvcCommand::Ls { json } => {
                let rows = ctx.client()?.service_list()?;
                if json {
                    let v: Vec<_> = rows.iter().map(|(s, r)| to_json(s, r)).collect();
                    println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
                } else {
                    print!("{}", table(&rows));
                }
            }
            SvcCommand::Describe { target, json } => {
                let target = resolve(ctx.client()?, &target)?;
                let (s, reason) = ctx.client()?.service_describe(&target)?;
                if json {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&to_json(&s, &reason)).unwrap_or_default()
                    );
                } else {
                    print!("{}", describe_text(&s, &reason));
                }
            }
            SvcCommand::Logs {
                target,
                follow,
                lines,
            } => {
                let c = ctx.client()?;
                let target = resolve(c, &target.unwrap_or_default())?;
                if !follow {
                    print!("{}", c.service_logs(&target, lines)?);
                    return Ok(0);
                }
                let (text, _) = c.service_logs_follow(&target, lines)?;
                print!("{text}");
                c.set_read_timeout(None)?;
                // Until the connection ends (the daemon stops) or ^C.
                loop {
                    let chunk = c.next_log_chunk()?;
                    print!("{chunk}");
                    let _ = std::io::stdout().flush();
                }
            }
            SvcCommand::Restart { target } => {
                let target = resolve(ctx.client()?, &target)?;
                let n = ctx.client()?.service_restart(&target)?;
                println!("restarted {n} service{}", plural(n));
            }
            SvcCommand::Stop { target } => {
                let target = resolve(ctx.client()?, &target)?;
                let n = ctx.client()?.service_stop(&target)?;
                println!("stopped {n} service{}", plural(n));
            }
            SvcCommand::Delete { target } => {
                let target = resolve(ctx.client()?, &target)?;
                let n = ctx.client()?.service_delete(&target)?;
                println!("deleted {n} service{}", plural(n));
            }
            SvcCommand::Flush { target } => {
                let target = resolve(ctx.client()?, &target.unwrap_or_default())?;
                let n = ctx.client()?.service_flush(&target)?;
                println!("flushed the logs of {n} service{}", plural(n));
            }
            SvcCommand::Save => {
                let (path, n) = ctx.client()?.service_save()?;
                println!("saved {n} service{} to {path}", plural(n));
            }
            SvcCommand::Resurrect => {
                let (n, summary) = ctx.client()?.service_resurrect()?;
                println!("resurrected {n} service{} ({summary})", plural(n));
            }
            SvcCommand::Apply { file } => return apply::apply(ctx, &file),
        }
        Ok(0)
    }
}
