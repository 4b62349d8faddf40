//! The berth daemon: composition root. It opens the store, builds the
//! engines, binds listeners, hands connections to surfaces, and stops
//! cleanly on SIGTERM/SIGINT or a SHUTDOWN request.

pub mod addr;
pub mod config;
pub mod error;
pub mod guest_api;
pub mod listen;
pub mod node_api;
pub mod process_api;
pub mod project_api;
pub mod remote_link;
pub mod state;
pub mod tls;

use berth_engine::projects::{ProjectRuntime, Projects, ProjectsConfig, RuntimeError, RuntimeKind};
use berth_engine::registry::Registry;
use berth_engine::services::Services;
use berth_engine::sessions::Sessions;
use berth_engine::Store;
use config::{DaemonConfig, ProjectRuntimeChoice};
pub use error::DaemonError;
use state::{DaemonPlace, DaemonState};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// Runs the daemon until it is asked to stop (SIGTERM, SIGINT or a
/// SHUTDOWN request). Fails with a [`DaemonError`] naming what a person
/// can act on if it cannot start: a database, socket or runtime it cannot
/// open.
pub fn serve(config: DaemonConfig) -> Result<(), DaemonError> {
    // One thread: the daemon is I/O bound, and a single-threaded runtime
    // keeps its memory small. Blocking work is short (SQLite, /proc reads).
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(DaemonError::Runtime)?;
    rt.block_on(serve_until_stopped(config))
}

async fn serve_until_stopped(config: DaemonConfig) -> Result<(), DaemonError> {
    // Catch SIGTERM/SIGINT before any socket exists: one that arrives while
    // the engines start (project recovery can take a while) then stops the
    // daemon cleanly once it serves, instead of killing it with its socket
    // files left behind.
    let signals = StopSignals::install();
    // The engines, each over the one store; every surface below gets the
    // engines it serves and nothing else.
    let store = Arc::new(Store::open(&config.db_path, config.reserve_bytes)?);
    let services = Services::open(store.clone(), config.services_config())?;
    let sessions = Arc::new(Sessions::open(store.clone(), config.sessions.clone())?);
    let registry = Registry::new(store.clone(), config.dead_retention);
    let state = DaemonState::new(
        store.clone(),
        registry,
        services.clone(),
        sessions.clone(),
        place(&config),
    );

    // The project API is bound first: once the process API answers (what
    // clients and `--detach` wait for), both sockets accept connections.
    // Addresses are checked before anything is bound, so a bad one is
    // reported as itself, not as a clash with a running daemon.
    for addr in config.listen.iter().chain(&config.project_listen) {
        if let addr::ListenAddr::Tcp(_) = addr {
            return Err(DaemonError::TcpNotServed(addr.clone()));
        }
    }
    let mut project_listeners = Vec::new();
    for addr in &config.project_listen {
        let l = bind(addr)?;
        tracing::info!(%addr, "project API listening");
        project_listeners.push((addr.to_string(), l));
    }
    let mut listeners = Vec::new();
    // The first address (daemon.sock) is bound last: clients and `--detach`
    // wait for it, so once it exists every other listener (the
    // running-process compatible socket among them) exists too.
    for addr in config.listen.iter().skip(1).chain(config.listen.first()) {
        let l = bind(addr)?;
        tracing::info!(%addr, "listening");
        listeners.push((addr.clone(), Arc::new(l)));
    }
    let guest_api = guest_api::spawn(config.guest_api.clone());
    let tabs = Arc::new(berth_engine::tabs::Tabs::new(store.clone()));
    let store_for_workspaces = store.clone();
    let projects = open_projects(&config, store, services.clone()).await?;
    // Container workspaces (seed 004): status changes feed the node API's
    // callbacks; interrupted provisioning resumes in the background.
    let (ws_events, ws_events_rx) = tokio::sync::mpsc::unbounded_channel();
    let workspaces = berth_engine::workspaces::Workspaces::open(
        store_for_workspaces,
        workspaces_root(&config.projects_state_root()),
        std::env::var("DOCKER_HOST").ok().as_deref(),
        Some(projects.clone()),
        ws_events,
    );
    {
        let ws = workspaces.clone();
        tokio::spawn(async move {
            for line in ws.recover().await {
                tracing::info!("workspaces: {line}");
            }
        });
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

    // Projects after services: native projects are services.
    if let Err(e) = projects.recover().await {
        tracing::warn!("cannot recover projects: {e}");
    }
    // Autosave snapshots of running projects (issue 11).
    let autosave = tokio::spawn(projects.clone().run_autosave());
    let (project_stop, project_closing) = tokio::sync::watch::channel(false);
    let mut project_server = tokio::spawn(project_api::serve(
        project_listeners,
        projects.clone(),
        Some(workspaces.clone()),
        project_closing,
    ));

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

    let node_api = match config.node_api.clone() {
        Some(cfg) => {
            let api = node_api::NodeApi::bind(cfg, sessions.clone(), tabs.clone())
                .await
                .map_err(DaemonError::NodeApi)?
                .with_workspaces(workspaces.clone(), ws_events_rx);
            tracing::info!(addr = ?api.local_addr(), "node API listening (https)");
            Some(tokio::spawn(api.run()))
        }
        None => None,
    };
    let relay_link = config
        .relay
        .clone()
        .map(|cfg| tokio::spawn(remote_link::run(sessions.clone(), cfg)));

    // Once start-up has settled (the tasks spawned above have had their
    // first run), give its code pages back (see page_out_own_code).
    tokio::spawn(async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let released = berth_os::memory::page_out_own_code();
        tracing::debug!(released, "paged out start-up code");
    });
    let stop = wait_for_stop(&state, signals).await;
    tracing::info!(graceful = stop.graceful, "stopping");
    for t in &accept_tasks {
        t.abort();
    }
    sweeper.abort();
    for t in &guest_api {
        t.abort();
    }
    if let Some(t) = &relay_link {
        t.abort();
    }
    if let Some(t) = &node_api {
        t.abort();
    }
    drop(accept_tasks);
    // Dropping the listeners removes our socket files.
    listeners.clear();
    // The project API stops taking connections and lets in-flight calls
    // finish (followed logs end at once), for at most the same grace.
    project_stop.send_replace(true);
    let grace = if stop.graceful {
        stop.timeout
    } else {
        Duration::ZERO
    };
    match tokio::time::timeout(grace, &mut project_server).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => tracing::warn!("{e}"),
        Ok(Err(e)) => tracing::warn!("project API task failed: {e}"),
        Err(_) => {
            project_server.abort();
            let _ = project_server.await;
        }
    }
    state.close_connections();
    // No autosave starts from here on (one under way finishes: its save
    // runs on a blocking thread and thaws what it froze).
    autosave.abort();
    // A stopping daemon stops its services (like `pm2 kill`), its
    // projects' services included (one rule); a crashed one leaves them
    // running to be re-adopted.
    projects.shutdown(stop.timeout).await;
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
    sessions.terminate_all(Duration::from_millis(500));
    for s in sessions.list(None, "") {
        if s.exit.is_none() {
            if let Ok(sess) = sessions.get(&s.id) {
                let _ = tokio::time::timeout(Duration::from_secs(2), sess.wait_exit()).await;
            }
        }
    }
    Ok(())
}

