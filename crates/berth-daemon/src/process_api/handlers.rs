//! Request dispatch: validate the envelope, call the engine, translate.

use super::services;
use crate::state::DaemonState;
use berth_engine::registry::{
    timeout_from_secs, ProcState, RegisterRequest as EngineRegister, RegistryError, SpawnRequest,
    Tracked,
};
use berth_os::proc::{self, ProcessTable};
use berth_wire::daemon::*;
use berth_wire::envelope::{error_response, ok_response, request_type, require, PROTOCOL_VERSION};
use std::time::Duration;

/// What the connection does after sending the response.
pub enum After {
    /// Carry an attach stream until it ends.
    Attach(
        Box<berth_engine::sessions::Attachment>,
        berth_engine::sessions::Kind,
    ),
    /// Read the next request.
    Continue,
    /// Stop the daemon (the reply has been sent first).
    Shutdown {
        /// Let in-flight requests finish.
        graceful: bool,
        /// How long to wait for them.
        timeout: Duration,
    },
    /// Send these already-framed messages after the reply, as they come,
    /// until the producer drops its sender or the peer closes or sends a
    /// request (which ends the stream and is then answered as usual).
    Stream(tokio::sync::mpsc::Receiver<Vec<u8>>),
}

fn engine_error(id: u64, e: RegistryError) -> DaemonResponse {
    let code = match &e {
        RegistryError::InvalidArgument(_) => StatusCode::InvalidArgument,
        RegistryError::NotFound(_) => StatusCode::NotFound,
        RegistryError::Store(_) | RegistryError::Os(_) => StatusCode::Internal,
    };
    error_response(id, code, e.to_string())
}

/// The base environment a spawn request asks for, as `(clear, user_baseline)`:
/// the published clients' `environment_policy` when set, else the legacy
/// `clear_inherited_env` (false inherits the daemon's, true starts empty).
pub(super) fn env_base(field: &str, policy: i32, clear: bool) -> Result<(bool, bool), String> {
    match EnvironmentPolicy::try_from(policy) {
        Ok(EnvironmentPolicy::Unspecified) => Ok((clear, false)),
        Ok(EnvironmentPolicy::Inherit) => Ok((false, false)),
        Ok(EnvironmentPolicy::UserBaseline) => Ok((true, true)),
        Ok(EnvironmentPolicy::Clear) => Ok((true, false)),
        Err(_) => Err(format!(
            "{field}.environment_policy {policy} is not an EnvironmentPolicy (0-3)"
        )),
    }
}

fn tracked(t: &Tracked) -> TrackedProcess {
    TrackedProcess {
        pid: t.identity.pid,
        created_at: t.created_at,
        kind: t.kind.clone(),
        command: t.command.clone(),
        cwd: t.cwd.clone(),
        originator: t.originator.clone(),
        containment: t.containment.clone(),
        registered_at: t.registered_at,
        uptime_seconds: if t.state == ProcState::Alive {
            t.uptime_seconds()
        } else {
            0.0
        },
        parent_alive: t.parent_alive,
        state: match t.state {
            ProcState::Unknown => ProcessState::Unknown,
            ProcState::Alive => ProcessState::Alive,
            ProcState::Dead => ProcessState::Dead,
            ProcState::Zombie => ProcessState::Zombie,
        } as i32,
        last_validated_at: t.last_validated_at,
        containment_detail: t.containment_detail.clone(),
        identity_verified: t.identity_verified(),
    }
}

