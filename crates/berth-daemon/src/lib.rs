//! The berth daemon: composition root. It opens the store, builds the
//! engines, binds listeners, hands connections to surfaces, and stops
//! cleanly on SIGTERM/SIGINT or a SHUTDOWN request.

pub mod addr;
pub mod config;
pub mod listen;
pub mod process_api;
pub mod relay;
pub mod remote_link;
pub mod state;
pub mod tls;

use config::DaemonConfig;
use state::DaemonState;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// Runs the daemon until it is asked to stop. Returns an error message a
/// person can act on if it cannot start.
pub fn run(config: DaemonConfig) -> Result<(), String> {
    // One thread: the daemon is I/O bound, and a single-threaded runtime
    // keeps its memory small. Blocking work is short (SQLite, /proc reads).
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    rt.block_on(serve(config))
}

async fn serve(config: DaemonConfig) -> Result<(), String> {
    let store = berth_engine::Store::open(&config.db_path, config.reserve_bytes)
        .map_err(|e| e.to_string())?;
    let store = Arc::new(store);
    let services = berth_engine::services::Services::open(store.clone(), config.services_config())
        .map_err(|e| e.to_string())?;
    let state = DaemonState::new(&config, store, services.clone())?;

    let mut listeners = Vec::new();
    for addr in &config.listen {
        let l = listen::bind(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        tracing::info!(%addr, "listening");
        listeners.push((addr.clone(), Arc::new(l)));
    }
    // Services: take back what a previous daemon left (re-adoption), then
    // optionally the last SAVE. Supervisors are tasks on this runtime.
    match services.recover() {
        Ok(r) => tracing::info!(adopted = r.adopted, lost = r.lost, "services recovered"),
        Err(e) => tracing::warn!("cannot recover services: {e}"),
    }
    let pump = tokio::spawn(services.clone().run_pump());
    if config.resurrect {
        match services.resurrect().await {
            Ok(r) => tracing::info!(
                started = r.started,
                already_running = r.already_running,
                "resurrected services"
            ),
            Err(e) => tracing::warn!("cannot resurrect services: {e}"),
        }
    }

    let mut accept_tasks = Vec::new();
    for (addr, l) in &listeners {
        let (addr, l, state) = (addr.clone(), l.clone(), state.clone());
        accept_tasks.push(tokio::spawn(async move {
            loop {
                match l.accept().await {
                    Ok(Some(acc)) => {
                        tracing::debug!(peer = %acc.peer, %addr, "connection");
                        tokio::spawn(process_api::serve_connection(acc.stream, state.clone()));
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(%addr, "accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        }));
    }

    let sweeper = {
        let state = state.clone();
        let every = config.sweep_interval;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = state.registry.validate() {
                    tracing::warn!("registry validation failed: {e}");
                }
            }
        })
    };

    let relay_link = config
        .relay
        .clone()
        .map(|cfg| tokio::spawn(remote_link::run(state.clone(), cfg)));

    // Once start-up has settled (the tasks spawned above have had their
    // first run), give its code pages back (see page_out_own_code).
    tokio::spawn(async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let released = berth_os::memory::page_out_own_code();
        tracing::debug!(released, "paged out start-up code");
    });
    let stop = wait_for_stop(&state).await;
    tracing::info!(graceful = stop.graceful, "stopping");
    for t in &accept_tasks {
        t.abort();
    }
    sweeper.abort();
    if let Some(t) = &relay_link {
        t.abort();
    }
    drop(accept_tasks);
    // Dropping the listeners removes our socket files.
    listeners.clear();
    state.close_connections();
    // A stopping daemon stops its services (like `pm2 kill`); a crashed one
    // leaves them running to be re-adopted.
    services.shutdown().await;
    pump.abort();
    if stop.graceful {
        let deadline = tokio::time::Instant::now() + stop.timeout;
        while state.active_connections.load(Ordering::Relaxed) > 0
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    // Sessions die with the daemon that owns their terminals: end them
    // properly so that their records say how.
    state.sessions.terminate_all(Duration::from_millis(500));
    for s in state.sessions.list(None, "") {
        if s.exit.is_none() {
            if let Ok(sess) = state.sessions.get(&s.id) {
                let _ = tokio::time::timeout(Duration::from_secs(2), sess.wait_exit()).await;
            }
        }
    }
    Ok(())
}

async fn wait_for_stop(state: &DaemonState) -> state::StopRequest {
    use tokio::signal::unix::{signal, SignalKind};
    let graceful = state::StopRequest {
        graceful: true,
        timeout: Duration::from_secs(5),
    };
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return state.stop_requested().await;
    };
    tokio::select! {
        r = state.stop_requested() => r,
        _ = term.recv() => graceful,
        _ = int.recv() => graceful,
    }
}
