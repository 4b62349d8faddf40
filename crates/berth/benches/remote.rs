//! Remote protocol benchmark, one run, side by side through a real
//! `berth relay` and a real `berth daemon --relay` on loopback:
//! (a) bytes on the wire to a grid mobile (GRID_SNAPSHOT + GRID_DIFF)
//!     against a raw mobile (PTY_DATA) watching the same session, for a
//!     full-screen program repainting at 20 frames/s and for bulk output;
//! (b) keystroke-to-echo latency through the relay (grid and raw mobiles)
//!     against a direct process-API attach of the same session.
//!
//! `cargo bench -p berth --bench remote`

use berth_client::{Client, StreamFrame};
use berth_wire::daemon::*;
use berth_wire::remote::{
    self, AppMessage, CapReq, Frame, Grid, Hello, Input, Pong, Role, SessionAttach,
};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::{self, Message};

const BERTH: &str = env!("CARGO_BIN_EXE_berth");
const TOKEN: &str = "bench";
const MACHINE: &str = "bench-machine";

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < Duration::from_secs(20), "{what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

type Ws = tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<TcpStream>>;

fn send(ws: &mut Ws, f: Frame) {
    ws.send(Message::Binary(f.encode().into())).unwrap();
}

/// A mobile attached to the session: counts the terminal bytes it gets.
struct Mobile {
    ws: Ws,
    grid: Option<Grid>,
    raw: Vec<u8>,
    terminal_bytes: u64,
    frames: u64,
    refused: bool,
    acked: bool,
}

impl Mobile {
    /// `None` when the relay does not know the session yet.
    fn attach(port: u16, session: &str, grid: bool) -> Option<Mobile> {
        let (ws, _) = tungstenite::connect(format!("ws://127.0.0.1:{port}/")).unwrap();
        if let tungstenite::stream::MaybeTlsStream::Plain(s) = ws.get_ref() {
            s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            s.set_nodelay(true).unwrap();
        }
        let mut m = Mobile {
            ws,
            grid: None,
            raw: Vec::new(),
            terminal_bytes: 0,
            frames: 0,
            refused: false,
            acked: false,
        };
        send(
            &mut m.ws,
            Frame::AppJson(AppMessage::Hello(Hello {
                protocol_version: remote::PROTOCOL_VERSION,
                role: Role::Mobile,
                token: Some(TOKEN.into()),
                supported_versions: None,
                machine_id: None,
                machine_name: None,
                client_name: Some("bench".into()),
            })),
        );
        send(
            &mut m.ws,
            Frame::AppJson(AppMessage::CapReq(CapReq {
                grid,
                max_cols: None,
                max_rows: None,
            })),
        );
        send(
            &mut m.ws,
            Frame::AppJson(AppMessage::SessionAttach(SessionAttach {
                machine_id: MACHINE.into(),
                session_id: session.into(),
            })),
        );
        // Attached once the first paint of the feed arrived.
        m.read_until(|m| m.refused || (m.acked && (!grid || m.grid.is_some())));
        (!m.refused).then_some(m)
    }

