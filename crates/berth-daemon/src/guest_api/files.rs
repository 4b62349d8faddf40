//! The queue of files the guest shares with the host (seed 002's
//! "files queued by the guest"): `berth share FILE...` in the guest adds
//! them ([`enqueue`]), `GET /api/v1/files` lists them, `GET
//! /api/v1/files/{name}` streams one, `DELETE /api/v1/files` clears the
//! queue. The queue is a JSON file in berth's state dir
//! (`shared-files.json`), written atomically; files stay where they are
//! and are read when downloaded.

use super::error::Json;
use super::error::{ApiError, ApiResult};
use super::Shared;
use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::http::header;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// One queued file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct QueuedFile {
    /// File name (the download key).
    pub name: String,
    /// Size in bytes when queued.
    pub size: u64,
    /// Absolute path in the guest.
    pub path: String,
    /// When it was queued, seconds since the Unix epoch.
    pub queued_at: f64,
}

/// Where the queue of `scope` lives.
pub fn queue_path(scope: Option<&str>) -> PathBuf {
    let name = match scope {
        Some(s) if !s.is_empty() => format!("shared-files-{s}.json"),
        _ => "shared-files.json".to_string(),
    };
    berth_os::dirs::state_dir().join(name)
}

/// The queued files, oldest first (an absent queue is empty).
pub fn read_queue(queue: &Path) -> std::io::Result<Vec<QueuedFile>> {
    match std::fs::read(queue) {
        Ok(b) => serde_json::from_slice(&b)
            .map_err(|e| std::io::Error::other(format!("{}: {e}", queue.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

fn write_queue(queue: &Path, files: &[QueuedFile]) -> std::io::Result<()> {
    if let Some(dir) = queue.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let bytes = serde_json::to_vec_pretty(files).map_err(std::io::Error::other)?;
    berth_os::fsutil::atomic_write(queue, &bytes)
}

/// Adds regular files to the queue (a file queued again replaces its
/// earlier entry, as does another file of the same name). Fails naming
/// the first path that is missing or not a regular file; then nothing is
/// queued.
pub fn enqueue(queue: &Path, paths: &[PathBuf]) -> Result<Vec<QueuedFile>, String> {
    let mut added = Vec::new();
    for p in paths {
        let real = std::fs::canonicalize(p).map_err(|e| format!("{}: {e}", p.display()))?;
        let meta = std::fs::metadata(&real).map_err(|e| format!("{}: {e}", p.display()))?;
        if !meta.is_file() {
            return Err(format!("{}: not a regular file", p.display()));
        }
        added.push(QueuedFile {
            name: real
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            size: meta.len(),
            path: real.display().to_string(),
            queued_at: berth_os::proc::now_epoch(),
        });
    }
    let mut all = read_queue(queue).map_err(|e| e.to_string())?;
    all.retain(|f| !added.iter().any(|a| a.name == f.name));
    all.extend(added.iter().cloned());
    write_queue(queue, &all).map_err(|e| format!("{}: {e}", queue.display()))?;
    Ok(added)
}

pub(super) async fn list(State(api): State<Shared>) -> ApiResult<Json<serde_json::Value>> {
    let files = read_queue(&api.config.share_queue)
        .map_err(|e| ApiError::io("cannot read the share queue", &e))?;
    Ok(Json(serde_json::json!({ "files": files })))
}

pub(super) async fn clear(State(api): State<Shared>) -> ApiResult<Json<serde_json::Value>> {
    let files = read_queue(&api.config.share_queue)
        .map_err(|e| ApiError::io("cannot read the share queue", &e))?;
    write_queue(&api.config.share_queue, &[])
        .map_err(|e| ApiError::io("cannot clear the share queue", &e))?;
    Ok(Json(serde_json::json!({ "cleared": files.len() })))
}

pub(super) async fn download(
    State(api): State<Shared>,
    UrlPath(name): UrlPath<String>,
) -> ApiResult<Response> {
    let files = read_queue(&api.config.share_queue)
        .map_err(|e| ApiError::io("cannot read the share queue", &e))?;
    let f = files
        .into_iter()
        .find(|f| f.name == name)
        .ok_or_else(|| ApiError::not_found(format!("no queued file named {name:?}")))?;
    let file = tokio::fs::File::open(&f.path)
        .await
        .map_err(|e| ApiError::io(&f.path, &e))?;
    let len = file
        .metadata()
        .await
        .map_err(|e| ApiError::io(&f.path, &e))?
        .len();
    let stream = futures_util::stream::unfold(file, |mut file| async move {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0u8; 64 << 10];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(axum::body::Bytes::from(buf)), file))
            }
            Err(e) => Some((Err(e), file)),
        }
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::CONTENT_LENGTH, len)
        .body(Body::from_stream(stream))
        .map_err(|e| ApiError::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}
