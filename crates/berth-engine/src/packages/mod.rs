//! `.vibeapp` packages (seed 000 method 13, ImportPackage; issue 11; the
//! format is in `docs/vibeapp-format.md`): a tar (zstd-compressed or not)
//! of the app's files with `manifest.json`, a signed list of every file's
//! SHA-256 (`SHA256SUMS`), its minisign signature (`SHA256SUMS.minisig`)
//! and the signer's public key (`signer.pub`).
//!
//! The whole archive is read into memory and checked (entries, caps,
//! signature, list) before a byte is written; it is then written to a
//! temporary directory inside the packages directory and renamed into
//! place, so a refused or interrupted import leaves nothing behind.
//! `minisign-verify` checks signatures (a small, dependency-free Ed25519
//! verifier of the minisign format, so users can check packages with the
//! `minisign` tool); `tar` reads the container; `sha2` hashes files.

mod archive;
pub mod keys;
pub mod model;
pub mod pack;

pub use model::{Imported, ManifestFacts, PackageError};

use archive::Item;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

/// The signed list of files.
pub const SUMS_FILE: &str = "SHA256SUMS";
/// Its minisign signature.
pub const SIG_FILE: &str = "SHA256SUMS.minisig";
/// The signer's minisign public key.
pub const SIGNER_FILE: &str = "signer.pub";
/// The app's declared capabilities (optional).
pub const CAPABILITIES_FILE: &str = "capabilities.json";
pub(crate) const MANIFEST: &str = "manifest.json";

pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The SHA-256 the list holds for an item: of a file's bytes, of
/// `symlink:<target>` for a symlink.
fn item_hash(item: &Item) -> Option<String> {
    match item {
        Item::File(_, data) => Some(hex(&Sha256::digest(data))),
        Item::Symlink(t) => Some(hex(&Sha256::digest(format!("symlink:{t}").as_bytes()))),
        Item::Dir(_) => None,
    }
}

/// The key line (base64) of a minisign public key file.
fn key_line(text: &str) -> Option<&str> {
    text.lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty() && !l.starts_with("untrusted comment:"))
}

fn text<'a>(items: &'a BTreeMap<String, Item>, name: &str) -> Option<&'a str> {
    match items.get(name) {
        Some(Item::File(_, d)) => std::str::from_utf8(d).ok(),
        _ => None,
    }
}

/// Checks the signature; returns the trust status.
fn check_signature(
    items: &BTreeMap<String, Item>,
    trust_dir: &Path,
    verify: bool,
) -> Result<&'static str, PackageError> {
    let bad = PackageError::SignatureInvalid;
    let Some(sig) = text(items, SIG_FILE) else {
        if verify {
            return Err(bad(format!(
                "the package is not signed (no {SIG_FILE}); to accept it unsigned, import it with `berth import --no-verify` (ImportPackage: verify_signature = false)"
            )));
        }
        return Ok("unsigned");
    };
    let signer = text(items, SIGNER_FILE)
        .ok_or_else(|| bad(format!("{SIG_FILE} is present but {SIGNER_FILE} is not")))?;
    let key = minisign_verify::PublicKey::decode(signer)
        .map_err(|e| bad(format!("{SIGNER_FILE} is not a minisign public key: {e}")))?;
    let sig = minisign_verify::Signature::decode(sig)
        .map_err(|e| bad(format!("{SIG_FILE} is not a minisign signature: {e}")))?;
    let sums = match items.get(SUMS_FILE) {
        Some(Item::File(_, d)) => d,
        _ => return Err(bad(format!("{SIG_FILE} is present but {SUMS_FILE} is not"))),
    };
    key.verify(sums, &sig, false)
        .map_err(|e| bad(format!("the signature of {SUMS_FILE} does not verify: {e}")))?;
    let mine = key_line(signer);
    let trusted = fs::read_dir(trust_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| fs::read_to_string(e.path()).ok())
        .any(|t| key_line(&t).is_some() && key_line(&t) == mine);
    Ok(if trusted { "trusted" } else { "untrusted" })
}

