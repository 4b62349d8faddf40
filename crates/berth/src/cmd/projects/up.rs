//! `berth up`: register a project, open it (images pulled, with
//! progress) and start it, then show its services and URLs.

use super::render::services_table;
use super::source::{id_from_dir, project_source};
use super::Client;
use crate::error::{CliError, CmdResult};
use crate::key_value;
use berth_client::project::{self, pb};
use clap::Args;
use std::path::{Path, PathBuf};

/// `berth up`.
#[derive(Args)]
pub(crate) struct UpArgs {
    /// The project: a directory (with compose.yaml and optionally
    /// manifest.json) or a Compose file. Default: the current directory.
    path: Option<PathBuf>,
    /// Project id (default: the directory's name, lowercased).
    #[arg(long)]
    id: Option<String>,
    /// Runtime: docker or native (default: the daemon's; docker when an
    /// engine answers, else native).
    #[arg(long)]
    runtime: Option<String>,
    /// A secret, NAME=VALUE, or NAME to take it from this environment;
    /// repeatable.
    #[arg(long = "secret", short = 's', value_name = "NAME[=VALUE]")]
    secrets: Vec<String>,
    /// Print nothing but errors.
    #[arg(long, short = 'q')]
    quiet: bool,
}

/// Registers (or updates) the project, opens it with progress on stderr,
/// starts it (already running is fine), and prints its services.
pub(super) async fn up(c: &mut Client, a: UpArgs) -> CmdResult {
    let (dir, manifest) = project_source(a.path.as_deref().unwrap_or(Path::new(".")))?;
    let id = a.id.clone().unwrap_or_else(|| id_from_dir(&dir));
    let secrets = key_value::pairs_or_env("--secret", &a.secrets)
        .map_err(CliError::failed)?
        .into_iter()
        .collect();
    let ensured = c
        .ensure_project(pb::EnsureProjectRequest {
            project_id: id.clone(),
            package_path: dir.to_string_lossy().into_owned(),
            manifest,
            runtime: a.runtime.clone().unwrap_or_default(),
            ..Default::default()
        })
        .await?
        .into_inner();
    if !a.quiet {
        println!(
            "project {id} ({} runtime, namespace {}){}",
            ensured.runtime,
            ensured.namespace,
            if ensured.created { ", registered" } else { "" }
        );
    }
    match c
        .open_project_with_progress(pb::OpenProjectRequest {
            project_id: id.clone(),
        })
        .await
    {
        Ok(stream) => {
            let mut stream = stream.into_inner();
            let bars = super::progress::Bars::new(a.quiet);
            while let Some(ev) = stream.message().await? {
                match ev.event {
                    Some(pb::open_project_progress::Event::Image(i)) => bars.image(&i),
                    Some(pb::open_project_progress::Event::Note(n)) => bars.note(&n),
                    Some(pb::open_project_progress::Event::Done(d)) => {
                        bars.finish();
                        if !a.quiet {
                            for w in &d.warnings {
                                println!("  note: {w}");
                            }
                            if d.images_pulled > 0 {
                                println!("pulled {} image(s)", d.images_pulled);
                            }
                        }
                    }
                    None => {}
                }
            }
        }
        Err(s) if project::error_code(&s) == Some("ALREADY_OPEN") => {}
        Err(s) => return Err(s.into()),
    }
    let started = match c
        .start_project(pb::StartProjectRequest {
            project_id: id.clone(),
            secrets,
        })
        .await
    {
        Ok(r) => {
            let r = r.into_inner();
            Some((r.services, r.ports))
        }
        Err(s) if project::error_code(&s) == Some("ALREADY_RUNNING") => {
            if !a.quiet {
                println!("already running");
            }
            None
        }
        Err(s) => return Err(s.into()),
    };
    if !a.quiet {
        let (services, ports) = match started {
            Some(sp) => sp,
            None => {
                let st = c
                    .get_project_status(pb::GetProjectStatusRequest {
                        project_id: id.clone(),
                    })
                    .await?
                    .into_inner();
                (st.services, st.ports)
            }
        };
        print!("{}", services_table(&services, &ports));
    }
    Ok(0)
}
