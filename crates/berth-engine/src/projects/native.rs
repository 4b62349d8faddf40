//! The native runtime: each Compose service is a supervised service of
//! berth's service engine (named `<namespace>.<service>`), run on the host
//! with its command, environment and working directory; host ports reach
//! it through [`forward`](super::forward)ers. Its services outlive a daemon
//! shutdown, as containers outlive their engine, and are re-adopted.

use super::forward::{self, Forwarder};
use super::model::{LogEntry, LogStream, PortMapping, Progress, Protocol, RuntimeKind};
use super::runtime::{
    Observed, Plan, PlannedService, Probe, ProgressFn, ProjectRuntime, RestartPolicy, RuntimeError,
    RuntimeErrorKind,
};
use crate::services::{ServiceError, ServiceSpec, Services, Status};
use berth_os::signal::Signal;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// How often and how many times [`NativeRuntime::freeze`] looks for
/// group members that have not stopped yet (at most one second).
const FREEZE_POLL: Duration = Duration::from_millis(5);
const FREEZE_POLLS: u32 = 200;

/// Runs project services on the host.
pub struct NativeRuntime {
    services: Arc<Services>,
    forwarders: Mutex<HashMap<String, Vec<(Protocol, Forwarder)>>>,
}

/// Delay before the service engine restarts a project service that exited
/// (Docker's first restart delay is 100 ms too).
const RESTART_DELAY_MS: u32 = 100;
/// The kill timeout of a service whose file sets no `stop_grace_period`
/// (Compose's default), for stops that do not come through StopProject.
const COMPOSE_STOP_GRACE: Duration = Duration::from_secs(10);
/// How often a stop with a custom signal checks whether the service ended.
const STOP_POLL: Duration = Duration::from_millis(10);

/// The service-engine name of `svc` in `plan`.
pub fn service_name(plan: &Plan, svc: &str) -> String {
    format!("{}.{svc}", plan.namespace)
}

fn err(e: ServiceError) -> RuntimeError {
    RuntimeError::other(e.to_string())
}

/// `TS out|err TEXT` (the service engine's log line) as an entry; berth's
/// own event lines are left out.
fn entry(service: &str, line: &str) -> Option<LogEntry> {
    let (ts, rest) = line.split_once(' ')?;
    let (tag, text) = rest.split_once(' ').unwrap_or((rest, ""));
    let stream = match tag {
        "out" => LogStream::Stdout,
        "err" => LogStream::Stderr,
        _ => return None,
    };
    Some(LogEntry {
        timestamp: berth_os::time::parse_rfc3339(ts)?,
        service: service.to_owned(),
        stream,
        line: text.to_owned(),
    })
}

impl NativeRuntime {
    /// A runtime over the daemon's service engine.
    pub fn new(services: Arc<Services>) -> Self {
        Self {
            services,
            forwarders: Mutex::new(HashMap::new()),
        }
    }

    fn spec(plan: &Plan, svc: &PlannedService) -> Result<ServiceSpec, RuntimeError> {
        let mut cmd: Vec<String> = svc.entrypoint.clone().unwrap_or_default();
        cmd.extend(svc.command.clone().unwrap_or_default());
        if cmd.is_empty() {
            return Err(RuntimeError::other(format!(
                "service {} has no command to run",
                svc.name
            )));
        }
        let (autorestart, max_restarts) = match svc.restart {
            RestartPolicy::No => (false, 0),
            RestartPolicy::Always | RestartPolicy::UnlessStopped => (true, 0),
            RestartPolicy::OnFailure(n) => (true, n),
        };
        svc.signal().map_err(RuntimeError::other)?;
        let name = service_name(plan, &svc.name);
        if name.len() > crate::services::config::MAX_NAME_LEN {
            return Err(RuntimeError::other(format!(
                "the native service name {name:?} is longer than 64 characters: use a shorter project id or service name"
            )));
        }
        Ok(ServiceSpec {
            name,
            cmd,
            cwd: svc
                .working_dir
                .clone()
                .unwrap_or_else(|| plan.project_dir.to_string_lossy().into_owned()),
            env: svc.env.clone(),
            autorestart,
            max_restarts,
            // Docker's first restart delay. It also lets a stop with a
            // custom signal (see `stop`) cancel the restart its own signal
            // would trigger.
            restart_delay_ms: RESTART_DELAY_MS,
            kill_timeout_ms: svc
                .stop_grace_period
                .unwrap_or(COMPOSE_STOP_GRACE)
                .as_millis()
                .min(u32::MAX as u128) as u32,
            min_uptime_ms: 0,
            outlive_daemon: true,
        })
    }

