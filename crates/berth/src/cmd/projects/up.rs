//! `berth up`: register a project, open it (images pulled, with
//! progress) and start it, then show its services and URLs.

use super::render::services_table;
use super::source::{id_from_dir, project_source, with_compose_options};
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
    #[command(flatten)]
    compose: super::config::ComposeOpts,
}

/// Registers (or updates) the project, opens it with progress on stderr
/// (planned again from its file when it was open), starts it, and prints
/// its services. Idempotent, as `docker compose up`: up again keeps what
/// runs as planned, starts what is stopped, re-creates what changed and
/// retries a failed start.
pub(super) async fn up(c: &mut Client, a: UpArgs) -> CmdResult {
    let (dir, manifest) = project_source(a.path.as_deref().unwrap_or(Path::new(".")))?;
    let (manifest, compose_name) =
        with_compose_options(&dir, manifest, a.path.as_deref(), &a.compose)?;
    // The project id follows the Compose project name (-p,
    // COMPOSE_PROJECT_NAME, `name:`, the directory), as `docker compose`
    // names it.
    let id =
        a.id.clone()
            .or(compose_name)
            .unwrap_or_else(|| id_from_dir(&dir));
    let secrets = key_value::pairs_or_env("--secret", &a.secrets)
        .map_err(CliError::failed)?
        .into_iter()
        .collect();
    let path = a.path.clone().unwrap_or_else(|| PathBuf::from("."));
    let ensured = match c
        .ensure_project(pb::EnsureProjectRequest {
            project_id: id.clone(),
            package_path: dir.to_string_lossy().into_owned(),
            manifest,
            runtime: a.runtime.clone().unwrap_or_default(),
            ..Default::default()
        })
        .await
    {
        Ok(r) => r.into_inner(),
        Err(s) => {
            // What `validate` would warn about comes first: a typo'd key
            // is ignored, and the error is then about the key it meant.
            if project::error_code(&s) == Some("INVALID_MANIFEST") {
                let runtime = a.runtime.clone().unwrap_or_default();
                for w in super::validate::warnings_of(c, &path, &a.compose, &runtime).await {
                    eprintln!("warning: {w}");
                }
            }
            return Err(s.into());
        }
    };
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
            reload: true,
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
        Err(s) => return Err(s.into()),
    }
    let started = c
        .start_project(pb::StartProjectRequest {
            project_id: id.clone(),
            secrets,
            // Up again applies the file to what runs (docker compose up).
            reconcile: true,
            services: Vec::new(),
        })
        .await?
        .into_inner();
    if !a.quiet {
        print!("{}", services_table(&started.services, &started.ports));
    }
    Ok(0)
}
