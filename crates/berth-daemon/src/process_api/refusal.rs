//! Why a request was refused: a status code and a message naming the
//! problem, built from engine errors with `From` so that handlers can use
//! `?`. The dispatcher turns it into the error `DaemonResponse` carrying
//! the request's id (running-process's error envelope: `code` + `message`).

use berth_engine::registry::RegistryError;
use berth_engine::services::ServiceError;
use berth_engine::sessions::SessionError;
use berth_wire::daemon::{DaemonResponse, RequestType, StatusCode};
use berth_wire::envelope::{error_response, payload_field};

/// A refused request: the response's `code` and `message`.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Refusal {
    /// The status the client receives (never `Ok`).
    pub(super) code: StatusCode,
    /// What was wrong, naming the offending field where there is one.
    pub(super) message: String,
}

impl Refusal {
    /// A refusal with `code` and `message`.
    pub(super) fn new(code: StatusCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// `INVALID_ARGUMENT`: the request names something impossible.
    pub(super) fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::InvalidArgument, message)
    }

    /// `NOT_FOUND`: the request names something that does not exist.
    pub(super) fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NotFound, message)
    }

    /// The error response to request `request_id`.
    pub(super) fn into_response(self, request_id: u64) -> DaemonResponse {
        error_response(request_id, self.code, self.message)
    }
}

/// The payload `ty` requires, or `INVALID_ARGUMENT` naming the missing
/// field (same text as `berth_wire::envelope::require`).
pub(super) fn payload<T>(payload: &Option<T>, ty: RequestType) -> Result<&T, Refusal> {
    payload.as_ref().ok_or_else(|| {
        Refusal::invalid(format!(
            "request type {} requires the `{}` payload (field {})",
            ty.as_str_name(),
            payload_field(ty),
            ty as i32
        ))
    })
}

/// A terminal size field (`rows`, `cols`) as the `u16` the engine takes;
/// `field` names it in the refusal (`resize_pty_session.rows`).
pub(super) fn dimension(field: &str, value: u32) -> Result<u16, Refusal> {
    u16::try_from(value).map_err(|_| Refusal::invalid(format!("{field} {value} is too large")))
}

// Bad input and missing things keep their codes; everything else the
// engine reports (store, OS) is the daemon's own failure: INTERNAL.

impl From<RegistryError> for Refusal {
    fn from(e: RegistryError) -> Self {
        let code = match &e {
            RegistryError::InvalidArgument(_) => StatusCode::InvalidArgument,
            RegistryError::NotFound(_) => StatusCode::NotFound,
            _ => StatusCode::Internal,
        };
        Self::new(code, e.to_string())
    }
}

impl From<SessionError> for Refusal {
    fn from(e: SessionError) -> Self {
        let code = match &e {
            SessionError::InvalidArgument(_) => StatusCode::InvalidArgument,
            SessionError::NotFound(_) => StatusCode::NotFound,
            SessionError::AlreadyAttached(_) => StatusCode::AlreadyAttached,
            _ => StatusCode::Internal,
        };
        Self::new(code, e.to_string())
    }
}

/// A service engine error as it stands. The service handlers add where in
/// the request the offending field sits with [`Refusal::at`].
impl From<ServiceError> for Refusal {
    fn from(e: ServiceError) -> Self {
        let code = match &e {
            ServiceError::Invalid { .. } | ServiceError::InvalidArgument(_) => {
                StatusCode::InvalidArgument
            }
            ServiceError::NotFound(_) => StatusCode::NotFound,
            _ => StatusCode::Internal,
        };
        Self::new(code, e.to_string())
    }
}

impl Refusal {
    /// Prefixes the message of a refusal about the request's content with
    /// the path of the field it concerns (`service_start.config` +
    /// `cmd: ...` = `service_start.config.cmd: ...`); internal failures are
    /// left as they are, since no field of the request caused them.
    pub(super) fn at(self, prefix: &str) -> Self {
        match self.code {
            StatusCode::Internal => self,
            code => Self::new(code, format!("{prefix}.{}", self.message)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_errors_keep_their_codes_and_texts() {
        let r = Refusal::from(SessionError::AlreadyAttached("held by x".into()));
        assert_eq!(r, Refusal::new(StatusCode::AlreadyAttached, "held by x"));
        let r = Refusal::from(RegistryError::NotFound("pid 7".into()));
        assert_eq!(r, Refusal::not_found("pid 7"));
        let r = Refusal::from(ServiceError::Invalid {
            field: "cmd".into(),
            message: "is empty".into(),
        })
        .at("service_start.config");
        assert_eq!(r, Refusal::invalid("service_start.config.cmd: is empty"));
    }

    #[test]
    fn a_missing_payload_names_its_field() {
        let none: Option<u32> = None;
        let r = payload(&none, RequestType::KillTree).unwrap_err();
        assert_eq!(r.code, StatusCode::InvalidArgument);
        assert!(r.message.contains("`kill_tree` payload"), "{}", r.message);
        assert!(dimension("x.rows", 70_000).is_err());
        assert_eq!(dimension("x.rows", 24), Ok(24));
    }
}
