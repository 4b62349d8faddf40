//! The screen model: every PTY session's output also drives a terminal
//! emulator (vt100), so the engine can hand out the current screen — to
//! restore a re-attaching terminal like tmux does, and later to render
//! grids for remote clients — instead of replaying megabytes.
//!
//! Parsing costs CPU per byte, so it is kept off the hot path: one
//! worker thread follows every session's byte log with its own
//! cursor, in batches at most every [`BATCH_INTERVAL`], and anyone who needs
//! the screen first catches it up to the end of the log.
//!
//! Bulk output (a build log, `cat` of a big file) is parsed exactly, with
//! one shortcut that provably changes nothing ([`plain_skip`]): a run of
//! plain text (printable characters, CR, LF, TAB, BS, BEL and SGR only)
//! followed by at least a screenful of CR-LF-ended lines, on a model whose
//! scroll region is the whole screen, leaves exactly the screen that its last
//! `rows` lines draw from the bottom row, with the SGR state folded from the
//! whole run. Anything else (a title, a mode, the alternate screen, a scroll
//! region) stops the skip, so it is parsed byte for byte. The model is a
//! blocking reader of the byte log: the producer waits rather than overrun
//! it, so no byte is ever lost to the ring (`skips` counts only proven skips).
//!
//! The front end ([`super::termfront`]) rewrites what vt100 would misread
//! (SGR sub-parameters, DEC graphics) and keeps the modes it forgets; the
//! model answers terminal queries (DA1, DA2, DSR, CPR, XTVERSION) for bytes
//! no attached terminal received ([`ScreenState::set_responder`]).

use super::bytelog::OutputStream;
use super::termfront::{Event, EventKind, Front, Modes, QueryKind};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};

const CHUNK: usize = 256 * 1024;

/// Unparsed lag beyond which the worker parses at once instead of
/// waiting for its batch interval.
pub const BURST: u64 = 256 * 1024;
/// Unparsed bytes beyond which a pass looks for a provable skip: a few
/// screenfuls, so that even output arriving slowly (a pass every
/// [`BATCH_INTERVAL`] sees little) is mostly skipped rather than parsed;
/// a look that finds no skip costs a scan, far less than the parse.
pub const SKIP_AFTER: u64 = 32 * 1024;
/// How far back from the end a skip looks for its last screenful of lines.
pub const TAIL: u64 = 64 * 1024;
/// Output after which the worker builds the emulator without being asked.
pub const EAGER_AFTER: u64 = 64 * 1024;
/// Minimum time between two batches of the worker for one session while it
/// lags little (half the ring or less); beyond that it runs at once.
pub const BATCH_INTERVAL: std::time::Duration = std::time::Duration::from_millis(16);

/// Sends the model's answers to the program (writes to the PTY master).
pub type Responder = Arc<dyn Fn(&[u8]) + Send + Sync>;

/// The emulator state of one PTY session.
pub struct ScreenState {
    parser: Mutex<Parsed>,
    stream: Arc<OutputStream>,
    /// What the worker was told since its last pass: 0 nothing, 1 new
    /// output, 2 a lag it must parse at once (one message per level).
    queued: AtomicU8,
    skips: AtomicU64,
    /// Offset parsed up to (the producer waits for it: see module docs).
    parsed_to: Arc<AtomicU64>,
    /// When the worker last parsed (ms, `bytelog::now_ms`).
    last_pass_ms: AtomicU64,
    flow_id: u64,
    answers: Mutex<Answers>,
}

/// Who answers queries at which offsets.
#[derive(Default)]
struct Answers {
    responder: Option<Responder>,
    /// Terminal clients attached now: (token, first offset they receive).
    open: Vec<(u64, u64)>,
    /// Offset ranges that attached terminals received (and answered).
    covered: Vec<(u64, u64)>,
    answered: u64,
}

impl Answers {
    fn covered(&self, at: u64) -> bool {
        self.open.iter().any(|&(_, from)| at >= from)
            || self.covered.iter().any(|&(a, b)| at >= a && at < b)
    }
}

