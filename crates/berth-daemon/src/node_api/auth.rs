//! Token checks (seed 004 "JWT Validator"): a JWT signed by a key of the
//! control plane's JWKS, EdDSA or RS256 only, with the route's audience,
//! the configured issuer, `exp`/`nbf` within a small leeway, and the
//! workspace or node the route serves.

use super::jwks::Jwks;
use super::refusal::Refusal;
use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;

/// Clock skew accepted on `exp` and `nbf`, seconds.
pub const LEEWAY_SECS: u64 = 30;

/// Which surface a token is for (its `aud`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// Browser terminals: `workspace-terminal`; `workspace` must match.
    WorkspaceTerminal,
    /// Workspace management: `node-management`; `node` must be NODE_ID.
    NodeManagement,
}

impl Audience {
    /// The `aud` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::WorkspaceTerminal => "workspace-terminal",
            Self::NodeManagement => "node-management",
        }
    }
}

/// The claims the node API reads.
#[derive(Debug, Clone, Deserialize)]
pub struct Claims {
    /// The user; terminals belong to it.
    pub sub: String,
    /// The workspace (terminal tokens).
    #[serde(default)]
    pub workspace: Option<String>,
    /// The node (management tokens).
    #[serde(default)]
    pub node: Option<String>,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
}

/// Checks tokens against the JWKS.
pub struct Validator {
    jwks: Jwks,
    issuer: String,
    node_id: String,
}

impl Validator {
    /// A validator of tokens from `issuer`, keys from `jwks`.
    pub fn new(jwks: Jwks, issuer: String, node_id: String) -> Self {
        Self {
            jwks,
            issuer,
            node_id,
        }
    }

    /// The claims of `token` if it is valid for `aud` and, for terminal
    /// tokens, for `workspace` (when the route names one). 401 for a token
    /// that is not valid, 403 for a valid one for another workspace/node.
    pub async fn check(
        &self,
        token: &str,
        aud: Audience,
        workspace: Option<&str>,
    ) -> Result<Claims, Refusal> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| {
            Refusal::unauthorized(format!(
                "the token's header is malformed or names an algorithm that is not accepted (alg {}); EdDSA and RS256 only",
                raw_alg(token).unwrap_or_else(|| "?".into())
            ))
        })?;
        if !matches!(header.alg, Algorithm::EdDSA | Algorithm::RS256) {
            return Err(Refusal::unauthorized(format!(
                "algorithm {:?} is not accepted; EdDSA and RS256 only",
                header.alg
            )));
        }
        let kid = header
            .kid
            .ok_or_else(|| Refusal::unauthorized("the token has no key id (kid)"))?;
        let key = self.jwks.key(&kid).await.map_err(Refusal::unauthorized)?;
        if key.alg != header.alg {
            return Err(Refusal::unauthorized(format!(
                "key {kid:?} is a {:?} key; the token says {:?}",
                key.alg, header.alg
            )));
        }
        let mut v = Validation::new(key.alg);
        v.leeway = LEEWAY_SECS;
        v.validate_exp = true;
        v.validate_nbf = true;
        v.set_audience(&[aud.as_str()]);
        v.set_issuer(&[self.issuer.as_str()]);
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<Claims>(token, &key.key, &v).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            Refusal::unauthorized(match e.kind() {
                K::ExpiredSignature => "the token has expired".to_string(),
                K::ImmatureSignature => "the token is not valid yet (nbf)".to_string(),
                K::InvalidAudience => format!(
                    "the token is not for this route (audience must be {})",
                    aud.as_str()
                ),
                K::InvalidIssuer => format!("the token's issuer is not {}", self.issuer),
                K::InvalidSignature => "the token's signature does not verify".to_string(),
                K::MissingRequiredClaim(c) => format!("the token has no {c} claim"),
                _ => format!("the token is invalid: {e}"),
            })
        })?;
        let claims = data.claims;
        match aud {
            Audience::WorkspaceTerminal => {
                if let Some(w) = workspace {
                    if claims.workspace.as_deref() != Some(w) {
                        return Err(Refusal::forbidden(format!(
                            "the token is for workspace {:?}, not {w:?}",
                            claims.workspace.as_deref().unwrap_or("")
                        )));
                    }
                } else if claims.workspace.as_deref().is_none_or(str::is_empty) {
                    return Err(Refusal::unauthorized("the token has no workspace claim"));
                }
            }
            Audience::NodeManagement => {
                if claims.node.as_deref() != Some(self.node_id.as_str()) || self.node_id.is_empty()
                {
                    return Err(Refusal::forbidden(format!(
                        "the token is for node {:?}, this is node {:?}",
                        claims.node.as_deref().unwrap_or(""),
                        self.node_id
                    )));
                }
            }
        }
        Ok(claims)
    }
}

/// The `alg` of a token's header, for the refusal message.
fn raw_alg(token: &str) -> Option<String> {
    use base64::Engine;
    let head = token.split('.').next()?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(head.trim_end_matches('='))
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    Some(v.get("alg")?.as_str()?.to_string())
}
