//! Any bytes as a package's `manifest.json`: a manifest or an error naming
//! the field, never a panic; every Compose path an accepted manifest names
//! stays inside the package.
#![no_main]

use berth_engine::projects::manifest::{relative_inside, Manifest};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Manifest::parse(data) {
        for c in m.compose.iter().chain(&m.compose_files) {
            assert!(relative_inside(c).is_ok(), "{c:?} escapes the package");
        }
        let _ = m.required_secrets().count();
        let _ = m.to_json();
    }
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = relative_inside(s);
    }
});
