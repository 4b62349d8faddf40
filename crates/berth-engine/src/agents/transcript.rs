//! The bounds of a session's transcript (issue 15 review): one prompt or
//! answer of any size must not make `GET .../agent-sessions/{id}`, the
//! stored row or a `resumed_new_session` notice (kept in the replay)
//! grow without end. Documented in docs/node-api.md "Agent sessions".

use serde_json::{json, Value};

/// Longest text of one transcript entry (bytes); a longer one is cut on
/// a character boundary and marked `"truncated": true`, its text ending
/// in [`CUT_MARK`]. `lastPrompt` is cut the same way.
pub const ENTRY_MAX: usize = 64 * 1024;

/// Most entry text a transcript keeps (bytes, all entries): the oldest
/// entries are dropped first.
pub const TOTAL_MAX: usize = 1024 * 1024;

/// Most entry text embedded in a `resumed_new_session` notice (bytes):
/// the newest entries that fit.
pub const NOTICE_MAX: usize = 256 * 1024;

/// What ends a cut entry's text.
pub const CUT_MARK: &str = "\n[cut: longer than 64 KiB]";

/// `text` cut to [`ENTRY_MAX`] bytes on a character boundary, and
/// whether it was cut.
pub fn cap(text: &str) -> (String, bool) {
    if text.len() <= ENTRY_MAX {
        return (text.to_string(), false);
    }
    let k = berth_os::text::utf8_cut(text.as_bytes(), ENTRY_MAX - CUT_MARK.len());
    let mut t = text[..k].to_string();
    t.push_str(CUT_MARK);
    (t, true)
}

/// One entry `{role, text}` (with `"truncated": true` when cut).
pub fn entry(role: &str, text: &str) -> Value {
    let (t, cut) = cap(text);
    let mut v = json!({"role": role, "text": t});
    if cut {
        v["truncated"] = json!(true);
    }
    v
}

fn size(v: &Value) -> usize {
    v["text"].as_str().map_or(0, str::len)
}

/// Drops the oldest entries of `t` until its text is within `max` bytes.
pub fn trim(t: &mut Vec<Value>, max: usize) {
    let mut total: usize = t.iter().map(size).sum();
    let mut drop = 0;
    while total > max && drop < t.len() {
        total -= size(&t[drop]);
        drop += 1;
    }
    t.drain(..drop);
}

/// Appends an entry and trims the transcript to [`TOTAL_MAX`].
pub fn push(t: &mut Vec<Value>, role: &str, text: &str) {
    t.push(entry(role, text));
    trim(t, TOTAL_MAX);
}

/// The newest entries of `t` whose text fits in `max` bytes.
pub fn newest(t: &[Value], max: usize) -> Vec<Value> {
    let mut v = t.to_vec();
    trim(&mut v, max);
    v
}
