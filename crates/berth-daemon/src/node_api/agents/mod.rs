//! Agent sessions on the node API (seed 004 "Agent Sessions"; issue 15):
//! `WebSocket /agent/ws` (`ws.rs`) and the `node-management`
//! `/workspaces/{workspaceId}/agent-sessions/*` endpoints here. Both only
//! translate onto `berth_engine::agents`. Shapes: docs/node-api.md
//! "Agent sessions".

pub mod ws;

use super::auth::Audience;
use super::config::NodeApiConfig;
use super::refusal::Refusal;
use super::state::NodeState;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use berth_engine::agents::{
    AgentError, AgentSettings, AgentTypes, Agents, NewSession, SessionView,
};
use berth_engine::sessions::Sessions;
use berth_engine::tabs::Tabs;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

/// The agent types: the built-ins, then the agent types file
/// (`agents.toml` in berth's state directory, `$XDG_STATE_HOME/berth/`
/// when set: `berth_os::dirs::state_dir`), then `BERTH_ACP_AGENT_*` of the
/// environment. A bad file is logged as an error naming its path and line
/// and left out (the daemon serves with the built-ins and the
/// environment); a bad variable fails the start, naming it.
pub fn agent_types(state_dir: &std::path::Path) -> Result<AgentTypes, String> {
    let path = state_dir.join(berth_engine::agents::types::FILE_NAME);
    let mut types = AgentTypes::built_in();
    match std::fs::read_to_string(&path) {
        Ok(text) => match types.clone().with_file(&path, &text) {
            Ok(t) => types = t,
            Err(e) => tracing::error!("agent types file not applied: {e}"),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::error!(
            "agent types file not applied: cannot read {}: {e}",
            path.display()
        ),
    }
    types.with_env(std::env::vars()).map_err(|e| e.to_string())
}

/// Runs each workspace's agents in its container (`docker exec -i` as
/// the remote user, in the session's directory); a workspace id the
/// engine does not know runs on the host with `BERTH_ACP_HOST_WORKSPACES=1`,
/// else is refused.
pub fn place_in(st: &NodeState, engine: Arc<berth_engine::workspaces::Workspaces>) {
    use berth_engine::agents::place::Placement;
    let host = st.cfg.acp_host_workspaces;
    st.agents.set_placer(Arc::new(
        move |ws: &str, workdir: Option<&str>| match engine.exec_prefix(ws, workdir) {
            Some(Ok((prefix, folder))) => Placement::Container { prefix, folder },
            Some(Err(why)) => Placement::NotReady(why),
            None if host => Placement::Host,
            None => Placement::Missing,
        },
    ));
}

/// The agent table for these settings: the ACP_* values, the agent types
/// of [`agent_types`].
pub fn open(
    cfg: &NodeApiConfig,
    sessions: Arc<Sessions>,
    tabs: Arc<Tabs>,
) -> Result<Arc<Agents>, String> {
    let settings = AgentSettings {
        max_retries: cfg.acp_prompt_retry_max_retries,
        initial_backoff: cfg.acp_prompt_retry_initial_backoff,
        max_backoff: cfg.acp_prompt_retry_max_backoff,
        serialize_timeout: cfg.acp_notif_serialize_timeout,
        replay_cap: cfg.acp_replay_buffer,
        viewer_queue: cfg.acp_viewer_queue.max(1),
        host_cwd: cfg.default_workdir.clone().into(),
        idle_timeout: cfg.acp_idle_session_timeout,
        ..AgentSettings::default()
    };
    let types = agent_types(&berth_os::dirs::state_dir())?;
    let store = tabs.store().clone();
    Agents::open(settings, types, store, sessions, tabs)
        .map(Arc::new)
        .map_err(|e| format!("agent sessions: {e}"))
}

/// The routes of this module.
pub fn routes() -> Router<Arc<NodeState>> {
    Router::new()
        .route("/agent/ws", get(ws::route))
        .route(
            "/workspaces/{workspace_id}/agent-sessions",
            get(list).post(create),
        )
        .route(
            "/workspaces/{workspace_id}/agent-sessions/{id}",
            get(get_one),
        )
        .route(
            "/workspaces/{workspace_id}/agent-sessions/{id}/{action}",
            post(action),
        )
}

/// An engine error as a refusal: bad input 400, unknown session 404, a
/// session not in a state for it 409, the agent failing 502.
pub fn refusal(e: AgentError) -> Refusal {
    let (status, code) = match &e {
        AgentError::UnknownType { .. } | AgentError::Invalid(_) => {
            (StatusCode::BAD_REQUEST, "bad_request")
        }
        AgentError::NotFound(_) | AgentError::NoWorkspace(_) => {
            (StatusCode::NOT_FOUND, "not_found")
        }
        AgentError::NotRunning(_) | AgentError::Busy(_) => (StatusCode::CONFLICT, "conflict"),
        AgentError::Spawn(_) | AgentError::Handshake(_) | AgentError::Rpc(_) => {
            (StatusCode::BAD_GATEWAY, "agent_failed")
        }
        AgentError::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
    };
    Refusal {
        status,
        code,
        reason: e.to_string(),
    }
}

/// A session as JSON (camelCase, absent fields left out).
pub fn view_json(v: &SessionView) -> Value {
    let mut o = json!({
        "id": v.id, "workspaceId": v.workspace_id, "status": v.status, "cwd": v.cwd,
        "createdAt": v.created_at, "viewers": v.viewers, "replayCount": v.replay_count,
        "transcriptLength": v.transcript_len,
    });
    for (k, val) in [
        ("agentType", v.agent_type.clone().map(Value::from)),
        ("error", v.error.clone().map(Value::from)),
        ("acpSessionId", v.acp_session_id.clone().map(Value::from)),
        ("protocolVersion", v.protocol_version.clone()),
        ("agentCapabilities", v.agent_capabilities.clone()),
        ("lastPrompt", v.last_prompt.clone().map(Value::from)),
        (
            "lastStopReason",
            v.last_stop_reason.clone().map(Value::from),
        ),
        ("idempotencyKey", v.idempotency_key.clone().map(Value::from)),
        ("pid", v.pid.map(Value::from)),
    ] {
        if let Some(val) = val {
            o[k] = val;
        }
    }
    o
}

async fn manage(st: &NodeState, headers: &HeaderMap) -> Result<(), Refusal> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| Refusal::unauthorized("no bearer token (node-management)"))?;
    st.validator
        .check(token, Audience::NodeManagement, None)
        .await
        .map(|_| ())
}

