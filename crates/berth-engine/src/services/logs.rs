//! Service logs.
//!
//! A service's stdout and stderr are not pipes to the daemon: each is a
//! *spool* file opened `O_APPEND` and handed to the process. Writing to a
//! file never blocks on the daemon, and the spool outlives a daemon crash,
//! so a re-adopted service keeps logging and nothing it wrote while the
//! daemon was down is lost. The daemon reads a spool as soon as it is
//! written (inotify, in the order the writes happened across a service's
//! two spools, so stdout and stderr lines keep the order the program wrote
//! them), and drains every spool every [`DRAIN_INTERVAL`] besides: each
//! complete line gets a UTC timestamp taken when it is read and a stream
//! tag and is appended to `<name>.log`, which rotates by size to
//! `<name>.log.1` .. `<name>.log.<keep>` (oldest dropped). Drained spool
//! ranges are released with `FALLOC_FL_PUNCH_HOLE`, so spools hold at most
//! about a megabyte of disk each however long the service runs.
//!
//! Text is never cut inside a character: a partial line logged because it
//! is old, or split because it is too long, ends before an incomplete
//! UTF-8 sequence, which waits for the rest of its bytes (issue 21, item
//! 5); only when the process is gone is an invalid tail logged as is.
//!
//! Followers subscribe to a broadcast of appended batches; a follower that
//! falls behind skips batches (and is told so) rather than slowing capture.

use berth_os::text::{incomplete_utf8_tail, utf8_cut};
use berth_os::watch::{WatchId, Watcher};
use std::collections::{BTreeMap, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::broadcast;

/// How often spools are drained into the logs.
pub const DRAIN_INTERVAL: Duration = Duration::from_millis(50);
/// A line longer than this is split (before a character, never inside).
pub const MAX_LINE: usize = 16 * 1024;
/// A partial line (no newline yet) is logged once it is this old.
const PARTIAL_AGE: Duration = Duration::from_millis(500);
/// Drained bytes released from a spool's disk blocks at a time.
const PUNCH_STEP: u64 = 1 << 20;
/// Most bytes read from one spool per drain, so one loud service cannot
/// starve the others within a tick.
const MAX_DRAIN: u64 = 8 << 20;

/// Which stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// stdout.
    Out,
    /// stderr.
    Err,
}

impl Stream {
    fn tag(self) -> &'static [u8] {
        match self {
            Stream::Out => b"out",
            Stream::Err => b"err",
        }
    }
    fn ext(self) -> &'static str {
        match self {
            Stream::Out => "out",
            Stream::Err => "err",
        }
    }
}

/// Where the logs live and how big they may grow.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// Directory of the log and spool files.
    pub dir: PathBuf,
    /// Size at which `<name>.log` is rotated.
    pub max_bytes: u64,
    /// Rotated files kept.
    pub keep: u32,
}

/// A spool's file and how far it has been drained: persisted so that a
/// restarted daemon resumes where the last one stopped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpoolPos {
    /// The spool file ("" when there is none).
    pub path: String,
    /// Bytes already drained.
    pub pos: u64,
}

/// Lines appended to one service's log, as stored.
#[derive(Debug)]
pub struct LogBatch {
    /// Service id.
    pub id: u32,
    /// Service name.
    pub name: Arc<str>,
    /// Complete lines, each `TIMESTAMP STREAM TEXT\n`.
    pub text: String,
}

struct Spool {
    path: PathBuf,
    file: File,
    pos: u64,
    punched: u64,
    partial: Vec<u8>,
    partial_since: Option<Instant>,
    watch: Option<WatchId>,
}

struct Sink {
    name: Arc<str>,
    log: Option<File>,
    log_len: u64,
    spools: [Option<Spool>; 2],
    moved: bool,
}

struct Inner {
    sinks: BTreeMap<u32, Sink>,
    buf: Vec<u8>,
    /// Which spool each watch is on: (service id, stream index).
    watched: BTreeMap<WatchId, (u32, usize)>,
}

/// All services' logs.
pub struct LogHub {
    cfg: LogConfig,
    inner: Mutex<Inner>,
    tx: broadcast::Sender<Arc<LogBatch>>,
    /// Tells which spool was written, in order; `None` when inotify is
    /// unavailable (then spools are drained on the timer only).
    watcher: Option<Watcher>,
}

