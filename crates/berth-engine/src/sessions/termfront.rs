//! The front end of the screen model: a byte-level pass in front of the
//! vt100 emulator that makes it see what a real terminal (xterm, tmux,
//! kitty) would see, and records the terminal state vt100 does not keep.
//!
//! - **SGR sub-parameters.** vt100 (vendored, `vendor/vt100`) understands
//!   `38;2;R;G;B`, `38;5;N`, the three-value colon forms `38:2:R:G:B` and
//!   `38:5:N`, the same for `48` and the underline colour `58`, `59`, and
//!   the underline styles `4:0`..`4:5` and `21` (double, as tmux reads it).
//!   Every other form xterm, tmux and kitty accept is rewritten to one of
//!   those: `38:2::R:G:B` and `38:2:CS:R:G:B` (ITU T.416 with a colour-space
//!   field) become `38;2;R;G;B`, `38:5:N` becomes `38;5;N`, the same for
//!   `48`; the underline colour in every form (`58:2::R:G:B`,
//!   `58:2:CS:R:G:B`, `58;2;R;G;B`, `58:5:N`, `58;5;N`) becomes
//!   `58:2:R:G:B` / `58:5:N`. As in tmux 3.3a, a colon group it does not
//!   define (`4:6`, `4:1:2`, `1:2`) is ignored rather than read as its
//!   head, and an SGR left with nothing to do is dropped (an empty SGR
//!   would reset every attribute).
//! - **Character sets.** `ESC ( 0` / `ESC ) 0` with SI/SO select the DEC
//!   special graphics set; vt100 ignores it, so line-drawing bytes are
//!   translated to their Unicode characters here (as tmux stores them).
//! - **State vt100 forgets:** the window title (OSC 0/2) and its stack
//!   (`CSI 22 t` / `CSI 23 t`), focus reporting (1004), urxvt mouse encoding
//!   (1015), autowrap (DECAWM 7), origin mode (6), the cursor style
//!   (DECSCUSR), the scroll region, and the charsets themselves, so that a
//!   restore can rebuild them ([`Modes`]).
//! - **Queries** a program asks its terminal (DA1, DA2, DSR, CPR, DECXCPR,
//!   XTVERSION) are reported as [`Event`] events with their position, so
//!   the model can answer them while no terminal is attached.
//!
//! Sequences may be split anywhere between calls; the pass keeps its state.

/// A terminal query found in the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryKind {
    /// `CSI c` / `CSI 0 c`: primary device attributes.
    Da1,
    /// `CSI > c`: secondary device attributes.
    Da2,
    /// `CSI 5 n`: device status.
    Status,
    /// `CSI 6 n`: cursor position report.
    Cursor,
    /// `CSI ? 6 n`: DEC extended cursor position report.
    DecCursor,
    /// `CSI > q` / `CSI > 0 q`: terminal name and version.
    Version,
}

/// Something the model must do at a point of the stream that needs the
/// emulator's state (the cursor, the current attributes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// A terminal query to answer.
    Query(QueryKind),
    /// An erase or insert (ED, EL, ECH, ICH, DCH, IL, DL, SU, SD) starting
    /// at output index `start`: terminals fill with the background colour
    /// only, vt100 with every attribute, so the model erases under a
    /// background-only SGR.
    Erase {
        /// Output index where the sequence starts.
        start: usize,
    },
    /// A character was printed while autowrap is off: a cursor past the
    /// last column stays on it (vt100 has no DECAWM).
    Printed,
    /// HT with custom tab stops, removed from the output: the model moves
    /// the cursor to the next stop itself.
    Tab,
    /// HTS: a tab stop at the cursor column.
    SetTab,
    /// TBC 0: no tab stop at the cursor column.
    ClearTab,
}

/// An event and where it ended: `input` bytes of the fed data had been
/// consumed and `output` bytes emitted for vt100 at that point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    /// What happened.
    pub kind: EventKind,
    /// Index in the input just past the query.
    pub input: usize,
    /// Index in the output (the bytes for vt100) just past the query.
    pub output: usize,
}

