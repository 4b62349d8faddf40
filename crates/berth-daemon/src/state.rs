//! Shared daemon state handed to every surface: engines plus lifecycle.

use crate::config::DaemonConfig;
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
    /// Builds the state over an opened store.
    pub fn new(
        config: &DaemonConfig,
        store: Arc<Store>,
        services: Arc<Services>,
    ) -> Result<Arc<Self>, String> {
        let registry = Registry::new(store.clone(), config.dead_retention);
        let sessions =
            Sessions::open(store.clone(), config.sessions.clone()).map_err(|e| e.to_string())?;
        Ok(Arc::new(Self {
            store,
            registry,
            services,
            sessions: Arc::new(sessions),
            started: Instant::now(),
            active_connections: AtomicU32::new(0),
            scope: config.scope.clone(),
            scope_cwd: std::env::current_dir()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            socket_path: config
                .primary_socket()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            stop_tx: watch::channel(None).0,
            closing_tx: watch::channel(false).0,
        }))
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
