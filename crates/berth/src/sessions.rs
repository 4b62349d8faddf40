//! Session subcommands: `run`, `attach`, `sessions`, `logs`, `send`,
//! `kill`, `tee`. Each is a client of the process API.

use crate::output::{duration, table};
use berth_client::{Client, ClientError, StreamFrame};
use berth_wire::daemon::*;
use clap::{Args, Subcommand};
use serde_json::json;
use std::io::{IsTerminal, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Args)]
pub struct RunArgs {
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
    /// Terminal rows and columns (PTY; default: this terminal's, else 24x80).
    #[arg(long)]
    rows: Option<u32>,
    #[arg(long)]
    cols: Option<u32>,
    /// Keep stderr apart from stdout (pipe sessions merge them by default).
    #[arg(long)]
    separate_stderr: bool,
    /// The command and its arguments.
    #[arg(last = true, required = true, num_args = 1..)]
    command: Vec<String>,
}

#[derive(Args)]
pub struct AttachArgs {
    /// Session id or name.
    session: String,
    /// Take the session over from the client attached to it.
    #[arg(long)]
    steal: bool,
    /// Watch only: keystrokes are not sent, nobody is displaced.
    #[arg(long)]
    read_only: bool,
    /// Detach key, as ^X notation (default ^\).
    #[arg(long, default_value = "^\\")]
    detach_key: String,
    /// Replay the raw backlog instead of restoring the screen.
    #[arg(long)]
    raw: bool,
}

#[derive(Subcommand)]
pub enum SessionsCmd {
    /// Remove ended sessions.
    Purge {
        /// Only sessions of this originator.
        #[arg(long, default_value = "")]
        originator: String,
    },
}

