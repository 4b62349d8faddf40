//! Guest-API benchmark (seed 002): requests per second and p50/p99
//! latency of `GET /health` and a small `exec` (`true`), through
//! `berth host-api`'s per-VM socket and directly on the guest daemon's
//! `guest.sock`, in one run, alternating rounds so both paths see the same
//! machine noise. One request per connection, as the seed has it.
//!
//! `cargo bench -p berth --bench guest_api` (add `--profile dev` to skip
//! the release build; the table says which binary was measured).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BERTH: &str = env!("CARGO_BIN_EXE_berth");
const HEALTH_PER_ROUND: usize = 1000;
const EXEC_PER_ROUND: usize = 100;
const ROUNDS: usize = 5;

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(dir: &Path, args: &[&str]) -> Killed {
    Killed(
        Command::new(BERTH)
            .args(args)
            .env_remove("BERTH_SOCKET")
            .env_remove("BERTH_SCOPE")
            .env("XDG_RUNTIME_DIR", dir.join("run"))
            .env("XDG_STATE_HOME", dir.join("state"))
            .env("BERTH_GUEST_VSOCK", "off")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("berth runs"),
    )
}

fn wait_for(sock: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while UnixStream::connect(sock).is_err() {
        assert!(
            Instant::now() < deadline,
            "{} never answered",
            sock.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// One request, read until the server closes; checks for a 200.
fn call(sock: &Path, req: &[u8]) {
    let mut s = UnixStream::connect(sock).unwrap();
    s.write_all(req).unwrap();
    let mut out = Vec::with_capacity(512);
    s.read_to_end(&mut out).unwrap();
    assert!(
        out.starts_with(b"HTTP/1.1 200 "),
        "{}",
        String::from_utf8_lossy(&out)
    );
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let dir = tempfile::Builder::new()
        .prefix("berth-gb")
        .tempdir_in("/tmp")
        .unwrap();
    let guest: PathBuf = dir.path().join("run/berth/guest.sock");
    let host: PathBuf = dir.path().join("run/berth/api/bench.berth.sock");
    let _daemon = spawn(dir.path(), &["daemon"]);
    wait_for(&guest);
    let connect = format!("unix://{}", guest.display());
    let _proxy = spawn(
        dir.path(),
        &["host-api", "--vm", "bench", "--connect", &connect],
    );
    wait_for(&host);

    let health = b"GET /health HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n".to_vec();
    let body = br#"{"command":"true"}"#;
    let mut exec = format!(
        "POST /api/v1/exec HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    exec.extend_from_slice(body);

    let cases: [(&str, &[u8], usize); 2] = [
        ("GET /health", &health, HEALTH_PER_ROUND),
        ("POST /api/v1/exec true", &exec, EXEC_PER_ROUND),
    ];
    let paths = [("host proxy", &host), ("guest.sock direct", &guest)];
    println!("binary: {BERTH}");
    println!("| request | path | requests/s | p50 | p99 |");
    println!("|---|---|---:|---:|---:|");
    for (name, req, n) in cases {
        for (_, sock) in paths {
            for _ in 0..n / 10 {
                call(sock, req);
            }
        }
        let mut lat = [Vec::new(), Vec::new()];
        let mut busy = [Duration::ZERO; 2];
        for _ in 0..ROUNDS {
            for (i, (_, sock)) in paths.iter().enumerate() {
                let round = Instant::now();
                for _ in 0..n {
                    let t = Instant::now();
                    call(sock, req);
                    lat[i].push(t.elapsed());
                }
                busy[i] += round.elapsed();
            }
        }
        for (i, (label, _)) in paths.iter().enumerate() {
            lat[i].sort();
            let rps = lat[i].len() as f64 / busy[i].as_secs_f64();
            println!(
                "| {name} | {label} | {rps:.0} | {:.0} µs | {:.0} µs |",
                percentile(&lat[i], 0.50).as_secs_f64() * 1e6,
                percentile(&lat[i], 0.99).as_secs_f64() * 1e6,
            );
        }
    }
}
