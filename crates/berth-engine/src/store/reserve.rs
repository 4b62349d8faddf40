//! An emergency reserve: a pre-allocated file beside the database that is
//! deleted when the disk fills, so berth can still record state.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};

/// Lifecycle of the reserve, as reported by STATUS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReserveState {
    /// The reserve file is allocated and waiting.
    Armed,
    /// It was deleted to recover from a full disk.
    Released,
    /// It could not be allocated at start (or is disabled).
    Degraded,
}

impl ReserveState {
    /// The word STATUS reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Armed => "armed",
            Self::Released => "released",
            Self::Degraded => "degraded",
        }
    }
}

/// The reserve file and its state.
pub struct Reserve {
    path: PathBuf,
    state: AtomicU8,
}

impl Reserve {
    /// Allocates `bytes` at `path` (really allocated, not sparse).
    /// A size of 0, or any failure, leaves the reserve degraded.
    pub fn arm(path: &Path, bytes: u64) -> Self {
        let state = match Self::allocate(path, bytes) {
            Ok(()) => ReserveState::Armed,
            Err(e) => {
                if bytes > 0 {
                    tracing::warn!("emergency reserve {} not allocated: {e}", path.display());
                }
                ReserveState::Degraded
            }
        };
        Self {
            path: path.to_path_buf(),
            state: AtomicU8::new(state as u8),
        }
    }

    fn allocate(path: &Path, bytes: u64) -> std::io::Result<()> {
        if bytes == 0 {
            return Err(std::io::Error::other("reserve disabled (size 0)"));
        }
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)?;
        if let Err(e) = berth_os::fsutil::allocate(&f, bytes) {
            drop(f);
            let _ = std::fs::remove_file(path);
            return Err(e);
        }
        f.sync_all()
    }

    /// Current state.
    pub fn state(&self) -> ReserveState {
        match self.state.load(Ordering::Acquire) {
            0 => ReserveState::Armed,
            1 => ReserveState::Released,
            _ => ReserveState::Degraded,
        }
    }

    /// Deletes the reserve if armed. True if space was freed by this call.
    pub fn release(&self) -> bool {
        let armed = self
            .state
            .compare_exchange(
                ReserveState::Armed as u8,
                ReserveState::Released as u8,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok();
        armed && std::fs::remove_file(&self.path).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn armed_reserve_occupies_real_blocks_and_releases_once() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("r");
        let r = Reserve::arm(&p, 1 << 20);
        assert_eq!(r.state(), ReserveState::Armed);
        assert!(std::fs::metadata(&p).unwrap().blocks() * 512 >= 1 << 20);
        assert!(r.release());
        assert!(!p.exists());
        assert!(!r.release());
        assert_eq!(r.state(), ReserveState::Released);
        assert_eq!(
            Reserve::arm(&t.path().join("z"), 0).state(),
            ReserveState::Degraded
        );
    }
}
