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

use super::after::{After, Answer};
use super::refusal::{payload, Refusal};
use crate::state::DaemonState;
use berth_engine::services::{ServiceError, ServiceInfo, ServiceSpec};
use berth_wire::daemon::*;
use berth_wire::envelope::ok_response;
use berth_wire::frame;

/// `client_name` of the published Rust/Python client, which implements
/// `logs --follow` by polling with further requests on the same connection.
pub(super) const POLLING_CLIENT: &str = "running-process-client";

/// Most log text in one response: the newest lines are kept.
const LOG_BUDGET: usize = 1 << 20;

/// Maps an engine error to a refusal naming where in the request the
/// offending field sits (`service_start.config`, `service_stop`).
fn at(prefix: &'static str) -> impl FnOnce(ServiceError) -> Refusal {
    move |e| Refusal::from(e).at(prefix)
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

/// SERVICE_START: define a service (or take an existing one by name) and
/// start it.
pub(super) async fn start(
    req: &DaemonRequest,
    st: &DaemonState,
) -> Result<DaemonResponse, Refusal> {
    let p = payload(&req.service_start, RequestType::ServiceStart)?;
    let cfg = p.config.as_ref().ok_or_else(|| {
        Refusal::invalid("service_start.config is required: the ServiceConfig to start")
    })?;
    let info = st
        .services
        .start(spec_of(cfg))
        .await
        .map_err(at("service_start.config"))?;
    Ok(DaemonResponse {
        service_start: Some(ServiceStartResponse {
            service: Some(state_of(&info)),
        }),
        ..ok_response(req.id)
    })
}

/// SERVICE_STOP: stop the services `target` names (id, name or `all`).
pub(super) async fn stop(req: &DaemonRequest, st: &DaemonState) -> Result<DaemonResponse, Refusal> {
    let p = payload(&req.service_stop, RequestType::ServiceStop)?;
    let n = st
        .services
        .stop(&p.target)
        .await
        .map_err(at("service_stop"))?;
    Ok(DaemonResponse {
        service_stop: Some(ServiceStopResponse { stopped_count: n }),
        ..ok_response(req.id)
    })
}

/// SERVICE_RESTART: restart the services `target` names.
pub(super) async fn restart(
    req: &DaemonRequest,
    st: &DaemonState,
) -> Result<DaemonResponse, Refusal> {
    let p = payload(&req.service_restart, RequestType::ServiceRestart)?;
    let n = st
        .services
        .restart(&p.target)
        .await
        .map_err(at("service_restart"))?;
    Ok(DaemonResponse {
        service_restart: Some(ServiceRestartResponse { restarted_count: n }),
        ..ok_response(req.id)
    })
}

/// SERVICE_DELETE: stop and forget the services `target` names.
pub(super) async fn delete(
    req: &DaemonRequest,
    st: &DaemonState,
) -> Result<DaemonResponse, Refusal> {
    let p = payload(&req.service_delete, RequestType::ServiceDelete)?;
    let n = st
        .services
        .delete(&p.target)
        .await
        .map_err(at("service_delete"))?;
    Ok(DaemonResponse {
        service_delete: Some(ServiceDeleteResponse { deleted_count: n }),
        ..ok_response(req.id)
    })
}

/// SERVICE_LIST: every service, with one `ID<TAB>REASON` line each in
/// `message`.
pub(super) fn list(req: &DaemonRequest, st: &DaemonState) -> Result<DaemonResponse, Refusal> {
    let all = st.services.list();
    let reasons: Vec<String> = all
        .iter()
        .map(|i| format!("{}\t{}", i.id, i.reason.replace(['\n', '\t'], " ")))
        .collect();
    Ok(DaemonResponse {
        message: reasons.join("\n"),
        service_list: Some(ServiceListResponse {
            services: all.iter().map(state_of).collect(),
        }),
        ..ok_response(req.id)
    })
}

/// SERVICE_DESCRIBE: one service, with why it is where it is in `message`.
pub(super) fn describe(req: &DaemonRequest, st: &DaemonState) -> Result<DaemonResponse, Refusal> {
    let p = payload(&req.service_describe, RequestType::ServiceDescribe)?;
    let info = st
        .services
        .describe(&p.target)
        .map_err(at("service_describe"))?;
    Ok(DaemonResponse {
        message: info.reason.clone(),
        service_describe: Some(ServiceDescribeResponse {
            service: Some(state_of(&info)),
        }),
        ..ok_response(req.id)
    })
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

/// berth's log lines (`TS out|err|berth TEXT`) in the reference daemon's
/// layout, which `runpm logs` prints: the stdout lines as `[stdout] TEXT`,
/// then the stderr lines as `[stderr] TEXT`; berth's own events (started,
/// exited...) are not service output and are left out. A line of another
/// shape is kept as stdout.
fn reference_layout(text: &str) -> String {
    let (mut out, mut err) = (String::new(), String::new());
    for line in text.lines() {
        let parsed = line
            .split_once(' ')
            .and_then(|(_ts, rest)| rest.split_once(' ').or(Some((rest, ""))));
        match parsed {
            Some(("out", body)) => out.push_str(&format!("[stdout] {body}\n")),
            Some(("err", body)) => err.push_str(&format!("[stderr] {body}\n")),
            Some(("berth", _)) => {}
            _ => out.push_str(&format!("[stdout] {line}\n")),
        }
    }
    out + &err
}

fn logs_response(id: u64, text: String) -> DaemonResponse {
    DaemonResponse {
        service_logs: Some(ServiceLogsResponse { log_text: text }),
        ..ok_response(id)
    }
}

/// SERVICE_LOGS: the newest `lines` of a service's log; with `follow`,
/// then every further line as it is written (see the module docs).
pub(super) fn logs(req: &DaemonRequest, st: &DaemonState) -> Result<Answer, Refusal> {
    let p = payload(&req.service_logs, RequestType::ServiceLogs)?;
    if !p.follow || req.client_name == POLLING_CLIENT {
        let text = st
            .services
            .logs(&p.target, p.lines)
            .map_err(at("service_logs"))?;
        // The published tools print one service's text as it comes: give
        // them the reference daemon's layout; berth's own clients (and the
        // merged all-services tail, tagged by name) keep berth's.
        let one = !(p.target.is_empty() || p.target == "all");
        let text = if req.client_name == POLLING_CLIENT && one {
            reference_layout(&text)
        } else {
            text
        };
        return Ok((
            logs_response(req.id, newest(text, LOG_BUDGET)),
            After::Continue,
        ));
    }
    let (text, mut follow) = st
        .services
        .follow(&p.target, p.lines)
        .map_err(at("service_logs"))?;
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
    Ok((
        logs_response(req.id, newest(text, LOG_BUDGET)),
        After::Stream(rx),
    ))
}

/// SERVICE_FLUSH: empty the logs of the services `target` names.
pub(super) fn flush(req: &DaemonRequest, st: &DaemonState) -> Result<DaemonResponse, Refusal> {
    // Like the reference daemon: no payload or an empty target means all.
    let target = req
        .service_flush
        .as_ref()
        .map(|p| p.target.as_str())
        .unwrap_or("");
    let n = st.services.flush(target).map_err(at("service_flush"))?;
    Ok(DaemonResponse {
        service_flush: Some(ServiceFlushResponse { flushed_count: n }),
        ..ok_response(req.id)
    })
}

/// SERVICE_SAVE: write the service set to the dump.
pub(super) fn save(req: &DaemonRequest, st: &DaemonState) -> Result<DaemonResponse, Refusal> {
    let (path, n) = st.services.save().map_err(at("service_save"))?;
    Ok(DaemonResponse {
        service_save: Some(ServiceSaveResponse {
            snapshot_path: path.display().to_string(),
            service_count: n,
        }),
        ..ok_response(req.id)
    })
}

/// SERVICE_RESURRECT: start what the last SAVE recorded as running.
pub(super) async fn resurrect(
    req: &DaemonRequest,
    st: &DaemonState,
) -> Result<DaemonResponse, Refusal> {
    // No dump is NOT_FOUND; any other failure (an unreadable dump, the
    // store) is the daemon's own, whatever the engine calls it.
    let r = st.services.resurrect().await.map_err(|e| match e {
        ServiceError::NotFound(m) => Refusal::not_found(m),
        e => Refusal::new(StatusCode::Internal, e.to_string()),
    })?;
    let mut message = format!(
        "started {}, already running {}, restored stopped {}",
        r.started, r.already_running, r.defined
    );
    for f in &r.failed {
        message.push_str(&format!("; failed {f}"));
    }
    Ok(DaemonResponse {
        message,
        service_resurrect: Some(ServiceResurrectResponse {
            restored_count: r.started,
        }),
        ..ok_response(req.id)
    })
}

#[cfg(test)]
mod tests {

    #[test]
    fn the_published_client_gets_the_reference_log_layout() {
        let berth = "2026-01-02T03:04:05.678Z berth started pid 7: sh -c x\n\
                     2026-01-02T03:04:05.700Z out one\n\
                     2026-01-02T03:04:05.701Z err oops\n\
                     2026-01-02T03:04:05.702Z out two\n";
        assert_eq!(
            super::reference_layout(berth),
            "[stdout] one\n[stdout] two\n[stderr] oops\n"
        );
        assert_eq!(super::reference_layout(""), "");
    }

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
