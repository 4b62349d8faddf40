//! `GET/POST /api/v1/clipboard`: the guest's clipboard, as text with its
//! MIME type.
//!
//! With an X display (`DISPLAY`) it is the X `CLIPBOARD` selection
//! (`"source": "x11"`, see [`super::x11_clipboard`]). Without one (or on a
//! Wayland-only session) it is a clipboard the daemon keeps, shared by
//! every client of this daemon and lost when it stops; those responses say
//! so in `"source": "daemon"` and `"note"`. GET answers `{text, mime_type,
//! source, note?}`; POST takes `{text, mime_type?}` (default
//! `text/plain;charset=utf-8`).

use super::error::Json;
use super::error::{ApiError, ApiResult};
use super::{JsonBody, Shared};
use axum::extract::State;
use serde::Deserialize;
use std::sync::Mutex;

const DEFAULT_MIME: &str = "text/plain;charset=utf-8";
const NOTE: &str = "the clipboard kept by the berth daemon: there is no X display (DISPLAY), so this is not a desktop clipboard";

/// True when the clipboard is the X display's.
fn on_x11() -> bool {
    std::env::var("DISPLAY").is_ok_and(|d| !d.is_empty())
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(ApiError::conflict)
}

/// The daemon-kept clipboard: text and its MIME type.
#[derive(Default)]
pub struct Clipboard(Mutex<Option<(String, String)>>);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SetClipboard {
    text: String,
    mime_type: Option<String>,
}

pub(super) async fn get(State(api): State<Shared>) -> ApiResult<Json<serde_json::Value>> {
    if on_x11() {
        let text = blocking(super::x11_clipboard::get).await?;
        return Ok(Json(serde_json::json!({
            "text": text, "mime_type": DEFAULT_MIME, "source": "x11",
        })));
    }
    let (text, mime) = api
        .clipboard
        .0
        .lock()
        .map(|c| c.clone())
        .unwrap_or_default()
        .unwrap_or_else(|| (String::new(), DEFAULT_MIME.to_string()));
    Ok(Json(serde_json::json!({
        "text": text, "mime_type": mime, "source": "daemon", "note": NOTE,
    })))
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
    if on_x11() {
        let m = mime.clone();
        blocking(move || super::x11_clipboard::set(req.text, &m)).await?;
        return Ok(Json(serde_json::json!({
            "ok": true, "bytes": len, "mime_type": mime, "source": "x11",
        })));
    }
    if let Ok(mut c) = api.clipboard.0.lock() {
        *c = Some((req.text, mime.clone()));
    }
    Ok(Json(serde_json::json!({
        "ok": true, "bytes": len, "mime_type": mime, "source": "daemon", "note": NOTE,
    })))
}
