//! One byte log per output stream: a bounded ring addressed by absolute
//! offsets. Readers keep their own cursor, so reading never consumes
//! anything for anyone else, and a reader that falls behind the ring learns
//! exactly how many bytes it missed.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use tokio::sync::{watch, Notify};

/// A bounded ring of bytes with absolute offsets.
#[derive(Debug)]
pub struct ByteLog {
    buf: Vec<u8>,
    cap: usize,
    start: u64,
    end: u64,
}

/// What a read at some offset found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Chunk {
    /// Bytes that were dropped between the requested offset and the data.
    pub missed: u64,
    /// Absolute offset of `data[0]`.
    pub offset: u64,
    /// The bytes.
    pub data: Vec<u8>,
}

impl ByteLog {
    /// An empty log that keeps at most `cap` bytes. Memory grows with
    /// the data, so a quiet stream costs little.
    pub fn new(cap: usize) -> Self {
        Self {
            buf: Vec::new(),
            cap: cap.max(1),
            start: 0,
            end: 0,
        }
    }

    /// Offset of the oldest byte still held (= bytes dropped so far).
    pub fn start(&self) -> u64 {
        self.start
    }

    /// Offset one past the newest byte (= bytes ever appended).
    pub fn end(&self) -> u64 {
        self.end
    }

    /// Capacity in bytes.
    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// Appends `data`, dropping the oldest bytes beyond the capacity.
    pub fn append(&mut self, mut data: &[u8]) {
        if data.len() > self.cap {
            let skip = data.len() - self.cap;
            self.end += skip as u64;
            data = &data[skip..];
        }
        while !data.is_empty() {
            let pos = (self.end % self.cap as u64) as usize;
            if self.buf.len() < self.cap && pos == self.buf.len() {
                let n = data.len().min(self.cap - pos);
                self.buf.extend_from_slice(&data[..n]);
                data = &data[n..];
                self.end += n as u64;
            } else {
                // Ring mode (or a jump past a skipped prefix): every slot
                // that can be read back is written before it is read.
                if self.buf.len() < self.cap {
                    self.buf.resize(self.cap, 0);
                }
                let n = data.len().min(self.cap - pos);
                self.buf[pos..pos + n].copy_from_slice(&data[..n]);
                data = &data[n..];
                self.end += n as u64;
            }
        }
        self.start = self.start.max(self.end.saturating_sub(self.cap as u64));
    }

    /// Up to `max` bytes from `from` (clamped into the held range).
    pub fn read(&self, from: u64, max: usize) -> Chunk {
        let missed = self.start.saturating_sub(from);
        let offset = from.max(self.start).min(self.end);
        let len = ((self.end - offset) as usize).min(max);
        let mut data = Vec::with_capacity(len);
        self.copy_range(offset, len, &mut data);
        Chunk {
            missed,
            offset,
            data,
        }
    }

    /// Like [`read`](Self::read), appending the bytes to `out` instead of
    /// a new vector (a relay reuses one buffer); returns `(missed, offset,
    /// length)`.
    pub fn read_into(&self, from: u64, max: usize, out: &mut Vec<u8>) -> (u64, u64, usize) {
        let missed = self.start.saturating_sub(from);
        let offset = from.max(self.start).min(self.end);
        let len = ((self.end - offset) as usize).min(max);
        out.reserve(len);
        self.copy_range(offset, len, out);
        (missed, offset, len)
    }

    /// The held bytes from `from` (clamped into the held range) to the end,
    /// as at most two slices (the ring may wrap once): scanning in place
    /// without copying.
    pub fn slices_from(&self, from: u64) -> (&[u8], &[u8]) {
        let offset = from.max(self.start).min(self.end);
        let len = (self.end - offset) as usize;
        if len == 0 {
            return (&[], &[]);
        }
        let pos = (offset % self.cap as u64) as usize;
        let first = len.min(self.cap - pos);
        (&self.buf[pos..pos + first], &self.buf[..len - first])
    }

