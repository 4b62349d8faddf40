//! Requests 60-77: PTY and pipe sessions, backlog, bulk operations, tees.
//! Translation only: the session engine owns every session.

use super::after::{After, Answer};
use super::processes::env_base;
use super::refusal::{dimension, payload, Refusal};
use crate::state::DaemonState;
use berth_engine::sessions::{
    AttachOptions, ClientInfo, ExitInfo, Kind, Outcome, PipeSpawn, PtySpawn, Replay, SessionInfo,
    StreamId, TeeSpec, TeeStream,
};
use berth_wire::daemon::*;
use berth_wire::envelope::ok_response;
use prost::Message;
use std::os::unix::ffi::OsStrExt;
use std::time::Duration;

fn outcome(e: Option<ExitInfo>) -> i32 {
    (match e.map(|e| e.outcome) {
        None | Some(Outcome::Lost) => TerminationOutcome::Unspecified,
        Some(Outcome::NaturalExit) => TerminationOutcome::NaturalExit,
        Some(Outcome::SoftExit) => TerminationOutcome::SoftExit,
        Some(Outcome::HardKilled) => TerminationOutcome::HardKilled,
    }) as i32
}

fn pty_info(s: &SessionInfo) -> PtySessionInfo {
    let client = s.attached.clone().unwrap_or_default();
    PtySessionInfo {
        session_id: s.id.clone(),
        pid: s.pid,
        command: s.command.clone(),
        cwd: s.cwd.clone(),
        originator: s.originator.clone(),
        created_at: s.created_at,
        attached: s.attached.is_some(),
        exited: s.exit.is_some(),
        exit_code: s.exit.map(|e| e.code).unwrap_or(0),
        exited_at: s.exit.map(|e| e.at).unwrap_or(0.0),
        rows: s.size.rows as u32,
        cols: s.size.cols as u32,
        termination_outcome: outcome(s.exit),
        attached_is_tty: client.is_tty,
        attached_term: client.term,
        attached_graphics_capabilities: TerminalGraphicsCapabilities::decode(&client.meta[..])
            .ok()
            .filter(|_| !client.meta.is_empty()),
        name: s.name.clone(),
    }
}

fn pipe_info(s: &SessionInfo) -> PipeSessionInfo {
    PipeSessionInfo {
        session_id: s.id.clone(),
        pid: s.pid,
        command: s.command.clone(),
        cwd: s.cwd.clone(),
        originator: s.originator.clone(),
        created_at: s.created_at,
        stdout_attached: s.attached.is_some(),
        stderr_attached: s.stderr_attached,
        exited: s.exit.is_some(),
        exit_code: s.exit.map(|e| e.code).unwrap_or(0),
        exited_at: s.exit.map(|e| e.at).unwrap_or(0.0),
        merge_stderr_into_stdout: s.merged,
        termination_outcome: outcome(s.exit),
        name: s.name.clone(),
    }
}

fn env(kvs: &[KeyValue]) -> Vec<(String, String)> {
    kvs.iter()
        .map(|kv| (kv.key.clone(), kv.value.clone()))
        .collect()
}

fn pipe_stream(field: &str, k: i32) -> Result<StreamId, Refusal> {
    match PipeStreamKind::try_from(k) {
        Ok(PipeStreamKind::Stdout) => Ok(StreamId::Output),
        Ok(PipeStreamKind::Stderr) => Ok(StreamId::Stderr),
        _ => Err(Refusal::invalid(format!(
            "{field} must be PIPE_STREAM_KIND_STDOUT or PIPE_STREAM_KIND_STDERR, got {k}"
        ))),
    }
}

fn grace(ms: u32) -> Option<Duration> {
    (ms > 0).then(|| Duration::from_millis(ms as u64))
}

/// A spawn's originator: the requested one, else `client:<client_name>`
/// (the reference's default, also what the child sees in
/// `RUNNING_PROCESS_ORIGINATOR`).
fn originator(req: &DaemonRequest, requested: &str) -> String {
    if requested.is_empty() {
        format!("client:{}", req.client_name)
    } else {
        requested.to_string()
    }
}

fn label(req: &DaemonRequest) -> String {
    if req.client_name.is_empty() {
        "another client".into()
    } else {
        req.client_name.clone()
    }
}

