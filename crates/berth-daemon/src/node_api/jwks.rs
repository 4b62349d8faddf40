//! The control plane's JWKS: fetched over HTTPS (plain HTTP only to a
//! loopback address), cached, refreshed periodically and on an unknown key
//! id, at most once per configured interval for unknown ids.

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// A usable key: the algorithm its type allows (EdDSA for OKP Ed25519,
/// RS256 for RSA) and the verifying key.
#[derive(Clone)]
pub struct Key {
    /// The one algorithm tokens under this key may use.
    pub alg: Algorithm,
    /// The verifying key.
    pub key: DecodingKey,
}

struct Cache {
    keys: HashMap<String, Key>,
    fetched: Option<Instant>,
    last_unknown_refresh: Option<Instant>,
}

/// Keys by id, with the refresh rules.
pub struct Jwks {
    url: String,
    min_interval: Duration,
    every: Duration,
    cache: Mutex<Cache>,
}

impl Jwks {
    /// A cache of the set at `url` (checked: https, or http to loopback).
    pub fn new(url: &str, min_interval: Duration, every: Duration) -> Result<Self, String> {
        check_url(url)?;
        Ok(Self {
            url: url.to_string(),
            min_interval,
            every,
            cache: Mutex::new(Cache {
                keys: HashMap::new(),
                fetched: None,
                last_unknown_refresh: None,
            }),
        })
    }

    /// The key `kid`: from the cache while it is fresh; refetched when the
    /// cache is older than the periodic interval, or when `kid` is unknown
    /// and no unknown-id refresh happened within the minimum interval.
    /// `Err` says why there is no key (fetch failed, or unknown id).
    pub async fn key(&self, kid: &str) -> Result<Key, String> {
        let mut c = self.cache.lock().await;
        let stale = c.fetched.is_none_or(|t| t.elapsed() >= self.every);
        if stale {
            self.refresh(&mut c).await?;
        }
        if let Some(k) = c.keys.get(kid) {
            return Ok(k.clone());
        }
        let may = c
            .last_unknown_refresh
            .is_none_or(|t| t.elapsed() >= self.min_interval);
        if may && !stale {
            c.last_unknown_refresh = Some(Instant::now());
            self.refresh(&mut c).await?;
            if let Some(k) = c.keys.get(kid) {
                return Ok(k.clone());
            }
        } else if stale {
            c.last_unknown_refresh = Some(Instant::now());
        }
        Err(format!(
            "the signing key {kid:?} is not in the control plane's JWKS"
        ))
    }

    async fn refresh(&self, c: &mut Cache) -> Result<(), String> {
        let body = fetch(&self.url)
            .await
            .map_err(|e| format!("cannot fetch the JWKS from {}: {e}", self.url))?;
        let set: JwkSet = serde_json::from_slice(&body)
            .map_err(|e| format!("the JWKS at {} does not parse: {e}", self.url))?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let Some(kid) = jwk.common.key_id.clone() else {
                continue;
            };
            let alg = match &jwk.algorithm {
                AlgorithmParameters::OctetKeyPair(_) => Algorithm::EdDSA,
                AlgorithmParameters::RSA(_) => Algorithm::RS256,
                // EdDSA and RS256 only (seed 004's control plane signs with
                // those); other key types are ignored.
                _ => continue,
            };
            match DecodingKey::from_jwk(jwk) {
                Ok(key) => {
                    keys.insert(kid, Key { alg, key });
                }
                Err(e) => tracing::warn!(%kid, "JWKS key skipped: {e}"),
            }
        }
        tracing::debug!(keys = keys.len(), url = %self.url, "JWKS refreshed");
        c.keys = keys;
        c.fetched = Some(Instant::now());
        Ok(())
    }
}

/// https, or http to a loopback host (tests and local setups).
pub fn check_url(url: &str) -> Result<(), String> {
    let uri: hyper::Uri = url
        .parse()
        .map_err(|e| format!("JWKS URL {url:?} does not parse: {e}"))?;
    match uri.scheme_str() {
        Some("https") => Ok(()),
        Some("http") if is_loopback(uri.host().unwrap_or("")) => Ok(()),
        _ => Err(format!(
            "JWKS URL {url:?}: use https (plain http only to a loopback address); set CONTROL_PLANE_URL or JWKS_ENDPOINT"
        )),
    }
}

fn is_loopback(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h == "localhost"
        || h.parse::<std::net::IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

/// GET `url`, the body if 200 (at most 1 MiB).
async fn fetch(url: &str) -> Result<Bytes, String> {
    let uri: hyper::Uri = url.parse().map_err(|e| format!("{e}"))?;
    let host = uri.host().ok_or("no host")?.to_string();
    let tls = uri.scheme_str() == Some("https");
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let tcp = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::net::TcpStream::connect((host.trim_start_matches('[').trim_end_matches(']'), port)),
    )
    .await
    .map_err(|_| "connect timed out".to_string())?
    .map_err(|e| e.to_string())?;
    let path = uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let req = hyper::Request::get(path)
        .header(
            hyper::header::HOST,
            uri.authority().map(|a| a.as_str()).unwrap_or(&host),
        )
        .header(hyper::header::ACCEPT, "application/json")
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let work = async {
        if tls {
            let stream = crate::node_api::tls_client::connect(&host, tcp).await?;
            send(hyper_util::rt::TokioIo::new(stream), req).await
        } else {
            send(hyper_util::rt::TokioIo::new(tcp), req).await
        }
    };
    tokio::time::timeout(Duration::from_secs(20), work)
        .await
        .map_err(|_| "timed out".to_string())?
}

async fn send<I>(io: I, req: hyper::Request<Empty<Bytes>>) -> Result<Bytes, String>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    if resp.status() != hyper::StatusCode::OK {
        return Err(format!("HTTP {}", resp.status()));
    }
    let body = http_body_util::Limited::new(resp.into_body(), 1 << 20)
        .collect()
        .await
        .map_err(|e| e.to_string())?;
    Ok(body.to_bytes())
}
