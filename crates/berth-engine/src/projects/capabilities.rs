//! What an app will be able to do, read from its Compose project
//! (`berth pack`'s `capabilities.json`, issue 11): the host ports it
//! asks for, the secrets it reads, the host paths it binds outside its
//! directory. Settings that give a service the host (privileged, host
//! namespaces, devices, added capabilities, ...) are refused, as
//! validation refuses them at `up`.

use super::compose;
use super::manifest::Manifest;
use super::model::ProjectError;
use super::validate::{validate_project, Runtime};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The capabilities of the app in `dir` described by `manifest`:
/// `host-port:<port>/<proto>` (or `<first>-<last>/<proto>`),
/// `secret:<NAME>`, `bind:<host path>`, sorted. Errors: INVALID_ARGUMENT
/// naming every refused setting, PATH_NOT_FOUND (no Compose file), or
/// the Compose file's own error.
pub fn of_app(dir: &Path, manifest: &Manifest) -> Result<Vec<String>, ProjectError> {
    let opts = compose::options(manifest, dir, &BTreeMap::new(), true)?;
    let project = compose::load(&opts)
        .map_err(|e| ProjectError::InvalidArgument(format!("the Compose project: {e}")))?;
    let report = validate_project(&project, Runtime::Docker);
    if !report.valid {
        let why: Vec<String> = report
            .rejected_fields
            .iter()
            .map(|n| format!("{}: {}", n.path, n.reason))
            .collect();
        return Err(ProjectError::InvalidArgument(format!(
            "berth refuses these settings, so the app cannot be packed: {}",
            why.join("; ")
        )));
    }
    let mut caps = BTreeSet::new();
    let ports = berth_compose::ports::wanted(&project.file)
        .map_err(|e| ProjectError::InvalidArgument(format!("{}: {}", e.path, e.reason)))?;
    for p in ports {
        if let Some(h) = p.host_port {
            caps.insert(format!("host-port:{h}/{}", p.protocol));
        } else if let Some((a, b)) = p.host_range {
            caps.insert(format!("host-port:{a}-{b}/{}", p.protocol));
        }
    }
    for s in &manifest.secrets {
        caps.insert(format!("secret:{}", s.name()));
    }
    for (_, svc) in &project.file.services.0 {
        for v in &svc.volumes {
            if let Ok(compose::Mount::Bind { source, .. }) = v.mount() {
                if compose::bind_in_project(dir, &source).is_none() {
                    caps.insert(format!("bind:{source}"));
                }
            }
        }
    }
    Ok(caps.into_iter().collect())
}