/// SPAWN_PTY_SESSION: start a command on a new pseudo-terminal.
pub(super) fn spawn_pty(req: &DaemonRequest, st: &DaemonState) -> Result<DaemonResponse, Refusal> {
    let p = payload(&req.spawn_pty_session, RequestType::SpawnPtySession)?;
    let (clear_env, user_baseline) = env_base(
        "spawn_pty_session",
        p.environment_policy,
        p.clear_inherited_env,
    )?;
    let s = st.sessions.spawn_pty(&PtySpawn {
        argv: p.argv.clone(),
        cwd: p.cwd.clone(),
        env: env(&p.env),
        clear_env,
        user_baseline,
        rows: p.rows,
        cols: p.cols,
        originator: originator(req, &p.originator),
        name: p.name.clone(),
    })?;
    let info = s.info();
    Ok(DaemonResponse {
        spawn_pty_session: Some(SpawnPtySessionResponse {
            session_id: info.id,
            pid: info.pid,
            created_at: info.created_at,
        }),
        ..ok_response(req.id)
    })
}

/// ATTACH_PTY_SESSION: the backlog (or the painted screen) in the reply,
/// then the attach stream on the same connection.
pub(super) fn attach_pty(req: &DaemonRequest, st: &DaemonState) -> Result<Answer, Refusal> {
    let p = payload(&req.attach_pty_session, RequestType::AttachPtySession)?;
    let s = st.sessions.get_kind(&p.session_id, Kind::Pty)?;
    // As the reference: a client that is not a terminal does not size the
    // PTY.
    let size = if !p.read_only && p.is_tty && p.rows > 0 && p.cols > 0 {
        let rows = dimension("attach_pty_session.rows", p.rows)?;
        let cols = dimension("attach_pty_session.cols", p.cols)?;
        s.resize(rows, cols)?;
        Some((rows, cols))
    } else {
        None
    };
    let opts = AttachOptions {
        stream: StreamId::Output,
        steal: p.steal,
        read_only: p.read_only,
        replay: if p.screen_restore {
            Replay::Screen
        } else {
            Replay::Raw
        },
        client: ClientInfo {
            is_tty: p.is_tty,
            term: p.term.clone(),
            meta: p
                .graphics_capabilities
                .as_ref()
                .map(|g| g.encode_to_vec())
                .unwrap_or_default(),
        },
        label: label(req),
    };
    let mut att = st.sessions.attach(&p.session_id, opts)?;
    if let Some((rows, cols)) = size {
        // The size is this client's claim, given back when it leaves.
        att.resize(rows, cols)?;
    }
    let resp = DaemonResponse {
        attach_pty_session: Some(AttachPtySessionResponse {
            stream_endpoint: String::new(),
            backlog: std::mem::take(&mut att.initial),
            backlog_truncated: att.bytes_missed > 0,
            bytes_missed: att.bytes_missed,
        }),
        ..ok_response(req.id)
    };
    Ok((resp, After::Attach(Box::new(att), Kind::Pty)))
}

/// DETACH_PTY_SESSION: end this client's attachment.
pub(super) fn detach_pty(req: &DaemonRequest, st: &DaemonState) -> Result<DaemonResponse, Refusal> {
    let p = payload(&req.detach_pty_session, RequestType::DetachPtySession)?;
    st.sessions.get_kind(&p.session_id, Kind::Pty)?;
    st.sessions
        .detach(&p.session_id, StreamId::Output, &label(req))?;
    Ok(DaemonResponse {
        detach_pty_session: Some(DetachPtySessionResponse {}),
        ..ok_response(req.id)
    })
}

/// LIST_PTY_SESSIONS: the PTY sessions, optionally of one originator.
pub(super) fn list_pty(req: &DaemonRequest, st: &DaemonState) -> Result<DaemonResponse, Refusal> {
    let p = payload(&req.list_pty_sessions, RequestType::ListPtySessions)?;
    let sessions = st
        .sessions
        .list(Some(Kind::Pty), &p.originator)
        .iter()
        .map(pty_info)
        .collect();
    Ok(DaemonResponse {
        list_pty_sessions: Some(ListPtySessionsResponse { sessions }),
        ..ok_response(req.id)
    })
}

/// TERMINATE_PTY_SESSION: end the session's process, escalating after
/// `grace_ms`.
pub(super) fn terminate_pty(
    req: &DaemonRequest,
    st: &DaemonState,
) -> Result<DaemonResponse, Refusal> {
    let p = payload(&req.terminate_pty_session, RequestType::TerminatePtySession)?;
    st.sessions.get_kind(&p.session_id, Kind::Pty)?;
    st.sessions.terminate(&p.session_id, grace(p.grace_ms))?;
    Ok(DaemonResponse {
        terminate_pty_session: Some(TerminatePtySessionResponse {}),
        ..ok_response(req.id)
    })
}

