//! Making a backlog safe to replay into a fresh terminal.
//!
//! A program that asked its terminal a question (device attributes, cursor
//! position, colours, modes, version) got its answer long ago. Replaying the
//! question into a new terminal makes that terminal answer again, and the
//! answer arrives at the program as junk input. These sequences are removed;
//! everything else passes through byte for byte.

const ESC: u8 = 0x1b;
const BEL: u8 = 0x07;

/// Returns `bytes` without terminal queries (DA1/2/3, DSR/CPR, DECRQM,
/// XTVERSION, kitty keyboard query, window-size reports, OSC colour and
/// clipboard queries, DECRQSS, XTGETTCAP).
pub fn strip_queries(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b != ESC || i + 1 >= bytes.len() {
            // Copy the run up to the next ESC in one go.
            let next = bytes[i + 1..]
                .iter()
                .position(|&c| c == ESC)
                .map(|p| i + 1 + p)
                .unwrap_or(bytes.len());
            out.extend_from_slice(&bytes[i..next]);
            i = next;
            continue;
        }
        let (len, query) = match bytes[i + 1] {
            b'[' => csi(&bytes[i..]),
            b']' => osc(&bytes[i..]),
            b'P' => dcs(&bytes[i..]),
            _ => (1, false),
        };
        if !query {
            out.extend_from_slice(&bytes[i..i + len]);
        }
        i += len;
    }
    out
}

/// Length of the CSI sequence at `s[0..]` and whether it is a query.
/// An unterminated sequence is passed through untouched.
fn csi(s: &[u8]) -> (usize, bool) {
    let mut j = 2;
    while j < s.len() && (0x30..=0x3f).contains(&s[j]) {
        j += 1;
    }
    let params = &s[2..j];
    let inter_start = j;
    while j < s.len() && (0x20..=0x2f).contains(&s[j]) {
        j += 1;
    }
    let inter = &s[inter_start..j];
    if j >= s.len() || !(0x40..=0x7e).contains(&s[j]) {
        return (if j >= s.len() { s.len() } else { j }, false);
    }
    let fin = s[j];
    let lead = params.first().copied();
    let query = match fin {
        b'c' => inter.is_empty(),                       // DA1 / DA2 (>) / DA3 (=)
        b'n' => inter.is_empty(),                       // DSR, CPR, DECXCPR
        b'p' => inter == b"$",                          // DECRQM
        b'q' => lead == Some(b'>') && inter.is_empty(), // XTVERSION
        b'u' => lead == Some(b'?') && inter.is_empty(), // kitty keyboard flags query
        b't' => inter.is_empty() && window_report(params), // window-size / title reports
        _ => false,
    };
    (j + 1, query)
}

fn window_report(params: &[u8]) -> bool {
    let first = params.split(|&c| c == b';').next().unwrap_or(&[]);
    matches!(
        first,
        b"11" | b"13" | b"14" | b"15" | b"16" | b"18" | b"19" | b"20" | b"21"
    )
}

/// Finds the end of a string sequence (BEL or ESC \), returning the index
/// just past the terminator and the payload range end.
fn string_end(s: &[u8], from: usize) -> Option<(usize, usize)> {
    let mut j = from;
    while j < s.len() {
        match s[j] {
            BEL => return Some((j + 1, j)),
            ESC if j + 1 < s.len() && s[j + 1] == b'\\' => return Some((j + 2, j)),
            _ => j += 1,
        }
    }
    None
}

fn osc(s: &[u8]) -> (usize, bool) {
    let Some((end, payload_end)) = string_end(s, 2) else {
        return (s.len(), false);
    };
    let payload = &s[2..payload_end];
    // A `?` standing as a whole parameter asks for a value (OSC 4/10-19/52...).
    let query = payload.split(|&c| c == b';').skip(1).any(|p| p == b"?");
    (end, query)
}

fn dcs(s: &[u8]) -> (usize, bool) {
    let Some((end, _)) = string_end(s, 2) else {
        return (s.len(), false);
    };
    let query = s[2..].starts_with(b"$q") || s[2..].starts_with(b"+q");
    (end, query)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_go_and_everything_else_stays() {
        let input: &[u8] =
            b"a\x1b[c\x1b[>0c\x1b[6n\x1b[?6n\x1b[5n\x1b]11;?\x07\x1b]4;1;?\x1b\\\x1b]52;c;?\x07\
            \x1b[?2004$p\x1b[>q\x1b[?u\x1b[18t\x1bP$qm\x1b\\\x1bP+q544e\x1b\\b";
        assert_eq!(strip_queries(input), b"ab");
        let keep: &[u8] = b"\x1b[1;31mred\x1b[0m\x1b[2J\x1b[H\x1b]0;title\x07\x1b]11;#000000\x07\x1b[?1049h\x1b[8;24;80t\x1b7x";
        assert_eq!(strip_queries(keep), keep);
    }

    #[test]
    fn truncated_sequences_pass_through() {
        assert_eq!(strip_queries(b"x\x1b["), b"x\x1b[");
        assert_eq!(strip_queries(b"x\x1b]11;?"), b"x\x1b]11;?");
        assert_eq!(strip_queries(b"\x1b"), b"\x1b");
    }
}