/// Body of `POST /workspaces/{id}/agent-sessions`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateBody {
    /// The agent type (`claude-code`, ... or a configured one).
    pub agent_type: String,
    /// Working directory (absolute; on the host existing, in a container
    /// within the workspace folder); default: the workspace folder in a
    /// container, the node's default working directory on the host.
    pub cwd: Option<String>,
    /// ACP `McpServer` objects.
    #[serde(default)]
    pub mcp_servers: Option<Value>,
    /// berth's id to use (random if absent).
    pub session_id: Option<String>,
    /// Returns the session made with the same key instead of a second one.
    pub idempotency_key: Option<String>,
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> Result<T, Refusal> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| Refusal::bad_request(format!("{what}: {e}")))
}

async fn create(
    State(st): State<Arc<NodeState>>,
    Path(workspace): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let r = async {
        manage(&st, &headers).await?;
        let b: CreateBody = parse(&body, "agent session")?;
        st.agents.types().command(&b.agent_type).map_err(refusal)?;
        let (s, created) = st
            .agents
            .create_or_join(NewSession {
                id: b.session_id,
                workspace,
                cwd: b.cwd.clone().map(Into::into),
                mcp_servers: b.mcp_servers.unwrap_or(Value::Null),
                idempotency_key: b.idempotency_key,
                ephemeral: false,
            })
            .map_err(refusal)?;
        if !created {
            differs(&s.view(), &b.agent_type, b.cwd.as_deref())?;
        }
        if s.view().pid.is_none() {
            s.start(&b.agent_type, false).await.map_err(refusal)?;
        }
        let status = match created {
            true => StatusCode::CREATED,
            false => StatusCode::OK,
        };
        Ok::<_, Refusal>((status, Json(view_json(&s.view()))).into_response())
    }
    .await;
    r.unwrap_or_else(IntoResponse::into_response)
}

