//! Session benchmark, one run, side by side:
//! (a) PTY output throughput of a child writing 256 MiB with one attached
//!     client (exact screen model running), against reading the PTY
//!     directly (the limit), tmux with an attached client, and the published
//!     running-process daemon's attach; and each daemon's (and tmux's) CPU
//!     per GiB relayed, with ratios; for text lines and for full-screen
//!     redraws (which no screen-model shortcut can skip);
//! (b) spawn-to-first-byte latency; (c) re-attach latency with a full 1 MiB
//!     backlog, raw and (berth) with screen restore; (d) RSS per idle
//!     session over 200 sessions.
//!
//! `cargo bench -p berth --bench sessions` (BENCH_MIB overrides the 256;
//! BENCH_PEERS=tmux,reference / none, BENCH_PARTS=a and
//! BENCH_WORKLOADS=text / redraws run a part of it; BENCH_BERTH_BEFORE=PATH
//! also measures another berth binary, an earlier build, in the same run,
//! so a change is measured against what it replaces under the same load;
//! BENCH_BERTH=PATH measures that binary instead of the one cargo built).

mod common;

use berth_client::{AttachStream, Client, StreamFrame};
use berth_wire::daemon::*;
use common::{cpu_secs, peer, rss_kib, start, Daemon};
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A text file of `mib` MiB of 99-character lines, and the shell command
/// that writes it `times` times.
fn workload(dir: &Path, times: usize) -> String {
    let file = dir.join("chunk.txt");
    let line = "0123456789 the quick brown fox jumps over the lazy dog; berth pty throughput benchmark line ....\n";
    let mut text = String::new();
    while text.len() < (1 << 20) {
        text.push_str(line);
    }
    std::fs::write(&file, &text[..1 << 20]).unwrap();
    format!(
        "i=0; while [ $i -lt {times} ]; do cat {}; i=$((i+1)); done",
        file.display()
    )
}

/// A 1 MiB file of full-screen redraws (cursor home, 50 rows of coloured
/// cells with erase-to-end-of-line, like htop or vim repainting), and the
/// command that writes it `times` times: output the screen model cannot
/// skip over, so it measures the cost of parsing every byte.
fn redraw_workload(dir: &Path, times: usize) -> String {
    let file = dir.join("redraw.bin");
    let mut v = Vec::new();
    let mut frame = 0usize;
    while v.len() < (1 << 20) {
        v.extend_from_slice(b"\x1b[H");
        for row in 0..50 {
            v.extend_from_slice(format!("\x1b[{};1H", row + 1).as_bytes());
            for cell in 0..12 {
                let c = (frame + row + cell) % 8;
                v.extend_from_slice(
                    format!(
                        "\x1b[3{c};48;5;{}m{:>5} item {:<6}",
                        232 + c,
                        row * 12 + cell,
                        frame
                    )
                    .as_bytes(),
                );
            }
            v.extend_from_slice(b"\x1b[m\x1b[K");
        }
        frame += 1;
    }
    v.truncate(1 << 20);
    std::fs::write(&file, &v).unwrap();
    format!(
        "i=0; while [ $i -lt {times} ]; do cat {}; i=$((i+1)); done",
        file.display()
    )
}

/// Drains an attach stream until the exit frame; returns bytes received.
fn drain(s: &mut AttachStream) -> u64 {
    let mut n = 0u64;
    while let Some(f) = s.next_frame().unwrap() {
        match f {
            StreamFrame::Pty(PtyStreamFrame {
                frame: Some(pty_stream_frame::Frame::Output(b)),
            }) => n += b.len() as u64,
            StreamFrame::Pty(PtyStreamFrame {
                frame: Some(pty_stream_frame::Frame::MissedBytes(m)),
            }) => n += m,
            StreamFrame::Pty(PtyStreamFrame {
                frame: Some(pty_stream_frame::Frame::ExitCode(_)),
            }) => break,
            StreamFrame::Pty(PtyStreamFrame {
                frame: Some(pty_stream_frame::Frame::Error(e)),
            }) => panic!("{e}"),
            _ => {}
        }
    }
    n
}