/// The emulator is created lazily: an idle session (a shell at its prompt)
/// costs no grid until someone asks for its screen, it is resized, its
/// output passes [`EAGER_AFTER`], or it asks its terminal a question.
struct Parsed {
    parser: Option<vt100::Parser>,
    front: Front,
    cursor: u64,
    size: (u16, u16),
    /// Offset up to which an unmaterialized model looked for queries.
    scanned: u64,
    out: Vec<u8>,
    queries: Vec<Event>,
}

/// A screen captured at a byte offset of the session's output.
pub struct ScreenSnapshot {
    /// Bytes that draw this screen on a fresh terminal of the same size:
    /// the normal screen, then (if the program is on it) the alternate
    /// screen entered with 1049 so that the cursor 1049 saved is the
    /// program's, then every mode (see [`restore_sequence`]).
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

/// Answer to primary device attributes: a VT220-class terminal with ANSI
/// colour (what tmux reports is similar; programs only check it arrives).
pub const DA1_ANSWER: &[u8] = b"\x1b[?62;22c";
/// Answer to secondary device attributes.
pub const DA2_ANSWER: &[u8] = b"\x1b[>1;10;0c";

fn answer(kind: QueryKind, screen: &vt100::Screen, modes: &Modes) -> Vec<u8> {
    let (row, col) = screen.cursor_position();
    let row = match (modes.origin, modes.scroll_region) {
        (true, Some((top, _))) => row.saturating_sub(top.saturating_sub(1)),
        _ => row,
    };
    match kind {
        QueryKind::Da1 => DA1_ANSWER.to_vec(),
        QueryKind::Da2 => DA2_ANSWER.to_vec(),
        QueryKind::Status => b"\x1b[0n".to_vec(),
        QueryKind::Cursor => format!("\x1b[{};{}R", row + 1, col + 1).into_bytes(),
        QueryKind::DecCursor => format!("\x1b[?{};{};1R", row + 1, col + 1).into_bytes(),
        QueryKind::Version => {
            format!("\x1bP>|berth {}\x1b\\", env!("CARGO_PKG_VERSION")).into_bytes()
        }
    }
}

/// Bytes that rebuild `parser`'s terminal on a fresh terminal of the same
/// size: the normal screen (contents, attributes, cursor), then, when the
/// program is on the alternate screen, `CSI ? 1049 h` from the cursor 1049
/// saved and the alternate screen; then the input modes, the modes the
/// front end tracks (title, focus, urxvt mouse, autowrap, cursor style,
/// charsets, scroll region, origin mode) and the cursor again.
pub fn restore_sequence(parser: &vt100::Parser, modes: &Modes) -> Vec<u8> {
    let screen = parser.screen();
    let (rows, cols) = screen.size();
    let mut r = Vec::with_capacity(rows as usize * cols as usize * 2);
    r.extend_from_slice(b"\x1b[!p\x1b[?7h");
    if screen.alternate_screen() {
        let mut normal = vt100::Parser::new(rows, cols, 0);
        *normal.screen_mut() = screen.clone();
        normal.process(b"\x1b[?1049l");
        r.extend_from_slice(&normal.screen().contents_formatted());
        r.extend_from_slice(b"\x1b[?1049h");
    }
    r.extend_from_slice(&screen.state_formatted());
    if let Some(t) = &modes.title {
        r.extend_from_slice(b"\x1b]2;");
        r.extend_from_slice(t);
        r.extend_from_slice(b"\x1b\\");
    }
    if modes.focus {
        r.extend_from_slice(b"\x1b[?1004h");
    }
    if modes.mouse_urxvt {
        r.extend_from_slice(b"\x1b[?1015h");
    }
    if modes.cursor_style != 0 {
        r.extend_from_slice(format!("\x1b[{} q", modes.cursor_style).as_bytes());
    }
    if modes.g_graphics[0] {
        r.extend_from_slice(b"\x1b(0");
    }
    if modes.g_graphics[1] {
        r.extend_from_slice(b"\x1b)0");
    }
    if modes.shifted {
        r.push(0x0e);
    }
    let (crow, ccol) = screen.cursor_position();
    let mut top = 1;
    if let Some((t, b)) = modes.scroll_region {
        let b = if b == 0 { rows } else { b };
        r.extend_from_slice(format!("\x1b[{t};{b}r").as_bytes());
        top = t;
    }
    let mut row = crow + 1;
    if modes.origin {
        r.extend_from_slice(b"\x1b[?6h");
        row = row.saturating_sub(top - 1).max(1);
    }
    if let Some(tabs) = &modes.tabs {
        r.extend_from_slice(b"\x1b[3g");
        for t in tabs {
            r.extend_from_slice(format!("\x1b[{}G\x1bH", t + 1).as_bytes());
        }
    }
    if !modes.autowrap {
        r.extend_from_slice(b"\x1b[?7l");
    }
    r.extend_from_slice(format!("\x1b[{};{}H", row, ccol + 1).as_bytes());
    r
}

/// Whether `bytes` ask the terminal a question the model answers (used to
/// build the model of an idle session as soon as its program asks).
fn has_query(bytes: &[u8]) -> bool {
    let mut f = Front::new();
    let mut out = Vec::new();
    let mut q = Vec::new();
    f.feed(bytes, &mut out, &mut q);
    !q.is_empty()
}

/// Scans `[from, to)` of the log for a provable skip (module docs): returns
/// the SGR sequences to fold, or `None` if anything else is there or fewer
/// than `rows` line feeds are.
fn plain_skip(stream: &OutputStream, from: u64, to: u64, rows: usize) -> Option<Vec<u8>> {
    let mut scan = PlainScan::default();
    let mut at = from;
    while at < to {
        // Scanned in place under the log's lock, a piece at a time so the
        // producer is never held up for long.
        let log = stream.log();
        if log.start() > at {
            return None;
        }
        let (a, b) = log.slices_from(at);
        let want = (to - at).min(SCAN_PIECE as u64) as usize;
        let a_n = a.len().min(want);
        let b_n = b.len().min(want - a_n);
        if a_n + b_n == 0 {
            return None;
        }
        if !scan.feed(&a[..a_n]) || !scan.feed(&b[..b_n]) {
            return None;
        }
        at += (a_n + b_n) as u64;
    }
    (scan.state == 0 && scan.lfs >= rows).then_some(scan.sgr)
}

/// Bytes [`plain_skip`] scans per hold of the log's lock.
const SCAN_PIECE: usize = 64 * 1024;

/// The state of [`plain_skip`]'s scan: SGR sequences seen so far, line
/// feeds, and where it is in an escape sequence.
#[derive(Default)]
struct PlainScan {
    sgr: Vec<u8>,
    lfs: usize,
    /// 0: text, 1: after ESC, 2: inside CSI (params so far in `sgr`).
    state: u8,
}

impl PlainScan {
    /// Scans `data`; false at the first byte that is not plain text.
    fn feed(&mut self, data: &[u8]) -> bool {
        let mut i = 0;
        while i < data.len() {
            if self.state == 0 {
                // Plain text goes a word at a time (see [`plain_words`]);
                // anything else a byte at a time below.
                let (n, lfs) = plain_words(&data[i..]);
                i += n;
                self.lfs += lfs;
                if i >= data.len() {
                    break;
                }
            }
            let b = data[i];
            i += 1;
            match self.state {
                0 => match b {
                    b'\n' => self.lfs += 1,
                    0x20..=0x7e | 0x80..=0xff | b'\r' | b'\t' | 0x08 | 0x07 | 0x7f => {}
                    0x1b => {
                        self.state = 1;
                        self.sgr.push(0x1b);
                    }
                    _ => return false,
                },
                1 => {
                    if b != b'[' {
                        return false;
                    }
                    self.sgr.push(b);
                    self.state = 2;
                }
                _ => match b {
                    b'0'..=b'9' | b';' | b':' => self.sgr.push(b),
                    b'm' => {
                        self.sgr.push(b);
                        self.state = 0;
                    }
                    _ => return false,
                },
            }
        }
        true
    }
}

/// Bytes with the top bit of each byte set, and each byte's low seven bits.
const HIGH: u64 = 0x8080_8080_8080_8080;
const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
/// `x` repeated in every byte of a word.
const fn splat(x: u8) -> u64 {
    0x0101_0101_0101_0101 * x as u64
}

/// The top bit of each byte of `w` that is zero, exactly (no carries
/// between bytes: each byte's low seven bits plus 0x7f stay below 0x100).
fn zero_bytes(w: u64) -> u64 {
    !(((w & LOW7) + LOW7) | w) & HIGH
}

/// The top bit of each byte of `w` below 0x20 (a C0 control), exactly.
fn control_bytes(w: u64) -> u64 {
    !(((w & LOW7) + splat(0x60)) | w) & HIGH
}

/// The line feeds in word `w` if its bytes are text (0x20 and above,
/// UTF-8 included), CR or LF; `None` if it holds any other control byte.
fn plain_word(w: u64) -> Option<usize> {
    let ctrl = control_bytes(w);
    if ctrl == 0 {
        return Some(0);
    }
    let lf = zero_bytes(w ^ splat(b'\n'));
    let cr = zero_bytes(w ^ splat(b'\r'));
    // Each byte of `lf >> 7` is 0 or 1: the multiplication sums them
    // into the top byte (no popcount instruction in the baseline target).
    (ctrl & !(lf | cr) == 0).then_some(((lf >> 7).wrapping_mul(splat(1)) >> 56) as usize)
}

fn word(b: &[u8]) -> u64 {
    u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
}

/// The longest prefix of `data`, in whole 8-byte words, whose bytes are
/// text, CR or LF ([`plain_word`]); and the line feeds in it. The
/// plain-text scan spends its time here on text output (issue 18: it is
/// most of the screen model's cost when output is skipped), so it looks
/// at 32 bytes with a few word operations and one branch: most such
/// blocks of text hold no control byte at all. A word holding any other
/// control byte (ESC, TAB, BEL, BS, ...) is left to the byte-wise state
/// machine.
fn plain_words(data: &[u8]) -> (usize, usize) {
    let (mut i, mut lfs) = (0usize, 0usize);
    for b in data.chunks_exact(32) {
        let w = [
            word(&b[..8]),
            word(&b[8..16]),
            word(&b[16..24]),
            word(&b[24..]),
        ];
        if (control_bytes(w[0]) | control_bytes(w[1]) | control_bytes(w[2]) | control_bytes(w[3]))
            == 0
        {
            i += 32;
            continue;
        }
        for w in w {
            match plain_word(w) {
                Some(n) => lfs += n,
                None => return (i, lfs),
            }
            i += 8;
        }
    }
    for c in data[i..].chunks_exact(8) {
        match plain_word(word(c)) {
            Some(n) => lfs += n,
            None => return (i, lfs),
        }
        i += 8;
    }
    (i, lfs)
}

/// The tab stops in effect (every 8 columns until a program set its own).
fn tab_stops(modes: &Modes, cols: u16) -> std::collections::BTreeSet<u16> {
    match &modes.tabs {
        Some(t) => t.clone(),
        None => (8..cols).step_by(8).collect(),
    }
}

/// Runs the erase sequence `seq` with only the background colour set, as
/// terminals do (vt100 would fill with every current attribute), then puts
/// the attributes back.
fn erase_with_background(parser: &mut vt100::Parser, seq: &[u8]) {
    let s = parser.screen();
    let plain = s.fgcolor() == vt100::Color::Default
        && !s.bold()
        && !s.dim()
        && !s.italic()
        && !s.underline()
        && s.underline_color() == vt100::Color::Default
        && !s.inverse();
    if plain {
        parser.process(seq);
        return;
    }
    let saved = s.attributes_formatted();
    let bg = match s.bgcolor() {
        vt100::Color::Default => "\x1b[0m".to_string(),
        vt100::Color::Idx(i) => format!("\x1b[0;48;5;{i}m"),
        vt100::Color::Rgb(r, g, b) => format!("\x1b[0;48;2;{r};{g};{b}m"),
    };
    parser.process(bg.as_bytes());
    parser.process(seq);
    parser.process(&saved);
}

impl ScreenState {
    /// A model of `rows` x `cols` following `stream`. The model registers
    /// as a reader the producer must not overrun.
    pub fn new(stream: Arc<OutputStream>, rows: u16, cols: u16) -> Arc<Self> {
        static NEXT: AtomicU64 = AtomicU64::new(1 << 50);
        let flow_id = NEXT.fetch_add(1, Ordering::Relaxed);
        let parsed_to = Arc::new(AtomicU64::new(0));
        stream.add_blocker(flow_id, parsed_to.clone(), u64::MAX);
        Arc::new(Self {
            parser: Mutex::new(Parsed {
                parser: None,
                front: Front::new(),
                cursor: 0,
                size: (rows, cols),
                scanned: 0,
                out: Vec::new(),
                queries: Vec::new(),
            }),
            stream,
            queued: AtomicU8::new(0),
            skips: AtomicU64::new(0),
            parsed_to,
            last_pass_ms: AtomicU64::new(0),
            flow_id,
            answers: Mutex::new(Answers::default()),
        })
    }

