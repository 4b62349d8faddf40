//! Compose projects: `up`, `down`, `projects`, `project ...` and
//! `validate`, clients of the project API (gRPC over the daemon's
//! `project.sock`).
//!
//! One module per command; a new command is a variant here, a module
//! beside the others, and one arm in [`Command::run`]. Options choosing a
//! project's files or name belong in `source`.

mod config;
mod down;
mod list;
mod progress;
mod project;
mod render;
mod snapshot;
mod source;
mod up;
mod validate;

use crate::ctx::Ctx;
use crate::error::{CliError, CmdResult};
use berth_client::project::SupervisorClient;
use clap::Subcommand;
use tonic::transport::Channel;

use config::ConfigArgs;
use down::DownArgs;
use list::ProjectsArgs;
use project::ProjectCmd;
use snapshot::{DuplicateArgs, ImportArgs, SnapshotCmd};
use up::UpArgs;
use validate::ValidateArgs;

/// A connection to the project API.
type Client = SupervisorClient<Channel>;

/// The projects group.
#[derive(Subcommand)]
pub(crate) enum Command {
    /// Register, open and start a Compose project (with progress).
    Up(UpArgs),
    /// Stop a project and remove its runtime resources.
    Down(DownArgs),
    /// List projects.
    Projects(ProjectsArgs),
    /// One project: status, logs, ports, start, stop, restart, rm, forget.
    Project {
        #[command(subcommand)]
        command: ProjectCmd,
    },
    /// Check a Compose file against what berth can run.
    Validate(ValidateArgs),
    /// Print the resolved Compose model (as `docker compose config`).
    Config(ConfigArgs),
    /// Snapshots of a project's state: save, ls, restore, rm, prune.
    Snapshot {
        #[command(subcommand)]
        command: SnapshotCmd,
    },
    /// Register a copy of a project (own state, namespace and ports).
    Duplicate(DuplicateArgs),
    /// Check and unpack a signed .vibeapp package.
    Import(ImportArgs),
}

impl Command {
    /// Runs one project command against the daemon's project API (the
    /// daemon is started if needed, as for every client command).
    pub(crate) fn run(self, ctx: &mut Ctx) -> CmdResult {
        // Resolving a Compose file is local: no daemon is needed or started.
        let command = match self {
            Command::Config(a) => return config::config(a),
            other => other,
        };
        let socket = ctx.project_socket()?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| CliError::failed(format!("cannot start the async runtime: {e}")))?;
        rt.block_on(async {
            let mut c = berth_client::project::connect(&socket)
                .await
                .map_err(CliError::failed)?;
            match command {
                Command::Up(a) => up::up(&mut c, a).await,
                Command::Down(a) => down::down(&mut c, a).await,
                Command::Projects(a) => list::projects(&mut c, a).await,
                Command::Project { command } => project::run(&mut c, command).await,
                Command::Validate(a) => validate::validate(&mut c, a).await,
                Command::Config(a) => config::config(a),
                Command::Snapshot { command } => snapshot::run(&mut c, command).await,
                Command::Duplicate(a) => snapshot::duplicate(&mut c, a).await,
                Command::Import(a) => snapshot::import(&mut c, a).await,
            }
        })
    }
}
