//! Requests 40-42: the daemon's own PING, SHUTDOWN and STATUS.

use super::after::{After, Answer};
use super::refusal::{payload, Refusal};
use crate::state::DaemonState;
use berth_engine::registry::timeout_from_secs;
use berth_os::proc;
use berth_wire::daemon::*;
use berth_wire::envelope::ok_response;
use std::sync::atomic::Ordering;

/// PING: the daemon's clock, in milliseconds since the epoch.
pub(super) fn ping(req: &DaemonRequest) -> Result<DaemonResponse, Refusal> {
    let now_ms = (proc::now_epoch() * 1000.0) as i64;
    Ok(DaemonResponse {
        ping: Some(PingResponse {
            server_time_ms: now_ms,
        }),
        ..ok_response(req.id)
    })
}

/// STATUS: version, uptime, counts and where the daemon keeps its files.
pub(super) fn status(req: &DaemonRequest, st: &DaemonState) -> Result<DaemonResponse, Refusal> {
    let tracked = st.registry.count()?;
    Ok(DaemonResponse {
        status: Some(StatusResponse {
            version: env!("CARGO_PKG_VERSION").to_string(),
            uptime_seconds: st.started.elapsed().as_secs(),
            tracked_process_count: tracked,
            active_connections: st.active_connections.load(Ordering::Relaxed),
            socket_path: st.socket_path.clone(),
            db_path: st.store.path().display().to_string(),
            scope: st.scope_name(),
            scope_hash: st.scope.clone().unwrap_or_default(),
            scope_cwd: st.scope_cwd.clone(),
            emergency_reserve: st.store.reserve().state().as_str().to_string(),
        }),
        ..ok_response(req.id)
    })
}

/// SHUTDOWN: answered first, then the connection asks the daemon to stop.
pub(super) fn shutdown(req: &DaemonRequest) -> Result<Answer, Refusal> {
    let p = payload(&req.shutdown, RequestType::Shutdown)?;
    let timeout = timeout_from_secs(p.timeout_seconds)?;
    let resp = DaemonResponse {
        shutdown: Some(ShutdownResponse {}),
        ..ok_response(req.id)
    };
    let after = After::Shutdown {
        graceful: p.graceful,
        timeout,
    };
    Ok((resp, after))
}
