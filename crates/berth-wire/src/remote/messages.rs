//! The APP_JSON messages: one JSON object per frame, discriminated by its
//! `type` field, with camelCase fields.
//!
//! Every struct refuses unknown fields: under the seed's versioning policy
//! a new field is a new message type (a minor version), so an unexpected
//! field means the peers disagree about the contract and should say so.

use serde::{Deserialize, Serialize};

use super::DecodeError;

/// Every APP_JSON `type` this version defines, in specification order.
pub const MESSAGE_TYPES: [&str; 20] = [
    "hello",
    "hello_ack",
    "cap.req",
    "cap.ack",
    "snapshot.req",
    "grid.features",
    "machine_list",
    "session_attach",
    "connection_status",
    "terminal_data",
    "claude_state",
    "pty_status",
    "git_result",
    "session_replay",
    "grid_resize_capped",
    "protocol_mismatch",
    "ping",
    "pong",
    "error",
    "input",
];

/// One APP_JSON message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum AppMessage {
    /// First message on every link, from agent or mobile to the relay.
    #[serde(rename = "hello")]
    Hello(Hello),
    /// The relay accepts the link and names the version in use.
    #[serde(rename = "hello_ack")]
    HelloAck(HelloAck),
    /// A mobile asks for grid frames instead of raw PTY_DATA.
    #[serde(rename = "cap.req")]
    CapReq(CapReq),
    /// The agent answers `cap.req`.
    #[serde(rename = "cap.ack")]
    CapAck(CapAck),
    /// A client lost track of the grid and wants a GRID_SNAPSHOT.
    #[serde(rename = "snapshot.req")]
    SnapshotReq(SnapshotReq),
    /// Grid additions a receiver asks for, and the sender's answer (3.1).
    #[serde(rename = "grid.features")]
    GridFeatures(GridFeatures),
    /// The machines and sessions a mobile can attach to.
    #[serde(rename = "machine_list")]
    MachineList(MachineList),
    /// A mobile chooses the session its link shows.
    #[serde(rename = "session_attach")]
    SessionAttach(SessionAttach),
    /// An agent's link to the relay came up or went down.
    #[serde(rename = "connection_status")]
    ConnectionStatus(ConnectionStatus),
    /// Terminal output as text, for clients that want it in JSON.
    #[serde(rename = "terminal_data")]
    TerminalData(TerminalData),
    /// What a coding agent running in a session is doing.
    #[serde(rename = "claude_state")]
    ClaudeState(ClaudeState),
    /// A session's process started or ended.
    #[serde(rename = "pty_status")]
    PtyStatus(PtyStatus),
    /// The answer to a git request.
    #[serde(rename = "git_result")]
    GitResult(GitResult),
    /// The session's recent output, replayed on attach.
    #[serde(rename = "session_replay")]
    SessionReplay(SessionReplay),
    /// A RESIZE asked for more than the agent allows; this is what it used.
    #[serde(rename = "grid_resize_capped")]
    GridResizeCapped(GridResizeCapped),
    /// No protocol version in common; the link closes after this.
    #[serde(rename = "protocol_mismatch")]
    ProtocolMismatch(ProtocolMismatch),
    /// Liveness probe; the peer answers `pong` with the same `ts`.
    #[serde(rename = "ping")]
    Ping(Ping),
    /// Answer to `ping`.
    #[serde(rename = "pong")]
    Pong(Pong),
    /// A request failed.
    #[serde(rename = "error")]
    Error(ErrorMessage),
    /// Keystrokes for a session.
    #[serde(rename = "input")]
    Input(Input),
}

/// Which end of the relay a link is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A machine that owns sessions (the desktop agent, `berth daemon`).
    Agent,
    /// A viewer (phone app, `berth remote attach`).
    Mobile,
}

/// `hello`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Hello {
    /// The highest version the sender speaks.
    pub protocol_version: u32,
    /// Agent or mobile.
    pub role: Role,
    /// Relay credential, when not carried by the HTTP upgrade.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Every version the sender speaks, when more than `protocolVersion`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supported_versions: Option<Vec<u32>>,
    /// Agents: the stable id of the machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine_id: Option<String>,
    /// Agents: a human name for the machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine_name: Option<String>,
    /// Free-form client software name, for logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
}

