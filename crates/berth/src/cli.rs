//! The `berth` command line: the global options and the command groups of
//! `cmd`, flattened into one list of subcommands. Everything but `berth
//! daemon`, `relay` and `remote` is a client of the daemon's socket and
//! starts the daemon when none answers (see `Ctx`).

use crate::cmd::{daemon, processes, projects, relay, remote, services, sessions};
use crate::ctx::Ctx;
use crate::error::CmdResult;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "berth",
    version,
    about = "Keeps a development machine alive and reachable."
)]
struct Cli {
    /// Daemon socket to talk to (default: $XDG_RUNTIME_DIR/berth/daemon.sock).
    #[arg(long, global = true, env = "BERTH_SOCKET")]
    socket: Option<PathBuf>,
    /// Scope: an isolated daemon with its own socket and database.
    #[arg(long, global = true, env = "BERTH_SCOPE")]
    scope: Option<String>,
    #[command(subcommand)]
    command: Command,
}

/// Every command group; the order here is the order of `berth --help`.
#[derive(Subcommand)]
enum Command {
    #[command(flatten)]
    Daemon(daemon::Command),
    #[command(flatten)]
    Processes(processes::Command),
    #[command(flatten)]
    Services(services::Command),
    #[command(flatten)]
    Sessions(sessions::Command),
    #[command(flatten)]
    Relay(relay::Command),
    #[command(flatten)]
    Remote(remote::Command),
    #[command(flatten)]
    Projects(projects::Command),
}

impl Command {
    fn run(self, ctx: &mut Ctx) -> CmdResult {
        match self {
            Command::Daemon(c) => c.run(ctx),
            Command::Processes(c) => c.run(ctx),
            Command::Services(c) => c.run(ctx),
            Command::Sessions(c) => c.run(ctx),
            Command::Relay(c) => c.run(ctx),
            Command::Remote(c) => c.run(ctx),
            Command::Projects(c) => c.run(ctx),
        }
    }
}

/// Parses the command line, runs the command, and returns the exit status
/// (a failure is printed as one `berth: ...` line).
pub(crate) fn main() -> i32 {
    let cli = Cli::parse();
    Ctx::new(cli.socket, cli.scope)
        .and_then(|mut ctx| cli.command.run(&mut ctx))
        .unwrap_or_else(|e| e.report())
}