    fn copy_range(&self, offset: u64, len: usize, out: &mut Vec<u8>) {
        let mut pos = (offset % self.cap as u64) as usize;
        let mut left = len;
        while left > 0 {
            let n = left.min(self.cap - pos);
            out.extend_from_slice(&self.buf[pos..pos + n]);
            left -= n;
            pos = (pos + n) % self.cap;
        }
    }

    /// Offset just after the `count`-th newline counted back from the end,
    /// looking at most `max_back` bytes back; `None` if there are fewer.
    pub fn after_nth_newline_from_end(&self, count: usize, max_back: u64) -> Option<u64> {
        let floor = self.start.max(self.end.saturating_sub(max_back));
        let mut seen = 0;
        let mut hi = self.end;
        while hi > floor {
            // Scan the contiguous physical segment ending at `hi`.
            let pos_hi = ((hi - 1) % self.cap as u64) as usize + 1;
            let lo = floor.max(hi - pos_hi as u64);
            let seg = &self.buf[pos_hi - (hi - lo) as usize..pos_hi];
            for (i, b) in seg.iter().enumerate().rev() {
                if *b == b'\n' {
                    seen += 1;
                    if seen == count {
                        return Some(lo + i as u64 + 1);
                    }
                }
            }
            hi = lo;
        }
        None
    }

    /// Everything held.
    pub fn contents(&self) -> Vec<u8> {
        self.read(self.start, usize::MAX).data
    }
}

/// How long a reader may go without reading before the producer stops
/// waiting for it (it is then stuck, and will miss bytes instead).
pub const STALL: std::time::Duration = std::time::Duration::from_millis(250);

/// A viewer's `last_read_ms` while it waits for data (always active).
pub const WAITING: u64 = u64::MAX;

/// Milliseconds on a process-wide monotonic clock (0 = never).
pub fn now_ms() -> u64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_millis() as u64
        + 1
}

/// A reader the producer must not overrun.
#[derive(Debug)]
struct Blocker {
    id: u64,
    cursor: Arc<AtomicU64>,
    max_lag: u64,
    /// `None`: always wait (a BLOCK tee). `Some`: wait only while this
    /// reader has read within [`STALL`] (an attached viewer): a viewer that
    /// keeps up slows the producer to its pace, like a terminal does, while
    /// one that stopped reading is left behind and told what it missed.
    last_read_ms: Option<Arc<AtomicU64>>,
}

/// A byte log shared between its producer and any number of readers, with
/// wake-ups for new data and end of stream.
#[derive(Debug)]
pub struct OutputStream {
    log: Mutex<ByteLog>,
    end_tx: watch::Sender<u64>,
    closed: AtomicBool,
    /// Readers the producer waits for instead of overrunning them.
    blockers: Mutex<Vec<Blocker>>,
    progress: Notify,
    /// Wake-ups for readers on plain threads (tees).
    sync_waiters: AtomicUsize,
    sync_gate: Mutex<()>,
    sync_cv: Condvar,
    /// Offset up to which output has been delivered to an attachment (the
    /// protocol's ATTACH starts here, so a re-attach does not replay what
    /// an earlier attachment already showed).
    delivered: AtomicU64,
}

impl OutputStream {
    /// A stream holding at most `cap` bytes.
    pub fn new(cap: usize) -> Arc<Self> {
        Arc::new(Self {
            log: Mutex::new(ByteLog::new(cap)),
            end_tx: watch::channel(0).0,
            closed: AtomicBool::new(false),
            blockers: Mutex::new(Vec::new()),
            progress: Notify::new(),
            sync_waiters: AtomicUsize::new(0),
            sync_gate: Mutex::new(()),
            sync_cv: Condvar::new(),
            delivered: AtomicU64::new(0),
        })
    }

