//! Signing keys and the trust store of `.vibeapp` packages (issue 11):
//! key pairs and signatures in the minisign formats, made by the
//! `minisign` crate (the reference implementation's own, so the
//! `minisign` tool reads what berth writes), and the trust store, a
//! directory of `<KEY ID>.pub` files that import checks signers against.
//!
//! A secret key is encrypted with a password (scrypt, as `minisign -G`
//! does) when one is given; with an empty password it is stored
//! unencrypted in the same box format, which berth reads but the
//! `minisign` tool does not (it always asks for a password).

use super::model::PackageError;
use std::fs;
use std::path::{Path, PathBuf};

/// A new key pair as the texts of its two files.
#[derive(Debug, Clone)]
pub struct KeyPairFiles {
    /// `NAME.key`: the minisign secret key box.
    pub secret: String,
    /// `NAME.pub`: the minisign public key box.
    pub public: String,
    /// The key id (16 upper-case hex digits, as minisign prints it).
    pub key_id: String,
}

fn key_error(what: &str) -> impl FnOnce(minisign::PError) -> PackageError + '_ {
    move |e| PackageError::InvalidKey(format!("{what}: {e}"))
}

fn id_of(pk: &minisign::PublicKey) -> String {
    let mut n = [0u8; 8];
    n.copy_from_slice(&pk.keynum()[..8]);
    format!("{:016X}", u64::from_le_bytes(n))
}

/// The kind of key a minisign key file `text` holds, from the length of
/// its key line (the last line that is not a comment): a public key is 42
/// bytes (algorithm, key id, key), a secret key 158. `None` when it is
/// neither (not base64, or another length).
fn kind(text: &str) -> Option<KeyKind> {
    use base64::Engine as _;
    let line = text
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty() && !l.starts_with("untrusted comment:"))?;
    match base64::engine::general_purpose::STANDARD
        .decode(line)
        .ok()?
        .len()
    {
        42 => Some(KeyKind::Public),
        158 => Some(KeyKind::Secret),
        _ => None,
    }
}

#[derive(Debug, PartialEq, Eq)]
enum KeyKind {
    Public,
    Secret,
}

/// Generates a key pair; the secret key is encrypted with `password`
/// unless it is empty. Errors: `InvalidKey` (no randomness).
pub fn generate(password: &str) -> Result<KeyPairFiles, PackageError> {
    let kp = minisign::KeyPair::generate_encrypted_keypair(Some(password.to_owned()))
        .map_err(key_error("cannot generate a key"))?;
    let key_id = id_of(&kp.pk);
    let public = kp
        .pk
        .to_box()
        .map_err(key_error("cannot encode the public key"))?
        .into_string();
    let secret = kp
        .sk
        .to_box(Some(&format!("berth secret key {key_id}")))
        .map_err(key_error("cannot encode the secret key"))?
        .into_string();
    Ok(KeyPairFiles {
        secret,
        public,
        key_id,
    })
}

/// Signs `data` with the secret key box `secret` (decrypted with
/// `password`): returns the signature box (`.minisig`, prehashed as
/// `minisign -S` writes) and the public key box of the signer.
/// Errors: `InvalidKey` (not a key, or a wrong password).
pub fn sign(secret: &str, password: &str, data: &[u8]) -> Result<(String, String), PackageError> {
    if kind(secret) == Some(KeyKind::Public) {
        return Err(PackageError::InvalidKey(
            "this is a public key file; signing needs the secret key file (NAME.key, written beside NAME.pub by `berth key generate`)".into(),
        ));
    }
    let sk_box = minisign::SecretKeyBox::from_string(secret)
        .map_err(key_error("not a minisign secret key"))?;
    let sk = sk_box
        .into_secret_key(Some(password.to_owned()))
        .map_err(key_error(
            "cannot open the secret key (is BERTH_KEY_PASSWORD right?)",
        ))?;
    let pk = minisign::PublicKey::from_secret_key(&sk).map_err(key_error("bad secret key"))?;
    let sig = minisign::sign(
        Some(&pk),
        &sk,
        data,
        None,
        Some("signature from berth pack"),
    )
    .map_err(key_error("cannot sign"))?;
    let public = pk
        .to_box()
        .map_err(key_error("cannot encode the public key"))?
        .into_string();
    Ok((sig.into_string(), public))
}

