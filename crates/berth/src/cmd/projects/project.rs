//! `berth project ...`: one project's status, logs, ports, and removal of
//! its runtime resources.

use super::render::{port_json, services_table, url};
use super::Client;
use crate::error::CmdResult;
use crate::output;
use berth_client::project::pb;
use clap::Subcommand;

/// `berth project ...`.
#[derive(Subcommand)]
pub(crate) enum ProjectCmd {
    /// Everything about one project.
    Status {
        /// Project id.
        id: String,
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Its services' logs.
    Logs {
        /// Project id.
        id: String,
        /// Only this service.
        #[arg(long)]
        service: Option<String>,
        /// Keep printing new lines.
        #[arg(long, short = 'f')]
        follow: bool,
        /// Lines from the end (default 100).
        #[arg(long, short = 'n')]
        tail: Option<i32>,
    },
    /// Its host ports.
    Ports {
        /// Project id.
        id: String,
        /// Check each port is served and take broken ones back.
        #[arg(long)]
        refresh: bool,
    },
    /// Remove its runtime resources (containers, networks, native
    /// services); its state and registration stay.
    Rm {
        /// Project id.
        id: String,
        /// Stop it first if it runs.
        #[arg(long)]
        force: bool,
    },
}

/// Runs one `berth project` subcommand.
pub(super) async fn run(c: &mut Client, cmd: ProjectCmd) -> CmdResult {
    match cmd {
        ProjectCmd::Status { id, json } => {
            let st = c
                .get_project_status(pb::GetProjectStatusRequest { project_id: id })
                .await?
                .into_inner();
            if json {
                let svc: Vec<_> = st
                    .services
                    .iter()
                    .map(|s| {
                        serde_json::json!({
                            "name": s.name, "status": s.status, "container_id": s.container_id,
                            "started_at": s.started_at, "restart_count": s.restart_count,
                            "health": s.health, "detail": s.detail,
                        })
                    })
                    .collect();
                let ports: Vec<_> = st.ports.iter().map(port_json).collect();
                let v = serde_json::json!({
                    "project_id": st.project_id, "app_id": st.app_id, "name": st.name,
                    "version": st.version, "status": st.status, "services": svc, "ports": ports,
                    "state_size_bytes": st.state_size_bytes, "snapshot_count": st.snapshot_count,
                    "autosave_enabled": st.autosave_enabled, "namespace": st.namespace,
                    "runtime": st.runtime, "open": st.open, "state_path": st.state_path,
                    "package_path": st.package_path,
                });
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            } else {
                println!(
                    "{} {} ({}), {}: {}\nruntime {}, namespace {}, {}\nstate {} ({} bytes), snapshots {}\n",
                    st.name,
                    st.version,
                    st.app_id,
                    st.project_id,
                    st.status,
                    st.runtime,
                    st.namespace,
                    if st.open { "open" } else { "closed" },
                    st.state_path,
                    st.state_size_bytes,
                    st.snapshot_count
                );
                print!("{}", services_table(&st.services, &st.ports));
            }
            Ok(0)
        }
        ProjectCmd::Logs {
            id,
            service,
            follow,
            tail,
        } => {
            let mut stream = c
                .get_project_logs(pb::GetProjectLogsRequest {
                    project_id: id,
                    service_name: service,
                    follow,
                    tail_lines: tail,
                })
                .await?
                .into_inner();
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            while let Some(batch) = stream.message().await? {
                for e in batch.entries {
                    let tag = if e.stream == "stderr" { "!" } else { " " };
                    if writeln!(out, "{} {}{tag}| {}", e.timestamp, e.service_name, e.line).is_err()
                    {
                        return Ok(0);
                    }
                }
                let _ = out.flush();
            }
            Ok(0)
        }
        ProjectCmd::Ports { id, refresh } => {
            let ports = c
                .resolve_ports(pb::ResolvePortsRequest {
                    project_id: id,
                    refresh,
                })
                .await?
                .into_inner()
                .ports;
            let rows = ports
                .iter()
                .map(|p| {
                    vec![
                        p.service_name.clone(),
                        format!("{}/{}", p.container_port, p.protocol),
                        p.host_port.to_string(),
                        if p.requested {
                            "requested"
                        } else {
                            "allocated"
                        }
                        .to_string(),
                        url(p),
                    ]
                })
                .collect();
            print!(
                "{}",
                output::table(&["SERVICE", "PORT", "HOST PORT", "HOW", "URL"], rows)
            );
            Ok(0)
        }
        ProjectCmd::Rm { id, force } => {
            let r = c
                .delete_project_runtime(pb::DeleteProjectRuntimeRequest {
                    project_id: id.clone(),
                    force,
                })
                .await?
                .into_inner();
            for line in &r.resources_removed {
                println!("removed {line}");
            }
            println!("project {id}: runtime removed, state kept");
            Ok(0)
        }
    }
}