#[derive(Args)]
pub struct SessionsArgs {
    #[command(subcommand)]
    cmd: Option<SessionsCmd>,
    /// JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct LogsArgs {
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
pub struct SendArgs {
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
pub struct KillArgs {
    /// Session id or name.
    session: String,
    /// Milliseconds between SIGTERM and SIGKILL.
    #[arg(long, default_value_t = 2000)]
    grace: u32,
}

#[derive(Args)]
pub struct TeeArgs {
    /// Session id or name.
    session: String,
    /// File to copy the stream into (created 0600).
    file: PathBuf,
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

fn kvs(env: &[String]) -> Result<Vec<KeyValue>, ClientError> {
    env.iter()
        .map(|e| {
            e.split_once('=')
                .map(|(k, v)| KeyValue {
                    key: k.into(),
                    value: v.into(),
                })
                .ok_or_else(|| ClientError::Status {
                    code: StatusCode::InvalidArgument,
                    message: format!("--env {e:?} must be KEY=VALUE"),
                })
        })
        .collect()
}

/// This terminal's (rows, cols), if stdout is one.
pub(crate) fn term_size() -> Option<(u16, u16)> {
    berth_os::tty::size().map(|s| (s.rows, s.cols))
}

pub fn run(c: &mut Client, a: RunArgs) -> Result<i32, ClientError> {
    let cwd = a
        .cwd
        .or_else(|| std::env::current_dir().ok())
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let env = kvs(&a.env)?;
    let id = if a.pty {
        let (rows, cols) = term_size().unwrap_or((24, 80));
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

fn parse_key(k: &str) -> Result<u8, ClientError> {
    let bad = || ClientError::Status {
        code: StatusCode::InvalidArgument,
        message: format!("--detach-key {k:?}: use ^X notation, e.g. ^\\ or ^]"),
    };
    let b = k.as_bytes();
    match b {
        [b'^', c] => Ok(c.to_ascii_uppercase() ^ 0x40),
        [c] if *c < 0x20 => Ok(*c),
        _ => Err(bad()),
    }
}

pub fn attach(c: Client, a: AttachArgs) -> Result<i32, ClientError> {
    let key = parse_key(&a.detach_key)?;
    let tty = std::io::stdout().is_terminal();
    let (rows, cols) = term_size().unwrap_or((0, 0));
    let (resp, mut stream) = c.attach_pty(AttachPtySessionRequest {
        session_id: a.session.clone(),
        rows: rows as u32,
        cols: cols as u32,
        steal: a.steal,
        term: std::env::var("TERM").unwrap_or_default(),
        is_tty: tty,
        read_only: a.read_only,
        screen_restore: tty && !a.raw,
        ..Default::default()
    })?;
    let raw = berth_os::tty::RawMode::stdin();
    let mut out = std::io::stdout().lock();
    if tty && !a.raw {
        // A clean terminal for the restored screen.
        let _ = out.write_all(b"\x1b[!p\x1b[H\x1b[2J");
    }
    let _ = out.write_all(&resp.backlog);
    let _ = out.flush();
    let mut input = stream.input()?;
    let resizes = berth_os::tty::watch_resizes()?;
    // Window size changes are checked on a timer, not only between
    // keystrokes (the key reader blocks in read).
    let mut resizer = input.clone();
    std::thread::spawn(move || loop {
        std::thread::sleep(std::time::Duration::from_millis(100));
        if resizes.take() {
            if let Some((r, c)) = term_size() {
                let f = pty_input_frame::Frame::Resize(PtyResize {
                    rows: r as u32,
                    cols: c as u32,
                });
                if resizer.send(f).is_err() {
                    return;
                }
            }
        }
    });
    let read_only = a.read_only;
    let detached = std::sync::Arc::new(AtomicBool::new(false));
    let flag = detached.clone();
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buf = [0u8; 4096];
        loop {
            let n = match stdin.read(&mut buf) {
                Ok(0) | Err(_) => {
                    if !read_only {
                        let _ = input.send(pty_input_frame::Frame::Detach(true));
                    }
                    return;
                }
                Ok(n) => n,
            };
            if let Some(pos) = buf[..n].iter().position(|b| *b == key) {
                if !read_only && pos > 0 {
                    let _ = input.send(pty_input_frame::Frame::Input(buf[..pos].to_vec()));
                }
                flag.store(true, Ordering::Relaxed);
                let _ = input.send(pty_input_frame::Frame::Detach(true));
                return;
            }
            if !read_only
                && input
                    .send(pty_input_frame::Frame::Input(buf[..n].to_vec()))
                    .is_err()
            {
                return;
            }
        }
    });
    let mut code = 0;
    let mut note = String::new();
    while let Some(f) = stream.next_frame()? {
        let StreamFrame::Pty(f) = f else { continue };
        match f.frame {
            Some(pty_stream_frame::Frame::Output(b)) => {
                let _ = out.write_all(&b);
                let _ = out.flush();
            }
            Some(pty_stream_frame::Frame::MissedBytes(n)) => {
                note = format!("[missed {n} bytes of output]")
            }
            Some(pty_stream_frame::Frame::ExitCode(c)) => {
                code = c;
                note = format!("[session exited with code {c}]");
                break;
            }
            Some(pty_stream_frame::Frame::StolenBy(by)) => {
                note = format!("[detached: taken over by {by}]");
                break;
            }
            Some(pty_stream_frame::Frame::Error(e)) => {
                note = format!("[stream ended: {e}]");
                code = 1;
                break;
            }
            None => {}
        }
    }
    drop(raw);
    if detached.load(Ordering::Relaxed) {
        note = format!("[detached from {}]", a.session);
    }
    if !note.is_empty() {
        eprintln!("\r\n{note}");
    }
    Ok(code)
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

pub fn sessions(c: &mut Client, a: SessionsArgs) -> Result<i32, ClientError> {
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

pub fn logs(c: Client, a: LogsArgs) -> Result<i32, ClientError> {
    let mut c = c;
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

pub fn send(c: &mut Client, a: SendArgs) -> Result<i32, ClientError> {
    let mut text = a.text.into_bytes();
    if !a.no_newline {
        text.push(b'\n');
    }
    c.write_stdin(&a.session, &text, a.close)?;
    Ok(0)
}

pub fn kill(c: &mut Client, a: KillArgs) -> Result<i32, ClientError> {
    let b = c.backlog(&a.session, PipeStreamKind::Unspecified)?;
    if b.session_kind == "pipe" {
        c.terminate_pipe(&a.session, a.grace)?;
    } else {
        c.terminate_pty(&a.session, a.grace)?;
    }
    Ok(0)
}

pub fn tee(c: &mut Client, a: TeeArgs) -> Result<i32, ClientError> {
    let b = c.backlog(&a.session, PipeStreamKind::Unspecified)?;
    let pty = b.session_kind == "pty";
    let stream = match (a.stream.as_str(), pty) {
        ("output" | "stdout", true) => TeeStreamKind::PtyOutput,
        ("output" | "stdout", false) => TeeStreamKind::Stdout,
        ("stderr", _) => TeeStreamKind::Stderr,
        ("stdin" | "input", _) => TeeStreamKind::Stdin,
        (other, _) => {
            return Err(ClientError::Status {
                code: StatusCode::InvalidArgument,
                message: format!("--stream {other:?}: use output, stderr or stdin"),
            })
        }
    };
    let path = std::path::absolute(&a.file)?;
    let handle = c.register_tee(RegisterSessionTeeRequest {
        session_id: a.session,
        session_kind: if pty {
            TeeSessionKind::Pty
        } else {
            TeeSessionKind::Pipe
        } as i32,
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
    println!("{handle}");
    Ok(0)
}