/// Terminal state the front end tracks for restores (vt100 keeps the rest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Modes {
    /// Window title (OSC 0 / 2), if one was set.
    pub title: Option<Vec<u8>>,
    /// Titles pushed with `CSI 22 t`.
    pub title_stack: Vec<Option<Vec<u8>>>,
    /// Focus in/out reporting (mode 1004).
    pub focus: bool,
    /// urxvt mouse encoding (mode 1015).
    pub mouse_urxvt: bool,
    /// Autowrap (DECAWM, mode 7); on by default.
    pub autowrap: bool,
    /// Origin mode (DECOM, mode 6).
    pub origin: bool,
    /// DECSCUSR cursor style (0 = the terminal's default).
    pub cursor_style: u16,
    /// Scroll region as 1-based (top, bottom) when not the whole screen.
    pub scroll_region: Option<(u16, u16)>,
    /// G0 and G1 are DEC special graphics.
    pub g_graphics: [bool; 2],
    /// SO is in effect (G1 shifted in).
    pub shifted: bool,
    /// Tab stops (0-based columns) once a program changed them; `None`:
    /// every 8 columns.
    pub tabs: Option<std::collections::BTreeSet<u16>>,
}

impl Default for Modes {
    fn default() -> Self {
        Self {
            title: None,
            title_stack: Vec::new(),
            focus: false,
            mouse_urxvt: false,
            autowrap: true,
            origin: false,
            cursor_style: 0,
            scroll_region: None,
            g_graphics: [false; 2],
            shifted: false,
            tabs: None,
        }
    }
}

impl Modes {
    /// Whether printable ASCII is currently drawn from DEC graphics.
    fn graphics(&self) -> bool {
        self.g_graphics[self.shifted as usize]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Ground,
    Esc,
    /// ESC followed by intermediates (held in `seq`).
    EscInter,
    Csi,
    /// OSC, DCS, APC, PM, SOS: passed through, first bytes kept in `seq`.
    Str,
    /// ESC seen inside a string (maybe the ST).
    StrEsc,
}

/// Longest CSI kept for rewriting; longer ones pass through untouched.
const CSI_MAX: usize = 256;
/// Longest string prefix kept for inspection (titles).
const STR_MAX: usize = 4096;

/// The front-end pass (one per session model).
#[derive(Debug, Clone)]
pub struct Front {
    state: State,
    seq: Vec<u8>,
    /// Whether `seq` overflowed its cap (then it is not inspected).
    seq_long: bool,
    modes: Modes,
    /// UTF-8 continuation bytes still expected (slow path only).
    utf8_left: u8,
}

impl Default for Front {
    fn default() -> Self {
        Self::new()
    }
}

/// DEC special graphics for 0x5f..=0x7e.
const DEC_GRAPHICS: [char; 32] = [
    '\u{a0}', '◆', '▒', '␉', '␌', '␍', '␊', '°', '±', '␤', '␋', '┘', '┐', '┌', '└', '┼', '⎺', '⎻',
    '─', '⎼', '⎽', '├', '┤', '┴', '┬', '│', '≤', '≥', 'π', '≠', '£', '·',
];

impl Front {
    /// A pass in the power-on state.
    pub fn new() -> Self {
        Self {
            state: State::Ground,
            seq: Vec::with_capacity(64),
            seq_long: false,
            modes: Modes::default(),
            utf8_left: 0,
        }
    }

    /// The tracked modes.
    pub fn modes(&self) -> &Modes {
        &self.modes
    }

    /// The tracked modes, for the model's updates (tab stops).
    pub fn modes_mut(&mut self) -> &mut Modes {
        &mut self.modes
    }

    /// Whether the pass is between sequences (nothing held back).
    pub fn at_ground(&self) -> bool {
        self.state == State::Ground
    }

    /// The screen was resized: xterm and tmux reset the scroll region.
    pub fn resized(&mut self) {
        self.modes.scroll_region = None;
    }