/// RESIZE_PTY_SESSION: set the terminal's size, in character cells.
pub(super) fn resize_pty(req: &DaemonRequest, st: &DaemonState) -> Result<DaemonResponse, Refusal> {
    let p = payload(&req.resize_pty_session, RequestType::ResizePtySession)?;
    let s = st.sessions.get(&p.session_id)?;
    let rows = dimension("resize_pty_session.rows", p.rows)?;
    let cols = dimension("resize_pty_session.cols", p.cols)?;
    s.resize(rows, cols)?;
    Ok(DaemonResponse {
        resize_pty_session: Some(ResizePtySessionResponse {}),
        ..ok_response(req.id)
    })
}

/// SPAWN_PIPE_SESSION: start a command with its stdio on pipes.
pub(super) fn spawn_pipe(req: &DaemonRequest, st: &DaemonState) -> Result<DaemonResponse, Refusal> {
    let p = payload(&req.spawn_pipe_session, RequestType::SpawnPipeSession)?;
    let (clear_env, user_baseline) = env_base(
        "spawn_pipe_session",
        p.environment_policy,
        p.clear_inherited_env,
    )?;
    let s = st.sessions.spawn_pipe(&PipeSpawn {
        argv: p.argv.clone(),
        cwd: p.cwd.clone(),
        env: env(&p.env),
        clear_env,
        user_baseline,
        originator: originator(req, &p.originator),
        merge_stderr: p.merge_stderr_into_stdout,
        name: p.name.clone(),
    })?;
    let info = s.info();
    Ok(DaemonResponse {
        spawn_pipe_session: Some(SpawnPipeSessionResponse {
            session_id: info.id,
            pid: info.pid,
            created_at: info.created_at,
        }),
        ..ok_response(req.id)
    })
}

/// ATTACH_PIPE_STREAM: the stream's backlog in the reply, then the attach
/// stream on the same connection.
pub(super) fn attach_pipe(req: &DaemonRequest, st: &DaemonState) -> Result<Answer, Refusal> {
    let p = payload(&req.attach_pipe_stream, RequestType::AttachPipeStream)?;
    st.sessions.get_kind(&p.session_id, Kind::Pipe)?;
    let opts = AttachOptions {
        stream: pipe_stream("attach_pipe_stream.stream", p.stream)?,
        steal: p.steal,
        read_only: p.read_only,
        replay: Replay::Raw,
        client: ClientInfo::default(),
        label: label(req),
    };
    let mut att = st.sessions.attach(&p.session_id, opts)?;
    let resp = DaemonResponse {
        attach_pipe_stream: Some(AttachPipeStreamResponse {
            backlog: std::mem::take(&mut att.initial),
            backlog_truncated: att.bytes_missed > 0,
            bytes_missed: att.bytes_missed,
        }),
        ..ok_response(req.id)
    };
    Ok((resp, After::Attach(Box::new(att), Kind::Pipe)))
}

/// DETACH_PIPE_STREAM: end this client's attachment to one stream.
pub(super) fn detach_pipe(
    req: &DaemonRequest,
    st: &DaemonState,
) -> Result<DaemonResponse, Refusal> {
    let p = payload(&req.detach_pipe_stream, RequestType::DetachPipeStream)?;
    st.sessions.get_kind(&p.session_id, Kind::Pipe)?;
    let stream = pipe_stream("detach_pipe_stream.stream", p.stream)?;
    st.sessions.detach(&p.session_id, stream, &label(req))?;
    Ok(DaemonResponse {
        detach_pipe_stream: Some(DetachPipeStreamResponse {}),
        ..ok_response(req.id)
    })
}

/// LIST_PIPE_SESSIONS: the pipe sessions, optionally of one originator.
pub(super) fn list_pipe(req: &DaemonRequest, st: &DaemonState) -> Result<DaemonResponse, Refusal> {
    let p = payload(&req.list_pipe_sessions, RequestType::ListPipeSessions)?;
    let sessions = st
        .sessions
        .list(Some(Kind::Pipe), &p.originator)
        .iter()
        .map(pipe_info)
        .collect();
    Ok(DaemonResponse {
        list_pipe_sessions: Some(ListPipeSessionsResponse { sessions }),
        ..ok_response(req.id)
    })
}