/// CPU seconds of `pid`'s threads named `name` (the screen worker).
fn thread_cpu_secs(pid: u32, name: &str) -> f64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0.0;
    };
    tasks
        .flatten()
        .filter_map(|t| {
            let stat = std::fs::read_to_string(t.path().join("stat")).ok()?;
            let (head, rest) = stat.rsplit_once(')')?;
            if head.split_once('(')?.1 != name {
                return None;
            }
            let f: Vec<&str> = rest.split_whitespace().collect();
            let ticks: u64 = f[11].parse::<u64>().ok()? + f[12].parse::<u64>().ok()?;
            Some(ticks as f64 / 100.0)
        })
        .sum()
}

/// (a) through a daemon: bytes/s and daemon CPU seconds.
fn daemon_throughput(d: &Daemon, cmd: &str) -> (f64, f64, u64) {
    let mut c = Client::connect(&d.socket).unwrap();
    let argv = vec![
        "/bin/sh".into(),
        "-c".into(),
        format!("stty -echo; read go; {cmd}"),
    ];
    let id = c
        .spawn_pty(SpawnPtySessionRequest {
            argv,
            rows: 50,
            cols: 200,
            ..Default::default()
        })
        .unwrap()
        .session_id;
    std::thread::sleep(Duration::from_millis(200));
    let (_, mut s) = Client::connect(&d.socket)
        .unwrap()
        .attach_pty(AttachPtySessionRequest {
            session_id: id.clone(),
            rows: 50,
            cols: 200,
            ..Default::default()
        })
        .unwrap();
    let cpu0 = cpu_secs(d.child.id());
    let model0 = thread_cpu_secs(d.child.id(), "berth-screen");
    let t = Instant::now();
    s.input()
        .unwrap()
        .send(pty_input_frame::Frame::Input(b"\r".to_vec()))
        .unwrap();
    let n = drain(&mut s);
    let secs = t.elapsed().as_secs_f64();
    let model = thread_cpu_secs(d.child.id(), "berth-screen") - model0;
    if model > 0.0 {
        println!(
            "    (of which the screen model: {:.2} s/GiB)",
            model / (n as f64 / (1u64 << 30) as f64)
        );
    }
    (n as f64 / secs, cpu_secs(d.child.id()) - cpu0, n)
}

/// (a) the limit: this process reads the PTY master directly; bytes/s and
/// the reader's CPU seconds (the floor of any relay's cost: every byte has
/// to be read from the PTY once).
fn direct_throughput(cmd: &str) -> (f64, f64, u64) {
    let pair = berth_os::pty::open(berth_os::pty::WinSize {
        rows: 50,
        cols: 200,
    })
    .unwrap();
    let mut c = Command::new("/bin/sh");
    c.args(["-c", cmd]);
    berth_os::pty::attach_command(&mut c, &pair.slave).unwrap();
    // Blocking reads for the simplest possible reader.
    {
        use nix::fcntl::{fcntl, FcntlArg, OFlag};
        let flags = fcntl(&pair.master, FcntlArg::F_GETFL).unwrap();
        let blocking = OFlag::from_bits_truncate(flags) - OFlag::O_NONBLOCK;
        fcntl(&pair.master, FcntlArg::F_SETFL(blocking)).unwrap();
    }
    let cpu0 = cpu_secs(std::process::id());
    let t = Instant::now();
    let mut child = c.spawn().unwrap();
    // The Command holds copies of the slave; all must close for EOF.
    drop(c);
    drop(pair.slave);
    let mut f = std::fs::File::from(pair.master);
    let mut buf = vec![0u8; 64 * 1024];
    let mut n = 0u64;
    while let Ok(k) = f.read(&mut buf) {
        if k == 0 {
            break;
        }
        n += k as u64;
    }
    let secs = t.elapsed().as_secs_f64();
    let cpu = cpu_secs(std::process::id()) - cpu0;
    child.wait().unwrap();
    (n as f64 / secs, cpu, n)
}

