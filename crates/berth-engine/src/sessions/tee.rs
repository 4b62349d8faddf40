//! Tees: a session stream copied into a file by the daemon, alongside any
//! attached clients. A tee is one more reader of the byte log with its own
//! cursor. With DROP_OLDEST it never slows the session: when it lags by more
//! than its queue capacity it skips ahead, counts the bytes, and (unless
//! suppressed) writes a marker. With BLOCK the session's reader waits for it,
//! so the file gets every byte and the child is slowed instead.

use super::*;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

/// Which stream a tee copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TeeStream {
    /// A PTY session's output.
    PtyOutput,
    /// A pipe session's stdout.
    Stdout,
    /// A pipe session's stderr.
    Stderr,
    /// Input written to the session.
    Stdin,
}

/// A tee to register.
#[derive(Debug, Clone)]
pub struct TeeSpec {
    /// The stream.
    pub stream: TeeStream,
    /// Absolute path of the file (or FIFO) to write.
    pub path: PathBuf,
    /// Truncate instead of appending.
    pub truncate: bool,
    /// Most bytes the tee may lag; 0 = the engine default.
    pub capacity: usize,
    /// Do not write missed-bytes markers.
    pub suppress_markers: bool,
    /// Slow the session instead of dropping bytes.
    pub block: bool,
}

/// A tee's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TeeStatus {
    /// The stream.
    pub stream: TeeStream,
    /// Bytes dropped because the tee lagged.
    pub missed: u64,
    /// The sink failed (or the tee finished); nothing more is written.
    pub disconnected: bool,
}

struct Shared {
    missed: AtomicU64,
    disconnected: AtomicBool,
    cancelled: AtomicBool,
}

pub(super) struct Tee {
    id: u64,
    stream: TeeStream,
    source: Arc<OutputStream>,
    shared: Arc<Shared>,
}

impl Tee {
    pub(super) fn wake(&self) {
        self.source.wake_sync();
    }
}

/// Marker written in place of dropped bytes.
pub(crate) fn missed_marker(n: u64) -> Vec<u8> {
    format!("\n[berth tee: missed {n} bytes]\n").into_bytes()
}

