//! Starting sessions: the child, its PTY or pipes, the reader tasks that
//! fill the byte logs, and the watcher that records how it ended.

use super::*;
use crate::registry::{child_env, ORIGINATOR_ENV_VAR};
use berth_os::spawn::{new_session, SpawnSpec};
use std::os::unix::process::ExitStatusExt;
use tokio::io::AsyncReadExt;

/// A PTY session to start.
#[derive(Debug, Clone, Default)]
pub struct PtySpawn {
    /// Program and arguments.
    pub argv: Vec<String>,
    /// Working directory (the daemon's when empty).
    pub cwd: String,
    /// Ordered env overrides; last wins.
    pub env: Vec<(String, String)>,
    /// Start from an empty environment.
    pub clear_env: bool,
    /// Start from the user's login environment (the reference's
    /// `USER_BASELINE` policy: `HOME`, `USER`, `PATH`...); wins over
    /// `clear_env`.
    pub user_baseline: bool,
    /// Initial size; 0 means 24x80.
    pub rows: u32,
    /// Initial size; 0 means 24x80.
    pub cols: u32,
    /// Originator label, also exported to the child as
    /// `RUNNING_PROCESS_ORIGINATOR` (the surface fills in a default, as the
    /// reference uses `client:<client_name>`).
    pub originator: String,
    /// Optional unique name.
    pub name: String,
}

/// A pipe session to start.
#[derive(Debug, Clone, Default)]
pub struct PipeSpawn {
    /// Program and arguments.
    pub argv: Vec<String>,
    /// Working directory (the daemon's when empty).
    pub cwd: String,
    /// Ordered env overrides; last wins.
    pub env: Vec<(String, String)>,
    /// Start from an empty environment.
    pub clear_env: bool,
    /// Start from the user's login environment (the reference's
    /// `USER_BASELINE` policy: `HOME`, `USER`, `PATH`...); wins over
    /// `clear_env`.
    pub user_baseline: bool,
    /// Originator label, also exported to the child as
    /// `RUNNING_PROCESS_ORIGINATOR` (the surface fills in a default, as the
    /// reference uses `client:<client_name>`).
    pub originator: String,
    /// Send stderr into the stdout stream.
    pub merge_stderr: bool,
    /// Optional unique name.
    pub name: String,
}

const READ_BUF: usize = 64 * 1024;

fn prepare(
    field: &str,
    argv: &[String],
    cwd: &str,
    env: &[(String, String)],
    (clear, user_baseline): (bool, bool),
    originator: &str,
) -> Result<SpawnSpec, SessionError> {
    if argv.is_empty() || argv[0].is_empty() {
        return Err(SessionError::InvalidArgument(format!(
            "{field}.argv must name a program"
        )));
    }
    if let Some((k, _)) = env
        .iter()
        .find(|(k, _)| k.is_empty() || k.contains('=') || k.contains('\0'))
    {
        return Err(SessionError::InvalidArgument(format!(
            "{field}.env has an invalid key {k:?}"
        )));
    }
    let cwd = if cwd.is_empty() {
        std::env::current_dir()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| "/".into())
    } else {
        cwd.to_string()
    };
    if !std::path::Path::new(&cwd).is_dir() {
        return Err(SessionError::InvalidArgument(format!(
            "{field}.cwd {cwd:?} is not an existing directory"
        )));
    }
    Ok(SpawnSpec {
        argv: argv.to_vec(),
        cwd: Some(cwd),
        env: child_env(env, clear, user_baseline, &metadata(originator)),
    })
}

/// What berth adds to a session child's environment: its originator as
/// `RUNNING_PROCESS_ORIGINATOR`, as the reference does (when there is one).
fn metadata(originator: &str) -> Vec<(String, String)> {
    if originator.is_empty() {
        Vec::new()
    } else {
        vec![(ORIGINATOR_ENV_VAR.to_string(), originator.to_string())]
    }
}

