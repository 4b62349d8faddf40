//! `berth daemon`: run the daemon (in the foreground, or `--detach`ed),
//! and `berth daemon stop`.

use crate::ctx::Ctx;
use crate::error::{CliError, CmdResult};
use crate::start;
use berth_client::Client;
use berth_daemon::addr::ListenAddr;
use berth_daemon::config::DaemonConfig;
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

/// The daemon group.
#[derive(Subcommand)]
pub(crate) enum Command {
    /// Run the daemon (foreground unless --detach), or `berth daemon stop`.
    #[command(args_conflicts_with_subcommands = true)]
    Daemon {
        #[command(subcommand)]
        action: Option<DaemonAction>,
        #[command(flatten)]
        opts: DaemonOpts,
    },
}

#[derive(Subcommand)]
pub(crate) enum DaemonAction {
    /// Stop the running daemon.
    Stop {
        /// Stop at once instead of letting requests finish.
        #[arg(long)]
        now: bool,
        /// Seconds to wait for in-flight requests.
        #[arg(long, default_value_t = 5.0)]
        timeout: f64,
    },
}

#[derive(Args)]
pub(crate) struct DaemonOpts {
    /// Start in the background and return once it answers.
    #[arg(long)]
    detach: bool,
    /// Listen address, repeatable: unix:///path or vsock://CID:PORT
    /// (replaces the default sockets).
    #[arg(long = "listen", value_name = "ADDR")]
    listen: Vec<ListenAddr>,
    /// Also serve the project API (gRPC) here, repeatable: unix:///path or
    /// vsock://CID:PORT (e.g. vsock://any:1024); project.sock in the
    /// runtime directory is always served.
    #[arg(long = "listen-project", value_name = "ADDR")]
    listen_project: Vec<ListenAddr>,
    /// Default runtime of projects: docker, native, or auto (docker when a
    /// Docker Engine answers at start, else native).
    #[arg(long, value_name = "RUNTIME", default_value = "auto")]
    project_runtime: berth_daemon::config::ProjectRuntimeChoice,
    /// Database file (default: $XDG_STATE_HOME/berth/berth.db).
    #[arg(long)]
    db: Option<PathBuf>,
    /// Emergency disk reserve in MiB (0 disables it).
    #[arg(long, default_value_t = 4)]
    reserve_mib: u64,
    /// Seconds a dead process stays listed before it is purged.
    #[arg(long, default_value_t = 60)]
    dead_retention_secs: u64,
    /// Start the services of the last `berth svc save` (those that were running).
    #[arg(long)]
    resurrect: bool,
    /// Size in bytes at which a service log is rotated.
    #[arg(long, default_value_t = berth_daemon::config::DEFAULT_SERVICE_LOG_MAX_BYTES)]
    service_log_max_bytes: u64,
    /// Rotated service logs kept.
    #[arg(long, default_value_t = berth_daemon::config::DEFAULT_SERVICE_LOG_KEEP)]
    service_log_keep: u32,
    /// Output kept per session stream, in KiB (the backlog ring).
    #[arg(long, default_value_t = 1024)]
    backlog_kib: usize,
    /// Link out to a remote-protocol relay, ws://HOST:PORT/; repeat it (or
    /// separate with commas) for the instances of a clustered relay, tried
    /// in turn when one fails.
    #[arg(
        long,
        value_name = "URL",
        requires = "relay_token",
        value_delimiter = ','
    )]
    relay: Vec<String>,
    /// Token presented to the relay.
    #[arg(long, value_name = "T", env = "BERTH_RELAY_TOKEN")]
    relay_token: Option<String>,
    /// Machine id announced to the relay (default: the host name).
    #[arg(long, value_name = "ID")]
    relay_machine_id: Option<String>,
    /// For a wss:// relay: trust only this CA certificate (PEM) instead of
    /// the public web roots.
    #[arg(long, value_name = "FILE")]
    relay_ca: Option<PathBuf>,
    /// Serve the node API (seed 004: HTTPS, JWT-checked browser terminals,
    /// /health) here, e.g. 0.0.0.0:8443. Settings come from NODE_ID,
    /// CONTROL_PLANE_URL, JWKS_ENDPOINT, JWT_ISSUER... (docs/node-api.md).
    #[arg(long, value_name = "ADDR")]
    node_api: Option<std::net::SocketAddr>,
    /// Node-API certificate chain (PEM); default: a self-signed one kept
    /// beside the database.
    #[arg(long, value_name = "FILE", requires_all = ["node_api", "node_api_key"])]
    node_api_cert: Option<PathBuf>,
    /// Node-API private key (PEM), with --node-api-cert.
    #[arg(long, value_name = "FILE", requires_all = ["node_api", "node_api_cert"])]
    node_api_key: Option<PathBuf>,
}

impl Command {
    /// Runs the daemon or stops it; never starts one implicitly.
    pub(crate) fn run(self, ctx: &mut Ctx) -> CmdResult {
        let Command::Daemon { action, opts } = self;
        match action {
            Some(DaemonAction::Stop { now, timeout }) => stop(ctx, now, timeout),
            None => {
                let config = opts.config(ctx.scope())?;
                if opts.detach {
                    detach(ctx, &opts, &config)
                } else {
                    forget_secrets();
                    start::foreground(config).map_err(CliError::failed)?;
                    Ok(0)
                }
            }
        }
    }
}