impl Sessions {
    /// Starts a tee on session `id`; returns its handle.
    pub fn register_tee(&self, id: &str, spec: TeeSpec) -> Result<u64, SessionError> {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let s = self.get(id)?;
        if s.exit().is_some() {
            return Err(SessionError::InvalidArgument(format!(
                "session {id} has exited; nothing more to tee"
            )));
        }
        // A relative path is resolved against the daemon's working
        // directory, as the reference daemon opens it (issue 20).
        let mut spec = spec;
        if spec.path.is_relative() {
            let here = std::env::current_dir().map_err(|e| {
                SessionError::InvalidArgument(format!(
                    "register_session_tee.file_path {:?} is relative and the daemon's working \
                     directory is unknown: {e}",
                    spec.path
                ))
            })?;
            spec.path = here.join(&spec.path);
        }
        let stream = match (s.kind, spec.stream) {
            (Kind::Pty, TeeStream::PtyOutput) | (Kind::Pipe, TeeStream::Stdout) => s.output.clone(),
            (Kind::Pipe, TeeStream::Stderr) => s.stderr.clone().ok_or_else(|| {
                SessionError::InvalidArgument(format!(
                    "session {id} merges stderr into stdout; tee stdout instead"
                ))
            })?,
            (_, TeeStream::Stdin) => lock(&s.input_log)
                .get_or_insert_with(|| OutputStream::new(self.config.backlog_bytes))
                .clone(),
            (kind, other) => {
                return Err(SessionError::InvalidArgument(format!(
                    "register_session_tee.stream {other:?} does not exist on a {} session",
                    kind.as_str()
                )))
            }
        };
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .append(!spec.truncate)
            .truncate(spec.truncate)
            .mode(0o600)
            .custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK)
            .open(&spec.path);
        // A FIFO with no reader yet cannot be opened non-blocking for
        // writing; the worker opens it blocking instead.
        let file = match file {
            Ok(f) => {
                // Opened non-blocking only so the open cannot hang; the
                // worker's writes block (the tee's policy decides drops).
                let _ = berth_os::fd::set_nonblocking(&f, false);
                Some(f)
            }
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) => None,
            Err(e) => {
                return Err(SessionError::InvalidArgument(format!(
                    "register_session_tee.file_path {:?}: {e}",
                    spec.path
                )))
            }
        };
        let handle = NEXT.fetch_add(1, Ordering::Relaxed);
        let cap = if spec.capacity == 0 {
            self.config.default_tee_capacity
        } else {
            spec.capacity
        } as u64;
        let cursor = Arc::new(AtomicU64::new(stream.log().end()));
        if spec.block {
            stream.add_blocker(handle, cursor.clone(), cap);
        }
        let shared = Arc::new(Shared {
            missed: AtomicU64::new(0),
            disconnected: AtomicBool::new(false),
            cancelled: AtomicBool::new(false),
        });
        lock(&s.tees).push(Tee {
            id: handle,
            stream: spec.stream,
            source: stream.clone(),
            shared: shared.clone(),
        });
        // A plain thread: writing to a slow sink (a FIFO nobody reads) must
        // block nothing but this tee.
        std::thread::spawn(move || {
            run(file, &spec, &stream, &cursor, cap, &shared);
            if spec.block {
                stream.remove_blocker(handle);
            }
            shared.disconnected.store(true, Ordering::Release);
        });
        Ok(handle)
    }

    /// Stops a tee.
    pub fn unregister_tee(&self, id: &str, handle: u64) -> Result<(), SessionError> {
        let s = self.get(id)?;
        let mut tees = lock(&s.tees);
        let pos = tees
            .iter()
            .position(|t| t.id == handle)
            .ok_or_else(|| SessionError::NotFound(format!("session {id} has no tee {handle}")))?;
        let t = tees.remove(pos);
        t.shared.cancelled.store(true, Ordering::Release);
        t.wake();
        Ok(())
    }

    /// A tee's counters.
    pub fn tee_status(&self, id: &str, handle: u64) -> Result<TeeStatus, SessionError> {
        let s = self.get(id)?;
        let tees = lock(&s.tees);
        let t = tees
            .iter()
            .find(|t| t.id == handle)
            .ok_or_else(|| SessionError::NotFound(format!("session {id} has no tee {handle}")))?;
        Ok(TeeStatus {
            stream: t.stream,
            missed: t.shared.missed.load(Ordering::Acquire),
            disconnected: t.shared.disconnected.load(Ordering::Acquire),
        })
    }
}

fn run(
    file: Option<std::fs::File>,
    spec: &TeeSpec,
    stream: &OutputStream,
    cursor: &AtomicU64,
    cap: u64,
    shared: &Shared,
) {
    let mut file = match file {
        Some(f) => f,
        None => match std::fs::OpenOptions::new().write(true).open(&spec.path) {
            Ok(f) => f,
            Err(_) => return,
        },
    };
    loop {
        if shared.cancelled.load(Ordering::Acquire) {
            return;
        }
        let pos = cursor.load(Ordering::Acquire);
        let chunk = {
            let log = stream.log();
            let mut from = pos;
            let mut skipped = 0;
            if !spec.block && log.end().saturating_sub(from) > cap {
                skipped = log.end() - cap - from;
                from += skipped;
            }
            let mut c = log.read(from, 64 * 1024);
            c.missed += skipped;
            c
        };
        if chunk.missed > 0 {
            shared.missed.fetch_add(chunk.missed, Ordering::AcqRel);
            if !spec.suppress_markers && file.write_all(&missed_marker(chunk.missed)).is_err() {
                return;
            }
        }
        if !chunk.data.is_empty() {
            if file.write_all(&chunk.data).is_err() {
                return;
            }
            cursor.store(chunk.offset + chunk.data.len() as u64, Ordering::Release);
            stream.reader_progressed();
            continue;
        }
        cursor.store(chunk.offset, Ordering::Release);
        if stream.is_closed() {
            return;
        }
        stream.wait_sync(chunk.offset, Duration::from_millis(250));
    }
}
