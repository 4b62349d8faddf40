//! The `running-process-daemon` command line, so that the published
//! running-process clients (which spawn `running-process-daemon start`)
//! start berth instead.

use crate::start;
use berth_daemon::addr::ListenAddr;
use berth_daemon::config::DaemonConfig;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "running-process-daemon",
    about = "berth, answering to the running-process daemon's name"
)]
struct Compat {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Start the daemon in the foreground.
    Start {
        /// Scope name isolating the socket and database.
        #[arg(long)]
        scope: Option<String>,
        /// Serve exactly this socket path.
        #[arg(long)]
        socket_path: Option<String>,
        /// Use this database file.
        #[arg(long)]
        db_path: Option<String>,
    },
}

pub(crate) fn main() -> i32 {
    let args = Compat::parse();
    let Cmd::Start {
        scope,
        socket_path,
        db_path,
    } = args.command;
    let mut config = match DaemonConfig::for_scope(scope) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("running-process-daemon: {e}");
            return 2;
        }
    };
    if let Some(p) = socket_path {
        config.listen = vec![ListenAddr::Unix(p.into())];
        // A daemon on a socket of its own is an extra instance beside the
        // scope's usual one, whose project.sock it must not contend for;
        // the running-process tools only speak the process API anyway.
        config.project_listen.clear();
    }
    if let Some(p) = db_path {
        config.db_path = p.into();
    }
    match start::foreground(config) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("running-process-daemon: {e}");
            1
        }
    }
}
