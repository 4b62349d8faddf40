//! Prompt retries (seed 004 "Configuration": ACP_PROMPT_RETRY_*): which
//! JSON-RPC errors from an agent are transient provider failures, and the
//! backoff between attempts. Pure functions; the session runs the loop.

use std::time::Duration;

/// Words that mark an error as transient (compared lower-cased against
/// the error's message and its `data` rendered as JSON).
pub const TRANSIENT_MARKERS: &[&str] = &[
    "rate limit",
    "rate_limit",
    "ratelimit",
    "too many requests",
    "overloaded",
    "429",
    "500",
    "502",
    "503",
    "504",
    "529",
    "internal server error",
    "bad gateway",
    "service unavailable",
    "temporarily unavailable",
    "gateway timeout",
    "timeout",
    "timed out",
    "econnreset",
    "connection reset",
];

/// Whether an agent's JSON-RPC error (`message`, `data`) is a transient
/// provider failure worth retrying: its message or data names a rate
/// limit, an overload, an HTTP 429 or 5xx status, a timeout or a reset
/// connection, or `data` carries a numeric `status`/`statusCode` of 429 or
/// 500–599. The error code alone never decides (agents report provider
/// failures as -32603 "internal error", as they report bugs).
pub fn is_transient(message: &str, data: Option<&serde_json::Value>) -> bool {
    let mut text = message.to_ascii_lowercase();
    if let Some(d) = data {
        text.push(' ');
        text.push_str(&d.to_string().to_ascii_lowercase());
        for key in ["status", "statusCode", "httpStatus"] {
            if let Some(s) = d.get(key).and_then(|v| v.as_u64()) {
                if s == 429 || (500..600).contains(&s) {
                    return true;
                }
            }
        }
    }
    TRANSIENT_MARKERS.iter().any(|m| text.contains(m))
}

/// The wait before retry number `retry` (0 = the first retry):
/// `initial * 2^retry`, capped at `max`.
pub fn backoff(retry: u32, initial: Duration, max: Duration) -> Duration {
    let factor = 1u32.checked_shl(retry.min(31)).unwrap_or(u32::MAX);
    initial.saturating_mul(factor).min(max)
}
