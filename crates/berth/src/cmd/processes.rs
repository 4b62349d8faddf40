//! Tracked processes: `ps`, `spawn`, `tree`, `kill-tree`, `zombies`, and
//! the daemon's `status` and `ping`, over the running-process requests of
//! the process API.

use crate::ctx::Ctx;
use crate::error::{CliError, CmdResult};
use crate::{key_value, output};
use berth_wire::daemon::{KeyValue, SpawnDaemonRequest};
use clap::Subcommand;
use std::path::PathBuf;

/// The process group.
#[derive(Subcommand)]
pub(crate) enum Command {
    /// List tracked processes.
    Ps {
        /// Only processes of this originator tool.
        #[arg(long)]
        originator: Option<String>,
        /// Also the exited processes berth still retains (marked DEAD).
        #[arg(long, short = 'a')]
        all: bool,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Launch a command detached from this terminal, tracked by berth.
    Spawn {
        /// Working directory (default: the current one).
        #[arg(long)]
        cwd: Option<PathBuf>,
        /// Extra environment, KEY=VALUE; repeatable, last wins.
        #[arg(long = "env", short = 'e', value_name = "KEY=VALUE")]
        env: Vec<String>,
        /// Start from an empty environment instead of the daemon's.
        #[arg(long)]
        clear_env: bool,
        /// Originator label (default: `berth`; a `tool:PID` label makes the process
        /// an orphan once PID exits).
        #[arg(long)]
        originator: Option<String>,
        /// The command and its arguments.
        #[arg(last = true, required = true, num_args = 1..)]
        command: Vec<String>,
    },
    /// Show a process and its descendants.
    Tree {
        /// Root process id.
        pid: u32,
    },
    /// End a process and all its descendants (SIGTERM, then SIGKILL).
    KillTree {
        /// Root process id.
        pid: u32,
        /// Seconds between SIGTERM and SIGKILL.
        #[arg(long, default_value_t = 5.0)]
        timeout: f64,
    },
    /// Show (or with --kill, end) tracked processes whose owner is gone.
    Zombies {
        /// End them instead of only listing them.
        #[arg(long)]
        kill: bool,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Daemon status.
    Status {
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Check that the daemon answers, and how fast.
    Ping,
}

impl Command {
    /// Runs one command against the daemon (started if needed).
    pub(crate) fn run(self, ctx: &mut Ctx) -> CmdResult {
        match self {
            Command::Ps {
                originator,
                all,
                json,
            } => {
                let c = ctx.client()?;
                let rows = match (originator, all) {
                    (Some(o), _) => c.list_by_originator_all(&o, all)?,
                    (None, true) => c.list_all()?,
                    (None, false) => c.list_active()?,
                };
                print!(
                    "{}",
                    if json {
                        output::processes_json(&rows)
                    } else {
                        output::processes_table(&rows)
                    }
                );
            }
            Command::Spawn {
                cwd,
                env,
                clear_env,
                originator,
                command,
            } => {
                let env = key_value::pairs("--env", &env)
                    .map_err(CliError::usage)?
                    .into_iter()
                    .map(|(key, value)| KeyValue { key, value })
                    .collect();
                let cwd = cwd
                    .or_else(|| std::env::current_dir().ok())
                    .map(|p| p.display().to_string())
                    .unwrap_or_default();
                let r = ctx.client()?.spawn_daemon(SpawnDaemonRequest {
                    command: output::shell_join(&command),
                    cwd,
                    env,
                    originator: originator.unwrap_or_else(|| "berth".into()),
                    clear_inherited_env: clear_env,
                    ..Default::default()
                })?;
                println!("{}", r.pid);
            }
            Command::Tree { pid } => print!("{}", ctx.client()?.process_tree(pid)?),
            Command::KillTree { pid, timeout } => {
                let n = ctx.client()?.kill_tree(pid, timeout)?;
                println!("ended {n} process{}", if n == 1 { "" } else { "es" });
            }
            Command::Zombies { kill, json } => {
                let z = ctx.client()?.kill_zombies(!kill)?;
                print!(
                    "{}",
                    if json {
                        output::zombies_json(&z)
                    } else {
                        output::zombies_table(&z, kill)
                    }
                );
            }
            Command::Status { json } => {
                let s = ctx.client()?.status()?;
                print!(
                    "{}",
                    if json {
                        output::status_json(&s)
                    } else {
                        output::status_text(&s)
                    }
                );
            }
            Command::Ping => {
                let c = ctx.client()?;
                let t = std::time::Instant::now();
                c.ping()?;
                println!("pong in {:.3} ms", t.elapsed().as_secs_f64() * 1000.0);
            }
        }
        Ok(0)
    }
}
