//! `berth remote attach`: a terminal client of the relay that renders from
//! grids, the way a phone does: it applies GRID_SNAPSHOT and GRID_DIFF to
//! a local grid and draws it (`screen`), sends keystrokes as `input` and
//! its size as RESIZE, and re-attaches after the relay or the agent comes
//! back. Given several relay URLs (a clustered relay), it moves to the
//! next one when its relay fails, and resumes from the fresh GRID_SNAPSHOT
//! sent there.

mod screen;

use crate::ctx::Ctx;
use crate::error::{CliError, CmdResult};
use berth_wire::remote::{
    self, AppMessage, CapReq, Frame, Grid, GridFeatures, Hello, Input, Pong, Role, SessionAttach,
    SnapshotReq,
};
use bytes::Bytes;
use clap::{Args, Subcommand, ValueEnum};
use futures_util::{SinkExt, StreamExt};
use screen::{grid_text, render};
use std::io::{IsTerminal, Write};
use std::time::Duration;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

/// The remote group.
#[derive(Subcommand)]
pub(crate) enum Command {
    /// Remote-protocol clients (through a relay).
    Remote {
        #[command(subcommand)]
        command: RemoteCommand,
    },
}

#[derive(Subcommand)]
pub(crate) enum RemoteCommand {
    /// Attach to a session through a relay and show it from grids.
    Attach(AttachArgs),
}

#[derive(Clone, Copy, ValueEnum)]
enum DumpFormat {
    /// The screen's text, one line per row, trailing blanks trimmed.
    Text,
    /// The whole grid as JSON (cells with colours and attributes, cursor).
    Json,
}

#[derive(Args)]
pub(crate) struct AttachArgs {
    /// Relay URL, ws://HOST:PORT/; repeat it (or separate with commas) for
    /// the instances of a clustered relay, tried in turn when one fails.
    #[arg(long, required = true, value_delimiter = ',')]
    relay: Vec<String>,
    /// Token for the relay.
    #[arg(long, env = "BERTH_RELAY_TOKEN")]
    token: String,
    /// Machine id.
    #[arg(long)]
    machine: String,
    /// Session id.
    #[arg(long)]
    session: String,
    /// Non-interactive: print the grid once it shows TEXT, then exit.
    #[arg(long, value_name = "TEXT")]
    until: Option<String>,
    /// Non-interactive: print the grid after N ms, then exit.
    #[arg(long, value_name = "N")]
    dump_after_ms: Option<u64>,
    /// How --until / --dump-after-ms print the grid.
    #[arg(long, value_enum, default_value_t = DumpFormat::Text)]
    dump: DumpFormat,
    /// Text to type once the first grid arrived (\r, \n, \t, \e, \\ escapes).
    #[arg(long)]
    input: Option<String>,
    /// Give up --until after this many ms (exit status 3).
    #[arg(long, default_value_t = 30_000)]
    timeout_ms: u64,
    /// Size to ask for, COLSxROWS (default: this terminal's, if any).
    #[arg(long)]
    size: Option<String>,
    /// For a wss:// relay: trust only this CA certificate (PEM).
    #[arg(long, value_name = "FILE")]
    ca: Option<std::path::PathBuf>,
}

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('r') => out.push('\r'),
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('e') => out.push('\x1b'),
            Some(o) => out.push(o),
            None => out.push('\\'),
        }
    }
    out
}

fn app(m: AppMessage) -> Message {
    Message::Binary(Bytes::from(Frame::AppJson(m).encode()))
}

struct View {
    grid: Option<(Grid, u32)>,
    typed: bool,
    /// The current link was accepted (`hello_ack`).
    up: bool,
}

enum Outcome {
    /// The link ended; reconnect.
    Retry(String),
    /// Done: the command's result.
    Done(CmdResult),
}