/// `2026-01-02T03:04:05.678Z` for seconds since the epoch.
pub fn timestamp(epoch: f64) -> String {
    berth_os::time::iso8601(epoch)
}

fn push_line(out: &mut Vec<u8>, ts: &[u8], tag: &[u8], line: &[u8]) {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    out.extend_from_slice(ts);
    out.push(b' ');
    out.extend_from_slice(tag);
    out.push(b' ');
    out.extend_from_slice(line);
    out.push(b'\n');
}

impl Spool {
    fn open(path: &Path, pos: u64) -> io::Result<Self> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
            pos,
            punched: pos - pos % PUNCH_STEP,
            partial: Vec::new(),
            partial_since: None,
            watch: None,
        })
    }

    /// Reads the next complete line (at most [`MAX_LINE`] bytes ahead)
    /// into `out`; false, reading nothing, when there is none.
    fn drain_line(&mut self, stream: Stream, ts: &[u8], out: &mut Vec<u8>) -> bool {
        let mut chunk = vec![0u8; MAX_LINE.saturating_sub(self.partial.len()).max(1)];
        let n = loop {
            match self.file.read_at(&mut chunk, self.pos) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return false,
            }
        };
        let Some(i) = chunk[..n].iter().position(|b| *b == b'\n') else {
            return false;
        };
        self.partial.extend_from_slice(&chunk[..i]);
        push_line(out, ts, stream.tag(), &self.partial);
        self.partial.clear();
        self.partial_since = None;
        self.pos += i as u64 + 1;
        true
    }

    /// Reads what was appended since the last drain and formats the
    /// complete lines into `out`. With `last`, a trailing partial line is
    /// logged too.
    fn drain(
        &mut self,
        stream: Stream,
        ts: &[u8],
        scratch: &mut Vec<u8>,
        out: &mut Vec<u8>,
        last: bool,
    ) {
        scratch.resize(64 * 1024, 0);
        let start = self.pos;
        while self.pos - start < MAX_DRAIN {
            let n = match self.file.read_at(scratch, self.pos) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::warn!(spool = %self.path.display(), "cannot read spool: {e}");
                    break;
                }
            };
            self.pos += n as u64;
            let mut rest = &scratch[..n];
            while let Some(i) = rest.iter().position(|b| *b == b'\n') {
                if self.partial.is_empty() {
                    push_line(out, ts, stream.tag(), &rest[..i]);
                } else {
                    self.partial.extend_from_slice(&rest[..i]);
                    push_line(out, ts, stream.tag(), &self.partial);
                    self.partial.clear();
                }
                rest = &rest[i + 1..];
            }
            self.partial.extend_from_slice(rest);
            while self.partial.len() >= MAX_LINE {
                let cut = utf8_cut(&self.partial, MAX_LINE);
                let tail = self.partial.split_off(cut);
                push_line(out, ts, stream.tag(), &self.partial);
                self.partial = tail;
            }
        }
        if self.partial.is_empty() {
            self.partial_since = None;
        } else {
            let since = *self.partial_since.get_or_insert_with(Instant::now);
            if last {
                push_line(out, ts, stream.tag(), &self.partial);
                self.partial.clear();
                self.partial_since = None;
            } else if since.elapsed() >= PARTIAL_AGE {
                // Log what is whole; a character still being written
                // waits for its other bytes (they start the next record).
                let keep = incomplete_utf8_tail(&self.partial);
                let tail = self.partial.split_off(self.partial.len() - keep);
                if !self.partial.is_empty() {
                    push_line(out, ts, stream.tag(), &self.partial);
                }
                self.partial = tail;
                self.partial_since = None;
            }
        }
        if self.pos - self.punched >= PUNCH_STEP {
            let upto = self.pos - self.pos % PUNCH_STEP;
            if let Err(e) =
                berth_os::fsutil::punch_hole(&self.file, self.punched, upto - self.punched)
            {
                tracing::debug!(spool = %self.path.display(), "punching a hole failed: {e}");
            }
            self.punched = upto;
        }
    }
}

