//! Compose project benchmark: time from `up` to every service healthy, and
//! time of `down`, for a 10-service project whose services depend on each
//! other in a chain with health checks (busybox httpd, `interval: 1s`).
//!
//! Side by side in one run, same file, same engine:
//! - Debian's `docker-compose` (1.29) on the Docker Engine (`up -d`, then
//!   waiting for the last service to be healthy; `down`);
//! - `berth up` / `berth down` on the same Docker Engine;
//! - `berth up` / `berth down` on the native runtime (the same chain as
//!   host processes, each httpd on its own port).
//!
//! `cargo bench -p berth --bench projects`. Needs `DOCKER_HOST` (e.g.
//! `eval "$(bash .ci/docker-up)"`), the image `berth-test/busybox:latest`
//! (made by `.ci/docker-up`), `docker-compose` and `busybox` on PATH; a
//! missing peer is reported and its rows skipped.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CHAIN: usize = 10;
const IMAGE: &str = "berth-test/busybox:latest";

fn docker_chain() -> String {
    let mut s = String::from("services:\n");
    for i in 1..=CHAIN {
        s.push_str(&format!(
            "  s{i}:\n    image: {IMAGE}\n    command: [\"sh\", \"-c\", \"echo ok > /www/index.html; exec httpd -f -p 80 -h /www\"]\n    healthcheck:\n      test: [\"CMD\", \"wget\", \"-q\", \"-O\", \"/dev/null\", \"http://127.0.0.1:80/\"]\n      interval: 1s\n      timeout: 2s\n      retries: 30\n"
        ));
        if i > 1 {
            s.push_str(&format!(
                "    depends_on:\n      s{}:\n        condition: service_healthy\n",
                i - 1
            ));
        }
    }
    s
}

fn native_chain(dir: &Path) -> String {
    let mut s = String::from("services:\n");
    let www = dir.join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.html"), "ok\n").unwrap();
    for i in 1..=CHAIN {
        let port = free_port();
        s.push_str(&format!(
            "  s{i}:\n    command: [\"busybox\", \"httpd\", \"-f\", \"-p\", \"127.0.0.1:{port}\", \"-h\", \"{www}\"]\n    healthcheck:\n      test: [\"CMD\", \"busybox\", \"wget\", \"-q\", \"-O\", \"/dev/null\", \"http://127.0.0.1:{port}/\"]\n      interval: 1s\n      timeout: 2s\n      retries: 30\n",
            www = www.display()
        ));
        if i > 1 {
            s.push_str(&format!(
                "    depends_on:\n      s{}:\n        condition: service_healthy\n",
                i - 1
            ));
        }
    }
    s
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn run(cmd: &mut Command) -> Duration {
    let t = Instant::now();
    let out = cmd.output().expect("spawn");
    let took = t.elapsed();
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

fn write_project(root: &Path, name: &str, compose: &str) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("compose.yaml"), compose).unwrap();
    dir
}

struct Row {
    what: &'static str,
    up: Duration,
    down: Duration,
}

/// docker-compose: `up -d` returns once the chain's dependencies were
/// healthy; the last service is then waited for like berth waits for it.
fn compose_run(dir: &Path) -> Row {
    let dc = || {
        let mut c = Command::new("docker-compose");
        c.current_dir(dir).args(["-p", "berthbenchdc", "-f", "compose.yaml"]);
        c
    };
    let t = Instant::now();
    run(dc().args(["up", "-d"]));
    let last = format!("berthbenchdc_s{CHAIN}_1");
    loop {
        let out = Command::new("docker")
            .args(["inspect", "-f", "{{.State.Health.Status}}", &last])
            .output()
            .unwrap();
        if String::from_utf8_lossy(&out.stdout).trim() == "healthy" {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(300), "compose chain never healthy");
        std::thread::sleep(Duration::from_millis(20));
    }
    let up = t.elapsed();
    let down = run(dc().arg("down"));
    Row {
        what: "docker-compose (docker)",
        up,
        down,
    }
}

fn berth_run(berth: &Path, xdg: &Path, dir: &Path, id: &str, runtime: &str, what: &'static str) -> Row {
    let cmd = || {
        let mut c = Command::new(berth);
        c.env("XDG_RUNTIME_DIR", xdg.join("run"))
            .env("XDG_STATE_HOME", xdg.join("state"));
        c
    };
    let up = run(cmd().args([
        "up",
        dir.to_str().unwrap(),
        "--id",
        id,
        "--runtime",
        runtime,
        "--quiet",
    ]));
    let down = run(cmd().args(["down", id]));
    Row { what, up, down }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let berth = PathBuf::from(env!("CARGO_BIN_EXE_berth"));
    let root = tempfile::Builder::new()
        .prefix("berth-bench-projects")
        .tempdir_in("/tmp")
        .unwrap();
    let docker_ok = std::env::var_os("DOCKER_HOST").is_some()
        && Command::new("docker")
            .args(["image", "inspect", IMAGE])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    // One daemon serves both berth runs.
    let daemon = common::start(
        "berth",
        &berth,
        &["daemon"],
        "run/berth/daemon.sock",
        None,
    );
    let xdg = daemon.socket.parent().unwrap().parent().unwrap().parent().unwrap().to_owned();
    let mut rows = Vec::new();
    if docker_ok && have("docker-compose") {
        let dir = write_project(root.path(), "dc", &docker_chain());
        rows.push(compose_run(&dir));
    } else {
        println!("skipped docker-compose: needs DOCKER_HOST, {IMAGE} and docker-compose");
    }
    if docker_ok {
        let dir = write_project(root.path(), "bd", &docker_chain());
        rows.push(berth_run(&berth, &xdg, &dir, "benchdocker", "docker", "berth (docker)"));
    } else {
        println!("skipped berth on docker: needs DOCKER_HOST and {IMAGE}");
    }
    if have("busybox") {
        let dir = root.path().join("bn");
        std::fs::create_dir_all(&dir).unwrap();
        let compose = native_chain(&dir);
        let dir = write_project(root.path(), "bn", &compose);
        rows.push(berth_run(&berth, &xdg, &dir, "benchnative", "native", "berth (native)"));
    } else {
        println!("skipped berth native: needs busybox");
    }
    drop(daemon);
    let base = rows.iter().find(|r| r.what.starts_with("docker-compose"));
    println!("\n10-service healthcheck chain: up = until all healthy, down = stopped and removed\n");
    println!("| runner | up | down | up vs docker-compose | down vs docker-compose |");
    println!("|---|---|---|---|---|");
    for r in &rows {
        let (ru, rd) = match base {
            Some(b) => (
                format!("{:.3}x", r.up.as_secs_f64() / b.up.as_secs_f64()),
                format!("{:.3}x", r.down.as_secs_f64() / b.down.as_secs_f64()),
            ),
            None => ("-".into(), "-".into()),
        };
        println!(
            "| {} | {:.2} s | {:.2} s | {ru} | {rd} |",
            r.what,
            r.up.as_secs_f64(),
            r.down.as_secs_f64()
        );
    }
}
