//! Request dispatch: check the envelope, route each named request type to
//! its handler, and turn a refusal into the error response.

use super::after::{After, Answer};
use super::refusal::Refusal;
use super::{daemon, processes, services, sessions};
use crate::state::DaemonState;
use berth_wire::daemon::{DaemonRequest, DaemonResponse, RequestType, StatusCode};
use berth_wire::envelope::{request_type, PROTOCOL_VERSION};

/// A plain reply: the connection reads the next request after it.
fn reply(r: Result<DaemonResponse, Refusal>) -> Result<Answer, Refusal> {
    r.map(|resp| (resp, After::Continue))
}

/// Answers one request: the response to send, and what the connection
/// does next. A refused request is answered with its code and message and
/// the connection carries on.
pub(super) async fn dispatch(req: &DaemonRequest, st: &DaemonState) -> Answer {
    match route(req, st).await {
        Ok(answer) => answer,
        Err(refusal) => (refusal.into_response(req.id), After::Continue),
    }
}

async fn route(req: &DaemonRequest, st: &DaemonState) -> Result<Answer, Refusal> {
    if req.protocol_version > PROTOCOL_VERSION {
        return Err(Refusal::new(
            StatusCode::VersionMismatch,
            format!(
                "protocol_version {} is not supported; this daemon speaks version {PROTOCOL_VERSION}",
                req.protocol_version
            ),
        ));
    }
    let ty = request_type(req).ok_or_else(|| {
        Refusal::new(
            StatusCode::UnknownRequest,
            format!("unknown request type {}", req.r#type),
        )
    })?;
    tracing::debug!(id = req.id, ty = ty.as_str_name(), client = %req.client_name, "request");
    match ty {
        RequestType::Unspecified => Err(Refusal::new(
            StatusCode::UnknownRequest,
            "request type is unset (REQUEST_TYPE_UNSPECIFIED)",
        )),
        // The daemon itself.
        RequestType::Ping => reply(daemon::ping(req)),
        RequestType::Status => reply(daemon::status(req, st)),
        RequestType::Shutdown => daemon::shutdown(req),
        // The process registry.
        RequestType::Register => reply(processes::register(req, st)),
        RequestType::Unregister => reply(processes::unregister(req, st)),
        RequestType::SpawnDaemon => reply(processes::spawn_daemon(req, st).await),
        RequestType::ListActive => reply(processes::list_active(req, st)),
        RequestType::ListByOriginator => reply(processes::list_by_originator(req, st)),
        RequestType::GetProcessTree => reply(processes::process_tree(req)),
        RequestType::KillZombies => reply(processes::kill_zombies(req, st).await),
        RequestType::KillTree => reply(processes::kill_tree(req, st).await),
        // Services.
        RequestType::ServiceStart => reply(services::start(req, st).await),
        RequestType::ServiceStop => reply(services::stop(req, st).await),
        RequestType::ServiceRestart => reply(services::restart(req, st).await),
        RequestType::ServiceDelete => reply(services::delete(req, st).await),
        RequestType::ServiceList => reply(services::list(req, st)),
        RequestType::ServiceDescribe => reply(services::describe(req, st)),
        RequestType::ServiceLogs => services::logs(req, st),
        RequestType::ServiceFlush => reply(services::flush(req, st)),
        RequestType::ServiceSave => reply(services::save(req, st)),
        RequestType::ServiceResurrect => reply(services::resurrect(req, st).await),
        // PTY sessions.
        RequestType::SpawnPtySession => reply(sessions::spawn_pty(req, st)),
        RequestType::AttachPtySession => sessions::attach_pty(req, st),
        RequestType::DetachPtySession => reply(sessions::detach_pty(req, st)),
        RequestType::ListPtySessions => reply(sessions::list_pty(req, st)),
        RequestType::TerminatePtySession => reply(sessions::terminate_pty(req, st)),
        RequestType::ResizePtySession => reply(sessions::resize_pty(req, st)),
        // Pipe sessions.
        RequestType::SpawnPipeSession => reply(sessions::spawn_pipe(req, st)),
        RequestType::AttachPipeStream => sessions::attach_pipe(req, st),
        RequestType::DetachPipeStream => reply(sessions::detach_pipe(req, st)),
        RequestType::ListPipeSessions => reply(sessions::list_pipe(req, st)),
        RequestType::TerminatePipeSession => reply(sessions::terminate_pipe(req, st)),
        RequestType::WritePipeStdin => reply(sessions::write_stdin(req, st).await),
        // Either kind of session.
        RequestType::GetSessionBacklog => reply(sessions::backlog(req, st)),
        RequestType::PurgeExitedSessions => reply(sessions::purge_exited(req, st)),
        RequestType::BulkTerminateSessions => reply(sessions::bulk_terminate(req, st)),
        RequestType::RegisterSessionTee => reply(sessions::register_tee(req, st)),
        RequestType::UnregisterSessionTee => reply(sessions::unregister_tee(req, st)),
        RequestType::GetSessionTeeStatus => reply(sessions::tee_status(req, st)),
    }
}