impl LogHub {
    /// A hub writing under `cfg.dir` (created private).
    pub fn new(cfg: LogConfig) -> io::Result<Self> {
        berth_os::fsutil::ensure_private_dir(&cfg.dir)?;
        Ok(Self {
            cfg,
            inner: Mutex::new(Inner {
                sinks: BTreeMap::new(),
                buf: Vec::new(),
                watched: BTreeMap::new(),
            }),
            // A lagging follower skips batches; the ring bounds what it pins.
            tx: broadcast::channel(64).0,
            watcher: Watcher::new()
                .inspect_err(|e| {
                    tracing::warn!("no inotify ({e}): service logs are read every 50 ms only")
                })
                .ok(),
        })
    }

    /// A descriptor that turns readable when a spool was written, to wait
    /// on before [`drain_written`](Self::drain_written); `None` without
    /// inotify.
    pub fn written_fd(&self) -> Option<std::os::fd::OwnedFd> {
        self.watcher.as_ref().and_then(|w| w.try_clone_fd().ok())
    }

    /// Reads the spools written since the last call, in the order they
    /// were written, each line timestamped now. Returns the ids whose
    /// spool positions moved; `WouldBlock` when nothing was written (so
    /// a reactor can wait again).
    pub fn drain_written(&self) -> io::Result<Vec<u32>> {
        let Some(w) = self.watcher.as_ref() else {
            return Err(io::ErrorKind::WouldBlock.into());
        };
        let written = w.read()?;
        let mut g = self.lock();
        let Inner {
            sinks,
            buf,
            watched,
        } = &mut *g;
        // One record per service per wake-up: its lines from both
        // streams, in the order the streams were written.
        let mut outs: BTreeMap<u32, Vec<u8>> = BTreeMap::new();
        // Read late, a spool holds more than the write that was reported:
        // an event followed by later events of the same spool takes one
        // line (what one write of a line-buffered program is), its last
        // event takes the rest. Read on time, each event is one write.
        let mut last_event = BTreeMap::new();
        for (k, wd) in written.iter().enumerate() {
            last_event.insert(*wd, k);
        }
        for (k, wd) in written.into_iter().enumerate() {
            let Some(&(id, i)) = watched.get(&wd) else {
                continue;
            };
            let Some(sink) = sinks.get_mut(&id) else {
                continue;
            };
            let Some(sp) = sink.spools[i].as_mut() else {
                continue;
            };
            let ts = timestamp(berth_os::proc::now_epoch());
            let before = sp.pos;
            let s = [Stream::Out, Stream::Err][i];
            let out = outs.entry(id).or_default();
            if last_event.get(&wd) == Some(&k) || !sp.drain_line(s, ts.as_bytes(), out) {
                sp.drain(s, ts.as_bytes(), buf, out, false);
            }
            sink.moved |= sp.pos != before;
        }
        let mut moved = Vec::new();
        for (id, out) in outs {
            let Some(sink) = sinks.get_mut(&id) else {
                continue;
            };
            if !out.is_empty() {
                self.append(sink, id, &out);
            }
            if std::mem::take(&mut sink.moved) {
                moved.push(id);
            }
        }
        Ok(moved)
    }

    fn watch(
        &self,
        watched: &mut BTreeMap<WatchId, (u32, usize)>,
        id: u32,
        i: usize,
        sp: &mut Spool,
    ) {
        let Some(w) = self.watcher.as_ref() else {
            return;
        };
        match w.watch(&sp.path) {
            Ok(wd) => {
                watched.insert(wd, (id, i));
                sp.watch = Some(wd);
            }
            Err(e) => tracing::debug!(spool = %sp.path.display(), "cannot watch spool: {e}"),
        }
    }

