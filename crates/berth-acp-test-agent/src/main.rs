//! `berth-acp-test-agent`: an ACP agent (Agent Client Protocol v1 over
//! stdio) built on the official Rust SDK's agent side, for berth's gateway
//! tests and benchmark (issue 15). What a prompt does is chosen by its
//! text (the first word is the behaviour, the rest its argument):
//!
//! - `stream N`: N `agent_message_chunk` updates `chunk i\n`, then
//!   `end_turn`.
//! - `stamp N`: N chunks `t=NANOS` (the wall clock when sent, in
//!   nanoseconds since the epoch), 1 ms apart: the benchmark's latency
//!   probe.
//! - `fail-transient N`: the first N attempts of this prompt text fail
//!   with JSON-RPC error -32603 "rate limit exceeded (429)"; the next one
//!   answers `transient ok after N` and ends the turn.
//! - `fail-permanent`: fails with -32602 "invalid prompt" (not transient).
//! - `crash`: writes `test agent: crashing on request` to stderr and exits
//!   with status 3 without answering.
//! - `permission`: asks the client `session/request_permission` (options
//!   `allow` and `reject`) and reports `permission: <option id>` or
//!   `permission: cancelled`.
//! - `fs PATH`: reads PATH with `fs/read_text_file`, writes it back
//!   upper-cased to `PATH.out` with `fs/write_text_file`, reports
//!   `fs: read N bytes` or the client's error.
//! - `terminal CMD...`: `terminal/create` (`sh -c CMD`), `wait_for_exit`,
//!   `terminal/output`, `terminal/release`; reports the output and exit
//!   code.
//! - `wait`: streams `waiting` and answers only when `session/cancel`
//!   arrives, with stop reason `cancelled`.
//! - anything else: echoes `echo: TEXT`.
//!
//! `--load-session` advertises `loadSession`; a `session/load` then sends
//! one `agent_message_chunk` `loaded session ID` before answering.

use agent_client_protocol::v1::schema::{
    AgentCapabilities, CancelNotification, ContentBlock, ContentChunk, CreateTerminalRequest,
    InitializeRequest, InitializeResponse, LoadSessionRequest, LoadSessionResponse,
    NewSessionRequest, NewSessionResponse, PermissionOption, PermissionOptionKind, PromptRequest,
    PromptResponse, ReadTextFileRequest, ReleaseTerminalRequest, RequestPermissionOutcome,
    RequestPermissionRequest, SessionNotification, SessionUpdate, StopReason,
    TerminalOutputRequest, TextContent, ToolCallUpdate, ToolCallUpdateFields,
    WaitForTerminalExitRequest, WriteTextFileRequest,
};
use agent_client_protocol::v1::ConnectionTo;
use agent_client_protocol::{Agent, Client, Error, Stdio};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// Shared between handlers: failures seen per prompt text, the cancel
/// signal, and the session id counter.
#[derive(Default)]
struct State {
    failures: Mutex<HashMap<String, u32>>,
    cancelled: Notify,
    next_session: AtomicU64,
}

fn text(s: impl Into<String>) -> ContentBlock {
    ContentBlock::Text(TextContent::new(s.into()))
}

fn say(
    cx: &ConnectionTo<Client>,
    session: &agent_client_protocol::v1::schema::SessionId,
    s: impl Into<String>,
) -> Result<(), Error> {
    cx.send_notification(SessionNotification::new(
        session.clone(),
        SessionUpdate::AgentMessageChunk(ContentChunk::new(text(s))),
    ))
}