    /// Feeds `input`; appends what vt100 should parse to `out` and the
    /// queries found to `queries`. Bytes of an unfinished sequence are held
    /// until the sequence completes.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>, queries: &mut Vec<Event>) {
        out.reserve(input.len());
        let mut i = 0;
        while i < input.len() {
            if self.state == State::Ground {
                // The common case: copy the run up to the next byte that
                // needs a look (ESC, SI, SO) in one go.
                let graphics = self.modes.graphics();
                let rest = &input[i..];
                let slow = !self.modes.autowrap || self.modes.tabs.is_some();
                let run = if slow {
                    0
                } else {
                    rest.iter()
                        .position(|&b| b == 0x1b || b == 0x0e || b == 0x0f)
                        .unwrap_or(rest.len())
                };
                if slow {
                    // Byte by byte: HT and characters at the margin need
                    // the model's cursor.
                    let b = rest[0];
                    if b != 0x1b && b != 0x0e && b != 0x0f {
                        i += 1;
                        self.ground_byte(b, graphics, out, queries, i);
                        continue;
                    }
                } else if graphics {
                    for &b in &rest[..run] {
                        if (0x5f..=0x7e).contains(&b) {
                            let mut tmp = [0u8; 4];
                            let s = DEC_GRAPHICS[(b - 0x5f) as usize].encode_utf8(&mut tmp);
                            out.extend_from_slice(s.as_bytes());
                        } else {
                            out.push(b);
                        }
                    }
                } else {
                    out.extend_from_slice(&rest[..run]);
                }
                i += run;
                if i >= input.len() {
                    break;
                }
                match input[i] {
                    0x0e => self.modes.shifted = true,
                    0x0f => self.modes.shifted = false,
                    _ => {
                        self.state = State::Esc;
                        self.seq.clear();
                        self.seq_long = false;
                        self.seq.push(0x1b);
                    }
                }
                i += 1;
                continue;
            }
            let b = input[i];
            i += 1;
            self.step(b, out, queries, i);
        }
    }

    /// One ground-state byte on the slow path (custom tabs or no autowrap).
    fn ground_byte(
        &mut self,
        b: u8,
        graphics: bool,
        out: &mut Vec<u8>,
        queries: &mut Vec<Event>,
        input_pos: usize,
    ) {
        let event = |kind, out: &Vec<u8>| Event {
            kind,
            input: input_pos,
            output: out.len(),
        };
        if b == b'\t' && self.modes.tabs.is_some() {
            queries.push(event(EventKind::Tab, out));
            return;
        }
        if graphics && (0x5f..=0x7e).contains(&b) {
            let mut tmp = [0u8; 4];
            out.extend_from_slice(
                DEC_GRAPHICS[(b - 0x5f) as usize]
                    .encode_utf8(&mut tmp)
                    .as_bytes(),
            );
        } else {
            out.push(b);
        }
        if self.modes.autowrap {
            return;
        }
        // A character is complete after an ASCII byte or the last
        // continuation byte of a UTF-8 sequence.
        match b {
            0x20..=0x7e => queries.push(event(EventKind::Printed, out)),
            0xc0..=0xdf => self.utf8_left = 1,
            0xe0..=0xef => self.utf8_left = 2,
            0xf0..=0xf7 => self.utf8_left = 3,
            0x80..=0xbf if self.utf8_left > 0 => {
                self.utf8_left -= 1;
                if self.utf8_left == 0 {
                    queries.push(event(EventKind::Printed, out));
                }
            }
            _ => self.utf8_left = 0,
        }
    }

    fn push_seq(&mut self, b: u8, cap: usize) {
        if self.seq.len() < cap {
            self.seq.push(b);
        } else {
            self.seq_long = true;
        }
    }

