//! `berth relay`: serves remote protocol v3 to agents and mobile clients.

use crate::ctx::Ctx;
use crate::error::{CliError, CmdResult};
use berth_daemon::relay::{self, RelayConfig};
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
}

impl Command {
    /// Serves until the relay stops; needs no daemon.
    pub(crate) fn run(self, _ctx: &mut Ctx) -> CmdResult {
        let Command::Relay(a) = self;
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
                Some(berth_daemon::tls::server_config(c, k).map_err(CliError::usage)?)
            }
            _ => None,
        };
        let config = RelayConfig {
            tls,
            tokens,
            ping_interval: Duration::from_millis(a.ping_interval_ms.max(100)),
            queue_bytes: a.queue_kib.max(16) << 10,
            ..RelayConfig::default()
        };
        relay::run(addr, config).map_err(CliError::failed)?;
        Ok(0)
    }
}
