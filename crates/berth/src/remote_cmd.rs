//! `berth remote attach`: a terminal client of the relay that renders from
//! grids, the way a phone does: it applies GRID_SNAPSHOT and GRID_DIFF to
//! a local grid and draws it, sends keystrokes as `input` and its size as
//! RESIZE, and re-attaches after the relay or the agent comes back. Given
//! several relay URLs (a clustered relay), it moves to the next one when
//! its relay fails, and resumes from the fresh GRID_SNAPSHOT sent there.

use berth_wire::remote::{
    self, AppMessage, CapReq, Color, Frame, Grid, Hello, Input, Pong, Role, SessionAttach,
    SnapshotReq,
};
use bytes::Bytes;
use clap::{Args, Subcommand, ValueEnum};
use futures_util::{SinkExt, StreamExt};
use std::io::Write;
use std::time::Duration;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

#[derive(Subcommand)]
pub enum RemoteCommand {
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
pub struct AttachArgs {
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

/// The screen as plain text (rows joined by newlines, trailing blanks cut).
pub fn grid_text(g: &Grid) -> String {
    (0..g.rows)
        .map(|y| {
            let line: String = g.row(y).iter().map(|c| c.text.as_str()).collect();
            line.trim_end().to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn sgr_color(out: &mut String, c: Color, fg: bool) {
    use std::fmt::Write as _;
    let base = if fg { 38 } else { 48 };
    match c {
        Color::Default => {
            let _ = write!(out, ";{}", base + 1);
        }
        Color::Indexed(i) => {
            let _ = write!(out, ";{base};5;{i}");
        }
        Color::Rgb(r, g, b) => {
            let _ = write!(out, ";{base};2;{r};{g};{b}");
        }
    }
}

/// ANSI that paints `g` over the whole terminal.
fn render(g: &Grid) -> String {
    use remote::attr;
    let mut out = String::from("\x1b[?25l\x1b[H");
    for y in 0..g.rows {
        out.push_str(&format!("\x1b[{};1H", y + 1));
        let mut style = None;
        for c in g.row(y) {
            if c.width == 0 {
                continue;
            }
            let s = (c.fg, c.bg, c.attrs);
            if style != Some(s) {
                style = Some(s);
                out.push_str("\x1b[0");
                for (bit, code) in [
                    (attr::BOLD, 1),
                    (attr::DIM, 2),
                    (attr::ITALIC, 3),
                    (attr::UNDERLINE, 4),
                    (attr::BLINK, 5),
                    (attr::INVERSE, 7),
                    (attr::HIDDEN, 8),
                    (attr::STRIKE, 9),
                ] {
                    if c.attrs & bit != 0 {
                        out.push_str(&format!(";{code}"));
                    }
                }
                sgr_color(&mut out, c.fg, true);
                sgr_color(&mut out, c.bg, false);
                out.push('m');
            }
            out.push_str(if c.text.is_empty() { " " } else { &c.text });
        }
    }
    out.push_str(&format!(
        "\x1b[0m\x1b[{};{}H{}",
        g.cursor.y + 1,
        g.cursor.x + 1,
        if g.cursor.visible { "\x1b[?25h" } else { "" }
    ));
    out
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
    /// Done, with this exit status.
    Exit(i32),
}

pub fn main(cmd: RemoteCommand) -> i32 {
    let RemoteCommand::Attach(a) = cmd;
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("berth: {e}");
            return 1;
        }
    };
    rt.block_on(attach(a))
}

async fn attach(a: AttachArgs) -> i32 {
    let scripted = a.until.is_some() || a.dump_after_ms.is_some();
    let ca = match a.ca.as_deref().map(berth_daemon::tls::client_config) {
        Some(Ok(c)) => Some(c),
        Some(Err(e)) => {
            eprintln!("berth: {e}");
            return 2;
        }
        None => None,
    };
    let interactive = !scripted && crate::sessions::is_tty(0) && crate::sessions::is_tty(1);
    let size = a
        .size
        .as_deref()
        .and_then(|s| s.split_once('x'))
        .and_then(|(c, r)| Some((c.parse::<u32>().ok()?, r.parse::<u32>().ok()?)))
        .or_else(|| crate::sessions::term_size().map(|(r, c)| (u32::from(c), u32::from(r))));
    let _raw = interactive.then(crate::sessions::RawMode::enter);
    let (keys_tx, mut keys) = tokio::sync::mpsc::channel::<Vec<u8>>(64);
    if interactive {
        std::thread::spawn(move || {
            let mut buf = [0u8; 1024];
            loop {
                // SAFETY: reading into a buffer we own.
                let n = unsafe { libc::read(0, buf.as_mut_ptr().cast(), buf.len()) };
                if n <= 0 || keys_tx.blocking_send(buf[..n as usize].to_vec()).is_err() {
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
            Outcome::Exit(code) => {
                if interactive {
                    print!("\x1b[0m\x1b[?25h\r\n");
                }
                return code;
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

/// At the deadline: `--dump-after-ms` prints what it has; `--until` failed.
fn dump_or_fail(a: &AttachArgs, view: &View) -> i32 {
    match (&view.grid, a.until.is_some()) {
        (Some((g, _)), false) => {
            dump(a, g);
            0
        }
        (g, _) => {
            if let Some((g, _)) = g {
                eprintln!("berth: timed out; the screen was:\n{}", grid_text(g));
            } else {
                eprintln!("berth: timed out before any grid arrived");
            }
            3
        }
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
                return Outcome::Exit(dump_or_fail(a, view));
            }
            _ = liveness.tick() => {
                if last_seen.elapsed() > ping * 3 {
                    return Outcome::Retry("relay silent for three ping intervals".into());
                }
            }
            _ = async { winch.as_mut().unwrap().recv().await }, if winch.is_some() && interactive => {
                if let Some((r, c)) = crate::sessions::term_size() {
                    out.push(Message::Binary(Bytes::from(
                        Frame::Resize { cols: u32::from(c), rows: u32::from(r) }.encode(),
                    )));
                }
            }
            k = keys.recv(), if interactive => {
                let Some(k) = k else { return Outcome::Exit(0) };
                // Ctrl-\ detaches, as in `berth attach`.
                if k.contains(&0x1c) {
                    return Outcome::Exit(0);
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
                            out.push(app(AppMessage::SessionAttach(SessionAttach {
                                machine_id: a.machine.clone(),
                                session_id: a.session.clone(),
                            })));
                        } else if !ready {
                            attached = false;
                        }
                    }
                    Frame::AppJson(AppMessage::Error(e)) => {
                        if !interactive {
                            eprintln!("berth: relay: {}: {}", e.code, e.message);
                        }
                        if e.code == "unauthorized" {
                            return Outcome::Exit(1);
                        }
                        attached = false;
                    }
                    Frame::AppJson(AppMessage::PtyStatus(p))
                        if p.session_id == a.session
                            && p.state == remote::PtyState::Exited
                            && !scripted =>
                    {
                        return Outcome::Exit(0);
                    }
                    Frame::AppJson(AppMessage::ProtocolMismatch(m)) => {
                        eprintln!("berth: the relay speaks protocol versions {:?}", m.supported);
                        return Outcome::Exit(1);
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
                if changed {
                    let (g, _) = view.grid.as_ref().expect("a grid was just set");
                    if interactive {
                        let mut o = std::io::stdout();
                        let _ = o.write_all(render(g).as_bytes());
                        let _ = o.flush();
                    }
                    if let Some(until) = &a.until {
                        if grid_text(g).contains(until.as_str()) {
                            dump(a, g);
                            return Outcome::Exit(0);
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
    fn render_paints_text_styles_and_the_cursor() {
        let mut g = Grid::new(3, 1);
        g.cells[0].text = "a".into();
        g.cells[0].attrs = remote::attr::BOLD;
        g.cells[1].fg = Color::Indexed(2);
        let s = render(&g);
        assert!(s.contains("\x1b[0;1;39;49ma"), "{s:?}");
        assert!(s.contains("\x1b[0;38;5;2;49m"), "{s:?}");
        assert!(s.ends_with("\x1b[1;1H\x1b[?25h"));
        assert_eq!(grid_text(&g), "a");
        assert_eq!(unescape(r"x\r\e\\"), "x\r\x1b\\");
    }
}
