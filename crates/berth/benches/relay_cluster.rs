//! Clustered relay benchmark (issue 14), one run, on loopback, against a
//! `nats-server` started here:
//! (a) keystroke-to-echo through one relay against two relays over NATS:
//!     a real `berth daemon` linked to relay A; a mobile on A, then one on
//!     B (p50 / p99);
//! (b) frames per second through the cluster: a simulated agent on A
//!     streaming PTY_DATA as fast as the path takes it to a mobile on B;
//! (c) scale: 100 simulated agents and 1000 simulated mobiles spread over
//!     three relays (each session watched from all three), streaming at
//!     BENCH_FPS (10) frames/s per session: relay memory per connection,
//!     relay CPU per 1000 delivered frames, and the reconnect storm after
//!     kill -9 of one relay (time until every mobile gets frames again).
//!
//! `cargo bench -p berth --bench relay_cluster` (needs `nats-server`).

use berth_client::Client;
use berth_wire::daemon::*;
use berth_wire::remote::{
    self, AppMessage, CapAck, CapReq, Frame, Hello, Input, Machine, MachineList, Pong, Role,
    SessionAttach, SessionInfo,
};
use futures_util::{SinkExt, StreamExt};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::{self, Message};

const BERTH: &str = env!("CARGO_BIN_EXE_berth");
const TOKEN: &str = "bench";

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Proc {
    fn pid(&self) -> u32 {
        self.0.id()
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < Duration::from_secs(30), "{what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn listening(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_ok()
}

fn nats() -> (Proc, String) {
    let port = free_port();
    let p = Proc(
        Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server is needed (apt-get install nats-server)"),
    );
    wait_for("nats-server did not listen", || listening(port));
    (p, format!("nats://127.0.0.1:{port}"))
}

struct Relay {
    proc: Proc,
    port: u16,
}

impl Relay {
    fn start(nats: Option<&str>) -> Relay {
        let port = free_port();
        let mut c = Command::new(BERTH);
        c.args(["relay", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--token", TOKEN])
            .env("BERTH_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if std::env::var_os("BENCH_TRACE").is_some() {
            let log = std::fs::File::create(format!("/tmp/berth-bench-relay-{port}.log")).unwrap();
            c.env("BERTH_LOG", "info").stderr(log);
        }
        if let Some(n) = nats {
            c.args(["--cluster", n]);
        }
        let proc = Proc(c.spawn().unwrap());
        wait_for("relay did not listen", || listening(port));
        Relay { proc, port }
    }

    fn url(&self) -> String {
        format!("ws://127.0.0.1:{}/", self.port)
    }
}

/// Resident set (KiB) and CPU time (ms) of a process, from /proc.
fn rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn cpu_ms(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = s.rsplit_once(')').map_or("", |(_, a)| a);
    let f: Vec<u64> = after
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // utime and stime are fields 14 and 15 (11 and 12 after the name), in
    // clock ticks of 10 ms.
    (f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0)) * 10
}

fn pct(v: &mut [f64], p: usize) -> f64 {
    v.sort_by(f64::total_cmp);
    v[(v.len() * p / 100).min(v.len() - 1)]
}

// ---------------------------------------------------------------- (a)

type Ws = tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<TcpStream>>;

fn send(ws: &mut Ws, f: Frame) {
    ws.send(Message::Binary(f.encode().into())).unwrap();
}

fn hello(role: Role, machine: Option<&str>) -> Frame {
    Frame::AppJson(AppMessage::Hello(Hello {
        protocol_version: remote::PROTOCOL_VERSION,
        role,
        token: Some(TOKEN.into()),
        supported_versions: None,
        machine_id: machine.map(String::from),
        machine_name: machine.map(String::from),
        client_name: Some("bench".into()),
    }))
}

/// A raw mobile on `port` attached to `session` of `machine`, once listed.
fn raw_mobile(port: u16, machine: &str, session: &str) -> Ws {
    let t = Instant::now();
    loop {
        let (mut ws, _) = tungstenite::connect(format!("ws://127.0.0.1:{port}/")).unwrap();
        if let tungstenite::stream::MaybeTlsStream::Plain(s) = ws.get_ref() {
            s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            s.set_nodelay(true).unwrap();
        }
        send(&mut ws, hello(Role::Mobile, None));
        let mut listed = false;
        while !listed {
            let Message::Binary(b) = ws.read().unwrap() else {
                continue;
            };
            if let Ok(Frame::AppJson(AppMessage::MachineList(l))) = Frame::decode(&b) {
                listed = l.machines.iter().any(|m| {
                    m.id == machine && m.online && m.sessions.iter().any(|s| s.id == session)
                });
                if !listed {
                    break;
                }
            }
        }
        if listed {
            send(
                &mut ws,
                Frame::AppJson(AppMessage::CapReq(CapReq {
                    grid: false,
                    max_cols: None,
                    max_rows: None,
                })),
            );
            send(
                &mut ws,
                Frame::AppJson(AppMessage::SessionAttach(SessionAttach {
                    machine_id: machine.into(),
                    session_id: session.into(),
                })),
            );
            // Attached once the feed's first paint arrived.
            loop {
                let Message::Binary(b) = ws.read().unwrap() else {
                    continue;
                };
                if matches!(Frame::decode(&b), Ok(Frame::FrameSnapshot { .. })) {
                    return ws;
                }
            }
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "session never listed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Keystroke-to-echo (µs) through a raw mobile: type a unique word, wait
/// until PTY_DATA carries it back.
fn echo_latency(ws: &mut Ws, session: &str, n: usize, tag: char) -> Vec<f64> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let word = format!("{tag}{i:05}");
        let t = Instant::now();
        send(
            ws,
            Frame::AppJson(AppMessage::Input(Input {
                session_id: session.into(),
                data: format!("{word}\r"),
            })),
        );
        let mut seen = Vec::new();
        while !String::from_utf8_lossy(&seen).contains(&word) {
            let Message::Binary(b) = ws.read().unwrap() else {
                continue;
            };
            match Frame::decode(&b) {
                Ok(Frame::PtyData(d)) => seen.extend_from_slice(&d),
                Ok(Frame::AppJson(AppMessage::Ping(p))) => {
                    send(ws, Frame::AppJson(AppMessage::Pong(Pong { ts: p.ts })))
                }
                _ => {}
            }
        }
        out.push(t.elapsed().as_secs_f64() * 1e6);
        std::thread::sleep(Duration::from_millis(20));
    }
    out
}

fn latency(nats_url: &str, n: usize) {
    let a = Relay::start(Some(nats_url));
    let b = Relay::start(Some(nats_url));
    let dir = tempfile::Builder::new()
        .prefix("berth-cbench")
        .tempdir_in("/tmp")
        .unwrap();
    let _daemon = Proc(
        Command::new(BERTH)
            .args(["daemon", "--relay", &a.url()])
            .args(["--relay-token", TOKEN, "--relay-machine-id", "lat"])
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
    let id = Client::connect(&socket)
        .unwrap()
        .spawn_pty(SpawnPtySessionRequest {
            argv: vec!["/bin/sh".into(), "-c".into(), "exec cat".into()],
            rows: 24,
            cols: 80,
            ..Default::default()
        })
        .unwrap()
        .session_id;
    let mut one = raw_mobile(a.port, "lat", &id);
    let mut one_v = echo_latency(&mut one, &id, n, 'a');
    drop(one);
    let mut two = raw_mobile(b.port, "lat", &id);
    let mut two_v = echo_latency(&mut two, &id, n, 'b');
    println!("(a) keystroke-to-echo, real daemon on relay A, {n} keystrokes each (µs)");
    let (p50a, p99a) = (pct(&mut one_v, 50), pct(&mut one_v, 99));
    let (p50b, p99b) = (pct(&mut two_v, 50), pct(&mut two_v, 99));
    println!("  one relay (mobile on A)            p50 {p50a:8.0}  p99 {p99a:8.0}");
    println!("  two relays over NATS (mobile on B) p50 {p50b:8.0}  p99 {p99b:8.0}");
    println!(
        "  extra hop: p50 {:+.0} µs, p99 {:+.0} µs",
        p50b - p50a,
        p99b - p99a
    );
}

// ------------------------------------------------------- simulated peers

type AWs =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn bin(f: &Frame) -> Message {
    Message::Binary(f.encode().into())
}

async fn open(url: &str, h: Frame) -> Option<AWs> {
    let (mut ws, _) = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::connect_async(url),
    )
    .await
    .ok()?
    .ok()?;
    ws.send(bin(&h)).await.ok()?;
    Some(ws)
}

fn jitter(i: usize) -> Duration {
    Duration::from_millis((i as u64).wrapping_mul(2_654_435_761) % 250)
}

/// Ticks every feed waits on: one frame per tick.
type Tick = tokio::sync::watch::Receiver<u64>;

/// A simulated agent: one machine with one session; reconnects to the
/// next URL when its relay goes away, as `berth daemon` does.
async fn sim_agent(i: usize, urls: Vec<String>, tick: Tick) {
    let machine = format!("sim{i:03}");
    let session = format!("s{i:03}");
    let mut k = 0;
    loop {
        let url = urls[k % urls.len()].clone();
        k += 1;
        if let Some(mut ws) = open(&url, hello(Role::Agent, Some(&machine))).await {
            let list = Frame::AppJson(AppMessage::MachineList(MachineList {
                machines: vec![Machine {
                    id: machine.clone(),
                    name: machine.clone(),
                    online: true,
                    sessions: vec![SessionInfo {
                        id: session.clone(),
                        title: "sim".into(),
                        cols: 80,
                        rows: 24,
                    }],
                }],
            }));
            if ws.send(bin(&list)).await.is_ok() {
                while let Some(Ok(Message::Binary(b))) = ws.next().await {
                    match Frame::decode(&b) {
                        Ok(Frame::AppJson(AppMessage::Ping(p))) => {
                            let _ = ws
                                .send(bin(&Frame::AppJson(AppMessage::Pong(Pong { ts: p.ts }))))
                                .await;
                        }
                        Ok(Frame::AppJson(AppMessage::SessionAttach(_))) => {
                            tokio::spawn(sim_feed(
                                url.clone(),
                                machine.clone(),
                                session.clone(),
                                tick.clone(),
                            ));
                        }
                        _ => {}
                    }
                }
            }
        }
        tokio::time::sleep(jitter(i)).await;
    }
}

async fn sim_feed(url: String, machine: String, session: String, mut tick: Tick) {
    let Some(mut ws) = open(&url, hello(Role::Agent, Some(&machine))).await else {
        return;
    };
    let paint = bin(&Frame::FrameSnapshot {
        id: session.clone(),
        ansi: b"\x1b[H\x1b[2Jsim".to_vec(),
    });
    let start = [
        bin(&Frame::AppJson(AppMessage::SessionAttach(SessionAttach {
            machine_id: machine.clone(),
            session_id: session.clone(),
        }))),
        bin(&Frame::AppJson(AppMessage::CapAck(CapAck {
            grid: false,
            max_cols: 80,
            max_rows: 24,
        }))),
        paint.clone(),
    ];
    for m in start {
        if ws.send(m).await.is_err() {
            return;
        }
    }
    loop {
        tokio::select! {
            r = tick.changed() => {
                if r.is_err() {
                    return;
                }
                let n = *tick.borrow();
                let data = format!("\r\x1b[Kframe {n:08} of {session}\r\n").into_bytes();
                if ws.send(bin(&Frame::PtyData(data))).await.is_err() {
                    return;
                }
            }
            m = ws.next() => match m {
                Some(Ok(Message::Binary(b))) => match Frame::decode(&b) {
                    Ok(Frame::AppJson(AppMessage::Ping(p))) => {
                        let _ = ws.send(bin(&Frame::AppJson(AppMessage::Pong(Pong { ts: p.ts })))).await;
                    }
                    Ok(Frame::AppJson(AppMessage::SnapshotReq(_))) => {
                        let _ = ws.send(paint.clone()).await;
                    }
                    _ => {}
                },
                Some(Ok(_)) => {}
                _ => return,
            }
        }
    }
}

/// What the simulated mobiles saw.
struct MobileStats {
    frames: AtomicU64,
    /// Per mobile: µs since `epoch` of the last terminal frame.
    last: Vec<AtomicU64>,
    /// Per mobile: index, in its own list, of the relay URL it is on.
    on: Vec<AtomicU64>,
    epoch: Instant,
}

async fn sim_mobile(
    j: usize,
    urls: Vec<String>,
    machine: String,
    session: String,
    st: Arc<MobileStats>,
) {
    let mut k = 0;
    loop {
        let ui = k % urls.len();
        k += 1;
        if let Some(mut ws) = open(&urls[ui], hello(Role::Mobile, None)).await {
            st.on[j].store(ui as u64, Ordering::Relaxed);
            let mut attached = false;
            while let Some(Ok(m)) = ws.next().await {
                let Message::Binary(b) = m else { continue };
                match Frame::decode(&b) {
                    Ok(Frame::PtyData(_) | Frame::FrameSnapshot { .. }) => {
                        st.frames.fetch_add(1, Ordering::Relaxed);
                        st.last[j].store(st.epoch.elapsed().as_micros() as u64, Ordering::Relaxed);
                    }
                    Ok(Frame::AppJson(AppMessage::Ping(p))) => {
                        let _ = ws
                            .send(bin(&Frame::AppJson(AppMessage::Pong(Pong { ts: p.ts }))))
                            .await;
                    }
                    Ok(Frame::AppJson(AppMessage::MachineList(l))) => {
                        let ready = l.machines.iter().any(|m| {
                            m.id == machine
                                && m.online
                                && m.sessions.iter().any(|s| s.id == session)
                        });
                        if ready && !attached {
                            attached = true;
                            let cap = Frame::AppJson(AppMessage::CapReq(CapReq {
                                grid: false,
                                max_cols: None,
                                max_rows: None,
                            }));
                            let att = Frame::AppJson(AppMessage::SessionAttach(SessionAttach {
                                machine_id: machine.clone(),
                                session_id: session.clone(),
                            }));
                            if ws.send(bin(&cap)).await.is_err()
                                || ws.send(bin(&att)).await.is_err()
                            {
                                break;
                            }
                        } else if !ready {
                            attached = false;
                        }
                    }
                    _ => {}
                }
            }
        }
        tokio::time::sleep(jitter(j)).await;
    }
}

// ---------------------------------------------------------------- (b)

fn throughput(nats_url: &str, frames: u64) {
    let a = Relay::start(Some(nats_url));
    let b = Relay::start(Some(nats_url));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (tx, tick) = tokio::sync::watch::channel(0u64);
    let st = Arc::new(MobileStats {
        frames: AtomicU64::new(0),
        last: vec![AtomicU64::new(0)],
        on: vec![AtomicU64::new(0)],
        epoch: Instant::now(),
    });
    let (elapsed, got) = rt.block_on(async {
        tokio::spawn(sim_agent(0, vec![a.url()], tick));
        tokio::spawn(sim_mobile(
            0,
            vec![b.url()],
            "sim000".into(),
            "s000".into(),
            st.clone(),
        ));
        while st.frames.load(Ordering::Relaxed) == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let before = st.frames.load(Ordering::Relaxed);
        let t = Instant::now();
        for n in 1..=frames {
            tx.send_replace(n);
            // One frame per turn of the loop: the feed task sends it.
            tokio::task::yield_now().await;
        }
        // Until the stream drains (no frame for 300 ms).
        let mut last = st.frames.load(Ordering::Relaxed);
        let mut quiet = Instant::now();
        loop {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let now = st.frames.load(Ordering::Relaxed);
            if now != last {
                last = now;
                quiet = Instant::now();
            } else if quiet.elapsed() > Duration::from_millis(300) {
                break;
            }
        }
        (quiet - t, last - before)
    });
    println!("\n(b) PTY_DATA through the cluster: agent on relay A, mobile on relay B");
    println!(
        "  {got} of {frames} frames in {:.2} s: {:.0} frames/s (the rest were coalesced into resync paints)",
        elapsed.as_secs_f64(),
        got as f64 / elapsed.as_secs_f64()
    );
    drop((a, b));
}

// ---------------------------------------------------------------- (c)

fn scale(nats_url: &str, agents: usize, mobiles: usize, fps: u64) {
    let relays: Vec<Relay> = (0..3).map(|_| Relay::start(Some(nats_url))).collect();
    let urls: Vec<String> = relays.iter().map(Relay::url).collect();
    let pids: Vec<u32> = relays.iter().map(|r| r.proc.pid()).collect();
    std::thread::sleep(Duration::from_millis(500));
    let base: u64 = pids.iter().map(|p| rss_kib(*p)).sum();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (tx, tick) = tokio::sync::watch::channel(0u64);
    let st = Arc::new(MobileStats {
        frames: AtomicU64::new(0),
        last: (0..mobiles).map(|_| AtomicU64::new(0)).collect(),
        on: (0..mobiles).map(|_| AtomicU64::new(0)).collect(),
        epoch: Instant::now(),
    });
    let rotate = |start: usize| -> Vec<String> {
        (0..urls.len())
            .map(|k| urls[(start + k) % urls.len()].clone())
            .collect()
    };
    let mut relays = relays;
    rt.block_on(async {
        for i in 0..agents {
            tokio::spawn(sim_agent(i, rotate(i % 3), tick.clone()));
        }
        for j in 0..mobiles {
            let i = j % agents;
            tokio::spawn(sim_mobile(
                j,
                rotate(j % 3),
                format!("sim{i:03}"),
                format!("s{i:03}"),
                st.clone(),
            ));
        }
        // Feeds stream at `fps` from here on.
        let ticker = tokio::spawn(async move {
            let mut n = 0u64;
            let mut iv = tokio::time::interval(Duration::from_micros(1_000_000 / fps.max(1)));
            loop {
                iv.tick().await;
                n += 1;
                tx.send_replace(n);
            }
        });
        let t = Instant::now();
        let all_fed = |since_us: u64| st.last.iter().all(|l| l.load(Ordering::Relaxed) > since_us);
        while !all_fed(0) {
            assert!(t.elapsed() < Duration::from_secs(120), "mobiles never all fed");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        println!(
            "\n(c) scale: {agents} simulated agents, {mobiles} simulated mobiles over 3 relays, {fps} frames/s per session"
        );
        println!("  all {mobiles} mobiles fed {:.2} s after start", t.elapsed().as_secs_f64());
        tokio::time::sleep(Duration::from_secs(2)).await;
        let rss: Vec<u64> = pids.iter().map(|p| rss_kib(*p)).collect();
        // Links: every mobile, every agent's control link, one feed link
        // per agent (requested by the relay it is on).
        let links = (mobiles + 2 * agents) as f64;
        let total: u64 = rss.iter().sum();
        println!(
            "  relay RSS {:?} KiB (idle {} KiB in all): {:.1} KiB per connection",
            rss,
            base,
            (total.saturating_sub(base)) as f64 / links
        );
        let cpu0: u64 = pids.iter().map(|p| cpu_ms(*p)).sum();
        let f0 = st.frames.load(Ordering::Relaxed);
        tokio::time::sleep(Duration::from_secs(5)).await;
        let cpu1: u64 = pids.iter().map(|p| cpu_ms(*p)).sum();
        let f1 = st.frames.load(Ordering::Relaxed);
        let frames = f1 - f0;
        println!(
            "  {frames} frames delivered in 5 s ({:.0}/s); relay CPU {} ms in all: {:.1} ms per 1000 frames",
            frames as f64 / 5.0,
            cpu1 - cpu0,
            (cpu1 - cpu0) as f64 / (frames as f64 / 1000.0)
        );

        // Reconnect storm: kill -9 the second relay.
        // Mobile j tries the relays from j % 3 on; `on` is the index in
        // its own order.
        let on_victim = (0..mobiles)
            .filter(|j| (j % 3 + st.on[*j].load(Ordering::Relaxed) as usize) % 3 == 1)
            .count();
        let victim = relays.remove(1);
        let kill_at = st.epoch.elapsed().as_micros() as u64;
        let t = Instant::now();
        drop(victim);
        // When each mobile first got a frame after the kill (ms).
        let mut back: Vec<Option<f64>> = vec![None; mobiles];
        loop {
            for (j, b) in back.iter_mut().enumerate() {
                if b.is_none() && st.last[j].load(Ordering::Relaxed) > kill_at {
                    *b = Some(t.elapsed().as_secs_f64() * 1e3);
                }
            }
            if back.iter().all(Option::is_some) {
                break;
            }
            assert!(t.elapsed() < Duration::from_secs(120), "mobiles never all fed after the kill");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if std::env::var_os("BENCH_TRACE").is_some() {
            // Slow mobiles by (first relay, relay of their agent at start).
            let mut slow = std::collections::BTreeMap::new();
            for (j, b) in back.iter().enumerate() {
                if b.is_some_and(|ms| ms > 1000.0) {
                    *slow.entry((j % 3, (j % agents) % 3)).or_insert(0) += 1;
                }
            }
            eprintln!("slow mobiles by (mobile relay, agent relay): {slow:?}");
        }
        let mut ms: Vec<f64> = back.into_iter().flatten().collect();
        println!(
            "  kill -9 of one relay ({on_victim} mobiles and about {} agents on it): every mobile fed again after {:.2} s (per mobile: p50 {:.0} ms, p90 {:.0} ms, p99 {:.0} ms)",
            agents / 3,
            t.elapsed().as_secs_f64(),
            pct(&mut ms, 50),
            pct(&mut ms, 90),
            pct(&mut ms, 99)
        );
        ticker.abort();
    });
    drop(relays);
}

fn main() {
    if Command::new("nats-server")
        .arg("--version")
        .output()
        .is_err()
    {
        println!("skipped: nats-server is not installed (apt-get install nats-server)");
        return;
    }
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let (_nats, url) = nats();
    println!(
        "berth relay clustered over NATS (loopback, {} cores), one run\n",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    latency(&url, env("BENCH_KEYS", 300) as usize);
    throughput(&url, env("BENCH_FRAMES", 20_000));
    scale(
        &url,
        env("BENCH_AGENTS", 100) as usize,
        env("BENCH_MOBILES", 1000) as usize,
        env("BENCH_FPS", 10),
    );
}
