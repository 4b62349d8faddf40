//! Any text as a node-API terminal WebSocket message (seed 004's
//! `{type, sessionId?, data?, rows?, cols?...}`) and as a `/logs` query
//! string, decoded as the daemon decodes them, then through the pure
//! helpers a message reaches (the size clamp, the UTF-8 tail cut): a value
//! or an error, never a panic.
#![no_main]

use berth_daemon::node_api::logs::LogQuery;
use berth_daemon::node_api::terminal::protocol::{incomplete_tail, size, ClientMsg};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let tail = incomplete_tail(data);
    assert!(tail <= 3 && tail <= data.len());
    // What is left before the tail is never cut inside a character that
    // the tail started.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(m) = serde_json::from_str::<ClientMsg>(text) {
        let (r, c) = size(m.rows, m.cols);
        assert!((1..=500).contains(&r) && (1..=500).contains(&c));
    }
    if let Ok(uri) = format!("/logs?{text}").parse::<axum::http::Uri>() {
        let _ = axum::extract::Query::<LogQuery>::try_from_uri(&uri);
    }
});
