//! Sessions: `run`, `attach`, `sessions`, `logs`, `send`, `kill`, `tee`.
//! Each is a client of the process API's session requests.

mod attach;

use crate::ctx::Ctx;
use crate::error::{CliError, CmdResult};
use crate::key_value;
use crate::output::{duration, table};
use berth_client::StreamFrame;
use berth_wire::daemon::*;
use clap::{Args, Subcommand};
use serde_json::json;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use attach::AttachArgs;

/// The sessions group.
#[derive(Subcommand)]
pub(crate) enum Command {
    /// Start a session (a command that outlives this terminal); prints its id.
    Run(RunArgs),
    /// Attach this terminal to a PTY session (detach with Ctrl-\).
    Attach(AttachArgs),
    /// List sessions, or `sessions purge` ended ones.
    Sessions(SessionsArgs),
    /// Print a session's held output (-f to follow).
    Logs(LogsArgs),
    /// Type text into a session.
    Send(SendArgs),
    /// End a session (SIGTERM, then SIGKILL after --grace ms).
    Kill(KillArgs),
    /// Copy a session's stream into a file from now on (`--stop HANDLE`
    /// ends a copy).
    Tee(TeeArgs),
}

impl Command {
    /// Runs one session command against the daemon (started if needed).
    pub(crate) fn run(self, ctx: &mut Ctx) -> CmdResult {
        match self {
            Command::Run(a) => run(ctx, a),
            Command::Attach(a) => attach::attach(ctx, a),
            Command::Sessions(a) => sessions(ctx, a),
            Command::Logs(a) => logs(ctx, a),
            Command::Send(a) => send(ctx, a),
            Command::Kill(a) => kill(ctx, a),
            Command::Tee(a) => tee(ctx, a),
        }
    }
}

#[derive(Args)]
pub(crate) struct RunArgs {
    /// Run on a pseudo-terminal (interactive programs, shells).
    #[arg(long)]
    pty: bool,
    /// A unique name to use instead of the id.
    #[arg(long)]
    name: Option<String>,
    /// Working directory (default: the current one).
    #[arg(long)]
    cwd: Option<PathBuf>,
    /// Extra environment, KEY=VALUE; repeatable, last wins.
    #[arg(long = "env", short = 'e', value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// Terminal rows (PTY; default: this terminal's, else 24).
    #[arg(long)]
    rows: Option<u32>,
    /// Terminal columns (PTY; default: this terminal's, else 80).
    #[arg(long)]
    cols: Option<u32>,
    /// Keep stderr apart from stdout (pipe sessions merge them by default).
    #[arg(long)]
    separate_stderr: bool,
    /// The command and its arguments.
    #[arg(last = true, required = true, num_args = 1..)]
    command: Vec<String>,
}

#[derive(Subcommand)]
pub(crate) enum SessionsCmd {
    /// Remove ended sessions.
    Purge {
        /// Only sessions of this originator.
        #[arg(long, default_value = "")]
        originator: String,
    },
}

#[derive(Args)]
pub(crate) struct SessionsArgs {
    #[command(subcommand)]
    cmd: Option<SessionsCmd>,
    /// JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub(crate) struct LogsArgs {
    /// Session id or name.
    session: String,
    /// Keep printing new output until the session ends.
    #[arg(short, long)]
    follow: bool,
    /// A pipe session's stderr instead of stdout.
    #[arg(long)]
    stderr: bool,
}

#[derive(Args)]
pub(crate) struct SendArgs {
    /// Session id or name.
    session: String,
    /// Text to type (a newline is added unless --no-newline).
    text: String,
    #[arg(long)]
    no_newline: bool,
    /// Close the pipe session's stdin afterwards.
    #[arg(long)]
    close: bool,
}

#[derive(Args)]
pub(crate) struct KillArgs {
    /// Session id or name.
    session: String,
    /// Milliseconds between SIGTERM and SIGKILL.
    #[arg(long, default_value_t = 2000)]
    grace: u32,
}