/// `hello_ack`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HelloAck {
    /// The version both ends now speak.
    pub protocol_version: u32,
    /// The relay's id for this link, for logs and support.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_id: Option<String>,
    /// How often the relay expects a `ping`; a link silent for three
    /// intervals is considered dead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ping_interval_ms: Option<u32>,
}

/// `cap.req`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CapReq {
    /// True to receive GRID_SNAPSHOT / GRID_DIFF instead of PTY_DATA.
    pub grid: bool,
    /// The widest grid the client can show.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cols: Option<u32>,
    /// The tallest grid the client can show.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_rows: Option<u32>,
}

/// `cap.ack`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CapAck {
    /// Whether grid frames will be sent.
    pub grid: bool,
    /// The widest size the agent will honour in RESIZE.
    pub max_cols: u32,
    /// The tallest size the agent will honour in RESIZE.
    pub max_rows: u32,
}

/// `snapshot.req`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SnapshotReq {
    /// The session whose grid is wanted.
    pub session_id: String,
    /// The last GRID_DIFF sequence number applied, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seq: Option<u32>,
}

/// `grid.features` (protocol 3.1, docs/remote-protocol-v3.md §5 and §8):
/// a grid receiver asks for additions to the 3.0 grid layout, and the
/// sender answers with the same type naming what it will send.
///
/// Why a message and not a field of `cap.req`: fields are closed, so a new
/// field would break 3.0 receivers (a major); a new type is a minor, which
/// a 3.0 peer answers with PROTOCOL_ERROR `UNKNOWN_MESSAGE_TYPE` while the
/// link carries on. Without this exchange a receiver gets exactly the 3.0
/// bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GridFeatures {
    /// Request: the receiver decodes underline colours (the `0x03`-prefixed
    /// style of §3.1). Answer: GRID_SNAPSHOT / GRID_DIFF to this receiver
    /// will carry them from now on. `false` (or never sending the message)
    /// keeps them out.
    pub underline_color: bool,
}

impl GridFeatures {
    /// How grid frames for a receiver that asked for these features are
    /// encoded.
    pub fn encoding(&self) -> super::GridEncoding {
        super::GridEncoding {
            underline_color: self.underline_color,
        }
    }
}

/// `machine_list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MachineList {
    /// Every machine the mobile's token may see.
    pub machines: Vec<Machine>,
}

/// One machine in `machine_list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Machine {
    /// Stable machine id (the agent's `hello.machineId`).
    pub id: String,
    /// Human name.
    pub name: String,
    /// Whether its agent link is up.
    pub online: bool,
    /// Its terminal sessions.
    pub sessions: Vec<SessionInfo>,
}

/// One terminal session in `machine_list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SessionInfo {
    /// Session id, unique on its machine.
    pub id: String,
    /// Title (window title or command).
    pub title: String,
    /// Current width.
    pub cols: u32,
    /// Current height.
    pub rows: u32,
}

/// `session_attach`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SessionAttach {
    /// The machine.
    pub machine_id: String,
    /// The session on it.
    pub session_id: String,
}

/// State of an agent's link, in `connection_status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkStatus {
    /// The agent is connected.
    Connected,
    /// The agent's link dropped.
    Disconnected,
    /// The link dropped and the agent is expected back (within its backoff).
    Reconnecting,
}

/// `connection_status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConnectionStatus {
    /// The machine whose link changed.
    pub machine_id: String,
    /// Its new state.
    pub status: LinkStatus,
}

/// `terminal_data`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TerminalData {
    /// The session.
    pub session_id: String,
    /// Output text (UTF-8; invalid bytes replaced by U+FFFD).
    pub data: String,
}

/// What a coding agent in a session is doing, in `claude_state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentActivity {
    /// Waiting for a prompt.
    Idle,
    /// Thinking or running tools.
    Working,
    /// Blocked on the user (a question or a permission prompt).
    WaitingInput,
    /// The agent process ended.
    Exited,
}

/// `claude_state`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClaudeState {
    /// The session running the agent.
    pub session_id: String,
    /// Its activity.
    pub state: AgentActivity,
    /// A short human description (e.g. the pending question).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Life of a session's process, in `pty_status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PtyState {
    /// The process runs.
    Running,
    /// The process ended.
    Exited,
}

/// `pty_status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PtyStatus {
    /// The session.
    pub session_id: String,
    /// Running or exited.
    pub state: PtyState,
    /// Exit status once exited (128 + signal number when killed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
}

