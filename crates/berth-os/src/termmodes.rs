//! Leaving a user's terminal as it was found.
//!
//! A client that shows a session in the user's own terminal (`berth
//! attach`) lets the session's program set modes there: the alternate
//! screen, mouse and focus reporting, cursor keys, bracketed paste, the
//! cursor style, a scroll region, the title. When the client leaves
//! (detach, takeover, exit) those modes must not stay behind, or moving the
//! mouse types escape codes into the user's shell. tmux resets them to the
//! terminal's defaults on detach; so does this module (issue 18, item 1).

/// Written before the first restore: pushes the terminal's title onto its
/// title stack (XTWINOPS 22), so [`leave_sequence`] can pop it back.
pub const ENTER: &[u8] = b"\x1b[22;0t";

/// Everything but the alternate screen, put back to the defaults: mouse
/// reporting (9, 1000-1003) and its encodings (1005, 1006, 1015) off, focus
/// reporting (1004) off, bracketed paste (2004) off, normal cursor keys
/// (DECCKM) and keypad (DECKPNM), no origin mode, autowrap on, the whole
/// screen as scroll region, plain SGR, ASCII in G0 and G1 with G0 shifted
/// in, the default cursor style, the cursor shown, and the title popped.
const RESET: &[u8] = b"\x1b[?9l\x1b[?1000l\x1b[?1001l\x1b[?1002l\x1b[?1003l\x1b[?1005l\x1b[?1006l\x1b[?1015l\x1b[?1004l\x1b[?2004l\x1b[?1l\x1b>\x1b[?6l\x1b[?7h\x1b[r\x1b[0m\x1b(B\x1b)B\x0f\x1b[0 q\x1b[?25h\x1b[23;0t";

/// Follows the bytes written to the user's terminal just enough to know
/// whether they left it on the alternate screen (modes 47, 1047, 1049),
/// across writes split anywhere.
#[derive(Debug, Default, Clone)]
pub struct AltScreenWatch {
    on: bool,
    /// Bytes of an unfinished `ESC [ ? ...` sequence (capped).
    pending: Vec<u8>,
}

impl AltScreenWatch {
    /// A watch of a terminal on its normal screen.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the terminal is on the alternate screen now.
    pub fn on_alternate(&self) -> bool {
        self.on
    }

    /// Notes `bytes` written to the terminal.
    pub fn saw(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if self.pending.is_empty() {
                if b == 0x1b {
                    self.pending.push(b);
                }
                continue;
            }
            self.pending.push(b);
            let p = &self.pending;
            let keep = match p.len() {
                2 => b == b'[',
                3 => b == b'?',
                _ => b.is_ascii_digit() || b == b';',
            };
            if keep && p.len() < 64 {
                continue;
            }
            if (b == b'h' || b == b'l') && p.len() > 3 {
                let params = &p[3..p.len() - 1];
                if params
                    .split(|&c| c == b';')
                    .any(|x| x == b"47" || x == b"1047" || x == b"1049")
                {
                    self.on = b == b'h';
                }
            }
            self.pending.clear();
            if b == 0x1b {
                self.pending.push(b);
            }
        }
    }
}

/// What to write to the user's terminal when the client leaves: the
/// alternate screen left (only when the session left it there: leaving it
/// otherwise would move the cursor to a stale saved position), then every
/// other mode back to its default (see [`RESET`]'s list).
pub fn leave_sequence(watch: &AltScreenWatch) -> Vec<u8> {
    let mut v = Vec::with_capacity(RESET.len() + 8);
    if watch.on_alternate() {
        v.extend_from_slice(b"\x1b[?1049l");
    }
    v.extend_from_slice(RESET);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_alternate_screen_is_followed_across_split_writes() {
        let stream: &[u8] = b"x\x1b[?1049hfull\x1b[1;2Hy\x1b[?25l\x1b[?1049lz\x1b[?1;1047h";
        for cut in 0..stream.len() {
            let mut w = AltScreenWatch::new();
            w.saw(&stream[..cut]);
            w.saw(&stream[cut..]);
            assert!(w.on_alternate(), "cut at {cut}");
        }
        let mut w = AltScreenWatch::new();
        w.saw(b"\x1b[?1049h\x1b[?1049l");
        assert!(!w.on_alternate());
        assert!(!leave_sequence(&w).starts_with(b"\x1b[?1049l"));
        w.saw(b"\x1b\x1b[?47h");
        assert!(leave_sequence(&w).starts_with(b"\x1b[?1049l"));
    }
}