    /// Attaches, retrying while the agent has not announced the session.
    fn attach_when_listed(port: u16, session: &str, grid: bool) -> Mobile {
        let t = Instant::now();
        loop {
            if let Some(m) = Mobile::attach(port, session, grid) {
                return m;
            }
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "session never listed"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn read_one(&mut self) {
        let msg = self.ws.read().unwrap();
        let Message::Binary(b) = msg else { return };
        match Frame::decode(&b).unwrap() {
            Frame::AppJson(AppMessage::Error(_)) => self.refused = true,
            Frame::AppJson(AppMessage::CapAck(_)) => self.acked = true,
            Frame::AppJson(AppMessage::Ping(p)) => send(
                &mut self.ws,
                Frame::AppJson(AppMessage::Pong(Pong { ts: p.ts })),
            ),
            Frame::PtyData(d) => {
                self.terminal_bytes += b.len() as u64;
                self.frames += 1;
                self.raw.extend_from_slice(&d);
            }
            Frame::FrameSnapshot { ansi, .. } => {
                self.frames += 1;
                self.raw.extend_from_slice(&ansi);
            }
            Frame::GridSnapshot(s) => {
                self.terminal_bytes += b.len() as u64;
                self.frames += 1;
                self.grid = Some(s.grid);
            }
            Frame::GridDiff(d) => {
                self.terminal_bytes += b.len() as u64;
                self.frames += 1;
                remote::apply(self.grid.as_mut().unwrap(), &d.ops).unwrap();
            }
            _ => {}
        }
    }

    fn read_until(&mut self, f: impl Fn(&Mobile) -> bool) {
        while !f(self) {
            self.read_one();
        }
    }

    fn shows(&self, text: &str) -> bool {
        match &self.grid {
            Some(g) => (0..g.rows).any(|y| {
                g.row(y)
                    .iter()
                    .map(|c| c.text.as_str())
                    .collect::<String>()
                    .contains(text)
            }),
            None => {
                let tail = &self.raw[self.raw.len().saturating_sub(4096)..];
                String::from_utf8_lossy(tail).contains(text)
            }
        }
    }

    fn reset(&mut self) {
        self.terminal_bytes = 0;
        self.frames = 0;
        self.raw.clear();
    }
}

struct Setup {
    _dir: tempfile::TempDir,
    _relay: Proc,
    _daemon: Proc,
    port: u16,
    socket: PathBuf,
}

fn setup() -> Setup {
    let dir = tempfile::Builder::new()
        .prefix("berth-rbench")
        .tempdir_in("/tmp")
        .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let relay = Proc(
        Command::new(BERTH)
            .args(["relay", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--token", TOKEN])
            .env("BERTH_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for("relay did not listen", || {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let daemon = Proc(
        Command::new(BERTH)
            .args(["daemon", "--relay", &format!("ws://127.0.0.1:{port}/")])
            .args(["--relay-token", TOKEN, "--relay-machine-id", MACHINE])
            .env("XDG_RUNTIME_DIR", dir.path().join("run"))
            .env("XDG_STATE_HOME", dir.path().join("state"))
            .env("BERTH_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let socket = dir.path().join("run/berth/daemon.sock");
    wait_for("daemon did not start", || Client::connect(&socket).is_ok());
    Setup {
        _dir: dir,
        _relay: relay,
        _daemon: daemon,
        port,
        socket,
    }
}

fn spawn(socket: &Path, script: &str) -> String {
    Client::connect(socket)
        .unwrap()
        .spawn_pty(SpawnPtySessionRequest {
            argv: vec!["/bin/sh".into(), "-c".into(), script.into()],
            rows: 24,
            cols: 80,
            ..Default::default()
        })
        .unwrap()
        .session_id
}

/// Frames of a `top`-like screen: a header with a clock and load, then 22
/// process rows whose figures change a little every frame. Each frame is a
/// full repaint (home, every row rewritten, clear to end of line), as such
/// programs do.
fn write_repaint_frames(dir: &Path, n: usize) {
    let mut seed: u32 = 12345;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed
    };
    let mut cpu: Vec<u32> = (0..22).map(|i| (i * 7) % 100).collect();
    for f in 0..n {
        let mut s = String::from("\x1b[H");
        s.push_str(&format!(
            "\x1b[1mtop - 12:{:02}:{:02} up 3 days, load average: 0.{:02}, 0.{:02}\x1b[0m\x1b[K\r\n",
            f / 60,
            f % 60,
            rnd() % 100,
            rnd() % 100
        ));
        s.push_str("\x1b[7m  PID USER      PR  NI    VIRT    RES  %CPU  %MEM     TIME+ COMMAND   \x1b[0m\x1b[K\r\n");
        for (i, c) in cpu.iter_mut().enumerate() {
            if rnd() % 4 == 0 {
                *c = rnd() % 100;
            }
            s.push_str(&format!(
                "{:5} user      20   0  {:6}  {:5} \x1b[3{}m{:5}\x1b[0m  {:4}   {:3}:{:02}.{:02} proc-{:<5}\x1b[K",
                1000 + i,
                100_000 + i * 1000,
                5000 + i * 10,
                if *c > 50 { 1 } else { 2 },
                *c,
                i % 10,
                i,
                f % 60,
                f % 100,
                i
            ));
            if i < 21 {
                s.push_str("\r\n");
            }
        }
        std::fs::write(dir.join(format!("frame{f:04}")), s).unwrap();
    }
}

/// Runs the workload started by typing a line, until both mobiles show
/// the marker; returns (grid bytes, raw bytes, grid frames, raw frames).
fn measure(setup: &Setup, script: &str, marker: &str) -> (u64, u64, u64, u64) {
    let id = spawn(&setup.socket, script);
    let mut grid = Mobile::attach_when_listed(setup.port, &id, true);
    let mut raw = Mobile::attach_when_listed(setup.port, &id, false);
    grid.reset();
    raw.reset();
    Client::connect(&setup.socket)
        .unwrap()
        .write_stdin(&id, b"go\n", false)
        .unwrap();
    let marker = marker.to_string();
    let m2 = marker.clone();
    let g = std::thread::spawn(move || {
        grid.read_until(|m| m.shows(&m2));
        grid
    });
    raw.read_until(|m| m.shows(&marker));
    let grid = g.join().unwrap();
    (
        grid.terminal_bytes,
        raw.terminal_bytes,
        grid.frames,
        raw.frames,
    )
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn p90(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() * 9 / 10]
}

/// Keystroke-to-echo through the relay: type one character, wait until
/// the mobile's screen shows it.
fn relay_latency(setup: &Setup, id: &str, grid: bool, n: usize) -> Vec<f64> {
    let mut m = Mobile::attach_when_listed(setup.port, id, grid);
    let mut out = Vec::new();
    for i in 0..n {
        let ch = char::from(b'a' + (i % 26) as u8);
        let want = format!("{}{ch}", marker_prefix(grid, i));
        let t = Instant::now();
        send(
            &mut m.ws,
            Frame::AppJson(AppMessage::Input(Input {
                session_id: id.into(),
                data: format!("{}{ch}\r", marker_prefix(grid, i)),
            })),
        );
        m.read_until(|m| m.shows(&want));
        out.push(t.elapsed().as_secs_f64() * 1e6);
        if std::env::var_os("BENCH_TRACE").is_some() {
            eprintln!("{want} {:?}", t.elapsed());
        }
        // Keystrokes a person types are further apart than a frame.
        std::thread::sleep(Duration::from_millis(50));
    }
    out
}

/// Unique per keystroke and per mobile kind, so no earlier screen matches.
fn marker_prefix(grid: bool, i: usize) -> String {
    format!("{}{i:04}", if grid { 'g' } else { 'r' })
}

/// The same through a direct process-API attach (raw bytes on a Unix
/// socket).
fn direct_latency(setup: &Setup, id: &str, n: usize) -> Vec<f64> {
    let (_, mut s) = Client::connect(&setup.socket)
        .unwrap()
        .attach_pty(AttachPtySessionRequest {
            session_id: id.into(),
            steal: true,
            ..Default::default()
        })
        .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut input = s.input().unwrap();
    let mut out = Vec::new();
    for i in 0..n {
        let want = format!("d{i:04}x");
        let t = Instant::now();
        input
            .send(pty_input_frame::Frame::Input(
                format!("{want}\r").into_bytes(),
            ))
            .unwrap();
        let mut seen = Vec::new();
        while !String::from_utf8_lossy(&seen).contains(&want) {
            match s.next_frame().unwrap() {
                Some(StreamFrame::Pty(PtyStreamFrame {
                    frame: Some(pty_stream_frame::Frame::Output(b)),
                })) => seen.extend(b),
                None => panic!("the attach stream ended"),
                _ => {}
            }
        }
        out.push(t.elapsed().as_secs_f64() * 1e6);
        std::thread::sleep(Duration::from_millis(50));
    }
    out
}

fn main() {
    let setup = setup();
    let dir = tempfile::tempdir().unwrap();
    let frames = 100;
    write_repaint_frames(dir.path(), frames);
    println!("remote protocol v3 through berth relay (loopback), one run\n");

    let repaint = format!(
        "stty -echo; read go; for f in {}/frame*; do cat \"$f\"; sleep 0.05; done; printf '\\033[24;1HREPAINT-DONE'; exec cat >/dev/null",
        dir.path().display()
    );
    let (g, r, gf, rf) = measure(&setup, &repaint, "REPAINT-DONE");
    println!("(a) bytes on the wire, grid mobile vs raw mobile on the same session");
    println!(
        "  full-screen repaint, {frames} frames at 20/s: GRID {g} B in {gf} frames, PTY_DATA {r} B in {rf} frames, ratio {:.3}",
        g as f64 / r as f64
    );
    let (g, r, gf, rf) = measure(
        &setup,
        "stty -echo; read go; seq 1 200000; echo BULK-DONE; exec cat >/dev/null",
        "BULK-DONE",
    );
    println!(
        "  bulk output (seq 1 200000, 1.3 MB): GRID {g} B in {gf} frames, PTY_DATA {r} B in {rf} frames, ratio {:.4}",
        g as f64 / r as f64
    );

    let n: usize = std::env::var("BENCH_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let id = spawn(&setup.socket, "exec cat");
    eprintln!("latency: relay, grid");
    let mut grid = relay_latency(&setup, &id, true, n);
    eprintln!("latency: relay, raw");
    let mut raw = relay_latency(&setup, &id, false, n);
    eprintln!("latency: direct");
    let mut direct = direct_latency(&setup, &id, n);
    println!("\n(b) keystroke-to-echo latency, {n} keystrokes each (µs)");
    for (name, v) in [
        ("relay, grid mobile", &mut grid),
        ("relay, raw mobile", &mut raw),
        ("direct process-API attach", &mut direct),
    ] {
        println!("  {name:28} p50 {:8.0}  p90 {:8.0}", median(v), p90(v));
    }
    println!(
        "  ratio relay/direct p50: grid {:.2}x, raw {:.2}x",
        median(&mut grid) / median(&mut direct),
        median(&mut raw) / median(&mut direct)
    );
}