/// Answers one request.
pub async fn dispatch(req: &DaemonRequest, st: &DaemonState) -> (DaemonResponse, After) {
    let id = req.id;
    if req.protocol_version > PROTOCOL_VERSION {
        let msg = format!(
            "protocol_version {} is not supported; this daemon speaks version {PROTOCOL_VERSION}",
            req.protocol_version
        );
        return (
            error_response(id, StatusCode::VersionMismatch, msg),
            After::Continue,
        );
    }
    let Some(ty) = request_type(req) else {
        let msg = format!("unknown request type {}", req.r#type);
        return (
            error_response(id, StatusCode::UnknownRequest, msg),
            After::Continue,
        );
    };
    tracing::debug!(id, ty = ty.as_str_name(), client = %req.client_name, "request");
    let resp = match ty {
        RequestType::Unspecified => error_response(
            id,
            StatusCode::UnknownRequest,
            "request type is unset (REQUEST_TYPE_UNSPECIFIED)",
        ),
        RequestType::Ping => ping(id),
        RequestType::Status => status(id, st),
        RequestType::Shutdown => return shutdown(req, ty),
        RequestType::Register => register(req, ty, st),
        RequestType::Unregister => unregister(req, ty, st),
        RequestType::SpawnDaemon => spawn_daemon(req, ty, st).await,
        RequestType::ListActive => list_active(req, st),
        RequestType::ListByOriginator => list_by_originator(req, ty, st),
        RequestType::GetProcessTree => process_tree(req, ty),
        RequestType::KillZombies => kill_zombies(req, ty, st).await,
        RequestType::KillTree => kill_tree(req, ty, st).await,
        RequestType::ServiceStart => services::start(req, ty, st).await,
        RequestType::ServiceStop => services::stop(req, ty, st).await,
        RequestType::ServiceRestart => services::restart(req, ty, st).await,
        RequestType::ServiceDelete => services::delete(req, ty, st).await,
        RequestType::ServiceList => services::list(req.id, st),
        RequestType::ServiceDescribe => services::describe(req, ty, st),
        RequestType::ServiceLogs => return services::logs(req, ty, st),
        RequestType::ServiceFlush => services::flush(req, ty, st),
        RequestType::ServiceSave => services::save(req.id, st),
        RequestType::ServiceResurrect => services::resurrect(req.id, st).await,
        t if (60..=77).contains(&(t as i32)) => return super::sessions::handle(req, t, st).await,
        other => error_response(
            id,
            StatusCode::UnknownRequest,
            format!("unhandled request type {}", other.as_str_name()),
        ),
    };
    (resp, After::Continue)
}

macro_rules! payload {
    ($req:expr, $field:ident, $ty:expr) => {
        match require($req, &$req.$field, $ty) {
            Ok(p) => p,
            Err(resp) => return *resp,
        }
    };
}

fn ping(id: u64) -> DaemonResponse {
    let now_ms = (proc::now_epoch() * 1000.0) as i64;
    DaemonResponse {
        ping: Some(PingResponse {
            server_time_ms: now_ms,
        }),
        ..ok_response(id)
    }
}

fn status(id: u64, st: &DaemonState) -> DaemonResponse {
    let tracked = match st.registry.count() {
        Ok(n) => n,
        Err(e) => return engine_error(id, e),
    };
    DaemonResponse {
        status: Some(StatusResponse {
            version: env!("CARGO_PKG_VERSION").to_string(),
            uptime_seconds: st.started.elapsed().as_secs(),
            tracked_process_count: tracked,
            active_connections: st
                .active_connections
                .load(std::sync::atomic::Ordering::Relaxed),
            socket_path: st.socket_path.clone(),
            db_path: st.store.path().display().to_string(),
            scope: st.scope_name(),
            scope_hash: st.scope.clone().unwrap_or_default(),
            scope_cwd: st.scope_cwd.clone(),
            emergency_reserve: st.store.reserve().state().as_str().to_string(),
        }),
        ..ok_response(id)
    }
}

fn shutdown(req: &DaemonRequest, ty: RequestType) -> (DaemonResponse, After) {
    let p = match require(req, &req.shutdown, ty) {
        Ok(p) => p,
        Err(resp) => return (*resp, After::Continue),
    };
    let timeout = match timeout_from_secs(p.timeout_seconds) {
        Ok(t) => t,
        Err(e) => return (engine_error(req.id, e), After::Continue),
    };
    let resp = DaemonResponse {
        shutdown: Some(ShutdownResponse {}),
        ..ok_response(req.id)
    };
    (
        resp,
        After::Shutdown {
            graceful: p.graceful,
            timeout,
        },
    )
}

fn register(req: &DaemonRequest, ty: RequestType, st: &DaemonState) -> DaemonResponse {
    let p = payload!(req, register, ty);
    let input = EngineRegister {
        pid: p.pid,
        created_at: p.created_at,
        kind: p.kind.clone(),
        command: p.command.clone(),
        cwd: p.cwd.clone(),
        originator: p.originator.clone(),
        containment: p.containment.clone(),
    };
    match st.registry.register(&input) {
        Ok(_) => DaemonResponse {
            register: Some(RegisterResponse {}),
            ..ok_response(req.id)
        },
        Err(e) => engine_error(req.id, e),
    }
}

fn unregister(req: &DaemonRequest, ty: RequestType, st: &DaemonState) -> DaemonResponse {
    let p = payload!(req, unregister, ty);
    match st.registry.unregister(p.pid) {
        Ok(()) => DaemonResponse {
            unregister: Some(UnregisterResponse {}),
            ..ok_response(req.id)
        },
        Err(e) => engine_error(req.id, e),
    }
}

async fn spawn_daemon(req: &DaemonRequest, ty: RequestType, st: &DaemonState) -> DaemonResponse {
    let p = payload!(req, spawn_daemon, ty);
    let (clear, user_baseline) =
        match env_base("spawn_daemon", p.environment_policy, p.clear_inherited_env) {
            Ok(b) => b,
            Err(msg) => return error_response(req.id, StatusCode::InvalidArgument, msg),
        };
    let spawn = SpawnRequest {
        command: p.command.clone(),
        cwd: p.cwd.clone(),
        env: p
            .env
            .iter()
            .map(|kv| (kv.key.clone(), kv.value.clone()))
            .collect(),
        clear_inherited_env: clear,
        user_baseline,
        // As the reference: no originator means the client's name.
        originator: if p.originator.trim().is_empty() {
            req.client_name.clone()
        } else {
            p.originator.clone()
        },
    };
    match st.registry.spawn_detached(&spawn).await {
        Ok(t) => DaemonResponse {
            spawn_daemon: Some(SpawnDaemonResponse {
                pid: t.identity.pid,
                created_at: t.created_at,
                command: t.command,
                cwd: t.cwd,
                originator: t.originator,
                containment: t.containment,
                containment_detail: t.containment_detail,
            }),
            ..ok_response(req.id)
        },
        Err(e) => engine_error(req.id, e),
    }
}

fn list_active(req: &DaemonRequest, st: &DaemonState) -> DaemonResponse {
    let id = req.id;
    let include_dead = req.list_active.as_ref().is_some_and(|p| p.include_dead);
    let rows = if include_dead {
        st.registry.list()
    } else {
        st.registry.list_active()
    };
    match rows {
        Ok(rows) => DaemonResponse {
            list_active: Some(ListActiveResponse {
                processes: rows.iter().map(tracked).collect(),
            }),
            ..ok_response(id)
        },
        Err(e) => engine_error(id, e),
    }
}

fn list_by_originator(req: &DaemonRequest, ty: RequestType, st: &DaemonState) -> DaemonResponse {
    let p = payload!(req, list_by_originator, ty);
    if p.tool.is_empty() {
        return error_response(
            req.id,
            StatusCode::InvalidArgument,
            "list_by_originator.tool must not be empty",
        );
    }
    match st.registry.list_by_originator(&p.tool, p.include_dead) {
        Ok(rows) => DaemonResponse {
            list_by_originator: Some(ListByOriginatorResponse {
                processes: rows.iter().map(tracked).collect(),
            }),
            ..ok_response(req.id)
        },
        Err(e) => engine_error(req.id, e),
    }
}

fn process_tree(req: &DaemonRequest, ty: RequestType) -> DaemonResponse {
    let p = payload!(req, get_process_tree, ty);
    if p.pid == 0 {
        return error_response(
            req.id,
            StatusCode::InvalidArgument,
            "get_process_tree.pid must be a process id > 0",
        );
    }
    let table = ProcessTable::snapshot();
    // berth's own client gets berth's richer tree (state, command line of
    // every process) and NOT_FOUND; every other client gets the text the
    // published tools print, in the reference's format.
    if req.client_name != berth_client_name() {
        return DaemonResponse {
            get_process_tree: Some(GetProcessTreeResponse {
                tree_display: table.render_tree_reference(p.pid),
            }),
            ..ok_response(req.id)
        };
    }
    match table.render_tree(p.pid) {
        Some(text) => DaemonResponse {
            get_process_tree: Some(GetProcessTreeResponse { tree_display: text }),
            ..ok_response(req.id)
        },
        None => error_response(
            req.id,
            StatusCode::NotFound,
            format!("get_process_tree.pid {}: no such process", p.pid),
        ),
    }
}

/// The `client_name` berth's own client sends (`berth_client::CLIENT_NAME`).
fn berth_client_name() -> &'static str {
    "berth-cli"
}

