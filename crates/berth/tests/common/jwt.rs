//! Signing keys made by `openssl`, their JWKs, and tokens signed with them:
//! what the node API's tests need to stand in for a control plane (seed 004
//! "Authentication"). Real Ed25519 and RSA keys, so the daemon's JWKS path
//! is exercised as in production.

use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
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

/// A JWKS served over plain HTTP on loopback, counting fetches.
pub(crate) struct JwksServer {
    pub port: u16,
    body: Arc<Mutex<String>>,
    pub hits: Arc<AtomicUsize>,
}

impl JwksServer {
    /// Serves `keys` on a fresh loopback port until the test ends.
    pub(crate) fn start(keys: &[&Key]) -> Self {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let body = Arc::new(Mutex::new(String::new()));
        let hits = Arc::new(AtomicUsize::new(0));
        let s = JwksServer {
            port,
            body: body.clone(),
            hits: hits.clone(),
        };
        s.set(keys);
        std::thread::spawn(move || {
            for c in l.incoming() {
                let Ok(mut c) = c else { continue };
                let mut buf = [0u8; 4096];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match c.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                hits.fetch_add(1, Ordering::SeqCst);
                let b = body.lock().unwrap().clone();
                let _ = write!(
                    c,
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{b}",
                    b.len()
                );
            }
        });
        s
    }

    /// Replaces the served keys (a key rotation).
    pub(crate) fn set(&self, keys: &[&Key]) {
        let set = json!({"keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()});
        *self.body.lock().unwrap() = set.to_string();
    }

    /// The JWKS URL to give the daemon (`JWKS_ENDPOINT`).
    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}/.well-known/jwks.json", self.port)
    }
}
