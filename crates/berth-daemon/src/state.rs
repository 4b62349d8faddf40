//! The process API's view of the daemon: the engines it serves, what
//! STATUS reports, and the lifecycle (connection count, stop requests).
//! The composition root (`lib.rs`) builds the engines and this state; it
//! knows nothing of how the daemon was configured.

use berth_engine::registry::Registry;
use berth_engine::services::Services;
use berth_engine::sessions::Sessions;
use berth_engine::Store;
use std::sync::atomic::AtomicU32;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// A stop requested by a client or a signal.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StopRequest {
    /// Let in-flight requests finish first.
    pub graceful: bool,
    /// Upper bound on that wait.
    pub timeout: Duration,
}

/// Where this daemon serves, as STATUS reports it.
#[derive(Debug, Clone, Default)]
pub struct DaemonPlace {
    /// Named scope, if any (`None` is the global one).
    pub scope: Option<String>,
    /// Working directory the daemon started in.
    pub scope_cwd: String,
    /// Primary socket path.
    pub socket_path: String,
}

/// Engines and lifecycle, shared by all connections.
pub struct DaemonState {
    /// The database.
    pub store: Arc<Store>,
    /// The process registry engine.
    pub registry: Registry,
    /// The service engine.
    pub services: Arc<Services>,
    /// The session engine.
    pub sessions: Arc<Sessions>,
    /// When the daemon started.
    pub started: Instant,
    /// Open client connections.
    pub active_connections: AtomicU32,
    /// Named scope, if any.
    pub scope: Option<String>,
    /// Working directory the daemon started in.
    pub scope_cwd: String,
    /// Primary socket path reported by STATUS.
    pub socket_path: String,
    stop_tx: watch::Sender<Option<StopRequest>>,
    closing_tx: watch::Sender<bool>,
}

impl DaemonState {
    /// The state over engines the composition root has opened; the daemon
    /// counts as started now.
    pub fn new(
        store: Arc<Store>,
        registry: Registry,
        services: Arc<Services>,
        sessions: Arc<Sessions>,
        place: DaemonPlace,
    ) -> Arc<Self> {
        Arc::new(Self {
            store,
            registry,
            services,
            sessions,
            started: Instant::now(),
            active_connections: AtomicU32::new(0),
            scope: place.scope,
            scope_cwd: place.scope_cwd,
            socket_path: place.socket_path,
            stop_tx: watch::channel(None).0,
            closing_tx: watch::channel(false).0,
        })
    }

    /// The scope's name as STATUS reports it.
    pub fn scope_name(&self) -> String {
        self.scope.clone().unwrap_or_else(|| "global".into())
    }

    /// Asks the daemon to stop (first request wins).
    pub fn request_shutdown(&self, graceful: bool, timeout: Duration) {
        self.stop_tx.send_if_modified(|cur| {
            if cur.is_none() {
                *cur = Some(StopRequest { graceful, timeout });
                true
            } else {
                false
            }
        });
    }

    /// Resolves when a stop has been requested.
    pub async fn stop_requested(&self) -> StopRequest {
        let mut rx = self.stop_tx.subscribe();
        loop {
            if let Some(r) = *rx.borrow_and_update() {
                return r;
            }
            if rx.changed().await.is_err() {
                return StopRequest {
                    graceful: false,
                    timeout: Duration::ZERO,
                };
            }
        }
    }

    /// Tells idle connections to close.
    pub fn close_connections(&self) {
        self.closing_tx.send_replace(true);
    }

    /// A receiver that changes when connections must close.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.closing_tx.subscribe()
    }
}
