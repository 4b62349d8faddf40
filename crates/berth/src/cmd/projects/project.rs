//! `berth project ...`: one project's status, logs, ports, and removal of
//! its runtime resources.

use super::render::{port_json, services_table, url};
use super::Client;
use crate::error::{CliError, CmdResult};
use crate::key_value;
use crate::output;
use berth_client::project;
use berth_client::project::pb;
use clap::Subcommand;
use std::collections::HashMap;

/// `berth project ...`.
#[derive(Subcommand)]
pub(crate) enum ProjectCmd {
    /// Register a copy of a project (own state, namespace and fresh host
    /// ports); the same as `berth duplicate`, under the name issue 11 gives.
    Duplicate(super::snapshot::DuplicateArgs),
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
    /// Start its services (all, or those named); what runs is kept.
    Start {
        /// Project id.
        id: String,
        /// Only these services.
        services: Vec<String>,
        /// A secret, NAME=VALUE, or NAME to take it from this environment;
        /// repeatable.
        #[arg(long = "secret", short = 's', value_name = "NAME[=VALUE]")]
        secrets: Vec<String>,
    },
    /// Stop its services (all, or those named).
    Stop {
        /// Project id.
        id: String,
        /// Only these services.
        services: Vec<String>,
        /// Seconds each service gets to stop before it is killed.
        #[arg(long, short = 't')]
        timeout: Option<u32>,
    },
    /// Stop, then start its services (all, or those named).
    Restart {
        /// Project id.
        id: String,
        /// Only these services.
        services: Vec<String>,
        /// Seconds each service gets to stop before it is killed.
        #[arg(long, short = 't')]
        timeout: Option<u32>,
        /// A secret, NAME=VALUE, or NAME to take it from this environment;
        /// repeatable.
        #[arg(long = "secret", short = 's', value_name = "NAME[=VALUE]")]
        secrets: Vec<String>,
    },
    /// Unregister it: its runtime resources are removed and `berth
    /// projects` no longer lists it; its state directory stays on disk.
    Forget {
        /// Project id.
        id: String,
        /// Stop it first if it runs.
        #[arg(long)]
        force: bool,
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
        ProjectCmd::Duplicate(a) => super::snapshot::duplicate(c, a).await,
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
        ProjectCmd::Start {
            id,
            services,
            secrets,
        } => {
            let secrets = secret_map(&secrets)?;
            start(c, &id, services, secrets).await
        }
        ProjectCmd::Stop {
            id,
            services,
            timeout,
        } => {
            match stop(c, &id, services, timeout).await? {
                Some(n) => println!("stopped {n} service(s) of project {id}"),
                None => println!("project {id} was not running"),
            }
            Ok(0)
        }
        ProjectCmd::Restart {
            id,
            services,
            timeout,
            secrets,
        } => {
            let secrets = secret_map(&secrets)?;
            let stopped = stop(c, &id, services.clone(), timeout).await?;
            let rc = start(c, &id, services, secrets).await?;
            match stopped {
                Some(n) => println!("restarted {n} service(s) of project {id}"),
                None => println!("project {id} was not running; started it"),
            }
            Ok(rc)
        }
        ProjectCmd::Forget { id, force } => {
            let state = c
                .get_project_status(pb::GetProjectStatusRequest {
                    project_id: id.clone(),
                })
                .await?
                .into_inner()
                .state_path;
            let r = c
                .delete_project_runtime(pb::DeleteProjectRuntimeRequest {
                    project_id: id.clone(),
                    force,
                    unregister: true,
                })
                .await?
                .into_inner();
            for line in &r.resources_removed {
                println!("removed {line}");
            }
            println!("project {id} forgotten; its state stays in {state}");
            Ok(0)
        }
        ProjectCmd::Rm { id, force } => {
            let r = c
                .delete_project_runtime(pb::DeleteProjectRuntimeRequest {
                    project_id: id.clone(),
                    force,
                    unregister: false,
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

fn secret_map(secrets: &[String]) -> Result<HashMap<String, String>, CliError> {
    Ok(key_value::pairs_or_env("--secret", secrets)
        .map_err(CliError::failed)?
        .into_iter()
        .collect())
}

/// Opens the project if it is not (a daemon restart closes stopped
/// projects), then starts `services` (empty: all), keeping what runs.
async fn start(
    c: &mut Client,
    id: &str,
    services: Vec<String>,
    secrets: HashMap<String, String>,
) -> CmdResult {
    match c
        .open_project(pb::OpenProjectRequest {
            project_id: id.to_owned(),
            reload: false,
        })
        .await
    {
        Ok(_) => {}
        Err(s) if project::error_code(&s) == Some("ALREADY_OPEN") => {}
        Err(s) => return Err(s.into()),
    }
    let r = c
        .start_project(pb::StartProjectRequest {
            project_id: id.to_owned(),
            secrets,
            reconcile: true,
            services,
        })
        .await?
        .into_inner();
    print!("{}", services_table(&r.services, &r.ports));
    Ok(0)
}

/// Stops `services` (empty: all) and returns how many; `None` for a
/// project that was not running (not an error). The caller says what it
/// did: `stop` and `restart` word it differently.
async fn stop(
    c: &mut Client,
    id: &str,
    services: Vec<String>,
    timeout: Option<u32>,
) -> Result<Option<usize>, CliError> {
    let n = services.len();
    match c
        .stop_project(pb::StopProjectRequest {
            project_id: id.to_owned(),
            timeout_seconds: timeout.map(|t| t.min(i32::MAX as u32) as i32),
            services,
        })
        .await
    {
        Ok(r) => {
            let r = r.into_inner();
            Ok(Some(if n == 0 { r.services.len() } else { n }))
        }
        Err(s) if project::error_code(&s) == Some("NOT_RUNNING") => Ok(None),
        Err(s) => Err(s.into()),
    }
}
