//! Signalling a process by identity, never by a bare pid: a pid that now
//! belongs to someone else must not be hit.

use crate::proc::{Liveness, ProcessIdentity};
use nix::unistd::Pid;
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
    let sent = match &fd {
        Some(fd) => {
            // SAFETY: a valid pidfd, and a null siginfo is allowed.
            let rc = unsafe {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    fd.as_raw_fd(),
                    sig as libc::c_int,
                    std::ptr::null::<libc::siginfo_t>(),
                    0,
                )
            };
            if rc == 0 {
                Ok(())
            } else {
                Err(io::Error::last_os_error())
            }
        }
        None => nix::sys::signal::kill(Pid::from_raw(id.pid as libc::pid_t), sig)
            .map_err(io::Error::from),
    };
    match sent {
        Ok(()) => Ok(SignalOutcome::Delivered),
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(SignalOutcome::AlreadyGone),
        Err(e) => Err(e),
    }
}

/// Sends `sig` to a whole process group.
pub fn send_group(pgid: i32, sig: Signal) -> io::Result<()> {
    Ok(nix::sys::signal::killpg(Pid::from_raw(pgid), sig)?)
}

/// True while some process we may signal is still in the group `pgid`
/// (signal 0 probes without sending). Groups 0 and 1 are never probed: 0
/// would mean our own group and 1 is init's, so both answer false, and so
/// does a group whose members all belong to another user (`EPERM`).
pub fn group_exists(pgid: u32) -> bool {
    match i32::try_from(pgid) {
        Ok(pgid) if pgid > 1 => nix::sys::signal::killpg(Pid::from_raw(pgid), None).is_ok(),
        _ => false,
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

    #[test]
    fn a_group_exists_while_its_leader_runs() {
        let mut cmd = std::process::Command::new("sleep");
        cmd.arg("30");
        crate::spawn::new_session(&mut cmd);
        let mut child = cmd.spawn().unwrap();
        assert!(group_exists(child.id()));
        assert!(!group_exists(0) && !group_exists(1) && !group_exists(u32::MAX));
        send_group(child.id() as i32, Signal::SIGKILL).unwrap();
        child.wait().unwrap();
        assert!(!group_exists(child.id()), "the reaped group is gone");
    }
}
