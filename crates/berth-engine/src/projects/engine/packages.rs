//! The project engine's ImportPackage (seed 000 method 13) over
//! [`crate::packages`].

use super::*;

/// Packages (seed 000 method 13).
impl Projects {
    /// Where imported packages are unpacked and the trusted signer keys
    /// (`*.pub`) are: [`package_roots`] of the state root, so each scope
    /// has its own.
    pub fn package_dirs(&self) -> (PathBuf, PathBuf) {
        package_roots(&self.cfg.state_root)
    }

    /// ImportPackage: checks the `.vibeapp` at `data_path` (signature,
    /// file list, archive rules; see [`crate::packages`]) before anything
    /// is written, then unpacks it. A version already imported that a
    /// project not stopped runs from is never replaced under it
    /// ([`crate::packages::import_unless_in_use`]: the same contents are
    /// accepted untouched, others are INVALID_PACKAGE naming the
    /// projects). Errors: PATH_NOT_FOUND, INVALID_PACKAGE,
    /// SIGNATURE_INVALID, TAMPERED.
    pub async fn import_package(
        &self,
        data_path: &Path,
        verify_signature: bool,
    ) -> Result<crate::packages::Imported, ProjectError> {
        use crate::packages::PackageError as P;
        let (root, trust) = self.package_dirs();
        let path = data_path.to_path_buf();
        let parse = |b: &[u8]| {
            Manifest::parse(b)
                .map(|m| crate::packages::ManifestFacts {
                    secrets: m.secrets.iter().map(|s| s.name().to_owned()).collect(),
                    app_id: m.app_id,
                    name: m.name,
                    version: m.version,
                })
                .map_err(|e| e.to_string())
        };
        // Projects that are not stopped, by their package directory.
        let live: Vec<(PathBuf, String)> = persist::all(&self.store)?
            .into_iter()
            .filter(|r| r.status != ProjectState::Stopped)
            .map(|r| (r.package_path, r.id))
            .collect();
        let in_use = move |dest: &Path| {
            let dest = std::fs::canonicalize(dest).unwrap_or_else(|_| dest.to_owned());
            let users: Vec<&str> = live
                .iter()
                .filter(|(p, _)| *p == dest)
                .map(|(_, id)| id.as_str())
                .collect();
            (!users.is_empty()).then(|| format!("project {}", users.join(", project ")))
        };
        tokio::task::spawn_blocking(move || {
            crate::packages::import_unless_in_use(
                &path,
                &root,
                &trust,
                verify_signature,
                &parse,
                &in_use,
            )
        })
        .await
        .map_err(|e| ProjectError::Internal(e.to_string()))?
        .map_err(|e| match e {
            P::PathNotFound(m) => ProjectError::PathNotFound(m),
            P::InvalidPackage(m) => ProjectError::InvalidPackage(m),
            P::SignatureInvalid(m) => ProjectError::SignatureInvalid(m),
            P::Tampered(m) => ProjectError::Tampered(m),
            P::Io(m) | P::InvalidKey(m) => ProjectError::Internal(m),
        })
    }
}
