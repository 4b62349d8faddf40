//! SAVE and RESURRECT: the service set as a JSON dump, written atomically
//! (temp file, fsync, rename, directory fsync) so a crash during SAVE leaves
//! the previous dump whole.

use super::{ServiceError, ServiceInfo, ServiceSpec};
use berth_os::OsError;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Dump format version; readers refuse others.
const VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct Dump {
    version: u32,
    saved_at: f64,
    services: Vec<Entry>,
}

/// One saved service.
#[derive(Serialize, Deserialize)]
pub(crate) struct Entry {
    #[serde(flatten)]
    pub spec: ServiceSpec,
    /// It was online or restarting when saved: RESURRECT starts it.
    pub running: bool,
}

/// What RESURRECT did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ResurrectReport {
    /// Services started.
    pub started: u32,
    /// Saved services that were already running (left alone).
    pub already_running: u32,
    /// Saved as stopped and not present: defined, not started.
    pub defined: u32,
    /// Services that could not be started, with the reason.
    pub failed: Vec<String>,
}

/// Writes `services` to `path`.
pub(crate) fn save(path: &Path, services: &[ServiceInfo]) -> Result<(PathBuf, u32), ServiceError> {
    let dump = Dump {
        version: VERSION,
        saved_at: berth_os::proc::now_epoch(),
        services: services
            .iter()
            .map(|s| Entry {
                spec: s.spec.clone(),
                running: s.status.is_up(),
            })
            .collect(),
    };
    let bytes = serde_json::to_vec_pretty(&dump).expect("a dump always serializes");
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| {
            ServiceError::Os(OsError::new(format!("cannot create {}", dir.display()), e))
        })?;
    }
    berth_os::fsutil::atomic_write(path, &bytes).map_err(|e| {
        ServiceError::Os(OsError::new(
            format!("cannot write the dump {}", path.display()),
            e,
        ))
    })?;
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    Ok((abs, dump.services.len() as u32))
}

/// Reads the dump at `path`.
pub(crate) fn load(path: &Path) -> Result<Vec<Entry>, ServiceError> {
    let bytes = std::fs::read(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            ServiceError::NotFound(format!(
                "no saved services at {} (run SAVE first)",
                path.display()
            ))
        } else {
            ServiceError::Os(OsError::new(
                format!("cannot read the dump {}", path.display()),
                e,
            ))
        }
    })?;
    let dump: Dump = serde_json::from_slice(&bytes).map_err(|e| {
        ServiceError::InvalidArgument(format!("the dump {} is unreadable: {e}", path.display()))
    })?;
    if dump.version != VERSION {
        return Err(ServiceError::InvalidArgument(format!(
            "the dump {} has version {}, this berth reads version {VERSION}",
            path.display(),
            dump.version
        )));
    }
    Ok(dump.services)
}

/// Removes temp files a crashed SAVE left beside the dump.
pub(crate) fn remove_stale_temps(path: &Path) {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return;
    };
    let prefix = format!(".{}.tmp-", name.to_string_lossy());
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        if e.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::Status;

    #[test]
    fn round_trip_keeps_specs_and_running_flags() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("svc.json");
        let mk = |name: &str, status| {
            ServiceInfo::fresh(
                1,
                ServiceSpec {
                    name: name.into(),
                    cmd: vec!["sleep".into(), "9".into()],
                    ..Default::default()
                },
                status,
                "",
            )
        };
        let (path, n) = save(&p, &[mk("a", Status::Online), mk("b", Status::Stopped)]).unwrap();
        assert_eq!(n, 2);
        assert!(path.is_absolute());
        let back = load(&p).unwrap();
        assert_eq!(back[0].spec.name, "a");
        assert!(back[0].running && !back[1].running);
        std::fs::write(t.path().join(".svc.json.tmp-123"), "x").unwrap();
        remove_stale_temps(&p);
        assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_failed_write_names_the_path_and_keeps_the_io_error() {
        let t = tempfile::tempdir().unwrap();
        // A file where the dump's directory should be.
        std::fs::write(t.path().join("blocker"), "x").unwrap();
        let dir = t.path().join("blocker");
        let err = save(&dir.join("svc.json"), &[]).unwrap_err();
        assert!(matches!(err, ServiceError::Os(_)), "{err:?}");
        let text = err.to_string();
        assert!(
            text.starts_with(&format!("cannot create {}: ", dir.display())),
            "{text}"
        );
        let io = std::error::Error::source(&err)
            .and_then(|s| s.downcast_ref::<std::io::Error>())
            .expect("the io::Error is the source");
        assert_eq!(io.kind(), std::io::ErrorKind::AlreadyExists);
    }
}