    /// Opens the forwarders of `svc`'s ports that differ from the port the
    /// service binds itself. A forwarder `key` already holds on the same
    /// host address and protocol is kept (retargeted if the service's port
    /// changed): re-binding a port this runtime holds itself would fail
    /// with "address in use", which killed a running service on a second
    /// `up` (issue 17). Forwarders no longer asked for are closed.
    async fn forward(&self, key: &str, ports: &[PortMapping]) -> Result<(), RuntimeError> {
        let mut held = self.lock().remove(key).unwrap_or_default();
        let mut opened = Vec::new();
        for p in ports.iter().filter(|p| p.host_port != p.container_port) {
            let ip: IpAddr = p
                .host_ip
                .parse()
                .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
            let bind = SocketAddr::new(ip, p.host_port);
            let target = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), p.container_port);
            if let Some(i) = held
                .iter()
                .position(|(proto, f)| *proto == p.protocol && f.local == bind)
            {
                let (proto, f) = held.swap_remove(i);
                f.retarget(target);
                opened.push((proto, f));
                continue;
            }
            let f = match p.protocol {
                Protocol::Tcp => forward::tcp(bind, target).await,
                Protocol::Udp => forward::udp(bind, target).await,
            };
            match f {
                Ok(f) => opened.push((p.protocol, f)),
                Err(e) => {
                    // What it held stays open: the service keeps its ports.
                    opened.extend(held);
                    self.lock().insert(key.to_owned(), opened);
                    return Err(RuntimeError::new(
                        RuntimeErrorKind::PortTaken,
                        format!(
                            "cannot open host port {}/{} for service {}: {e}",
                            p.host_port,
                            p.protocol.as_str(),
                            p.service
                        ),
                    ));
                }
            }
        }
        self.lock().insert(key.to_owned(), opened);
        Ok(())
    }

    /// Sends `signal` to the process group of the running service `name`
    /// and waits up to `timeout` for it to end. Returns the grace left for
    /// the service engine's own stop (SIGTERM then SIGKILL): zero when the
    /// service outlived `timeout`, so it is killed at once. The engine only
    /// sends SIGTERM, so a `stop_signal` other than SIGTERM is delivered
    /// here first; the restart its exit would trigger waits
    /// [`RESTART_DELAY_MS`] and the engine's stop cancels it.
    async fn signal_and_wait(&self, name: &str, signal: Signal, timeout: Duration) -> Duration {
        let Ok(info) = self.services.describe(name) else {
            return timeout;
        };
        if info.status != Status::Online || info.pid <= 1 {
            return timeout;
        }
        let pid = info.pid;
        // Each service leads its own session and process group.
        if berth_os::signal::send_group(pid as i32, signal).is_err() {
            return timeout;
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let ended = self
                .services
                .describe(name)
                .map(|i| i.status != Status::Online || i.pid != pid)
                .unwrap_or(true);
            let now = tokio::time::Instant::now();
            if ended {
                return deadline.saturating_duration_since(now);
            }
            if now >= deadline {
                return Duration::ZERO;
            }
            tokio::time::sleep(STOP_POLL.min(deadline - now)).await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<(Protocol, Forwarder)>>> {
        self.forwarders.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait::async_trait]
impl ProjectRuntime for NativeRuntime {
    fn kind(&self) -> RuntimeKind {
        RuntimeKind::Native
    }

    async fn prepare(&self, plan: &Plan, progress: &ProgressFn) -> Result<u32, RuntimeError> {
        for svc in &plan.services {
            Self::spec(plan, svc)?;
        }
        progress(Progress::Note(
            "native runtime: services run their commands on this machine; no images to pull".into(),
        ));
        Ok(0)
    }

    async fn create_resources(&self, plan: &Plan) -> Result<(), RuntimeError> {
        for v in &plan.volumes {
            std::fs::create_dir_all(&v.dir).map_err(|e| {
                RuntimeError::other(format!("cannot create {}: {e}", v.dir.display()))
            })?;
        }
        Ok(())
    }

    async fn start(&self, plan: &Plan, svc: &PlannedService) -> Result<String, RuntimeError> {
        let spec = Self::spec(plan, svc)?;
        let current = self.services.describe(&spec.name).ok();
        let info = match current {
            // A daemon restart left it running as planned: keep it.
            Some(i) if i.status == Status::Online && i.spec == spec => i,
            Some(i) if i.status.is_up() => {
                self.services.stop(&spec.name).await.map_err(err)?;
                self.services.start(spec).await.map_err(err)?
            }
            _ => self.services.start(spec).await.map_err(err)?,
        };
        let key = service_name(plan, &svc.name);
        if let Err(e) = self.forward(&key, &svc.ports).await {
            let _ = self.services.stop(&key).await;
            return Err(e);
        }
        Ok(format!("native:{}", info.id))
    }

    async fn inspect(&self, plan: &Plan, service: &str) -> Result<Option<Observed>, RuntimeError> {
        let name = service_name(plan, service);
        let info = match self.services.describe(&name) {
            Ok(i) => i,
            Err(ServiceError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(err(e)),
        };
        let running = info.status == Status::Online;
        Ok(Some(Observed {
            running,
            exit_code: (!running && info.last_exited_at > 0.0).then_some(info.last_exit_code),
            started_at: (info.last_started_at > 0.0).then_some(info.last_started_at),
            restart_count: info.restart_count,
            container_id: format!("native:{}", info.id),
        }))
    }

    async fn probe(
        &self,
        plan: &Plan,
        svc: &PlannedService,
        probe: &Probe,
        timeout: Duration,
    ) -> Result<bool, RuntimeError> {
        let argv = probe.argv();
        let Some((prog, args)) = argv.split_first() else {
            return Ok(false);
        };
        let mut cmd = tokio::process::Command::new(prog);
        cmd.args(args)
            .envs(&svc.env)
            .current_dir(
                svc.working_dir
                    .clone()
                    .map(std::path::PathBuf::from)
                    .unwrap_or_else(|| plan.project_dir.clone()),
            )
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true);
        let Ok(mut child) = cmd.spawn() else {
            return Ok(false);
        };
        match tokio::time::timeout(timeout, child.wait()).await {
            Ok(Ok(status)) => Ok(status.success()),
            _ => Ok(false),
        }
    }

    async fn stop(
        &self,
        plan: &Plan,
        svc: &PlannedService,
        timeout: Duration,
    ) -> Result<(), RuntimeError> {
        let name = service_name(plan, &svc.name);
        self.lock().remove(&name);
        let signal = svc.signal().map_err(RuntimeError::other)?;
        let grace = if signal == Signal::SIGTERM {
            timeout
        } else {
            self.signal_and_wait(&name, signal, timeout).await
        };
        match self.services.stop_within(&name, Some(grace)).await {
            Ok(_) | Err(ServiceError::NotFound(_)) => Ok(()),
            Err(e) => Err(err(e)),
        }
    }

    async fn logs(
        &self,
        plan: &Plan,
        services: &[String],
        tail: usize,
        follow: bool,
    ) -> Result<(Vec<LogEntry>, Option<mpsc::Receiver<LogEntry>>), RuntimeError> {
        let mut lines = Vec::new();
        let (tx, rx) = mpsc::channel(1024);
        for s in services {
            let name = service_name(plan, s);
            let lines_n = tail.min(u32::MAX as usize) as u32;
            if follow {
                let Ok((text, mut f)) = self.services.follow(&name, lines_n.max(1)) else {
                    continue;
                };
                if tail > 0 {
                    lines.extend(text.lines().filter_map(|l| entry(s, l)));
                }
                let (tx, s) = (tx.clone(), s.clone());
                tokio::spawn(async move {
                    while let Some(batch) = f.next().await {
                        for e in batch.lines().filter_map(|l| entry(&s, l)) {
                            if tx.send(e).await.is_err() {
                                return;
                            }
                        }
                    }
                });
            } else if tail > 0 {
                if let Ok(text) = self.services.logs(&name, lines_n) {
                    lines.extend(text.lines().filter_map(|l| entry(s, l)));
                }
            }
        }
        Ok((lines, follow.then_some(rx)))
    }

    async fn reattach(&self, plan: &Plan, svc: &PlannedService) -> Result<bool, RuntimeError> {
        let running = self
            .inspect(plan, &svc.name)
            .await?
            .is_some_and(|o| o.running);
        if running {
            let name = service_name(plan, &svc.name);
            // A daemon that died during a snapshot left it frozen.
            if let Ok(info) = self.services.describe(&name) {
                if info.pid > 1 {
                    let _ = berth_os::signal::send_group(info.pid as i32, Signal::SIGCONT);
                }
            }
            self.forward(&name, &svc.ports).await?;
        }
        Ok(running)
    }

    async fn freeze(&self, plan: &Plan) -> Result<Vec<String>, RuntimeError> {
        let mut groups = Vec::new();
        for svc in &plan.services {
            let Ok(info) = self.services.describe(&service_name(plan, &svc.name)) else {
                continue;
            };
            if info.status != Status::Online || info.pid <= 1 {
                continue;
            }
            // Each service leads its own process group (its pid).
            let pgid = info.pid as i32;
            match berth_os::signal::send_group(pgid, Signal::SIGSTOP) {
                Ok(()) => groups.push(pgid.to_string()),
                Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {}
                Err(e) => {
                    self.thaw(plan, groups).await;
                    return Err(RuntimeError::other(format!(
                        "cannot stop service {} (process group {pgid}): {e}",
                        svc.name
                    )));
                }
            }
        }
        // A stop is delivered asynchronously: wait (a bounded time) until
        // every member of each group has stopped, so nothing writes after
        // this returns. A process in an uninterruptible wait stops when
        // it leaves it.
        for _ in 0..FREEZE_POLLS {
            let table = berth_os::proc::ProcessTable::snapshot();
            let running = groups.iter().any(|g| {
                g.parse::<i32>().is_ok_and(|g| {
                    table.group_members(g).iter().any(|m| {
                        table
                            .get(m.pid)
                            .is_some_and(|st| !matches!(st.state, 'T' | 't' | 'Z' | 'X'))
                    })
                })
            });
            if !running {
                break;
            }
            tokio::time::sleep(FREEZE_POLL).await;
        }
        Ok(groups)
    }

    async fn thaw(&self, _plan: &Plan, frozen: Vec<String>) {
        for g in frozen {
            let Ok(pgid) = g.parse::<i32>() else { continue };
            if let Err(e) = berth_os::signal::send_group(pgid, Signal::SIGCONT) {
                tracing::warn!(pgid, "cannot continue a frozen service: {e}");
            }
        }
    }

    async fn remove(&self, plan: &Plan) -> Result<Vec<String>, RuntimeError> {
        let mut out = Vec::new();
        for svc in &plan.services {
            let name = service_name(plan, &svc.name);
            self.lock().remove(&name);
            let id = self.services.describe(&name).ok().map(|i| i.id);
            match self.services.delete(&name).await {
                Ok(_) => out.push(format!(
                    "native service {name} (native:{})",
                    id.unwrap_or_default()
                )),
                Err(ServiceError::NotFound(_)) => {}
                Err(e) => return Err(err(e)),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_become_entries() {
        let e = entry("web", "2026-01-02T03:04:05.000Z err boom here").unwrap();
        assert_eq!(e.stream, LogStream::Stderr);
        assert_eq!(e.line, "boom here");
        assert!(entry("web", "2026-01-02T03:04:05.000Z berth started").is_none());
    }
}
