//! `berth relay`: serves remote protocol v3 to agents and mobile clients.

use crate::ctx::Ctx;
use crate::error::{CliError, CmdResult};
use berth_relay::RelayConfig;
use clap::{Args, Subcommand};
use std::net::SocketAddr;
use std::time::Duration;

/// The relay group.
#[derive(Subcommand)]
pub(crate) enum Command {
    /// Serve remote protocol v3: the rendezvous of agents and mobile clients.
    Relay(RelayArgs),
}

#[derive(Args)]
pub(crate) struct RelayArgs {
    /// Address to listen on, HOST:PORT (or tcp://HOST:PORT).
    #[arg(long, value_name = "ADDR")]
    listen: String,
    /// Accepted token, repeatable; also read from BERTH_RELAY_TOKENS
    /// (comma separated). Each token is its own namespace of machines.
    #[arg(long = "token", value_name = "T")]
    tokens: Vec<String>,
    /// Milliseconds between pings; a link silent for three is closed.
    #[arg(long, default_value_t = 10_000)]
    ping_interval_ms: u64,
    /// Terminal-frame bytes queued per mobile before it is resynced with a
    /// snapshot instead.
    #[arg(long, default_value_t = 1024)]
    queue_kib: usize,
    /// Serve wss://: certificate chain, PEM.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,
    /// Serve wss://: private key of --tls-cert, PEM.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
    /// Share routing with other relay instances through this NATS server
    /// (nats://HOST:4222, comma-separated for several).
    #[arg(long, value_name = "URL")]
    cluster: Option<String>,
    /// NATS credentials file (JWT + NKey seed) for --cluster.
    #[arg(long, value_name = "FILE", requires = "cluster")]
    cluster_creds: Option<std::path::PathBuf>,
}

impl Command {
    /// Serves until the relay stops; needs no daemon.
    pub(crate) fn run(self, _ctx: &mut Ctx) -> CmdResult {
        let Command::Relay(a) = self;
        // The relay logs like the daemon: a plain level in BERTH_LOG, to stderr.
        let level = std::env::var("BERTH_LOG")
            .ok()
            .and_then(|l| l.parse::<tracing::Level>().ok())
            .unwrap_or(tracing::Level::INFO);
        let _ = tracing_subscriber::fmt()
            .with_max_level(level)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_writer(std::io::stderr)
            .try_init();
        let addr: SocketAddr = a
            .listen
            .trim_start_matches("tcp://")
            .parse()
            .map_err(|e| CliError::usage(format!("--listen {:?}: {e}", a.listen)))?;
        let mut tokens = a.tokens;
        if let Ok(env) = std::env::var("BERTH_RELAY_TOKENS") {
            tokens.extend(env.split(',').filter(|t| !t.is_empty()).map(String::from));
        }
        let tls = match (&a.tls_cert, &a.tls_key) {
            (Some(c), Some(k)) => {
                Some(berth_relay::tls::server_config(c, k).map_err(CliError::usage)?)
            }
            _ => None,
        };
        let cluster = a.cluster.map(|url| {
            let mut c = berth_relay::cluster::ClusterConfig::new(url);
            c.creds = a.cluster_creds;
            c
        });
        let config = RelayConfig {
            tls,
            cluster,
            tokens,
            ping_interval: Duration::from_millis(a.ping_interval_ms.max(100)),
            queue_bytes: a.queue_kib.max(16) << 10,
            ..RelayConfig::default()
        };
        berth_relay::run(addr, config).map_err(CliError::failed)?;
        Ok(0)
    }
}