/// TERMINATE_PIPE_SESSION: end the session's process, escalating after
/// `grace_ms`.
pub(super) fn terminate_pipe(
    req: &DaemonRequest,
    st: &DaemonState,
) -> Result<DaemonResponse, Refusal> {
    let p = payload(
        &req.terminate_pipe_session,
        RequestType::TerminatePipeSession,
    )?;
    st.sessions.get_kind(&p.session_id, Kind::Pipe)?;
    st.sessions.terminate(&p.session_id, grace(p.grace_ms))?;
    Ok(DaemonResponse {
        terminate_pipe_session: Some(TerminatePipeSessionResponse {}),
        ..ok_response(req.id)
    })
}

/// WRITE_PIPE_STDIN: write to the session's stdin, then optionally close
/// it. berth extension: on a PTY session this types into the terminal.
pub(super) async fn write_stdin(
    req: &DaemonRequest,
    st: &DaemonState,
) -> Result<DaemonResponse, Refusal> {
    let p = payload(&req.write_pipe_stdin, RequestType::WritePipeStdin)?;
    let s = st.sessions.get(&p.session_id)?;
    let mut written = 0;
    if !p.data.is_empty() || !p.close {
        written = s.write_input(&p.data).await?;
    }
    if p.close {
        s.close_stdin().await?;
    }
    Ok(DaemonResponse {
        write_pipe_stdin: Some(WritePipeStdinResponse {
            bytes_written: written as u64,
        }),
        ..ok_response(req.id)
    })
}

/// GET_SESSION_BACKLOG: what the session's ring still holds, without
/// attaching, and how the session ended if it has.
pub(super) fn backlog(req: &DaemonRequest, st: &DaemonState) -> Result<DaemonResponse, Refusal> {
    let p = payload(&req.get_session_backlog, RequestType::GetSessionBacklog)?;
    let s = st.sessions.get(&p.session_id)?;
    let stream = match s.kind() {
        Kind::Pty => StreamId::Output,
        Kind::Pipe if p.pipe_stream == 0 => StreamId::Output,
        Kind::Pipe => pipe_stream("get_session_backlog.pipe_stream", p.pipe_stream)?,
    };
    // As the reference: what the next ATTACH would return, unconsumed.
    // berth's own client reads the whole ring instead (`berth logs`).
    let (s, backlog, missed) = if req.client_name == super::processes::BERTH_CLIENT_NAME {
        st.sessions.backlog(&p.session_id, stream)?
    } else {
        st.sessions.pending_backlog(&p.session_id, stream)?
    };
    let exit = s.exit();
    Ok(DaemonResponse {
        get_session_backlog: Some(GetSessionBacklogResponse {
            backlog,
            bytes_missed: missed,
            session_kind: s.kind().as_str().into(),
            exited: exit.is_some(),
            exit_code: exit.map(|e| e.code).unwrap_or(0),
            exited_at: exit.map(|e| e.at).unwrap_or(0.0),
            termination_outcome: outcome(exit),
        }),
        ..ok_response(req.id)
    })
}

/// PURGE_EXITED_SESSIONS: forget the sessions that have ended.
pub(super) fn purge_exited(
    req: &DaemonRequest,
    st: &DaemonState,
) -> Result<DaemonResponse, Refusal> {
    let p = payload(&req.purge_exited_sessions, RequestType::PurgeExitedSessions)?;
    let (pty, pipe) = st.sessions.purge_exited(&p.originator)?;
    Ok(DaemonResponse {
        purge_exited_sessions: Some(PurgeExitedSessionsResponse {
            pty_purged: pty,
            pipe_purged: pipe,
        }),
        ..ok_response(req.id)
    })
}

/// BULK_TERMINATE_SESSIONS: end the live sessions older than
/// `older_than_secs`, optionally of one originator.
pub(super) fn bulk_terminate(
    req: &DaemonRequest,
    st: &DaemonState,
) -> Result<DaemonResponse, Refusal> {
    let p = payload(
        &req.bulk_terminate_sessions,
        RequestType::BulkTerminateSessions,
    )?;
    let (pty, pipe) = st.sessions.bulk_terminate(
        Duration::from_secs(p.older_than_secs),
        &p.originator,
        grace(p.grace_ms),
    );
    Ok(DaemonResponse {
        bulk_terminate_sessions: Some(BulkTerminateSessionsResponse {
            pty_terminated: pty,
            pipe_terminated: pipe,
        }),
        ..ok_response(req.id)
    })
}

