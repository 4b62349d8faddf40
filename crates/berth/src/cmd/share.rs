//! `berth share FILE...`: in a guest, queue files for the host to fetch
//! through the guest API (`GET /api/v1/files`, seed 002). Needs no daemon:
//! the queue is a file the daemon reads on each request.

use crate::ctx::Ctx;
use crate::error::{CliError, CmdResult};
use berth_daemon::guest_api::files;
use clap::Subcommand;
use std::path::PathBuf;

/// The share group.
#[derive(Subcommand)]
pub(crate) enum Command {
    /// Queue files for the host (listed by the guest API's /api/v1/files).
    Share {
        /// Regular files to queue.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
}

impl Command {
    pub(crate) fn run(self, ctx: &mut Ctx) -> CmdResult {
        let Command::Share { files: paths } = self;
        let queue = files::queue_path(ctx.scope());
        let added = files::enqueue(&queue, &paths).map_err(CliError::failed)?;
        for f in added {
            println!("queued {} ({} bytes)", f.path, f.size);
        }
        Ok(0)
    }
}
