//! Cutting bytes that are meant as UTF-8 text without cutting a character.
//!
//! Output arrives in pieces cut anywhere (a write, a pipe read, a size
//! cap); text made of it must not turn one character split across two
//! pieces into two U+FFFD (issue 21, item 5). The rule everywhere: hold
//! back an incomplete trailing sequence until more bytes come or the
//! stream ends; only then is a real invalid tail replaced.

/// How many bytes at the end of `buf` start a UTF-8 character that is not
/// complete yet (0..=3). Bytes that can never become a character (a stray
/// continuation byte, `0xF8..`) are not held back: they are invalid now
/// and will be invalid later.
pub fn incomplete_utf8_tail(buf: &[u8]) -> usize {
    let n = buf.len();
    for back in 1..=3.min(n) {
        let b = buf[n - back];
        if b & 0xC0 == 0x80 {
            continue; // continuation byte: look further back
        }
        let need = match b {
            0xC0..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF7 => 4,
            _ => return 0,
        };
        return if need > back { back } else { 0 };
    }
    0
}

/// The largest `k <= max` such that `buf[..k]` does not end inside a UTF-8
/// character; `max` itself when that would leave nothing (a cap smaller
/// than one character still makes progress).
pub fn utf8_cut(buf: &[u8], max: usize) -> usize {
    let max = max.min(buf.len());
    if max == buf.len() {
        return max;
    }
    // A character continues past `max` when the bytes after it are
    // continuation bytes: back up to its first byte.
    let mut k = max;
    while k > 0 && max - k < 3 && buf[k] & 0xC0 == 0x80 {
        k -= 1;
    }
    if buf[k] & 0xC0 == 0x80 || k == 0 {
        max
    } else {
        k
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_incomplete_character_at_the_end_is_counted() {
        let s = "é€😀".as_bytes(); // 2 + 3 + 4 bytes
        assert_eq!(incomplete_utf8_tail(s), 0);
        assert_eq!(incomplete_utf8_tail(&s[..1]), 1);
        assert_eq!(incomplete_utf8_tail(&s[..4]), 2);
        assert_eq!(incomplete_utf8_tail(&s[..8]), 3);
        assert_eq!(incomplete_utf8_tail(b"abc\x80"), 0);
        assert_eq!(incomplete_utf8_tail(b"abc\xff"), 0);
        assert_eq!(incomplete_utf8_tail(b""), 0);
    }

    #[test]
    fn cuts_fall_between_characters() {
        let s = "aé€😀".as_bytes(); // a=0, é=1..3, €=3..6, 😀=6..10
        for max in 0..=s.len() + 2 {
            let k = utf8_cut(s, max);
            assert!(k <= max.min(s.len()));
            assert!(std::str::from_utf8(&s[..k]).is_ok(), "max {max} cut {k}");
            assert!(max.min(s.len()) - k < 4);
        }
        assert_eq!(utf8_cut(s, 2), 1);
        assert_eq!(utf8_cut(s, 9), 6);
        // Nothing but one long character before the cap: cut anyway.
        assert_eq!(utf8_cut("😀".as_bytes(), 2), 2);
        // Invalid bytes are cut where asked.
        assert_eq!(utf8_cut(b"\x80\x80\x80\x80\x80", 4), 4);
    }
}
