//! `berth validate`: what berth makes of a Compose file, field by field;
//! exit status 1 when it cannot run it.

use super::Client;
use crate::error::{CliError, CmdResult};
use berth_client::project::pb;
use clap::Args;
use std::path::{Path, PathBuf};

/// The names a project directory's Compose file may have, in the order
/// the daemon looks for them (`berth_engine::projects::COMPOSE_NAMES`).
const COMPOSE_NAMES: &[&str] = &[
    "compose.yaml",
    "compose.yml",
    "docker-compose.yaml",
    "docker-compose.yml",
];

/// The Compose file `path` means, as `berth up PATH` reads it: the file
/// itself, or in a directory the file its `manifest.json` names, else the
/// first of [`COMPOSE_NAMES`] there.
///
/// # Errors
/// A directory without a Compose file, named in the message.
pub(super) fn compose_file(path: &Path) -> Result<PathBuf, CliError> {
    if !path.is_dir() {
        return Ok(path.to_owned());
    }
    let named = std::fs::read(path.join("manifest.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v.get("compose")?.as_str().map(|c| path.join(c)));
    named
        .into_iter()
        .chain(COMPOSE_NAMES.iter().map(|n| path.join(n)))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            CliError::failed(format!(
                "{} has no Compose file (looked for {})",
                path.display(),
                COMPOSE_NAMES.join(", ")
            ))
        })
}

/// The warnings of the validator on `path`'s Compose file (unknown keys,
/// ignored fields), one line each; empty when they cannot be had. `berth
/// up` prints them before an error, since they often explain it (a typo'd
/// key is ignored, so the key it meant is missing).
pub(super) async fn warnings_of(c: &mut Client, path: &Path, runtime: &str) -> Vec<String> {
    let Ok(file) = compose_file(path) else {
        return Vec::new();
    };
    let Ok(content) = std::fs::read(&file) else {
        return Vec::new();
    };
    let Ok(r) = c
        .validate_compose(pb::ValidateComposeRequest {
            compose_content: content,
            runtime: runtime.to_string(),
        })
        .await
    else {
        return Vec::new();
    };
    r.into_inner()
        .warnings
        .iter()
        .map(|n| {
            if n.path.is_empty() {
                n.reason.clone()
            } else {
                format!("{}: {}", n.path, n.reason)
            }
        })
        .collect()
}

/// `berth validate`.
#[derive(Args)]
pub(crate) struct ValidateArgs {
    /// The Compose file, or a project directory holding one.
    file: PathBuf,
    /// Validate for this runtime (docker or native; default: the daemon's).
    #[arg(long)]
    runtime: Option<String>,
    /// JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Prints the verdict on the file; exit status 1 when it is not valid.
pub(super) async fn validate(c: &mut Client, a: ValidateArgs) -> CmdResult {
    let file = compose_file(&a.file)?;
    let content =
        std::fs::read(&file).map_err(|e| CliError::failed(format!("{}: {e}", file.display())))?;
    let r = c
        .validate_compose(pb::ValidateComposeRequest {
            compose_content: content,
            runtime: a.runtime.clone().unwrap_or_default(),
        })
        .await?
        .into_inner();
    let notes = |v: &[pb::FieldNote]| -> Vec<serde_json::Value> {
        v.iter()
            .map(|n| serde_json::json!({"service": n.service, "path": n.path, "reason": n.reason}))
            .collect()
    };
    if a.json {
        let v = serde_json::json!({
            "valid": r.valid, "services": r.services,
            "supported_fields": notes(&r.supported_fields),
            "transformed_fields": notes(&r.transformed_fields),
            "rejected_fields": notes(&r.rejected_fields),
            "warnings": notes(&r.warnings),
        });
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        let services = match r.services.len() {
            0 => "no services".to_string(),
            1 => format!("1 service: {}", r.services[0]),
            n => format!("{n} services: {}", r.services.join(", ")),
        };
        println!(
            "{}: {} ({services})",
            file.display(),
            if r.valid { "valid" } else { "NOT valid" },
        );
        let section = |title: &str, v: &[pb::FieldNote]| {
            if v.is_empty() {
                return;
            }
            println!("\n{title}:");
            for n in v {
                let path = if n.path.is_empty() { "(file)" } else { &n.path };
                if n.reason.is_empty() {
                    println!("  {path}");
                } else {
                    println!("  {path}: {}", n.reason);
                }
            }
        };
        section("rejected", &r.rejected_fields);
        section("transformed", &r.transformed_fields);
        section("warnings", &r.warnings);
        println!("\n{} fields supported as written", r.supported_fields.len());
    }
    Ok(if r.valid { 0 } else { 1 })
}