/// Checks every file and symlink against the signed list.
fn check_list(items: &BTreeMap<String, Item>) -> Result<(), PackageError> {
    let sums = text(items, SUMS_FILE).ok_or_else(|| {
        PackageError::InvalidPackage(format!("{SUMS_FILE} (the list of files) is missing"))
    })?;
    let mut listed = BTreeMap::new();
    for (n, line) in sums
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let (hash, path) = line.split_once("  ").ok_or_else(|| {
            PackageError::Tampered(format!(
                "line {} of {SUMS_FILE} is not `<sha256>  <path>`",
                n + 1
            ))
        })?;
        listed.insert(
            path.trim_start_matches("./").to_owned(),
            hash.to_ascii_lowercase(),
        );
    }
    for (name, item) in items {
        if [SUMS_FILE, SIG_FILE, SIGNER_FILE].contains(&name.as_str()) {
            continue;
        }
        let Some(actual) = item_hash(item) else {
            continue;
        };
        match listed.remove(name) {
            None => {
                return Err(PackageError::Tampered(format!(
                    "{name} is in the package but not in the signed list"
                )))
            }
            Some(h) if h != actual => {
                return Err(PackageError::Tampered(format!(
                    "{name} differs from the signed list"
                )))
            }
            Some(_) => {}
        }
    }
    if let Some(name) = listed.keys().next() {
        return Err(PackageError::Tampered(format!(
            "{name} is in the signed list but not in the package"
        )));
    }
    Ok(())
}

fn component(what: &str, s: &str) -> Result<(), PackageError> {
    let ok = !s.is_empty()
        && s.len() <= 128
        && !s.starts_with('.')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    if ok {
        Ok(())
    } else {
        Err(PackageError::InvalidPackage(format!(
            "manifest {what} {s:?} must be letters, digits, '.', '-' or '_'"
        )))
    }
}

/// A package checked in memory and not yet unpacked (see [`check`]).
pub struct Checked {
    items: BTreeMap<String, archive::Item>,
    /// What the manifest says.
    pub manifest: ManifestFacts,
    /// Declared in `capabilities.json`, plus `secret:<NAME>` per secret.
    pub capabilities: Vec<String>,
    /// "trusted", "untrusted" or "unsigned" (see [`Imported`]).
    pub trust_status: String,
}

/// Checks a package's bytes without touching the disk beyond `trust_dir`:
/// the archive (zstd or plain tar) within its caps (entries, sizes, paths,
/// links, devices), the signature over `SHA256SUMS` and every file against
/// it, the manifest (by `parse_manifest`) and `capabilities.json`. Errors:
/// INVALID_PACKAGE, SIGNATURE_INVALID or TAMPERED, each naming the entry.
/// [`import`] unpacks only what this accepted; fuzzing feeds it any bytes
/// (`fuzz/fuzz_targets/package_archive.rs`).
pub fn check(
    bytes: &[u8],
    trust_dir: &Path,
    verify_signature: bool,
    parse_manifest: &dyn Fn(&[u8]) -> Result<ManifestFacts, String>,
) -> Result<Checked, PackageError> {
    if bytes.len() as u64 > archive::MAX_TOTAL_BYTES {
        return Err(PackageError::InvalidPackage(format!(
            "the package is larger than {} bytes",
            archive::MAX_TOTAL_BYTES
        )));
    }
    let items = archive::read(bytes)?;
    let manifest_bytes = match items.get(MANIFEST) {
        Some(Item::File(_, d)) => d.clone(),
        _ => {
            return Err(PackageError::InvalidPackage(format!(
                "the package has no {MANIFEST}"
            )))
        }
    };
    let trust = check_signature(&items, trust_dir, verify_signature)?;
    check_list(&items)?;
    let manifest = parse_manifest(&manifest_bytes)
        .map_err(|e| PackageError::InvalidPackage(format!("{MANIFEST}: {e}")))?;
    component("app_id", &manifest.app_id)?;
    component("version", &manifest.version)?;
    // Declared capabilities are a JSON array of strings in
    // `capabilities.json` (the manifest is the project's, whose fields
    // EnsureProject checks strictly).
    let mut capabilities: Vec<String> = match text(&items, CAPABILITIES_FILE) {
        None => Vec::new(),
        Some(t) => serde_json::from_str(t).map_err(|e| {
            PackageError::InvalidPackage(format!(
                "{CAPABILITIES_FILE} is not a JSON array of strings: {e}"
            ))
        })?,
    };
    // `berth pack` already lists each secret; name each capability once.
    for s in &manifest.secrets {
        let c = format!("secret:{s}");
        if !capabilities.contains(&c) {
            capabilities.push(c);
        }
    }
    Ok(Checked {
        items,
        manifest,
        capabilities,
        trust_status: trust.to_owned(),
    })
}

