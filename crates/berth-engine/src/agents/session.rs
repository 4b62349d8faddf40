//! One agent session: the agent process, the ACP handshake and session,
//! prompt turns with retries, cancel, stop, suspend and resume, the
//! client-side methods the agent calls, and the ordered delivery of its
//! messages to viewers (seed 004 "ACP Gateway"; issue 15).
//!
//! Ordering: one reader task takes the agent's stdout line by line; every
//! message but the requests berth answers itself goes, in arrival order,
//! through one queue to one delivery task (the seed's orderedPipe), which
//! numbers it in the [`Hub`] and resolves answers to berth's requests, so
//! a prompt's `session_prompt_done` always follows its last update. The
//! requests berth answers (`fs/*`, `terminal/*`) run concurrently, each in
//! its own task. Each delivery step is bounded by
//! `ACP_NOTIF_SERIALIZE_TIMEOUT`; an overrun is reported as a
//! `serialize_timeout` notice and the queue goes on.

use super::fs as afs;
use super::hub::{Event, Hub, Viewer};
use super::persist::{self, Row};
use super::retry;
use super::rpc::{AgentProc, CallError, Lines, RpcError, Waiter};
use super::transcript;
use super::{AgentError, Ctx};
use crate::sessions::{PipeSpawn, Session};
use agent_client_protocol::schema::ProtocolVersion;
use agent_client_protocol::v1::schema::{
    CancelNotification, ClientCapabilities, CreateTerminalRequest, CreateTerminalResponse,
    FileSystemCapabilities, Implementation, InitializeRequest, InitializeResponse,
    KillTerminalRequest, LoadSessionRequest, McpServer, NewSessionRequest, NewSessionResponse,
    ReadTextFileRequest, ReadTextFileResponse, ReleaseTerminalRequest, TerminalExitStatus,
    TerminalOutputRequest, TerminalOutputResponse, WaitForTerminalExitRequest,
    WaitForTerminalExitResponse, WriteTextFileRequest,
};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::{mpsc, watch};

/// A terminal the agent created: a pipe session of the session engine.
struct Term {
    session: Arc<Session>,
    limit: Option<u64>,
}

struct St {
    agent_type: Option<String>,
    cwd: PathBuf,
    mcp_servers: Value,
    status: String,
    error: Option<String>,
    acp_session_id: Option<String>,
    proc: Option<Arc<AgentProc>>,
    generation: u64,
    protocol_version: Option<Value>,
    agent_capabilities: Option<Value>,
    init_result: Option<Value>,
    transcript: Vec<Value>,
    assistant: String,
    last_prompt: Option<String>,
    last_stop_reason: Option<String>,
    idempotency_key: Option<String>,
    permissions: HashMap<String, Value>,
    terminals: HashMap<String, Term>,
    /// The agent runs in a workspace container (no `fs/*` then).
    in_container: bool,
    /// The last viewer or prompt activity (for the idle cleanup).
    last_active: std::time::Instant,
}

/// A snapshot of a session for listings and `session_state`.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionView {
    /// berth's id.
    pub id: String,
    /// The workspace.
    pub workspace_id: String,
    /// The agent type, once selected.
    pub agent_type: Option<String>,
    /// `idle`, `starting`, `ready`, `prompting`, `suspended`, `stopped`,
    /// `crashed`, `error`.
    pub status: String,
    /// Why it is in `error` or `crashed`.
    pub error: Option<String>,
    /// The agent's session id.
    pub acp_session_id: Option<String>,
    /// Working directory and workspace root.
    pub cwd: String,
    /// The negotiated ACP protocol version.
    pub protocol_version: Option<Value>,
    /// The agent's capabilities as it answered `initialize`.
    pub agent_capabilities: Option<Value>,
    /// The last prompt's text.
    pub last_prompt: Option<String>,
    /// How the last prompt ended.
    pub last_stop_reason: Option<String>,
    /// The client's idempotency key.
    pub idempotency_key: Option<String>,
    /// RFC 3339.
    pub created_at: String,
    /// Attached viewers.
    pub viewers: usize,
    /// Events a new viewer would be replayed.
    pub replay_count: usize,
    /// Entries in the transcript.
    pub transcript_len: usize,
    /// The agent process id while it runs.
    pub pid: Option<u32>,
}

/// One agent session.
pub struct AgentSession {
    /// berth's id (also the chat tab's id).
    pub id: String,
    /// The workspace it belongs to.
    pub workspace: String,
    created_at: String,
    ctx: Arc<Ctx>,
    hub: Hub,
    st: Mutex<St>,
    turn: tokio::sync::Mutex<()>,
    cancel: watch::Sender<u64>,
}

fn rpc_err(code: i64, message: impl Into<String>) -> RpcError {
    RpcError {
        code,
        message: message.into(),
        data: None,
    }
}

fn text_of(blocks: &Value) -> String {
    blocks
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|b| b["type"] == "text")
                .filter_map(|b| b["text"].as_str())
                .collect::<Vec<_>>()
                .join("")
        })
        .unwrap_or_default()
}

