//! `berth config`: the resolved Compose model, as `docker compose config`
//! prints it — interpolated, merged, profiles applied, short forms
//! expanded — so a user sees exactly what berth will run. Local: no
//! daemon; the same `berth-compose` resolution the daemon uses.

use std::path::{Path, PathBuf};

use crate::error::{CliError, CmdResult};
use berth_compose::{config, Options, RealFiles};
use clap::{Args, ValueEnum};

/// Resolution options shared by `berth config` and `berth up`.
#[derive(Args, Clone, Default)]
pub(crate) struct ComposeOpts {
    /// A Compose file, repeatable: later files are merged over earlier
    /// ones (default: compose.yaml and its compose.override.yaml).
    #[arg(long = "file", short = 'f', value_name = "FILE")]
    pub(crate) files: Vec<PathBuf>,
    /// The Compose project name (used when the file has no `name:`).
    #[arg(long = "project-name", short = 'p', value_name = "NAME")]
    pub(crate) project_name: Option<String>,
    /// Activate a profile; repeatable (default: COMPOSE_PROFILES).
    #[arg(long = "profile", value_name = "PROFILE")]
    pub(crate) profiles: Vec<String>,
    /// An env file for interpolation; repeatable (default: .env).
    #[arg(long = "env-file", value_name = "FILE")]
    pub(crate) env_files: Vec<PathBuf>,
}

/// How `berth config` prints the model.
#[derive(Clone, Copy, ValueEnum, Default)]
pub(crate) enum Format {
    /// YAML, as `docker compose config` prints it.
    #[default]
    Yaml,
    /// JSON (`--format json`).
    Json,
}

/// `berth config`.
#[derive(Args)]
pub(crate) struct ConfigArgs {
    /// The project directory or Compose files (default: the current
    /// directory).
    paths: Vec<PathBuf>,
    #[command(flatten)]
    compose: ComposeOpts,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Yaml)]
    format: Format,
    /// Print the service names, one a line.
    #[arg(long)]
    services: bool,
    /// Print the profile names the files use, one a line.
    #[arg(long = "profiles")]
    list_profiles: bool,
    /// Only validate: print nothing, exit 1 on an error.
    #[arg(long, short = 'q')]
    quiet: bool,
}

/// The resolution options of `paths` (a directory, or Compose files) with
/// `opts`, relative paths from the current directory; the shell
/// environment is this process's.
pub(super) fn options(paths: &[PathBuf], opts: &ComposeOpts) -> Result<Options, String> {
    let cwd = std::env::current_dir().map_err(|e| format!("current directory: {e}"))?;
    let abs = |p: &Path| {
        if p.is_absolute() {
            p.to_owned()
        } else {
            cwd.join(p)
        }
    };
    let mut files: Vec<PathBuf> = Vec::new();
    let mut dir = None;
    for p in paths {
        let p = abs(p);
        if p.is_dir() {
            if dir.is_some() {
                return Err("give one project directory".into());
            }
            dir = Some(p);
        } else {
            files.push(p);
        }
    }
    files.extend(opts.files.iter().map(|f| match &dir {
        Some(d) if f.is_relative() => d.join(f),
        _ => abs(f),
    }));
    let project_dir = match (&dir, files.first()) {
        (Some(d), _) => d.clone(),
        (None, Some(f)) => f
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| cwd.clone()),
        (None, None) => cwd.clone(),
    };
    Ok(Options {
        project_dir: Some(project_dir),
        files,
        env_files: opts.env_files.iter().map(|f| abs(f)).collect(),
        profiles: opts.profiles.clone(),
        project_name: opts.project_name.clone(),
        environment: std::env::vars().collect(),
        lenient_required: false,
    })
}

/// What `berth validate` and `up` would say of `project`, for the runtime
/// `up` would pick as the daemon does (Docker, else native when only the
/// native runtime can run the file): warnings on stderr, and an error
/// with each rejected field's path and reason when it cannot run, so
/// `config -q` refuses what `up` refuses.
fn check(project: &berth_compose::Project) -> Result<(), CliError> {
    use berth_compose::validate::{validate, Runtime};
    let docker = validate(project, Runtime::Docker, None);
    let report = if docker.valid {
        docker
    } else {
        // A file of commands alone is meant for the native runtime: its
        // problems are those the native runtime finds.
        let commands_only = project
            .tree
            .get("services")
            .map_or(&[][..], berth_compose::Node::entries)
            .iter()
            .all(|(_, s)| s.get("image").is_none() && s.get("build").is_none());
        let native = validate(project, Runtime::Native, None);
        if native.valid || commands_only {
            native
        } else {
            docker
        }
    };
    let line = |n: &berth_compose::FieldNote| {
        if n.path.is_empty() {
            n.reason.clone()
        } else {
            format!("{}: {}", n.path, n.reason)
        }
    };
    for w in &report.warnings {
        eprintln!("warning: {}", line(w));
    }
    if report.valid {
        return Ok(());
    }
    let lines: Vec<String> = report.rejected_fields.iter().map(line).collect();
    Err(CliError::failed(format!(
        "{} is not valid: {}",
        project.files.first().map_or_else(
            || project.dir.display().to_string(),
            |f| f.display().to_string()
        ),
        lines.join("; ")
    )))
}

/// Runs `berth config`: prints the resolved model, the service or profile
/// names, or (with `-q`) nothing but the verdict in the exit status.
pub(super) fn config(a: ConfigArgs) -> CmdResult {
    let opts = options(&a.paths, &a.compose).map_err(CliError::failed)?;
    let project = berth_compose::load(&RealFiles, &opts).map_err(CliError::failed)?;
    let tree = config::canonical(&project, &RealFiles).map_err(CliError::failed)?;
    check(&project)?;
    if a.quiet {
        return Ok(0);
    }
    if a.services {
        for (name, _) in &project.file.services.0 {
            println!("{name}");
        }
    } else if a.list_profiles {
        for p in &project.all_profiles {
            println!("{p}");
        }
    } else {
        match a.format {
            Format::Yaml => print!("{}", config::to_yaml(&tree)),
            Format::Json => print!("{}", config::to_json(&tree)),
        }
    }
    Ok(0)
}