#[derive(Args)]
pub(crate) struct TeeArgs {
    /// Session id or name.
    session: String,
    /// File to copy the stream into (created 0600).
    #[arg(required_unless_present = "stop")]
    file: Option<PathBuf>,
    /// Stop the copy with this handle (as `berth tee` printed it).
    #[arg(long, value_name = "HANDLE", conflicts_with = "file")]
    stop: Option<u64>,
    /// Which stream: output (default), stderr, stdin.
    #[arg(long, default_value = "output")]
    stream: String,
    /// Truncate the file instead of appending.
    #[arg(long)]
    truncate: bool,
    /// Slow the session rather than drop bytes when the file lags.
    #[arg(long)]
    block: bool,
    /// Bytes the tee may lag before dropping (0: the daemon's default).
    #[arg(long, default_value_t = 0)]
    capacity: u32,
}

fn run(ctx: &mut Ctx, a: RunArgs) -> CmdResult {
    let cwd = a
        .cwd
        .or_else(|| std::env::current_dir().ok())
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    // Reported as the daemon reports a refused argument (exit status 1).
    let env = key_value::pairs("--env", &a.env)
        .map_err(CliError::invalid_argument)?
        .into_iter()
        .map(|(key, value)| KeyValue { key, value })
        .collect();
    let c = ctx.client()?;
    let id = if a.pty {
        let size = berth_os::tty::size().unwrap_or(berth_os::tty::WinSize { rows: 24, cols: 80 });
        let (rows, cols) = (size.rows, size.cols);
        c.spawn_pty(SpawnPtySessionRequest {
            argv: a.command,
            cwd,
            env,
            rows: a.rows.unwrap_or(rows as u32),
            cols: a.cols.unwrap_or(cols as u32),
            originator: "berth".into(),
            name: a.name.unwrap_or_default(),
            ..Default::default()
        })?
        .session_id
    } else {
        c.spawn_pipe(SpawnPipeSessionRequest {
            argv: a.command,
            cwd,
            env,
            originator: "berth".into(),
            merge_stderr_into_stdout: !a.separate_stderr,
            name: a.name.unwrap_or_default(),
            ..Default::default()
        })?
        .session_id
    };
    println!("{id}");
    Ok(0)
}

fn state(exited: bool, code: i32, outcome: i32) -> String {
    if !exited {
        return "running".into();
    }
    match TerminationOutcome::try_from(outcome).unwrap_or(TerminationOutcome::Unspecified) {
        TerminationOutcome::Unspecified => "lost".into(),
        TerminationOutcome::NaturalExit => format!("exited {code}"),
        TerminationOutcome::SoftExit => format!("terminated {code}"),
        TerminationOutcome::HardKilled => format!("killed {code}"),
    }
}

fn sessions(ctx: &mut Ctx, a: SessionsArgs) -> CmdResult {
    let c = ctx.client()?;
    if let Some(SessionsCmd::Purge { originator }) = a.cmd {
        let r = c.purge_sessions(&originator)?;
        println!(
            "purged {} pty and {} pipe sessions",
            r.pty_purged, r.pipe_purged
        );
        return Ok(0);
    }
    let ptys = c.list_pty("")?;
    let pipes = c.list_pipe("")?;
    let now = berth_os::proc::now_epoch();
    if a.json {
        let mut v: Vec<serde_json::Value> = ptys
            .iter()
            .map(|s| {
                json!({"id": s.session_id, "name": s.name, "kind": "pty", "pid": s.pid, "command": s.command,
                       "cwd": s.cwd, "originator": s.originator, "created_at": s.created_at,
                       "state": state(s.exited, s.exit_code, s.termination_outcome), "exited": s.exited,
                       "exit_code": s.exit_code, "exited_at": s.exited_at, "attached": s.attached,
                       "rows": s.rows, "cols": s.cols, "attached_term": s.attached_term, "attached_is_tty": s.attached_is_tty})
            })
            .collect();
        v.extend(pipes.iter().map(|s| {
            json!({"id": s.session_id, "name": s.name, "kind": "pipe", "pid": s.pid, "command": s.command,
                   "cwd": s.cwd, "originator": s.originator, "created_at": s.created_at,
                   "state": state(s.exited, s.exit_code, s.termination_outcome), "exited": s.exited,
                   "exit_code": s.exit_code, "exited_at": s.exited_at, "attached": s.stdout_attached,
                   "stderr_attached": s.stderr_attached, "merged": s.merge_stderr_into_stdout})
        }));
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return Ok(0);
    }
    if ptys.is_empty() && pipes.is_empty() {
        println!("no sessions");
        return Ok(0);
    }
    let mut rows: Vec<Vec<String>> = ptys
        .iter()
        .map(|s| {
            vec![
                s.session_id.clone(),
                s.name.clone(),
                "pty".into(),
                s.pid.to_string(),
                state(s.exited, s.exit_code, s.termination_outcome),
                duration(now - s.created_at),
                if s.attached { "yes" } else { "" }.into(),
                s.command.clone(),
            ]
        })
        .collect();
    rows.extend(pipes.iter().map(|s| {
        vec![
            s.session_id.clone(),
            s.name.clone(),
            "pipe".into(),
            s.pid.to_string(),
            state(s.exited, s.exit_code, s.termination_outcome),
            duration(now - s.created_at),
            if s.stdout_attached || s.stderr_attached {
                "yes"
            } else {
                ""
            }
            .into(),
            s.command.clone(),
        ]
    }));
    print!(
        "{}",
        table(
            &["ID", "NAME", "KIND", "PID", "STATE", "AGE", "ATTACHED", "COMMAND"],
            rows
        )
    );
    Ok(0)
}