impl Command {
    /// Runs a remote-protocol client; needs no local daemon.
    pub(crate) fn run(self, _ctx: &mut Ctx) -> CmdResult {
        let Command::Remote {
            command: RemoteCommand::Attach(a),
        } = self;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(CliError::failed)?;
        rt.block_on(attach(a))
    }
}

async fn attach(a: AttachArgs) -> CmdResult {
    let scripted = a.until.is_some() || a.dump_after_ms.is_some();
    let ca =
        a.ca.as_deref()
            .map(berth_daemon::tls::client_config)
            .transpose()
            .map_err(CliError::usage)?;
    let interactive =
        !scripted && std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let size = a
        .size
        .as_deref()
        .and_then(|s| s.split_once('x'))
        .and_then(|(c, r)| Some((c.parse::<u32>().ok()?, r.parse::<u32>().ok()?)))
        .or_else(|| berth_os::tty::size().map(|s| (u32::from(s.cols), u32::from(s.rows))));
    let _raw = interactive.then(berth_os::tty::RawMode::stdin);
    let (keys_tx, mut keys) = tokio::sync::mpsc::channel::<Vec<u8>>(64);
    if interactive {
        std::thread::spawn(move || {
            let mut buf = [0u8; 1024];
            loop {
                let n = match berth_os::tty::read_input(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                if keys_tx.blocking_send(buf[..n].to_vec()).is_err() {
                    return;
                }
            }
        });
    }
    let deadline = Instant::now()
        + match a.dump_after_ms {
            Some(ms) => Duration::from_millis(ms),
            None => Duration::from_millis(a.timeout_ms),
        };
    let mut view = View {
        grid: None,
        typed: false,
        up: false,
    };
    let mut next = 0usize;
    let mut failures = 0u32;
    loop {
        let url = a.relay[next % a.relay.len()].clone();
        view.up = false;
        let r = link(
            &a,
            Target {
                url: &url,
                ca: ca.as_ref(),
            },
            &mut view,
            &mut keys,
            size,
            interactive,
            deadline,
        )
        .await;
        match r {
            Outcome::Done(result) => {
                if interactive {
                    print!("\x1b[0m\x1b[?25h\r\n");
                }
                return result;
            }
            Outcome::Retry(why) => {
                if !interactive {
                    eprintln!("berth: relay link: {why}; reconnecting");
                }
            }
        }
        if scripted && Instant::now() >= deadline {
            return dump_or_fail(&a, &view);
        }
        if view.up {
            failures = 0;
        }
        next += 1;
        let delay = berth_daemon::remote_link::retry_delay(failures, a.relay.len())
            .min(Duration::from_secs(5));
        tokio::time::sleep(delay).await;
        failures = failures.saturating_add(1);
    }
}

fn dump(a: &AttachArgs, g: &Grid) {
    let s = match a.dump {
        DumpFormat::Text => grid_text(g),
        DumpFormat::Json => serde_json::to_string(g).unwrap_or_default(),
    };
    println!("{s}");
}

/// At the deadline: `--dump-after-ms` prints what it has; `--until`
/// failed (exit status 3, with the screen as it was).
fn dump_or_fail(a: &AttachArgs, view: &View) -> CmdResult {
    match (&view.grid, a.until.is_some()) {
        (Some((g, _)), false) => {
            dump(a, g);
            Ok(0)
        }
        (Some((g, _)), true) => Err(CliError::with_status(
            3,
            format!("timed out; the screen was:\n{}", grid_text(g)),
        )),
        (None, _) => Err(CliError::with_status(
            3,
            "timed out before any grid arrived",
        )),
    }
}

/// The relay instance a link goes to, and the CA to trust for `wss://`.
struct Target<'a> {
    url: &'a str,
    ca: Option<&'a std::sync::Arc<tokio_rustls::rustls::ClientConfig>>,
}

