//! Validation of a project, on the same resolved model the runtimes
//! receive: the `berth-compose` report, with the engine's own reading of
//! each container setting as a check (the code that builds a container's
//! settings at `up`), so whatever `up` would refuse is refused here first.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use berth_compose::interpolate::undefaulted_vars;
pub use berth_compose::order::{start_order, OrderError};
pub use berth_compose::validate::{FieldNote, Runtime, ValidationReport};

use super::compose::{self, Node, Options, Project};
use super::manifest::Manifest;
use super::model::ProjectError;

/// The report of `project` for `runtime`.
pub fn validate_project(project: &Project, runtime: Runtime) -> ValidationReport {
    let check = |file: &compose::ComposeFile, svc: &str, key: &str, value: &Node| {
        super::settings::check(file, svc, key, value)
    };
    berth_compose::validate::validate(project, runtime, Some(&check))
}

/// Validates one Compose file given as text (ValidateCompose): the
/// files it names (env files, includes) are not at hand, so they read as
/// empty; variables are unset (a required one is a warning: berth's
/// secrets come at start).
pub fn validate(content: &[u8], runtime: Runtime) -> ValidationReport {
    validate_with(content, runtime, &Options::default())
}

/// [`validate`] with resolution options (profiles, project name,
/// environment); their files and directory are ignored. Without
/// profiles, every profile is active, so the report covers every service
/// of the file.
pub fn validate_with(content: &[u8], runtime: Runtime, opts: &Options) -> ValidationReport {
    /// The one file, and every other path an empty file.
    struct Alone(String);
    impl berth_compose::Files for Alone {
        fn read(&self, path: &Path) -> std::io::Result<String> {
            Ok(if path == Path::new(FILE) {
                self.0.clone()
            } else {
                String::new()
            })
        }
        fn exists(&self, _: &Path) -> bool {
            true
        }
    }
    const FILE: &str = "/project/compose.yaml";
    let Ok(text) = std::str::from_utf8(content) else {
        return berth_compose::validate::rejected(&compose::LoadError::new(
            "",
            "the file is not UTF-8 text",
        ));
    };
    let files = Alone(text.to_owned());
    let opts = Options {
        project_dir: Some("/project".into()),
        files: vec![FILE.into()],
        env_files: Vec::new(),
        lenient_required: true,
        profiles: if opts.profiles.is_empty() {
            vec!["*".into()]
        } else {
            opts.profiles.clone()
        },
        ..opts.clone()
    };
    match berth_compose::load(&files, &opts) {
        Ok(p) => validate_project(&p, runtime),
        Err(e) => {
            let mut r = berth_compose::validate::rejected(&e);
            // The path of the in-memory file means nothing to the caller.
            for n in &mut r.rejected_fields {
                n.reason = n.reason.replace("/project/compose.yaml: ", "");
            }
            r
        }
    }
}

/// A project resolved and validated: the file named in messages, the
/// resolved project (`None` when it could not be resolved) and the report.
pub struct Checked {
    /// The Compose file, as messages name it.
    pub path: PathBuf,
    /// The resolved project; `None` when it could not be resolved (the
    /// report then says why).
    pub project: Option<Project>,
    /// What berth makes of each field, for the runtime checked for.
    pub report: ValidationReport,
}

/// Resolves and validates the project of `manifest` in `dir` for
/// `runtime`. `secrets`: the variables given at start, `None` before
/// (then a required variable left unset is a warning, not an error).
pub fn check(
    manifest: &Manifest,
    dir: &Path,
    runtime: Runtime,
    secrets: Option<&BTreeMap<String, String>>,
) -> Result<Checked, ProjectError> {
    let empty = BTreeMap::new();
    let opts = compose::options(manifest, dir, secrets.unwrap_or(&empty), secrets.is_none())?;
    let path = match opts.files.first() {
        Some(p) => p.clone(),
        None => manifest.compose_path(dir)?,
    };
    Ok(match compose::load(&opts) {
        Ok(project) => Checked {
            report: validate_project(&project, runtime),
            path,
            project: Some(project),
        },
        Err(e) => Checked {
            report: berth_compose::validate::rejected(&e),
            path,
            project: None,
        },
    })
}
