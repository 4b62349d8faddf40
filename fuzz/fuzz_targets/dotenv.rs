//! Any bytes as a `.env` file through every form berth-compose reads one
//! in (Compose's dotenv with interpolation, raw, the `env_file` formats,
//! the map): a list of variables or an error naming the line, never a
//! panic. Interpolating what was parsed must not panic either.
#![no_main]

use berth_compose::dotenv;
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let outer = BTreeMap::from([
        ("HOME".to_string(), "/home/u".to_string()),
        ("EMPTY".to_string(), String::new()),
    ]);
    if let Ok(vars) = dotenv::parse(text, &outer) {
        // Names are never empty, and a later line replaces an earlier one.
        assert!(vars.iter().all(|(k, _)| !k.is_empty()), "{vars:?}");
        let names: std::collections::BTreeSet<_> = vars.iter().map(|(k, _)| k).collect();
        assert_eq!(names.len(), vars.len(), "{vars:?}");
    }
    let _ = dotenv::parse_raw(text);
    let _ = dotenv::parse_map(text, &outer);
    for format in [None, Some("raw"), Some("bogus")] {
        let _ = dotenv::parse_format(text, format, &outer);
    }
});
