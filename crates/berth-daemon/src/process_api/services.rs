//! Requests 50-59: runpm's service supervision, mapped onto the service
//! engine.
//!
//! Conventions beyond the proto (see ARCHITECTURE.md):
//! - DESCRIBE puts *why* the service is where it is in the response's
//!   `message` (exit code or signal, crash loop, stop by request, pending
//!   restart, re-adoption). LIST puts one `ID<TAB>REASON` line per service
//!   there, in list order.
//! - `last_exit_code` is the exit code, or minus the signal number, or 0
//!   when the status could not be collected (a re-adopted process).
//! - SERVICE_LOGS with `follow` answers with the tail, then keeps sending
//!   further `DaemonResponse` frames on the same connection, same
//!   `request_id`, each carrying new lines in `service_logs.log_text`, until
//!   the client closes (or sends another request, which ends the stream).
//!   The published `running-process-client` instead polls on the same
//!   connection, so for that client name `follow` is answered with the tail
//!   alone, as its reference daemon does.

use crate::state::DaemonState;
use berth_engine::services::{ServiceError, ServiceInfo, ServiceSpec};
use berth_wire::daemon::*;
use berth_wire::envelope::{error_response, ok_response, require};
use berth_wire::frame;

/// `client_name` of the published Rust/Python client, which implements
/// `logs --follow` by polling with further requests on the same connection.
pub const POLLING_CLIENT: &str = "running-process-client";

/// Most log text in one response: the newest lines are kept.
const LOG_BUDGET: usize = 1 << 20;

/// The request's payload, or return the refusal naming the missing field.
macro_rules! payload {
    ($req:expr, $field:ident, $ty:expr) => {
        match require($req, &$req.$field, $ty) {
            Ok(p) => p,
            Err(r) => return *r,
        }
    };
}

/// An engine error as a response; `prefix` names where in the request the
/// offending field sits (`service_start.config`, `service_stop`).
fn refuse(id: u64, prefix: &str, e: ServiceError) -> DaemonResponse {
    let (code, msg) = match e {
        ServiceError::Invalid { field, message } => (
            StatusCode::InvalidArgument,
            format!("{prefix}.{field}: {message}"),
        ),
        ServiceError::InvalidArgument(m) => (StatusCode::InvalidArgument, format!("{prefix}.{m}")),
        ServiceError::NotFound(m) => (StatusCode::NotFound, format!("{prefix}.{m}")),
        e @ (ServiceError::Store(_) | ServiceError::Os(_)) => (StatusCode::Internal, e.to_string()),
    };
    error_response(id, code, msg)
}

fn config_of(s: &ServiceSpec) -> ServiceConfig {
    ServiceConfig {
        name: s.name.clone(),
        cmd: s.cmd.clone(),
        cwd: s.cwd.clone(),
        env: s.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        autorestart: s.autorestart,
        max_restarts: s.max_restarts,
        restart_delay_ms: s.restart_delay_ms,
        kill_timeout_ms: s.kill_timeout_ms,
        min_uptime_ms: s.min_uptime_ms,
    }
}

/// A relative `cwd` (runpm passes `--cwd .` as typed) is resolved against
/// the daemon's working directory, where the reference daemon's spawn would
/// resolve it; the service records the absolute path.
fn resolve_cwd(cwd: &str) -> String {
    if cwd.is_empty() || std::path::Path::new(cwd).is_absolute() {
        return cwd.to_string();
    }
    match std::env::current_dir() {
        Ok(here) => {
            let joined = here.join(cwd);
            joined
                .canonicalize()
                .unwrap_or(joined)
                .display()
                .to_string()
        }
        Err(_) => cwd.to_string(),
    }
}

fn spec_of(c: &ServiceConfig) -> ServiceSpec {
    ServiceSpec {
        name: c.name.clone(),
        cmd: c.cmd.clone(),
        cwd: resolve_cwd(&c.cwd),
        env: c.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        autorestart: c.autorestart,
        max_restarts: c.max_restarts,
        restart_delay_ms: c.restart_delay_ms,
        kill_timeout_ms: c.kill_timeout_ms,
        min_uptime_ms: c.min_uptime_ms,
        outlive_daemon: false,
    }
}

