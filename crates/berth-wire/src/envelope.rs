//! Helpers around the `DaemonRequest` / `DaemonResponse` envelope: decoding,
//! payload checks and error replies, so every surface answers the same way.

use crate::daemon::{DaemonRequest, DaemonResponse, RequestType, StatusCode};
use prost::Message;

/// Protocol version berth speaks; clients send it in `protocol_version`.
pub const PROTOCOL_VERSION: u32 = 1;

/// Decodes a request body, naming what was wrong on failure.
pub fn decode_request(body: &[u8]) -> Result<DaemonRequest, String> {
    DaemonRequest::decode(body).map_err(|e| format!("malformed DaemonRequest: {e}"))
}

/// A response carrying only a status and a message.
pub fn error_response(
    request_id: u64,
    code: StatusCode,
    message: impl Into<String>,
) -> DaemonResponse {
    DaemonResponse {
        request_id,
        code: code as i32,
        message: message.into(),
        ..Default::default()
    }
}

/// A successful response with no payload set yet.
pub fn ok_response(request_id: u64) -> DaemonResponse {
    DaemonResponse {
        request_id,
        code: StatusCode::Ok as i32,
        ..Default::default()
    }
}

/// The request type, or `None` for values this protocol does not define.
pub fn request_type(req: &DaemonRequest) -> Option<RequestType> {
    RequestType::try_from(req.r#type).ok()
}

/// The proto field name of the payload that belongs with `ty`
/// (e.g. `kill_tree` for `REQUEST_TYPE_KILL_TREE`), used in error messages.
pub fn payload_field(ty: RequestType) -> String {
    ty.as_str_name()
        .trim_start_matches("REQUEST_TYPE_")
        .to_ascii_lowercase()
}

/// Returns the payload or an INVALID_ARGUMENT response naming the missing field.
pub fn require<'a, T>(
    req: &DaemonRequest,
    payload: &'a Option<T>,
    ty: RequestType,
) -> Result<&'a T, Box<DaemonResponse>> {
    payload.as_ref().ok_or_else(|| {
        Box::new(error_response(
            req.id,
            StatusCode::InvalidArgument,
            format!(
                "request type {} requires the `{}` payload (field {})",
                ty.as_str_name(),
                payload_field(ty),
                ty as i32
            ),
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_field_names_match_the_proto() {
        assert_eq!(payload_field(RequestType::KillTree), "kill_tree");
        assert_eq!(
            payload_field(RequestType::GetSessionTeeStatus),
            "get_session_tee_status"
        );
    }

    #[test]
    fn garbage_is_a_named_error() {
        let err = decode_request(&[0xff, 0xff, 0xff]).unwrap_err();
        assert!(err.starts_with("malformed DaemonRequest"), "{err}");
    }
}
