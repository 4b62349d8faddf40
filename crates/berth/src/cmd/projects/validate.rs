//! `berth validate`: what berth makes of a Compose file, field by field;
//! exit status 1 when it cannot run it.

use super::Client;
use crate::error::{CliError, CmdResult};
use berth_client::project::pb;
use clap::Args;
use std::path::{Path, PathBuf};

/// The resolved model of `paths` with `opts`, as `berth up` and `berth
/// config` resolve it (override files, includes, extends across files,
/// profiles, env files, the project name), rendered for ValidateCompose:
/// the daemon validates that one model, so `validate` reports on the same
/// project `up` runs. `$` is escaped by the rendering, since the model is
/// already interpolated. Also returns the file messages name.
///
/// # Errors
/// The resolution error, with its path, as `(file, error)`.
fn resolved(
    paths: &[PathBuf],
    opts: &super::config::ComposeOpts,
) -> Result<(PathBuf, Vec<u8>), (PathBuf, berth_compose::LoadError)> {
    let o = super::config::options(paths, opts)
        .map_err(|e| (PathBuf::new(), berth_compose::LoadError::new("", e)))?;
    let name = o
        .files
        .first()
        .cloned()
        .or_else(|| o.project_dir.clone())
        .unwrap_or_default();
    let project =
        berth_compose::load(&berth_compose::RealFiles, &o).map_err(|e| (name.clone(), e))?;
    let name = project.files.first().cloned().unwrap_or(name);
    let tree = berth_compose::config::canonical(&project, &berth_compose::RealFiles)
        .map_err(|e| (name.clone(), e))?;
    let mut tree = tree;
    drop_implicit_network(&mut tree);
    Ok((name, berth_compose::config::to_yaml(&tree).into_bytes()))
}

/// Removes the `default` network the rendering adds to a file that names
/// none, so the report does not warn about a network the user never wrote.
fn drop_implicit_network(tree: &mut berth_compose::Node) {
    use berth_compose::Node;
    let only_default =
        |n: Option<&Node>| matches!(n, Some(Node::Map(e)) if e.len() == 1 && e[0].0 == "default");
    if !only_default(tree.get("networks")) {
        return;
    }
    let implicit = tree
        .get("networks")
        .and_then(|n| n.get("default"))
        .is_some_and(|d| d.entries().iter().all(|(k, _)| k == "name"));
    if !implicit {
        return;
    }
    tree.remove("networks");
    if let Some(Node::Map(services)) = tree.get_mut("services") {
        for (_, svc) in services.iter_mut() {
            let plain = matches!(svc.get("networks"), Some(Node::Map(e))
                if e.len() == 1 && e[0].0 == "default" && e[0].1 == Node::Null);
            if plain {
                svc.remove("networks");
            }
        }
    }
}

/// The report on `content` for `runtime`; without one, for the runtime
/// `up` would use: the daemon's default, else native when only the native
/// runtime can run the file (as EnsureProject picks it).
async fn report(
    c: &mut Client,
    content: Vec<u8>,
    runtime: Option<&str>,
) -> Result<pb::ValidateComposeResponse, CliError> {
    let ask = |c: &mut Client, runtime: &str| {
        let req = pb::ValidateComposeRequest {
            compose_content: content.clone(),
            runtime: runtime.to_owned(),
        };
        let mut c = c.clone();
        async move { c.validate_compose(req).await }
    };
    let r = ask(c, runtime.unwrap_or_default()).await?.into_inner();
    if r.valid || runtime.is_some() {
        return Ok(r);
    }
    let native = ask(c, "native").await?.into_inner();
    Ok(if native.valid { native } else { r })
}

/// The warnings of the validator on `path`'s Compose file (unknown keys,
/// ignored fields), one line each; empty when they cannot be had. `berth
/// up` prints them before an error, since they often explain it (a typo'd
/// key is ignored, so the key it meant is missing).
pub(super) async fn warnings_of(
    c: &mut Client,
    path: &Path,
    opts: &super::config::ComposeOpts,
    runtime: &str,
) -> Vec<String> {
    let Ok((_, content)) = resolved(&[path.to_owned()], opts) else {
        return Vec::new();
    };
    let runtime = (!runtime.is_empty()).then_some(runtime);
    let Ok(r) = report(c, content, runtime).await else {
        return Vec::new();
    };
    r.warnings
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
    /// The project directory or Compose files (default: the current
    /// directory), resolved as `berth up` resolves them.
    paths: Vec<PathBuf>,
    #[command(flatten)]
    compose: super::config::ComposeOpts,
    /// Validate for this runtime (docker or native; default: the one `up`
    /// would use: the daemon's, or native for a file only it can run).
    #[arg(long)]
    runtime: Option<String>,
    /// JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Prints the verdict on the file; exit status 1 when it is not valid.
pub(super) async fn validate(c: &mut Client, a: ValidateArgs) -> CmdResult {
    // Whether the file was read as Compose at all: a file that was not
    // has no service list to speak of.
    let mut unreadable = false;
    let (file, r) = match resolved(&a.paths, &a.compose) {
        Ok((file, content)) => (file, report(c, content, a.runtime.as_deref()).await?),
        Err((file, e)) if e.reason.starts_with("no Compose file in ") => {
            // A directory without a Compose file: nothing to report on.
            let looked = e.reason.split_once(" (").map_or("", |(_, l)| l);
            return Err(CliError::failed(format!(
                "{} has no Compose file ({looked}",
                file.display()
            )));
        }
        Err((file, e)) => (
            {
                unreadable = true;
                file
            },
            pb::ValidateComposeResponse {
                valid: false,
                rejected_fields: vec![pb::FieldNote {
                    service: e.service.clone(),
                    path: e.path.clone(),
                    reason: e.reason.clone(),
                }],
                ..Default::default()
            },
        ),
    };
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
            0 if unreadable => "the file could not be read as Compose".to_string(),
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