    /// Times the parser took a proven skip over plain text.
    pub fn skips(&self) -> u64 {
        self.skips.load(Ordering::Relaxed)
    }

    /// Queries the model has answered.
    pub fn answered(&self) -> u64 {
        self.answers_lock().answered
    }

    fn answers_lock(&self) -> std::sync::MutexGuard<'_, Answers> {
        self.answers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Where the model's answers to terminal queries go (the PTY master).
    /// Without a responder, queries are not answered by the model.
    pub fn set_responder(&self, r: Responder) {
        self.answers_lock().responder = Some(r);
    }

    /// Drops the responder (the session ended: its PTY master is closed,
    /// so there is no program left to answer).
    pub fn clear_responder(&self) {
        self.answers_lock().responder = None;
    }

    /// A terminal client starts receiving live output at offset `from`: it
    /// answers queries from there on, so the model stops answering them.
    /// Returns a token for [`client_left`](Self::client_left).
    pub fn client_joined(&self, from: u64) -> u64 {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let token = NEXT.fetch_add(1, Ordering::Relaxed);
        self.answers_lock().open.push((token, from));
        token
    }

    /// The client `token` left having received output up to `delivered`:
    /// queries after that are the model's again.
    pub fn client_left(self: &Arc<Self>, token: u64, delivered: u64) {
        let mut a = self.answers_lock();
        if let Some(i) = a.open.iter().position(|&(t, _)| t == token) {
            let (_, from) = a.open.remove(i);
            if delivered > from {
                a.covered.push((from, delivered));
            }
        }
        drop(a);
        // Output the client never received may hold questions.
        self.mark_dirty();
    }

