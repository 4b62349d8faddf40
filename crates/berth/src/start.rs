//! Starting the daemon: in the foreground, or detached in the background
//! (a new session, logs to the state directory) for `--detach` and for
//! CLI commands that find no daemon.

use berth_daemon::config::DaemonConfig;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Runs the daemon in this process until it stops.
pub(crate) fn foreground(config: DaemonConfig) -> Result<(), berth_daemon::DaemonError> {
    // A plain level (BERTH_LOG=error|warn|info|debug|trace): a full filter
    // language would pull a regex engine into the daemon's memory.
    let level = std::env::var("BERTH_LOG")
        .ok()
        .and_then(|l| l.parse::<tracing::Level>().ok())
        .unwrap_or(tracing::Level::INFO);
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
    berth_daemon::serve(config)
}

/// Starts `berth daemon ARGS` in its own session with stdio detached (stderr
/// to `daemon.log` in the state directory) and returns without waiting.
pub(crate) fn spawn_background(args: &[String]) -> std::io::Result<u32> {
    let mut all = vec!["daemon".to_string()];
    all.extend_from_slice(args);
    spawn_background_raw(&all)
}

/// Starts `berth ARGS` (a full daemon command line) in the background.
pub(crate) fn spawn_background_raw(args: &[String]) -> std::io::Result<u32> {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe()?;
    let state = berth_os::dirs::state_dir();
    std::fs::create_dir_all(&state)?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(state.join("daemon.log"))?;
    let mut cmd = Command::new(exe);
    cmd.arg0("berth")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    berth_os::spawn::new_session(&mut cmd);
    let child = cmd.spawn()?;
    Ok(child.id())
}

/// Waits until something accepts connections at `socket`.
pub(crate) fn wait_for_socket(socket: &Path, wait: Duration) -> bool {
    let deadline = std::time::Instant::now() + wait;
    while std::time::Instant::now() < deadline {
        if std::os::unix::net::UnixStream::connect(socket).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}
