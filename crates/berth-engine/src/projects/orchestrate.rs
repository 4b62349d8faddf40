//! Starting and stopping a plan's services as a dependency graph: a
//! service starts as soon as its own dependencies meet their conditions
//! (independent branches start together), and stops as soon as every
//! service that depends on it has stopped (independent ones stop in
//! parallel). Health is probed as soon as a service starts, then at a
//! quickening-to-`interval` pace, so readiness is seen within tens of
//! milliseconds rather than after a first interval.

use super::compose::Condition;
use super::runtime::{
    HealthSpec, Plan, PlannedService, ProjectRuntime, RuntimeError, RuntimeErrorKind,
};
use futures_util::future::{join_all, try_join_all};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// First pause between probes while a service starts.
const FIRST_PROBE_DELAY: Duration = Duration::from_millis(25);
/// Longest pause between probes while a service starts.
const MAX_STARTING_DELAY: Duration = Duration::from_secs(1);
/// Pause between checks of a job that must complete.
const COMPLETION_POLL: Duration = Duration::from_millis(50);

/// How far a service got during a start.
#[derive(Debug, Clone, PartialEq)]
enum Reached {
    Waiting,
    Started,
    Healthy,
    Failed(String),
}

/// Why a start failed.
#[derive(Debug, Clone, PartialEq)]
pub struct StartFailure {
    /// The service at fault.
    pub service: String,
    /// What happened.
    pub message: String,
    /// The runtime's kind of failure, when the runtime refused the start
    /// (a taken host port becomes PORT_CONFLICT).
    pub kind: Option<RuntimeErrorKind>,
}

/// Observer of health results, so status can report them.
pub type HealthNote<'a> = &'a (dyn Fn(&str, &str) + Send + Sync);

