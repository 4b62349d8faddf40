//! Clustered relays (issue 14): three `berth relay --cluster` instances
//! sharing routing through a real `nats-server` started here on a loopback
//! port, real daemons as agents and `berth remote attach` / raw WebSocket
//! peers as mobiles, spread across the instances.
//!
//! They need `nats-server` (Debian's package), so they are ignored with
//! that reason unless run with `--include-ignored` (as `.ci/run` does).

mod common;

use berth_wire::daemon::*;
use berth_wire::remote::{AppMessage, Frame, Grid, Hello, Machine, Role};
use common::*;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::{self, Message};

const TOKEN: &str = "cluster-token";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn listening(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// A `nats-server` on a fixed loopback port (so it can be restarted).
struct Nats {
    port: u16,
    child: Option<Child>,
}

impl Nats {
    fn start() -> Nats {
        assert!(
            Command::new("nats-server")
                .arg("--version")
                .output()
                .is_ok(),
            "needs nats-server (apt install nats-server)"
        );
        let mut n = Nats {
            port: free_port(),
            child: None,
        };
        n.spawn();
        n
    }

    fn spawn(&mut self) {
        let child = Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        assert!(
            wait_for(Duration::from_secs(10), || listening(self.port)),
            "nats-server did not listen"
        );
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One clustered `berth relay` instance.
struct Relay {
    port: u16,
    child: Option<Child>,
    log: PathBuf,
}

impl Relay {
    fn start(dir: &Path, name: &str, nats: &Nats) -> Relay {
        let port = free_port();
        let log = dir.join(format!("{name}.log"));
        let child = Command::new(BERTH)
            .args(["relay", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--token", TOKEN, "--ping-interval-ms", "500"])
            .args(["--cluster", &nats.url()])
            .env("BERTH_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        assert!(
            wait_for(Duration::from_secs(10), || listening(port)),
            "relay {name} did not listen"
        );
        Relay {
            port,
            child: Some(child),
            log,
        }
    }

    /// SIGKILL: no goodbye to the cluster.
    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    fn url(&self) -> String {
        format!("ws://127.0.0.1:{}/", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn logs(relays: &[&Relay]) -> String {
    relays
        .iter()
        .map(|r| format!("--- relay :{}\n{}", r.port, r.log()))
        .collect()
}

fn agent(machine: &str, relays: &[&Relay]) -> Daemon {
    let urls: Vec<String> = relays.iter().map(|r| r.url()).collect();
    Daemon::start_with(&[
        "--relay",
        &urls.join(","),
        "--relay-token",
        TOKEN,
        "--relay-machine-id",
        machine,
    ])
}

fn spawn_pty(d: &Daemon, script: &str) -> String {
    d.client()
        .spawn_pty(SpawnPtySessionRequest {
            argv: vec!["/bin/sh".into(), "-c".into(), script.into()],
            rows: 24,
            cols: 80,
            ..Default::default()
        })
        .unwrap()
        .session_id
}

const ECHO: &str = "stty -echo; while read l; do echo \"echo:$l\"; done";

fn attach_cmd(relays: &[&Relay], machine: &str, session: &str, extra: &[&str]) -> Command {
    let mut c = Command::new(BERTH);
    c.args(["remote", "attach", "--token", TOKEN]);
    for r in relays {
        c.args(["--relay", &r.url()]);
    }
    c.args(["--machine", machine, "--session", session])
        .args(extra)
        .stdin(Stdio::null());
    c
}

fn attach(relays: &[&Relay], machine: &str, session: &str, extra: &[&str]) -> Output {
    attach_cmd(relays, machine, session, extra)
        .output()
        .unwrap()
}

fn held_output(d: &Daemon, id: &str) -> String {
    let b = d.client().backlog(id, PipeStreamKind::Unspecified).unwrap();
    String::from_utf8_lossy(&b.backlog).into_owned()
}

/// The daemon's screen, from the session's held output, translated the way
/// the agent link does.
fn daemon_grid(d: &Daemon, id: &str) -> Grid {
    let b = d.client().backlog(id, PipeStreamKind::Unspecified).unwrap();
    let mut p = vt100::Parser::new(24, 80, 0);
    p.process(&b.backlog);
    berth_daemon::remote_link::grid::screen_to_grid(p.screen())
}

fn text(g: &Grid) -> String {
    (0..g.rows)
        .map(|y| g.row(y).iter().map(|c| c.text.as_str()).collect::<String>())
        .map(|l| l.trim_end().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

fn assert_same_screen(got: &Grid, want: &Grid, who: &str) {
    assert!(
        got.cells == want.cells && got.cursor == want.cursor,
        "{who}'s grid differs from the daemon's screen\ngot:\n{}\nwant:\n{}",
        text(got),
        text(want)
    );
}

type Ws = tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<TcpStream>>;

/// A raw mobile that only follows `machine_list`.
struct Watcher {
    ws: Ws,
    machines: Vec<Machine>,
}

impl Watcher {
    fn connect(relay: &Relay) -> Watcher {
        let (mut ws, _) = tungstenite::connect(relay.url()).unwrap();
        if let tungstenite::stream::MaybeTlsStream::Plain(s) = ws.get_ref() {
            s.set_read_timeout(Some(Duration::from_millis(200)))
                .unwrap();
        }
        let hello = Frame::AppJson(AppMessage::Hello(Hello {
            protocol_version: 3,
            role: Role::Mobile,
            token: Some(TOKEN.into()),
            supported_versions: None,
            machine_id: None,
            machine_name: None,
            client_name: Some("test".into()),
        }));
        ws.send(Message::Binary(hello.encode().into())).unwrap();
        Watcher {
            ws,
            machines: Vec::new(),
        }
    }

    /// Reads until the online machines are `want` (ids, sorted).
    fn until_online(&mut self, want: &[&str], within: Duration) -> bool {
        let end = Instant::now() + within;
        while Instant::now() < end {
            if self.online() == want {
                return true;
            }
            match self.ws.read() {
                Ok(Message::Binary(b)) => match Frame::decode(&b) {
                    Ok(Frame::AppJson(AppMessage::MachineList(l))) => self.machines = l.machines,
                    Ok(Frame::AppJson(AppMessage::Ping(p))) => {
                        let pong =
                            Frame::AppJson(AppMessage::Pong(berth_wire::remote::Pong { ts: p.ts }));
                        let _ = self.ws.send(Message::Binary(pong.encode().into()));
                    }
                    _ => {}
                },
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => panic!("watcher: {e}"),
            }
        }
        self.online() == want
    }

    fn online(&self) -> Vec<&str> {
        self.machines
            .iter()
            .filter(|m| m.online)
            .map(|m| m.id.as_str())
            .collect()
    }
}

#[test]
#[ignore = "needs nats-server: see README"]
fn three_relays_share_machines_and_sessions() {
    let nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let a = Relay::start(dir.path(), "a", &nats);
    let b = Relay::start(dir.path(), "b", &nats);
    let c = Relay::start(dir.path(), "c", &nats);
    let all = [&a, &b, &c];

    // A mobile on B sees the union, live, as agents on A and C come.
    let mut watcher = Watcher::connect(&b);
    let d1 = agent("m1", &[&a]);
    assert!(
        watcher.until_online(&["m1"], Duration::from_secs(15)),
        "m1 (on relay A) never listed on relay B: {:?}\n{}",
        watcher.machines,
        logs(&all)
    );
    let mut d2 = agent("m2", &[&c]);
    assert!(
        watcher.until_online(&["m1", "m2"], Duration::from_secs(15)),
        "m2 (on relay C) never listed on relay B: {:?}",
        watcher.machines
    );

    // A session on m1 (relay A) attached through relay B: input crosses
    // the cluster one way, the grid the other.
    let id = spawn_pty(&d1, ECHO);
    let out = attach(
        &[&b],
        "m1",
        &id,
        &[
            "--input",
            r"across\r",
            "--until",
            "echo:across",
            "--dump",
            "json",
        ],
    );
    assert!(
        out.status.success(),
        "client on B failed: {}\n{}",
        stderr(&out),
        logs(&all)
    );
    let got: Grid = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_same_screen(&got, &daemon_grid(&d1, &id), "client on B");
    assert!(held_output(&d1, &id).contains("echo:across"));

    // Two mobiles on two other relays watch the same session at once.
    let on_c = attach_cmd(
        &[&c],
        "m1",
        &id,
        &["--until", "echo:both", "--dump", "json"],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let out = attach(
        &[&b],
        "m1",
        &id,
        &["--input", r"both\r", "--until", "echo:both"],
    );
    assert!(out.status.success(), "client on B failed: {}", stderr(&out));
    let out = on_c.wait_with_output().unwrap();
    assert!(out.status.success(), "client on C failed: {}", stderr(&out));

    // An agent that goes away leaves every instance's list within seconds.
    d2.kill9();
    assert!(
        watcher.until_online(&["m1"], Duration::from_secs(15)),
        "m2 still listed after its daemon died: {:?}",
        watcher.machines
    );
}

#[test]
#[ignore = "needs nats-server: see README"]
fn kill_9_of_the_middle_relay_moves_every_client_elsewhere() {
    let nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let a = Relay::start(dir.path(), "a", &nats);
    let mut b = Relay::start(dir.path(), "b", &nats);
    let c = Relay::start(dir.path(), "c", &nats);

    // The agent and one mobile start on B, the middle relay; another
    // mobile watches from C through the cluster.
    let d = agent("m1", &[&b, &a]);
    let id = spawn_pty(&d, ECHO);
    let first = attach_cmd(
        &[&b, &c],
        "m1",
        &id,
        &[
            "--input",
            r"before\r",
            "--until",
            "echo:after",
            "--dump",
            "json",
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let second = attach_cmd(
        &[&c],
        "m1",
        &id,
        &["--until", "echo:after", "--dump", "json"],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    assert!(
        wait_for(Duration::from_secs(20), || held_output(&d, &id)
            .contains("echo:before")),
        "input through B never arrived\n{}",
        logs(&[&a, &b, &c])
    );
    // Let the mobile on C get its feed before the crash.
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    b.kill9();
    // Everyone reconnects elsewhere (agent to A, the first mobile to C);
    // then new output reaches both mobiles, and the session itself was
    // never disturbed.
    assert!(
        wait_for(Duration::from_secs(20), || d
            .log()
            .matches("relay link up")
            .count()
            >= 2),
        "the agent did not fail over: {}",
        d.log()
    );
    d.client().write_stdin(&id, b"after\n", false).unwrap();
    for (name, child) in [("first", first), ("second", second)] {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{name} mobile did not see output after the crash: {}\n{}",
            stderr(&out),
            logs(&[&a, &c])
        );
        let got: Grid = serde_json::from_str(stdout(&out).trim()).unwrap();
        assert_same_screen(&got, &daemon_grid(&d, &id), name);
    }
    eprintln!("failover and fresh output took {:?}", started.elapsed());
    let s = d.client().list_pty("").unwrap();
    assert!(s.iter().any(|x| x.session_id == id), "the session is gone");
}

#[test]
#[ignore = "needs nats-server: see README"]
fn a_nats_restart_degrades_to_local_routing_and_recovers() {
    let mut nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let a = Relay::start(dir.path(), "a", &nats);
    let b = Relay::start(dir.path(), "b", &nats);
    let d = agent("m1", &[&a]);
    let id = spawn_pty(&d, ECHO);
    let mut watcher = Watcher::connect(&b);
    assert!(watcher.until_online(&["m1"], Duration::from_secs(15)));

    nats.kill();
    // B forgets A's machine; A still serves its own mobiles.
    assert!(
        watcher.until_online(&[], Duration::from_secs(15)),
        "B still lists m1 without NATS: {:?}",
        watcher.machines
    );
    let out = attach(
        &[&a],
        "m1",
        &id,
        &["--input", r"local\r", "--until", "echo:local"],
    );
    assert!(
        out.status.success(),
        "local routing failed: {}",
        stderr(&out)
    );
    assert!(
        a.log().contains("NATS unreachable"),
        "no clear log line: {}",
        a.log()
    );

    nats.spawn();
    assert!(
        watcher.until_online(&["m1"], Duration::from_secs(20)),
        "the cluster did not recover: {:?}\n{}",
        watcher.machines,
        logs(&[&a, &b])
    );
    let out = attach(
        &[&b],
        "m1",
        &id,
        &["--input", r"again\r", "--until", "echo:again"],
    );
    assert!(
        out.status.success(),
        "routing through B after the restart failed: {}",
        stderr(&out)
    );
}
