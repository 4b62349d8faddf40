//! `berth` subcommands. Everything but `berth daemon` is a client of the
//! daemon's socket and starts the daemon when none answers.

use crate::{output, start};
use berth_client::{Client, ClientError};
use berth_daemon::addr::ListenAddr;
use berth_daemon::config::DaemonConfig;
use berth_wire::daemon::{KeyValue, SpawnDaemonRequest};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "berth",
    version,
    about = "Keeps a development machine alive and reachable."
)]
struct Cli {
    /// Daemon socket to talk to (default: $XDG_RUNTIME_DIR/berth/daemon.sock).
    #[arg(long, global = true, env = "BERTH_SOCKET")]
    socket: Option<PathBuf>,
    /// Scope: an isolated daemon with its own socket and database.
    #[arg(long, global = true, env = "BERTH_SCOPE")]
    scope: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon (foreground unless --detach), or `berth daemon stop`.
    #[command(args_conflicts_with_subcommands = true)]
    Daemon {
        #[command(subcommand)]
        action: Option<DaemonAction>,
        #[command(flatten)]
        opts: DaemonOpts,
    },
    /// List tracked processes.
    Ps {
        /// Only processes of this originator tool.
        #[arg(long)]
        originator: Option<String>,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Launch a command detached from this terminal, tracked by berth.
    Spawn {
        /// Working directory (default: the current one).
        #[arg(long)]
        cwd: Option<PathBuf>,
        /// Extra environment, KEY=VALUE; repeatable, last wins.
        #[arg(long = "env", short = 'e', value_name = "KEY=VALUE")]
        env: Vec<String>,
        /// Start from an empty environment instead of the daemon's.
        #[arg(long)]
        clear_env: bool,
        /// Originator label (default: `berth`; a `tool:PID` label makes the process
        /// an orphan once PID exits).
        #[arg(long)]
        originator: Option<String>,
        /// The command and its arguments.
        #[arg(last = true, required = true, num_args = 1..)]
        command: Vec<String>,
    },
    /// Show a process and its descendants.
    Tree {
        /// Root process id.
        pid: u32,
    },
    /// End a process and all its descendants (SIGTERM, then SIGKILL).
    KillTree {
        /// Root process id.
        pid: u32,
        /// Seconds between SIGTERM and SIGKILL.
        #[arg(long, default_value_t = 5.0)]
        timeout: f64,
    },
    /// Show (or with --kill, end) tracked processes whose owner is gone.
    Zombies {
        /// End them instead of only listing them.
        #[arg(long)]
        kill: bool,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Daemon status.
    Status {
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Check that the daemon answers, and how fast.
    Ping,
    /// Supervised services: start, ls, describe, logs, stop, restart, apply...
    Svc {
        #[command(subcommand)]
        cmd: crate::svc::Svc,
    },
    /// Start a session (a command that outlives this terminal); prints its id.
    Run(crate::sessions::RunArgs),
    /// Attach this terminal to a PTY session (detach with Ctrl-\\).
    Attach(crate::sessions::AttachArgs),
    /// List sessions, or `sessions purge` ended ones.
    Sessions(crate::sessions::SessionsArgs),
    /// Print a session's held output (-f to follow).
    Logs(crate::sessions::LogsArgs),
    /// Type text into a session.
    Send(crate::sessions::SendArgs),
    /// End a session (SIGTERM, then SIGKILL after --grace ms).
    Kill(crate::sessions::KillArgs),
    /// Copy a session's stream into a file from now on; prints the tee handle.
    Tee(crate::sessions::TeeArgs),
    /// Serve remote protocol v3: the rendezvous of agents and mobile clients.
    Relay(crate::relay_cmd::RelayArgs),
    /// Remote-protocol clients (through a relay).
    Remote {
        #[command(subcommand)]
        command: crate::remote_cmd::RemoteCommand,
    },
    /// Register, open and start a Compose project (with progress).
    Up(crate::projects_cmd::UpArgs),
    /// Stop a project and remove its runtime resources.
    Down(crate::projects_cmd::DownArgs),
    /// List projects.
    Projects(crate::projects_cmd::ProjectsArgs),
    /// One project: status, logs, ports, rm.
    Project {
        #[command(subcommand)]
        command: crate::projects_cmd::ProjectCmd,
    },
    /// Check a Compose file against what berth can run.
    Validate(crate::projects_cmd::ValidateArgs),
}

#[derive(Subcommand)]
enum DaemonAction {
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
struct DaemonOpts {
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
}

pub(crate) fn fail(msg: impl std::fmt::Display) -> i32 {
    eprintln!("berth: {msg}");
    1
}

pub fn main() -> i32 {
    let cli = Cli::parse();
    if let Some(s) = &cli.scope {
        if let Err(e) = berth_os::dirs::validate_scope(s) {
            return fail(e);
        }
    }
    let socket = cli
        .socket
        .clone()
        .unwrap_or_else(|| berth_os::dirs::daemon_socket(cli.scope.as_deref()));
    match cli.command {
        Command::Daemon {
            action: Some(DaemonAction::Stop { now, timeout }),
            ..
        } => match Client::connect(&socket) {
            Ok(mut c) => match c.shutdown(!now, timeout) {
                Ok(()) => {
                    println!("berth daemon at {} is stopping", socket.display());
                    0
                }
                Err(e) => fail(e),
            },
            Err(_) => fail(format!("no daemon is running at {}", socket.display())),
        },
        Command::Daemon { action: None, opts } => daemon(cli.scope, &socket, opts),
        Command::Relay(a) => crate::relay_cmd::main(a),
        Command::Remote { command } => crate::remote_cmd::main(command),
        Command::Up(_)
        | Command::Down(_)
        | Command::Projects(_)
        | Command::Project { .. }
        | Command::Validate(_) => {
            use crate::projects_cmd::Cmd;
            // Starts the daemon when none answers, as every client command.
            if let Err(e) = connect(&socket, cli.socket.is_some(), cli.scope.as_deref()) {
                return fail(e);
            }
            let project_socket = berth_os::dirs::project_socket(cli.scope.as_deref());
            let cmd = match cli.command {
                Command::Up(a) => Cmd::Up(a),
                Command::Down(a) => Cmd::Down(a),
                Command::Projects(a) => Cmd::Projects(a),
                Command::Project { command } => Cmd::Project(command),
                Command::Validate(a) => Cmd::Validate(a),
                _ => unreachable!("matched above"),
            };
            crate::projects_cmd::main(&project_socket, cmd)
        }
        cmd => match connect(&socket, cli.socket.is_some(), cli.scope.as_deref()) {
            Ok(client) if matches!(cmd, Command::Attach(_) | Command::Logs(_)) => {
                let r = match cmd {
                    Command::Attach(a) => crate::sessions::attach(client, a),
                    Command::Logs(a) => crate::sessions::logs(client, a),
                    _ => unreachable!(),
                };
                r.unwrap_or_else(fail)
            }
            Ok(mut client) => match run_client(&mut client, cmd) {
                Ok(code) => code,
                Err(e) => fail(e),
            },
            Err(e) => fail(e),
        },
    }
}

fn daemon(scope: Option<String>, socket: &std::path::Path, opts: DaemonOpts) -> i32 {
    let mut config = match DaemonConfig::for_scope(scope.clone()) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    if !opts.listen.is_empty() {
        config.listen = opts.listen.clone();
    }
    if let Some(db) = &opts.db {
        config.db_path = db.clone();
    }
    config
        .project_listen
        .extend(opts.listen_project.iter().cloned());
    config.project_runtime = opts.project_runtime;
    config.reserve_bytes = opts.reserve_mib << 20;
    config.dead_retention = Duration::from_secs(opts.dead_retention_secs);
    config.resurrect = opts.resurrect;
    config.service_log_max_bytes = opts.service_log_max_bytes;
    config.service_log_keep = opts.service_log_keep;
    if opts.backlog_kib == 0 {
        return fail("--backlog-kib must be at least 1");
    }
    config.sessions.backlog_bytes = opts.backlog_kib << 10;
    if let (false, Some(token)) = (opts.relay.is_empty(), &opts.relay_token) {
        let mut link =
            berth_daemon::remote_link::RelayLinkConfig::new(opts.relay.clone(), token.clone());
        if let Some(id) = &opts.relay_machine_id {
            link.machine_id = id.clone();
        }
        if let Some(ca) = &opts.relay_ca {
            match berth_daemon::tls::client_config(ca) {
                Ok(c) => link.ca = Some(c),
                Err(e) => return fail(e),
            }
        }
        config.relay = Some(link);
    }
    if opts.detach {
        // The background daemon gets exactly this command line, minus
        // --detach, so no option can be forgotten on the way.
        let args: Vec<String> = std::env::args()
            .skip(1)
            .filter(|a| a != "--detach")
            .collect();
        // The relay token reaches the background daemon through its
        // environment, never on its command line (visible in `ps`).
        let mut args = args;
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
            .unwrap_or_else(|| socket.to_path_buf());
        if std::os::unix::net::UnixStream::connect(&probe).is_ok() {
            return fail(format!(
                "a daemon is already running at {}",
                probe.display()
            ));
        }
        return match start::spawn_background_raw(&args) {
            Ok(pid) if start::wait_for_socket(&probe, Duration::from_secs(10)) => {
                println!(
                    "berth daemon started (pid {pid}), listening on {}",
                    probe.display()
                );
                0
            }
            Ok(pid) => fail(format!(
                "daemon (pid {pid}) did not start listening on {}; see {}",
                probe.display(),
                berth_os::dirs::state_dir().join("daemon.log").display()
            )),
            Err(e) => fail(format!("cannot start the daemon: {e}")),
        };
    }
    match start::foreground(config) {
        Ok(()) => 0,
        Err(e) => fail(e),
    }
}

/// Connects to the daemon; if none answers at the default socket, starts one.
fn connect(
    socket: &std::path::Path,
    explicit: bool,
    scope: Option<&str>,
) -> Result<Client, ClientError> {
    if explicit {
        return Client::connect(socket);
    }
    Client::connect_or_start(socket, Duration::from_secs(10), || {
        let mut args = Vec::new();
        if let Some(s) = scope {
            args.extend(["--scope".to_string(), s.to_string()]);
        }
        start::spawn_background(&args).map(|_| ())
    })
}

fn run_client(c: &mut Client, cmd: Command) -> Result<i32, ClientError> {
    match cmd {
        Command::Daemon { .. } => unreachable!("handled before connecting"),
        Command::Ps { originator, json } => {
            let rows = match originator {
                Some(o) => c.list_by_originator(&o)?,
                None => c.list_active()?,
            };
            print!(
                "{}",
                if json {
                    output::processes_json(&rows)
                } else {
                    output::processes_table(&rows)
                }
            );
        }
        Command::Spawn {
            cwd,
            env,
            clear_env,
            originator,
            command,
        } => {
            let mut kvs = Vec::new();
            for e in env {
                let Some((k, v)) = e.split_once('=') else {
                    eprintln!("berth: --env {e:?} must be KEY=VALUE");
                    return Ok(2);
                };
                kvs.push(KeyValue {
                    key: k.into(),
                    value: v.into(),
                });
            }
            let cwd = cwd
                .or_else(|| std::env::current_dir().ok())
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            let r = c.spawn_daemon(SpawnDaemonRequest {
                command: output::shell_join(&command),
                cwd,
                env: kvs,
                originator: originator.unwrap_or_else(|| "berth".into()),
                clear_inherited_env: clear_env,
            })?;
            println!("{}", r.pid);
        }
        Command::Tree { pid } => print!("{}", c.process_tree(pid)?),
        Command::KillTree { pid, timeout } => {
            let n = c.kill_tree(pid, timeout)?;
            println!("ended {n} process{}", if n == 1 { "" } else { "es" });
        }
        Command::Zombies { kill, json } => {
            let z = c.kill_zombies(!kill)?;
            print!(
                "{}",
                if json {
                    output::zombies_json(&z)
                } else {
                    output::zombies_table(&z, kill)
                }
            );
        }
        Command::Status { json } => {
            let s = c.status()?;
            print!(
                "{}",
                if json {
                    output::status_json(&s)
                } else {
                    output::status_text(&s)
                }
            );
        }
        Command::Svc { cmd } => return crate::svc::run(c, cmd),
        Command::Run(a) => return crate::sessions::run(c, a),
        Command::Sessions(a) => return crate::sessions::sessions(c, a),
        Command::Send(a) => return crate::sessions::send(c, a),
        Command::Kill(a) => return crate::sessions::kill(c, a),
        Command::Tee(a) => return crate::sessions::tee(c, a),
        Command::Attach(_) | Command::Logs(_) => unreachable!("these take the connection"),
        Command::Relay(_)
        | Command::Remote { .. }
        | Command::Up(_)
        | Command::Down(_)
        | Command::Projects(_)
        | Command::Project { .. }
        | Command::Validate(_) => unreachable!("handled before connecting"),
        Command::Ping => {
            let t = std::time::Instant::now();
            c.ping()?;
            println!("pong in {:.3} ms", t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    Ok(0)
}