/// Probes `svc` until it is healthy. Fails when the service exits, or when
/// `retries` probes, spaced at least `interval` apart and after
/// `start_period`, all failed.
pub async fn wait_healthy(
    rt: &dyn ProjectRuntime,
    plan: &Plan,
    svc: &PlannedService,
    h: &HealthSpec,
) -> Result<(), String> {
    let began = Instant::now();
    let mut delay = FIRST_PROBE_DELAY;
    let mut counted = 0u32;
    let mut last_counted: Option<Instant> = None;
    loop {
        let passed = match rt.probe(plan, svc, &h.test, h.timeout).await {
            Ok(p) => p,
            Err(e) => return Err(format!("its health check could not run: {e}")),
        };
        // A probe that passed only counts while the service still runs (a
        // native probe is a separate process and can outlive it).
        let obs = rt
            .inspect(plan, &svc.name)
            .await
            .map_err(|e| e.to_string())?;
        if passed && obs.as_ref().is_some_and(|o| o.running) {
            return Ok(());
        }
        match obs {
            Some(o) if o.running => {}
            Some(o) => {
                return Err(match o.exit_code {
                    Some(c) => format!("it exited with code {c} before it was healthy"),
                    None => "it stopped before it was healthy".into(),
                })
            }
            None => return Err("it disappeared before it was healthy".into()),
        }
        let now = Instant::now();
        if now.duration_since(began) >= h.start_period
            && last_counted.is_none_or(|t| now.duration_since(t) >= h.interval)
        {
            counted += 1;
            last_counted = Some(now);
            if counted >= h.retries {
                return Err(format!(
                    "it stayed unhealthy: {} probes failed, {} apart",
                    h.retries,
                    fmt_secs(h.interval)
                ));
            }
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(h.interval).min(MAX_STARTING_DELAY);
    }
}

fn fmt_secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

/// Waits until `dep` meets `cond`; `Err` names why it never will.
async fn wait_dependency(
    rt: &dyn ProjectRuntime,
    plan: &Plan,
    dep: &str,
    cond: Condition,
    rx: &mut watch::Receiver<Reached>,
) -> Result<(), String> {
    loop {
        let now = rx.borrow_and_update().clone();
        match (&now, cond) {
            (Reached::Failed(why), _) => return Err(format!("its dependency {dep} failed: {why}")),
            (Reached::Started | Reached::Healthy, Condition::Started) => return Ok(()),
            (Reached::Healthy, Condition::Healthy) => return Ok(()),
            (Reached::Started | Reached::Healthy, Condition::CompletedSuccessfully) => loop {
                match rt.inspect(plan, dep).await.map_err(|e| e.to_string())? {
                    Some(o) if !o.running && o.exit_code.is_some() => {
                        let code = o.exit_code.unwrap_or_default();
                        return if code == 0 {
                            Ok(())
                        } else {
                            Err(format!(
                                    "its dependency {dep} had to complete successfully but exited with code {code}"
                                ))
                        };
                    }
                    None => return Err(format!("its dependency {dep} disappeared")),
                    _ => tokio::time::sleep(COMPLETION_POLL).await,
                }
            },
            _ => {}
        }
        if rx.changed().await.is_err() {
            return Err(format!("its dependency {dep} was not started"));
        }
    }
}

/// Starts every service of `plan` in dependency order, as concurrently as
/// the graph allows. Returns the services started (to roll back) and the
/// first failure.
pub async fn start_all(
    rt: &dyn ProjectRuntime,
    plan: &Plan,
    health: HealthNote<'_>,
) -> Result<(), StartFailure> {
    let mut senders = BTreeMap::new();
    let mut receivers = BTreeMap::new();
    for s in &plan.services {
        let (tx, rx) = watch::channel(Reached::Waiting);
        senders.insert(s.name.clone(), tx);
        receivers.insert(s.name.clone(), rx);
    }
    let tasks = plan.services.iter().map(|svc| {
        let tx = &senders[&svc.name];
        let deps: Vec<_> = svc
            .depends_on
            .iter()
            .filter_map(|(d, c)| Some((d.clone(), *c, receivers.get(d)?.clone())))
            .collect();
        async move {
            let fail_as = |message: String, kind: Option<RuntimeErrorKind>| {
                let _ = tx.send(Reached::Failed(message.clone()));
                StartFailure {
                    service: svc.name.clone(),
                    message,
                    kind,
                }
            };
            let fail = |message: String| fail_as(message, None);
            for (dep, cond, mut rx) in deps {
                wait_dependency(rt, plan, &dep, cond, &mut rx)
                    .await
                    .map_err(&fail)?;
            }
            rt.start(plan, svc)
                .await
                .map_err(|e| fail_as(format!("could not start: {e}"), Some(e.kind)))?;
            let _ = tx.send(Reached::Started);
            if let Some(h) = &svc.healthcheck {
                health(&svc.name, "starting");
                match wait_healthy(rt, plan, svc, h).await {
                    Ok(()) => {
                        health(&svc.name, "healthy");
                        let _ = tx.send(Reached::Healthy);
                    }
                    Err(why) => {
                        health(&svc.name, "unhealthy");
                        return Err(fail(why));
                    }
                }
            }
            Ok(())
        }
    });
    try_join_all(tasks).await?;
    // A service that already failed (rather than completing) fails the
    // start, even when nothing waited on it.
    for svc in &plan.services {
        if let Ok(Some(o)) = rt.inspect(plan, &svc.name).await {
            if let (false, Some(code)) = (o.running, o.exit_code) {
                if code != 0 {
                    return Err(StartFailure {
                        service: svc.name.clone(),
                        message: format!("exited with code {code} right after it started"),
                        kind: None,
                    });
                }
            }
        }
    }
    Ok(())
}

/// Keeps probing the health checks of a started project, each at its
/// `interval`, and reports `healthy`, or `unhealthy` after `retries`
/// failures in a row, through `note`. A service that is not running is not
/// probed (its state already says so). Runs until dropped.
pub async fn monitor_health(rt: &dyn ProjectRuntime, plan: &Plan, note: HealthNote<'_>) {
    let loops = plan.services.iter().filter_map(|svc| {
        let h = svc.healthcheck.as_ref()?;
        Some(async move {
            let mut failures = 0u32;
            loop {
                tokio::time::sleep(h.interval).await;
                let running = matches!(rt.inspect(plan, &svc.name).await, Ok(Some(o)) if o.running);
                if !running {
                    failures = 0;
                    continue;
                }
                if rt
                    .probe(plan, svc, &h.test, h.timeout)
                    .await
                    .unwrap_or(false)
                {
                    failures = 0;
                    note(&svc.name, "healthy");
                } else {
                    failures += 1;
                    if failures >= h.retries {
                        note(&svc.name, "unhealthy");
                    }
                }
            }
        })
    });
    join_all(loops).await;
}

/// Stops every service of `plan` in reverse dependency order: each waits
/// for the services that depend on it. Each gets `explicit` (StopProject's
/// `timeout_seconds`) between its stop signal and SIGKILL when given, else
/// its own `stop_grace_period`, else `default`. Returns the failures, by
/// service.
pub async fn stop_all(
    rt: &dyn ProjectRuntime,
    plan: &Plan,
    explicit: Option<Duration>,
    default: Duration,
) -> Vec<(String, RuntimeError)> {
    let mut senders = BTreeMap::new();
    let mut receivers = BTreeMap::new();
    for s in &plan.services {
        let (tx, rx) = watch::channel(false);
        senders.insert(s.name.clone(), tx);
        receivers.insert(s.name.clone(), rx);
    }
    // Dependents of each service: it stops after all of them.
    let mut dependents: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for s in &plan.services {
        for (d, _) in &s.depends_on {
            dependents
                .entry(d.as_str())
                .or_default()
                .insert(s.name.as_str());
        }
    }
    let tasks = plan.services.iter().map(|svc| {
        let tx = &senders[&svc.name];
        let waits: Vec<_> = dependents
            .get(svc.name.as_str())
            .into_iter()
            .flatten()
            .filter_map(|d| receivers.get(*d).cloned())
            .collect();
        async move {
            for mut rx in waits {
                let _ = rx.wait_for(|done| *done).await;
            }
            let r = rt.stop(plan, svc, svc.grace(explicit, default)).await;
            let _ = tx.send(true);
            r.err().map(|e| (svc.name.clone(), e))
        }
    });
    join_all(tasks).await.into_iter().flatten().collect()
}
