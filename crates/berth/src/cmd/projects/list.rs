//! `berth projects`: every registered project, as a table or JSON.

use super::Client;
use crate::error::CmdResult;
use crate::output;
use berth_client::project::pb;
use clap::Args;

/// `berth projects`.
#[derive(Args)]
pub(crate) struct ProjectsArgs {
    /// Only projects in this state (running, starting, stopping, stopped, failed).
    #[arg(long)]
    status: Option<String>,
    /// JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// Lists projects, optionally of one status.
pub(super) async fn projects(c: &mut Client, a: ProjectsArgs) -> CmdResult {
    let list = c
        .list_projects(pb::ListProjectsRequest {
            filter_status: a.status.clone(),
        })
        .await?
        .into_inner()
        .projects;
    if a.json {
        let v: Vec<_> = list
            .iter()
            .map(|p| {
                serde_json::json!({
                    "project_id": p.project_id, "app_id": p.app_id, "name": p.name,
                    "status": p.status, "service_count": p.service_count, "port_count": p.port_count,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return Ok(0);
    }
    let rows = list
        .iter()
        .map(|p| {
            vec![
                p.project_id.clone(),
                p.name.clone(),
                p.status.clone(),
                p.service_count.to_string(),
                p.port_count.to_string(),
                p.app_id.clone(),
            ]
        })
        .collect();
    print!(
        "{}",
        output::table(
            &["PROJECT", "NAME", "STATUS", "SERVICES", "PORTS", "APP"],
            rows
        )
    );
    Ok(0)
}
