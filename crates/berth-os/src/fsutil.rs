//! File-system helpers with the guarantees berth promises: private socket
//! directories, writes that a crash cannot leave half-done, disk space
//! reserved ahead of need and given back behind a reader, and FIFOs.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

/// Creates `dir` (and parents) and makes sure it is a real directory owned
/// by this user with mode 0700, tightening the mode if needed.
///
/// Refuses a symlink or a directory owned by someone else: a socket placed
/// there could be intercepted.
pub fn ensure_private_dir(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    let meta = fs::symlink_metadata(dir)?;
    if !meta.file_type().is_dir() {
        return Err(io::Error::other(format!(
            "{} is not a directory (a symlink or file is in the way)",
            dir.display()
        )));
    }
    let me = crate::dirs::uid();
    if meta.uid() != me {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{} is owned by uid {}, not by uid {me}",
                dir.display(),
                meta.uid()
            ),
        ));
    }
    if meta.mode() & 0o777 != 0o700 {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Replaces `path` with `bytes` atomically: a temporary file beside it is
/// written and fsynced, renamed over `path`, and the directory fsynced.
/// Readers see the old content or the new, never a torn or empty file.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode_private()
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Writes every dirty page and metadata change of the file system holding
/// `path` to disk (`syncfs(2)`): one call in place of an fsync per file
/// when a writer has made thousands of small files (the snapshot store's
/// chunks). Errors are the kernel's (or `open`'s for `path`).
pub fn sync_filesystem(path: &Path) -> io::Result<()> {
    let f = fs::File::open(path)?;
    nix::unistd::syncfs(&f)?;
    Ok(())
}

/// Reserves `len` bytes of disk for `file` from offset 0 (`fallocate(2)`,
/// mode 0): later writes into that range cannot fail for lack of space, and
/// the file grows to at least `len` bytes.
///
/// Errors are the kernel's: `ENOSPC` when the disk cannot hold it,
/// `EOPNOTSUPP` on a file system without preallocation.
pub fn allocate(file: &fs::File, len: u64) -> io::Result<()> {
    let len = offset(len)?;
    nix::fcntl::fallocate(file, nix::fcntl::FallocateFlags::empty(), 0, len)?;
    Ok(())
}

/// Frees the disk blocks of `len` bytes at `offset` of `file` while keeping
/// its size (`FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE`): the range reads
/// back as zeros. A spool that is read from the front gives its consumed
/// part back this way without moving what follows.
pub fn punch_hole(file: &fs::File, offset_bytes: u64, len: u64) -> io::Result<()> {
    use nix::fcntl::FallocateFlags as F;
    nix::fcntl::fallocate(
        file,
        F::FALLOC_FL_PUNCH_HOLE | F::FALLOC_FL_KEEP_SIZE,
        offset(offset_bytes)?,
        offset(len)?,
    )?;
    Ok(())
}

fn offset(n: u64) -> io::Result<libc::off_t> {
    libc::off_t::try_from(n).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{n} bytes is beyond the largest file offset"),
        )
    })
}

/// Creates a FIFO (named pipe) at `path` with permission bits `mode` (before
/// the umask). Fails with `AlreadyExists` when something is at `path`.
pub fn make_fifo(path: &Path, mode: u32) -> io::Result<()> {
    let mode = nix::sys::stat::Mode::from_bits_truncate(mode as libc::mode_t);
    nix::unistd::mkfifo(path, mode)?;
    Ok(())
}

trait PrivateMode {
    fn mode_private(&mut self) -> &mut Self;
}

impl PrivateMode for fs::OpenOptions {
    fn mode_private(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.mode(0o600)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileTypeExt;

    #[test]
    fn private_dir_is_tightened_to_0700() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("a/b");
        fs::create_dir_all(&d).unwrap();
        fs::set_permissions(&d, fs::Permissions::from_mode(0o755)).unwrap();
        ensure_private_dir(&d).unwrap();
        assert_eq!(fs::metadata(&d).unwrap().mode() & 0o777, 0o700);
    }

    #[test]
    fn symlinked_dir_is_refused() {
        let t = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(t.path(), t.path().join("link")).unwrap();
        assert!(ensure_private_dir(&t.path().join("link")).is_err());
    }

    #[test]
    fn allocated_space_is_reserved_and_a_punched_hole_keeps_the_size() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("spool");
        let f = fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(&p)
            .unwrap();
        let len = 1 << 20;
        match allocate(&f, len) {
            Ok(()) => {}
            // tmpfs and overlayfs of old kernels cannot preallocate.
            Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => return,
            Err(e) => panic!("allocate: {e}"),
        }
        let meta = f.metadata().unwrap();
        assert_eq!(meta.len(), len);
        assert!(meta.blocks() * 512 >= len, "blocks are reserved");
        punch_hole(&f, 0, len / 2).unwrap();
        let after = f.metadata().unwrap();
        assert_eq!(after.len(), len, "the size is kept");
        assert!(
            after.blocks() < meta.blocks(),
            "the hole's blocks are freed"
        );
    }

    #[test]
    fn offsets_beyond_off_t_are_refused() {
        let f = tempfile::tempfile().unwrap();
        let e = punch_hole(&f, u64::MAX, 1).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn a_fifo_is_made_once() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("fifo");
        make_fifo(&p, 0o600).unwrap();
        assert!(fs::symlink_metadata(&p).unwrap().file_type().is_fifo());
        assert_eq!(
            make_fifo(&p, 0o600).unwrap_err().kind(),
            io::ErrorKind::AlreadyExists
        );
    }

    #[test]
    fn atomic_write_replaces_whole_file() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("dump.json");
        atomic_write(&p, b"one").unwrap();
        atomic_write(&p, b"two!").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two!");
        assert_eq!(
            fs::read_dir(t.path()).unwrap().count(),
            1,
            "no temp file left"
        );
    }
}
