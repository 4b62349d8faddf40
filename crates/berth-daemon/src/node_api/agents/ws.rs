//! `WebSocket /agent/ws?sessionId=&idempotencyKey=&worktree=` (seed 004
//! "Agent Sessions"): one viewer of an agent session. Text frames carry
//! either a control message (`{"type": ...}`) or an ACP JSON-RPC message
//! passed between the browser and the agent. On connect: `session_state`,
//! the replay, `session_replay_complete`, then live traffic.

use super::super::refusal::Refusal;
use super::super::state::NodeState;
use super::super::terminal::{conn, principal, TermQuery};
use super::{refusal, view_json};
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use berth_engine::agents::{AgentSession, Event, NewSession, Out};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

/// Largest message accepted from a browser (bytes): a larger one closes
/// the connection with 1009 ("message too big") and a reason naming both
/// sizes (documented in docs/node-api.md "Agent sessions").
pub const MAX_MESSAGE: usize = 16 << 20;
/// Largest message the WebSocket layer reads at all (set at the upgrade):
/// messages between [`MAX_MESSAGE`] and this are read whole and refused by
/// the connection, which then closes cleanly; larger ones are cut off by
/// the layer mid-frame (still with a 1009 close, best effort).
pub const MAX_WIRE_MESSAGE: usize = 20 << 20;

/// Query of `/agent/ws` (besides the token parameters of the terminals).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentQuery {
    /// Join (or create with this id) session `sessionId`.
    pub session_id: Option<String>,
    /// Join the session made with this key, or make one with it.
    pub idempotency_key: Option<String>,
    /// Working directory of a new session (absolute, existing).
    pub worktree: Option<String>,
}

/// `GET /agent/ws`: authenticated like the terminals (`?token=` of
/// audience `workspace-terminal`, or the workspace's cookie).
pub async fn route(
    State(st): State<Arc<NodeState>>,
    headers: HeaderMap,
    Query(t): Query<TermQuery>,
    Query(q): Query<AgentQuery>,
    ws: WebSocketUpgrade,
) -> Response {
    let workspace = t.workspace.clone().or(t.workspace_id.clone());
    let p = match principal(&st, &headers, t.token.as_deref(), workspace.as_deref()).await {
        Ok(p) => p,
        Err(r) => return r.into_response(),
    };
    let s = match st.agents.create(NewSession {
        ephemeral: q.session_id.is_none(),
        id: q.session_id,
        workspace: p.workspace.clone(),
        cwd: q.worktree.map(Into::into),
        mcp_servers: Value::Null,
        idempotency_key: q.idempotency_key,
    }) {
        Ok(s) => s,
        Err(e) => return refusal(e).into_response(),
    };
    let mut r = ws
        .max_message_size(MAX_WIRE_MESSAGE)
        .max_frame_size(MAX_WIRE_MESSAGE)
        .on_upgrade(move |sock| run(sock, s));
    if let Some(c) = p.set_cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        r.headers_mut().append(header::SET_COOKIE, c);
    }
    r
}

/// A gateway event as the text frame a viewer gets.
pub fn render(seq: u64, ev: &Event) -> String {
    let v = match ev {
        Event::Acp(line) => return line.to_string(),
        Event::Status {
            status,
            agent_type,
            error,
        } => {
            let mut v = json!({"type": "agent_status", "status": status, "agentType": agent_type});
            if let Some(e) = error {
                v["error"] = json!(e);
            }
            v
        }
        Event::Prompting => json!({"type": "session_prompting"}),
        Event::PromptDone { stop_reason, error } => {
            let mut v = json!({"type": "session_prompt_done"});
            if let Some(s) = stop_reason {
                v["stopReason"] = json!(s);
            }
            if let Some(e) = error {
                v["error"] = json!(e);
            }
            v
        }
        Event::Retry {
            attempt,
            delay_ms,
            error,
        } => {
            json!({"type": "session_prompt_retry", "attempt": attempt, "delayMs": delay_ms, "error": error})
        }
        Event::Crash {
            agent_type,
            exit_code,
            signal,
            stderr_tail,
        } => json!({"type": "agent_crash_report", "agentType": agent_type, "exitCode": exit_code,
                    "signal": signal, "stderrTail": stderr_tail}),
        Event::Notice {
            code,
            message,
            transcript,
        } => {
            let mut v = json!({"type": "session_notice", "code": code, "message": message});
            if let Some(t) = transcript {
                v["transcript"] = t.clone();
            }
            v
        }
    };
    let mut v = v;
    v["seq"] = json!(seq);
    v.to_string()
}

async fn run(sock: WebSocket, s: Arc<AgentSession>) {
    let (mut tx, mut rx) = sock.split();
    let viewer = s.attach();
    let id = viewer.id;
    let r = serve(&mut tx, &mut rx, &s, viewer).await;
    s.detach(id).await;
    let (code, reason) = match r {
        Ok(()) => (1000, String::new()),
        Err(why) => why,
    };
    let _ = tx
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        })))
        .await;
    if code == 1009 {
        conn::drain(&mut rx).await;
    }
}

