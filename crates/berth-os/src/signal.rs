//! Signalling a process by identity, never by a bare pid: a pid that now
//! belongs to someone else must not be hit.

use crate::proc::{Liveness, ProcessIdentity};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

pub use nix::sys::signal::Signal;

/// What happened when a signal was aimed at an identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalOutcome {
    /// The signal was delivered to the intended process.
    Delivered,
    /// The process had already exited (or is a zombie).
    AlreadyGone,
    /// The pid now belongs to another process; nothing was sent.
    PidReused,
}

fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall; the returned fd is owned by us on success.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just gave us this descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// A pidfd pinned to exactly the process `id`: `Ok(None)` when that
/// process has exited or its pid now belongs to another. The descriptor
/// becomes readable when the process exits, which is how a process that is
/// not our child (so cannot be waited for) is watched.
pub fn pidfd(id: ProcessIdentity) -> io::Result<Option<OwnedFd>> {
    let fd = match pidfd_open(id.pid) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => return Ok(None),
        Err(e) => return Err(e),
    };
    // Checked after opening: the pidfd pins the process we checked.
    Ok((id.liveness() == Liveness::Alive).then_some(fd))
}

/// Sends `sig` to exactly the process `id`.
///
/// A pidfd is opened first and the start time checked after, so the pidfd
/// pins the checked process: a pid recycled between check and send cannot be
/// hit. Kernels without pidfds fall back to check-then-kill.
pub fn send(id: ProcessIdentity, sig: Signal) -> io::Result<SignalOutcome> {
    let fd = match pidfd_open(id.pid) {
        Ok(fd) => Some(fd),
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => return Ok(SignalOutcome::AlreadyGone),
        Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => None,
        Err(e) => return Err(e),
    };
    match id.liveness() {
        Liveness::Gone | Liveness::Zombie => return Ok(SignalOutcome::AlreadyGone),
        Liveness::Reused => return Ok(SignalOutcome::PidReused),
        Liveness::Alive => {}
    }
    let rc = match &fd {
        // SAFETY: valid pidfd, null siginfo is allowed.
        Some(fd) => unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                fd.as_raw_fd(),
                sig as libc::c_int,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            ) as i32
        },
        // SAFETY: kill has no memory-safety preconditions.
        None => unsafe { libc::kill(id.pid as libc::pid_t, sig as libc::c_int) },
    };
    if rc == 0 {
        return Ok(SignalOutcome::Delivered);
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::ESRCH) {
        Ok(SignalOutcome::AlreadyGone)
    } else {
        Err(err)
    }
}

/// Sends `sig` to a whole process group.
pub fn send_group(pgid: i32, sig: Signal) -> io::Result<()> {
    // SAFETY: killpg has no memory-safety preconditions.
    if unsafe { libc::killpg(pgid, sig as libc::c_int) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reused_identity_is_never_signalled() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let real = ProcessIdentity::of(child.id()).unwrap();
        let stale = ProcessIdentity {
            start_ticks: real.start_ticks.wrapping_sub(1),
            ..real
        };
        assert_eq!(
            send(stale, Signal::SIGKILL).unwrap(),
            SignalOutcome::PidReused
        );
        assert!(
            real.is_running(),
            "the real holder of the pid was untouched"
        );
        assert_eq!(
            send(real, Signal::SIGKILL).unwrap(),
            SignalOutcome::Delivered
        );
        child.wait().unwrap();
        assert_eq!(
            send(real, Signal::SIGKILL).unwrap(),
            SignalOutcome::AlreadyGone
        );
    }
}