    fn step(&mut self, b: u8, out: &mut Vec<u8>, queries: &mut Vec<Event>, input_pos: usize) {
        match self.state {
            State::Ground => unreachable!("ground bytes are handled in feed"),
            State::Esc => match b {
                b'[' => {
                    self.seq.push(b);
                    self.state = State::Csi;
                }
                b']' | b'P' | b'_' | b'^' | b'X' => {
                    out.extend_from_slice(&[0x1b, b]);
                    self.seq.clear();
                    self.seq.push(b);
                    self.state = State::Str;
                }
                0x20..=0x2f => {
                    self.seq.push(b);
                    self.state = State::EscInter;
                }
                0x1b => {
                    out.push(0x1b);
                }
                0x18 | 0x1a => {
                    out.extend_from_slice(&[0x1b, b]);
                    self.state = State::Ground;
                }
                0x00..=0x1f => {
                    // A control inside an escape runs at once and the
                    // escape goes on.
                    out.push(b);
                }
                _ => {
                    if b == b'c' {
                        // RIS: back to the power-on state.
                        self.modes = Modes::default();
                    }
                    out.extend_from_slice(&[0x1b, b]);
                    if b == b'H' {
                        queries.push(Event {
                            kind: EventKind::SetTab,
                            input: input_pos,
                            output: out.len(),
                        });
                    }
                    self.state = State::Ground;
                }
            },
            State::EscInter => match b {
                0x20..=0x2f => self.push_seq(b, 8),
                0x30..=0x7e => {
                    if self.seq.len() == 2 && (self.seq[1] == b'(' || self.seq[1] == b')') {
                        let g = (self.seq[1] == b')') as usize;
                        self.modes.g_graphics[g] = b == b'0';
                    }
                    out.extend_from_slice(&self.seq);
                    out.push(b);
                    self.state = State::Ground;
                }
                0x1b => {
                    out.extend_from_slice(&self.seq);
                    self.seq.clear();
                    self.seq.push(0x1b);
                    self.state = State::Esc;
                }
                _ => {
                    out.extend_from_slice(&self.seq);
                    out.push(b);
                    if b == 0x18 || b == 0x1a {
                        self.state = State::Ground;
                    }
                }
            },
            State::Csi => match b {
                0x40..=0x7e => {
                    self.state = State::Ground;
                    if self.seq_long {
                        out.extend_from_slice(&self.seq);
                        out.push(b);
                        return;
                    }
                    self.csi_done(b, out, queries, input_pos);
                }
                0x1b => {
                    out.extend_from_slice(&self.seq);
                    self.seq.clear();
                    self.seq.push(0x1b);
                    self.seq_long = false;
                    self.state = State::Esc;
                }
                0x18 | 0x1a => {
                    out.extend_from_slice(&self.seq);
                    out.push(b);
                    self.state = State::Ground;
                }
                _ => self.push_seq(b, CSI_MAX),
            },
            State::Str => {
                out.push(b);
                match b {
                    0x07 if self.seq[0] == b']' => {
                        self.str_done();
                        self.state = State::Ground;
                    }
                    0x1b => self.state = State::StrEsc,
                    0x18 | 0x1a => self.state = State::Ground,
                    _ => self.push_seq(b, STR_MAX),
                }
            }
            State::StrEsc => {
                if b == b'\\' {
                    out.push(b);
                    self.str_done();
                    self.state = State::Ground;
                } else {
                    // Not an ST: the string was cancelled by a new escape.
                    self.state = State::Esc;
                    self.seq.clear();
                    self.seq.push(0x1b);
                    self.seq_long = false;
                    self.step(b, out, queries, input_pos);
                }
            }
        }
    }

    fn str_done(&mut self) {
        if self.seq_long || self.seq.first() != Some(&b']') {
            return;
        }
        let body = &self.seq[1..];
        let (num, text) = match body.iter().position(|&c| c == b';') {
            Some(p) => (&body[..p], &body[p + 1..]),
            None => return,
        };
        if num == b"0" || num == b"2" {
            self.modes.title = Some(text.to_vec());
        }
    }

