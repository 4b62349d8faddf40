//! Requests 60-77: PTY and pipe sessions, backlog, bulk operations, tees.
//! Translation only: the session engine owns every session.

use super::handlers::After;
use crate::state::DaemonState;
use berth_engine::sessions::{
    AttachOptions, ClientInfo, ExitInfo, Kind, Outcome, PipeSpawn, PtySpawn, Replay, SessionError,
    SessionInfo, StreamId, TeeSpec, TeeStream,
};
use berth_wire::daemon::*;
use berth_wire::envelope::{error_response, ok_response, require};
use prost::Message;
use std::os::unix::ffi::OsStrExt;
use std::time::Duration;

fn engine_error(id: u64, e: SessionError) -> DaemonResponse {
    let code = match &e {
        SessionError::InvalidArgument(_) => StatusCode::InvalidArgument,
        SessionError::NotFound(_) => StatusCode::NotFound,
        SessionError::AlreadyAttached(_) => StatusCode::AlreadyAttached,
        SessionError::Os(_) | SessionError::Store(_) => StatusCode::Internal,
    };
    error_response(id, code, e.to_string())
}

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

fn pipe_stream(field: &str, k: i32) -> Result<StreamId, String> {
    match PipeStreamKind::try_from(k) {
        Ok(PipeStreamKind::Stdout) => Ok(StreamId::Output),
        Ok(PipeStreamKind::Stderr) => Ok(StreamId::Stderr),
        _ => Err(format!(
            "{field} must be PIPE_STREAM_KIND_STDOUT or PIPE_STREAM_KIND_STDERR, got {k}"
        )),
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

macro_rules! payload {
    ($req:expr, $field:ident, $ty:expr) => {
        match require($req, &$req.$field, $ty) {
            Ok(p) => p,
            Err(resp) => return (*resp, After::Continue),
        }
    };
}

macro_rules! tryx {
    ($id:expr, $e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return (engine_error($id, e), After::Continue),
        }
    };
}

macro_rules! invalid {
    ($id:expr, $e:expr) => {
        match $e {
            Ok(v) => v,
            Err(msg) => {
                return (
                    error_response($id, StatusCode::InvalidArgument, msg),
                    After::Continue,
                )
            }
        }
    };
}

/// Answers a session request (types 60-77).
pub async fn handle(
    req: &DaemonRequest,
    ty: RequestType,
    st: &DaemonState,
) -> (DaemonResponse, After) {
    let id = req.id;
    let eng = &st.sessions;
    let resp = match ty {
        RequestType::SpawnPtySession => {
            let p = payload!(req, spawn_pty_session, ty);
            let (clear_env, user_baseline) = invalid!(
                id,
                super::handlers::env_base(
                    "spawn_pty_session",
                    p.environment_policy,
                    p.clear_inherited_env
                )
            );
            let s = tryx!(
                id,
                eng.spawn_pty(&PtySpawn {
                    argv: p.argv.clone(),
                    cwd: p.cwd.clone(),
                    env: env(&p.env),
                    clear_env,
                    user_baseline,
                    rows: p.rows,
                    cols: p.cols,
                    originator: originator(req, &p.originator),
                    name: p.name.clone(),
                })
            );
            let info = s.info();
            DaemonResponse {
                spawn_pty_session: Some(SpawnPtySessionResponse {
                    session_id: info.id,
                    pid: info.pid,
                    created_at: info.created_at,
                }),
                ..ok_response(id)
            }
        }
        RequestType::AttachPtySession => {
            let p = payload!(req, attach_pty_session, ty);
            let s = tryx!(id, eng.get_kind(&p.session_id, Kind::Pty));
            // As the reference: a client that is not a terminal does not
            // size the PTY.
            if !p.read_only && p.is_tty && p.rows > 0 && p.cols > 0 {
                let rows = invalid!(
                    id,
                    u16::try_from(p.rows)
                        .map_err(|_| format!("attach_pty_session.rows {} is too large", p.rows))
                );
                let cols = invalid!(
                    id,
                    u16::try_from(p.cols)
                        .map_err(|_| format!("attach_pty_session.cols {} is too large", p.cols))
                );
                tryx!(id, s.resize(rows, cols));
            }
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
            let mut att = tryx!(id, eng.attach(&p.session_id, opts));
            let resp = DaemonResponse {
                attach_pty_session: Some(AttachPtySessionResponse {
                    stream_endpoint: String::new(),
                    backlog: std::mem::take(&mut att.initial),
                    backlog_truncated: att.bytes_missed > 0,
                    bytes_missed: att.bytes_missed,
                }),
                ..ok_response(id)
            };
            return (resp, After::Attach(Box::new(att), Kind::Pty));
        }
        RequestType::DetachPtySession => {
            let p = payload!(req, detach_pty_session, ty);
            tryx!(id, eng.get_kind(&p.session_id, Kind::Pty));
            tryx!(id, eng.detach(&p.session_id, StreamId::Output, &label(req)));
            DaemonResponse {
                detach_pty_session: Some(DetachPtySessionResponse {}),
                ..ok_response(id)
            }
        }
        RequestType::ListPtySessions => {
            let p = payload!(req, list_pty_sessions, ty);
            let sessions = eng
                .list(Some(Kind::Pty), &p.originator)
                .iter()
                .map(pty_info)
                .collect();
            DaemonResponse {
                list_pty_sessions: Some(ListPtySessionsResponse { sessions }),
                ..ok_response(id)
            }
        }
        RequestType::TerminatePtySession => {
            let p = payload!(req, terminate_pty_session, ty);
            tryx!(id, eng.get_kind(&p.session_id, Kind::Pty));
            tryx!(id, eng.terminate(&p.session_id, grace(p.grace_ms)));
            DaemonResponse {
                terminate_pty_session: Some(TerminatePtySessionResponse {}),
                ..ok_response(id)
            }
        }
        RequestType::ResizePtySession => {
            let p = payload!(req, resize_pty_session, ty);
            let s = tryx!(id, eng.get(&p.session_id));
            let rows = invalid!(
                id,
                u16::try_from(p.rows)
                    .map_err(|_| format!("resize_pty_session.rows {} is too large", p.rows))
            );
            let cols = invalid!(
                id,
                u16::try_from(p.cols)
                    .map_err(|_| format!("resize_pty_session.cols {} is too large", p.cols))
            );
            tryx!(id, s.resize(rows, cols));
            DaemonResponse {
                resize_pty_session: Some(ResizePtySessionResponse {}),
                ..ok_response(id)
            }
        }
        RequestType::SpawnPipeSession => {
            let p = payload!(req, spawn_pipe_session, ty);
            let (clear_env, user_baseline) = invalid!(
                id,
                super::handlers::env_base(
                    "spawn_pipe_session",
                    p.environment_policy,
                    p.clear_inherited_env
                )
            );
            let s = tryx!(
                id,
                eng.spawn_pipe(&PipeSpawn {
                    argv: p.argv.clone(),
                    cwd: p.cwd.clone(),
                    env: env(&p.env),
                    clear_env,
                    user_baseline,
                    originator: originator(req, &p.originator),
                    merge_stderr: p.merge_stderr_into_stdout,
                    name: p.name.clone(),
                })
            );
            let info = s.info();
            DaemonResponse {
                spawn_pipe_session: Some(SpawnPipeSessionResponse {
                    session_id: info.id,
                    pid: info.pid,
                    created_at: info.created_at,
                }),
                ..ok_response(id)
            }
        }
        RequestType::AttachPipeStream => {
            let p = payload!(req, attach_pipe_stream, ty);
            tryx!(id, eng.get_kind(&p.session_id, Kind::Pipe));
            let stream = invalid!(id, pipe_stream("attach_pipe_stream.stream", p.stream));
            let opts = AttachOptions {
                stream,
                steal: p.steal,
                read_only: p.read_only,
                replay: Replay::Raw,
                client: ClientInfo::default(),
                label: label(req),
            };
            let mut att = tryx!(id, eng.attach(&p.session_id, opts));
            let resp = DaemonResponse {
                attach_pipe_stream: Some(AttachPipeStreamResponse {
                    backlog: std::mem::take(&mut att.initial),
                    backlog_truncated: att.bytes_missed > 0,
                    bytes_missed: att.bytes_missed,
                }),
                ..ok_response(id)
            };
            return (resp, After::Attach(Box::new(att), Kind::Pipe));
        }
        RequestType::DetachPipeStream => {
            let p = payload!(req, detach_pipe_stream, ty);
            tryx!(id, eng.get_kind(&p.session_id, Kind::Pipe));
            let stream = invalid!(id, pipe_stream("detach_pipe_stream.stream", p.stream));
            tryx!(id, eng.detach(&p.session_id, stream, &label(req)));
            DaemonResponse {
                detach_pipe_stream: Some(DetachPipeStreamResponse {}),
                ..ok_response(id)
            }
        }
        RequestType::ListPipeSessions => {
            let p = payload!(req, list_pipe_sessions, ty);
            let sessions = eng
                .list(Some(Kind::Pipe), &p.originator)
                .iter()
                .map(pipe_info)
                .collect();
            DaemonResponse {
                list_pipe_sessions: Some(ListPipeSessionsResponse { sessions }),
                ..ok_response(id)
            }
        }
        RequestType::TerminatePipeSession => {
            let p = payload!(req, terminate_pipe_session, ty);
            tryx!(id, eng.get_kind(&p.session_id, Kind::Pipe));
            tryx!(id, eng.terminate(&p.session_id, grace(p.grace_ms)));
            DaemonResponse {
                terminate_pipe_session: Some(TerminatePipeSessionResponse {}),
                ..ok_response(id)
            }
        }
        RequestType::WritePipeStdin => {
            let p = payload!(req, write_pipe_stdin, ty);
            // berth extension: on a PTY session this types into the terminal.
            let s = tryx!(id, eng.get(&p.session_id));
            let mut written = 0;
            if !p.data.is_empty() || !p.close {
                written = tryx!(id, s.write_input(&p.data).await);
            }
            if p.close {
                tryx!(id, s.close_stdin().await);
            }
            DaemonResponse {
                write_pipe_stdin: Some(WritePipeStdinResponse {
                    bytes_written: written as u64,
                }),
                ..ok_response(id)
            }
        }
        RequestType::GetSessionBacklog => {
            let p = payload!(req, get_session_backlog, ty);
            let s = tryx!(id, eng.get(&p.session_id));
            let stream = match s.kind() {
                Kind::Pty => StreamId::Output,
                Kind::Pipe if p.pipe_stream == 0 => StreamId::Output,
                Kind::Pipe => invalid!(
                    id,
                    pipe_stream("get_session_backlog.pipe_stream", p.pipe_stream)
                ),
            };
            let (s, backlog, missed) = tryx!(id, eng.backlog(&p.session_id, stream));
            let exit = s.exit();
            DaemonResponse {
                get_session_backlog: Some(GetSessionBacklogResponse {
                    backlog,
                    bytes_missed: missed,
                    session_kind: s.kind().as_str().into(),
                    exited: exit.is_some(),
                    exit_code: exit.map(|e| e.code).unwrap_or(0),
                    exited_at: exit.map(|e| e.at).unwrap_or(0.0),
                    termination_outcome: outcome(exit),
                }),
                ..ok_response(id)
            }
        }
        RequestType::PurgeExitedSessions => {
            let p = payload!(req, purge_exited_sessions, ty);
            let (pty, pipe) = tryx!(id, eng.purge_exited(&p.originator));
            DaemonResponse {
                purge_exited_sessions: Some(PurgeExitedSessionsResponse {
                    pty_purged: pty,
                    pipe_purged: pipe,
                }),
                ..ok_response(id)
            }
        }
        RequestType::BulkTerminateSessions => {
            let p = payload!(req, bulk_terminate_sessions, ty);
            let (pty, pipe) = eng.bulk_terminate(
                Duration::from_secs(p.older_than_secs),
                &p.originator,
                grace(p.grace_ms),
            );
            DaemonResponse {
                bulk_terminate_sessions: Some(BulkTerminateSessionsResponse {
                    pty_terminated: pty,
                    pipe_terminated: pipe,
                }),
                ..ok_response(id)
            }
        }
        RequestType::RegisterSessionTee => {
            let p = payload!(req, register_session_tee, ty);
            let stream = match TeeStreamKind::try_from(p.stream) {
                Ok(TeeStreamKind::PtyOutput) => TeeStream::PtyOutput,
                Ok(TeeStreamKind::Stdout) => TeeStream::Stdout,
                Ok(TeeStreamKind::Stderr) => TeeStream::Stderr,
                Ok(TeeStreamKind::Stdin) => TeeStream::Stdin,
                _ => {
                    return (
                        error_response(
                            id,
                            StatusCode::InvalidArgument,
                            format!("register_session_tee.stream {} is not a stream", p.stream),
                        ),
                        After::Continue,
                    )
                }
            };
            if TeeSinkKind::try_from(p.sink_kind) != Ok(TeeSinkKind::File) {
                return (
                    error_response(
                        id,
                        StatusCode::InvalidArgument,
                        "register_session_tee.sink_kind must be TEE_SINK_KIND_FILE",
                    ),
                    After::Continue,
                );
            }
            if p.file_path.is_empty() || p.file_path.contains(&0) {
                return (
                    error_response(
                        id,
                        StatusCode::InvalidArgument,
                        "register_session_tee.file_path must be a non-empty path without NUL bytes",
                    ),
                    After::Continue,
                );
            }
            let s = tryx!(id, eng.get(&p.session_id));
            let want = match TeeSessionKind::try_from(p.session_kind) {
                Ok(TeeSessionKind::Pty) => Some(Kind::Pty),
                Ok(TeeSessionKind::Pipe) => Some(Kind::Pipe),
                _ => None,
            };
            if want.is_some_and(|k| k != s.kind()) {
                return (error_response(id, StatusCode::InvalidArgument, format!("register_session_tee.session_kind does not match: session {} is a {} session", p.session_id, s.kind().as_str())), After::Continue);
            }
            let spec = TeeSpec {
                stream,
                path: std::path::PathBuf::from(std::ffi::OsStr::from_bytes(&p.file_path)),
                truncate: TeeFileMode::try_from(p.file_mode) == Ok(TeeFileMode::Truncate),
                capacity: p.queue_capacity as usize,
                suppress_markers: p.suppress_missed_markers,
                block: TeeBackpressure::try_from(p.backpressure) == Ok(TeeBackpressure::Block),
            };
            let handle = tryx!(id, eng.register_tee(&p.session_id, spec));
            DaemonResponse {
                register_session_tee: Some(RegisterSessionTeeResponse { tee_handle: handle }),
                ..ok_response(id)
            }
        }
        RequestType::UnregisterSessionTee => {
            let p = payload!(req, unregister_session_tee, ty);
            tryx!(id, eng.unregister_tee(&p.session_id, p.tee_handle));
            DaemonResponse {
                unregister_session_tee: Some(UnregisterSessionTeeResponse {}),
                ..ok_response(id)
            }
        }
        RequestType::GetSessionTeeStatus => {
            let p = payload!(req, get_session_tee_status, ty);
            let t = tryx!(id, eng.tee_status(&p.session_id, p.tee_handle));
            let stream = match t.stream {
                TeeStream::PtyOutput => TeeStreamKind::PtyOutput,
                TeeStream::Stdout => TeeStreamKind::Stdout,
                TeeStream::Stderr => TeeStreamKind::Stderr,
                TeeStream::Stdin => TeeStreamKind::Stdin,
            } as i32;
            DaemonResponse {
                get_session_tee_status: Some(GetSessionTeeStatusResponse {
                    stream,
                    missed_bytes: t.missed,
                    disconnected: t.disconnected,
                }),
                ..ok_response(id)
            }
        }
        other => error_response(
            id,
            StatusCode::UnknownRequest,
            format!("{} is not a session request", other.as_str_name()),
        ),
    };
    (resp, After::Continue)
}
