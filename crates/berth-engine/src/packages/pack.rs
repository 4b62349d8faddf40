//! Making a `.vibeapp` package (`berth pack`; `docs/vibeapp-format.md`):
//! the app directory's files and symlinks, its `manifest.json` (the
//! directory's own, or one the caller derived), `capabilities.json`, the
//! `SHA256SUMS` list and, when a key is given, its minisign signature and
//! the signer's public key, in a zstd-compressed tar written atomically.
//! Entries carry no owner and a zero mtime, so the same directory packs
//! to the same bytes (before the signature's random nonce).

use super::model::PackageError;
use super::{hex, CAPABILITIES_FILE, MANIFEST, SIGNER_FILE, SIG_FILE, SUMS_FILE};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path};

/// A signing key for [`pack`]: a minisign secret key box and its password
/// ("" for an unencrypted key).
pub struct Signer<'a> {
    /// The secret key box (`NAME.key`).
    pub secret: &'a str,
    /// Its password.
    pub password: &'a str,
}

/// What [`pack`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packed {
    /// Files and symlinks listed in `SHA256SUMS`.
    pub files: usize,
    /// Bytes of the package file.
    pub bytes: u64,
    /// The signer's key id, when signed.
    pub key_id: Option<String>,
}

enum Item {
    Dir(u32),
    File(u32, Vec<u8>),
    Symlink(String),
}

fn invalid(m: String) -> PackageError {
    PackageError::InvalidPackage(m)
}

/// The files berth writes itself; a directory's own copies are replaced.
fn generated(name: &str) -> bool {
    [SUMS_FILE, SIG_FILE, SIGNER_FILE, CAPABILITIES_FILE].contains(&name)
}

fn walk(
    root: &Path,
    dir: &Path,
    skip: &Path,
    out: &mut BTreeMap<String, Item>,
) -> Result<(), PackageError> {
    let rd = fs::read_dir(dir)
        .map_err(|e| PackageError::Io(format!("cannot list {}: {e}", dir.display())))?;
    for e in rd.flatten() {
        let path = e.path();
        if path == skip {
            continue;
        }
        let rel = path.strip_prefix(root).unwrap_or(&path);
        let Some(name) = rel.to_str().map(str::to_owned) else {
            return Err(invalid(format!(
                "{} has a name that is not UTF-8",
                path.display()
            )));
        };
        if generated(&name) {
            continue;
        }
        let meta = fs::symlink_metadata(&path)
            .map_err(|e| PackageError::Io(format!("cannot stat {}: {e}", path.display())))?;
        let mode = meta.permissions().mode() & 0o755;
        if meta.is_dir() {
            out.insert(name, Item::Dir(mode | 0o700));
            walk(root, &path, skip, out)?;
        } else if meta.is_file() {
            let data = fs::read(&path)
                .map_err(|e| PackageError::Io(format!("cannot read {}: {e}", path.display())))?;
            out.insert(name, Item::File(mode | 0o600, data));
        } else if meta.file_type().is_symlink() {
            let target = fs::read_link(&path)
                .map_err(|e| PackageError::Io(format!("cannot read {}: {e}", path.display())))?;
            let t = target.to_string_lossy().into_owned();
            // The target must stay inside the package, as import checks.
            let mut depth = rel.components().count() as i64 - 1;
            let mut inside = !target.is_absolute();
            for c in target.components() {
                match c {
                    Component::ParentDir => depth -= 1,
                    Component::Normal(_) => depth += 1,
                    _ => {}
                }
                inside &= depth >= 0;
            }
            if !inside {
                return Err(invalid(format!(
                    "symlink {name} leads out of the package ({t})"
                )));
            }
            out.insert(name, Item::Symlink(t));
        } else {
            return Err(invalid(format!(
                "{name} is not a file, directory or symlink; a package cannot carry it"
            )));
        }
    }
    Ok(())
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h
}

