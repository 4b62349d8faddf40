//! Requests 10-31: running-process's registry of tracked processes,
//! mapped onto the registry engine.

use super::refusal::{payload, Refusal};
use crate::state::DaemonState;
use berth_engine::registry::{
    timeout_from_secs, ProcState, RegisterRequest as EngineRegister, SpawnRequest, Tracked,
};
use berth_os::proc::ProcessTable;
use berth_wire::daemon::*;
use berth_wire::envelope::ok_response;
use std::time::Duration;

/// How long KILL_ZOMBIES waits for a killed process to go.
const ZOMBIE_KILL_WAIT: Duration = Duration::from_secs(3);

/// The `client_name` berth's own client sends (`berth_client::CLIENT_NAME`);
/// it gets berth's richer process tree and the whole session backlog.
pub(super) const BERTH_CLIENT_NAME: &str = "berth-cli";

/// The base environment a spawn request asks for, as `(clear, user_baseline)`:
/// the published clients' `environment_policy` when set, else the legacy
/// `clear_inherited_env` (false inherits the daemon's, true starts empty).
pub(super) fn env_base(field: &str, policy: i32, clear: bool) -> Result<(bool, bool), Refusal> {
    match EnvironmentPolicy::try_from(policy) {
        Ok(EnvironmentPolicy::Unspecified) => Ok((clear, false)),
        Ok(EnvironmentPolicy::Inherit) => Ok((false, false)),
        Ok(EnvironmentPolicy::UserBaseline) => Ok((true, true)),
        Ok(EnvironmentPolicy::Clear) => Ok((true, false)),
        Err(_) => Err(Refusal::invalid(format!(
            "{field}.environment_policy {policy} is not an EnvironmentPolicy (0-3)"
        ))),
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

/// REGISTER: track a process someone else started.
pub(super) fn register(req: &DaemonRequest, st: &DaemonState) -> Result<DaemonResponse, Refusal> {
    let p = payload(&req.register, RequestType::Register)?;
    st.registry.register(&EngineRegister {
        pid: p.pid,
        created_at: p.created_at,
        kind: p.kind.clone(),
        command: p.command.clone(),
        cwd: p.cwd.clone(),
        originator: p.originator.clone(),
        containment: p.containment.clone(),
    })?;
    Ok(DaemonResponse {
        register: Some(RegisterResponse {}),
        ..ok_response(req.id)
    })
}

/// UNREGISTER: stop tracking a process.
pub(super) fn unregister(req: &DaemonRequest, st: &DaemonState) -> Result<DaemonResponse, Refusal> {
    let p = payload(&req.unregister, RequestType::Unregister)?;
    st.registry.unregister(p.pid)?;
    Ok(DaemonResponse {
        unregister: Some(UnregisterResponse {}),
        ..ok_response(req.id)
    })
}

/// SPAWN_DAEMON: start a detached process and track it.
pub(super) async fn spawn_daemon(
    req: &DaemonRequest,
    st: &DaemonState,
) -> Result<DaemonResponse, Refusal> {
    let p = payload(&req.spawn_daemon, RequestType::SpawnDaemon)?;
    let (clear, user_baseline) =
        env_base("spawn_daemon", p.environment_policy, p.clear_inherited_env)?;
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
    let t = st.registry.spawn_detached(&spawn).await?;
    Ok(DaemonResponse {
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
    })
}

/// LIST_ACTIVE: the living tracked processes (and registrations never seen
/// running, until reaped); with the `include_dead` extension, also the
/// exited ones still retained.
pub(super) fn list_active(
    req: &DaemonRequest,
    st: &DaemonState,
) -> Result<DaemonResponse, Refusal> {
    let rows = if req.list_active.as_ref().is_some_and(|p| p.include_dead) {
        st.registry.list()?
    } else {
        st.registry.list_active()?
    };
    Ok(DaemonResponse {
        list_active: Some(ListActiveResponse {
            processes: rows.iter().map(tracked).collect(),
        }),
        ..ok_response(req.id)
    })
}

/// LIST_BY_ORIGINATOR: the tracked processes one tool registered.
pub(super) fn list_by_originator(
    req: &DaemonRequest,
    st: &DaemonState,
) -> Result<DaemonResponse, Refusal> {
    let p = payload(&req.list_by_originator, RequestType::ListByOriginator)?;
    if p.tool.is_empty() {
        return Err(Refusal::invalid(
            "list_by_originator.tool must not be empty",
        ));
    }
    let rows = st.registry.list_by_originator(&p.tool, p.include_dead)?;
    Ok(DaemonResponse {
        list_by_originator: Some(ListByOriginatorResponse {
            processes: rows.iter().map(tracked).collect(),
        }),
        ..ok_response(req.id)
    })
}

/// GET_PROCESS_TREE: a process and its descendants, drawn as text.
pub(super) fn process_tree(req: &DaemonRequest) -> Result<DaemonResponse, Refusal> {
    let p = payload(&req.get_process_tree, RequestType::GetProcessTree)?;
    if p.pid == 0 {
        return Err(Refusal::invalid(
            "get_process_tree.pid must be a process id > 0",
        ));
    }
    let table = ProcessTable::snapshot();
    // Every client but berth's own gets the text the published tools print,
    // in the reference's format (OK with "Process N not found" for a
    // missing pid); berth's own gets berth's richer tree and NOT_FOUND.
    let text = if req.client_name != BERTH_CLIENT_NAME {
        table.render_tree_reference(p.pid)
    } else {
        table.render_tree(p.pid).ok_or_else(|| {
            Refusal::not_found(format!("get_process_tree.pid {}: no such process", p.pid))
        })?
    };
    Ok(DaemonResponse {
        get_process_tree: Some(GetProcessTreeResponse { tree_display: text }),
        ..ok_response(req.id)
    })
}

/// KILL_ZOMBIES: kill (or with `dry_run` list) orphans of dead parents.
pub(super) async fn kill_zombies(
    req: &DaemonRequest,
    st: &DaemonState,
) -> Result<DaemonResponse, Refusal> {
    let p = payload(&req.kill_zombies, RequestType::KillZombies)?;
    let reports = st
        .registry
        .kill_zombies(p.dry_run, ZOMBIE_KILL_WAIT)
        .await?;
    Ok(DaemonResponse {
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
    })
}

/// KILL_TREE: a process and all its descendants, TERM then KILL.
pub(super) async fn kill_tree(
    req: &DaemonRequest,
    st: &DaemonState,
) -> Result<DaemonResponse, Refusal> {
    let p = payload(&req.kill_tree, RequestType::KillTree)?;
    let timeout = timeout_from_secs(p.timeout_seconds)?;
    let out = st.registry.kill_tree(p.pid, timeout).await?;
    Ok(DaemonResponse {
        kill_tree: Some(KillTreeResponse {
            processes_killed: out.killed,
        }),
        ..ok_response(req.id)
    })
}
