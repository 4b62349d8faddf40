//! Where a project comes from: `berth up`'s path (a directory, or a
//! Compose file in one) resolved into the project's directory, its id, and
//! the manifest sent with it; and `berth down`'s target, an id or a path.
//!
//! This is where options that choose files or names for a project belong
//! (a Compose file, a project name).

use crate::error::CliError;
use std::path::{Path, PathBuf};

/// A project id from a directory name: lowercase, `[a-z0-9_-]`.
pub(super) fn id_from_dir(dir: &Path) -> String {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let mut id: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    id = id.trim_start_matches(['-', '_']).chars().take(63).collect();
    if id.is_empty() {
        "project".into()
    } else {
        id
    }
}

/// Resolves `berth up`'s path into (project dir, manifest to send).
pub(super) fn project_source(path: &Path) -> Result<(PathBuf, Vec<u8>), CliError> {
    let path = std::fs::canonicalize(path)
        .map_err(|e| CliError::failed(format!("{}: {e}", path.display())))?;
    let (dir, compose) = if path.is_file() {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        (
            path.parent().unwrap_or(Path::new("/")).to_owned(),
            Some(name),
        )
    } else {
        (path, None)
    };
    let manifest_file = dir.join("manifest.json");
    let manifest = if manifest_file.is_file() {
        match &compose {
            // The file given wins over the manifest's own `compose`.
            Some(c) => {
                let text = std::fs::read(&manifest_file)
                    .map_err(|e| CliError::failed(format!("{}: {e}", manifest_file.display())))?;
                let mut v: serde_json::Value = serde_json::from_slice(&text).map_err(|e| {
                    CliError::failed(format!(
                        "{} is not valid JSON: {e}",
                        manifest_file.display()
                    ))
                })?;
                if let Some(o) = v.as_object_mut() {
                    o.insert("compose".into(), c.clone().into());
                }
                serde_json::to_vec(&v).unwrap_or_default()
            }
            None => Vec::new(),
        }
    } else {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "project".into());
        let mut m = serde_json::json!({
            "app_id": format!("local.{}", id_from_dir(&dir)),
            "name": name,
            "version": "0.0.0",
        });
        if let Some(c) = &compose {
            m["compose"] = c.clone().into();
        }
        serde_json::to_vec(&m).unwrap_or_default()
    };
    Ok((dir, manifest))
}

/// `manifest` (or the directory's manifest.json) with the Compose
/// options of `berth up`: `-f` files (the first is the manifest's
/// `compose`, the others `compose_files`), `--env-file`s, the active
/// profiles (`--profile`, else COMPOSE_PROFILES of this shell) and the
/// project name, resolved here as the daemon will. Also returns that
/// name. Files must lie inside the project directory.
pub(super) fn with_compose_options(
    dir: &Path,
    manifest: Vec<u8>,
    path: Option<&Path>,
    o: &super::config::ComposeOpts,
) -> Result<(Vec<u8>, Option<String>), CliError> {
    let mut paths: Vec<PathBuf> = path.map(Path::to_path_buf).into_iter().collect();
    if paths.is_empty() {
        paths.push(dir.to_owned());
    }
    let opts = super::config::options(&paths, o).map_err(CliError::failed)?;
    // An invalid -p or COMPOSE_PROJECT_NAME is refused, as Compose does,
    // not silently dropped; other problems are the daemon's to report.
    let name = match berth_compose::load(&berth_compose::RealFiles, &opts) {
        Ok(p) => Some(p.name).filter(|n| n.len() <= 63),
        Err(e) if e.path == "name" => return Err(CliError::failed(e.reason)),
        Err(_) => None,
    };
    let profiles = if o.profiles.is_empty() {
        opts.environment
            .get("COMPOSE_PROFILES")
            .map(|p| {
                p.split(',')
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    } else {
        o.profiles.clone()
    };
    if o.files.is_empty() && o.env_files.is_empty() && profiles.is_empty() && name.is_none() {
        return Ok((manifest, None));
    }
    let text = if manifest.is_empty() {
        let f = dir.join("manifest.json");
        std::fs::read(&f).map_err(|e| CliError::failed(format!("{}: {e}", f.display())))?
    } else {
        manifest
    };
    let mut v: serde_json::Value = serde_json::from_slice(&text)
        .map_err(|e| CliError::failed(format!("the manifest is not valid JSON: {e}")))?;
    let inside = |p: &Path| -> Result<String, CliError> {
        let full = std::fs::canonicalize(p)
            .map_err(|e| CliError::failed(format!("{}: {e}", p.display())))?;
        full.strip_prefix(dir)
            .map(|r| r.to_string_lossy().into_owned())
            .map_err(|_| {
                CliError::failed(format!(
                    "{} is outside the project directory {}",
                    p.display(),
                    dir.display()
                ))
            })
    };
    if let Some(m) = v.as_object_mut() {
        let files = opts
            .files
            .iter()
            .map(|f| inside(f))
            .collect::<Result<Vec<_>, _>>()?;
        if let Some((first, rest)) = files.split_first() {
            m.insert("compose".into(), first.clone().into());
            if !rest.is_empty() {
                m.insert("compose_files".into(), rest.to_vec().into());
            }
        }
        if !opts.env_files.is_empty() {
            let env = opts
                .env_files
                .iter()
                .map(|f| inside(f))
                .collect::<Result<Vec<_>, _>>()?;
            m.insert("env_files".into(), env.into());
        }
        if !profiles.is_empty() {
            m.insert("profiles".into(), profiles.into());
        }
        if let Some(n) = &name {
            m.insert("project_name".into(), n.clone().into());
        }
    }
    Ok((serde_json::to_vec(&v).unwrap_or_default(), name))
}

/// `down`'s target: an id, or a path that names a project directory.
pub(super) fn target_id(target: Option<&str>) -> Result<String, CliError> {
    let t = target.unwrap_or(".");
    let p = Path::new(t);
    if p.exists() && (t.contains('/') || t == "." || p.is_dir() && target.is_none()) {
        let (dir, _) = project_source(p)?;
        // The id `berth up` gave it: the Compose project name.
        let name = super::config::options(&[p.to_path_buf()], &Default::default())
            .ok()
            .and_then(|o| berth_compose::load(&berth_compose::RealFiles, &o).ok())
            .map(|project| project.name)
            .filter(|n| n.len() <= 63);
        return Ok(name.unwrap_or_else(|| id_from_dir(&dir)));
    }
    Ok(t.to_string())
}