/// Environment variables that carry credentials into the daemon: read once
/// (by clap, above), then taken out of the daemon's environment so no
/// service, session or guest-API exec started later inherits them
/// (`docs/security.md`, "Secrets").
const SECRET_ENV: &[&str] = &["BERTH_RELAY_TOKEN"];

/// Removes [`SECRET_ENV`] from this process's environment. Called before
/// the daemon starts its runtime, while the process has one thread.
fn forget_secrets() {
    for k in SECRET_ENV {
        std::env::remove_var(k);
    }
}

/// `berth daemon stop`: asks the daemon at the socket to shut down.
fn stop(ctx: &Ctx, now: bool, timeout: f64) -> CmdResult {
    let socket = ctx.socket();
    let mut c = Client::connect(socket)
        .map_err(|_| CliError::failed(format!("no daemon is running at {}", socket.display())))?;
    c.shutdown(!now, timeout)?;
    println!("berth daemon at {} is stopping", socket.display());
    Ok(0)
}

impl DaemonOpts {
    /// The daemon configuration of the scope, with these options applied.
    fn config(&self, scope: Option<&str>) -> Result<DaemonConfig, CliError> {
        let mut config =
            DaemonConfig::for_scope(scope.map(String::from)).map_err(CliError::failed)?;
        if !self.listen.is_empty() {
            config.listen = self.listen.clone();
        }
        if let Some(db) = &self.db {
            config.db_path = db.clone();
        }
        config
            .project_listen
            .extend(self.listen_project.iter().cloned());
        config.project_runtime = self.project_runtime;
        config.reserve_bytes = self.reserve_mib << 20;
        config.dead_retention = Duration::from_secs(self.dead_retention_secs);
        config.resurrect = self.resurrect;
        config.service_log_max_bytes = self.service_log_max_bytes;
        config.service_log_keep = self.service_log_keep;
        if self.backlog_kib == 0 {
            return Err(CliError::failed("--backlog-kib must be at least 1"));
        }
        config.sessions.backlog_bytes = self.backlog_kib << 10;
        if let (false, Some(token)) = (self.relay.is_empty(), &self.relay_token) {
            let mut link =
                berth_daemon::remote_link::RelayLinkConfig::new(self.relay.clone(), token.clone());
            if let Some(id) = &self.relay_machine_id {
                link.machine_id = id.clone();
            }
            if let Some(ca) = &self.relay_ca {
                link.ca = Some(berth_daemon::tls::client_config(ca).map_err(CliError::failed)?);
            }
            config.relay = Some(link);
        }
        if let Some(addr) = self.node_api {
            let state_dir = config
                .db_path
                .parent()
                .map(|p| p.join("node-api"))
                .unwrap_or_else(|| PathBuf::from("node-api"));
            let mut api =
                berth_daemon::node_api::config::NodeApiConfig::from_env(addr, state_dir, |k| {
                    std::env::var(k).ok()
                })
                .map_err(|e| CliError::failed(format!("node API: {e}")))?;
            if let (Some(c), Some(k)) = (&self.node_api_cert, &self.node_api_key) {
                api.tls_files = Some((c.clone(), k.clone()));
            }
            config.node_api = Some(api);
        }
        Ok(config)
    }
}

/// `berth daemon --detach`: the same command line in the background;
/// returns once it answers.
fn detach(ctx: &Ctx, opts: &DaemonOpts, config: &DaemonConfig) -> CmdResult {
    // The background daemon gets exactly this command line, minus
    // --detach, so no option can be forgotten on the way.
    let mut args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--detach")
        .collect();
    // The relay token reaches the background daemon through its
    // environment, never on its command line (visible in `ps`).
    if let Some(i) = args.iter().position(|a| a == "--relay-token") {
        args.drain(i..(i + 2).min(args.len()));
    }
    args.retain(|a| !a.starts_with("--relay-token="));
    if let Some(token) = &opts.relay_token {
        std::env::set_var("BERTH_RELAY_TOKEN", token);
    }
    let probe = config
        .primary_socket()
        .cloned()
        .unwrap_or_else(|| ctx.socket().to_path_buf());
    if std::os::unix::net::UnixStream::connect(&probe).is_ok() {
        return Err(CliError::failed(format!(
            "a daemon is already running at {}",
            probe.display()
        )));
    }
    let pid = start::spawn_background_raw(&args)
        .map_err(|e| CliError::failed(format!("cannot start the daemon: {e}")))?;
    if !start::wait_for_socket(&probe, Duration::from_secs(10)) {
        return Err(CliError::failed(format!(
            "daemon (pid {pid}) did not start listening on {}; see {}",
            probe.display(),
            berth_os::dirs::state_dir().join("daemon.log").display()
        )));
    }
    println!(
        "berth daemon started (pid {pid}), listening on {}",
        probe.display()
    );
    Ok(0)
}
