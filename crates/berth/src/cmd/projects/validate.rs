//! `berth validate`: what berth makes of a Compose file, field by field;
//! exit status 1 when it cannot run it.

use super::Client;
use crate::error::{CliError, CmdResult};
use berth_client::project::pb;
use clap::Args;
use std::path::PathBuf;

/// `berth validate`.
#[derive(Args)]
pub(crate) struct ValidateArgs {
    /// The Compose file.
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
    let content = std::fs::read(&a.file)
        .map_err(|e| CliError::failed(format!("{}: {e}", a.file.display())))?;
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
        println!(
            "{}: {} ({} services: {})",
            a.file.display(),
            if r.valid { "valid" } else { "NOT valid" },
            r.services.len(),
            r.services.join(", ")
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
