//! Any text through Compose interpolation (every form: `$V`, `${V}`,
//! `${V:-d}`, `${V-d}`, `${V:?e}`, `${V?e}`, `${V:+r}`, `${V+r}`, `$$`,
//! nested defaults): a value or an error, never a panic or a runaway
//! (nesting is bounded). A text without `$` is returned unchanged.
#![no_main]

use berth_compose::interpolate;
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let vars = BTreeMap::from([
        ("A".to_string(), "1".to_string()),
        ("EMPTY".to_string(), String::new()),
        ("NEST".to_string(), "${A}".to_string()),
    ]);
    let r = interpolate::interpolate(text, &vars);
    if !text.contains('$') {
        assert_eq!(r.expect("no `$`, nothing to fail").value, text);
    }
    let _ = interpolate::undefaulted_vars(text);
});