fn state_of(i: &ServiceInfo) -> ServiceState {
    ServiceState {
        name: i.spec.name.clone(),
        id: i.id,
        status: i.status.as_str().to_string(),
        pid: i.pid,
        restart_count: i.restart_count,
        last_started_at: i.last_started_at,
        last_exited_at: i.last_exited_at,
        last_exit_code: i.last_exit_code,
        config: Some(config_of(&i.spec)),
    }
}

pub async fn start(req: &DaemonRequest, ty: RequestType, st: &DaemonState) -> DaemonResponse {
    let p = payload!(req, service_start, ty);
    let Some(cfg) = &p.config else {
        return error_response(
            req.id,
            StatusCode::InvalidArgument,
            "service_start.config is required: the ServiceConfig to start",
        );
    };
    match st.services.start(spec_of(cfg)).await {
        Ok(info) => DaemonResponse {
            service_start: Some(ServiceStartResponse {
                service: Some(state_of(&info)),
            }),
            ..ok_response(req.id)
        },
        Err(e) => refuse(req.id, "service_start.config", e),
    }
}

pub async fn stop(req: &DaemonRequest, ty: RequestType, st: &DaemonState) -> DaemonResponse {
    let p = payload!(req, service_stop, ty);
    match st.services.stop(&p.target).await {
        Ok(n) => DaemonResponse {
            service_stop: Some(ServiceStopResponse { stopped_count: n }),
            ..ok_response(req.id)
        },
        Err(e) => refuse(req.id, "service_stop", e),
    }
}

pub async fn restart(req: &DaemonRequest, ty: RequestType, st: &DaemonState) -> DaemonResponse {
    let p = payload!(req, service_restart, ty);
    match st.services.restart(&p.target).await {
        Ok(n) => DaemonResponse {
            service_restart: Some(ServiceRestartResponse { restarted_count: n }),
            ..ok_response(req.id)
        },
        Err(e) => refuse(req.id, "service_restart", e),
    }
}

pub async fn delete(req: &DaemonRequest, ty: RequestType, st: &DaemonState) -> DaemonResponse {
    let p = payload!(req, service_delete, ty);
    match st.services.delete(&p.target).await {
        Ok(n) => DaemonResponse {
            service_delete: Some(ServiceDeleteResponse { deleted_count: n }),
            ..ok_response(req.id)
        },
        Err(e) => refuse(req.id, "service_delete", e),
    }
}

pub fn list(id: u64, st: &DaemonState) -> DaemonResponse {
    let all = st.services.list();
    let reasons: Vec<String> = all
        .iter()
        .map(|i| format!("{}\t{}", i.id, i.reason.replace(['\n', '\t'], " ")))
        .collect();
    DaemonResponse {
        message: reasons.join("\n"),
        service_list: Some(ServiceListResponse {
            services: all.iter().map(state_of).collect(),
        }),
        ..ok_response(id)
    }
}

pub fn describe(req: &DaemonRequest, ty: RequestType, st: &DaemonState) -> DaemonResponse {
    let p = payload!(req, service_describe, ty);
    match st.services.describe(&p.target) {
        Ok(info) => DaemonResponse {
            message: info.reason.clone(),
            service_describe: Some(ServiceDescribeResponse {
                service: Some(state_of(&info)),
            }),
            ..ok_response(req.id)
        },
        Err(e) => refuse(req.id, "service_describe", e),
    }
}

