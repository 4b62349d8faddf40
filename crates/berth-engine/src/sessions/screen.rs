//! The screen model: every PTY session's output also drives a terminal
//! emulator (vt100), so the engine can hand out the current screen — to
//! restore a re-attaching terminal like tmux does, and later to render
//! grids for remote clients — instead of replaying megabytes.
//!
//! Parsing costs CPU per byte, so it is kept off the hot path: one
//! low-priority worker thread follows every session's byte log with its own
//! cursor, in batches at most every [`BATCH_INTERVAL`], and anyone who needs
//! the screen first catches it up to the end of the log.
//!
//! Bulk output (a build log, `cat` of a big file) would cost a core to
//! parse in full while only its last screenful matters. When more than
//! [`BURST`] bytes are waiting, the parser skips to the last [`TAIL`] bytes
//! (`skips` counts this). Plain text then ends on exactly the right screen;
//! a full-screen program repaints soon after a burst. Interactive output
//! never comes near the threshold and is parsed byte for byte.

use super::bytelog::OutputStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};

const CHUNK: usize = 256 * 1024;

/// Unparsed bytes beyond which a batch skips ahead.
pub const BURST: u64 = 256 * 1024;
/// Bytes parsed after a skip (many screenfuls of text).
pub const TAIL: u64 = 64 * 1024;
/// Time between batches while a session is in a burst.
pub const BURST_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);
/// Output after which the worker builds the emulator without being asked.
pub const EAGER_AFTER: u64 = 64 * 1024;
/// Minimum time between two batches of the worker for one session.
pub const BATCH_INTERVAL: std::time::Duration = std::time::Duration::from_millis(16);

/// The emulator state of one PTY session.
pub struct ScreenState {
    parser: Mutex<Parsed>,
    stream: Arc<OutputStream>,
    queued: AtomicBool,
    skips: AtomicU64,
    bursting: AtomicBool,
}

/// The emulator is created lazily: an idle session (a shell at its prompt)
/// costs no grid until someone asks for its screen, it is resized, or its
/// output passes [`EAGER_AFTER`]. Until the ring drops its first byte, the
/// late parser replays the whole log and is exact.
struct Parsed {
    parser: Option<vt100::Parser>,
    cursor: u64,
    size: (u16, u16),
}

/// A screen captured at a byte offset of the session's output.
pub struct ScreenSnapshot {
    /// Bytes that draw this screen on a fresh terminal of the same size.
    pub restore: Vec<u8>,
    /// Output offset the snapshot reflects; live output continues here.
    pub offset: u64,
    /// Plain text of the visible screen, rows joined by newlines.
    pub text: String,
    /// Rows, columns.
    pub size: (u16, u16),
    /// Cursor row, column.
    pub cursor: (u16, u16),
}

impl ScreenState {
    /// A model of `rows` x `cols` following `stream`.
    pub fn new(stream: Arc<OutputStream>, rows: u16, cols: u16) -> Arc<Self> {
        Arc::new(Self {
            parser: Mutex::new(Parsed {
                parser: None,
                cursor: 0,
                size: (rows, cols),
            }),
            stream,
            queued: AtomicBool::new(false),
            skips: AtomicU64::new(0),
            bursting: AtomicBool::new(false),
        })
    }

    /// Times the parser skipped part of a burst (or the ring overran it).
    pub fn skips(&self) -> u64 {
        self.skips.load(Ordering::Relaxed)
    }