impl AgentSession {
    pub(super) fn new(
        ctx: Arc<Ctx>,
        id: String,
        workspace: String,
        cwd: PathBuf,
        mcp_servers: Value,
        idempotency_key: Option<String>,
    ) -> Arc<Self> {
        let hub = Hub::new(ctx.settings.replay_cap, ctx.settings.viewer_queue);
        Arc::new(Self {
            id,
            workspace,
            created_at: berth_os::time::iso8601(berth_os::proc::now_epoch()),
            hub,
            st: Mutex::new(St {
                agent_type: None,
                cwd,
                mcp_servers,
                status: "idle".into(),
                error: None,
                acp_session_id: None,
                proc: None,
                generation: 0,
                protocol_version: None,
                agent_capabilities: None,
                init_result: None,
                transcript: Vec::new(),
                assistant: String::new(),
                last_prompt: None,
                last_stop_reason: None,
                idempotency_key,
                permissions: HashMap::new(),
                terminals: HashMap::new(),
                in_container: false,
                last_active: std::time::Instant::now(),
            }),
            ctx,
            turn: tokio::sync::Mutex::new(()),
            cancel: watch::channel(0).0,
        })
    }

    pub(super) fn from_row(ctx: Arc<Ctx>, r: Row) -> Arc<Self> {
        let s = Self::new(
            ctx,
            r.id,
            r.workspace_id,
            PathBuf::from(r.cwd),
            serde_json::from_str(&r.mcp_servers).unwrap_or(json!([])),
            r.idempotency_key,
        );
        {
            let mut st = s.lock();
            st.agent_type = (!r.agent_type.is_empty()).then_some(r.agent_type);
            st.acp_session_id = r.acp_session_id;
            st.transcript = serde_json::from_str(&r.transcript).unwrap_or_default();
            transcript::trim(&mut st.transcript, transcript::TOTAL_MAX);
            st.last_prompt = r.last_prompt.map(|p| transcript::cap(&p).0);
            // The process did not survive the daemon: what ran is now
            // suspended (resumable); ended states stay.
            st.status = match r.status.as_str() {
                "stopped" | "crashed" | "error" | "idle" => r.status,
                _ => "suspended".into(),
            };
        }
        s
    }

    fn lock(&self) -> MutexGuard<'_, St> {
        self.st.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The session's state now.
    pub fn view(&self) -> SessionView {
        let st = self.lock();
        SessionView {
            id: self.id.clone(),
            workspace_id: self.workspace.clone(),
            agent_type: st.agent_type.clone(),
            status: st.status.clone(),
            error: st.error.clone(),
            acp_session_id: st.acp_session_id.clone(),
            cwd: st.cwd.display().to_string(),
            protocol_version: st.protocol_version.clone(),
            agent_capabilities: st.agent_capabilities.clone(),
            last_prompt: st.last_prompt.clone(),
            last_stop_reason: st.last_stop_reason.clone(),
            idempotency_key: st.idempotency_key.clone(),
            created_at: self.created_at.clone(),
            viewers: self.hub.viewers().len(),
            replay_count: self.hub.replay_len(),
            transcript_len: st.transcript.len(),
            pid: st.proc.as_ref().map(|p| p.pid()),
        }
    }

    /// `Ok` when `agent_type` is configured, else
    /// [`AgentError::UnknownType`] naming the configured types (checked
    /// before a `select_agent` is started, so only the asker is told).
    pub fn check_type(&self, agent_type: &str) -> Result<(), AgentError> {
        self.ctx.types.command(agent_type).map(|_| ())
    }

    /// The transcript: `[{role: "user"|"agent", text}]`.
    pub fn transcript(&self) -> Vec<Value> {
        self.lock().transcript.clone()
    }

    /// A new viewer: replay, then live events.
    pub fn attach(&self) -> Viewer {
        self.lock().last_active = std::time::Instant::now();
        self.hub.attach()
    }

    /// How long the session has had no viewer and no prompt running;
    /// `None` while it has a viewer or is starting or prompting.
    pub fn idle_for(&self) -> Option<std::time::Duration> {
        let st = self.lock();
        let busy = matches!(st.status.as_str(), "starting" | "prompting");
        (!busy && self.hub.viewers().is_empty()).then(|| st.last_active.elapsed())
    }

