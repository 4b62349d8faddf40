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

/// `down`'s target: an id, or a path that names a project directory.
pub(super) fn target_id(target: Option<&str>) -> Result<String, CliError> {
    let t = target.unwrap_or(".");
    let p = Path::new(t);
    if p.exists() && (t.contains('/') || t == "." || p.is_dir() && target.is_none()) {
        let (dir, _) = project_source(p)?;
        return Ok(id_from_dir(&dir));
    }
    Ok(t.to_string())
}
