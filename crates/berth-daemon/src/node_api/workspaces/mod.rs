//! Container management (seed 004 "Container Manager"): `POST /workspaces`,
//! `DELETE /workspaces/{id}`, `GET /containers`, plus berth's `GET
//! /workspaces[/{id}]`; each needs a `node-management` token for this node.
//! Translation only: the workspace engine does the work, `callbacks` tells
//! the control plane.

pub mod callbacks;

use super::auth::Audience;
use super::refusal::Refusal;
use super::state::NodeState;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use berth_engine::workspaces::{CreateRequest, Workspace, WorkspaceError, Workspaces};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

/// What the routes share.
pub struct WsState {
    /// The node API's state (the token validator).
    pub node: Arc<NodeState>,
    /// The engine.
    pub engine: Arc<Workspaces>,
}

/// The routes over `st`.
pub fn router(st: Arc<WsState>) -> Router {
    Router::new()
        .route("/workspaces", get(list).post(create))
        .route("/workspaces/{workspace_id}", get(one).delete(delete))
        .route("/containers", get(containers))
        .with_state(st)
}

/// `POST /workspaces`' body (seed 004's agent: `workspaceId, repository,
/// branch, callbackToken, …`; `gitToken`/`githubToken` is the short-lived
/// clone and push token).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateBody {
    /// The workspace id.
    pub workspace_id: String,
    /// Git URL or local path.
    pub repository: String,
    /// Branch (default: the remote's default branch).
    #[serde(default)]
    pub branch: String,
    /// Token for this workspace's callbacks.
    #[serde(default)]
    pub callback_token: Option<String>,
    /// Short-lived git token.
    #[serde(default, alias = "githubToken")]
    pub git_token: Option<String>,
}

/// `DELETE`'s query.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteQuery {
    /// Keep the volume with the repository's files.
    #[serde(default)]
    pub keep_volume: bool,
}

async fn authorize(st: &WsState, headers: &HeaderMap) -> Result<(), Refusal> {
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| Refusal::unauthorized("no bearer token (node-management)"))?;
    st.node
        .validator
        .check(token, Audience::NodeManagement, None)
        .await
        .map(|_| ())
}

fn refuse(e: WorkspaceError) -> Response {
    match e {
        WorkspaceError::BadRequest(m) => Refusal::bad_request(m).into_response(),
        WorkspaceError::NotFound(id) => Refusal {
            status: StatusCode::NOT_FOUND,
            code: "not_found",
            reason: format!("no workspace {id:?}"),
        }
        .into_response(),
        WorkspaceError::Docker(m) => Refusal {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "docker_unavailable",
            reason: m,
        }
        .into_response(),
        other => Refusal::internal(other.to_string()).into_response(),
    }
}

/// A workspace as JSON: `{workspaceId, repository, branch, status, step?,
/// error?, container, image, remoteUser, workspaceFolder, ports:
/// [{containerPort, hostPort}], unsupported: [...], createdAt, updatedAt}`.
pub fn to_json(w: &Workspace) -> Value {
    json!({
        "workspaceId": w.id,
        "repository": w.repository,
        "branch": w.branch,
        "status": w.status.as_str(),
        "step": w.step,
        "error": w.error,
        "container": w.container,
        "image": w.image,
        "remoteUser": w.remote_user,
        "workspaceFolder": w.workspace_folder,
        "volume": w.volume(),
        "ports": w.ports.iter().map(|p| json!({"containerPort": p.container_port, "hostPort": p.host_port})).collect::<Vec<_>>(),
        "unsupported": w.report,
        "createdAt": w.created_at,
        "updatedAt": w.updated_at,
    })
}

async fn create(
    State(st): State<Arc<WsState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(r) = authorize(&st, &headers).await {
        return r.into_response();
    }
    let b: CreateBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => {
            return Refusal::bad_request(format!(
                "the body must be JSON {{workspaceId, repository, branch?, callbackToken?, gitToken?}}: {e}"
            ))
            .into_response()
        }
    };
    let existed = st.engine.get(&b.workspace_id).is_ok();
    match st.engine.create(CreateRequest {
        workspace_id: b.workspace_id,
        repository: b.repository,
        branch: b.branch,
        callback_token: b.callback_token,
        git_token: b.git_token,
    }) {
        Ok(w) => {
            let code = if existed {
                StatusCode::OK
            } else {
                StatusCode::ACCEPTED
            };
            (
                code,
                Json(json!({"workspaceId": w.id, "status": w.status.as_str()})),
            )
                .into_response()
        }
        Err(e) => refuse(e),
    }
}

async fn delete(
    State(st): State<Arc<WsState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<DeleteQuery>,
) -> Response {
    if let Err(r) = authorize(&st, &headers).await {
        return r.into_response();
    }
    match st.engine.delete(&id, q.keep_volume).await {
        Ok(()) => Json(json!({"success": true})).into_response(),
        Err(e) => refuse(e),
    }
}

async fn list(State(st): State<Arc<WsState>>, headers: HeaderMap) -> Response {
    if let Err(r) = authorize(&st, &headers).await {
        return r.into_response();
    }
    match st.engine.list() {
        Ok(l) => {
            Json(json!({"workspaces": l.iter().map(to_json).collect::<Vec<_>>()})).into_response()
        }
        Err(e) => refuse(e),
    }
}

async fn one(
    State(st): State<Arc<WsState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = authorize(&st, &headers).await {
        return r.into_response();
    }
    match st.engine.get(&id) {
        Ok(w) => {
            let mut v = to_json(&w);
            v["log"] = json!(st.engine.log_tail(&id, 200));
            Json(v).into_response()
        }
        Err(e) => refuse(e),
    }
}

/// `GET /containers`: `{"containers": [{id, name, workspaceId, image,
/// state, status, created}]}`.
async fn containers(State(st): State<Arc<WsState>>, headers: HeaderMap) -> Response {
    if let Err(r) = authorize(&st, &headers).await {
        return r.into_response();
    }
    match st.engine.containers().await {
        Ok(l) => Json(json!({"containers": l.iter().map(|c| json!({
            "id": c.id, "name": c.name, "workspaceId": c.workspace_id, "image": c.image,
            "state": c.state, "status": c.status, "created": c.created,
        })).collect::<Vec<_>>()}))
        .into_response(),
        Err(e) => refuse(e),
    }
}

/// Wires the engine into a node API: the routes, workspace terminals in
/// their containers, and the callback queue fed by `events`.
pub fn attach(
    node: Arc<NodeState>,
    engine: Arc<Workspaces>,
    events: tokio::sync::mpsc::UnboundedReceiver<berth_engine::workspaces::Event>,
) -> Router {
    let e = engine.clone();
    node.terminals.set_launcher(Arc::new(move |ws: &str| {
        e.terminal(ws)
            .map(|r| r.map(|l| (l.argv, l.work_dir, l.shell)))
    }));
    callbacks::spawn(
        callbacks::Target {
            base: node.cfg.control_plane_url.clone(),
            token: node.cfg.callback_token.clone(),
        },
        events,
    );
    router(Arc::new(WsState { node, engine }))
}
