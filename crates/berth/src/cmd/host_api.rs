//! `berth host-api`: on the host, serve each VM's guest API on
//! `<api dir>/<VM>.berth.sock` by relaying to the berth daemon in the
//! guest (seed 002). Needs no local daemon.

use crate::ctx::Ctx;
use crate::error::{CliError, CmdResult};
use berth_daemon::addr::ListenAddr;
use berth_daemon::guest_api::host_proxy::{self, HostProxyConfig};
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

/// The host-api group.
#[derive(Subcommand)]
pub(crate) enum Command {
    /// Serve VMs' guest APIs on <api dir>/<VM>.berth.sock (until SIGTERM/SIGINT).
    HostApi(HostApiArgs),
}

#[derive(Args)]
pub(crate) struct HostApiArgs {
    /// VM name, repeatable; each pairs with the --connect at its position.
    #[arg(long = "vm", value_name = "NAME", required = true)]
    vms: Vec<String>,
    /// The guest API of that VM: vsock://CID:5002, or unix:///path.
    #[arg(long = "connect", value_name = "ADDR", required = true)]
    connects: Vec<ListenAddr>,
    /// Directory of the sockets (default: $XDG_RUNTIME_DIR/berth/api).
    #[arg(long, value_name = "DIR")]
    api_dir: Option<PathBuf>,
    /// Milliseconds a guest has to accept a connection before 503.
    #[arg(long, default_value_t = 2000)]
    connect_timeout_ms: u64,
}

impl Command {
    pub(crate) fn run(self, _ctx: &mut Ctx) -> CmdResult {
        let Command::HostApi(a) = self;
        if a.vms.len() != a.connects.len() {
            return Err(CliError::usage(format!(
                "{} --vm but {} --connect: give one --connect per --vm",
                a.vms.len(),
                a.connects.len()
            )));
        }
        let api_dir = a.api_dir.unwrap_or_else(host_proxy::default_api_dir);
        let mut configs = Vec::new();
        for (vm, connect) in a.vms.into_iter().zip(a.connects) {
            if let ListenAddr::Tcp(_) = connect {
                return Err(CliError::usage(format!(
                    "--connect {connect}: use vsock://CID:PORT or unix:///path"
                )));
            }
            host_proxy::socket_path(&api_dir, &vm).map_err(CliError::usage)?;
            configs.push(HostProxyConfig {
                vm,
                connect,
                api_dir: api_dir.clone(),
                connect_timeout: Duration::from_millis(a.connect_timeout_ms),
            });
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| CliError::failed(format!("cannot start the async runtime: {e}")))?;
        rt.block_on(async move {
            use tokio::signal::unix::{signal, SignalKind};
            let mut term = signal(SignalKind::terminate())
                .map_err(|e| format!("cannot catch SIGTERM: {e}"))?;
            let mut int =
                signal(SignalKind::interrupt()).map_err(|e| format!("cannot catch SIGINT: {e}"))?;
            let stop = async move {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            };
            host_proxy::run(configs, stop).await
        })
        .map_err(CliError::failed)?;
        Ok(0)
    }
}