    /// A complete CSI is in `seq` (ESC [ params intermediates), final `fin`.
    fn csi_done(&mut self, fin: u8, out: &mut Vec<u8>, queries: &mut Vec<Event>, input_pos: usize) {
        let body = &self.seq[2..];
        let split = body
            .iter()
            .position(|c| !(0x30..=0x3f).contains(c))
            .unwrap_or(body.len());
        let (params, inter) = body.split_at(split);
        let private = params
            .first()
            .copied()
            .filter(|c| (0x3c..=0x3f).contains(c));
        let digits = if private.is_some() {
            &params[1..]
        } else {
            params
        };
        if fin == b'm' && private.is_none() && inter.is_empty() {
            let controls_inside = self.seq.iter().skip(2).any(|&c| c < 0x20);
            if !controls_inside && needs_sgr_rewrite(digits) {
                let start = out.len();
                out.extend_from_slice(b"\x1b[");
                if rewrite_sgr(digits, out) {
                    out.push(b'm');
                } else {
                    out.truncate(start);
                }
                return;
            }
        }
        let start = out.len();
        out.extend_from_slice(&self.seq);
        out.push(fin);
        let query = |kind| Event {
            kind: EventKind::Query(kind),
            input: input_pos,
            output: out.len(),
        };
        if private.is_none() && inter.is_empty() {
            match fin {
                b'J' | b'K' | b'X' | b'@' | b'L' | b'M' | b'P' | b'S' | b'T' => {
                    queries.push(Event {
                        kind: EventKind::Erase { start },
                        input: input_pos,
                        output: out.len(),
                    });
                    return;
                }
                b'g' => {
                    match first_param(digits) {
                        0 => queries.push(Event {
                            kind: EventKind::ClearTab,
                            input: input_pos,
                            output: out.len(),
                        }),
                        3 => self.modes.tabs = Some(Default::default()),
                        _ => {}
                    }
                    return;
                }
                _ => {}
            }
        }
        let first = || first_param(digits);
        match (private, inter, fin) {
            (None, b"", b'c') if first() == 0 => queries.push(query(QueryKind::Da1)),
            (Some(b'>'), b"", b'c') if first() == 0 => queries.push(query(QueryKind::Da2)),
            (None, b"", b'n') if first() == 5 => queries.push(query(QueryKind::Status)),
            (None, b"", b'n') if first() == 6 => queries.push(query(QueryKind::Cursor)),
            (Some(b'?'), b"", b'n') if first() == 6 => queries.push(query(QueryKind::DecCursor)),
            (Some(b'>'), b"", b'q') if first() == 0 => queries.push(query(QueryKind::Version)),
            (Some(b'?'), b"", b'h' | b'l') => {
                let on = fin == b'h';
                for p in digits.split(|&c| c == b';') {
                    match parse_num(p) {
                        6 => self.modes.origin = on,
                        7 => self.modes.autowrap = on,
                        1004 => self.modes.focus = on,
                        1015 => self.modes.mouse_urxvt = on,
                        _ => {}
                    }
                }
            }
            (None, b" ", b'q') => self.modes.cursor_style = first(),
            (None, b"", b'r') => {
                let mut it = digits.split(|&c| c == b';').map(parse_num);
                let top = it.next().unwrap_or(0).max(1);
                let bottom = it.next().unwrap_or(0);
                self.modes.scroll_region = if top == 1 && bottom == 0 {
                    None
                } else {
                    Some((top, bottom))
                };
            }
            (None, b"", b't') => {
                let mut it = digits.split(|&c| c == b';').map(parse_num);
                match it.next() {
                    Some(22) => {
                        let t = self.modes.title.clone();
                        self.modes.title_stack.push(t);
                    }
                    Some(23) => {
                        if let Some(t) = self.modes.title_stack.pop() {
                            self.modes.title = t;
                        }
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
}

fn parse_num(p: &[u8]) -> u16 {
    let mut n: u32 = 0;
    for &c in p {
        if !c.is_ascii_digit() {
            break;
        }
        n = (n * 10 + (c - b'0') as u32).min(u16::MAX as u32);
    }
    n as u16
}

fn first_param(digits: &[u8]) -> u16 {
    parse_num(digits.split(|&c| c == b';').next().unwrap_or(&[]))
}

/// Whether an SGR parameter string has a form vt100 would misread.
fn needs_sgr_rewrite(p: &[u8]) -> bool {
    if p.contains(&b':') {
        return true;
    }
    // `58` in the `;` form: written canonically, with its arguments
    // checked as for 38 and 48; a number past 255 (an out of range colour
    // value) would make vt100 stop reading the rest of the SGR.
    p.split(|&c| c == b';')
        .any(|x| x == b"58" || (x.len() >= 3 && parse_num(x) > 255))
}

/// Writes the SGR parameters `p` in forms vt100 reads (module docs) into
/// `out`; returns false, writing nothing, when no parameter is left (the
/// caller then drops the sequence: `CSI m` would reset every attribute).
fn rewrite_sgr(p: &[u8], out: &mut Vec<u8>) -> bool {
    let groups: Vec<Vec<Option<u16>>> = p
        .split(|&c| c == b';')
        .map(|g| {
            g.split(|&c| c == b':')
                .map(|x| (!x.is_empty()).then(|| parse_num(x)))
                .collect()
        })
        .collect();
    let mut emitted: Vec<String> = Vec::new();
    let mut i = 0;
    while i < groups.len() {
        let g = &groups[i];
        i += 1;
        let head = g.first().copied().flatten().unwrap_or(0);
        if g.len() > 1 {
            // A colon group carries all its arguments.
            let v = |k: usize| g.get(k).copied().flatten().unwrap_or(0);
            match head {
                38 | 48 | 58 => match v(1) {
                    2 if g.len() >= 5 => {
                        // With a colour-space field there are six values.
                        let (r, gg, b) = if g.len() >= 6 {
                            (v(3), v(4), v(5))
                        } else {
                            (v(2), v(3), v(4))
                        };
                        emitted.extend(colour(head, 2, &[r, gg, b]));
                    }
                    5 if g.len() >= 3 => emitted.extend(colour(head, 5, &[v(2)])),
                    _ => {}
                },
                // tmux reads `4:N` only with exactly one sub-parameter
                // from 0 to 5.
                4 if g.len() == 2 && g[1].is_some_and(|n| n <= 5) => {
                    emitted.push(format!("4:{}", v(1)));
                }
                _ => {}
            }
            continue;
        }
        match head {
            38 | 48 | 58 => {
                // `;` form: the arguments are the following groups.
                let arg = |k: usize| {
                    groups
                        .get(i + k)
                        .and_then(|g| g.first().copied().flatten())
                        .unwrap_or(0)
                };
                let take = match arg(0) {
                    2 => 4,
                    5 => 2,
                    _ => 0,
                };
                match take {
                    4 => emitted.extend(colour(head, 2, &[arg(1), arg(2), arg(3)])),
                    2 => emitted.extend(colour(head, 5, &[arg(1)])),
                    _ => {}
                }
                i += take;
            }
            n => emitted.push(n.to_string()),
        }
    }
    if emitted.is_empty() {
        return false;
    }
    out.extend_from_slice(emitted.join(";").as_bytes());
    true
}

/// One colour parameter in the form vt100 reads: `38;2;R;G;B` / `38;5;N`
/// for the text and background colours (`head` 38, 48), the colon form
/// `58:2:R:G:B` / `58:5:N` for the underline colour. Out of range values
/// are handled as tmux 3.3a does (vt100 would stop reading the SGR): an
/// index past 255 selects the default colour, an RGB value past 255 makes
/// the parameter a no-op (`None`).
fn colour(head: u16, kind: u16, values: &[u16]) -> Option<String> {
    if values.iter().any(|&v| v > 255) {
        return (kind == 5).then(|| (head + 1).to_string());
    }
    let sep = if head == 58 { ':' } else { ';' };
    let mut s = format!("{head}{sep}{kind}");
    for v in values {
        s.push(sep);
        s.push_str(&v.to_string());
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input: &[u8]) -> (Vec<u8>, Vec<Event>, Front) {
        let mut f = Front::new();
        let mut out = Vec::new();
        let mut q = Vec::new();
        f.feed(input, &mut out, &mut q);
        (out, q, f)
    }

    #[test]
    fn sgr_sub_parameter_forms_become_forms_vt100_reads() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"\x1b[38:2::10:20:30m", b"\x1b[38;2;10;20;30m"),
            (b"\x1b[38:2:0:10:20:30m", b"\x1b[38;2;10;20;30m"),
            (b"\x1b[48:2::1:2:3m", b"\x1b[48;2;1;2;3m"),
            (b"\x1b[38:5:196m", b"\x1b[38;5;196m"),
            (b"\x1b[1;4:3;58:2::9:9:9;31m", b"\x1b[1;4:3;58:2:9:9:9;31m"),
            (b"\x1b[4:0m", b"\x1b[4:0m"),
            (b"\x1b[4:5m", b"\x1b[4:5m"),
            (b"\x1b[58;5;3;32m", b"\x1b[58:5:3;32m"),
            (b"\x1b[58;2;1;2;3m", b"\x1b[58:2:1:2:3m"),
            (b"\x1b[58:2:0:1:2:3m", b"\x1b[58:2:1:2:3m"),
            (b"\x1b[58:2:1:2:3m", b"\x1b[58:2:1:2:3m"),
            (b"\x1b[58:5:200;1m", b"\x1b[58:5:200;1m"),
            (b"\x1b[59m", b"\x1b[59m"),
            (b"\x1b[21;24m", b"\x1b[21;24m"),
            // Groups tmux ignores are dropped; nothing left: no SGR at all.
            (b"\x1b[4:6;1:2;3m", b"\x1b[3m"),
            (b"\x1b[4:6ma", b"a"),
            // Out of range as tmux: an index selects the default colour,
            // an RGB value drops the colour; the rest is still read.
            (b"\x1b[4;58;5;300;1m", b"\x1b[4;59;1m"),
            (b"\x1b[38:5:256;1m", b"\x1b[39;1m"),
            (b"\x1b[48;2;1;999;3;7m", b"\x1b[7m"),
            (b"\x1b[1;31m", b"\x1b[1;31m"),
        ];
        for (input, want) in cases {
            let (out, _, _) = run(input);
            assert_eq!(out, *want, "{}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn sequences_split_anywhere_give_the_same_output() {
        let input: &[u8] =
            b"a\x1b[38:2::1:2:3mb\x1b]0;title\x07\x1b(0qq\x1b(B\x1b[6n\x1b[?1004h\x1b[5 q";
        let (whole, wq, wf) = run(input);
        for cut in 0..input.len() {
            let mut f = Front::new();
            let mut out = Vec::new();
            let mut q = Vec::new();
            f.feed(&input[..cut], &mut out, &mut q);
            f.feed(&input[cut..], &mut out, &mut q);
            assert_eq!(out, whole, "cut at {cut}");
            assert_eq!(q.len(), wq.len());
            assert_eq!(f.modes(), wf.modes());
        }
        assert_eq!(wf.modes().title.as_deref(), Some(&b"title"[..]));
        assert!(wf.modes().focus);
        assert_eq!(wf.modes().cursor_style, 5);
        assert!(String::from_utf8_lossy(&whole).contains("──"));
    }

    #[test]
    fn queries_are_found_with_their_positions() {
        let (_, q, _) = run(b"x\x1b[c\x1b[>c\x1b[5n\x1b[6n\x1b[?6n\x1b[>q\x1b[1c");
        let kinds: Vec<EventKind> = q.iter().map(|q| q.kind).collect();
        assert_eq!(
            kinds,
            [
                QueryKind::Da1,
                QueryKind::Da2,
                QueryKind::Status,
                QueryKind::Cursor,
                QueryKind::DecCursor,
                QueryKind::Version
            ]
            .map(EventKind::Query)
        );
        assert_eq!(q[0].input, 4);
    }
}
