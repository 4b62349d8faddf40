//! Sessions: processes berth owns together with their terminal (PTY
//! sessions) or their pipes (pipe sessions), which outlive the clients that
//! watch them. Every output stream is a byte log with absolute offsets;
//! every viewer has its own cursor. Surfaces (the process API attach
//! stream, later the node API and the remote link) are views of these
//! objects and can watch the same session at once.

mod attach;
pub mod bytelog;
mod record;
pub mod replay;
pub mod screen;
mod sizes;
mod spawn;
mod tee;
pub mod termfront;

pub use attach::{AttachOptions, Attachment, Next, Replay};
pub use bytelog::{ByteLog, Chunk, OutputStream};
pub use screen::{ScreenSnapshot, ScreenState};
pub use spawn::{PipeSpawn, PtySpawn};
pub use tee::{TeeSpec, TeeStatus, TeeStream};

use crate::store::{Store, StoreError};
use berth_os::proc::now_epoch;
use berth_os::pty::WinSize;
use berth_os::OsError;
use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::io::unix::AsyncFd;
use tokio::sync::{oneshot, watch};

/// Tunables of the session engine.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Bytes kept per output stream (the backlog ring).
    pub backlog_bytes: usize,
    /// Grace between SIGTERM and SIGKILL when a caller gives none.
    pub default_grace: Duration,
    /// Queue capacity of a tee when the caller gives none.
    pub default_tee_capacity: usize,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            backlog_bytes: 1 << 20,
            default_grace: Duration::from_secs(2),
            default_tee_capacity: 256 * 1024,
        }
    }
}

/// PTY or pipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A child on a pseudo-terminal; one merged output stream.
    Pty,
    /// A child on pipes; stdout and stderr (unless merged) apart.
    Pipe,
}

impl Kind {
    /// "pty" or "pipe".
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Pty => "pty",
            Kind::Pipe => "pipe",
        }
    }
}

/// Which output stream of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamId {
    /// The PTY's output, or a pipe session's stdout.
    Output,
    /// A pipe session's stderr.
    Stderr,
}

/// How a session reached its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Exited by itself.
    NaturalExit,
    /// Exited within the grace period after a terminate request.
    SoftExit,
    /// Needed SIGKILL after the grace period.
    HardKilled,
    /// The daemon that owned it stopped while it ran; its fate is unknown.
    Lost,
}

/// The end of a session.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExitInfo {
    /// Exit status; 128 + N for death by signal N; -1 when lost.
    pub code: i32,
    /// When, seconds since the epoch.
    pub at: f64,
    /// How.
    pub outcome: Outcome,
}

/// Facts about the client holding a session's (or stream's) attachment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClientInfo {
    /// Whether the client is a terminal.
    pub is_tty: bool,
    /// Its TERM.
    pub term: String,
    /// Surface-defined metadata (e.g. encoded graphics capabilities); the
    /// engine stores it without interpreting it.
    pub meta: Vec<u8>,
}

/// A snapshot of a session for listings.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    /// UUID v4.
    pub id: String,
    /// Optional human name (unique among sessions).
    pub name: String,
    /// PTY or pipe.
    pub kind: Kind,
    /// Child pid.
    pub pid: u32,
    /// Command line.
    pub command: String,
    /// Working directory.
    pub cwd: String,
    /// Originator label.
    pub originator: String,
    /// Seconds since the epoch.
    pub created_at: f64,
    /// Current size (PTY).
    pub size: WinSize,
    /// Stderr merged into stdout (pipe).
    pub merged: bool,
    /// Holder of the output / stdout attachment.
    pub attached: Option<ClientInfo>,
    /// Holder of the stderr attachment (pipe).
    pub stderr_attached: bool,
    /// Set once it ended.
    pub exit: Option<ExitInfo>,
}

