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
/// naming every refused setting when neither runtime can run the app, PATH_NOT_FOUND (no Compose file), or
/// the Compose file's own error.
pub fn of_app(dir: &Path, manifest: &Manifest) -> Result<Vec<String>, ProjectError> {
    let opts = compose::options(manifest, dir, &BTreeMap::new(), true)?;
    let project = compose::load(&opts)
        .map_err(|e| ProjectError::InvalidArgument(format!("the Compose project: {e}")))?;
    // The package does not choose its runtime: it must run on one of
    // them (settings that give a service the host are refused by both).
    let native = validate_project(&project, Runtime::Native);
    let report = validate_project(&project, Runtime::Docker);
    if !report.valid && !native.valid {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn app(compose: &str) -> (tempfile::TempDir, Manifest) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("compose.yaml"), compose).unwrap();
        let m = Manifest::parse(
            br#"{"app_id":"dev.test.caps","name":"caps","version":"1","secrets":["TOKEN"]}"#,
        )
        .unwrap();
        (dir, m)
    }

    #[test]
    fn host_ports_secrets_and_outside_binds_are_declared() {
        let (dir, m) = app(
            "services:\n  web:\n    image: nginx\n    ports: [\"8080:80\", \"9000-9001:9000-9001/udp\", \"443\"]\n    volumes: [\"./site:/site\", \"/var/media:/media\", \"data:/data\"]\nvolumes:\n  data: {}\n",
        );
        assert_eq!(
            of_app(dir.path(), &m).unwrap(),
            vec![
                "bind:/var/media",
                "host-port:8080/tcp",
                "host-port:9000/udp",
                "host-port:9001/udp",
                "secret:TOKEN"
            ]
        );
    }

    #[test]
    fn a_privileged_service_refuses_the_pack_naming_the_setting() {
        let (dir, m) = app("services:\n  root:\n    image: alpine\n    privileged: true\n");
        let e = of_app(dir.path(), &m).unwrap_err();
        assert_eq!(e.code(), "INVALID_ARGUMENT");
        assert!(e.to_string().contains("privileged"), "{e}");
    }
}