    /// Tells the worker there is new output.
    pub fn mark_dirty(self: &Arc<Self>) {
        if !self.queued.swap(true, Ordering::AcqRel) {
            worker().send(self.clone());
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Parsed> {
        self.parser.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Parses everything up to the end of the log (the worker's pass: an
    /// emulator that does not exist yet is only built past `EAGER_AFTER`).
    pub fn catch_up(&self) {
        let mut p = self.lock();
        if p.parser.is_none() && self.stream.log().end() < EAGER_AFTER {
            return;
        }
        self.catch_up_locked(&mut p);
    }

    /// Whether the emulator exists (for memory accounting and tests).
    pub fn is_materialized(&self) -> bool {
        self.lock().parser.is_some()
    }

    fn catch_up_locked(&self, p: &mut Parsed) {
        if p.parser.is_none() {
            p.parser = Some(vt100::Parser::new(p.size.0, p.size.1, 0));
            p.cursor = 0;
        }
        // Parse up to the end as it is now: output that keeps arriving
        // meanwhile waits for the next pass (which may skip it).
        let target = {
            let log = self.stream.log();
            let end = log.end();
            if end.saturating_sub(p.cursor) > BURST {
                // Line-oriented bursts need only their last screenful of
                // lines; anything else gets the last TAIL bytes.
                let rows = p.size.0 as usize;
                p.cursor = log
                    .after_nth_newline_from_end(rows + 1, TAIL)
                    .unwrap_or(end - TAIL);
                self.skips.fetch_add(1, Ordering::Relaxed);
            }
            end
        };
        while p.cursor < target {
            let chunk = self
                .stream
                .log()
                .read(p.cursor, CHUNK.min((target - p.cursor) as usize));
            if chunk.missed > 0 {
                self.skips.fetch_add(1, Ordering::Relaxed);
            }
            if chunk.data.is_empty() {
                p.cursor = chunk.offset;
                return;
            }
            p.parser
                .as_mut()
                .expect("materialized above")
                .process(&chunk.data);
            p.cursor = chunk.offset + chunk.data.len() as u64;
        }
    }

    /// Resizes the model (after the PTY was resized).
    pub fn resize(&self, rows: u16, cols: u16) {
        let mut p = self.lock();
        self.catch_up_locked(&mut p);
        p.size = (rows, cols);
        p.parser
            .as_mut()
            .expect("materialized by catch_up")
            .screen_mut()
            .set_size(rows, cols);
    }

    /// The current screen, caught up to the end of the log.
    pub fn snapshot(&self) -> ScreenSnapshot {
        let mut p = self.lock();
        self.catch_up_locked(&mut p);
        let screen = p
            .parser
            .as_ref()
            .expect("materialized by catch_up")
            .screen();
        let mut restore = Vec::new();
        if screen.alternate_screen() {
            restore.extend_from_slice(b"\x1b[?1049h");
        }
        restore.extend_from_slice(&screen.state_formatted());
        ScreenSnapshot {
            restore,
            offset: p.cursor,
            text: screen.contents(),
            size: screen.size(),
            cursor: screen.cursor_position(),
        }
    }

    /// Runs `f` on the caught-up vt100 screen (for grid renderers).
    pub fn with_screen<T>(&self, f: impl FnOnce(&vt100::Screen, u64) -> T) -> T {
        let mut p = self.lock();
        self.catch_up_locked(&mut p);
        f(
            p.parser
                .as_ref()
                .expect("materialized by catch_up")
                .screen(),
            p.cursor,
        )
    }
}

struct Worker {
    tx: Mutex<mpsc::Sender<Arc<ScreenState>>>,
}

impl Worker {
    fn send(&self, s: Arc<ScreenState>) {
        let _ = self.tx.lock().unwrap_or_else(|p| p.into_inner()).send(s);
    }
}

fn worker() -> &'static Worker {
    static W: OnceLock<Worker> = OnceLock::new();
    W.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Arc<ScreenState>>();
        std::thread::Builder::new()
            .name("berth-screen".into())
            .spawn(move || {
                // Lowest priority: the data path to clients comes first.
                // Lowering needs no privilege, so this cannot fail in practice.
                let _ = berth_os::priority::set_this_thread_nice(berth_os::priority::LOWEST);
                // Sessions with new output, and when each may next be parsed.
                let mut due: Vec<(std::time::Instant, Arc<ScreenState>)> = Vec::new();
                loop {
                    let wait = due
                        .iter()
                        .map(|(t, _)| t.saturating_duration_since(std::time::Instant::now()))
                        .min();
                    let got = match wait {
                        None => rx.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected),
                        Some(w) => rx.recv_timeout(w),
                    };
                    match got {
                        // A session in a burst is looked at less often.
                        Ok(s) => {
                            let every = if s.bursting.load(Ordering::Relaxed) {
                                BURST_INTERVAL
                            } else {
                                BATCH_INTERVAL
                            };
                            due.push((std::time::Instant::now() + every, s))
                        }
                        Err(mpsc::RecvTimeoutError::Disconnected) => return,
                        Err(mpsc::RecvTimeoutError::Timeout) => {}
                    }
                    let now = std::time::Instant::now();
                    let (ready, later): (Vec<_>, Vec<_>) =
                        due.drain(..).partition(|(t, _)| *t <= now);
                    due = later;
                    for (_, s) in ready {
                        s.queued.store(false, Ordering::Release);
                        let skips = s.skips();
                        s.catch_up();
                        s.bursting.store(s.skips() != skips, Ordering::Relaxed);
                    }
                }
            })
            .expect("spawn the screen worker");
        Worker { tx: Mutex::new(tx) }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_restores_the_same_screen_on_a_fresh_parser() {
        let out = OutputStream::new(1 << 20);
        let s = ScreenState::new(out.clone(), 10, 40);
        out.append(b"line one\r\n\x1b[1;31mred\x1b[0m\r\n\x1b[?1049h\x1b[2J\x1b[3;5Hfull screen\x1b[5;1Hbottom");
        s.mark_dirty();
        let snap = s.snapshot();
        assert_eq!(snap.offset, out.log().end());
        assert!(snap.text.contains("full screen") && !snap.text.contains("line one"));
        let mut fresh = vt100::Parser::new(10, 40, 0);
        fresh.process(&snap.restore);
        assert_eq!(fresh.screen().contents(), snap.text);
        assert_eq!(fresh.screen().cursor_position(), snap.cursor);
        assert!(fresh.screen().alternate_screen());
    }

    #[test]
    fn a_burst_of_text_ends_on_the_right_screen_without_parsing_it_all() {
        let out = OutputStream::new(4 << 20);
        let s = ScreenState::new(out.clone(), 5, 30);
        let mut text = String::new();
        for i in 0..200_000 {
            text.push_str(&format!("line {i}\r\n"));
        }
        out.append(text.as_bytes());
        let snap = s.snapshot();
        assert_eq!(s.skips(), 1);
        assert_eq!(
            snap.text,
            "line 199996\nline 199997\nline 199998\nline 199999"
        );
    }

    #[test]
    fn an_idle_session_builds_no_emulator_until_asked() {
        let out = OutputStream::new(1 << 20);
        let s = ScreenState::new(out.clone(), 24, 80);
        out.append(b"\x1b[1;32muser@host\x1b[0m:~$ ");
        s.catch_up();
        assert!(!s.is_materialized());
        let snap = s.snapshot();
        assert!(s.is_materialized());
        assert_eq!(snap.text, "user@host:~$ ");
        assert_eq!(snap.cursor, (0, 13));
    }
}
