//! The one error shape of the node API: an HTTP status and a JSON body
//! `{"error": CODE, "reason": TEXT}` naming what was wrong.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// A refused request.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// 400, 401, 403, 404...
    pub status: StatusCode,
    /// A short machine-readable code (`unauthorized`, `forbidden`...).
    pub code: &'static str,
    /// What was wrong, for a person.
    pub reason: String,
}

impl Refusal {
    /// 401: no usable credentials (missing, malformed, bad signature,
    /// expired, wrong audience or issuer, unknown key).
    pub fn unauthorized(reason: impl Into<String>) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            code: "unauthorized",
            reason: reason.into(),
        }
    }

    /// 403: a valid token for something else (workspace, node, owner).
    pub fn forbidden(reason: impl Into<String>) -> Self {
        Self {
            status: StatusCode::FORBIDDEN,
            code: "forbidden",
            reason: reason.into(),
        }
    }

    /// 400: a request that does not parse.
    pub fn bad_request(reason: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: "bad_request",
            reason: reason.into(),
        }
    }

    /// 404: no such thing (an asset of the web page).
    pub fn not_found(reason: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            code: "not_found",
            reason: reason.into(),
        }
    }

    /// 500: the daemon failed (store, spawn).
    pub fn internal(reason: impl Into<String>) -> Self {
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "internal",
            reason: reason.into(),
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"error": self.code, "reason": self.reason});
        (self.status, axum::Json(body)).into_response()
    }
}