    /// Offset up to which output was delivered to an attachment.
    pub fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Acquire)
    }

    /// Records that an attachment has been given everything before `upto`.
    pub fn mark_delivered(&self, upto: u64) {
        self.delivered.fetch_max(upto, Ordering::AcqRel);
    }

    /// Locks the log for reading.
    pub fn log(&self) -> MutexGuard<'_, ByteLog> {
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends without waiting for anyone.
    pub fn append(&self, data: &[u8]) {
        let end = {
            let mut log = self.log();
            log.append(data);
            log.end()
        };
        self.end_tx.send_replace(end);
        self.wake_sync();
    }

    /// Wakes readers blocked in [`wait_sync`](Self::wait_sync).
    pub fn wake_sync(&self) {
        if self.sync_waiters.load(Ordering::Acquire) > 0 {
            let _g = self.sync_gate.lock().unwrap_or_else(|p| p.into_inner());
            self.sync_cv.notify_all();
        }
    }

    /// Blocks a plain thread until the log grows past `seen_end`, the
    /// stream closes, someone calls [`wake_sync`](Self::wake_sync), or
    /// `timeout` passes.
    pub fn wait_sync(&self, seen_end: u64, timeout: std::time::Duration) {
        self.sync_waiters.fetch_add(1, Ordering::AcqRel);
        let g = self.sync_gate.lock().unwrap_or_else(|p| p.into_inner());
        if self.log().end() == seen_end && !self.is_closed() {
            let _ = self.sync_cv.wait_timeout(g, timeout);
        }
        self.sync_waiters.fetch_sub(1, Ordering::AcqRel);
    }

    /// Appends all of `data`, waiting whenever a reader that must not be
    /// overrun would be (see [`append_some`](Self::append_some)). Only
    /// producers that may be slowed (a PTY or pipe reader) call this; the
    /// child then blocks on its full PTY or pipe.
    pub async fn append_respecting_blockers(&self, mut data: &[u8]) {
        while !data.is_empty() {
            let n = self.append_some(data).await;
            data = &data[n..];
        }
    }

    /// Appends the longest prefix of `data` (at least one byte, waiting
    /// for room first) that overruns no reader the producer must wait
    /// for, and returns its length: a reader at `cursor` with allowance
    /// `max_lag` may be at most `max_lag` bytes behind the end, so a read
    /// larger than the ring is appended in pieces the reader sees one by
    /// one. A viewer that stopped reading (no read within [`STALL`]) is
    /// not waited for. After [`close`](Self::close), everything goes in.
    pub async fn append_some(&self, data: &[u8]) -> usize {
        if data.is_empty() {
            return 0;
        }
        loop {
            let notified = self.progress.notified();
            let end = self.log().end();
            let room = {
                let b = self.blockers.lock().unwrap_or_else(|p| p.into_inner());
                let now = now_ms();
                b.iter()
                    .filter(|b| {
                        b.last_read_ms.as_ref().is_none_or(|t| {
                            let t = t.load(Ordering::Acquire);
                            t == WAITING || now.saturating_sub(t) < STALL.as_millis() as u64
                        })
                    })
                    .map(|b| {
                        let cur = b.cursor.load(Ordering::Acquire).min(end);
                        (cur + b.max_lag).saturating_sub(end)
                    })
                    .min()
            };
            let n = match room {
                None => data.len(),
                Some(r) => (r.min(data.len() as u64)) as usize,
            };
            if n > 0 || self.is_closed() {
                let n = if n == 0 { data.len() } else { n };
                self.append(&data[..n]);
                return n;
            }
            // Re-check after STALL even without progress: a viewer may
            // have become stuck.
            let _ = tokio::time::timeout(STALL, notified).await;
        }
    }

    /// Registers a reader the producer must always wait for (a BLOCK tee);
    /// `max_lag` is capped at the ring size.
    pub fn add_blocker(&self, id: u64, cursor: Arc<AtomicU64>, max_lag: u64) {
        self.push_blocker(id, cursor, max_lag, None);
    }

    /// Registers a viewer the producer waits for while it keeps reading
    /// (`last_read_ms` within [`STALL`]); it may lag by at most the ring.
    pub fn add_viewer(&self, id: u64, cursor: Arc<AtomicU64>, last_read_ms: Arc<AtomicU64>) {
        self.push_blocker(id, cursor, u64::MAX, Some(last_read_ms));
    }

    fn push_blocker(
        &self,
        id: u64,
        cursor: Arc<AtomicU64>,
        max_lag: u64,
        last_read_ms: Option<Arc<AtomicU64>>,
    ) {
        let cap = self.log().capacity() as u64;
        self.blockers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Blocker {
                id,
                cursor,
                max_lag: max_lag.min(cap).max(1),
                last_read_ms,
            });
    }

    /// Removes a blocking reader.
    pub fn remove_blocker(&self, id: u64) {
        self.blockers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|b| b.id != id);
        self.progress.notify_waiters();
    }

    /// Called by a blocking reader after it advanced its cursor.
    pub fn reader_progressed(&self) {
        self.progress.notify_waiters();
    }

    /// Marks the end of the stream and wakes every reader.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.end_tx.send_modify(|_| {});
        self.progress.notify_waiters();
        self.wake_sync();
    }

    /// True once the producer has finished.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// A receiver that changes on new data and on close.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.end_tx.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_survive_wrap_around() {
        let mut log = ByteLog::new(10);
        log.append(b"0123456");
        assert_eq!(log.read(0, 100).data, b"0123456");
        log.append(b"789abcdef");
        assert_eq!((log.start(), log.end()), (6, 16));
        let c = log.read(0, 100);
        assert_eq!(c.missed, 6);
        assert_eq!(c.offset, 6);
        assert_eq!(c.data, b"6789abcdef");
        let c = log.read(12, 3);
        assert_eq!(
            (c.missed, c.offset, c.data.as_slice()),
            (0, 12, &b"cde"[..])
        );
        assert_eq!(log.read(16, 10).data, b"");
        log.append(b"this is longer than ten");
        assert_eq!(log.contents(), b"er than ten"[1..].to_vec());
        assert_eq!(log.end(), 39);
    }

    #[test]
    fn finds_the_start_of_the_last_lines_across_the_wrap() {
        let mut log = ByteLog::new(16);
        log.append(b"aa\nbb\ncc\ndd\nee\nff\n");
        // Held: "c\ndd\nee\nff\n" region of the last 16 bytes.
        assert_eq!(log.after_nth_newline_from_end(1, 100), Some(log.end()));
        let at = log.after_nth_newline_from_end(3, 100).unwrap();
        assert_eq!(log.read(at, 100).data, b"ee\nff\n");
        assert_eq!(log.after_nth_newline_from_end(50, 100), None);
        assert_eq!(
            log.after_nth_newline_from_end(3, 4),
            None,
            "bounded look-back"
        );
    }

    #[test]
    fn readers_do_not_consume_for_each_other() {
        let mut log = ByteLog::new(64);
        log.append(b"hello");
        let a = log.read(0, 2);
        let b = log.read(0, 64);
        assert_eq!(a.data, b"he");
        assert_eq!(b.data, b"hello");
        assert_eq!(log.contents(), b"hello");
    }

    #[test]
    fn a_quiet_log_allocates_little() {
        let mut log = ByteLog::new(1 << 20);
        log.append(b"$ ");
        assert!(log.buf.capacity() < 4096);
    }

    #[test]
    fn matches_a_naive_model_under_random_appends() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut rnd = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for cap in [1usize, 3, 16, 100] {
            let mut log = ByteLog::new(cap);
            let mut all: Vec<u8> = Vec::new();
            for _ in 0..300 {
                let n = (rnd() % 40) as usize;
                let chunk: Vec<u8> = (0..n).map(|_| rnd() as u8).collect();
                log.append(&chunk);
                all.extend_from_slice(&chunk);
                let from = rnd() % (all.len() as u64 + 1);
                let c = log.read(from, usize::MAX);
                let keep_from = all.len().saturating_sub(cap) as u64;
                assert_eq!(c.missed, keep_from.saturating_sub(from));
                assert_eq!(c.data, all[from.max(keep_from) as usize..]);
            }
        }
    }
}