/// The prefix of the temporary directory an import unpacks to, beside
/// its destination.
const IMPORT_TEMP_PREFIX: &str = ".import-";

/// A temporary name no other import (of this process or another) uses.
fn import_temp() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{IMPORT_TEMP_PREFIX}{}-{n}", std::process::id())
}

/// Removes the temporaries of imports a killed daemon left in
/// `<packages_root>/<app_id>/` (call it when no import runs: at daemon
/// start). Failures are logged, not returned: they only waste space.
pub fn remove_leftovers(packages_root: &Path) {
    for app in fs::read_dir(packages_root).into_iter().flatten().flatten() {
        for e in fs::read_dir(app.path()).into_iter().flatten().flatten() {
            if !e
                .file_name()
                .to_string_lossy()
                .starts_with(IMPORT_TEMP_PREFIX)
            {
                continue;
            }
            match fs::remove_dir_all(e.path()) {
                Ok(()) => tracing::info!(
                    "removed {}, left by an interrupted import",
                    e.path().display()
                ),
                Err(err) => tracing::warn!("cannot remove {}: {err}", e.path().display()),
            }
        }
    }
}

/// ImportPackage: checks the package at `data_path` and unpacks it to
/// `<packages_root>/<app_id>/<version>` (replacing an earlier import of
/// that version). `trust_dir` holds trusted minisign public keys
/// (`*.pub`). Errors: PATH_NOT_FOUND, INVALID_PACKAGE, SIGNATURE_INVALID,
/// TAMPERED (each naming the entry), or Io. `parse_manifest` reads
/// `manifest.json` (its error becomes INVALID_PACKAGE).
pub fn import(
    data_path: &Path,
    packages_root: &Path,
    trust_dir: &Path,
    verify_signature: bool,
    parse_manifest: &dyn Fn(&[u8]) -> Result<ManifestFacts, String>,
) -> Result<Imported, PackageError> {
    import_unless_in_use(
        data_path,
        packages_root,
        trust_dir,
        verify_signature,
        parse_manifest,
        &|_| None,
    )
}