    fn unwatch(&self, watched: &mut BTreeMap<WatchId, (u32, usize)>, sp: &mut Spool) {
        if let (Some(w), Some(wd)) = (self.watcher.as_ref(), sp.watch.take()) {
            watched.remove(&wd);
            w.unwatch(wd);
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current log file of service `name`.
    pub fn log_path(&self, name: &str) -> PathBuf {
        self.cfg.dir.join(format!("{name}.log"))
    }

    fn rotated(&self, name: &str, i: u32) -> PathBuf {
        self.cfg.dir.join(format!("{name}.log.{i}"))
    }

    fn spool_path(&self, name: &str, s: Stream) -> PathBuf {
        self.cfg.dir.join(format!(".{name}.{}.spool", s.ext()))
    }

    /// The spool a process of service `id` gets for stream `s`.
    pub fn spool_file(&self, id: u32, s: Stream) -> PathBuf {
        let name = self
            .lock()
            .sinks
            .get(&id)
            .map(|k| k.name.clone())
            .unwrap_or_else(|| "".into());
        self.spool_path(&name, s)
    }

    /// Starts keeping logs for service `id`.
    pub fn register(&self, id: u32, name: &str) {
        self.lock().sinks.entry(id).or_insert_with(|| Sink {
            name: name.into(),
            log: None,
            log_len: 0,
            spools: [None, None],
            moved: false,
        });
    }

    /// Fresh spools for a new process of service `id`: returns the files
    /// to give it as stdout and stderr. Whatever the previous process left
    /// is drained first.
    pub fn new_spools(&self, id: u32) -> io::Result<(File, File)> {
        let mut g = self.lock();
        self.drain_locked(&mut g, id, true);
        let Inner { sinks, watched, .. } = &mut *g;
        let sink = sinks
            .get_mut(&id)
            .ok_or_else(|| io::Error::other("no log sink for this service"))?;
        let mut handles = Vec::new();
        for (i, s) in [Stream::Out, Stream::Err].into_iter().enumerate() {
            let path = self.spool_path(&sink.name, s);
            // Unlink first: a straggler of the old process keeps its own inode.
            let _ = fs::remove_file(&path);
            let w = OpenOptions::new()
                .append(true)
                .create(true)
                .mode(0o600)
                .open(&path)?;
            let mut sp = Spool::open(&path, 0)?;
            self.watch(watched, id, i, &mut sp);
            sink.spools[i] = Some(sp);
            handles.push(w);
        }
        sink.moved = true;
        let err = handles.pop().expect("two handles");
        let out = handles.pop().expect("two handles");
        Ok((out, err))
    }

    /// Reattaches the spools of a re-adopted process at the drained
    /// positions a previous daemon recorded.
    pub fn attach_spools(&self, id: u32, spools: &[SpoolPos; 2]) {
        let mut g = self.lock();
        let Inner { sinks, watched, .. } = &mut *g;
        let Some(sink) = sinks.get_mut(&id) else {
            return;
        };
        for (i, sp) in spools.iter().enumerate() {
            if sp.path.is_empty() {
                continue;
            }
            match Spool::open(Path::new(&sp.path), sp.pos) {
                Ok(mut s) => {
                    self.watch(watched, id, i, &mut s);
                    if let Some(mut old) = sink.spools[i].replace(s) {
                        self.unwatch(watched, &mut old);
                    }
                }
                Err(e) => tracing::warn!(spool = %sp.path, "cannot reattach spool: {e}"),
            }
        }
    }

    /// Current spool positions of service `id`.
    pub fn positions(&self, id: u32) -> [SpoolPos; 2] {
        let g = self.lock();
        let mut out: [SpoolPos; 2] = Default::default();
        if let Some(sink) = g.sinks.get(&id) {
            for (i, s) in sink.spools.iter().enumerate() {
                if let Some(s) = s {
                    out[i] = SpoolPos {
                        path: s.path.display().to_string(),
                        pos: s.pos,
                    };
                }
            }
        }
        out
    }

    /// Drains service `id`'s spools now; with `last` (its process is gone)
    /// partial lines are logged and the spools closed and removed.
    pub fn drain(&self, id: u32, last: bool) {
        let mut g = self.lock();
        self.drain_locked(&mut g, id, last);
    }

    /// Drains every spool. Returns the ids whose positions moved since
    /// the last call (for persisting).
    pub fn drain_all(&self) -> Vec<u32> {
        let mut g = self.lock();
        let ids: Vec<u32> = g.sinks.keys().copied().collect();
        let mut moved = Vec::new();
        for id in ids {
            self.drain_locked(&mut g, id, false);
            if let Some(s) = g.sinks.get_mut(&id) {
                if std::mem::take(&mut s.moved) {
                    moved.push(id);
                }
            }
        }
        moved
    }

    /// True when some service has an open spool (something to drain).
    pub fn has_spools(&self) -> bool {
        self.lock()
            .sinks
            .values()
            .any(|s| s.spools.iter().any(Option::is_some))
    }

    fn drain_locked(&self, g: &mut Inner, id: u32, last: bool) {
        let Inner {
            sinks,
            buf,
            watched,
        } = g;
        let Some(sink) = sinks.get_mut(&id) else {
            return;
        };
        if sink.spools.iter().all(Option::is_none) {
            return;
        }
        // Events not read yet name what was written first; without them,
        // the spool last written longer ago goes first.
        let mut order = [0, 1];
        let mtime = |sp: &Option<Spool>| {
            sp.as_ref()
                .and_then(|s| s.file.metadata().ok())
                .and_then(|m| m.modified().ok())
        };
        if let (Some(o), Some(e)) = (mtime(&sink.spools[0]), mtime(&sink.spools[1])) {
            if e < o {
                order = [1, 0];
            }
        }
        let ts = timestamp(berth_os::proc::now_epoch());
        let mut out = Vec::new();
        for i in order {
            let s = [Stream::Out, Stream::Err][i];
            if let Some(sp) = sink.spools[i].as_mut() {
                let before = sp.pos;
                sp.drain(s, ts.as_bytes(), buf, &mut out, last);
                sink.moved |= sp.pos != before;
            }
            if last {
                if let Some(mut sp) = sink.spools[i].take() {
                    self.unwatch(watched, &mut sp);
                    let _ = fs::remove_file(&sp.path);
                }
                sink.moved = true;
            }
        }
        if !out.is_empty() {
            self.append(sink, id, &out);
        }
    }

    /// Appends a line from berth itself (starts, exits, restarts) to the
    /// log of service `id`.
    pub fn event(&self, id: u32, text: &str) {
        let mut g = self.lock();
        let Some(sink) = g.sinks.get_mut(&id) else {
            return;
        };
        let mut out = Vec::new();
        let ts = timestamp(berth_os::proc::now_epoch());
        // An event is one record: text from the user (a command line
        // with newlines) must not split it into lines that read as output.
        push_line(&mut out, ts.as_bytes(), b"berth", one_line(text).as_bytes());
        self.append(sink, id, &out);
    }

    fn append(&self, sink: &mut Sink, id: u32, bytes: &[u8]) {
        let path = self.log_path(&sink.name);
        let mut rest = bytes;
        while !rest.is_empty() {
            if sink.log.is_none() {
                match OpenOptions::new()
                    .append(true)
                    .create(true)
                    .mode(0o600)
                    .open(&path)
                {
                    Ok(f) => {
                        sink.log_len = f.metadata().map(|m| m.len()).unwrap_or(0);
                        sink.log = Some(f);
                    }
                    Err(e) => {
                        tracing::warn!(log = %path.display(), "cannot open service log: {e}");
                        return;
                    }
                }
            }
            // Whole lines that still fit; at least one line per file.
            let room = self.cfg.max_bytes.saturating_sub(sink.log_len) as usize;
            let take = if rest.len() <= room {
                rest.len()
            } else {
                match rest[..room].iter().rposition(|b| *b == b'\n') {
                    Some(i) => i + 1,
                    None if sink.log_len == 0 => {
                        // One line longer than a whole file: it gets a file.
                        rest.iter()
                            .position(|b| *b == b'\n')
                            .map_or(rest.len(), |i| i + 1)
                    }
                    None => 0,
                }
            };
            if take == 0 {
                self.rotate(sink);
                continue;
            }
            let chunk = &rest[..take];
            if let Some(f) = sink.log.as_mut() {
                if let Err(e) = f.write_all(chunk) {
                    tracing::warn!(log = %path.display(), "cannot write service log: {e}");
                }
            }
            sink.log_len += take as u64;
            rest = &rest[take..];
        }
        if self.tx.receiver_count() > 0 {
            let _ = self.tx.send(Arc::new(LogBatch {
                id,
                name: sink.name.clone(),
                text: String::from_utf8_lossy(bytes).into_owned(),
            }));
        }
    }

    fn rotate(&self, sink: &mut Sink) {
        sink.log = None;
        sink.log_len = 0;
        let name = sink.name.clone();
        if self.cfg.keep == 0 {
            let _ = fs::remove_file(self.log_path(&name));
            return;
        }
        let _ = fs::remove_file(self.rotated(&name, self.cfg.keep));
        for i in (1..self.cfg.keep).rev() {
            let _ = fs::rename(self.rotated(&name, i), self.rotated(&name, i + 1));
        }
        let _ = fs::rename(self.log_path(&name), self.rotated(&name, 1));
    }

    /// Empties service `id`'s logs (current and rotated), after draining
    /// what its process already wrote.
    pub fn flush(&self, id: u32) {
        let mut g = self.lock();
        self.drain_locked(&mut g, id, false);
        let Some(sink) = g.sinks.get_mut(&id) else {
            return;
        };
        sink.log = None;
        sink.log_len = 0;
        let _ = fs::remove_file(self.log_path(&sink.name));
        for i in 1..=self.cfg.keep.max(1) {
            let _ = fs::remove_file(self.rotated(&sink.name, i));
        }
    }

    /// Forgets service `id` and deletes its files.
    pub fn remove(&self, id: u32) {
        self.flush(id);
        let mut g = self.lock();
        let Inner { sinks, watched, .. } = &mut *g;
        if let Some(mut sink) = sinks.remove(&id) {
            for sp in sink.spools.iter_mut().flatten() {
                self.unwatch(watched, sp);
            }
            for s in [Stream::Out, Stream::Err] {
                let _ = fs::remove_file(self.spool_path(&sink.name, s));
            }
        }
    }

    fn tail_locked(&self, g: &Inner, ids: &[u32], lines: usize, many: bool) -> String {
        let mut all: Vec<(String, Arc<str>)> = Vec::new();
        for id in ids {
            let Some(sink) = g.sinks.get(id) else {
                continue;
            };
            let mut paths = vec![self.log_path(&sink.name)];
            paths.extend((1..=self.cfg.keep).map(|i| self.rotated(&sink.name, i)));
            for l in tail_lines(&paths, lines) {
                all.push((l, sink.name.clone()));
            }
        }
        if many {
            // Each log is in time order; a stable sort on the timestamp
            // interleaves them without reordering any one service.
            all.sort_by(|a, b| ts_of(&a.0).cmp(ts_of(&b.0)));
        }
        let skip = all.len().saturating_sub(lines);
        let mut out = String::new();
        for (l, name) in all.into_iter().skip(skip) {
            if many {
                out.push_str(&with_name(&l, &name));
            } else {
                out.push_str(&l);
            }
            out.push('\n');
        }
        out
    }

    /// The last `lines` lines of the given services' logs; with `many`
    /// they are merged by time and each is tagged `[name]`.
    pub fn tail(&self, ids: &[u32], lines: usize, many: bool) -> String {
        let g = self.lock();
        self.tail_locked(&g, ids, lines, many)
    }

    /// Like [`tail`](Self::tail), plus a subscription to every batch
    /// appended after that tail was taken (no gap, no overlap).
    pub fn follow(
        &self,
        ids: &[u32],
        lines: usize,
        many: bool,
    ) -> (String, broadcast::Receiver<Arc<LogBatch>>) {
        let g = self.lock();
        let text = self.tail_locked(&g, ids, lines, many);
        (text, self.tx.subscribe())
    }
}

fn ts_of(line: &str) -> &str {
    line.split(' ').next().unwrap_or("")
}

/// `TS rest` → `TS [name] rest`: how a line reads in a multi-service view.
pub fn with_name(line: &str, name: &str) -> String {
    match line.split_once(' ') {
        Some((ts, rest)) => format!("{ts} [{name}] {rest}"),
        None => format!("[{name}] {line}"),
    }
}

/// The last `n` lines across `paths` (newest file first), oldest first.
fn tail_lines(paths: &[PathBuf], n: usize) -> Vec<String> {
    let mut acc: VecDeque<String> = VecDeque::new();
    for p in paths {
        if acc.len() >= n {
            break;
        }
        let Ok(f) = File::open(p) else {
            continue;
        };
        let want = n - acc.len();
        let mut got = tail_file(&f, want);
        while let Some(l) = got.pop() {
            acc.push_front(l);
        }
    }
    acc.into_iter().collect()
}

/// The last `n` lines of one file, read backwards in chunks.
fn tail_file(f: &File, n: usize) -> Vec<String> {
    let Ok(len) = f.metadata().map(|m| m.len()) else {
        return Vec::new();
    };
    let mut end = len;
    let mut buf: Vec<u8> = Vec::new();
    const CHUNK: u64 = 64 * 1024;
    while end > 0 {
        let start = end.saturating_sub(CHUNK);
        let mut chunk = vec![0u8; (end - start) as usize];
        if f.read_exact_at(&mut chunk, start).is_err() {
            break;
        }
        chunk.extend_from_slice(&buf);
        buf = chunk;
        end = start;
        // n lines need n + 1 newlines before them (or the file's start).
        if buf.iter().filter(|b| **b == b'\n').count() > n {
            break;
        }
    }
    let text = String::from_utf8_lossy(&buf);
    let mut lines: Vec<&str> = text.split('\n').collect();
    if lines.last() == Some(&"") {
        lines.pop();
    }
    if end > 0 && !lines.is_empty() {
        // The first piece may be the end of a longer line; drop it.
        lines.remove(0);
    }
    let skip = lines.len().saturating_sub(n);
    lines[skip..].iter().map(|s| s.to_string()).collect()
}

/// `text` as one line: `\`, newlines, tabs and other control characters
/// escaped (`\\`, `\n`, `\t`, `\u{1b}`), so a record stays one line.
fn one_line(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(|c| c.is_control() || c == '\\') {
        return text.into();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hub(max: u64, keep: u32) -> (tempfile::TempDir, LogHub) {
        let t = tempfile::tempdir().unwrap();
        let h = LogHub::new(LogConfig {
            dir: t.path().join("logs"),
            max_bytes: max,
            keep,
        })
        .unwrap();
        (t, h)
    }

    #[test]
    fn timestamps_are_utc_rfc3339() {
        assert_eq!(timestamp(0.0), "1970-01-01T00:00:00.000Z");
        assert_eq!(timestamp(951_782_400.5), "2000-02-29T00:00:00.500Z");
        assert_eq!(timestamp(1_767_323_045.678), "2026-01-02T03:04:05.678Z");
    }

    #[test]
    fn spooled_lines_are_timestamped_split_and_ordered_across_rotation() {
        let (_t, h) = hub(300, 2);
        h.register(1, "web");
        let (mut out, mut err) = h.new_spools(1).unwrap();
        for i in 0..40 {
            writeln!(out, "line {i}").unwrap();
        }
        write!(err, "partial").unwrap();
        h.drain(1, false);
        let text = h.tail(&[1], 1000, false);
        let nums: Vec<u32> = text
            .lines()
            .filter_map(|l| l.split(" out line ").nth(1))
            .map(|n| n.parse().unwrap())
            .collect();
        assert!(!nums.is_empty());
        assert_eq!(*nums.last().unwrap(), 39);
        assert!(nums.windows(2).all(|w| w[1] == w[0] + 1), "{nums:?}");
        assert!(nums[0] > 0, "rotation dropped the oldest lines");
        assert!(h.log_path("web").with_extension("log.2").exists());
        assert!(!h.log_path("web").with_extension("log.3").exists());
        assert!(!text.contains("partial"), "not a line yet");
        h.drain(1, true);
        assert!(h.tail(&[1], 1, false).ends_with(" err partial\n"));
        let first = text.lines().next().unwrap();
        assert_eq!(first.as_bytes()[23], b'Z', "{first}");
    }

    #[test]
    fn follow_sees_only_what_comes_after_the_tail_and_flush_empties() {
        let (_t, h) = hub(1 << 20, 2);
        h.register(1, "a");
        h.register(2, "b");
        h.event(1, "one");
        h.event(2, "two");
        let (text, mut rx) = h.follow(&[1, 2], 10, true);
        assert!(text.contains("[a] berth one") && text.contains("[b] berth two"));
        h.event(1, "three");
        let b = rx.try_recv().unwrap();
        assert_eq!(b.id, 1);
        assert!(b.text.ends_with(" berth three\n"));
        h.flush(1);
        assert_eq!(h.tail(&[1], 10, false), "");
        assert!(h.tail(&[2], 10, false).contains("two"));
    }

    #[test]
    fn tail_file_handles_chunks_and_long_files() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("f");
        let mut f = File::create(&p).unwrap();
        for i in 0..50_000 {
            writeln!(f, "{i}").unwrap();
        }
        let got = tail_file(&File::open(&p).unwrap(), 3);
        assert_eq!(got, ["49997", "49998", "49999"]);
        assert_eq!(tail_file(&File::open(&p).unwrap(), 60_000).len(), 50_000);
    }

    /// Issue 21, item 5: a character written in two writes more than
    /// PARTIAL_AGE apart was logged as two U+FFFD.
    #[test]
    fn a_character_split_across_slow_writes_is_logged_whole() {
        let (_t, h) = hub(1 << 20, 2);
        h.register(1, "slow");
        let (mut out, _err) = h.new_spools(1).unwrap();
        let euro = "€".as_bytes();
        out.write_all(b"price ").unwrap();
        out.write_all(&euro[..2]).unwrap();
        h.drain(1, false);
        std::thread::sleep(PARTIAL_AGE + Duration::from_millis(100));
        h.drain(1, false); // the partial line is old: logged now
        out.write_all(&euro[2..]).unwrap();
        out.write_all(" 5\n".as_bytes()).unwrap();
        h.drain(1, true);
        let text = h.tail(&[1], 10, false);
        assert!(!text.contains('\u{fffd}'), "{text}");
        let bodies: Vec<&str> = text
            .lines()
            .map(|l| l.splitn(3, ' ').nth(2).unwrap())
            .collect();
        assert_eq!(bodies, ["price ", "€ 5"], "{text}");
    }

    #[test]
    fn an_invalid_tail_at_the_end_is_kept_as_written() {
        let (_t, h) = hub(1 << 20, 2);
        h.register(1, "bad");
        let (mut out, _err) = h.new_spools(1).unwrap();
        out.write_all(b"cut \xe2\x82").unwrap();
        h.drain(1, true);
        let raw = std::fs::read(h.log_path("bad")).unwrap();
        assert!(raw.ends_with(b" out cut \xe2\x82\n"), "{raw:?}");
        assert!(h.tail(&[1], 1, false).ends_with("cut \u{fffd}\n"));
    }

    #[test]
    fn a_long_line_is_split_between_characters() {
        let (_t, h) = hub(1 << 20, 2);
        h.register(1, "long");
        let (mut out, _err) = h.new_spools(1).unwrap();
        let line = format!("{}é€😀\n", "a".repeat(MAX_LINE - 1));
        out.write_all(line.as_bytes()).unwrap();
        h.drain(1, true);
        let text = h.tail(&[1], 10, false);
        assert!(!text.contains('\u{fffd}'), "{}", &text[text.len() - 40..]);
        let joined: String = text
            .lines()
            .map(|l| l.splitn(3, ' ').nth(2).unwrap())
            .collect();
        assert_eq!(joined, line.trim_end());
        assert!(text.lines().all(|l| l.len() < MAX_LINE + 40));
    }

    /// Issue 21, item 6: stdout and stderr lines keep the order they were
    /// written in (they were drained one spool after the other).
    #[test]
    fn written_spools_are_read_in_write_order() {
        let (_t, h) = hub(1 << 20, 2);
        h.register(1, "both");
        let (mut out, mut err) = h.new_spools(1).unwrap();
        for i in 0..5 {
            writeln!(out, "o{i}").unwrap();
            writeln!(err, "e{i}").unwrap();
        }
        let moved = h.drain_written().unwrap();
        assert_eq!(moved, [1]);
        let order: Vec<String> = h
            .tail(&[1], 100, false)
            .lines()
            .map(|l| l.splitn(3, ' ').nth(2).unwrap().to_string())
            .collect();
        assert_eq!(
            order,
            ["o0", "e0", "o1", "e1", "o2", "e2", "o3", "e3", "o4", "e4"]
        );
        assert_eq!(
            h.drain_written().unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        // A closed spool is no longer watched.
        h.drain(1, true);
        writeln!(out, "late").unwrap();
        assert_eq!(
            h.drain_written().unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
    }
}
