//! `berth workspaces`: the node's container workspaces (seed 004, made by
//! the node API's `POST /workspaces`), as a table or JSON; a client of the
//! project API's `ListWorkspaces` (berth extension).

use crate::ctx::Ctx;
use crate::error::{CliError, CmdResult};
use crate::output;
use berth_client::project::pb;
use clap::{Args, Subcommand};

/// The workspaces group.
#[derive(Subcommand)]
pub(crate) enum Command {
    /// List container workspaces (devcontainers made through the node API).
    Workspaces(WorkspacesArgs),
}

/// `berth workspaces`.
#[derive(Args)]
pub(crate) struct WorkspacesArgs {
    /// JSON instead of a table.
    #[arg(long)]
    json: bool,
}

impl Command {
    /// Asks the daemon's project API (starting the daemon if needed).
    pub(crate) fn run(self, ctx: &mut Ctx) -> CmdResult {
        let Command::Workspaces(a) = self;
        let socket = ctx.project_socket()?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| CliError::failed(format!("cannot start the async runtime: {e}")))?;
        rt.block_on(async {
            let mut c = berth_client::project::connect(&socket)
                .await
                .map_err(CliError::failed)?;
            let list = c
                .list_workspaces(pb::ListWorkspacesRequest {})
                .await?
                .into_inner()
                .workspaces;
            if a.json {
                let v: Vec<_> = list
                    .iter()
                    .map(|w| {
                        serde_json::json!({
                            "workspace_id": w.workspace_id, "repository": w.repository,
                            "branch": w.branch, "status": w.status, "step": w.step,
                            "error": w.error, "container": w.container, "image": w.image,
                            "workspace_folder": w.workspace_folder, "remote_user": w.remote_user,
                            "volume": w.volume, "ports": w.ports, "created_at": w.created_at,
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
                return Ok(0);
            }
            let rows = list
                .iter()
                .map(|w| {
                    let status = if w.status == "failed" {
                        format!("failed ({})", w.step)
                    } else {
                        w.status.clone()
                    };
                    vec![
                        w.workspace_id.clone(),
                        status,
                        w.container.clone(),
                        w.image.clone(),
                        w.ports.join(","),
                        format!(
                            "{}{}",
                            w.repository,
                            if w.branch.is_empty() {
                                String::new()
                            } else {
                                format!("@{}", w.branch)
                            }
                        ),
                    ]
                })
                .collect();
            print!(
                "{}",
                output::table(
                    &[
                        "WORKSPACE",
                        "STATUS",
                        "CONTAINER",
                        "IMAGE",
                        "PORTS",
                        "REPOSITORY"
                    ],
                    rows
                )
            );
            Ok(0)
        })
    }
}
