//! `GET /api/v1/fs?path=DIR`: a directory listing, confined to the
//! allowed roots (`GuestApiConfig::fs_roots`, the user's home by default).
//!
//! The path is resolved (`..` and every symlink) before it is checked, so
//! neither can lead outside a root: such a path is 403, a missing one 404,
//! a file that is not a directory 400. Entries are not followed: a
//! symlink is listed as one, with its target.

use super::error::Json;
use super::error::{ApiError, ApiResult};
use super::Shared;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

#[derive(Deserialize)]
pub(super) struct FsQuery {
    path: Option<String>,
}

/// One directory entry.
#[derive(Debug, Serialize)]
pub struct Entry {
    /// File name.
    pub name: String,
    /// `file`, `dir`, `symlink` or `other`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Size in bytes (of the link itself for a symlink).
    pub size: u64,
    /// Permission bits, octal, as `"0644"`.
    pub mode: String,
    /// Modification time, seconds since the Unix epoch.
    pub mtime: i64,
    /// Where a symlink points, as written in it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

pub(super) async fn list(
    State(api): State<Shared>,
    Query(q): Query<FsQuery>,
) -> ApiResult<Json<serde_json::Value>> {
    let path = q
        .path
        .ok_or_else(|| ApiError::bad_request("the \"path\" query parameter is missing"))?;
    let roots = api.config.fs_roots.clone();
    let (dir, entries) = tokio::task::spawn_blocking(move || list_dir(&roots, &path))
        .await
        .map_err(|e| {
            ApiError::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
        })??;
    Ok(Json(serde_json::json!({
        "path": dir.display().to_string(),
        "entries": entries,
    })))
}

/// Resolves `path` (absolute, or `~/...` under the first root) and checks
/// it lies inside one of `roots`.
pub fn resolve(roots: &[PathBuf], path: &str) -> ApiResult<PathBuf> {
    let asked = if let Some(rest) = path.strip_prefix('~') {
        let home = roots.first().ok_or_else(|| {
            ApiError::new(
                axum::http::StatusCode::FORBIDDEN,
                "no fs roots are configured",
            )
        })?;
        home.join(rest.trim_start_matches('/'))
    } else if path.starts_with('/') {
        PathBuf::from(path)
    } else {
        return Err(ApiError::bad_request(format!(
            "{path:?} is not an absolute path (or ~/...)"
        )));
    };
    let real = std::fs::canonicalize(&asked).map_err(|e| ApiError::io(path, &e))?;
    let inside = roots.iter().any(|r| {
        std::fs::canonicalize(r)
            .map(|r| real.starts_with(r))
            .unwrap_or(false)
    });
    if !inside {
        return Err(ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            format!(
                "{path:?} resolves to {} which is outside the allowed roots ({})",
                real.display(),
                roots
                    .iter()
                    .map(|r| r.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    Ok(real)
}

fn list_dir(roots: &[PathBuf], path: &str) -> ApiResult<(PathBuf, Vec<Entry>)> {
    let dir = resolve(roots, path)?;
    if !dir.is_dir() {
        return Err(ApiError::bad_request(format!(
            "{path:?} is not a directory"
        )));
    }
    let mut entries = Vec::new();
    for e in std::fs::read_dir(&dir).map_err(|e| ApiError::io(path, &e))? {
        let Ok(e) = e else { continue };
        let Ok(meta) = e.path().symlink_metadata() else {
            continue;
        };
        entries.push(entry(
            &e.path(),
            e.file_name().to_string_lossy().into_owned(),
            &meta,
        ));
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok((dir, entries))
}

fn entry(path: &Path, name: String, meta: &std::fs::Metadata) -> Entry {
    let ft = meta.file_type();
    let kind = if ft.is_symlink() {
        "symlink"
    } else if ft.is_dir() {
        "dir"
    } else if ft.is_file() {
        "file"
    } else {
        "other"
    };
    Entry {
        name,
        kind,
        size: meta.len(),
        mode: format!("{:04o}", meta.permissions().mode() & 0o7777),
        mtime: meta.mtime(),
        target: ft
            .is_symlink()
            .then(|| std::fs::read_link(path).ok())
            .flatten()
            .map(|t| t.display().to_string()),
    }
}