fn logs(ctx: &mut Ctx, mut a: LogsArgs) -> CmdResult {
    a.session = resolve(ctx.client()?, &a.session)?;
    if a.stderr {
        stderr_is_apart(ctx.client()?, &a.session)?;
    }
    let mut c = ctx.take_client()?;
    let kind = if a.stderr {
        PipeStreamKind::Stderr
    } else {
        PipeStreamKind::Unspecified
    };
    let b = c.backlog(&a.session, kind)?;
    let mut out = std::io::stdout().lock();
    if !a.follow {
        let _ = out.write_all(&b.backlog);
        return Ok(0);
    }
    let follow_pipe = b.session_kind == "pipe";
    let (initial, mut stream) = if follow_pipe {
        let stream = if a.stderr {
            PipeStreamKind::Stderr
        } else {
            PipeStreamKind::Stdout
        };
        let (r, s) = c.attach_pipe(AttachPipeStreamRequest {
            session_id: a.session,
            stream: stream as i32,
            read_only: true,
            ..Default::default()
        })?;
        (r.backlog, s)
    } else {
        let (r, s) = c.attach_pty(AttachPtySessionRequest {
            session_id: a.session,
            read_only: true,
            ..Default::default()
        })?;
        (r.backlog, s)
    };
    let _ = out.write_all(&initial);
    let _ = out.flush();
    while let Some(f) = stream.next_frame()? {
        let bytes = match f {
            StreamFrame::Pty(PtyStreamFrame {
                frame: Some(pty_stream_frame::Frame::Output(b)),
            }) => b,
            StreamFrame::Pipe(PipeStreamFrame {
                frame: Some(pipe_stream_frame::Frame::Bytes(b)),
            }) => b,
            StreamFrame::Pty(PtyStreamFrame {
                frame: Some(pty_stream_frame::Frame::MissedBytes(_)),
            })
            | StreamFrame::Pipe(PipeStreamFrame {
                frame: Some(pipe_stream_frame::Frame::MissedBytes(_)),
            }) => continue,
            _ => break,
        };
        if out.write_all(&bytes).and_then(|_| out.flush()).is_err() {
            break;
        }
    }
    Ok(0)
}

fn send(ctx: &mut Ctx, mut a: SendArgs) -> CmdResult {
    a.session = resolve(ctx.client()?, &a.session)?;
    let mut text = a.text.into_bytes();
    if !a.no_newline {
        text.push(b'\n');
    }
    ctx.client()?.write_stdin(&a.session, &text, a.close)?;
    Ok(0)
}

fn kill(ctx: &mut Ctx, a: KillArgs) -> CmdResult {
    let c = ctx.client()?;
    let id = resolve(c, &a.session)?;
    let b = c.backlog(&id, PipeStreamKind::Unspecified)?;
    if b.session_kind == "pipe" {
        c.terminate_pipe(&id, a.grace)?;
    } else {
        c.terminate_pty(&id, a.grace)?;
    }
    println!("ended session {id}");
    Ok(0)
}