/// A 409 naming what an idempotent create asked for that the existing
/// session `v` (same id or key) does not have: another agent type or cwd.
fn differs(v: &SessionView, agent_type: &str, cwd: Option<&str>) -> Result<(), Refusal> {
    let mut diff = Vec::new();
    if let Some(t) = v.agent_type.as_deref().filter(|t| *t != agent_type) {
        diff.push(format!("agentType {agent_type:?} (it runs {t:?})"));
    }
    if let Some(c) = cwd.filter(|c| *c != v.cwd) {
        diff.push(format!("cwd {c:?} (its cwd is {:?})", v.cwd));
    }
    match diff.is_empty() {
        true => Ok(()),
        false => Err(Refusal {
            status: StatusCode::CONFLICT,
            code: "conflict",
            reason: format!(
                "agent session {:?} already exists with the same id or idempotency key but another {}",
                v.id,
                diff.join(" and ")
            ),
        }),
    }
}

async fn list(
    State(st): State<Arc<NodeState>>,
    Path(workspace): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = manage(&st, &headers).await {
        return r.into_response();
    }
    let all: Vec<Value> = st.agents.list(&workspace).iter().map(view_json).collect();
    Json(json!({ "sessions": all })).into_response()
}

async fn get_one(
    State(st): State<Arc<NodeState>>,
    Path((workspace, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = manage(&st, &headers).await {
        return r.into_response();
    }
    match st.agents.get(&workspace, &id) {
        Ok(s) => {
            let mut v = view_json(&s.view());
            v["transcript"] = Value::Array(s.transcript());
            Json(v).into_response()
        }
        Err(e) => refusal(e).into_response(),
    }
}

/// Body of `POST .../prompt`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromptBody {
    /// Text, or an array of ACP content blocks.
    pub prompt: Value,
}

/// `?wait=true` on `.../prompt`.
#[derive(Debug, Default, Deserialize)]
pub struct WaitQuery {
    /// Answer when the turn ends instead of at once.
    pub wait: Option<bool>,
}

async fn action(
    State(st): State<Arc<NodeState>>,
    Path((workspace, id, action)): Path<(String, String, String)>,
    Query(q): Query<WaitQuery>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let r = async {
        manage(&st, &headers).await?;
        let s = st.agents.get(&workspace, &id).map_err(refusal)?;
        match action.as_str() {
            "prompt" => {
                let b: PromptBody = parse(&body, "prompt")?;
                let blocks = match b.prompt {
                    Value::String(t) => json!([{"type": "text", "text": t}]),
                    v @ Value::Array(_) => v,
                    _ => {
                        return Err(Refusal::bad_request(
                            "prompt: a string or an array of ACP content blocks",
                        ))
                    }
                };
                if q.wait.unwrap_or(false) {
                    let stop = s.prompt(blocks, None).await.map_err(refusal)?;
                    return Ok(
                        Json(json!({"stopReason": stop, "session": view_json(&s.view())}))
                            .into_response(),
                    );
                }
                let v = s.view();
                if v.status != "ready" {
                    return Err(refusal(AgentError::NotRunning(format!(
                        "the session is {}, not ready",
                        v.status
                    ))));
                }
                let s2 = s.clone();
                tokio::spawn(async move {
                    let _ = s2.prompt(blocks, None).await;
                });
                return Ok((
                    StatusCode::ACCEPTED,
                    Json(json!({"status": "prompting", "id": id})),
                )
                    .into_response());
            }
            "cancel" => s.cancel().await.map_err(refusal),
            "stop" => s.halt("stopped").await.map_err(refusal),
            "suspend" => s.halt("suspended").await.map_err(refusal),
            "resume" => s.resume().await.map_err(refusal),
            other => Err(Refusal {
                status: StatusCode::NOT_FOUND,
                code: "not_found",
                reason: format!("no action {other:?}: use prompt, cancel, stop, suspend or resume"),
            }),
        }
        .map(|()| Json(view_json(&s.view())).into_response())
    }
    .await;
    r.unwrap_or_else(IntoResponse::into_response)
}
