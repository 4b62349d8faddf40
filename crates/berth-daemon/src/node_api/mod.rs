//! The node API (seed 004): HTTPS and WebSocket endpoints that let the
//! control plane and its web UI (built for seed 004's Go agent) use berth
//! unchanged. `/health`, JWT/JWKS-checked browser terminals over the
//! session engine (`/terminal/ws`, `/terminal/ws/multi`), and the web
//! terminal page (`GET /`). Surfaces only
//! translate: terminals are engine sessions. See docs/node-api.md.

pub mod agents;
pub mod auth;
pub mod cert;
pub mod config;
pub mod health;
pub mod jwks;
pub mod limits;
pub mod log_follow;
pub mod logs;
pub mod refusal;
pub mod server;
pub mod state;
pub mod terminal;
pub mod terminals;
mod tls_client;
pub mod web;
pub mod workspaces;

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use berth_engine::sessions::Sessions;
use config::NodeApiConfig;
use state::NodeState;
use std::sync::Arc;
use std::time::Instant;

/// The router over `st` (exposed for tests that serve it themselves).
pub fn router(st: Arc<NodeState>) -> Router {
    Router::new()
        .route(
            "/health",
            get(|State(st): State<Arc<NodeState>>| async move {
                health::report(st.started, &st.cfg.state_dir)
            }),
        )
        .route("/terminal/ws", get(terminal::single))
        .route("/terminal/ws/multi", get(terminal::multi))
        .route("/workspaces/{workspace_id}/tabs", get(terminal::tabs))
        .route("/logs", get(logs_route))
        .merge(agents::routes())
        .route("/logs/stream", get(logs_stream_route))
        .merge(web::routes())
        .fallback(limits::no_route)
        .method_not_allowed_fallback(limits::wrong_method)
        .with_state(st)
}

/// `GET /logs`: a `node-management` bearer token for this node.
async fn logs_route(
    State(st): State<Arc<NodeState>>,
    headers: axum::http::HeaderMap,
    axum::extract::Query(q): axum::extract::Query<logs::LogQuery>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let Some(token) = token else {
        return refusal::Refusal::unauthorized("no bearer token (node-management)").into_response();
    };
    if let Err(r) = st
        .validator
        .check(token, auth::Audience::NodeManagement, None)
        .await
    {
        return r.into_response();
    }
    let src = log_sources(&st);
    match logs::query(&src, &q, st.cfg.log_default_limit, st.cfg.log_max_limit).await {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => refusal::Refusal::bad_request(e).into_response(),
    }
}

/// `GET /logs/stream` (WebSocket, same filters, a `node-management` token
/// as bearer or `?token=`): `LOG_STREAM_BUFFER_SIZE` catch-up entries,
/// then `{"type":"log","entry":…}` as sources write them (inotify on
/// files, `journalctl -f`, `docker logs -f`),
/// pinged every `LOG_STREAM_PING_INTERVAL`, closed when no pong came for
/// `LOG_STREAM_PONG_TIMEOUT`.
async fn logs_stream_route(
    State(st): State<Arc<NodeState>>,
    headers: axum::http::HeaderMap,
    axum::extract::Query(q): axum::extract::Query<logs::LogQuery>,
    axum::extract::Query(t): axum::extract::Query<terminal::TermQuery>,
    ws: axum::extract::ws::WebSocketUpgrade,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(String::from)
        .or(t.token);
    let Some(token) = token else {
        return refusal::Refusal::unauthorized("no token (node-management)").into_response();
    };
    if let Err(r) = st
        .validator
        .check(&token, auth::Audience::NodeManagement, None)
        .await
    {
        return r.into_response();
    }
    let src = log_sources(&st);
    if let Err(e) = logs::query(&src, &q, 1, 1).await {
        return refusal::Refusal::bad_request(e).into_response();
    }
    let cfg = st.cfg.clone();
    ws.on_upgrade(move |sock| log_follow::stream(sock, src, q, cfg))
}

fn log_sources(st: &NodeState) -> logs::Sources {
    logs::Sources {
        agent_log: berth_os::dirs::state_dir().join("daemon.log"),
        cloud_init: vec![
            "/var/log/cloud-init-output.log".into(),
            "/var/log/cloud-init.log".into(),
        ],
        reader_timeout: st.cfg.log_reader_timeout,
    }
}

/// A bound, ready node API: [`NodeApi::run`] serves it.
pub struct NodeApi {
    listener: tokio::net::TcpListener,
    tls: Arc<tokio_rustls::rustls::ServerConfig>,
    app: Router,
    st: Arc<NodeState>,
}

impl NodeApi {
    /// Checks the settings, loads or makes the certificate, binds the
    /// address. Errors name the setting, file or address at fault.
    pub async fn bind(
        cfg: NodeApiConfig,
        sessions: Arc<Sessions>,
        tabs: Arc<berth_engine::tabs::Tabs>,
    ) -> Result<Self, String> {
        let jwks = jwks::Jwks::new(
            &cfg.jwks_url,
            cfg.jwks_refresh_min_interval,
            cfg.jwks_refresh_every,
        )?;
        let tls = cert::server_config(
            cfg.tls_files
                .as_ref()
                .map(|(c, k)| (c.as_path(), k.as_path())),
            &cfg.state_dir,
        )?;
        let listener = tokio::net::TcpListener::bind(cfg.listen)
            .await
            .map_err(|e| format!("node API: cannot listen on {}: {e}", cfg.listen))?;
        let agents = agents::open(&cfg, sessions.clone(), tabs.clone())?;
        let st = Arc::new(NodeState {
            agents,
            validator: auth::Validator::new(jwks, cfg.issuer.clone(), cfg.node_id.clone()),
            terminals: terminals::Terminals::new(sessions, tabs, cfg.orphan_grace),
            started: Instant::now(),
            grants: Default::default(),
            cfg,
        });
        Ok(Self {
            listener,
            tls,
            app: router(st.clone()),
            st,
        })
    }

    /// Adds container workspaces (`POST/DELETE /workspaces`, `GET
    /// /containers`, terminals in their containers, callbacks from
    /// `events`).
    pub fn with_workspaces(
        mut self,
        engine: Arc<berth_engine::workspaces::Workspaces>,
        events: tokio::sync::mpsc::UnboundedReceiver<berth_engine::workspaces::Event>,
    ) -> Self {
        agents::place_in(&self.st, engine.clone());
        let routes = workspaces::attach(self.st.clone(), engine, events);
        self.app = self.app.merge(routes);
        self
    }

    /// The bound address.
    pub fn local_addr(&self) -> Option<std::net::SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// Serves until the task is dropped, under the configured
    /// [`limits`] (body size and deadline, JSON refusals).
    pub async fn run(self) {
        let l = self.st.cfg.limits;
        let app = self
            .app
            .layer(axum::middleware::from_fn_with_state(l, limits::guard));
        server::serve(self.listener, self.tls, app, l).await
    }
}
