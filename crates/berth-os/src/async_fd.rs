//! Registering owned descriptors with tokio's reactor.
//!
//! `AsyncFd::register` is `unsafe` because tokio cannot know that the
//! descriptor it watches stays open, and stays the same, for as long as it
//! is registered. An [`OwnedFd`] moved into the `AsyncFd` guarantees both:
//! nobody else can close it, and it is closed only when the `AsyncFd` is
//! dropped. So registering one is safe, and the engines need no `unsafe`.

use std::io;
use std::os::fd::OwnedFd;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// Watches `fd` for `interest` (readable, writable, or both) on the current
/// tokio runtime; the `AsyncFd` owns `fd` from here on.
///
/// The descriptor should be non-blocking ([`crate::fd::set_nonblocking`])
/// unless it is only waited on, never read (a pidfd). Panics outside a tokio
/// runtime, as tokio does; fails when the reactor refuses the descriptor
/// (a regular file, for one).
pub fn register(fd: OwnedFd, interest: Interest) -> io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: `fd` is owned by the AsyncFd from here on: it stays open and
    // refers to the same open file description until the AsyncFd is dropped
    // (or gives it back through `into_inner`), and an OwnedFd's `as_raw_fd`
    // always returns the same number.
    unsafe { AsyncFd::register_with_interest(fd, interest) }.map_err(io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_pipe_turns_readable_when_written() {
        let (r, w) = crate::fd::pipe().unwrap();
        crate::fd::set_nonblocking(&r, true).unwrap();
        let r = register(r, Interest::READABLE).unwrap();
        crate::fd::write(&w, b"x").unwrap();
        let mut guard = r.readable().await.unwrap();
        let mut buf = Vec::with_capacity(4);
        let n = guard
            .try_io(|fd| crate::fd::read_into_spare(fd.get_ref(), &mut buf))
            .unwrap()
            .unwrap();
        assert_eq!((n, buf.as_slice()), (1, &b"x"[..]));
    }

    #[tokio::test]
    async fn a_regular_file_is_refused() {
        let f = tempfile::tempfile().unwrap();
        let err = register(OwnedFd::from(f), Interest::READABLE).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EPERM));
    }
}