async fn kill_zombies(req: &DaemonRequest, ty: RequestType, st: &DaemonState) -> DaemonResponse {
    let p = payload!(req, kill_zombies, ty);
    match st
        .registry
        .kill_zombies(p.dry_run, Duration::from_secs(3))
        .await
    {
        Ok(reports) => DaemonResponse {
            kill_zombies: Some(KillZombiesResponse {
                zombies: reports
                    .into_iter()
                    .map(|z| ZombieReport {
                        pid: z.pid,
                        command: z.command,
                        reason: z.reason,
                        killed: z.killed,
                    })
                    .collect(),
            }),
            ..ok_response(req.id)
        },
        Err(e) => engine_error(req.id, e),
    }
}

async fn kill_tree(req: &DaemonRequest, ty: RequestType, st: &DaemonState) -> DaemonResponse {
    let p = payload!(req, kill_tree, ty);
    let timeout = match timeout_from_secs(p.timeout_seconds) {
        Ok(t) => t,
        Err(e) => return engine_error(req.id, e),
    };
    match st.registry.kill_tree(p.pid, timeout).await {
        Ok(out) => DaemonResponse {
            kill_tree: Some(KillTreeResponse {
                processes_killed: out.killed,
            }),
            ..ok_response(req.id)
        },
        Err(e) => engine_error(req.id, e),
    }
}