fn prompt_text(p: &PromptRequest) -> String {
    p.prompt
        .iter()
        .filter_map(|b| match b {
            ContentBlock::Text(t) => Some(t.text.as_str()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("")
}

/// Runs one prompt turn; `Ok(stop)` ends it, `Err` is the JSON-RPC error
/// the prompt answers with.
async fn turn(
    st: &State,
    cx: &ConnectionTo<Client>,
    req: &PromptRequest,
) -> Result<StopReason, Error> {
    let sid = &req.session_id;
    let full = prompt_text(req);
    let (verb, arg) = full
        .trim()
        .split_once(' ')
        .map(|(a, b)| (a.to_string(), b.trim().to_string()))
        .unwrap_or((full.trim().to_string(), String::new()));
    match verb.as_str() {
        "stream" => {
            let n: u64 = arg.parse().unwrap_or(10);
            for i in 0..n {
                say(cx, sid, format!("chunk {i}\n"))?;
            }
        }
        "stamp" => {
            let n: u64 = arg.parse().unwrap_or(10);
            for _ in 0..n {
                let t = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or(0);
                say(cx, sid, format!("t={t}"))?;
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
        }
        "fail-transient" => {
            let n: u32 = arg.parse().unwrap_or(1);
            let seen = {
                let mut f = st.failures.lock().unwrap_or_else(|p| p.into_inner());
                let e = f.entry(full.clone()).or_insert(0);
                *e += 1;
                *e
            };
            if seen <= n {
                return Err(Error::new(-32603, "rate limit exceeded (429), try again"));
            }
            say(cx, sid, format!("transient ok after {n}"))?;
        }
        "fail-permanent" => return Err(Error::new(-32602, "invalid prompt")),
        "crash" => {
            eprintln!("test agent: crashing on request");
            std::process::exit(3);
        }
        "permission" => {
            let r = cx
                .send_request(RequestPermissionRequest::new(
                    sid.clone(),
                    ToolCallUpdate::new(
                        "call-1",
                        ToolCallUpdateFields::new().title("write a file"),
                    ),
                    vec![
                        PermissionOption::new("allow", "Allow", PermissionOptionKind::AllowOnce),
                        PermissionOption::new("reject", "Reject", PermissionOptionKind::RejectOnce),
                    ],
                ))
                .block_task()
                .await?;
            let what = match r.outcome {
                RequestPermissionOutcome::Selected(s) => s.option_id.0.to_string(),
                _ => "cancelled".to_string(),
            };
            say(cx, sid, format!("permission: {what}"))?;
        }
        "fs" => {
            let r = cx
                .send_request(ReadTextFileRequest::new(sid.clone(), arg.clone()))
                .block_task()
                .await;
            match r {
                Ok(file) => {
                    let out = format!("{arg}.out");
                    cx.send_request(WriteTextFileRequest::new(
                        sid.clone(),
                        out,
                        file.content.to_uppercase(),
                    ))
                    .block_task()
                    .await?;
                    say(cx, sid, format!("fs: read {} bytes", file.content.len()))?;
                }
                Err(e) => say(cx, sid, format!("fs error: {}", e.message))?,
            }
        }
        "terminal" => {
            let t = cx
                .send_request(
                    CreateTerminalRequest::new(sid.clone(), "sh").args(vec!["-c".into(), arg]),
                )
                .block_task()
                .await?;
            let id = t.terminal_id;
            let exit = cx
                .send_request(WaitForTerminalExitRequest::new(sid.clone(), id.clone()))
                .block_task()
                .await?;
            let out = cx
                .send_request(TerminalOutputRequest::new(sid.clone(), id.clone()))
                .block_task()
                .await?;
            cx.send_request(ReleaseTerminalRequest::new(sid.clone(), id))
                .block_task()
                .await?;
            say(
                cx,
                sid,
                format!(
                    "terminal: exit {} output {:?}",
                    exit.exit_status.exit_code.map_or(-1, i64::from),
                    out.output
                ),
            )?;
        }
        "wait" => {
            say(cx, sid, "waiting")?;
            st.cancelled.notified().await;
            return Ok(StopReason::Cancelled);
        }
        _ => say(cx, sid, format!("echo: {full}"))?,
    }
    Ok(StopReason::EndTurn)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let load = std::env::args().any(|a| a == "--load-session");
    let st = Arc::new(State::default());
    let (s1, s2, s3) = (st.clone(), st.clone(), st.clone());
    Agent
        .v1()
        .name("berth-acp-test-agent")
        .on_receive_request(
            async move |init: InitializeRequest, responder, _cx| {
                responder.respond(
                    InitializeResponse::new(init.protocol_version)
                        .agent_capabilities(AgentCapabilities::new().load_session(load)),
                )
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |_req: NewSessionRequest, responder, _cx| {
                let n = s1.next_session.fetch_add(1, Ordering::SeqCst);
                responder.respond(NewSessionResponse::new(format!(
                    "test-{}-{n}",
                    std::process::id()
                )))
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |req: LoadSessionRequest, responder, cx: ConnectionTo<Client>| {
                say(
                    &cx,
                    &req.session_id,
                    format!("loaded session {}", req.session_id.0),
                )?;
                responder.respond(LoadSessionResponse::new())
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |req: PromptRequest, responder, cx: ConnectionTo<Client>| {
                let st = s2.clone();
                let cx2 = cx.clone();
                cx.spawn(async move {
                    match turn(&st, &cx2, &req).await {
                        Ok(stop) => responder.respond(PromptResponse::new(stop)),
                        Err(e) => responder.respond_with_error(e),
                    }
                })
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_notification(
            async move |_n: CancelNotification, _cx| {
                s3.cancelled.notify_waiters();
                Ok(())
            },
            agent_client_protocol::on_receive_notification!(),
        )
        .connect_to(Stdio::new())
        .await
}