async fn link(
    a: &AttachArgs,
    to: Target<'_>,
    view: &mut View,
    keys: &mut tokio::sync::mpsc::Receiver<Vec<u8>>,
    size: Option<(u32, u32)>,
    interactive: bool,
    deadline: Instant,
) -> Outcome {
    let scripted = !interactive && (a.until.is_some() || a.dump_after_ms.is_some());
    let connect = tokio::time::timeout(
        Duration::from_secs(10),
        berth_daemon::tls::connect(to.url, to.ca),
    );
    let mut ws = match connect.await {
        Ok(Ok(ws)) => ws,
        Ok(Err(e)) => return Outcome::Retry(format!("connect: {e}")),
        Err(_) => return Outcome::Retry("connect timed out".into()),
    };
    let hello = app(AppMessage::Hello(Hello {
        protocol_version: remote::PROTOCOL_VERSION,
        role: Role::Mobile,
        token: Some(a.token.clone()),
        supported_versions: None,
        machine_id: None,
        machine_name: None,
        client_name: Some("berth remote attach".into()),
    }));
    if let Err(e) = ws.send(hello).await {
        return Outcome::Retry(e.to_string());
    }
    let mut attached = false;
    let mut sized = false;
    let mut ping = Duration::from_secs(10);
    let mut last_seen = Instant::now();
    let mut liveness = tokio::time::interval(Duration::from_millis(500));
    let mut winch =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change()).ok();
    loop {
        let mut out: Vec<Message> = Vec::new();
        tokio::select! {
            _ = tokio::time::sleep_until(deadline), if scripted => {
                return Outcome::Done(dump_or_fail(a, view));
            }
            _ = liveness.tick() => {
                if last_seen.elapsed() > ping * 3 {
                    return Outcome::Retry("relay silent for three ping intervals".into());
                }
            }
            _ = async {
                match winch.as_mut() {
                    Some(w) => w.recv().await,
                    None => std::future::pending().await,
                }
            }, if winch.is_some() && interactive => {
                if let Some(s) = berth_os::tty::size() {
                    out.push(Message::Binary(Bytes::from(
                        Frame::Resize { cols: u32::from(s.cols), rows: u32::from(s.rows) }.encode(),
                    )));
                }
            }
            k = keys.recv(), if interactive => {
                let Some(k) = k else { return Outcome::Done(Ok(0)) };
                // Ctrl-\ detaches, as in `berth attach`.
                if k.contains(&0x1c) {
                    return Outcome::Done(Ok(0));
                }
                out.push(app(AppMessage::Input(Input {
                    session_id: a.session.clone(),
                    data: String::from_utf8_lossy(&k).into_owned(),
                })));
            }
            msg = ws.next() => {
                let Some(Ok(msg)) = msg else {
                    return Outcome::Retry("relay closed the link".into());
                };
                last_seen = Instant::now();
                let Message::Binary(b) = msg else { continue };
                let frame = match Frame::decode(&b) {
                    Ok(f) => f,
                    Err(e) => {
                        out.push(Message::Binary(Bytes::from(
                            Frame::ProtocolError(e.reason()).encode(),
                        )));
                        Frame::ProtocolError(remote::Reason::Unspecified)
                    }
                };
                let mut changed = false;
                match frame {
                    Frame::AppJson(AppMessage::HelloAck(h)) => {
                        view.up = true;
                        ping = Duration::from_millis(u64::from(h.ping_interval_ms.unwrap_or(10_000).max(100)));
                    }
                    Frame::AppJson(AppMessage::Ping(p)) => {
                        out.push(app(AppMessage::Pong(Pong { ts: p.ts })));
                    }
                    Frame::AppJson(AppMessage::MachineList(list)) => {
                        let ready = list.machines.iter().any(|m| {
                            m.id == a.machine && m.online && m.sessions.iter().any(|s| s.id == a.session)
                        });
                        if ready && !attached {
                            attached = true;
                            out.push(app(AppMessage::CapReq(CapReq {
                                grid: true,
                                max_cols: Some(u32::from(remote::MAX_GRID_COLS)),
                                max_rows: Some(u32::from(remote::MAX_GRID_ROWS)),
                            })));
                            // This client paints underline colours (3.1);
                            // a 3.0 relay answers UNKNOWN_MESSAGE_TYPE and
                            // sends grids without them.
                            out.push(app(AppMessage::GridFeatures(GridFeatures {
                                underline_color: true,
                            })));
                            out.push(app(AppMessage::SessionAttach(SessionAttach {
                                machine_id: a.machine.clone(),
                                session_id: a.session.clone(),
                            })));
                        } else if !ready {
                            attached = false;
                        }
                    }
                    Frame::AppJson(AppMessage::Error(e)) => {
                        if e.code == "unauthorized" {
                            return Outcome::Done(Err(CliError::failed(format!(
                                "relay: {}: {}",
                                e.code, e.message
                            ))));
                        }
                        if !interactive {
                            eprintln!("berth: relay: {}: {}", e.code, e.message);
                        }
                        attached = false;
                    }
                    Frame::AppJson(AppMessage::PtyStatus(p))
                        if p.session_id == a.session
                            && p.state == remote::PtyState::Exited
                            && !scripted =>
                    {
                        return Outcome::Done(Ok(0));
                    }
                    Frame::AppJson(AppMessage::ProtocolMismatch(m)) => {
                        return Outcome::Done(Err(CliError::failed(format!(
                            "the relay speaks protocol versions {:?}",
                            m.supported
                        ))));
                    }
                    Frame::FrameSnapshot { ansi, .. } if interactive && view.grid.is_none() => {
                        // Instant first paint, until the grid arrives.
                        let mut o = std::io::stdout();
                        let _ = o.write_all(b"\x1b[H\x1b[2J");
                        let _ = o.write_all(&ansi);
                        let _ = o.flush();
                    }
                    Frame::GridSnapshot(s) => {
                        // The feed is up: now the agent can take our size.
                        if let (Some((cols, rows)), false) = (size, sized) {
                            sized = true;
                            out.push(Message::Binary(Bytes::from(
                                Frame::Resize { cols, rows }.encode(),
                            )));
                        }
                        view.grid = Some((s.grid, s.seq));
                        changed = true;
                    }
                    Frame::AppJson(AppMessage::GridResizeCapped(c)) if !interactive => {
                        eprintln!(
                            "berth: resize to {}x{} capped to {}x{}",
                            c.requested_cols, c.requested_rows, c.cols, c.rows
                        );
                    }
                    Frame::GridDiff(d) => {
                        let ok = match &mut view.grid {
                            Some((g, seq)) if d.seq == seq.wrapping_add(1) => {
                                *seq = d.seq;
                                remote::apply(g, &d.ops).is_ok()
                            }
                            _ => false,
                        };
                        if ok {
                            changed = true;
                        } else {
                            let last_seq = view.grid.as_ref().map(|(_, s)| *s);
                            view.grid = None;
                            out.push(app(AppMessage::SnapshotReq(SnapshotReq {
                                session_id: a.session.clone(),
                                last_seq,
                            })));
                        }
                    }
                    _ => {}
                }
                if let (true, Some((g, _))) = (changed, view.grid.as_ref()) {
                    if interactive {
                        let mut o = std::io::stdout();
                        let _ = o.write_all(render(g).as_bytes());
                        let _ = o.flush();
                    }
                    if let Some(until) = &a.until {
                        if grid_text(g).contains(until.as_str()) {
                            dump(a, g);
                            return Outcome::Done(Ok(0));
                        }
                    }
                    if let (Some(text), false) = (&a.input, view.typed) {
                        view.typed = true;
                        out.push(app(AppMessage::Input(Input {
                            session_id: a.session.clone(),
                            data: unescape(text),
                        })));
                    }
                }
            }
        }
        for m in out {
            if let Err(e) = ws.send(m).await {
                return Outcome::Retry(e.to_string());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_escapes_become_control_characters() {
        assert_eq!(unescape(r"x\r\e\\"), "x\r\x1b\\");
    }
}