/// (a) tmux with an attached client (under `script`, output discarded):
/// bytes/s and the tmux server's CPU seconds.
fn tmux_throughput(dir: &Path, cmd: &str, bytes: u64) -> Option<(f64, f64)> {
    Command::new("tmux").arg("-V").output().ok()?;
    Command::new("script").arg("--version").output().ok()?;
    let sock = dir.join("tmux.sock");
    let go = dir.join("go");
    let tmux = |args: &[&str]| {
        Command::new("tmux")
            .arg("-S")
            .arg(&sock)
            .args(args)
            .status()
            .unwrap()
    };
    let script = format!(
        "while [ ! -e {} ]; do sleep 0.01; done; {cmd}; tmux -S {} wait-for -S done",
        go.display(),
        sock.display()
    );
    tmux(&[
        "new-session",
        "-d",
        "-s",
        "b",
        "-x",
        "200",
        "-y",
        "50",
        &script,
    ]);
    let mut client = Command::new("script")
        .args([
            "-qfc",
            &format!("tmux -S {} attach -t b", sock.display()),
            "/dev/null",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .ok()?;
    std::thread::sleep(Duration::from_millis(500));
    let server: u32 = String::from_utf8_lossy(
        &Command::new("tmux")
            .arg("-S")
            .arg(&sock)
            .args(["display", "-p", "#{pid}"])
            .output()
            .ok()?
            .stdout,
    )
    .trim()
    .parse()
    .ok()?;
    let cpu0 = cpu_secs(server);
    let t = Instant::now();
    std::fs::write(&go, b"").unwrap();
    tmux(&["wait-for", "done"]);
    let secs = t.elapsed().as_secs_f64();
    let cpu = cpu_secs(server) - cpu0;
    let _ = tmux(&["kill-server"]);
    let _ = client.kill();
    let _ = client.wait();
    let _ = std::fs::remove_file(&go);
    Some((bytes as f64 / secs, cpu))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// (b) spawn request to first output byte at a client, median of 30.
fn spawn_to_first_byte(d: &Daemon) -> f64 {
    let mut v = Vec::new();
    for _ in 0..30 {
        let t = Instant::now();
        let id = Client::connect(&d.socket)
            .unwrap()
            .spawn_pty(SpawnPtySessionRequest {
                argv: vec!["/bin/sh".into(), "-c".into(), "printf X; sleep 5".into()],
                ..Default::default()
            })
            .unwrap()
            .session_id;
        let (r, mut s) = Client::connect(&d.socket)
            .unwrap()
            .attach_pty(AttachPtySessionRequest {
                session_id: id.clone(),
                ..Default::default()
            })
            .unwrap();
        if !r.backlog.contains(&b'X') {
            loop {
                if let Some(StreamFrame::Pty(PtyStreamFrame {
                    frame: Some(pty_stream_frame::Frame::Output(b)),
                })) = s.next_frame().unwrap()
                {
                    if b.contains(&b'X') {
                        break;
                    }
                }
            }
        }
        v.push(t.elapsed().as_secs_f64() * 1000.0);
        drop(s);
        let _ = Client::connect(&d.socket).unwrap().terminate_pty(&id, 10);
    }
    median(v)
}

/// (c) attach latency to sessions holding a full 1 MiB backlog: the first
/// attach of each of 7 sessions (a daemon that drains its backlog on attach
/// is measured fairly), median. `None` if the daemon returned no backlog.
fn reattach(d: &Daemon, cmd: &str, screen: bool) -> Option<f64> {
    let mut c = Client::connect(&d.socket).unwrap();
    let ids: Vec<String> = (0..7)
        .map(|_| {
            c.spawn_pty(SpawnPtySessionRequest {
                argv: vec!["/bin/sh".into(), "-c".into(), format!("{cmd}; sleep 60")],
                rows: 50,
                cols: 200,
                ..Default::default()
            })
            .unwrap()
            .session_id
        })
        .collect();
    std::thread::sleep(Duration::from_millis(2500));
    let mut v = Vec::new();
    for id in &ids {
        let t = Instant::now();
        let (r, s) = Client::connect(&d.socket)
            .unwrap()
            .attach_pty(AttachPtySessionRequest {
                session_id: id.clone(),
                screen_restore: screen,
                ..Default::default()
            })
            .ok()?;
        v.push(t.elapsed().as_secs_f64() * 1000.0);
        drop(s);
        if r.backlog.is_empty() {
            return None;
        }
    }
    for id in &ids {
        let _ = c.terminate_pty(id, 10);
    }
    Some(median(v))
}

/// (d) RSS growth per idle PTY session, over 200; and the daemon's RSS
/// before them (KiB).
fn rss_per_session(d: &Daemon) -> (f64, u64) {
    let before = rss_kib(d.child.id());
    let mut c = Client::connect(&d.socket).unwrap();
    let mut ids = Vec::new();
    for _ in 0..200 {
        ids.push(
            c.spawn_pty(SpawnPtySessionRequest {
                argv: vec![
                    "/bin/sh".into(),
                    "-c".into(),
                    "printf '$ '; exec sleep 3600".into(),
                ],
                ..Default::default()
            })
            .unwrap()
            .session_id,
        );
    }
    std::thread::sleep(Duration::from_millis(1500));
    let after = rss_kib(d.child.id());
    for id in ids {
        let _ = c.terminate_pty(&id, 10);
    }
    ((after.saturating_sub(before)) as f64 / 200.0, before)
}

/// (a) one workload through every peer, printed side by side with the
/// ratios the issue asks for (throughput to the direct read, daemon CPU per
/// GiB to the reference's).
fn throughput(
    dir: &Path,
    what: &str,
    cmd: &str,
    mib: usize,
    berth: &Daemon,
    before: Option<&Daemon>,
    reference: Option<&Daemon>,
) {
    let bytes = (mib as u64) << 20;
    let gib = |n: u64| n as f64 / (1u64 << 30) as f64;
    println!("(a) PTY throughput, {mib} MiB of {what}, one attached client (MB/s; ratio to direct; CPU per GiB relayed)");
    let (direct, dcpu, dn) = direct_throughput(cmd);
    println!(
        "    {:<26} {:>9.0}  1.00   reader CPU {:.2} s/GiB",
        "direct read (the limit)",
        direct / 1e6,
        dcpu / gib(dn)
    );
    let (bt, bcpu, bn) = daemon_throughput(berth, cmd);
    assert!(bn >= bytes, "berth delivered {bn} of {bytes}");
    let b_per_gib = bcpu / gib(bn);
    println!(
        "    {:<26} {:>9.0}  {:.2}   daemon CPU {:.2} s/GiB",
        "berth (exact screen model)",
        bt / 1e6,
        bt / direct,
        b_per_gib
    );
    if let Some(b) = before {
        let (t, cpu, n) = daemon_throughput(b, cmd);
        println!(
            "    {:<26} {:>9.0}  {:.2}   daemon CPU {:.2} s/GiB (after {:.2}x)",
            "berth before (BENCH_BERTH_BEFORE)",
            t / 1e6,
            t / direct,
            cpu / gib(n),
            b_per_gib / (cpu / gib(n))
        );
    }
    if !wanted("tmux") {
        println!("    tmux: left out (BENCH_PEERS)");
    } else {
        match tmux_throughput(dir, cmd, bytes) {
            Some((tm, tcpu)) => println!(
                "    {:<26} {:>9.0}  {:.2}   server CPU {:.2} s/GiB (berth {:.2}x)",
                "tmux, client attached",
                tm / 1e6,
                tm / direct,
                tcpu / gib(bytes),
                b_per_gib / (tcpu / gib(bytes))
            ),
            None => println!("    tmux: not installed"),
        }
    }
    if let Some(r) = reference {
        let (rt, rcpu, rn) = daemon_throughput(r, cmd);
        let per_gib = rcpu / gib(rn);
        println!(
            "    {:<26} {:>9.0}  {:.2}   daemon CPU {:.2} s/GiB (berth {:.2}x)",
            r.name,
            rt / 1e6,
            rt / direct,
            per_gib,
            b_per_gib / per_gib
        );
    }
}

/// Whether `peer` ("tmux", "reference") is measured: all unless
/// `BENCH_PEERS` lists some (comma-separated; "none" for berth alone).
fn wanted(peer: &str) -> bool {
    std::env::var("BENCH_PEERS").map_or(true, |v| v.split(',').any(|p| p == peer))
}

/// Whether part `part` ("a".."d") runs: all unless `BENCH_PARTS` lists
/// some (e.g. `a`); `BENCH_WORKLOADS` likewise picks "text" / "redraws".
fn part(var: &str, name: &str) -> bool {
    std::env::var(var).map_or(true, |v| v.split(',').any(|p| p == name))
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let mib: usize = std::env::var("BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let tmp = tempfile::tempdir().unwrap();
    let cmd = workload(tmp.path(), mib);
    // BENCH_BERTH: a copy of the binary, so a rebuild can go on meanwhile.
    let program = std::env::var_os("BENCH_BERTH").map_or_else(
        || env!("CARGO_BIN_EXE_berth").into(),
        std::path::PathBuf::from,
    );
    let berth = start(
        "berth",
        &program,
        &["daemon"],
        "run/berth/daemon.sock",
        None,
    );
    let before = std::env::var_os("BENCH_BERTH_BEFORE").map(|p| {
        start(
            "berth before",
            Path::new(&p),
            &["daemon"],
            "run/berth/daemon.sock",
            None,
        )
    });
    let reference = peer().filter(|_| wanted("reference")).map(|p| {
        start(
            "running-process-daemon",
            &p,
            &["start"],
            "run/running-process/daemon.sock",
            None,
        )
    });

    let redraw = redraw_workload(tmp.path(), mib);
    for (key, what, cmd) in [
        ("text", "text lines", &cmd),
        ("redraws", "full-screen redraws", &redraw),
    ] {
        if part("BENCH_PARTS", "a") && part("BENCH_WORKLOADS", key) {
            throughput(
                tmp.path(),
                what,
                cmd,
                mib,
                &berth,
                before.as_ref(),
                reference.as_ref(),
            );
        }
    }
    if !part("BENCH_PARTS", "b") {
        return;
    }

    println!("(b) spawn to first byte, median of 30 (ms)");
    let b_first = spawn_to_first_byte(&berth);
    print!("    berth {b_first:.2}");
    if let Some(r) = &reference {
        let r_first = spawn_to_first_byte(r);
        print!(
            "   {} {r_first:.2}   ratio {:.2}x",
            r.name,
            b_first / r_first
        );
    }
    println!();

    println!("(c) re-attach with a full 1 MiB backlog, median of 20 (ms)");
    let fill = "head -c 2000000 /dev/urandom | base64 -w 120";
    let raw = reattach(&berth, fill, false).unwrap();
    let screen = reattach(&berth, fill, true).unwrap();
    print!("    berth raw {raw:.2}   berth screen restore {screen:.2}");
    if let Some(b) = &before {
        let screen = reattach(b, fill, true).unwrap();
        print!("   berth before: screen restore {screen:.2}");
    }
    if let Some(r) = &reference {
        match reattach(r, fill, false) {
            Some(rr) => print!("   {} raw {rr:.2}   ratio raw {:.2}x", r.name, raw / rr),
            None => print!("   {}: no backlog in its attach reply", r.name),
        }
    }
    println!();

    println!("(d) RSS per idle PTY session over 200 (KiB; the daemon's RSS before them)");
    let (b_rss, b_base) = rss_per_session(&berth);
    print!("    berth {b_rss:.1} ({b_base})");
    if let Some(b) = &before {
        let (rss, base) = rss_per_session(b);
        print!("   berth before {rss:.1} ({base})");
    }
    if let Some(r) = &reference {
        let (r_rss, r_base) = rss_per_session(r);
        print!(
            "   {} {r_rss:.1} ({r_base})   ratio {:.2}x",
            r.name,
            b_rss / r_rss
        );
    }
    println!();
}
