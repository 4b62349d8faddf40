//! The terminal WebSocket's JSON messages (seed 004's agent: text frames
//! `{type, sessionId?, data?}`), and the small pure helpers behind them.

use serde::Deserialize;
use serde_json::{json, Value};

/// Any client → server message; fields a type does not use are ignored.
/// `offset` on `reattach_session` (and `/terminal/ws?offset=`) is berth's
/// extension: the output offset the client already has.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientMsg {
    /// `input`, `resize`, `ping`, `create_session`, `close_session`,
    /// `rename_session`, `list_sessions`, `reattach_session`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Target session (multi mode).
    pub session_id: Option<String>,
    /// Keystrokes (`input`).
    pub data: Option<String>,
    /// Rows (`resize`, `create_session`, `reattach_session`).
    pub rows: Option<i64>,
    /// Columns.
    pub cols: Option<i64>,
    /// Display name (`create_session`, `rename_session`).
    pub name: Option<String>,
    /// Working directory (`create_session`).
    pub work_dir: Option<String>,
    /// Output offset the client holds (`reattach_session`, extension).
    pub offset: Option<u64>,
}

/// Rows and columns as the agent takes them: each within 1..=500, else
/// the pair falls back to 24x80.
pub fn size(rows: Option<i64>, cols: Option<i64>) -> (u16, u16) {
    match (rows, cols) {
        (Some(r), Some(c)) if (1..=500).contains(&r) && (1..=500).contains(&c) => {
            (r as u16, c as u16)
        }
        _ => (24, 80),
    }
}

/// `error{error}`, with the session when there is one.
pub fn error(session: Option<&str>, text: &str) -> Value {
    let mut v = json!({"type": "error", "error": text, "data": text});
    if let Some(s) = session {
        v["sessionId"] = json!(s);
    }
    v
}

/// How many bytes at the end of `buf` start a UTF-8 character that is not
/// complete yet (0..=3): output is cut anywhere, a JSON string is not.
pub fn incomplete_tail(buf: &[u8]) -> usize {
    berth_os::text::incomplete_utf8_tail(buf)
}

/// A token bucket: `rate` messages a second, at most `burst` at once
/// (seed 004's agent: 30/s, burst 60).
pub struct Bucket {
    tokens: f64,
    rate: f64,
    burst: f64,
    last: std::time::Instant,
}

impl Bucket {
    /// A full bucket.
    pub fn new(rate: f64, burst: f64) -> Self {
        Self {
            tokens: burst,
            rate,
            burst,
            last: std::time::Instant::now(),
        }
    }

    /// Takes one token; `false` when the bucket is empty.
    pub fn take(&mut self) -> bool {
        let now = std::time::Instant::now();
        let dt = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + dt * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_tails_and_sizes() {
        let s = "a€".as_bytes(); // € is 3 bytes
        assert_eq!(incomplete_tail(s), 0);
        assert_eq!(incomplete_tail(&s[..2]), 1);
        assert_eq!(incomplete_tail(&s[..3]), 2);
        assert_eq!(incomplete_tail(b"abc"), 0);
        assert_eq!(size(Some(0), Some(80)), (24, 80));
        assert_eq!(size(Some(501), Some(80)), (24, 80));
        assert_eq!(size(Some(40), Some(120)), (40, 120));
        let mut b = Bucket::new(30.0, 60.0);
        assert!((0..60).all(|_| b.take()));
        assert!(!b.take());
    }
}
