//! The terminal a CLI client sits in: raw mode that is always restored,
//! the window size, resize notices, and unbuffered key reads.
//!
//! `berth attach` and `berth remote attach` pass keystrokes through one by
//! one (raw mode), size the remote screen to this one, and follow its
//! resizes (SIGWINCH). Everything that touches termios, ioctls or signal
//! dispositions for them lives here, so the CLI stays free of `unsafe`.

use nix::sys::signal::{self, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::sys::termios::{self, SetArg, Termios};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

pub use crate::pty::WinSize;

/// A terminal in raw mode (no echo, no line editing, no signals from
/// keys); dropping it restores the attributes saved on entry, so every
/// exit path (errors and panics that unwind included) gives the user back
/// a working shell.
pub struct RawMode {
    /// The terminal and its attributes before entry; `None` when there was
    /// no terminal to change.
    saved: Option<(OwnedFd, Termios)>,
}

impl RawMode {
    /// Raw mode on standard input. When stdin is not a terminal (a pipe,
    /// `/dev/null`) nothing changes and the guard is inert: callers need
    /// no separate check.
    pub fn stdin() -> Self {
        match io::stdin().as_fd().try_clone_to_owned() {
            Ok(fd) => Self::on(fd),
            Err(_) => RawMode { saved: None },
        }
    }

    /// Raw mode on the terminal `fd` (inert when `fd` is not a terminal).
    pub fn on(fd: OwnedFd) -> Self {
        let Ok(saved) = termios::tcgetattr(&fd) else {
            return RawMode { saved: None };
        };
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        if termios::tcsetattr(&fd, SetArg::TCSANOW, &raw).is_err() {
            return RawMode { saved: None };
        }
        RawMode {
            saved: Some((fd, saved)),
        }
    }

    /// Whether a terminal was actually switched to raw mode.
    pub fn is_active(&self) -> bool {
        self.saved.is_some()
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some((fd, saved)) = &self.saved {
            let _ = termios::tcsetattr(fd, SetArg::TCSANOW, saved);
        }
    }
}

/// The size of the terminal on standard output, in character cells;
/// `None` when stdout is not a terminal or reports no size (0x0).
pub fn size() -> Option<WinSize> {
    crate::pty::size(&io::stdout())
        .ok()
        .filter(|s| s.rows > 0 && s.cols > 0)
}

/// Set by the SIGWINCH handler; cleared by [`Resizes::take`].
static RESIZED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigwinch(_: libc::c_int) {
    RESIZED.store(true, Ordering::Relaxed);
}

/// Notices of window size changes (SIGWINCH) of this process's terminal.
///
/// One flag per process: every `Resizes` sees the same notices, and a
/// notice taken by one is gone for the others.
#[derive(Debug)]
pub struct Resizes(());

/// Starts noticing window size changes: installs a SIGWINCH handler (once
/// per process, replacing any earlier one) that only sets a flag. The
/// handler restarts interrupted reads (`SA_RESTART`), so a thread blocked
/// reading keys is not woken by a resize. Async code can use tokio's
/// `SignalKind::window_change()` instead; a process should use one or the
/// other.
///
/// # Errors
/// The handler could not be installed (`sigaction` failed).
pub fn watch_resizes() -> io::Result<Resizes> {
    static INSTALLED: OnceLock<Result<(), nix::Error>> = OnceLock::new();
    let installed = INSTALLED.get_or_init(|| {
        let action = SigAction::new(
            SigHandler::Handler(on_sigwinch),
            SaFlags::SA_RESTART,
            SigSet::empty(),
        );
        // SAFETY: the handler only stores to an atomic, which is
        // async-signal-safe; no other SIGWINCH handler is relied on.
        unsafe { signal::sigaction(Signal::SIGWINCH, &action) }.map(|_| ())
    });
    match installed {
        Ok(()) => Ok(Resizes(())),
        Err(e) => Err(io::Error::from(*e)),
    }
}

impl Resizes {
    /// Whether the window size changed since the last call.
    pub fn take(&self) -> bool {
        RESIZED.swap(false, Ordering::Relaxed)
    }
}

/// One unbuffered `read(2)` from standard input: what the user typed so
/// far, up to `buf.len()` bytes, without waiting to fill `buf` and without
/// a buffer that would hold keys back. `Ok(0)` is end of input.
///
/// # Errors
/// The read failed (e.g. stdin closed under us).
pub fn read_input(buf: &mut [u8]) -> io::Result<usize> {
    nix::unistd::read(io::stdin(), buf).map_err(io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::termios::LocalFlags;

    #[test]
    fn raw_mode_is_restored_when_the_guard_drops() {
        let pair = crate::pty::open(WinSize { rows: 5, cols: 20 }).unwrap();
        let before = termios::tcgetattr(&pair.slave).unwrap();
        assert!(before.local_flags.contains(LocalFlags::ICANON));
        let raw = RawMode::on(pair.slave.try_clone().unwrap());
        assert!(raw.is_active());
        let during = termios::tcgetattr(&pair.slave).unwrap();
        assert!(!during.local_flags.contains(LocalFlags::ICANON));
        assert!(!during.local_flags.contains(LocalFlags::ECHO));
        drop(raw);
        let after = termios::tcgetattr(&pair.slave).unwrap();
        assert_eq!(after.local_flags, before.local_flags);
        assert_eq!(after.input_flags, before.input_flags);
    }

    #[test]
    fn raw_mode_on_a_non_terminal_is_inert() {
        let file = tempfile::tempfile().unwrap();
        assert!(!RawMode::on(file.into()).is_active());
    }

    #[test]
    fn a_resize_signal_is_noticed_once() {
        let r = watch_resizes().unwrap();
        r.take();
        signal::raise(Signal::SIGWINCH).unwrap();
        assert!(r.take());
        assert!(!r.take());
    }
}