    /// Removes the session's row and chat tab from the store (after it
    /// was stopped and left the table).
    pub(super) async fn forget(&self) {
        let ctx = self.ctx.clone();
        let (id, ws) = (self.id.clone(), self.workspace.clone());
        let r = tokio::task::spawn_blocking(move || {
            persist::delete(&ctx.store, &id).map_err(|e| e.to_string())?;
            ctx.tabs
                .remove(&ws, &id)
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
        .await;
        if let Ok(Err(e)) | Err(e) = r.map_err(|e| e.to_string()) {
            tracing::warn!(session = %self.id, "agent session not removed from the store: {e}");
        }
    }

    /// Removes a viewer; permission requests nobody can answer any more
    /// are answered `cancelled`.
    pub async fn detach(&self, viewer: u64) {
        self.lock().last_active = std::time::Instant::now();
        self.hub.detach(viewer);
        if self.hub.viewers().is_empty() {
            self.cancel_permissions().await;
        }
    }

    fn set_status(&self, status: &str, error: Option<String>) {
        let agent_type = {
            let mut st = self.lock();
            st.status = status.to_string();
            st.error = error.clone();
            st.agent_type.clone()
        };
        self.hub.publish(Event::Status {
            status: status.to_string(),
            agent_type,
            error,
        });
    }

    /// Writes the session's row and its chat tab (errors are logged: the
    /// session goes on in memory).
    async fn persist(&self) {
        let (row, tab) = {
            let st = self.lock();
            let row = Row {
                id: self.id.clone(),
                workspace_id: self.workspace.clone(),
                agent_type: st.agent_type.clone().unwrap_or_default(),
                cwd: st.cwd.display().to_string(),
                mcp_servers: st.mcp_servers.to_string(),
                acp_session_id: st.acp_session_id.clone(),
                status: st.status.clone(),
                transcript: Value::Array(st.transcript.clone()).to_string(),
                last_prompt: st.last_prompt.clone(),
                idempotency_key: st.idempotency_key.clone(),
                created_at: self.created_at.clone(),
            };
            let tab = (st.status != "stopped").then(|| crate::tabs::Tab {
                id: self.id.clone(),
                workspace_id: self.workspace.clone(),
                kind: "chat".into(),
                label: st.agent_type.clone().unwrap_or_else(|| "agent".into()),
                agent_id: st.agent_type.clone(),
                sort_order: 0,
                created_at: self.created_at.clone(),
                acp_session_id: st.acp_session_id.clone(),
                last_prompt: st.last_prompt.clone(),
            });
            (row, tab)
        };
        let ctx = self.ctx.clone();
        let (id, ws) = (self.id.clone(), self.workspace.clone());
        let r = tokio::task::spawn_blocking(move || -> Result<(), String> {
            persist::save(&ctx.store, &row).map_err(|e| e.to_string())?;
            match tab {
                Some(t) => ctx.tabs.put(&t).map(|_| ()).map_err(|e| e.to_string()),
                None => ctx
                    .tabs
                    .remove(&ws, &id)
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
            }
        })
        .await;
        if let Ok(Err(e)) | Err(e) = r.map_err(|e| e.to_string()) {
            tracing::warn!(session = %self.id, "agent session not saved: {e}");
        }
    }

    /// Starts the agent of `agent_type` (stopping one that runs), runs
    /// `initialize`, then `session/new`, or with `resume` and a known ACP
    /// session id `session/load` when the agent advertises `loadSession`
    /// (else a new session, with the old transcript sent as a
    /// `resumed_new_session` notice).
    pub async fn start(self: &Arc<Self>, agent_type: &str, resume: bool) -> Result<(), AgentError> {
        // An unknown type is the asker's mistake: answered to the caller
        // only, neither broadcast nor replayed; the session is unchanged.
        let argv = self.ctx.types.command(agent_type)?;
        let (old, cwd, gen) = {
            let mut st = self.lock();
            if st.agent_type.as_deref() != Some(agent_type) {
                st.acp_session_id = None;
            }
            st.agent_type = Some(agent_type.to_string());
            st.generation += 1;
            (st.proc.take(), st.cwd.clone(), st.generation)
        };
        if let Some(p) = old {
            p.terminate(self.ctx.settings.stop_grace);
        }
        let mut prefix = self.ctx.settings.command_prefix.clone();
        let cwd_text = cwd.display().to_string();
        let (host_cwd, in_container) = match self.ctx.place(&self.workspace, Some(&cwd_text)) {
            super::place::Placement::Host => (cwd.clone(), false),
            super::place::Placement::Container { prefix: p, .. } => {
                prefix.extend(p);
                (std::env::temp_dir(), true)
            }
            super::place::Placement::NotReady(why) => {
                self.set_status("error", Some(why.clone()));
                return Err(AgentError::NotRunning(why));
            }
            super::place::Placement::Missing => {
                let e = AgentError::NoWorkspace(self.workspace.clone());
                self.set_status("error", Some(e.to_string()));
                return Err(e);
            }
        };
        self.lock().in_container = in_container;
        self.set_status("starting", None);
        let sp = match AgentProc::spawn(&prefix, &argv, &host_cwd) {
            Ok(sp) => sp,
            Err(e) => {
                self.set_status("error", Some(e.to_string()));
                self.persist().await;
                return Err(e);
            }
        };
        let proc = sp.proc.clone();
        self.lock().proc = Some(proc.clone());
        let (otx, orx) = mpsc::unbounded_channel();
        tokio::spawn(
            self.clone()
                .read_loop(proc.clone(), Lines::new(sp.stdout), otx),
        );
        tokio::spawn(self.clone().deliver_loop(proc.clone(), orx));
        tokio::spawn(self.clone().wait_loop(proc.clone(), sp.child, gen));
        match self.handshake(&proc, resume).await {
            Ok(()) => {
                self.set_status("ready", None);
                self.persist().await;
                Ok(())
            }
            Err(e) => {
                proc.terminate(self.ctx.settings.stop_grace);
                {
                    let mut st = self.lock();
                    if st.generation == gen {
                        st.proc = None;
                    }
                }
                self.set_status("error", Some(e.to_string()));
                self.persist().await;
                Err(e)
            }
        }
    }

    async fn handshake(&self, proc: &Arc<AgentProc>, resume: bool) -> Result<(), AgentError> {
        let hs = |what: &str, e: CallError| AgentError::Handshake(format!("{what}: {e}"));
        // An agent in a container reads its files itself: berth serves
        // `fs/*` from the host's files only.
        let host_files = !self.lock().in_container;
        let init = InitializeRequest::new(ProtocolVersion::V1)
            .client_capabilities(
                ClientCapabilities::new()
                    .fs(FileSystemCapabilities::new()
                        .read_text_file(host_files)
                        .write_text_file(host_files))
                    .terminal(true),
            )
            .client_info(Implementation::new("berth", env!("CARGO_PKG_VERSION")));
        let raw = proc
            .call("initialize", json!(init))
            .await
            .map_err(|e| hs("initialize", e))?;
        let ir: InitializeResponse = serde_json::from_value(raw.clone()).map_err(|e| {
            AgentError::Handshake(format!(
                "initialize: the agent's answer does not parse: {e}"
            ))
        })?;
        let load = ir.agent_capabilities.load_session;
        let (cwd, mcp, prior, transcript) = {
            let mut st = self.lock();
            st.protocol_version = Some(json!(ir.protocol_version));
            st.agent_capabilities = Some(json!(ir.agent_capabilities));
            st.init_result = Some(raw);
            (
                st.cwd.clone(),
                st.mcp_servers.clone(),
                st.acp_session_id.clone(),
                transcript::newest(&st.transcript, transcript::NOTICE_MAX),
            )
        };
        let servers: Vec<McpServer> = serde_json::from_value(mcp)
            .map_err(|e| AgentError::Invalid(format!("mcpServers: {e}")))?;
        if let (true, Some(sid)) = (resume, prior.clone()) {
            if load {
                let req = LoadSessionRequest::new(sid, cwd).mcp_servers(servers);
                proc.call("session/load", json!(req))
                    .await
                    .map_err(|e| hs("session/load", e))?;
                return Ok(());
            }
        }
        let req = NewSessionRequest::new(cwd).mcp_servers(servers);
        let raw = proc
            .call("session/new", json!(req))
            .await
            .map_err(|e| hs("session/new", e))?;
        let ns: NewSessionResponse = serde_json::from_value(raw).map_err(|e| {
            AgentError::Handshake(format!(
                "session/new: the agent's answer does not parse: {e}"
            ))
        })?;
        self.lock().acp_session_id = Some(ns.session_id.0.to_string());
        if resume && prior.is_some() {
            self.hub.publish(Event::Notice {
                code: "resumed_new_session".into(),
                message: format!(
                    "the agent does not support session/load: resumed as new ACP session {} (the previous session was {}); the transcript so far follows",
                    ns.session_id.0,
                    prior.unwrap_or_default()
                ),
                transcript: Some(Value::Array(transcript)),
            });
        }
        Ok(())
    }

    async fn read_loop(
        self: Arc<Self>,
        proc: Arc<AgentProc>,
        mut lines: Lines,
        ordered: mpsc::UnboundedSender<String>,
    ) {
        while let Some(line) = lines.next().await {
            let own = serde_json::from_str::<Value>(&line).ok().and_then(|v| {
                let m = v.get("method")?.as_str()?;
                let answered_here = m.starts_with("fs/") || m.starts_with("terminal/");
                (answered_here && v.get("id").is_some()).then_some(v)
            });
            match own {
                Some(v) => {
                    let (me, p) = (self.clone(), proc.clone());
                    tokio::spawn(async move {
                        let id = v["id"].clone();
                        let method = v["method"].as_str().unwrap_or("").to_string();
                        let params = v.get("params").cloned().unwrap_or(Value::Null);
                        let reply = match me.answer(&method, params).await {
                            Ok(r) => json!({"jsonrpc": "2.0", "id": id, "result": r}),
                            Err(e) => json!({"jsonrpc": "2.0", "id": id, "error": e.to_value()}),
                        };
                        let _ = p.send_line(reply.to_string()).await;
                    });
                }
                None => {
                    if ordered.send(line).is_err() {
                        break;
                    }
                }
            }
        }
    }

    async fn deliver_loop(
        self: Arc<Self>,
        proc: Arc<AgentProc>,
        mut rx: mpsc::UnboundedReceiver<String>,
    ) {
        let limit = self.ctx.settings.serialize_timeout;
        let mut n: u64 = 0;
        while let Some(line) = rx.recv().await {
            n += 1;
            if tokio::time::timeout(limit, self.deliver_one(&proc, line))
                .await
                .is_err()
            {
                tracing::warn!(session = %self.id, "agent message {n} took over {limit:?} to deliver");
                self.hub.publish(Event::Notice {
                    code: "serialize_timeout".into(),
                    message: format!(
                        "message {n} of the agent took longer than {} ms to deliver (ACP_NOTIF_SERIALIZE_TIMEOUT); delivery went on with the next",
                        limit.as_millis()
                    ),
                    transcript: None,
                });
            }
        }
    }

    async fn deliver_one(&self, proc: &Arc<AgentProc>, line: String) {
        let v: Value = match serde_json::from_str(&line) {
            Ok(v) => v,
            Err(e) => {
                self.hub.publish(Event::Notice {
                    code: "bad_agent_message".into(),
                    message: format!("the agent wrote a line that is not JSON ({e})"),
                    transcript: None,
                });
                return;
            }
        };
        let method = v.get("method").and_then(Value::as_str);
        match (method, v.get("id")) {
            (Some(_), Some(id)) => {
                // A request for the viewers (session/request_permission,
                // or any other the gateway does not answer itself).
                if self.hub.viewers().is_empty() {
                    let reply = if method == Some("session/request_permission") {
                        json!({"jsonrpc": "2.0", "id": id, "result": {"outcome": {"outcome": "cancelled"}}})
                    } else {
                        json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32601, "message": "no client is attached to answer this method"}})
                    };
                    let _ = proc.send_line(reply.to_string()).await;
                    return;
                }
                self.lock().permissions.insert(id.to_string(), id.clone());
                self.hub.publish(Event::Acp(line.into()));
            }
            (Some(_), None) => {
                if let Some(u) = v.pointer("/params/update") {
                    if u["sessionUpdate"] == "agent_message_chunk" {
                        if let Some(t) = u.pointer("/content/text").and_then(Value::as_str) {
                            // Past the entry cap the rest is cut anyway.
                            let mut st = self.lock();
                            if st.assistant.len() <= transcript::ENTRY_MAX {
                                st.assistant.push_str(t);
                            }
                        }
                    }
                }
                self.hub.publish(Event::Acp(line.into()));
            }
            (None, Some(id)) => match proc.take_waiter(id) {
                Some(Waiter::Gateway(tx)) => {
                    let r = match v.get("error") {
                        Some(e) => Err(RpcError::from_value(e)),
                        None => Ok(v.get("result").cloned().unwrap_or(Value::Null)),
                    };
                    let _ = tx.send(r);
                }
                Some(Waiter::Viewer(viewer, orig)) => {
                    let mut v = v;
                    v["id"] = orig;
                    self.hub.direct(viewer, v.to_string().into());
                }
                None => tracing::debug!(session = %self.id, "an answer to no request: {line}"),
            },
            (None, None) => {}
        }
    }

    async fn wait_loop(
        self: Arc<Self>,
        proc: Arc<AgentProc>,
        mut child: tokio::process::Child,
        gen: u64,
    ) {
        let status = child.wait().await;
        for (viewer, id) in proc.fail_all() {
            let e = json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32603, "message": "the agent process exited"}});
            self.hub.direct(viewer, e.to_string().into());
        }
        let agent_type = {
            let mut st = self.lock();
            if st.generation != gen {
                return;
            }
            st.proc = None;
            st.permissions.clear();
            st.agent_type.clone().unwrap_or_default()
        };
        if proc.expected_exit.load(Ordering::SeqCst) {
            return;
        }
        use std::os::unix::process::ExitStatusExt;
        let (code, signal) = match &status {
            Ok(s) => (s.code(), s.signal()),
            Err(_) => (None, None),
        };
        let what = match (code, signal) {
            (Some(c), _) => format!("the agent exited with status {c}"),
            (_, Some(s)) => format!("the agent was killed by signal {s}"),
            _ => "the agent ended (status unknown)".to_string(),
        };
        self.hub.publish(Event::Crash {
            agent_type,
            exit_code: code,
            signal,
            stderr_tail: proc.stderr_tail(),
        });
        self.set_status("crashed", Some(what));
        self.persist().await;
    }

    /// Runs one prompt turn with `blocks` (ACP content blocks); on a
    /// transient error it is sent again up to `ACP_PROMPT_RETRY_MAX_RETRIES`
    /// times with backoff; a cancel ends the wait. Returns the stop
    /// reason. `viewer` (viewer id, request id) gets the JSON-RPC answer.
    pub async fn prompt(
        self: &Arc<Self>,
        blocks: Value,
        viewer: Option<(u64, Value)>,
    ) -> Result<String, AgentError> {
        let r = self.prompt_turn(blocks).await;
        if let Some((v, id)) = viewer {
            let msg = match &r {
                Ok(stop) => json!({"jsonrpc": "2.0", "id": id, "result": {"stopReason": stop}}),
                Err(AgentError::Rpc(e)) => {
                    json!({"jsonrpc": "2.0", "id": id, "error": e.to_value()})
                }
                Err(e) => {
                    json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32603, "message": e.to_string()}})
                }
            };
            self.hub.direct(v, msg.to_string().into());
        }
        r
    }

    async fn prompt_turn(self: &Arc<Self>, blocks: Value) -> Result<String, AgentError> {
        if !blocks.is_array() {
            return Err(AgentError::Invalid(
                "prompt must be an array of ACP content blocks".into(),
            ));
        }
        let _turn = self.turn.try_lock().map_err(|_| {
            AgentError::Busy(
                "a prompt is already running in this session: wait or cancel it".into(),
            )
        })?;
        let text = text_of(&blocks);
        let (proc, sid) = {
            let mut st = self.lock();
            let (Some(p), Some(sid)) = (st.proc.clone(), st.acp_session_id.clone()) else {
                return Err(AgentError::NotRunning(format!(
                    "the session is {}: {}",
                    st.status,
                    if st.agent_type.is_none() {
                        "select an agent first"
                    } else {
                        "resume it first"
                    }
                )));
            };
            if st.status != "ready" {
                return Err(AgentError::NotRunning(format!(
                    "the session is {}, not ready",
                    st.status
                )));
            }
            st.status = "prompting".into();
            st.last_active = std::time::Instant::now();
            st.last_prompt = Some(transcript::cap(&text).0);
            transcript::push(&mut st.transcript, "user", &text);
            st.assistant.clear();
            (p, sid)
        };
        self.persist().await;
        self.hub.publish(Event::Prompting);
        let mut cancel = self.cancel.subscribe();
        cancel.mark_unchanged();
        let s = &self.ctx.settings;
        let params = json!({"sessionId": sid, "prompt": blocks});
        let mut retries = 0;
        let result: Result<String, AgentError> = loop {
            match proc.call("session/prompt", params.clone()).await {
                Ok(v) => {
                    break Ok(v["stopReason"].as_str().unwrap_or("end_turn").to_string());
                }
                Err(CallError::Rpc(e))
                    if retries < s.max_retries
                        && !cancel.has_changed().unwrap_or(true)
                        && retry::is_transient(&e.message, e.data.as_ref()) =>
                {
                    let delay = retry::backoff(retries, s.initial_backoff, s.max_backoff);
                    retries += 1;
                    self.hub.publish(Event::Retry {
                        attempt: retries,
                        delay_ms: delay.as_millis() as u64,
                        error: e.to_string(),
                    });
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => continue,
                        _ = cancel.changed() => break Ok("cancelled".into()),
                    }
                }
                Err(CallError::Rpc(e)) => break Err(AgentError::Rpc(e)),
                Err(CallError::Agent(e)) => break Err(e),
            }
        };
        let running = {
            let mut st = self.lock();
            let said = std::mem::take(&mut st.assistant);
            if !said.is_empty() {
                transcript::push(&mut st.transcript, "agent", &said);
            }
            st.last_stop_reason = result.as_ref().ok().cloned();
            st.last_active = std::time::Instant::now();
            let running = st.proc.as_ref().is_some_and(|p| Arc::ptr_eq(p, &proc));
            if running {
                st.status = "ready".into();
            }
            running
        };
        self.hub.publish(Event::PromptDone {
            stop_reason: result.as_ref().ok().cloned(),
            error: result.as_ref().err().map(|e| e.to_string()),
        });
        if running {
            self.set_status("ready", None);
        }
        self.persist().await;
        result
    }

    /// Cancels the running prompt: stops a retry wait, answers pending
    /// permission requests `cancelled`, sends `session/cancel`.
    pub async fn cancel(&self) -> Result<(), AgentError> {
        self.cancel.send_modify(|g| *g += 1);
        self.cancel_permissions().await;
        let (proc, sid) = {
            let st = self.lock();
            (st.proc.clone(), st.acp_session_id.clone())
        };
        if let (Some(p), Some(sid)) = (proc, sid) {
            p.notify("session/cancel", json!(CancelNotification::new(sid)))
                .await?;
        }
        Ok(())
    }

    async fn cancel_permissions(&self) {
        let (proc, ids) = {
            let mut st = self.lock();
            let ids: Vec<Value> = st.permissions.drain().map(|(_, v)| v).collect();
            (st.proc.clone(), ids)
        };
        if let Some(p) = proc {
            for id in ids {
                let r = json!({"jsonrpc": "2.0", "id": id, "result": {"outcome": {"outcome": "cancelled"}}});
                let _ = p.send_line(r.to_string()).await;
            }
        }
    }

    /// Stops the agent process on purpose and marks the session `status`
    /// (`stopped` or `suspended`); the ACP session id and transcript stay.
    pub async fn halt(&self, status: &str) -> Result<(), AgentError> {
        let _ = self.cancel().await;
        let (proc, terms) = {
            let mut st = self.lock();
            st.generation += 1;
            let terms: Vec<Arc<Session>> = st.terminals.drain().map(|(_, t)| t.session).collect();
            (st.proc.take(), terms)
        };
        if let Some(p) = proc {
            p.terminate(self.ctx.settings.stop_grace);
        }
        for t in terms {
            let _ = self.ctx.sessions.terminate(t.id(), None);
        }
        self.set_status(status, None);
        self.persist().await;
        Ok(())
    }

    /// Starts the agent again with the recorded type and ACP session.
    pub async fn resume(self: &Arc<Self>) -> Result<(), AgentError> {
        let (ty, running) = {
            let st = self.lock();
            (st.agent_type.clone(), st.proc.is_some())
        };
        if running {
            return Ok(());
        }
        let ty = ty.ok_or_else(|| {
            AgentError::NotRunning("no agent was ever selected in this session".into())
        })?;
        self.start(&ty, true).await
    }

    /// One JSON-RPC message from a viewer (see docs/node-api.md "Agent
    /// sessions"): `initialize`, `session/new` and `session/load` are
    /// answered from the running session, `session/prompt` runs a turn,
    /// `session/cancel` cancels; answers to forwarded requests (a
    /// permission) go to the agent, the first one winning; anything else
    /// is forwarded with a new id and its answer routed back.
    pub async fn from_viewer(self: &Arc<Self>, viewer: u64, text: &str) {
        let reply = |id: &Value, r: Result<Value, RpcError>| {
            let m = match r {
                Ok(v) => json!({"jsonrpc": "2.0", "id": id, "result": v}),
                Err(e) => json!({"jsonrpc": "2.0", "id": id, "error": e.to_value()}),
            };
            self.hub.direct(viewer, m.to_string().into());
        };
        let v: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => {
                reply(&Value::Null, Err(rpc_err(-32700, format!("not JSON: {e}"))));
                return;
            }
        };
        let method = v.get("method").and_then(Value::as_str).map(String::from);
        let id = v.get("id").cloned();
        let params = v.get("params").cloned().unwrap_or(Value::Null);
        let (proc, acp_id, init) = {
            let st = self.lock();
            (
                st.proc.clone(),
                st.acp_session_id.clone(),
                st.init_result.clone(),
            )
        };
        let not_running = || {
            rpc_err(
                -32603,
                "no agent is running in this session: send select_agent (or resume)",
            )
        };
        match (method.as_deref(), id) {
            (None, Some(id)) => {
                let known = self.lock().permissions.remove(&id.to_string()).is_some();
                if let (true, Some(p)) = (known, proc) {
                    let _ = p.send_line(text.to_string()).await;
                }
            }
            (Some("initialize"), Some(id)) => {
                reply(&id, init.filter(|_| proc.is_some()).ok_or_else(not_running))
            }
            (Some("session/new"), Some(id)) => reply(
                &id,
                acp_id
                    .filter(|_| proc.is_some())
                    .map(|s| json!({"sessionId": s}))
                    .ok_or_else(not_running),
            ),
            (Some("session/load"), Some(id)) => reply(
                &id,
                match (proc.is_some(), acp_id) {
                    (true, Some(s)) if params["sessionId"].as_str() == Some(s.as_str()) => {
                        Ok(json!({}))
                    }
                    (true, Some(s)) => Err(rpc_err(
                        -32602,
                        format!("this gateway session holds ACP session {s}"),
                    )),
                    _ => Err(not_running()),
                },
            ),
            (Some("session/prompt"), Some(id)) => {
                let me = self.clone();
                let blocks = params.get("prompt").cloned().unwrap_or(Value::Null);
                tokio::spawn(async move {
                    let _ = me.prompt(blocks, Some((viewer, id))).await;
                });
            }
            (Some("session/cancel"), id) => {
                // A cancel naming another ACP session is refused, not
                // taken for this one (answered with id null when it came
                // as a notification).
                let named = params.get("sessionId").and_then(Value::as_str);
                match (named, acp_id.as_deref()) {
                    (Some(n), held) if held != Some(n) => reply(
                        &id.unwrap_or(Value::Null),
                        Err(rpc_err(
                            -32602,
                            format!(
                                "session/cancel names ACP session {n:?}, but this gateway session holds {}",
                                held.map_or("none".to_string(), |h| format!("{h:?}"))
                            ),
                        )),
                    ),
                    _ => {
                        let _ = self.cancel().await;
                        if let Some(id) = id {
                            reply(&id, Ok(Value::Null));
                        }
                    }
                }
            }
            (Some(m), Some(id)) => match proc {
                Some(p) => {
                    if let Err(e) = p
                        .request(m, params, Waiter::Viewer(viewer, id.clone()))
                        .await
                    {
                        reply(&id, Err(rpc_err(-32603, e.to_string())));
                    }
                }
                None => reply(&id, Err(not_running())),
            },
            (Some(m), None) => {
                if let Some(p) = proc {
                    let _ = p.notify(m, params).await;
                }
            }
            (None, None) => reply(
                &Value::Null,
                Err(rpc_err(
                    -32600,
                    "neither a request, a notification nor an answer",
                )),
            ),
        }
    }

    fn root(&self) -> Result<PathBuf, RpcError> {
        let (cwd, in_container) = {
            let st = self.lock();
            (st.cwd.clone(), st.in_container)
        };
        if in_container {
            return Err(rpc_err(
                -32601,
                "fs/* is not offered to an agent in a workspace container (the client capability is off): read and write files in the container directly",
            ));
        }
        cwd.canonicalize()
            .map_err(|e| rpc_err(-32603, format!("the workspace root {}: {e}", cwd.display())))
    }

    /// Answers a client-side method the agent called.
    async fn answer(self: &Arc<Self>, method: &str, params: Value) -> Result<Value, RpcError> {
        let bad = |e: serde_json::Error| rpc_err(-32602, format!("{method}: {e}"));
        match method {
            "fs/read_text_file" => {
                let r: ReadTextFileRequest = serde_json::from_value(params).map_err(bad)?;
                let root = self.root()?;
                let path = r.path.display().to_string();
                let text = tokio::task::spawn_blocking(move || {
                    let f = afs::resolve_read(&root, &path)?;
                    afs::read(&f, r.line, r.limit)
                })
                .await
                .map_err(|e| rpc_err(-32603, e.to_string()))?
                .map_err(|e| rpc_err(-32002, e))?;
                Ok(json!(ReadTextFileResponse::new(text)))
            }
            "fs/write_text_file" => {
                let r: WriteTextFileRequest = serde_json::from_value(params).map_err(bad)?;
                let root = self.root()?;
                let path = r.path.display().to_string();
                tokio::task::spawn_blocking(move || {
                    let f = afs::resolve_write(&root, &path)?;
                    afs::write(&f, &r.content)
                })
                .await
                .map_err(|e| rpc_err(-32603, e.to_string()))?
                .map_err(|e| rpc_err(-32002, e))?;
                Ok(json!({}))
            }
            "terminal/create" if self.lock().in_container => {
                let r: CreateTerminalRequest = serde_json::from_value(params).map_err(bad)?;
                let root = self.lock().cwd.clone();
                let cwd = r.cwd.clone().unwrap_or_else(|| root.clone());
                if !afs::lexically_under(&cwd, &root) {
                    return Err(rpc_err(
                        -32602,
                        format!(
                            "cwd {} is outside the workspace root {} (or has ..)",
                            cwd.display(),
                            root.display()
                        ),
                    ));
                }
                let mut argv = self.ctx.settings.command_prefix.clone();
                match self
                    .ctx
                    .place(&self.workspace, Some(&cwd.display().to_string()))
                {
                    super::place::Placement::Container { prefix, .. } => argv.extend(prefix),
                    _ => {
                        return Err(rpc_err(
                            -32603,
                            "terminal/create: the workspace container is no longer ready",
                        ))
                    }
                }
                // The environment goes into the container through `env`.
                if !r.env.is_empty() {
                    argv.push("env".into());
                    argv.extend(r.env.iter().map(|e| format!("{}={}", e.name, e.value)));
                }
                argv.push(r.command.clone());
                argv.extend(r.args.iter().cloned());
                let spawn = PipeSpawn {
                    argv,
                    cwd: std::env::temp_dir().display().to_string(),
                    merge_stderr: true,
                    originator: format!("acp:{}", self.id),
                    ..Default::default()
                };
                self.new_terminal(&spawn, r.output_byte_limit)
            }
            "terminal/create" => {
                let r: CreateTerminalRequest = serde_json::from_value(params).map_err(bad)?;
                let root = self.root()?;
                let cwd = match &r.cwd {
                    Some(c) => {
                        let c = c
                            .canonicalize()
                            .map_err(|e| rpc_err(-32602, format!("cwd {}: {e}", c.display())))?;
                        if !c.starts_with(&root) {
                            return Err(rpc_err(
                                -32602,
                                format!("cwd {} is outside the workspace root", c.display()),
                            ));
                        }
                        c
                    }
                    None => root,
                };
                let mut argv = self.ctx.settings.command_prefix.clone();
                argv.push(r.command.clone());
                argv.extend(r.args.iter().cloned());
                let spawn = PipeSpawn {
                    argv,
                    cwd: cwd.display().to_string(),
                    env: r
                        .env
                        .iter()
                        .map(|e| (e.name.clone(), e.value.clone()))
                        .collect(),
                    merge_stderr: true,
                    originator: format!("acp:{}", self.id),
                    ..Default::default()
                };
                self.new_terminal(&spawn, r.output_byte_limit)
            }
            "terminal/output" => {
                let r: TerminalOutputRequest = serde_json::from_value(params).map_err(bad)?;
                let (s, limit) = self.term(&r.terminal_id.0)?;
                let data = s.output().log().contents();
                let (text, truncated) = tail(&data, limit);
                Ok(json!(TerminalOutputResponse::new(text, truncated)
                    .exit_status(s.exit().map(exit_status))))
            }
            "terminal/wait_for_exit" => {
                let r: WaitForTerminalExitRequest = serde_json::from_value(params).map_err(bad)?;
                let (s, _) = self.term(&r.terminal_id.0)?;
                let e = s.wait_exit().await;
                Ok(json!(WaitForTerminalExitResponse::new(exit_status(e))))
            }
            "terminal/kill" => {
                let r: KillTerminalRequest = serde_json::from_value(params).map_err(bad)?;
                let (s, _) = self.term(&r.terminal_id.0)?;
                let _ = self.ctx.sessions.terminate(s.id(), None);
                Ok(json!({}))
            }
            "terminal/release" => {
                let r: ReleaseTerminalRequest = serde_json::from_value(params).map_err(bad)?;
                let (s, _) = self.term(&r.terminal_id.0)?;
                if s.exit().is_none() {
                    let _ = self.ctx.sessions.terminate(s.id(), None);
                }
                self.lock().terminals.remove(&*r.terminal_id.0);
                Ok(json!({}))
            }
            m => Err(rpc_err(
                -32601,
                format!("method {m:?} is not supported by berth"),
            )),
        }
    }

    /// Starts a terminal's pipe session and records it.
    fn new_terminal(&self, spawn: &PipeSpawn, limit: Option<u64>) -> Result<Value, RpcError> {
        let s = self
            .ctx
            .sessions
            .spawn_pipe(spawn)
            .map_err(|e| rpc_err(-32603, format!("terminal/create: {e}")))?;
        let tid = s.id().to_string();
        self.lock()
            .terminals
            .insert(tid.clone(), Term { session: s, limit });
        Ok(json!(CreateTerminalResponse::new(tid)))
    }

    fn term(&self, id: &str) -> Result<(Arc<Session>, Option<u64>), RpcError> {
        self.lock()
            .terminals
            .get(id)
            .map(|t| (t.session.clone(), t.limit))
            .ok_or_else(|| rpc_err(-32602, format!("no terminal {id:?} in this session")))
    }
}

fn exit_status(e: crate::sessions::ExitInfo) -> TerminalExitStatus {
    if (0..128).contains(&e.code) {
        TerminalExitStatus::new().exit_code(e.code as u32)
    } else if e.code > 128 {
        let sig = berth_os::signal::Signal::try_from(e.code - 128)
            .map(|s| s.as_str().to_string())
            .unwrap_or_else(|_| format!("signal {}", e.code - 128));
        TerminalExitStatus::new().signal(sig)
    } else {
        TerminalExitStatus::new()
    }
}

/// The last `limit` bytes of `data` as text (cut at a character
/// boundary), and whether anything was left out.
fn tail(data: &[u8], limit: Option<u64>) -> (String, bool) {
    let text = String::from_utf8_lossy(data);
    match limit {
        Some(l) if text.len() as u64 > l => {
            let mut start = text.len() - l as usize;
            while !text.is_char_boundary(start) {
                start += 1;
            }
            (text[start..].to_string(), true)
        }
        _ => (text.into_owned(), false),
    }
}