/// The key id of a public key box. Errors: `InvalidKey`.
pub fn key_id(public: &str) -> Result<String, PackageError> {
    if kind(public) == Some(KeyKind::Secret) {
        return Err(PackageError::InvalidKey(
            "this is a secret key file; expected a public key file (NAME.pub, written beside NAME.key by `berth key generate`); keep the secret key to yourself".into(),
        ));
    }
    let pk = minisign::PublicKeyBox::from_string(public)
        .and_then(|b| b.into_public_key())
        .or_else(|_| {
            // A bare base64 key line, as some tools print it.
            minisign::PublicKey::from_base64(public.trim())
        })
        .map_err(key_error("not a minisign public key"))?;
    Ok(id_of(&pk))
}

/// Adds the public key box `public` to the trust store `dir` (as
/// `<KEY ID>.pub`, written atomically); returns its id. Adding a key
/// twice is a no-op. Errors: `InvalidKey`, `Io`.
pub fn trust_add(dir: &Path, public: &str) -> Result<String, PackageError> {
    let id = key_id(public)?;
    berth_os::fsutil::ensure_private_dir(dir)
        .map_err(|e| PackageError::Io(format!("cannot create {}: {e}", dir.display())))?;
    let path = dir.join(format!("{id}.pub"));
    berth_os::fsutil::atomic_write(&path, public.as_bytes())
        .map_err(|e| PackageError::Io(format!("cannot write {}: {e}", path.display())))?;
    Ok(id)
}

/// The keys of the trust store `dir`: (id, file), by id. Files that are
/// not public keys are left out.
pub fn trust_list(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut out: Vec<(String, PathBuf)> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".pub"))
        .filter_map(|e| {
            let text = fs::read_to_string(e.path()).ok()?;
            Some((key_id(&text).ok()?, e.path()))
        })
        .collect();
    out.sort();
    out
}

/// Removes key `id` from the trust store `dir`. Errors: `InvalidKey`
/// (no such key), `Io`.
pub fn trust_remove(dir: &Path, id: &str) -> Result<(), PackageError> {
    let wanted = id.trim().to_ascii_uppercase();
    let found: Vec<PathBuf> = trust_list(dir)
        .into_iter()
        .filter(|(k, _)| *k == wanted)
        .map(|(_, p)| p)
        .collect();
    if found.is_empty() {
        return Err(PackageError::InvalidKey(format!(
            "no trusted key has the id {id:?} (berth trust ls lists them)"
        )));
    }
    for p in found {
        fs::remove_file(&p)
            .map_err(|e| PackageError::Io(format!("cannot remove {}: {e}", p.display())))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 11: a key file of the wrong kind is named as such, not
    /// reported as a decoding failure.
    #[test]
    fn a_key_of_the_wrong_kind_is_named() {
        for password in ["", "pw"] {
            let kp = generate(password).unwrap();
            let e = sign(&kp.public, password, b"data").unwrap_err().to_string();
            assert!(e.contains("this is a public key file"), "{e}");
            let dir = tempfile::tempdir().unwrap();
            let e = trust_add(dir.path(), &kp.secret).unwrap_err().to_string();
            assert!(e.contains("this is a secret key file"), "{e}");
            assert_eq!(trust_list(dir.path()).len(), 0);
            // The right kinds still work.
            let (_, public) = sign(&kp.secret, password, b"data").unwrap();
            assert_eq!(trust_add(dir.path(), &public).unwrap(), kp.key_id);
        }
    }
}
