//! An Ed25519 signing key made by `openssl` and a loopback JWKS serving it:
//! the control plane the node-API benchmarks authenticate against (seed 004
//! "Authentication"), so their daemons verify real tokens.

use base64::Engine;
use jsonwebtoken::EncodingKey;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;

/// A fresh Ed25519 key (PEM written in `dir`): the signing key and its JWK
/// (`kid` "k").
pub(crate) fn key(dir: &Path) -> (EncodingKey, Value) {
    let pem = dir.join("k.pem");
    let pem_s = pem.to_str().unwrap();
    let run = |a: &[&str]| Command::new("openssl").args(a).output().unwrap().stdout;
    run(&["genpkey", "-algorithm", "ed25519", "-out", pem_s]);
    let der = run(&["pkey", "-in", pem_s, "-pubout", "-outform", "DER"]);
    let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&der[der.len() - 32..]);
    (
        EncodingKey::from_ed_pem(&std::fs::read(&pem).unwrap()).unwrap(),
        json!({"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "k", "alg": "EdDSA"}),
    )
}

/// Serves `{"keys": [jwk]}` over plain HTTP on a loopback port until the
/// process ends; the port.
pub(crate) fn jwks_server(jwk: Value) -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let body = json!({"keys": [jwk]}).to_string();
    std::thread::spawn(move || {
        for mut c in l.incoming().flatten() {
            let mut b = [0u8; 4096];
            let _ = c.read(&mut b);
            let _ = write!(
                c,
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}