/// REGISTER_SESSION_TEE: copy one stream of a session into a file.
pub(super) fn register_tee(
    req: &DaemonRequest,
    st: &DaemonState,
) -> Result<DaemonResponse, Refusal> {
    let p = payload(&req.register_session_tee, RequestType::RegisterSessionTee)?;
    let stream = match TeeStreamKind::try_from(p.stream) {
        Ok(TeeStreamKind::PtyOutput) => TeeStream::PtyOutput,
        Ok(TeeStreamKind::Stdout) => TeeStream::Stdout,
        Ok(TeeStreamKind::Stderr) => TeeStream::Stderr,
        Ok(TeeStreamKind::Stdin) => TeeStream::Stdin,
        _ => {
            return Err(Refusal::invalid(format!(
                "register_session_tee.stream {} is not a stream",
                p.stream
            )))
        }
    };
    if TeeSinkKind::try_from(p.sink_kind) != Ok(TeeSinkKind::File) {
        return Err(Refusal::invalid(
            "register_session_tee.sink_kind must be TEE_SINK_KIND_FILE",
        ));
    }
    if p.file_path.is_empty() || p.file_path.contains(&0) {
        return Err(Refusal::invalid(
            "register_session_tee.file_path must be a non-empty path without NUL bytes",
        ));
    }
    let s = st.sessions.get(&p.session_id)?;
    let want = match TeeSessionKind::try_from(p.session_kind) {
        Ok(TeeSessionKind::Pty) => Some(Kind::Pty),
        Ok(TeeSessionKind::Pipe) => Some(Kind::Pipe),
        _ => None,
    };
    if want.is_some_and(|k| k != s.kind()) {
        return Err(Refusal::invalid(format!(
            "register_session_tee.session_kind does not match: session {} is a {} session",
            p.session_id,
            s.kind().as_str()
        )));
    }
    let spec = TeeSpec {
        stream,
        path: std::path::PathBuf::from(std::ffi::OsStr::from_bytes(&p.file_path)),
        truncate: TeeFileMode::try_from(p.file_mode) == Ok(TeeFileMode::Truncate),
        capacity: p.queue_capacity as usize,
        suppress_markers: p.suppress_missed_markers,
        block: TeeBackpressure::try_from(p.backpressure) == Ok(TeeBackpressure::Block),
    };
    let handle = st.sessions.register_tee(&p.session_id, spec)?;
    Ok(DaemonResponse {
        register_session_tee: Some(RegisterSessionTeeResponse { tee_handle: handle }),
        ..ok_response(req.id)
    })
}

/// UNREGISTER_SESSION_TEE: stop a tee and close its file.
pub(super) fn unregister_tee(
    req: &DaemonRequest,
    st: &DaemonState,
) -> Result<DaemonResponse, Refusal> {
    let p = payload(
        &req.unregister_session_tee,
        RequestType::UnregisterSessionTee,
    )?;
    st.sessions.unregister_tee(&p.session_id, p.tee_handle)?;
    Ok(DaemonResponse {
        unregister_session_tee: Some(UnregisterSessionTeeResponse {}),
        ..ok_response(req.id)
    })
}

/// GET_SESSION_TEE_STATUS: a tee's stream, bytes it missed, and whether
/// its sink is gone.
pub(super) fn tee_status(req: &DaemonRequest, st: &DaemonState) -> Result<DaemonResponse, Refusal> {
    let p = payload(
        &req.get_session_tee_status,
        RequestType::GetSessionTeeStatus,
    )?;
    let t = st.sessions.tee_status(&p.session_id, p.tee_handle)?;
    let stream = match t.stream {
        TeeStream::PtyOutput => TeeStreamKind::PtyOutput,
        TeeStream::Stdout => TeeStreamKind::Stdout,
        TeeStream::Stderr => TeeStreamKind::Stderr,
        TeeStream::Stdin => TeeStreamKind::Stdin,
    } as i32;
    Ok(DaemonResponse {
        get_session_tee_status: Some(GetSessionTeeStatusResponse {
            stream,
            missed_bytes: t.missed,
            disconnected: t.disconnected,
        }),
        ..ok_response(req.id)
    })
}
