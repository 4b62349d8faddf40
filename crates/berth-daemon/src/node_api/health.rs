//! `GET /health` (seed 004 "Health", no auth): status, version, uptime and
//! system facts (CPUs, load, memory, disk of the state directory).

use axum::Json;
use serde_json::{json, Value};
use std::path::Path;
use std::time::Instant;

/// The health document. `started` is when the node API started;
/// `state_dir` is measured for disk space. Facts the machine cannot give
/// (no /proc) are `null`, not errors.
pub fn report(started: Instant, state_dir: &Path) -> Json<Value> {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let load: Option<Vec<f64>> = std::fs::read_to_string("/proc/loadavg").ok().map(|s| {
        s.split_whitespace()
            .take(3)
            .filter_map(|v| v.parse().ok())
            .collect()
    });
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem = |key: &str| -> Option<u64> {
        meminfo
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .map(|kib| kib * 1024)
    };
    let disk = disk(state_dir);
    Json(json!({
        "status": "healthy",
        "version": env!("CARGO_PKG_VERSION"),
        "uptime": started.elapsed().as_secs(),
        "system": {
            "cpuCount": cpus,
            "loadAverage": load,
            "memory": {"totalBytes": mem("MemTotal:"), "availableBytes": mem("MemAvailable:")},
            "disk": disk.map(|(total, free)| json!({
                "path": state_dir.display().to_string(),
                "totalBytes": total,
                "availableBytes": free,
            })),
        },
    }))
}

fn disk(dir: &Path) -> Option<(u64, u64)> {
    let st = nix::sys::statvfs::statvfs(dir).ok()?;
    let frag = st.fragment_size() as u64;
    Some((
        st.blocks() as u64 * frag,
        st.blocks_available() as u64 * frag,
    ))
}
