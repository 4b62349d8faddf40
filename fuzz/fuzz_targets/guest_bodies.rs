//! Any bytes as a guest-API request body (exec, clipboard, app bundle,
//! open) and as the fs query string, decoded as the daemon decodes them:
//! a value or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let query = std::str::from_utf8(data).unwrap_or("");
    let n = berth_daemon::guest_api::decode_request(data, query);
    assert!(n <= 5);
});