/// `git_result`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GitResult {
    /// Echo of the request's id.
    pub request_id: String,
    /// Whether git exited with status 0.
    pub ok: bool,
    /// Combined output, or the error.
    pub output: String,
}

/// `session_replay`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SessionReplay {
    /// The session.
    pub session_id: String,
    /// Recent output, terminal queries removed, to paint before live data.
    pub data: String,
}

/// `grid_resize_capped`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GridResizeCapped {
    /// Width the RESIZE asked for.
    pub requested_cols: u32,
    /// Height the RESIZE asked for.
    pub requested_rows: u32,
    /// Width applied.
    pub cols: u32,
    /// Height applied.
    pub rows: u32,
}

/// `protocol_mismatch`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProtocolMismatch {
    /// Versions the sender speaks.
    pub supported: Vec<u32>,
    /// The version the peer announced.
    pub received: u32,
}

/// `ping`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Ping {
    /// Sender's clock in milliseconds, echoed to measure round trips.
    pub ts: u64,
}

/// `pong`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Pong {
    /// The `ts` of the `ping` answered.
    pub ts: u64,
}

/// `error`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ErrorMessage {
    /// Machine-readable code, snake_case (`unauthorized`, `not_found`, ...).
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
}

/// `input`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Input {
    /// The session.
    pub session_id: String,
    /// Bytes to write to the PTY, as UTF-8 text.
    pub data: String,
}

/// Reads only `type`, to explain why a message did not parse.
#[derive(Deserialize)]
struct TypeProbe {
    #[serde(rename = "type", default)]
    ty: Option<String>,
}

impl AppMessage {
    /// The wire `type` of this message.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Hello(_) => "hello",
            Self::HelloAck(_) => "hello_ack",
            Self::CapReq(_) => "cap.req",
            Self::CapAck(_) => "cap.ack",
            Self::SnapshotReq(_) => "snapshot.req",
            Self::GridFeatures(_) => "grid.features",
            Self::MachineList(_) => "machine_list",
            Self::SessionAttach(_) => "session_attach",
            Self::ConnectionStatus(_) => "connection_status",
            Self::TerminalData(_) => "terminal_data",
            Self::ClaudeState(_) => "claude_state",
            Self::PtyStatus(_) => "pty_status",
            Self::GitResult(_) => "git_result",
            Self::SessionReplay(_) => "session_replay",
            Self::GridResizeCapped(_) => "grid_resize_capped",
            Self::ProtocolMismatch(_) => "protocol_mismatch",
            Self::Ping(_) => "ping",
            Self::Pong(_) => "pong",
            Self::Error(_) => "error",
            Self::Input(_) => "input",
        }
    }

    /// Appends the JSON text of this message (no opcode).
    pub fn write_json(&self, out: &mut Vec<u8>) {
        serde_json::to_writer(out, self)
            .expect("message types hold only strings, integers and bools");
    }

    /// Parses an APP_JSON payload, telling apart bad UTF-8, bad JSON, an
    /// unknown `type`, and fields that do not fit a known type.
    pub fn from_json(payload: &[u8]) -> Result<Self, DecodeError> {
        let text =
            std::str::from_utf8(payload).map_err(|_| DecodeError::BadUtf8("APP_JSON payload"))?;
        match serde_json::from_str::<AppMessage>(text) {
            Ok(m) => Ok(m),
            Err(err) => Err(explain(text, err)),
        }
    }
}

/// Turns a parse failure into the most specific [`DecodeError`]; only runs
/// on the error path, so valid messages are parsed once.
fn explain(text: &str, err: serde_json::Error) -> DecodeError {
    if !text.trim_start().starts_with('{') {
        return DecodeError::BadJson(err.to_string());
    }
    match serde_json::from_str::<TypeProbe>(text) {
        Ok(TypeProbe { ty: Some(ty) }) if !MESSAGE_TYPES.contains(&ty.as_str()) => {
            let mut name: String = ty.chars().take(64).collect();
            if name.len() < ty.len() {
                name.push('…');
            }
            DecodeError::UnknownMessageType(name)
        }
        Ok(TypeProbe { ty: Some(ty) }) => DecodeError::BadJson(format!("{ty}: {err}")),
        Ok(TypeProbe { ty: None }) => {
            DecodeError::BadJson("the object has no \"type\" field".into())
        }
        Err(_) => DecodeError::BadJson(err.to_string()),
    }
}
