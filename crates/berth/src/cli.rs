//! The `berth` command line: the global options and the command groups of
//! `cmd`, flattened into one list of subcommands. Everything but `berth
//! daemon`, `relay` and `remote` is a client of the daemon's socket and
//! starts the daemon when none answers (see `Ctx`).

use crate::cmd::{
    daemon, host_api, packages, processes, projects, relay, remote, services, sessions, share,
    shell, workspaces,
};
use crate::ctx::Ctx;
use crate::error::CmdResult;
use clap::{CommandFactory, Parser, Subcommand};
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
    /// Show the daemon's error code with an error (`berth: ... [NOT_FOUND]`).
    #[arg(long, short = 'v', global = true)]
    verbose: bool,
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
    #[command(flatten)]
    Packages(packages::Command),
    #[command(flatten)]
    Shell(shell::Command),
    #[command(flatten)]
    HostApi(host_api::Command),
    #[command(flatten)]
    Share(share::Command),
    #[command(flatten)]
    Workspaces(workspaces::Command),
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
            Command::Packages(c) => c.run(ctx),
            // The shell group renders the definition itself; handing it over
            // keeps `cmd` from importing `cli`.
            Command::Shell(c) => c.run(Cli::command()),
            Command::HostApi(c) => c.run(ctx),
            Command::Share(c) => c.run(ctx),
            Command::Workspaces(c) => c.run(ctx),
        }
    }
}

/// Parses the command line, runs the command, and returns the exit status
/// (a failure is printed as one `berth: ...` line, see `CliError::report`).
pub(crate) fn main() -> i32 {
    quiet_on_closed_pipe();
    let cli = Cli::parse();
    // `--json` commands report a failure as JSON too.
    let json = std::env::args_os().any(|a| a == "--json");
    let verbose = cli.verbose;
    Ctx::new(cli.socket, cli.scope)
        .and_then(|mut ctx| cli.command.run(&mut ctx))
        .unwrap_or_else(|e| e.report(verbose, json))
}

/// A command whose reader goes away (`berth svc logs | head -1`) ends
/// quietly with status 0, as a filter should, instead of panicking on the
/// failed write (`println!` panics on EPIPE, since Rust ignores SIGPIPE).
/// Other panics keep the default report.
fn quiet_on_closed_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let msg = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.contains("Broken pipe") || msg.contains("os error 32") {
            std::process::exit(0);
        }
        default(info)
    }));
}