/// The largest char boundary of `s` at or below `i`.
fn floor_boundary(s: &str, i: usize) -> usize {
    let mut i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Keeps the newest whole lines of `text` that fit in `budget` bytes.
fn newest(text: String, budget: usize) -> String {
    if text.len() <= budget {
        return text;
    }
    let cut = floor_boundary(&text, text.len() - budget);
    let start = text[cut..]
        .find('\n')
        .map(|i| cut + i + 1)
        .unwrap_or(text.len());
    text[start..].to_string()
}

/// Splits `text` into pieces of at most `budget` bytes at line ends (a
/// longer line is its own piece; the engine caps lines far below this).
fn pieces(text: &str, budget: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while rest.len() > budget {
        let cut = rest[..floor_boundary(rest, budget)]
            .rfind('\n')
            .map(|i| i + 1)
            .unwrap_or_else(|| rest.find('\n').map(|i| i + 1).unwrap_or(rest.len()));
        out.push(&rest[..cut]);
        rest = &rest[cut..];
    }
    if !rest.is_empty() {
        out.push(rest);
    }
    out
}

fn logs_response(id: u64, text: String) -> DaemonResponse {
    DaemonResponse {
        service_logs: Some(ServiceLogsResponse { log_text: text }),
        ..ok_response(id)
    }
}

pub fn logs(
    req: &DaemonRequest,
    ty: RequestType,
    st: &DaemonState,
) -> (DaemonResponse, super::handlers::After) {
    use super::handlers::After;
    let p = match require(req, &req.service_logs, ty) {
        Ok(p) => p,
        Err(r) => return (*r, After::Continue),
    };
    if !p.follow || req.client_name == POLLING_CLIENT {
        let r = match st.services.logs(&p.target, p.lines) {
            Ok(text) => logs_response(req.id, newest(text, LOG_BUDGET)),
            Err(e) => refuse(req.id, "service_logs", e),
        };
        return (r, After::Continue);
    }
    let (text, mut follow) = match st.services.follow(&p.target, p.lines) {
        Ok(x) => x,
        Err(e) => return (refuse(req.id, "service_logs", e), After::Continue),
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(64);
    let id = req.id;
    tokio::spawn(async move {
        loop {
            let chunk = tokio::select! {
                c = follow.next() => c,
                _ = tx.closed() => None,
            };
            let Some(chunk) = chunk else { break };
            for piece in pieces(&chunk, LOG_BUDGET) {
                let Ok(bytes) = frame::encode(&logs_response(id, piece.to_string())) else {
                    continue;
                };
                if tx.send(bytes).await.is_err() {
                    return;
                }
            }
        }
    });
    (
        logs_response(req.id, newest(text, LOG_BUDGET)),
        After::Stream(rx),
    )
}

pub fn flush(req: &DaemonRequest, _ty: RequestType, st: &DaemonState) -> DaemonResponse {
    // Like the reference daemon: no payload or an empty target means all.
    let target = req
        .service_flush
        .as_ref()
        .map(|p| p.target.as_str())
        .unwrap_or("");
    match st.services.flush(target) {
        Ok(n) => DaemonResponse {
            service_flush: Some(ServiceFlushResponse { flushed_count: n }),
            ..ok_response(req.id)
        },
        Err(e) => refuse(req.id, "service_flush", e),
    }
}

pub fn save(id: u64, st: &DaemonState) -> DaemonResponse {
    match st.services.save() {
        Ok((path, n)) => DaemonResponse {
            service_save: Some(ServiceSaveResponse {
                snapshot_path: path.display().to_string(),
                service_count: n,
            }),
            ..ok_response(id)
        },
        Err(e) => refuse(id, "service_save", e),
    }
}

pub async fn resurrect(id: u64, st: &DaemonState) -> DaemonResponse {
    match st.services.resurrect().await {
        Ok(r) => {
            let mut message = format!(
                "started {}, already running {}, restored stopped {}",
                r.started, r.already_running, r.defined
            );
            for f in &r.failed {
                message.push_str(&format!("; failed {f}"));
            }
            DaemonResponse {
                message,
                service_resurrect: Some(ServiceResurrectResponse {
                    restored_count: r.started,
                }),
                ..ok_response(id)
            }
        }
        Err(ServiceError::NotFound(m)) => error_response(id, StatusCode::NotFound, m),
        Err(e) => error_response(id, StatusCode::Internal, e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_keeps_whole_recent_lines_and_pieces_split_at_lines() {
        assert_eq!(newest("a\nbb\nccc\n".into(), 5), "ccc\n");
        assert_eq!(newest("a\n".into(), 5), "a\n");
        assert_eq!(pieces("a\nbb\nccc\n", 5), ["a\nbb\n", "ccc\n"]);
        assert_eq!(pieces("abcdefgh\nx\n", 4), ["abcdefgh\n", "x\n"]);
        assert_eq!(newest("é\né\n".into(), 4), "é\n");
        assert_eq!(pieces("éé\né\n", 3), ["éé\n", "é\n"]);
    }
}
