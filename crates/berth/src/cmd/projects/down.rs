//! `berth down`: stop a project and, unless `--keep`, remove its runtime
//! resources.

use super::source::target_id;
use super::Client;
use crate::error::CmdResult;
use berth_client::project::{self, pb};
use clap::Args;

/// `berth down`.
#[derive(Args)]
pub(crate) struct DownArgs {
    /// Project id, or its directory / Compose file.
    target: Option<String>,
    /// Seconds each service gets to stop before it is killed.
    #[arg(long, short = 't')]
    timeout: Option<u32>,
    /// Only stop: keep containers, networks and native services defined.
    #[arg(long)]
    keep: bool,
}

/// Stops the project (a project that is not running is reported, not an
/// error), then removes its runtime unless `--keep`.
pub(super) async fn down(c: &mut Client, a: DownArgs) -> CmdResult {
    let id = target_id(a.target.as_deref())?;
    match c
        .stop_project(pb::StopProjectRequest {
            project_id: id.clone(),
            timeout_seconds: a.timeout.map(|t| t.min(i32::MAX as u32) as i32),
            services: Vec::new(),
        })
        .await
    {
        Ok(r) => {
            let n = r.into_inner().services.len();
            println!(
                "stopped project {id} ({n} service{})",
                if n == 1 { "" } else { "s" }
            );
        }
        Err(s) if project::error_code(&s) == Some("NOT_RUNNING") => {
            println!("project {id} was not running");
        }
        Err(s) => return Err(s.into()),
    }
    if !a.keep {
        let r = c
            .delete_project_runtime(pb::DeleteProjectRuntimeRequest {
                project_id: id.clone(),
                force: false,
                unregister: false,
            })
            .await?
            .into_inner();
        for line in &r.resources_removed {
            println!("removed {line}");
        }
    }
    Ok(0)
}
