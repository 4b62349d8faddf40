//! Any text as a `berth svc apply` ecosystem file (TOML): declared
//! services or an error with a span inside the text, never a panic. This
//! compiles the CLI's own parser file, which is self-contained for that.
#![no_main]

#[allow(dead_code)]
#[path = "../../crates/berth/src/cmd/services/ecosystem.rs"]
mod ecosystem;

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match ecosystem::parse_file(Path::new("/tmp/berth-fuzz/eco.toml"), text) {
        Ok(declared) => {
            for d in &declared {
                assert!(!d.config.cmd.is_empty());
                assert!(d.config.env.contains_key(ecosystem::APPLY_TAG));
            }
        }
        Err(e) => {
            assert!(e.span.start <= text.len(), "{e:?}");
            // The message the user sees, with line and column.
            let _ = ecosystem::located(Path::new("eco.toml"), text, &e);
        }
    }
});
