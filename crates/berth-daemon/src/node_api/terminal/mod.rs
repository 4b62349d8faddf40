//! `/terminal/ws` and `/terminal/ws/multi` (seed 004 "Shell Sessions"):
//! browser terminals over the session engine, so a terminal opened here is
//! the same session `berth attach` and the process API see.

pub mod conn;
pub mod protocol;

use super::auth::Audience;
use super::refusal::Refusal;
use super::state::{NodeState, COOKIE_LIFETIME};
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::sync::Arc;

/// Query parameters of both terminal routes.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TermQuery {
    /// A `workspace-terminal` JWT (accepted once; a cookie follows).
    pub token: Option<String>,
    /// The workspace (else the token's `workspace` claim).
    pub workspace: Option<String>,
    /// Same, as the agent's clients name it.
    pub workspace_id: Option<String>,
    /// Initial rows.
    pub rows: Option<i64>,
    /// Initial columns.
    pub cols: Option<i64>,
    /// Single mode: re-open this session instead of starting one.
    pub session_id: Option<String>,
    /// Single mode with `sessionId`: the output offset the client holds.
    pub offset: Option<u64>,
    /// Single mode: output as raw binary frames.
    pub binary: Option<bool>,
}

/// The user and workspace of a request, and a cookie to set if it came
/// with a `?token=`.
pub struct Principal {
    /// `sub`.
    pub sub: String,
    /// The route's workspace.
    pub workspace: String,
    /// `Set-Cookie` value for a token just accepted.
    pub set_cookie: Option<String>,
}

/// Cookie name for a workspace.
pub fn cookie_name(workspace: &str) -> String {
    format!("vm_session_{workspace}")
}

/// Authenticates a browser request: `?token=` (then a cookie is issued),
/// else the workspace's `vm_session_` cookie.
pub async fn principal(
    st: &NodeState,
    headers: &HeaderMap,
    token: Option<&str>,
    workspace: Option<&str>,
) -> Result<Principal, Refusal> {
    if let Some(t) = token.filter(|t| !t.is_empty()) {
        let claims = st
            .validator
            .check(t, Audience::WorkspaceTerminal, workspace)
            .await?;
        let ws = workspace
            .map(String::from)
            .or(claims.workspace.clone())
            .unwrap_or_default();
        let value = st.grant(&claims.sub, &ws).map_err(Refusal::internal)?;
        let cookie = format!(
            "{}={value}; Path=/; Max-Age={}; HttpOnly; Secure; SameSite=Strict",
            cookie_name(&ws),
            COOKIE_LIFETIME.as_secs()
        );
        return Ok(Principal {
            sub: claims.sub,
            workspace: ws,
            set_cookie: Some(cookie),
        });
    }
    let Some(ws) = workspace else {
        return Err(Refusal::unauthorized(
            "no token: pass ?token= (or a vm_session_ cookie with ?workspace=)",
        ));
    };
    let name = cookie_name(ws);
    let value = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
        .ok_or_else(|| Refusal::unauthorized(format!("no token and no {name} cookie")))?;
    let g = st
        .grant_for(&value, ws)
        .ok_or_else(|| Refusal::unauthorized(format!("the {name} cookie is unknown or expired")))?;
    Ok(Principal {
        sub: g.sub,
        workspace: g.workspace,
        set_cookie: None,
    })
}

fn with_cookie(mut r: Response, cookie: Option<String>) -> Response {
    if let Some(c) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        r.headers_mut().append(header::SET_COOKIE, c);
    }
    r
}