/// [`import`], but an earlier import of the same version that `in_use`
/// says is in use (it returns who uses it, e.g. "running project notes")
/// is never replaced under its users: a package with the same signed
/// list (`SHA256SUMS`) is accepted as already there, untouched; one with
/// other contents is INVALID_PACKAGE naming the users (stop them, or give
/// the package a new version).
pub fn import_unless_in_use(
    data_path: &Path,
    packages_root: &Path,
    trust_dir: &Path,
    verify_signature: bool,
    parse_manifest: &dyn Fn(&[u8]) -> Result<ManifestFacts, String>,
    in_use: &dyn Fn(&Path) -> Option<String>,
) -> Result<Imported, PackageError> {
    // One import at a time: a package is checked in memory, up to the
    // 512 MiB cap of what it unpacks to, so concurrent imports would
    // multiply that (four reached 1.8 GB in review).
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let meta = fs::metadata(data_path)
        .map_err(|e| PackageError::PathNotFound(format!("package {}: {e}", data_path.display())))?;
    // A device or FIFO reports no size that bounds what it yields
    // (/dev/zero never ends, a FIFO blocks): only regular files are read.
    if !meta.is_file() {
        return Err(PackageError::InvalidPackage(format!(
            "{} is not a regular file",
            data_path.display()
        )));
    }
    // Compressed bytes are capped too: the total cap bounds what they
    // expand to.
    if meta.len() > archive::MAX_TOTAL_BYTES {
        return Err(PackageError::InvalidPackage(format!(
            "{} is larger than {} bytes",
            data_path.display(),
            archive::MAX_TOTAL_BYTES
        )));
    }
    // Read at most one byte past the cap, whatever the file grew to
    // since it was looked at.
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    fs::File::open(data_path)
        .and_then(|f| {
            use std::io::Read;
            f.take(archive::MAX_TOTAL_BYTES + 1).read_to_end(&mut bytes)
        })
        .map_err(|e| {
            PackageError::PathNotFound(format!("cannot read {}: {e}", data_path.display()))
        })?;
    if bytes.len() as u64 > archive::MAX_TOTAL_BYTES {
        return Err(PackageError::InvalidPackage(format!(
            "{} is larger than {} bytes",
            data_path.display(),
            archive::MAX_TOTAL_BYTES
        )));
    }
    let Checked {
        items,
        manifest,
        capabilities,
        trust_status,
    } = check(&bytes, trust_dir, verify_signature, parse_manifest)?;

    let io = |m: String| PackageError::Io(m);
    let app_dir = packages_root.join(&manifest.app_id);
    let dest = app_dir.join(&manifest.version);
    if let Some(users) = dest.exists().then(|| in_use(&dest)).flatten() {
        let same = match items.get(SUMS_FILE) {
            Some(Item::File(_, sums)) => fs::read(dest.join(SUMS_FILE)).is_ok_and(|d| d == *sums),
            _ => false,
        };
        if !same {
            return Err(PackageError::InvalidPackage(format!(
                "version {} of {} is already imported in {} with other contents, and {users} runs from it: stop it before importing this package, or give the package a new version",
                manifest.version,
                manifest.app_id,
                dest.display()
            )));
        }
        return Ok(Imported {
            app_id: manifest.app_id,
            name: manifest.name,
            version: manifest.version,
            trust_status,
            package_path: dest,
            capabilities,
        });
    }
    berth_os::fsutil::ensure_private_dir(&app_dir)
        .map_err(|e| io(format!("cannot create {}: {e}", app_dir.display())))?;
    let tmp = app_dir.join(import_temp());
    let write = || -> std::io::Result<()> {
        fs::create_dir(&tmp)?;
        for (name, item) in &items {
            let p = tmp.join(name);
            if let Some(parent) = p.parent() {
                fs::create_dir_all(parent)?;
            }
            match item {
                Item::Dir(_) => fs::create_dir_all(&p)?,
                Item::File(mode, data) => {
                    use std::os::unix::fs::PermissionsExt;
                    fs::write(&p, data)?;
                    fs::set_permissions(&p, fs::Permissions::from_mode(*mode))?;
                }
                Item::Symlink(t) => std::os::unix::fs::symlink(t, &p)?,
            }
        }
        Ok(())
    };
    if let Err(e) = write() {
        let _ = fs::remove_dir_all(&tmp);
        return Err(io(format!("cannot unpack into {}: {e}", tmp.display())));
    }
    if dest.exists() {
        let _ = fs::remove_dir_all(&dest);
    }
    fs::rename(&tmp, &dest).map_err(|e| {
        let _ = fs::remove_dir_all(&tmp);
        io(format!(
            "cannot move the package to {}: {e}",
            dest.display()
        ))
    })?;
    Ok(Imported {
        app_id: manifest.app_id,
        name: manifest.name,
        version: manifest.version,
        trust_status,
        package_path: dest,
        capabilities,
    })
}

#[cfg(test)]
mod tests;
