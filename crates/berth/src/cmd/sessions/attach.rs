//! `berth attach`: this terminal on a PTY session. Keys go in raw, output
//! comes out as it is, window size changes follow, and the detach key (^\
//! by default) hands the session back, leaving this terminal's modes as
//! they were (`berth_os::termmodes`).

use crate::ctx::Ctx;
use crate::error::{CliError, CmdResult};
use berth_client::StreamFrame;
use berth_wire::daemon::*;
use clap::Args;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Args)]
pub(crate) struct AttachArgs {
    /// Session id or name.
    session: String,
    /// Take the session over from the client attached to it.
    #[arg(long)]
    steal: bool,
    /// Watch only: keystrokes are not sent, nobody is displaced.
    #[arg(long)]
    read_only: bool,
    /// Detach key, as ^X notation.
    #[arg(long, default_value = "^\\")]
    detach_key: String,
    /// Replay the raw backlog instead of restoring the screen.
    #[arg(long)]
    raw: bool,
}

/// The byte of a `^X` detach key (or of a literal control character).
fn parse_key(k: &str) -> Result<u8, CliError> {
    let bad = || {
        CliError::invalid_argument(format!(
            "--detach-key {k:?}: use ^X notation, e.g. ^\\ or ^]"
        ))
    };
    let b = k.as_bytes();
    match b {
        [b'^', c] => Ok(c.to_ascii_uppercase() ^ 0x40),
        [c] if *c < 0x20 => Ok(*c),
        _ => Err(bad()),
    }
}

/// `berth attach`: this terminal becomes the session's until the detach
/// key, the session's exit, or a takeover; exits with the session's code.
pub(super) fn attach(ctx: &mut Ctx, a: AttachArgs) -> CmdResult {
    let key = parse_key(&a.detach_key)?;
    // Without a terminal there is nothing to attach: say so rather than
    // exit 0 having shown nothing.
    if !a.read_only && !std::io::stdin().is_terminal() {
        return Err(CliError::failed(format!(
            "attach needs a terminal on stdin; to watch {0} from a script use `berth logs -f {0}`",
            a.session
        )));
    }
    let session = super::resolve(ctx.client()?, &a.session)?;
    let a = AttachArgs { session, ..a };
    let c = ctx.take_client()?;
    let tty = std::io::stdout().is_terminal();
    let (rows, cols) = berth_os::tty::size().map_or((0, 0), |s| (s.rows, s.cols));
    let (resp, mut stream) = c.attach_pty(AttachPtySessionRequest {
        session_id: a.session.clone(),
        rows: rows as u32,
        cols: cols as u32,
        steal: a.steal,
        term: std::env::var("TERM").unwrap_or_default(),
        is_tty: tty,
        read_only: a.read_only,
        screen_restore: tty && !a.raw,
        ..Default::default()
    })?;
    let raw = berth_os::tty::RawMode::stdin();
    let mut out = std::io::stdout().lock();
    // What the session leaves in this terminal is undone when we leave.
    let mut alt = berth_os::termmodes::AltScreenWatch::new();
    if tty {
        let _ = out.write_all(berth_os::termmodes::ENTER);
    }
    if tty && !a.raw {
        // A clean terminal for the restored screen.
        let _ = out.write_all(b"\x1b[!p\x1b[H\x1b[2J");
    }
    alt.saw(&resp.backlog);
    let _ = out.write_all(&resp.backlog);
    let _ = out.flush();
    let mut input = stream.input()?;
    let resizes = berth_os::tty::watch_resizes()
        .map_err(|e| CliError::failed(format!("cannot follow window size changes: {e}")))?;
    // Window size changes are checked on a timer, not only between
    // keystrokes (the key reader blocks in read).
    let mut resizer = input.clone();
    std::thread::spawn(move || loop {
        std::thread::sleep(std::time::Duration::from_millis(100));
        if resizes.take() {
            if let Some(size) = berth_os::tty::size() {
                let f = pty_input_frame::Frame::Resize(PtyResize {
                    rows: u32::from(size.rows),
                    cols: u32::from(size.cols),
                });
                if resizer.send(f).is_err() {
                    return;
                }
            }
        }
    });
    let read_only = a.read_only;
    let detached = std::sync::Arc::new(AtomicBool::new(false));
    let flag = detached.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            let n = match berth_os::tty::read_input(&mut buf) {
                Ok(0) | Err(_) => {
                    if !read_only {
                        let _ = input.send(pty_input_frame::Frame::Detach(true));
                    }
                    return;
                }
                Ok(n) => n,
            };
            if let Some(pos) = buf[..n].iter().position(|b| *b == key) {
                if !read_only && pos > 0 {
                    let _ = input.send(pty_input_frame::Frame::Input(buf[..pos].to_vec()));
                }
                flag.store(true, Ordering::Relaxed);
                let _ = input.send(pty_input_frame::Frame::Detach(true));
                return;
            }
            if !read_only
                && input
                    .send(pty_input_frame::Frame::Input(buf[..n].to_vec()))
                    .is_err()
            {
                return;
            }
        }
    });
    let mut code = 0;
    let mut note = String::new();
    while let Some(f) = stream.next_frame()? {
        let StreamFrame::Pty(f) = f else { continue };
        match f.frame {
            Some(pty_stream_frame::Frame::Output(b)) => {
                alt.saw(&b);
                let _ = out.write_all(&b);
                let _ = out.flush();
            }
            Some(pty_stream_frame::Frame::MissedBytes(n)) => {
                note = format!("[missed {n} bytes of output]")
            }
            Some(pty_stream_frame::Frame::ExitCode(c)) => {
                code = c;
                note = format!("[session exited with code {c}]");
                break;
            }
            Some(pty_stream_frame::Frame::StolenBy(by)) => {
                note = format!("[detached: taken over by {by}]");
                break;
            }
            Some(pty_stream_frame::Frame::Error(e)) => {
                note = format!("[stream ended: {e}]");
                code = 1;
                break;
            }
            None => {}
        }
    }
    if tty {
        let _ = out.write_all(&berth_os::termmodes::leave_sequence(&alt));
        let _ = out.flush();
    }
    drop(raw);
    if detached.load(Ordering::Relaxed) {
        note = format!("[detached from {}]", a.session);
    }
    if !note.is_empty() {
        eprintln!("\r\n{note}");
    }
    Ok(code)
}