    /// Tells the worker there is new output.
    pub fn mark_dirty(self: &Arc<Self>) {
        let lag = self
            .stream
            .log()
            .end()
            .saturating_sub(self.parsed_to.load(Ordering::Acquire));
        // Half the ring: late enough that a pass covers a lot of text with
        // one proven skip (its tail parse is per pass), early enough that
        // the producer, which waits at a full ring, rarely has to.
        let urgent = lag > self.stream.log().capacity() as u64 / 2;
        let level = if urgent { 2 } else { 1 };
        if self.queued.fetch_max(level, Ordering::AcqRel) < level {
            worker().send(self.clone(), urgent);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Parsed> {
        self.parser.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Parses everything up to the end of the log (the worker's pass: an
    /// emulator that does not exist yet is only built past `EAGER_AFTER`,
    /// or when the program asked its terminal something).
    pub fn catch_up(&self) {
        let mut p = self.lock();
        if p.parser.is_none() {
            let end = self.stream.log().end();
            if end < self.eager_after() {
                // Look for queries in what is new (with a little overlap
                // for a query split between two reads).
                let from = p.scanned.saturating_sub(32);
                let new = self.stream.log().read(from, usize::MAX).data;
                p.scanned = end;
                if !has_query(&new) {
                    return;
                }
            }
        }
        self.catch_up_locked(&mut p);
    }

    /// Output after which the emulator is built without being asked:
    /// [`EAGER_AFTER`], or half the ring when that is smaller, so the model
    /// always starts before the ring drops its first byte (an emulator
    /// built later would start mid-stream; and the producer, which waits
    /// for the model, would wait for one that never parses).
    fn eager_after(&self) -> u64 {
        EAGER_AFTER.min(self.stream.log().capacity() as u64 / 2)
    }

    /// Lag beyond which the worker parses at once instead of batching.
    fn urgent_lag(&self) -> u64 {
        BURST.min(self.stream.log().capacity() as u64 / 2)
    }

    /// Whether the emulator exists (for memory accounting and tests).
    pub fn is_materialized(&self) -> bool {
        self.lock().parser.is_some()
    }

    fn process(&self, p: &mut Parsed, data: &[u8], offset: u64) {
        let Parsed {
            parser,
            front,
            out,
            queries,
            ..
        } = p;
        let parser = parser.as_mut().expect("materialized before processing");
        out.clear();
        queries.clear();
        front.feed(data, out, queries);
        let mut done = 0;
        for q in queries.iter() {
            match q.kind {
                EventKind::Erase { start } => {
                    parser.process(&out[done..start]);
                    erase_with_background(parser, &out[start..q.output]);
                }
                _ => parser.process(&out[done..q.output]),
            }
            done = q.output;
            match q.kind {
                EventKind::Query(kind) => {
                    let at = offset + q.input as u64;
                    let mut a = self.answers_lock();
                    if a.covered(at) {
                        continue;
                    }
                    if let Some(r) = a.responder.clone() {
                        a.answered += 1;
                        drop(a);
                        r(&answer(kind, parser.screen(), front.modes()));
                    }
                }
                EventKind::Erase { .. } => {}
                EventKind::Printed => {
                    let cols = parser.screen().size().1;
                    if parser.screen().cursor_position().1 >= cols.saturating_sub(1) {
                        parser.process(format!("\x1b[{cols}G").as_bytes());
                    }
                }
                EventKind::Tab => {
                    let (_, cols) = parser.screen().size();
                    let col = parser.screen().cursor_position().1;
                    let next = tab_stops(front.modes(), cols)
                        .into_iter()
                        .find(|&t| t > col)
                        .unwrap_or(cols - 1);
                    parser.process(format!("\x1b[{}G", next + 1).as_bytes());
                }
                EventKind::SetTab | EventKind::ClearTab => {
                    let (_, cols) = parser.screen().size();
                    let col = parser.screen().cursor_position().1;
                    let mut stops = tab_stops(front.modes(), cols);
                    if q.kind == EventKind::SetTab {
                        stops.insert(col);
                    } else {
                        stops.remove(&col);
                    }
                    front.modes_mut().tabs = Some(stops);
                }
            }
        }
        parser.process(&out[done..]);
    }

    fn catch_up_locked(&self, p: &mut Parsed) {
        if p.parser.is_none() {
            p.parser = Some(vt100::Parser::new(p.size.0, p.size.1, 0));
            p.cursor = self.stream.log().start();
        }
        let target = self.stream.log().end();
        if target.saturating_sub(p.cursor) > SKIP_AFTER
            && p.front.at_ground()
            && p.front.modes().scroll_region.is_none()
        {
            let rows = p.size.0 as usize;
            let cut = {
                let log = self.stream.log();
                log.after_nth_newline_from_end(rows + 1, TAIL)
                    .filter(|&c| c >= p.cursor + 2 && log.read(c - 2, 2).data == b"\r\n")
            };
            if let Some(cut) = cut {
                if let Some(sgr) = plain_skip(&self.stream, p.cursor, cut, rows) {
                    let mut fold = sgr;
                    fold.extend_from_slice(format!("\x1b[{};1H", p.size.0).as_bytes());
                    self.process(p, &fold, p.cursor);
                    p.cursor = cut;
                    self.parsed_to.store(cut, Ordering::Release);
                    self.skips.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        while p.cursor < target {
            let chunk = self
                .stream
                .log()
                .read(p.cursor, CHUNK.min((target - p.cursor) as usize));
            if chunk.data.is_empty() {
                p.cursor = chunk.offset;
                break;
            }
            // The model blocks the producer, so `missed` is only ever the
            // part before a late-built model's first byte.
            self.process(p, &chunk.data, chunk.offset);
            p.cursor = chunk.offset + chunk.data.len() as u64;
            self.parsed_to.store(p.cursor, Ordering::Release);
            self.stream.reader_progressed();
        }
        self.parsed_to.store(p.cursor, Ordering::Release);
        self.stream.reader_progressed();
        // Ranges the model has parsed past can no longer matter.
        let parsed = p.cursor;
        self.answers_lock().covered.retain(|&(_, end)| end > parsed);
    }

    /// Resizes the model (after the PTY was resized). Fewer rows: as tmux
    /// and xterm do, rows below the cursor go first, then rows at the top
    /// (the cursor moves up with its line); the scroll region resets.
    pub fn resize(&self, rows: u16, cols: u16) {
        let mut p = self.lock();
        self.catch_up_locked(&mut p);
        p.size = (rows, cols);
        p.front.resized();
        let parser = p.parser.as_mut().expect("materialized by catch_up");
        let (old_rows, _) = parser.screen().size();
        let (cy, cx) = parser.screen().cursor_position();
        if rows < old_rows {
            let below = old_rows - 1 - cy;
            let from_top = (old_rows - rows).saturating_sub(below);
            if from_top > 0 {
                let mut seq = format!("\x1b[r\x1b[{from_top}S").into_bytes();
                seq.extend_from_slice(format!("\x1b[{};{}H", cy - from_top + 1, cx + 1).as_bytes());
                erase_with_background(parser, &seq);
            }
        }
        parser.screen_mut().set_size(rows, cols);
    }

    /// The current screen, caught up to the end of the log.
    pub fn snapshot(&self) -> ScreenSnapshot {
        let mut p = self.lock();
        self.catch_up_locked(&mut p);
        let parser = p.parser.as_ref().expect("materialized by catch_up");
        let screen = parser.screen();
        ScreenSnapshot {
            restore: restore_sequence(parser, p.front.modes()),
            offset: p.cursor,
            text: screen.contents(),
            size: screen.size(),
            cursor: screen.cursor_position(),
        }
    }

    /// The modes the front end tracks (title, focus, cursor style...).
    pub fn modes(&self) -> Modes {
        let mut p = self.lock();
        self.catch_up_locked(&mut p);
        p.front.modes().clone()
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

impl Drop for ScreenState {
    fn drop(&mut self) {
        self.stream.remove_blocker(self.flow_id);
    }
}

struct Worker {
    tx: Mutex<mpsc::Sender<(Arc<ScreenState>, bool)>>,
}

impl Worker {
    fn send(&self, s: Arc<ScreenState>, urgent: bool) {
        let _ = self
            .tx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send((s, urgent));
    }
}

fn worker() -> &'static Worker {
    static W: OnceLock<Worker> = OnceLock::new();
    W.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<(Arc<ScreenState>, bool)>();
        std::thread::Builder::new()
            .name("berth-screen".into())
            .spawn(move || {
                // The daemon's own priority, not a lower one: the producer
                // waits for the model (it must see every byte), so a model
                // starved by other processes on a busy machine would hold
                // the session's output back with it.
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
                        // A session that lags far behind (its producer may
                        // be waiting for the model) is parsed at once.
                        Ok((s, urgent)) => {
                            let now = std::time::Instant::now();
                            let at = if urgent { now } else { now + BATCH_INTERVAL };
                            match due.iter_mut().find(|(_, d)| Arc::ptr_eq(d, &s)) {
                                Some(entry) => entry.0 = entry.0.min(at),
                                None => due.push((at, s)),
                            }
                        }
                        Err(mpsc::RecvTimeoutError::Disconnected) => return,
                        Err(mpsc::RecvTimeoutError::Timeout) => {}
                    }
                    let now = std::time::Instant::now();
                    let (ready, later): (Vec<_>, Vec<_>) =
                        due.drain(..).partition(|(t, _)| *t <= now);
                    due = later;
                    for (_, s) in ready {
                        // Little to do and parsed a moment ago (an urgent
                        // wake-up sent during the last pass): wait for the
                        // batch interval, so that small lags are parsed in
                        // batches and big ones can take the proven skip.
                        let lag = s
                            .stream
                            .log()
                            .end()
                            .saturating_sub(s.parsed_to.load(Ordering::Acquire));
                        let since = super::bytelog::now_ms()
                            .saturating_sub(s.last_pass_ms.load(Ordering::Relaxed));
                        let interval = BATCH_INTERVAL.as_millis() as u64;
                        if lag <= s.urgent_lag() && since < interval {
                            let wait = std::time::Duration::from_millis(interval - since);
                            due.push((now + wait, s));
                            continue;
                        }
                        s.queued.store(0, Ordering::Release);
                        s.last_pass_ms
                            .store(super::bytelog::now_ms(), Ordering::Relaxed);
                        s.catch_up();
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

    /// The word-at-a-time scan decides exactly as a byte-at-a-time one:
    /// every byte value at every position of a word, in random mixes and
    /// random split points.
    #[test]
    fn the_word_scan_classifies_every_byte_as_the_byte_scan_does() {
        fn bytewise(data: &[u8]) -> Option<(usize, Vec<u8>)> {
            let mut s = PlainScan::default();
            for b in data {
                // A one-byte slice never takes the word path.
                if !s.feed(std::slice::from_ref(b)) {
                    return None;
                }
            }
            Some((s.lfs, s.sgr))
        }
        fn wordwise(data: &[u8], split: usize) -> Option<(usize, Vec<u8>)> {
            let mut s = PlainScan::default();
            let (a, b) = data.split_at(split.min(data.len()));
            (s.feed(a) && s.feed(b)).then_some((s.lfs, s.sgr))
        }
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for byte in 0..=255u8 {
            for at in 0..24 {
                let mut d = b"plain text line number 1\r\nand more text".to_vec();
                d[at] = byte;
                assert_eq!(wordwise(&d, 0), bytewise(&d), "byte {byte:#04x} at {at}");
            }
        }
        let alphabet = b"abc xyz\r\n\r\n\t\x1b[1;31m\x07\x08\x7f\xc3\xa9\x00\x1f;:m0";
        for _ in 0..20_000 {
            let n = (next() % 200) as usize;
            // Mostly text, sometimes an odd byte.
            let d: Vec<u8> = (0..n)
                .map(|_| {
                    let r = next();
                    if r % 10 == 0 {
                        alphabet[(r >> 8) as usize % alphabet.len()]
                    } else {
                        b'a' + (r >> 8) as u8 % 26
                    }
                })
                .collect();
            let split = (next() % 201) as usize;
            assert_eq!(wordwise(&d, split), bytewise(&d), "{d:?} split at {split}");
        }
    }
}
