//! The web terminal page (issue 16): `GET /` after authentication serves a
//! page built on xterm.js that opens `/terminal/ws/multi`, and
//! `GET /assets/{name}` serves its files. Everything is embedded in the
//! binary, so the page works with no network access. xterm.js and its
//! addons come from `web/terminal/node_modules` at build time (see
//! build.rs); a build without them serves a page saying how to enable it.

use super::refusal::Refusal;
use super::state::NodeState;
use super::terminal::{principal, TermQuery};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::sync::Arc;

mod vendor {
    include!(concat!(env!("OUT_DIR"), "/web_vendor.rs"));
}

/// The page's own files (always embedded): (name, content type, bytes).
const OWN: &[(&str, &str, &[u8])] = &[
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../../web/terminal/app.js"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_bytes!("../../../../web/terminal/app.css"),
    ),
];

/// The page itself.
const INDEX: &str = include_str!("../../../../web/terminal/index.html");

/// What a build without the xterm.js files serves at `GET /`.
const NOT_BUILT: &str = "<!doctype html><meta charset=utf-8><title>berth terminal</title>\
<h1>The web terminal page is not built into this berth</h1>\
<p>Its xterm.js files were absent when berth was built. To enable it, run \
<code>cd web/terminal &amp;&amp; npm ci</code> in berth's source tree, then rebuild \
(<code>cargo build --release -p berth</code>). The terminal WebSockets \
(<code>/terminal/ws</code>, <code>/terminal/ws/multi</code>) work either way.</p>\n";

/// Whether the xterm.js files were embedded at build time.
pub fn page_built() -> bool {
    !vendor::VENDOR.is_empty()
}

/// The page's routes (merged into the node API's router).
pub fn routes() -> Router<Arc<NodeState>> {
    Router::new()
        .route("/", get(page))
        .route("/assets/{name}", get(asset))
}

/// A file served under `/assets/`: (content type, bytes).
pub fn asset_bytes(name: &str) -> Option<(&'static str, &'static [u8])> {
    vendor::VENDOR
        .iter()
        .chain(OWN.iter())
        .find(|(n, _, _)| *n == name)
        .map(|(_, t, b)| (*t, *b))
}

/// `GET /?token=JWT` (a `workspace-terminal` token) sets the workspace's
/// `vm_session_` cookie and redirects to `/?workspace=ID`, so the token
/// leaves the address bar and history; `GET /?workspace=ID` with that
/// cookie serves the page. Refusals are the usual 401/403, as a page.
async fn page(
    State(st): State<Arc<NodeState>>,
    headers: HeaderMap,
    Query(q): Query<TermQuery>,
) -> Response {
    let workspace = q.workspace.clone().or(q.workspace_id.clone());
    let p = match principal(&st, &headers, q.token.as_deref(), workspace.as_deref()).await {
        Ok(p) => p,
        Err(r) => return refusal_page(r),
    };
    if let Some(cookie) = p.set_cookie {
        let to = format!("/?workspace={}", encode(&p.workspace));
        let mut r = StatusCode::SEE_OTHER.into_response();
        let h = r.headers_mut();
        if let (Ok(loc), Ok(c)) = (HeaderValue::from_str(&to), HeaderValue::from_str(&cookie)) {
            h.insert(header::LOCATION, loc);
            h.append(header::SET_COOKIE, c);
        }
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return r;
    }
    let (status, body) = if page_built() {
        (StatusCode::OK, INDEX)
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, NOT_BUILT)
    };
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // xterm.js's DOM renderer sets inline styles; scripts only from here.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
             connect-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; \
             frame-ancestors 'none'",
        ),
    );
    r
}

/// `GET /assets/{name}`: the page's files (no auth: they are the public
/// xterm.js release and berth's own page code, nothing of the machine's).
async fn asset(Path(name): Path<String>) -> Response {
    match asset_bytes(&name) {
        Some((ctype, bytes)) => {
            let mut r = bytes.into_response();
            let h = r.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            h.insert(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
            r
        }
        None if !page_built() => {
            Refusal::not_found(format!("no asset {name:?}: the web terminal page is not built into this berth (cd web/terminal && npm ci, then rebuild)")).into_response()
        }
        None => Refusal::not_found(format!("no asset {name:?}")).into_response(),
    }
}

/// A refusal as a small page (same status), telling how to log in.
fn refusal_page(r: Refusal) -> Response {
    let body = format!(
        "<!doctype html><meta charset=utf-8><title>berth terminal: {code}</title>\
<h1>{code}</h1><p>{reason}</p><p>Open this page with <code>?token=</code> and a \
<code>workspace-terminal</code> token from the control plane; the page then keeps a \
cookie for 24 hours.</p>\n",
        code = r.code,
        reason = html_escape(&r.reason)
    );
    let mut resp = (r.status, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    resp
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Percent-encodes a query value (workspace ids are usually plain).
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn own_assets_are_always_there_and_names_are_exact() {
        assert!(super::asset_bytes("app.js").is_some());
        assert!(super::asset_bytes("app.css").is_some());
        assert!(super::asset_bytes("../app.js").is_none());
        assert_eq!(super::encode("ws 1/ä"), "ws%201%2F%C3%A4");
        assert_eq!(super::html_escape("<a&\">"), "&lt;a&amp;&quot;&gt;");
    }
}
