//! File descriptors: blocking mode, close-on-exec, pipes, and the raw reads
//! and writes the engines do on non-blocking descriptors (PTY masters).
//!
//! Every function takes a borrowed descriptor (`AsFd`), so none can act on
//! a descriptor that was already closed.

use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

/// Turns `O_NONBLOCK` on (`true`) or off (`false`) for `fd`, keeping its
/// other status flags.
///
/// Descriptors are shared between duplicates: this changes the open file
/// description, so every duplicate of `fd` sees the new mode.
pub fn set_nonblocking(fd: impl AsFd, on: bool) -> io::Result<()> {
    let fd = fd.as_fd();
    let flags = OFlag::from_bits_retain(fcntl(fd, FcntlArg::F_GETFL)?);
    let want = if on {
        flags | OFlag::O_NONBLOCK
    } else {
        flags - OFlag::O_NONBLOCK
    };
    if want != flags {
        fcntl(fd, FcntlArg::F_SETFL(want))?;
    }
    Ok(())
}

/// Marks `fd` close-on-exec, so a child started later does not inherit it.
pub fn set_cloexec(fd: impl AsFd) -> io::Result<()> {
    let fd = fd.as_fd();
    let flags = FdFlag::from_bits_retain(fcntl(fd, FcntlArg::F_GETFD)?);
    fcntl(fd, FcntlArg::F_SETFD(flags | FdFlag::FD_CLOEXEC))?;
    Ok(())
}

/// A new pipe as `(read end, write end)`, both close-on-exec and blocking
/// (`pipe2(O_CLOEXEC)`): a child gets an end only when it is handed one
/// explicitly as a stdio.
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(nix::unistd::pipe2(OFlag::O_CLOEXEC)?)
}

/// One `write(2)` of `data` to `fd`: the number of bytes taken, which may be
/// fewer than `data.len()`. On a non-blocking descriptor that is full the
/// error is of kind `WouldBlock`.
pub fn write(fd: impl AsFd, data: &[u8]) -> io::Result<usize> {
    Ok(nix::unistd::write(fd, data)?)
}

/// One `read(2)` from `fd` into the spare capacity of `buf` (after its
/// current length), growing the length by the number of bytes read, which
/// is returned; 0 means end of file, or that `buf` had no spare capacity.
///
/// The spare capacity is not zeroed first, so a large buffer that is
/// rarely filled costs only the pages the kernel actually wrote: an idle
/// reader's buffer costs no resident memory. A non-blocking descriptor with
/// nothing to read gives an error of kind `WouldBlock`.
pub fn read_into_spare(fd: impl AsFd, buf: &mut Vec<u8>) -> io::Result<usize> {
    let spare = buf.spare_capacity_mut();
    if spare.is_empty() {
        return Ok(0);
    }
    // SAFETY: the kernel writes at most `spare.len()` bytes into the spare
    // capacity, which is valid for writes of that length; the length is then
    // extended by exactly the count it reports, so only initialised bytes
    // become part of the vector.
    let n = unsafe {
        libc::read(
            fd.as_fd().as_raw_fd(),
            spare.as_mut_ptr().cast(),
            spare.len(),
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let n = n as usize;
    // SAFETY: see above: `n <= spare.len()` bytes were just initialised.
    unsafe { buf.set_len(buf.len() + n) };
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pipe_carries_bytes_into_spare_capacity() {
        let (r, w) = pipe().unwrap();
        assert_eq!(write(&w, b"hello").unwrap(), 5);
        let mut buf = Vec::with_capacity(3);
        buf.push(b'>');
        assert_eq!(read_into_spare(&r, &mut buf).unwrap(), 2);
        assert_eq!(buf, b">he");
        assert_eq!(read_into_spare(&r, &mut buf).unwrap(), 0, "no room left");
        buf.reserve(16);
        assert_eq!(read_into_spare(&r, &mut buf).unwrap(), 3);
        assert_eq!(buf, b">hello");
        drop(w);
        assert_eq!(read_into_spare(&r, &mut buf).unwrap(), 0, "end of file");
    }

    #[test]
    fn nonblocking_mode_toggles_and_an_empty_pipe_would_block() {
        let (r, _w) = pipe().unwrap();
        set_nonblocking(&r, true).unwrap();
        let mut buf = Vec::with_capacity(8);
        let err = read_into_spare(&r, &mut buf).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        set_nonblocking(&r, false).unwrap();
        let fl = OFlag::from_bits_retain(fcntl(&r, FcntlArg::F_GETFL).unwrap());
        assert!(!fl.contains(OFlag::O_NONBLOCK));
    }

    #[test]
    fn pipe_ends_are_close_on_exec() {
        let (r, w) = pipe().unwrap();
        for fd in [&r, &w] {
            let fl = FdFlag::from_bits_retain(fcntl(fd, FcntlArg::F_GETFD).unwrap());
            assert!(fl.contains(FdFlag::FD_CLOEXEC));
        }
    }
}
