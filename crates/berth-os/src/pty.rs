//! Pseudo-terminals: open a pair, start a child as the session leader with
//! the slave as its controlling terminal, resize, and find the foreground
//! process group (where Ctrl-C goes).

use nix::sys::signal::Signal;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

/// Terminal size in character cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WinSize {
    /// Rows.
    pub rows: u16,
    /// Columns.
    pub cols: u16,
}

impl WinSize {
    fn raw(self) -> libc::winsize {
        libc::winsize {
            ws_row: self.rows,
            ws_col: self.cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        }
    }
}

/// A master/slave pair.
pub struct PtyPair {
    /// The side berth reads output from and writes input to.
    pub master: OwnedFd,
    /// The side the child gets as stdin/stdout/stderr.
    pub slave: OwnedFd,
}

/// Opens a PTY pair of `size`; the master is non-blocking and close-on-exec.
pub fn open(size: WinSize) -> io::Result<PtyPair> {
    let ws = nix::pty::Winsize {
        ws_row: size.rows,
        ws_col: size.cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let p = nix::pty::openpty(Some(&ws), None).map_err(io::Error::from)?;
    crate::fd::set_nonblocking(&p.master, true)?;
    crate::fd::set_cloexec(&p.master)?;
    crate::fd::set_cloexec(&p.slave)?;
    Ok(PtyPair {
        master: p.master,
        slave: p.slave,
    })
}

/// Makes `cmd` run with the slave as stdin/stdout/stderr and controlling
/// terminal, in a new session (so its process group id equals its pid).
pub fn attach_command(cmd: &mut Command, slave: &OwnedFd) -> io::Result<()> {
    let stdin = slave.try_clone()?;
    let stdout = slave.try_clone()?;
    let stderr = slave.try_clone()?;
    cmd.stdin(Stdio::from(stdin))
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::from(stderr));
    // SAFETY: the closure runs between fork and exec and makes only
    // async-signal-safe calls (setsid, ioctl, sigprocmask, signal).
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid()?;
            // fd 0 is the slave by now: make it the controlling terminal.
            if libc::ioctl(0, libc::TIOCSCTTY as _, 0) < 0 {
                return Err(io::Error::last_os_error());
            }
            crate::spawn::reset_signals(&[
                Signal::SIGPIPE,
                Signal::SIGINT,
                Signal::SIGTERM,
                Signal::SIGHUP,
                Signal::SIGQUIT,
                Signal::SIGTSTP,
            ]);
            Ok(())
        });
    }
    Ok(())
}

/// Sets the terminal size; the kernel sends SIGWINCH to the foreground group.
pub fn resize(master: &impl AsRawFd, size: WinSize) -> io::Result<()> {
    let ws = size.raw();
    // SAFETY: TIOCSWINSZ reads a winsize struct we own.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The current terminal size.
pub fn size(master: &impl AsRawFd) -> io::Result<WinSize> {
    let mut ws = WinSize { rows: 0, cols: 0 }.raw();
    // SAFETY: TIOCGWINSZ writes into a winsize struct we own.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(WinSize {
        rows: ws.ws_row,
        cols: ws.ws_col,
    })
}

/// The terminal's foreground process group (the job that gets Ctrl-C).
pub fn foreground_group(master: &impl AsFd) -> io::Result<i32> {
    Ok(nix::unistd::tcgetpgrp(master)?.as_raw())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn child_sees_its_size_and_a_controlling_terminal() {
        let pair = open(WinSize {
            rows: 33,
            cols: 101,
        })
        .unwrap();
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "stty size; tty >/dev/null && echo has-tty"]);
        attach_command(&mut cmd, &pair.slave).unwrap();
        let mut child = cmd.spawn().unwrap();
        drop(pair.slave);
        child.wait().unwrap();
        let mut out = Vec::new();
        let mut f = std::fs::File::from(pair.master);
        let mut buf = [0u8; 4096];
        // Non-blocking master: read what is there, until EIO/EAGAIN.
        for _ in 0..200 {
            match f.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(std::time::Duration::from_millis(5))
                }
                Err(_) => break,
            }
        }
        let text = String::from_utf8_lossy(&out);
        assert!(text.contains("33 101"), "{text}");
        assert!(text.contains("has-tty"), "{text}");
    }
}
