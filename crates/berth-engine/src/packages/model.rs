//! The shapes of package import (seed 000 method 13, ImportPackage).

use std::path::PathBuf;

/// ImportPackage's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    /// From the manifest.
    pub app_id: String,
    /// From the manifest.
    pub name: String,
    /// From the manifest.
    pub version: String,
    /// "trusted" (valid signature by a key in the trust store),
    /// "untrusted" (valid signature by another key) or "unsigned".
    pub trust_status: String,
    /// Where the package was unpacked (a project directory for
    /// EnsureProject's `package_path`).
    pub package_path: PathBuf,
    /// What the app will be able to do: those declared in
    /// `capabilities.json`, and `secret:<NAME>` for each secret it reads.
    pub capabilities: Vec<String>,
}

/// What import needs of a manifest; the caller parses it (the project
/// engine's manifest rules), so this module stays independent of it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ManifestFacts {
    /// The app id.
    pub app_id: String,
    /// Its display name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// Names of the secrets it reads.
    pub secrets: Vec<String>,
}

/// Why an import was refused; nothing of the package is left on disk.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PackageError {
    /// The package file does not exist.
    #[error("{0}")]
    PathNotFound(String),
    /// A malformed archive: names the entry and the rule it breaks.
    #[error("{0}")]
    InvalidPackage(String),
    /// The signature does not verify (or is missing when required).
    #[error("{0}")]
    SignatureInvalid(String),
    /// A file differs from, is missing from, or is added to the signed
    /// list; names it.
    #[error("{0}")]
    Tampered(String),
    /// The packages directory could not be written.
    #[error("{0}")]
    Io(String),
    /// A signing key that cannot be read or used (not a minisign key, a
    /// wrong password, an unknown key id).
    #[error("{0}")]
    InvalidKey(String),
}