/// Why a connection ends: a WebSocket close code and its reason.
type End = (u16, String);

type Tx = futures_util::stream::SplitSink<WebSocket, Message>;
type Rx = futures_util::stream::SplitStream<WebSocket>;

async fn send(tx: &mut Tx, text: String) -> Result<(), End> {
    tx.send(Message::Text(text.into()))
        .await
        .map_err(|e| (1008, format!("send: {e}")))
}

async fn serve(
    tx: &mut Tx,
    rx: &mut Rx,
    s: &Arc<AgentSession>,
    mut viewer: berth_engine::agents::Viewer,
) -> Result<(), End> {
    let v = s.view();
    let mut state = json!({"type": "session_state", "status": v.status,
                           "replayCount": viewer.replay.len(), "sessionId": v.id});
    let full = view_json(&v);
    for k in ["agentType", "acpSessionId", "lastPrompt"] {
        if let Some(x) = full.get(k) {
            state[k] = x.clone();
        }
    }
    send(tx, state.to_string()).await?;
    for (seq, ev) in std::mem::take(&mut viewer.replay) {
        send(tx, render(seq, &ev)).await?;
    }
    send(tx, json!({"type": "session_replay_complete"}).to_string()).await?;
    loop {
        tokio::select! {
            out = viewer.rx.recv() => match out {
                Some(Out::Event(seq, ev)) => send(tx, render(seq, &ev)).await?,
                Some(Out::Direct(line)) => send(tx, line.to_string()).await?,
                None => return Err((1008, "this viewer fell behind and was dropped".into())),
            },
            msg = rx.next() => match msg {
                Some(Err(e)) => return conn::too_big(e).map_or(Ok(()), |why| Err((1009, why))),
                Some(Ok(m)) if too_long(&m).is_some() => {
                    let len = too_long(&m).unwrap_or_default();
                    return Err((1009, format!("message too big: {len} bytes, the limit is {MAX_MESSAGE}")));
                }
                None | Some(Ok(Message::Close(_))) => return Ok(()),
                Some(Ok(Message::Text(t))) => control_or_acp(tx, s, viewer.id, t.as_str()).await?,
                Some(Ok(Message::Binary(b))) => {
                    let t = String::from_utf8_lossy(&b).into_owned();
                    control_or_acp(tx, s, viewer.id, &t).await?
                }
                Some(Ok(_)) => {}
            },
        }
    }
}

/// The length of a data message over [`MAX_MESSAGE`].
fn too_long(m: &Message) -> Option<usize> {
    let len = match m {
        Message::Text(t) => t.len(),
        Message::Binary(b) => b.len(),
        _ => 0,
    };
    (len > MAX_MESSAGE).then_some(len)
}

async fn control_or_acp(
    tx: &mut Tx,
    s: &Arc<AgentSession>,
    viewer: u64,
    text: &str,
) -> Result<(), End> {
    let v: Option<Value> = serde_json::from_str(text).ok();
    let kind = v
        .as_ref()
        .filter(|v| v.get("jsonrpc").is_none())
        .and_then(|v| v.get("type"))
        .and_then(Value::as_str);
    match kind {
        None => {
            s.from_viewer(viewer, text).await;
            Ok(())
        }
        Some("ping") => send(tx, json!({"type": "pong"}).to_string()).await,
        Some("select_agent") => {
            let ty = v
                .as_ref()
                .and_then(|v| v.get("agentType"))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            // A missing or unknown type is the asker's mistake: an error
            // to this viewer only, not broadcast nor kept in the replay.
            if let Err(e) = s.check_type(&ty) {
                let reason = match ty.is_empty() {
                    true => format!("select_agent needs an \"agentType\": {e}"),
                    false => e.to_string(),
                };
                return send(
                    tx,
                    json!({"type": "error", "error": "bad_request", "reason": reason}).to_string(),
                )
                .await;
            }
            let s = s.clone();
            // Started off the connection's loop; agent_status events tell
            // every viewer how it went.
            match s.view().agent_type.as_deref() == Some(ty.as_str()) && s.view().pid.is_some() {
                true => {
                    let v = s.view();
                    send(
                        tx,
                        json!({"type": "agent_status", "status": v.status, "agentType": ty})
                            .to_string(),
                    )
                    .await
                }
                false => {
                    tokio::spawn(async move {
                        let _ = s.start(&ty, false).await;
                    });
                    Ok(())
                }
            }
        }
        Some(other) => {
            let r = Refusal::bad_request(format!(
                "unknown control message type {other:?} (select_agent, ping; or send ACP JSON-RPC)"
            ));
            send(
                tx,
                json!({"type": "error", "error": r.code, "reason": r.reason}).to_string(),
            )
            .await
        }
    }
}