/// Where workspace clones and logs live: beside the projects' folder,
/// named like it (`workspaces`, or `<stem>-workspaces`).
fn workspaces_root(projects: &std::path::Path) -> std::path::PathBuf {
    let name = projects
        .file_name()
        .map(|n| n.to_string_lossy().replace("projects", "workspaces"))
        .unwrap_or_else(|| "workspaces".into());
    projects.with_file_name(name)
}

/// Binds one listener, naming the address if it cannot.
fn bind(addr: &addr::ListenAddr) -> Result<listen::Listener, DaemonError> {
    listen::bind(addr).map_err(|source| DaemonError::Listen {
        addr: addr.clone(),
        source,
    })
}

/// Where the daemon serves, as STATUS reports it.
fn place(config: &DaemonConfig) -> DaemonPlace {
    DaemonPlace {
        scope: config.scope.clone(),
        scope_cwd: std::env::current_dir()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        socket_path: config
            .primary_socket()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
    }
}

/// Opens the project engine with its runtimes. `auto` means Docker when an
/// engine answers, else native; `docker` without one is a start error.
async fn open_projects(
    config: &DaemonConfig,
    store: Arc<berth_engine::Store>,
    services: Arc<berth_engine::services::Services>,
) -> Result<Arc<Projects>, DaemonError> {
    let (default_runtime, docker) = match config.project_runtime {
        ProjectRuntimeChoice::Native => (RuntimeKind::Native, None),
        ProjectRuntimeChoice::Docker => match connect_docker().await {
            Ok(d) => (RuntimeKind::Docker, Some(d)),
            Err(e) => return Err(DaemonError::NoDocker(e)),
        },
        ProjectRuntimeChoice::Auto => match connect_docker().await {
            Ok(d) => (RuntimeKind::Docker, Some(d)),
            Err(e) => {
                tracing::info!("projects run natively: no Docker Engine answered: {e}");
                (RuntimeKind::Native, None)
            }
        },
    };
    tracing::info!(
        default_runtime = default_runtime.as_str(),
        docker = docker.is_some(),
        "project runtimes"
    );
    Projects::open(
        store,
        services,
        ProjectsConfig {
            state_root: config.projects_state_root(),
            default_runtime,
            docker,
        },
    )
    .map_err(DaemonError::Projects)
}

/// The Docker runtime of projects: the engine `DOCKER_HOST` names (or the
/// default socket), if it answers a ping.
async fn connect_docker() -> Result<Arc<dyn ProjectRuntime>, RuntimeError> {
    let docker = berth_engine::projects::docker::DockerRuntime::connect().await?;
    Ok(Arc::new(docker))
}

/// SIGTERM and SIGINT streams; `None` when they could not be installed
/// (then only a SHUTDOWN request stops the daemon).
struct StopSignals(Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>);

impl StopSignals {
    fn install() -> Self {
        use tokio::signal::unix::{signal, SignalKind};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(term), Ok(int)) => Self(Some((term, int))),
            _ => Self(None),
        }
    }
}

async fn wait_for_stop(state: &DaemonState, signals: StopSignals) -> state::StopRequest {
    let graceful = state::StopRequest {
        graceful: true,
        timeout: Duration::from_secs(5),
    };
    let Some((mut term, mut int)) = signals.0 else {
        return state.stop_requested().await;
    };
    tokio::select! {
        r = state.stop_requested() => r,
        _ = term.recv() => graceful,
        _ = int.recv() => graceful,
    }
}