fn exit_code(status: std::process::ExitStatus) -> i32 {
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

fn size_of(rows: u32, cols: u32) -> Result<WinSize, SessionError> {
    let rows = if rows == 0 { 24 } else { rows };
    let cols = if cols == 0 { 80 } else { cols };
    if rows > 4096 || cols > 4096 {
        return Err(SessionError::InvalidArgument(format!(
            "terminal size {rows}x{cols} is larger than 4096x4096"
        )));
    }
    Ok(WinSize {
        rows: rows as u16,
        cols: cols as u16,
    })
}

/// Writes all of `data` to a non-blocking fd, waiting for room.
pub(super) async fn write_all_fd(fd: &AsyncFd<OwnedFd>, mut data: &[u8]) -> std::io::Result<usize> {
    let total = data.len();
    while !data.is_empty() {
        let mut guard = fd.writable().await?;
        match guard.try_io(|inner| berth_os::fd::write(inner.get_ref(), data)) {
            Ok(Ok(n)) => data = &data[n..],
            Ok(Err(e)) => return Err(e),
            Err(_would_block) => continue,
        }
    }
    Ok(total)
}

/// Reads the PTY master until it would block or the buffer is full: a PTY
/// hands out output a few KiB at a time, and appending, waking viewers and
/// framing once per batch instead of once per read is what keeps the daemon's
/// CPU per byte low.
fn read_batch(fd: &OwnedFd, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    // Reads go into the vector's spare capacity, so its pages are only
    // touched when output actually arrives: an idle session's reader costs
    // no resident memory for its buffer.
    buf.clear();
    while buf.len() < buf.capacity() {
        match berth_os::fd::read_into_spare(fd, buf) {
            Ok(n) if n > 0 => continue,
            // End of file: what was read so far, or 0 when nothing was.
            Ok(_) => return Ok(buf.len()),
            // Would block, or a real error such as EIO once the slave
            // closed: report what was read first, the error when nothing was.
            Err(e) if buf.is_empty() => return Err(e),
            Err(_) => return Ok(buf.len()),
        }
    }
    Ok(buf.len())
}

/// How long the PTY reader lets output gather after a batch that did not
/// fill its buffer (see [`pump_pty`]).
const GATHER: Duration = Duration::from_millis(1);

/// Reads a PTY session's output into its stream until the terminal closes.
///
/// Batching: a PTY hands out at most a few KiB per read, and a program
/// writing steadily but slower than the daemon reads would otherwise be
/// read, appended, framed and written to each client a few hundred bytes
/// at a time. So after a batch that did not fill the buffer the reader
/// lets output gather for [`GATHER`] before it looks again (the kernel
/// holds far more than that in the meantime, so the program is not held
/// up); a full batch is followed at once by the next read. The first
/// output after a pause (a keystroke's echo) is read as soon as it
/// arrives; output within a millisecond of the previous batch waits at
/// most that long.
async fn pump_pty(master: Arc<AsyncFd<OwnedFd>>, out: Arc<OutputStream>, screen: Arc<ScreenState>) {
    let mut buf: Vec<u8> = Vec::with_capacity(READ_BUF);
    loop {
        let Ok(mut guard) = master.readable().await else {
            break;
        };
        let batch = guard.try_io(|inner| read_batch(inner.get_ref(), &mut buf));
        drop(guard);
        match batch {
            Ok(Ok(0)) => break,
            Ok(Ok(n)) => {
                // Viewers that keep reading, and the screen model, are
                // protected by flow control inside the append: a read
                // larger than what they may lag goes in in pieces, and the
                // model is told of each, so it sees every byte.
                let mut data = &buf[..n];
                while !data.is_empty() {
                    let k = out.append_some(data).await;
                    data = &data[k..];
                    screen.mark_dirty();
                }
                if n < READ_BUF {
                    tokio::time::sleep(GATHER).await;
                }
            }
            // EIO: every holder of the slave side closed it.
            Ok(Err(_)) => break,
            Err(_would_block) => continue,
        }
    }
    out.close();
}

async fn pump_pipe(mut rx: tokio::net::unix::pipe::Receiver, out: Arc<OutputStream>) {
    let mut buf: Vec<u8> = Vec::with_capacity(READ_BUF);
    loop {
        buf.clear();
        // `read_buf` fills spare capacity without zeroing it first.
        match rx.read_buf(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => out.append_respecting_blockers(&buf[..n]).await,
        }
    }
    out.close();
}

fn pipe_pair() -> Result<(OwnedFd, OwnedFd), SessionError> {
    Ok(berth_os::fd::pipe().map_err(OsError::with("pipe"))?)
}

fn receiver(fd: OwnedFd) -> Result<tokio::net::unix::pipe::Receiver, SessionError> {
    tokio::net::unix::pipe::Receiver::from_owned_fd(fd)
        .map_err(|e| SessionError::Os(OsError::new("pipe", e)))
}

impl Sessions {
    fn watch_exit(self: &Arc<Self>, s: Arc<Session>, mut child: tokio::process::Child) {
        let engine = self.clone();
        tokio::spawn(async move {
            let status = child.wait().await;
            let code = status.map(exit_code).unwrap_or(-1);
            // Let the readers drain what the child wrote before it died.
            let streams: Vec<Arc<OutputStream>> = [Some(s.output.clone()), s.stderr.clone()]
                .into_iter()
                .flatten()
                .collect();
            let drained = async {
                for st in &streams {
                    let mut rx = st.subscribe();
                    while !st.is_closed() {
                        if rx.changed().await.is_err() {
                            break;
                        }
                    }
                }
            };
            let _ = tokio::time::timeout(Duration::from_millis(500), drained).await;
            for st in &streams {
                st.close();
            }
            let exit = {
                let mut life = lock(&s.life);
                let outcome = match (life.terminate_requested, life.hard_kill_sent) {
                    (false, _) => Outcome::NaturalExit,
                    (true, false) => Outcome::SoftExit,
                    (true, true) => Outcome::HardKilled,
                };
                let e = ExitInfo {
                    code,
                    at: now_epoch(),
                    outcome,
                };
                life.exit = Some(e);
                e
            };
            if let Err(e) = record::update_exit(&engine.store, &s.id, &exit) {
                tracing::warn!(session = %s.id, "cannot record the session's exit: {e}");
            }
            s.exit_tx.send_replace(Some(exit));
            for t in lock(&s.tees).iter() {
                t.wake();
            }
            s.release_io().await;
        });
    }

    /// Starts a PTY session.
    pub fn spawn_pty(self: &Arc<Self>, req: &PtySpawn) -> Result<Arc<Session>, SessionError> {
        let mut spec = prepare(
            "spawn_pty_session",
            &req.argv,
            &req.cwd,
            &req.env,
            (req.clear_env, req.user_baseline),
            &req.originator,
        )?;
        self.check_name(&req.name)?;
        // Drawn before the child starts, so a failure leaves nothing running.
        let id = berth_os::ids::uuid_v4().map_err(OsError::with("session id"))?;
        if !spec.env.iter().any(|(k, _)| k == "TERM") {
            spec.env.push(("TERM".into(), "xterm-256color".into()));
        }
        let size = size_of(req.rows, req.cols)?;
        let pair =
            berth_os::pty::open(size).map_err(|e| SessionError::Os(OsError::new("openpty", e)))?;
        let mut cmd = spec
            .command()
            .map_err(|e| SessionError::InvalidArgument(e.to_string()))?;
        berth_os::pty::attach_command(&mut cmd, &pair.slave)
            .map_err(|e| SessionError::Os(e.into()))?;
        let child = tokio::process::Command::from(cmd).spawn().map_err(|e| {
            SessionError::InvalidArgument(format!(
                "spawn_pty_session.argv: cannot start {:?}: {e}",
                req.argv[0]
            ))
        })?;
        drop(pair.slave);
        let pid = child.id().unwrap_or(0);
        let master = berth_os::async_fd::register(
            pair.master,
            tokio::io::Interest::READABLE | tokio::io::Interest::WRITABLE,
        )
        .map_err(OsError::with("pty"))?;
        let master = Arc::new(master);
        let output = OutputStream::new(self.config.backlog_bytes);
        let screen = ScreenState::new(output.clone(), size.rows, size.cols);
        {
            // The model answers terminal queries no attached terminal saw,
            // through one writer so that answers keep their order.
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
            let m = master.clone();
            tokio::spawn(async move {
                while let Some(answer) = rx.recv().await {
                    let _ = write_all_fd(&m, &answer).await;
                }
            });
            screen.set_responder(Arc::new(move |answer: &[u8]| {
                let _ = tx.send(answer.to_vec());
            }));
        }
        let s = Arc::new(Session {
            id,
            name: req.name.clone(),
            kind: Kind::Pty,
            pid,
            command: req.argv.join(" "),
            cwd: spec.cwd.clone().unwrap_or_default(),
            originator: req.originator.clone(),
            created_at: now_epoch(),
            merged: false,
            output: output.clone(),
            stderr: None,
            input_log: Mutex::new(None),
            pty: Some(PtyParts {
                master: Mutex::new(Some(master.clone())),
                size: Mutex::new(size),
                screen: screen.clone(),
            }),
            stdin: tokio::sync::Mutex::new(None),
            stdin_closed: AtomicBool::new(false),
            life: Mutex::new(Lifecycle::default()),
            exit_tx: watch::channel(None).0,
            slots: Mutex::new([None, None]),
            tees: Mutex::new(Vec::new()),
            sizes: Default::default(),
        });
        self.insert(s.clone())?;
        tokio::spawn(pump_pty(master, output, screen));
        self.watch_exit(s.clone(), child);
        Ok(s)
    }

    /// Starts a pipe session.
    pub fn spawn_pipe(self: &Arc<Self>, req: &PipeSpawn) -> Result<Arc<Session>, SessionError> {
        let spec = prepare(
            "spawn_pipe_session",
            &req.argv,
            &req.cwd,
            &req.env,
            (req.clear_env, req.user_baseline),
            &req.originator,
        )?;
        self.check_name(&req.name)?;
        // Drawn before the child starts, so a failure leaves nothing running.
        let id = berth_os::ids::uuid_v4().map_err(OsError::with("session id"))?;
        let mut cmd = spec
            .command()
            .map_err(|e| SessionError::InvalidArgument(e.to_string()))?;
        new_session(&mut cmd);
        let (out_r, out_w) = pipe_pair()?;
        let err_pipe = if req.merge_stderr {
            None
        } else {
            Some(pipe_pair()?)
        };
        let stderr_w = match &err_pipe {
            Some((_, w)) => w.try_clone(),
            None => out_w.try_clone(),
        }
        .map_err(|e| SessionError::Os(OsError::new("pipe", e)))?;
        cmd.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::from(out_w))
            .stderr(std::process::Stdio::from(stderr_w));
        let mut child = tokio::process::Command::from(cmd).spawn().map_err(|e| {
            SessionError::InvalidArgument(format!(
                "spawn_pipe_session.argv: cannot start {:?}: {e}",
                req.argv[0]
            ))
        })?;
        // The parent's copies of the write ends must close, or the readers
        // never see end of file.
        let err_r = err_pipe.map(|(r, w)| {
            drop(w);
            r
        });
        let pid = child.id().unwrap_or(0);
        let stdin = child.stdin.take();
        let output = OutputStream::new(self.config.backlog_bytes);
        let stderr = err_r
            .as_ref()
            .map(|_| OutputStream::new(self.config.backlog_bytes));
        let s = Arc::new(Session {
            id,
            name: req.name.clone(),
            kind: Kind::Pipe,
            pid,
            command: req.argv.join(" "),
            cwd: spec.cwd.clone().unwrap_or_default(),
            originator: req.originator.clone(),
            created_at: now_epoch(),
            merged: req.merge_stderr,
            output: output.clone(),
            stderr: stderr.clone(),
            input_log: Mutex::new(None),
            pty: None,
            stdin: tokio::sync::Mutex::new(stdin),
            stdin_closed: AtomicBool::new(false),
            life: Mutex::new(Lifecycle::default()),
            exit_tx: watch::channel(None).0,
            slots: Mutex::new([None, None]),
            tees: Mutex::new(Vec::new()),
            sizes: Default::default(),
        });
        self.insert(s.clone())?;
        tokio::spawn(pump_pipe(receiver(out_r)?, output));
        if let (Some(err_r), Some(stderr)) = (err_r, stderr) {
            tokio::spawn(pump_pipe(receiver(err_r)?, stderr));
        }
        self.watch_exit(s.clone(), child);
        Ok(s)
    }
}
