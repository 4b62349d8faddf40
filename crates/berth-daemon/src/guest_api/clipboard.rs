//! `GET/POST /api/v1/clipboard`: the guest's clipboard, as text with its
//! MIME type.
//!
//! berth has no display-server clipboard backend yet, so the clipboard is
//! the one the daemon keeps (shared by every client of this daemon, lost
//! when it stops); every response says so in `"source": "daemon"` and
//! `"note"`. GET answers `{text, mime_type, source, note}`; POST takes
//! `{text, mime_type?}` (default `text/plain;charset=utf-8`).

use super::error::Json;
use super::error::{ApiError, ApiResult};
use super::{JsonBody, Shared};
use axum::extract::State;
use serde::Deserialize;
use std::sync::Mutex;

const DEFAULT_MIME: &str = "text/plain;charset=utf-8";
const NOTE: &str = "the clipboard kept by the berth daemon: berth has no X11/Wayland clipboard backend, so this is not the desktop's clipboard";

/// The daemon-kept clipboard: text and its MIME type.
#[derive(Default)]
pub struct Clipboard(Mutex<Option<(String, String)>>);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SetClipboard {
    text: String,
    mime_type: Option<String>,
}

pub(super) async fn get(State(api): State<Shared>) -> Json<serde_json::Value> {
    let (text, mime) = api
        .clipboard
        .0
        .lock()
        .map(|c| c.clone())
        .unwrap_or_default()
        .unwrap_or_else(|| (String::new(), DEFAULT_MIME.to_string()));
    Json(serde_json::json!({
        "text": text, "mime_type": mime, "source": "daemon", "note": NOTE,
    }))
}

pub(super) async fn set(
    State(api): State<Shared>,
    JsonBody(req): JsonBody<SetClipboard>,
) -> ApiResult<Json<serde_json::Value>> {
    let mime = req.mime_type.unwrap_or_else(|| DEFAULT_MIME.to_string());
    if !mime.starts_with("text/") {
        return Err(ApiError::bad_request(format!(
            "mime_type {mime:?}: only text/* is kept"
        )));
    }
    let len = req.text.len();
    if let Ok(mut c) = api.clipboard.0.lock() {
        *c = Some((req.text, mime.clone()));
    }
    Ok(Json(serde_json::json!({
        "ok": true, "bytes": len, "mime_type": mime, "source": "daemon", "note": NOTE,
    })))
}
