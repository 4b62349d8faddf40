//! The Compose model, from the `berth-compose` crate: the engine asks it
//! for a resolved project ([`load`]) and plans exactly that model.

use std::collections::BTreeMap;
use std::path::Path;

pub use berth_compose::model::*;
pub use berth_compose::node::{Node, Ordered};
pub use berth_compose::parse::{parse, ParseError};
pub use berth_compose::resolve::{LoadError, Options, Project};

use super::manifest::Manifest;
use super::model::ProjectError;

/// The resolution options of the project of `manifest` in `dir`:
/// its Compose files (the manifest's, or the default file and its
/// override), env files, profiles and project name. `environment` plays
/// the shell's part (berth passes the secrets given at start); with
/// `lenient`, a required variable left unset is a warning, for checks
/// made before the secrets are known.
pub fn options(
    manifest: &Manifest,
    dir: &Path,
    environment: &BTreeMap<String, String>,
    lenient: bool,
) -> Result<Options, ProjectError> {
    let mut files = Vec::new();
    if manifest.compose.is_some() || !manifest.compose_files.is_empty() {
        files.push(manifest.compose_path(dir)?);
    }
    for f in &manifest.compose_files {
        let p = dir.join(f);
        if !p.is_file() {
            return Err(ProjectError::PathNotFound(format!(
                "the manifest's compose file {} does not exist",
                p.display()
            )));
        }
        files.push(p);
    }
    if files.is_empty() {
        // The default file must exist; its override joins it when present.
        manifest.compose_path(dir)?;
    }
    Ok(Options {
        project_dir: Some(dir.to_owned()),
        files,
        env_files: manifest.env_files.iter().map(|f| dir.join(f)).collect(),
        profiles: manifest.profiles.clone(),
        project_name: manifest.project_name.clone(),
        environment: environment.clone(),
        lenient_required: lenient,
    })
}

/// Resolves the project of `manifest` in `dir` from the real files.
pub fn load(opts: &Options) -> Result<Project, LoadError> {
    berth_compose::load(&berth_compose::RealFiles, opts)
}
