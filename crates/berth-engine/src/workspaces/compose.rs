//! Compose-based devcontainers (`dockerComposeFile` + `service`): the
//! Compose files run as a berth project (the project engine, the same
//! Compose resolution and Docker runtime as `berth up`), and the workspace
//! lives in `service`'s container. The project's directory is the clone,
//! so a bind of the repository (`..:/workspaces/app`, the usual form) is a
//! live bind of berth's copy, which is kept for the workspace's life.

use super::log::ProvisionLog;
use super::provision::StepError;
use crate::projects::{EnsureRequest, Projects, RuntimeKind};
use std::collections::BTreeMap;
use std::path::Path;

/// The project id of workspace `id` (`ws-` + the id in the project id
/// alphabet).
pub fn project_id(id: &str) -> String {
    let s: String = id
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("ws-{s}")
}

fn fail(why: String) -> StepError {
    StepError {
        step: "compose".into(),
        why,
    }
}

/// Registers, opens and starts the project; returns (project id, the id of
/// `service`'s container).
#[allow(clippy::too_many_arguments)]
pub async fn up(
    projects: &Projects,
    id: &str,
    src: &Path,
    base: &Path,
    files: &[String],
    service: &str,
    run_services: &[String],
    log: &ProvisionLog,
) -> Result<(String, String), StepError> {
    let rel = |f: &String| -> Result<String, StepError> {
        let p = base.join(f);
        let p = p
            .canonicalize()
            .map_err(|e| fail(format!("dockerComposeFile {f:?}: {e}")))?;
        let src = src
            .canonicalize()
            .map_err(|e| fail(format!("{}: {e}", src.display())))?;
        p.strip_prefix(&src)
            .map(|r| r.to_string_lossy().into_owned())
            .map_err(|_| fail(format!("dockerComposeFile {f:?} is outside the repository")))
    };
    let files: Vec<String> = files.iter().map(rel).collect::<Result<_, _>>()?;
    let pid = project_id(id);
    let manifest = serde_json::json!({
        "app_id": "dev.berth.workspace",
        "name": id,
        "version": "1",
        "compose": files[0],
        "compose_files": files[1..],
    });
    log.line(&format!("== compose project {pid}: {}", files.join(", ")));
    projects
        .ensure(EnsureRequest {
            project_id: pid.clone(),
            app_id: String::new(),
            package_path: src.to_path_buf(),
            state_path: None,
            manifest: manifest.to_string().into_bytes(),
            runtime: Some(RuntimeKind::Docker),
        })
        .await
        .map_err(|e| fail(format!("the Compose files were refused: {e}")))?;
    let opened = projects
        .open_project(&pid, &|p| {
            tracing::debug!(target: "workspaces", "compose progress: {p:?}");
        })
        .await
        .map_err(|e| fail(format!("opening the Compose project failed: {e}")))?;
    for w in &opened.warnings {
        log.line(&format!("compose: {w}"));
    }
    let mut wanted: Vec<String> = run_services.to_vec();
    if !wanted.is_empty() && !wanted.iter().any(|s| s == service) {
        wanted.push(service.to_string());
    }
    projects
        .start_services(&pid, BTreeMap::new(), &wanted, false)
        .await
        .map_err(|e| fail(format!("starting the Compose services failed: {e}")))?;
    let status = projects
        .status(&pid)
        .await
        .map_err(|e| fail(e.to_string()))?;
    let c = status
        .services
        .iter()
        .find(|s| s.name == service)
        .ok_or_else(|| fail(format!("the Compose files have no service {service:?}")))?;
    if c.container_id.is_empty() {
        return Err(fail(format!(
            "service {service:?} has no container: {}",
            c.detail
        )));
    }
    log.line(&format!(
        "workspace container: {} ({service})",
        c.container_id
    ));
    Ok((pid, c.container_id.clone()))
}
