//! Being told when a file is written: one inotify instance, watches by
//! path, events read in the order the kernel queued them.
//!
//! The service engine keeps each service's stdout and stderr in spool
//! files (they outlive the daemon); reading a spool the moment it is
//! written, in the order the writes happened across both files, is what
//! keeps a service's stdout and stderr lines in the order the program
//! wrote them (issue 21, item 6). Linux only: `inotify(7)`.

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

/// A watch on one file, as returned by [`Watcher::watch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WatchId(WatchDescriptor);

/// An inotify instance, non-blocking and close-on-exec.
#[derive(Debug)]
pub struct Watcher {
    ino: Inotify,
}

impl Watcher {
    /// A new instance; fails when the process is out of inotify instances
    /// (`EMFILE`, `fs.inotify.max_user_instances`).
    pub fn new() -> io::Result<Self> {
        let ino = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)?;
        Ok(Self { ino })
    }

    /// Watches `path` for writes (`IN_MODIFY`). Watching the same file
    /// twice returns the same id. Fails with `ENOSPC` past
    /// `fs.inotify.max_user_watches`.
    pub fn watch(&self, path: &Path) -> io::Result<WatchId> {
        let wd = self.ino.add_watch(path, AddWatchFlags::IN_MODIFY)?;
        Ok(WatchId(wd))
    }

    /// Stops watching (a watch the kernel already dropped, because its
    /// file was deleted, is not an error).
    pub fn unwatch(&self, id: WatchId) {
        let _ = self.ino.rm_watch(id.0);
    }

    /// The watches written since the last call, in the order the kernel
    /// queued them (consecutive identical events are merged by the
    /// kernel). `WouldBlock` when nothing is queued.
    pub fn read(&self) -> io::Result<Vec<WatchId>> {
        loop {
            // Other events (a removed watch's IN_IGNORED) are skipped.
            let events: Vec<WatchId> = self
                .ino
                .read_events()?
                .into_iter()
                .filter(|e| e.mask.contains(AddWatchFlags::IN_MODIFY))
                .map(|e| WatchId(e.wd))
                .collect();
            if !events.is_empty() {
                return Ok(events);
            }
        }
    }

    /// A second descriptor for the same instance, to register with the
    /// reactor ([`crate::async_fd::register`]) while this one reads.
    pub fn try_clone_fd(&self) -> io::Result<OwnedFd> {
        self.ino.as_fd().try_clone_to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn writes_to_two_files_are_reported_in_order() {
        let t = tempfile::tempdir().unwrap();
        let (a, b) = (t.path().join("a"), t.path().join("b"));
        let mut fa = std::fs::File::create(&a).unwrap();
        let mut fb = std::fs::File::create(&b).unwrap();
        let w = Watcher::new().unwrap();
        let (wa, wb) = (w.watch(&a).unwrap(), w.watch(&b).unwrap());
        assert_ne!(wa, wb);
        assert_eq!(w.read().unwrap_err().kind(), io::ErrorKind::WouldBlock);
        fa.write_all(b"1").unwrap();
        fb.write_all(b"2").unwrap();
        fa.write_all(b"3").unwrap();
        assert_eq!(w.read().unwrap(), [wa, wb, wa]);
        w.unwatch(wb);
        fb.write_all(b"4").unwrap();
        fa.write_all(b"5").unwrap();
        assert_eq!(w.read().unwrap(), [wa]);
        w.unwatch(wa);
        fa.write_all(b"6").unwrap();
        assert_eq!(w.read().unwrap_err().kind(), io::ErrorKind::WouldBlock);
    }
}