/// A session named by its id, its name, or a unique prefix of its id (as
/// git takes commit prefixes). A prefix that fits several sessions is
/// refused naming them; one that fits none is passed on as it is, for the
/// daemon to say it does not exist.
pub(super) fn resolve(c: &mut berth_client::Client, s: &str) -> Result<String, CliError> {
    let ptys = c.list_pty("")?;
    let pipes = c.list_pipe("")?;
    let all: Vec<(&str, &str)> = ptys
        .iter()
        .map(|p| (p.session_id.as_str(), p.name.as_str()))
        .chain(
            pipes
                .iter()
                .map(|p| (p.session_id.as_str(), p.name.as_str())),
        )
        .collect();
    if all.iter().any(|(id, name)| *id == s || *name == s) {
        return Ok(s.to_string());
    }
    let fits: Vec<&str> = all
        .iter()
        .map(|(id, _)| *id)
        .filter(|id| !s.is_empty() && id.starts_with(s))
        .collect();
    match fits.as_slice() {
        [one] => Ok((*one).to_string()),
        [] => Ok(s.to_string()),
        many => Err(CliError::failed(format!(
            "session prefix {s:?} fits {} sessions ({}); give more of the id",
            many.len(),
            many.join(", ")
        ))),
    }
}

/// `--stderr` needs a pipe session that keeps stderr apart.
fn stderr_is_apart(c: &mut berth_client::Client, id: &str) -> Result<(), CliError> {
    let pipes = c.list_pipe("")?;
    match pipes.iter().find(|p| p.session_id == id || p.name == id) {
        Some(p) if p.merge_stderr_into_stdout => Err(CliError::invalid_argument(format!(
            "session {id} merges stderr into its output, so `berth logs {id}` has both; to keep stderr apart, start it with `berth run --separate-stderr`"
        ))),
        Some(_) => Ok(()),
        None if c.list_pty("")?.iter().any(|p| p.session_id == id || p.name == id) => {
            Err(CliError::invalid_argument(format!(
                "session {id} is a PTY session, whose terminal has one stream: `berth logs {id}` shows it; --stderr is for pipe sessions started with `berth run --separate-stderr`"
            )))
        }
        None => Ok(()),
    }
}

fn tee(ctx: &mut Ctx, mut a: TeeArgs) -> CmdResult {
    let c = ctx.client()?;
    a.session = resolve(c, &a.session)?;
    let b = c.backlog(&a.session, PipeStreamKind::Unspecified)?;
    let pty = b.session_kind == "pty";
    let kind = if pty {
        TeeSessionKind::Pty
    } else {
        TeeSessionKind::Pipe
    };
    if let Some(handle) = a.stop {
        c.unregister_tee(&a.session, kind, handle)?;
        println!("stopped tee {handle} of session {}", a.session);
        return Ok(0);
    }
    let Some(file) = a.file else {
        return Err(CliError::usage(
            "give the FILE to copy into, or --stop HANDLE",
        ));
    };
    let stream = match (a.stream.as_str(), pty) {
        ("output" | "stdout", true) => TeeStreamKind::PtyOutput,
        ("output" | "stdout", false) => TeeStreamKind::Stdout,
        ("stderr", _) => TeeStreamKind::Stderr,
        ("stdin" | "input", _) => TeeStreamKind::Stdin,
        (other, _) => {
            return Err(CliError::invalid_argument(format!(
                "--stream {other:?}: use output, stderr or stdin"
            )))
        }
    };
    let path = std::path::absolute(&file)
        .map_err(|e| CliError::failed(format!("{}: {e}", file.display())))?;
    let handle = c.register_tee(RegisterSessionTeeRequest {
        session_id: a.session.clone(),
        session_kind: kind as i32,
        stream: stream as i32,
        sink_kind: TeeSinkKind::File as i32,
        file_path: path.as_os_str().as_bytes().to_vec(),
        file_mode: if a.truncate {
            TeeFileMode::Truncate
        } else {
            TeeFileMode::Append
        } as i32,
        queue_capacity: a.capacity,
        suppress_missed_markers: false,
        backpressure: if a.block {
            TeeBackpressure::Block
        } else {
            TeeBackpressure::DropOldest
        } as i32,
    })?;
    println!(
        "tee {handle}: copying {} of session {} into {}; `berth tee {} --stop {handle}` stops it",
        a.stream,
        a.session,
        path.display(),
        a.session
    );
    Ok(0)
}
