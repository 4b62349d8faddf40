//! Signing keys made by `openssl`, their JWKs, and tokens signed with them:
//! what the node API's tests need to stand in for a control plane (seed 004
//! "Authentication"). Real Ed25519 and RSA keys, so the daemon's JWKS path
//! is exercised as in production.

use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

/// Base64url without padding, as JWKs spell key material.
pub(crate) fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// Runs `openssl ARGS`, asserting success; its stdout.
pub(crate) fn openssl(args: &[&str]) -> Vec<u8> {
    let o = Command::new("openssl").args(args).output().unwrap();
    assert!(
        o.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o.stdout
}

/// Seconds since the epoch (JWT `iat`/`exp`).
pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A signing key and its public JWK.
pub(crate) struct Key {
    pub kid: String,
    pub alg: Algorithm,
    pub enc: EncodingKey,
    pub jwk: Value,
}

/// A fresh Ed25519 key (its PEM written in `dir` as `KID.pem`).
pub(crate) fn ed25519(dir: &Path, kid: &str) -> Key {
    let pem = dir.join(format!("{kid}.pem"));
    let pem_s = pem.to_str().unwrap();
    openssl(&["genpkey", "-algorithm", "ed25519", "-out", pem_s]);
    let der = openssl(&["pkey", "-in", pem_s, "-pubout", "-outform", "DER"]);
    let raw = &der[der.len() - 32..];
    Key {
        kid: kid.into(),
        alg: Algorithm::EdDSA,
        enc: EncodingKey::from_ed_pem(&std::fs::read(&pem).unwrap()).unwrap(),
        jwk: json!({"kty": "OKP", "crv": "Ed25519", "x": b64(raw), "kid": kid, "alg": "EdDSA", "use": "sig"}),
    }
}

/// A fresh 2048-bit RSA key (RS256).
pub(crate) fn rsa(dir: &Path, kid: &str) -> Key {
    let pem = dir.join(format!("{kid}.pem"));
    let pem_s = pem.to_str().unwrap();
    openssl(&["genrsa", "-traditional", "-out", pem_s, "2048"]);
    let m = String::from_utf8(openssl(&["rsa", "-in", pem_s, "-noout", "-modulus"])).unwrap();
    let hex = m.trim().trim_start_matches("Modulus=");
    let n: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    Key {
        kid: kid.into(),
        alg: Algorithm::RS256,
        enc: EncodingKey::from_rsa_pem(&std::fs::read(&pem).unwrap()).unwrap(),
        jwk: json!({"kty": "RSA", "n": b64(&n), "e": "AQAB", "kid": kid, "alg": "RS256", "use": "sig"}),
    }
}

/// `claims` signed with `k`, its `kid` in the header.
pub(crate) fn sign(k: &Key, claims: &Value) -> String {
    let mut h = Header::new(k.alg);
    h.kid = Some(k.kid.clone());
    jsonwebtoken::encode(&h, claims, &k.enc).unwrap()
}