/// `GET /terminal/ws`: one session; `session{sessionId}` first.
pub async fn single(
    State(st): State<Arc<NodeState>>,
    headers: HeaderMap,
    Query(q): Query<TermQuery>,
    ws: WebSocketUpgrade,
) -> Response {
    let workspace = q.workspace.clone().or(q.workspace_id.clone());
    let p = match principal(&st, &headers, q.token.as_deref(), workspace.as_deref()).await {
        Ok(p) => p,
        Err(r) => return r.into_response(),
    };
    let (rows, cols) = protocol::size(q.rows, q.cols);
    let first = match &q.session_id {
        Some(id) => match st.terminals.get(&p.workspace, id, &p.sub) {
            Ok(t) => {
                let _ = t.session.resize(rows, cols);
                let start = q
                    .offset
                    .map(conn::Start::Offset)
                    .unwrap_or(conn::Start::Fresh);
                (t, start)
            }
            Err(e) => return Refusal::forbidden(e).into_response(),
        },
        None => {
            let id = match berth_os::ids::uuid_v4() {
                Ok(id) => id,
                Err(e) => return Refusal::internal(e.to_string()).into_response(),
            };
            match st.terminals.create(
                &p.workspace,
                &id,
                &p.sub,
                None,
                &st.cfg.shell,
                &st.cfg.default_workdir,
                rows,
                cols,
            ) {
                Ok(t) => (t, conn::Start::Live),
                Err(e) => return Refusal::internal(e).into_response(),
            }
        }
    };
    let c = conn::Conn {
        terms: st.terminals.clone(),
        workspace: p.workspace,
        sub: p.sub,
        multi: false,
        binary_out: q.binary.unwrap_or(false),
        shell: st.cfg.shell.clone(),
        work_dir: st.cfg.default_workdir.clone(),
        replay_limit: st.cfg.pty_output_buffer as u64,
    };
    let r = ws
        .max_message_size(conn::MAX_WIRE_MESSAGE)
        .max_frame_size(conn::MAX_WIRE_MESSAGE)
        .on_upgrade(move |sock| conn::run(sock, c, Some(first)));
    with_cookie(r, p.set_cookie)
}

/// `GET /terminal/ws/multi`: tabs.
pub async fn multi(
    State(st): State<Arc<NodeState>>,
    headers: HeaderMap,
    Query(q): Query<TermQuery>,
    ws: WebSocketUpgrade,
) -> Response {
    let workspace = q.workspace.clone().or(q.workspace_id.clone());
    let p = match principal(&st, &headers, q.token.as_deref(), workspace.as_deref()).await {
        Ok(p) => p,
        Err(r) => return r.into_response(),
    };
    let c = conn::Conn {
        terms: st.terminals.clone(),
        workspace: p.workspace,
        sub: p.sub,
        multi: true,
        binary_out: false,
        shell: st.cfg.shell.clone(),
        work_dir: st.cfg.default_workdir.clone(),
        replay_limit: st.cfg.pty_output_buffer as u64,
    };
    let r = ws
        .max_message_size(conn::MAX_WIRE_MESSAGE)
        .max_frame_size(conn::MAX_WIRE_MESSAGE)
        .on_upgrade(move |sock| conn::run(sock, c, None));
    with_cookie(r, p.set_cookie)
}

/// `GET /workspaces/{workspaceId}/tabs`: the workspace's tabs from the
/// store, `{"tabs": [...]}`. Admits a `node-management` bearer token for
/// this node, or a browser's terminal token or cookie for the workspace.
pub async fn tabs(
    State(st): State<Arc<NodeState>>,
    Path(workspace): Path<String>,
    headers: HeaderMap,
    Query(q): Query<TermQuery>,
) -> Response {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let auth = match bearer {
        Some(t) => st
            .validator
            .check(t, Audience::NodeManagement, None)
            .await
            .map(|_| None),
        None => principal(&st, &headers, q.token.as_deref(), Some(&workspace))
            .await
            .map(|p| p.set_cookie),
    };
    let cookie = match auth {
        Ok(c) => c,
        Err(r) => return r.into_response(),
    };
    match st.terminals.tabs().list(&workspace) {
        Ok(list) => {
            let tabs: Vec<serde_json::Value> = list
                .into_iter()
                .map(|t| {
                    let mut v = serde_json::json!({
                        "id": t.id, "workspaceId": t.workspace_id, "type": t.kind,
                        "label": t.label, "sortOrder": t.sort_order, "createdAt": t.created_at,
                    });
                    for (k, val) in [
                        ("agentId", t.agent_id),
                        ("acpSessionId", t.acp_session_id),
                        ("lastPrompt", t.last_prompt),
                    ] {
                        if let Some(val) = val {
                            v[k] = serde_json::json!(val);
                        }
                    }
                    v
                })
                .collect();
            with_cookie(
                axum::Json(serde_json::json!({ "tabs": tabs })).into_response(),
                cookie,
            )
        }
        Err(e) => Refusal::internal(e.to_string()).into_response(),
    }
}