/// Packs the app directory `dir` into `out` (a new `.vibeapp`, written
/// atomically; `out` may be inside `dir`, it is not packed). `manifest`
/// is written as `manifest.json` when `dir` has none; `capabilities` is
/// `capabilities.json`. Errors: `InvalidPackage` (a symlink leading out,
/// a special file, a name that is not UTF-8), `InvalidKey`, `Io`.
pub fn pack(
    dir: &Path,
    out: &Path,
    manifest: &[u8],
    capabilities: &[String],
    signer: Option<Signer<'_>>,
) -> Result<Packed, PackageError> {
    let out_abs = std::path::absolute(out).unwrap_or_else(|_| out.to_path_buf());
    let mut items = BTreeMap::new();
    walk(dir, dir, &out_abs, &mut items)?;
    let is_symlink = |p: &str| matches!(items.get(p), Some(Item::Symlink(_)));
    for (name, item) in &items {
        if let Item::Symlink(target) = item {
            if !super::archive::resolves_inside(name, target, &is_symlink) {
                return Err(invalid(format!(
                    "symlink {name} -> {target} passes through another symlink; \
                     it could lead out of the package"
                )));
            }
        }
    }
    if !items.contains_key(MANIFEST) {
        items.insert(MANIFEST.to_owned(), Item::File(0o644, manifest.to_vec()));
    }
    let caps = serde_json::to_vec_pretty(capabilities)
        .map_err(|e| PackageError::Io(format!("cannot encode the capabilities: {e}")))?;
    items.insert(CAPABILITIES_FILE.to_owned(), Item::File(0o644, caps));
    let mut sums = String::new();
    let mut files = 0;
    for (name, item) in &items {
        let hash = match item {
            Item::File(_, d) => hex(&Sha256::digest(d)),
            Item::Symlink(t) => hex(&Sha256::digest(format!("symlink:{t}").as_bytes())),
            Item::Dir(_) => continue,
        };
        sums.push_str(&format!("{hash}  {name}\n"));
        files += 1;
    }
    let mut extra = vec![(SUMS_FILE.to_owned(), sums.clone().into_bytes())];
    let mut key_id = None;
    if let Some(s) = signer {
        let (sig, public) = super::keys::sign(s.secret, s.password, sums.as_bytes())?;
        key_id = Some(super::keys::key_id(&public)?);
        extra.push((SIG_FILE.to_owned(), sig.into_bytes()));
        extra.push((SIGNER_FILE.to_owned(), public.into_bytes()));
    }
    let mut b = tar::Builder::new(Vec::new());
    let io = |e: std::io::Error| PackageError::Io(format!("cannot build the archive: {e}"));
    for (name, item) in &items {
        match item {
            Item::Dir(mode) => {
                let mut h = header(tar::EntryType::Directory, *mode, 0);
                b.append_data(&mut h, name, std::io::empty()).map_err(io)?;
            }
            Item::File(mode, data) => {
                let mut h = header(tar::EntryType::Regular, *mode, data.len() as u64);
                b.append_data(&mut h, name, data.as_slice()).map_err(io)?;
            }
            Item::Symlink(t) => {
                let mut h = header(tar::EntryType::Symlink, 0o777, 0);
                b.append_link(&mut h, name, t).map_err(io)?;
            }
        }
    }
    for (name, data) in &extra {
        let mut h = header(tar::EntryType::Regular, 0o644, data.len() as u64);
        b.append_data(&mut h, name, data.as_slice()).map_err(io)?;
    }
    let tarball = b.into_inner().map_err(io)?;
    let packed = zstd::bulk::compress(&tarball, 3).map_err(io)?;
    berth_os::fsutil::atomic_write(out, &packed)
        .map_err(|e| PackageError::Io(format!("cannot write {}: {e}", out.display())))?;
    Ok(Packed {
        files,
        bytes: packed.len() as u64,
        key_id,
    })
}