/// Why a session operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// Bad request; the message names the field.
    #[error("{0}")]
    InvalidArgument(String),
    /// No such session (or stream).
    #[error("{0}")]
    NotFound(String),
    /// Someone else holds the attachment and no steal was asked for.
    #[error("{0}")]
    AlreadyAttached(String),
    /// The OS refused: what berth was doing, with the `io::Error` as the
    /// source.
    #[error(transparent)]
    Os(#[from] OsError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

struct Slot {
    id: u64,
    client: ClientInfo,
    evict: Option<oneshot::Sender<String>>,
}

struct PtyParts {
    /// The PTY master; taken (and closed once the output reader is done
    /// with it) when the session ends, see [`Session::release_io`].
    master: Mutex<Option<Arc<AsyncFd<OwnedFd>>>>,
    size: Mutex<WinSize>,
    screen: Arc<ScreenState>,
}

#[derive(Default)]
struct Lifecycle {
    exit: Option<ExitInfo>,
    terminate_requested: bool,
    hard_kill_sent: bool,
}

/// One session.
pub struct Session {
    id: String,
    name: String,
    kind: Kind,
    pid: u32,
    command: String,
    cwd: String,
    originator: String,
    created_at: f64,
    merged: bool,
    output: Arc<OutputStream>,
    stderr: Option<Arc<OutputStream>>,
    input_log: Mutex<Option<Arc<OutputStream>>>,
    pty: Option<PtyParts>,
    stdin: tokio::sync::Mutex<Option<tokio::process::ChildStdin>>,
    stdin_closed: AtomicBool,
    life: Mutex<Lifecycle>,
    exit_tx: watch::Sender<Option<ExitInfo>>,
    slots: Mutex<[Option<Slot>; 2]>,
    tees: Mutex<Vec<tee::Tee>>,
    sizes: sizes::SizeClaims,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Session {
    /// UUID.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// PTY or pipe.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Child pid.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The output stream (PTY output or stdout).
    pub fn output(&self) -> &Arc<OutputStream> {
        &self.output
    }

    /// The stream `which`, if this session has it.
    pub fn stream(&self, which: StreamId) -> Option<&Arc<OutputStream>> {
        match which {
            StreamId::Output => Some(&self.output),
            StreamId::Stderr => self.stderr.as_ref(),
        }
    }

    /// Like [`stream`](Self::stream), for a request naming the stream:
    /// INVALID_ARGUMENT when this session has no separate stderr (it is
    /// merged into stdout), as the reference daemon answers.
    pub fn require_stream(&self, which: StreamId) -> Result<&Arc<OutputStream>, SessionError> {
        self.stream(which).ok_or_else(|| {
            SessionError::InvalidArgument(format!(
                "session {} has no separate stderr (it is merged into stdout)",
                self.id
            ))
        })
    }

    /// The screen model (PTY sessions).
    pub fn screen(&self) -> Option<&Arc<ScreenState>> {
        self.pty.as_ref().map(|p| &p.screen)
    }

    /// The exit, once it happened.
    pub fn exit(&self) -> Option<ExitInfo> {
        lock(&self.life).exit
    }

    /// Resolves when the session has ended.
    pub async fn wait_exit(&self) -> ExitInfo {
        let mut rx = self.exit_tx.subscribe();
        loop {
            if let Some(e) = *rx.borrow_and_update() {
                return e;
            }
            if rx.changed().await.is_err() {
                return ExitInfo {
                    code: -1,
                    at: now_epoch(),
                    outcome: Outcome::Lost,
                };
            }
        }
    }

    /// Listing facts.
    pub fn info(&self) -> SessionInfo {
        let slots = lock(&self.slots);
        SessionInfo {
            id: self.id.clone(),
            name: self.name.clone(),
            kind: self.kind,
            pid: self.pid,
            command: self.command.clone(),
            cwd: self.cwd.clone(),
            originator: self.originator.clone(),
            created_at: self.created_at,
            size: self
                .pty
                .as_ref()
                .map(|p| *lock(&p.size))
                .unwrap_or(WinSize { rows: 0, cols: 0 }),
            merged: self.merged,
            attached: slots[0].as_ref().map(|s| s.client.clone()),
            stderr_attached: slots[1].is_some(),
            exit: self.exit(),
        }
    }

    /// Writes input: to the PTY (keystrokes) or to the pipe's stdin.
    pub async fn write_input(&self, data: &[u8]) -> Result<usize, SessionError> {
        if self.exit().is_some() {
            return Err(SessionError::InvalidArgument(format!(
                "session {} has exited",
                self.id
            )));
        }
        if let Some(log) = lock(&self.input_log).clone() {
            log.append(data);
        }
        match &self.pty {
            Some(p) => {
                let master = lock(&p.master).clone().ok_or_else(|| {
                    SessionError::InvalidArgument(format!("session {} has exited", self.id))
                })?;
                spawn::write_all_fd(&master, data)
                    .await
                    .map_err(|e| SessionError::Os(OsError::new("writing to the terminal", e)))
            }
            None => {
                use tokio::io::AsyncWriteExt;
                if self.stdin_closed.load(Ordering::Acquire) {
                    return Err(SessionError::InvalidArgument(format!(
                        "stdin of session {} is closed; no more writes are accepted",
                        self.id
                    )));
                }
                let mut stdin = self.stdin.lock().await;
                let w = stdin.as_mut().ok_or_else(|| {
                    SessionError::InvalidArgument(format!("stdin of session {} is closed", self.id))
                })?;
                w.write_all(data)
                    .await
                    .map_err(|e| SessionError::Os(OsError::new("writing to stdin", e)))?;
                w.flush()
                    .await
                    .map_err(|e| SessionError::Os(OsError::new("writing to stdin", e)))?;
                Ok(data.len())
            }
        }
    }

    /// Closes a pipe session's stdin (EOF for the child).
    pub async fn close_stdin(&self) -> Result<(), SessionError> {
        if self.kind != Kind::Pipe {
            return Err(SessionError::InvalidArgument(
                "only pipe sessions have a closable stdin".into(),
            ));
        }
        self.stdin_closed.store(true, Ordering::Release);
        self.stdin.lock().await.take();
        Ok(())
    }

    /// Resizes the PTY (and its screen model). No-op for pipe sessions.
    pub fn resize(&self, rows: u16, cols: u16) -> Result<(), SessionError> {
        let Some(p) = &self.pty else { return Ok(()) };
        if rows == 0 || cols == 0 {
            return Err(SessionError::InvalidArgument(format!(
                "rows and cols must be > 0, got {rows}x{cols}"
            )));
        }
        let size = WinSize { rows, cols };
        if let Some(master) = lock(&p.master).clone().filter(|_| self.exit().is_none()) {
            berth_os::pty::resize(master.get_ref(), size)
                .map_err(|e| SessionError::Os(OsError::new("resize", e)))?;
        }
        *lock(&p.size) = size;
        p.screen.resize(rows, cols);
        Ok(())
    }

    /// Sends SIGINT to the terminal's foreground job (or the child).
    pub fn interrupt(&self) -> Result<(), SessionError> {
        if self.exit().is_some() {
            return Ok(());
        }
        let master = self.pty.as_ref().and_then(|p| lock(&p.master).clone());
        let pgrp = match master {
            Some(m) => berth_os::pty::foreground_group(m.get_ref()).unwrap_or(self.pid as i32),
            None => self.pid as i32,
        };
        berth_os::signal::send_group(pgrp, berth_os::signal::Signal::SIGINT)
            .map_err(|e| SessionError::Os(OsError::new("interrupt", e)))
    }

    /// Lets go of the descriptors an ended session no longer needs: the
    /// PTY master (with the screen model's answer writer, which holds it
    /// too) and a pipe session's stdin. The output readers keep their own
    /// ends until end of file, so output a program left behind is still
    /// read. Called once the exit is recorded: the session stays listed,
    /// with its output and screen, until it is purged, without holding
    /// descriptors (before, each ended session kept its PTY master or its
    /// stdin pipe until PURGE_EXITED_SESSIONS, so a client that never
    /// purged made the daemon run out of descriptors; issue 21).
    async fn release_io(&self) {
        if let Some(p) = &self.pty {
            lock(&p.master).take();
            p.screen.clear_responder();
        }
        self.stdin_closed.store(true, Ordering::Release);
        self.stdin.lock().await.take();
    }

    /// Takes the attachment of `stream`: fails with ALREADY_ATTACHED if
    /// held, unless `steal`, which evicts the holder (it is told who).
    fn take_slot(
        &self,
        stream: StreamId,
        client: ClientInfo,
        steal: bool,
        by: &str,
    ) -> Result<(u64, oneshot::Receiver<String>), SessionError> {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let idx = stream as usize;
        let mut slots = lock(&self.slots);
        if let Some(holder) = slots[idx].as_mut() {
            if !steal {
                return Err(SessionError::AlreadyAttached(format!(
                    "session {} already has an attached client; attach with steal to take it over",
                    self.id
                )));
            }
            if let Some(tx) = holder.evict.take() {
                let _ = tx.send(by.to_string());
            }
        }
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        slots[idx] = Some(Slot {
            id,
            client,
            evict: Some(tx),
        });
        Ok((id, rx))
    }

    fn release_slot(&self, stream: StreamId, id: u64) {
        let mut slots = lock(&self.slots);
        if slots[stream as usize].as_ref().is_some_and(|s| s.id == id) {
            slots[stream as usize] = None;
        }
    }

    /// Evicts whoever holds `stream` (DETACH from another connection).
    pub fn detach(&self, stream: StreamId, by: &str) -> bool {
        let mut slots = lock(&self.slots);
        match slots[stream as usize].take() {
            Some(mut s) => {
                if let Some(tx) = s.evict.take() {
                    let _ = tx.send(by.to_string());
                }
                true
            }
            None => false,
        }
    }
}

/// The session engine: PTY and pipe sessions that outlive their clients
/// (seed 003 requests 60-77). Each output stream is a byte ring with
/// absolute offsets that every viewer reads with its own cursor, and a PTY
/// session keeps a screen model for restores and grid clients.
///
/// Spawning needs a tokio runtime (the readers are tasks):
///
/// ```
/// # use std::sync::Arc;
/// use berth_engine::sessions::{PtySpawn, SessionConfig, Sessions};
/// use berth_engine::Store;
///
/// let dir = tempfile::tempdir().unwrap();
/// let store = Arc::new(Store::open(&dir.path().join("berth.db"), 0).unwrap());
/// let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
/// rt.block_on(async {
///     let sessions = Arc::new(Sessions::open(store, SessionConfig::default()).unwrap());
///     let spawn = PtySpawn {
///         argv: vec!["printf".into(), r"hello \033[1mworld\033[0m".into()],
///         rows: 24,
///         cols: 80,
///         ..PtySpawn::default()
///     };
///     let session = sessions.spawn_pty(&spawn).unwrap();
///     assert_eq!(session.wait_exit().await.code, 0);
///     // The raw bytes stay in the ring for any later viewer...
///     let raw = session.output().log().contents();
///     assert!(raw.windows(5).any(|w| w == b"hello"));
///     // ...and the screen model holds what a terminal would show.
///     let screen = session.screen().unwrap().snapshot();
///     assert!(screen.text.starts_with("hello world"), "{:?}", screen.text);
/// });
/// ```
pub struct Sessions {
    store: Arc<Store>,
    config: SessionConfig,
    map: Mutex<HashMap<String, Arc<Session>>>,
}

impl Sessions {
    /// Loads session records: any that were live when the daemon last
    /// stopped are marked lost (their terminal died with it).
    pub fn open(store: Arc<Store>, config: SessionConfig) -> Result<Self, SessionError> {
        let past = record::load_and_mark_lost(&store)?;
        let mut map = HashMap::new();
        for r in past {
            let s = Arc::new(Session {
                id: r.id.clone(),
                name: r.name,
                kind: r.kind,
                pid: r.pid,
                command: r.command,
                cwd: r.cwd,
                originator: r.originator,
                created_at: r.created_at,
                merged: r.merged,
                output: closed_stream(),
                stderr: (r.kind == Kind::Pipe && !r.merged).then(closed_stream),
                input_log: Mutex::new(None),
                pty: None,
                stdin: tokio::sync::Mutex::new(None),
                stdin_closed: AtomicBool::new(true),
                life: Mutex::new(Lifecycle {
                    exit: Some(r.exit),
                    ..Default::default()
                }),
                exit_tx: watch::channel(Some(r.exit)).0,
                slots: Mutex::new([None, None]),
                tees: Mutex::new(Vec::new()),
                sizes: Default::default(),
            });
            map.insert(r.id, s);
        }
        Ok(Self {
            store,
            config,
            map: Mutex::new(map),
        })
    }

    /// The engine's configuration.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// Finds a session by id, or by name.
    pub fn get(&self, id_or_name: &str) -> Result<Arc<Session>, SessionError> {
        let map = lock(&self.map);
        if let Some(s) = map.get(id_or_name) {
            return Ok(s.clone());
        }
        if !id_or_name.is_empty() {
            if let Some(s) = map.values().find(|s| s.name == id_or_name) {
                return Ok(s.clone());
            }
        }
        Err(SessionError::NotFound(format!("no session {id_or_name:?}")))
    }

    /// Finds a session of `kind`.
    pub fn get_kind(&self, id: &str, kind: Kind) -> Result<Arc<Session>, SessionError> {
        let s = self.get(id)?;
        if s.kind != kind {
            // A stream or kind the session does not have is a bad request
            // (INVALID_ARGUMENT, as the reference daemon answers), not a
            // missing session.
            return Err(SessionError::InvalidArgument(format!(
                "session {id} is a {} session, not a {} session",
                s.kind.as_str(),
                kind.as_str()
            )));
        }
        Ok(s)
    }

    /// All sessions of `kind` (all kinds if `None`) whose originator
    /// matches (`""` matches all), oldest first.
    pub fn list(&self, kind: Option<Kind>, originator: &str) -> Vec<SessionInfo> {
        let mut v: Vec<SessionInfo> = lock(&self.map)
            .values()
            .filter(|s| kind.is_none_or(|k| s.kind == k))
            .filter(|s| originator.is_empty() || s.originator == originator)
            .map(|s| s.info())
            .collect();
        v.sort_by(|a, b| a.created_at.total_cmp(&b.created_at).then(a.id.cmp(&b.id)));
        v
    }

    fn check_name(&self, name: &str) -> Result<(), SessionError> {
        if name.is_empty() {
            return Ok(());
        }
        if name.len() > 64 || name.chars().any(|c| c.is_control() || c == '/') {
            return Err(SessionError::InvalidArgument(format!(
                "name {name:?}: use up to 64 printable characters, no '/'"
            )));
        }
        if let Some(s) = lock(&self.map).values().find(|s| s.name == name) {
            return Err(SessionError::InvalidArgument(format!(
                "name {name:?} is already used by session {}",
                s.id
            )));
        }
        Ok(())
    }

    fn insert(&self, s: Arc<Session>) -> Result<(), SessionError> {
        record::insert(&self.store, &s)?;
        lock(&self.map).insert(s.id.clone(), s);
        Ok(())
    }

    /// Releases the attachment of `stream` from another connection.
    pub fn detach(&self, id: &str, stream: StreamId, by: &str) -> Result<bool, SessionError> {
        Ok(self.get(id)?.detach(stream, by))
    }

    /// The exact held bytes of a stream, without consuming anything.
    pub fn backlog(
        &self,
        id: &str,
        stream: StreamId,
    ) -> Result<(Arc<Session>, Vec<u8>, u64), SessionError> {
        let s = self.get(id)?;
        let out = s.require_stream(stream)?.clone();
        let log = out.log();
        Ok((s.clone(), log.contents(), log.start()))
    }

    /// What the next ATTACH of `stream` would return, without consuming it
    /// (the protocol's GET_SESSION_BACKLOG: "a real attach later still sees
    /// the same backlog"): the held output from the stream's delivered
    /// offset, and the bytes the ring dropped before it (see
    /// [`Attachment::bytes_missed`]). Raw bytes; ATTACH strips terminal
    /// queries from a PTY's.
    pub fn pending_backlog(
        &self,
        id: &str,
        stream: StreamId,
    ) -> Result<(Arc<Session>, Vec<u8>, u64), SessionError> {
        let s = self.get(id)?;
        let out = s.require_stream(stream)?.clone();
        let delivered = out.delivered();
        let log = out.log();
        let from = delivered.max(log.start());
        let missed = log.start().saturating_sub(delivered);
        let bytes = log.read(from, usize::MAX).data;
        Ok((s.clone(), bytes, missed))
    }

    /// Starts the soft-then-hard termination of `id` and returns at once.
    pub fn terminate(
        self: &Arc<Self>,
        id: &str,
        grace: Option<Duration>,
    ) -> Result<(), SessionError> {
        let s = self.get(id)?;
        self.terminate_session(&s, grace.unwrap_or(self.config.default_grace));
        Ok(())
    }

    fn terminate_session(&self, s: &Arc<Session>, grace: Duration) {
        {
            let mut life = lock(&s.life);
            if life.exit.is_some() || life.terminate_requested {
                return;
            }
            life.terminate_requested = true;
        }
        let _ = berth_os::signal::send_group(s.pid as i32, berth_os::signal::Signal::SIGTERM);
        if s.kind == Kind::Pty {
            let _ = berth_os::signal::send_group(s.pid as i32, berth_os::signal::Signal::SIGHUP);
        }
        let s = s.clone();
        tokio::spawn(async move {
            if tokio::time::timeout(grace, s.wait_exit()).await.is_err() {
                lock(&s.life).hard_kill_sent = true;
                let _ =
                    berth_os::signal::send_group(s.pid as i32, berth_os::signal::Signal::SIGKILL);
            }
        });
    }

    /// Removes ended sessions matching `originator` ("" = all); returns
    /// how many PTY and pipe sessions went.
    pub fn purge_exited(&self, originator: &str) -> Result<(u32, u32), SessionError> {
        let gone: Vec<Arc<Session>> = {
            let mut map = lock(&self.map);
            let ids: Vec<String> = map
                .values()
                .filter(|s| {
                    s.exit().is_some() && (originator.is_empty() || s.originator == originator)
                })
                .map(|s| s.id.clone())
                .collect();
            ids.iter().filter_map(|id| map.remove(id)).collect()
        };
        record::delete(
            &self.store,
            &gone.iter().map(|s| s.id.clone()).collect::<Vec<_>>(),
        )?;
        let pty = gone.iter().filter(|s| s.kind == Kind::Pty).count() as u32;
        Ok((pty, gone.len() as u32 - pty))
    }

    /// Terminates live sessions older than `older_than` (zero: all) whose
    /// originator matches; returns PTY and pipe counts.
    pub fn bulk_terminate(
        &self,
        older_than: Duration,
        originator: &str,
        grace: Option<Duration>,
    ) -> (u32, u32) {
        let now = now_epoch();
        let targets: Vec<Arc<Session>> = lock(&self.map)
            .values()
            .filter(|s| s.exit().is_none())
            .filter(|s| originator.is_empty() || s.originator == originator)
            .filter(|s| older_than.is_zero() || now - s.created_at > older_than.as_secs_f64())
            .cloned()
            .collect();
        let grace = grace.unwrap_or(self.config.default_grace);
        for s in &targets {
            self.terminate_session(s, grace);
        }
        let pty = targets.iter().filter(|s| s.kind == Kind::Pty).count() as u32;
        (pty, targets.len() as u32 - pty)
    }

    /// Ends every live session (daemon shutdown).
    pub fn terminate_all(&self, grace: Duration) {
        self.bulk_terminate(Duration::ZERO, "", Some(grace));
    }
}

fn closed_stream() -> Arc<OutputStream> {
    let s = OutputStream::new(1);
    s.close();
    s
}

#[cfg(test)]
mod tests;
