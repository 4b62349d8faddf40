//! Any bytes as a `.vibeapp` package (a tar, zstd-compressed or not),
//! checked in memory as ImportPackage checks it before unpacking (caps on
//! entries and sizes, paths, links, devices, SHA256SUMS, the manifest):
//! accepted or an INVALID_PACKAGE/TAMPERED/SIGNATURE_INVALID error, never
//! a panic or an allocation past the caps.
#![no_main]

use berth_engine::packages::{self, ManifestFacts};
use berth_engine::projects::manifest::Manifest;
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fn parse(b: &[u8]) -> Result<ManifestFacts, String> {
    Manifest::parse(b)
        .map(|m| ManifestFacts {
            secrets: m.secrets.iter().map(|s| s.name().to_owned()).collect(),
            app_id: m.app_id,
            name: m.name,
            version: m.version,
        })
        .map_err(|e| e.to_string())
}

fuzz_target!(|data: &[u8]| {
    let trust = Path::new("/nonexistent/berth-fuzz-trust");
    if let Ok(c) = packages::check(data, trust, false, &parse) {
        assert!(!c.manifest.app_id.is_empty());
        assert_eq!(c.trust_status, "unsigned");
    }
    let _ = packages::check(data, trust, true, &parse);
});
