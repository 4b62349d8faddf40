//! Project errors as gRPC statuses. The gRPC code lets generic clients
//! react sensibly; the seed's error code travels beside it twice, as ASCII
//! trailing metadata (`berth-error-code`, readable by any gRPC library
//! without extra protos) and as a `google.rpc.ErrorInfo` status detail
//! (the standard rich-error form).

use berth_engine::projects::ProjectError;
use std::collections::HashMap;
use tonic::metadata::{AsciiMetadataKey, AsciiMetadataValue, MetadataMap};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// `ErrorInfo.domain` of every berth error.
pub const ERROR_DOMAIN: &str = "berth.dev";
/// The trailing metadata key carrying [`ProjectError::code`].
pub const ERROR_CODE_KEY: &str = "berth-error-code";

/// Details can hold a service's last log lines; statuses travel in
/// HTTP/2 trailers, whose total size peers cap (often at 8-16 KiB), so each
/// value keeps at most its last this many bytes.
const MAX_DETAIL_BYTES: usize = 2048;

/// The gRPC code of a project error.
pub fn grpc_code(e: &ProjectError) -> Code {
    match e {
        ProjectError::NotFound(_) | ProjectError::PathNotFound(_) => Code::NotFound,
        ProjectError::Conflict(_) => Code::AlreadyExists,
        ProjectError::InvalidManifest(_)
        | ProjectError::InvalidArgument(_)
        | ProjectError::MissingSecret { .. }
        | ProjectError::InvalidPackage(_)
        | ProjectError::SignatureInvalid(_)
        | ProjectError::Tampered(_) => Code::InvalidArgument,
        ProjectError::AlreadyOpen(_)
        | ProjectError::NotOpen(_)
        | ProjectError::AlreadyRunning(_)
        | ProjectError::NotRunning(_)
        | ProjectError::StillRunning(_)
        | ProjectError::PortConflict { .. }
        | ProjectError::SaveInProgress(_)
        | ProjectError::SnapshotMismatch(_) => Code::FailedPrecondition,
        ProjectError::StartFailed { .. }
        | ProjectError::SaveFailed(_)
        | ProjectError::RestoreFailed(_)
        | ProjectError::DuplicateFailed(_) => Code::Aborted,
        ProjectError::ImagePullFailed(_) | ProjectError::Unavailable(_) => Code::Unavailable,
        ProjectError::Internal(_) => Code::Internal,
    }
}

/// The status a client receives for `e`: its text as the message, its
/// code and details in trailing metadata and in a `google.rpc.ErrorInfo`.
pub fn to_status(e: &ProjectError) -> Status {
    let details: HashMap<String, String> = e
        .details()
        .into_iter()
        .map(|(k, v)| (k, keep_tail(&v, MAX_DETAIL_BYTES)))
        .collect();
    let mut md = MetadataMap::new();
    md.insert(ERROR_CODE_KEY, AsciiMetadataValue::from_static(e.code()));
    for (k, v) in &details {
        let key = format!("berth-error-{}", metadata_key(k));
        // Both are sanitised to the allowed alphabets, so these parse.
        if let (Ok(key), Ok(value)) = (
            key.parse::<AsciiMetadataKey>(),
            ascii_value(v).parse::<AsciiMetadataValue>(),
        ) {
            md.insert(key, value);
        }
    }
    Status::with_error_details_and_metadata(
        grpc_code(e),
        e.to_string(),
        ErrorDetails::with_error_info(e.code(), ERROR_DOMAIN, details),
        md,
    )
}

/// A malformed request field, answered like the engine's own
/// INVALID_ARGUMENT.
pub fn invalid_argument(msg: impl Into<String>) -> Status {
    to_status(&ProjectError::InvalidArgument(msg.into()))
}

/// Metadata keys are lowercase `[0-9a-z_.-]`; anything else becomes `-`.
fn metadata_key(k: &str) -> String {
    k.chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('0'..='9' | 'a'..='z' | '_' | '.' | '-') => c,
            _ => '-',
        })
        .collect()
}

/// ASCII metadata values are printable ASCII: newlines and tabs are
/// escaped as `\n`, `\t`, other characters as `\u{XXXX}`, so nothing is
/// lost silently and the value stays one header line.
pub fn ascii_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            ' '..='~' => out.push(c),
            c => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
        }
    }
    out
}

/// The last `max` bytes of `s` (at a character boundary), marked with a
/// leading `...` when cut: the end of a log is what explains a failure.
fn keep_tail(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    format!("...{}", &s[start..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_errors() -> Vec<ProjectError> {
        let s = || "x".to_string();
        vec![
            ProjectError::InvalidManifest(s()),
            ProjectError::PathNotFound(s()),
            ProjectError::Conflict(s()),
            ProjectError::NotFound(s()),
            ProjectError::ImagePullFailed(s()),
            ProjectError::AlreadyOpen(s()),
            ProjectError::NotOpen(s()),
            ProjectError::AlreadyRunning(s()),
            ProjectError::StartFailed {
                service: "web".into(),
                message: s(),
                last_lines: vec!["a".into(), "b\té".into()],
            },
            ProjectError::MissingSecret {
                names: vec!["A".into(), "B".into()],
                message: s(),
            },
            ProjectError::NotRunning(s()),
            ProjectError::StillRunning(s()),
            ProjectError::PortConflict {
                service: "web".into(),
                host_port: 8080,
                message: s(),
            },
            ProjectError::InvalidArgument(s()),
            ProjectError::Internal(s()),
            ProjectError::Unavailable(s()),
            ProjectError::SaveInProgress(s()),
            ProjectError::SaveFailed(s()),
            ProjectError::SnapshotMismatch(s()),
            ProjectError::RestoreFailed(s()),
            ProjectError::DuplicateFailed(s()),
            ProjectError::InvalidPackage(s()),
            ProjectError::SignatureInvalid(s()),
            ProjectError::Tampered(s()),
        ]
    }

    #[test]
    fn every_error_carries_its_code_in_metadata_and_error_info() {
        for e in all_errors() {
            let st = to_status(&e);
            assert_eq!(st.code(), grpc_code(&e));
            assert_eq!(st.message(), e.to_string());
            assert_eq!(
                st.metadata().get(ERROR_CODE_KEY).unwrap().to_str().unwrap(),
                e.code()
            );
            let info = st.get_details_error_info().expect("ErrorInfo detail");
            assert_eq!(info.reason, e.code());
            assert_eq!(info.domain, ERROR_DOMAIN);
            assert_eq!(info.metadata.len(), e.details().len());
        }
    }

    #[test]
    fn the_seed_codes_map_to_fitting_grpc_codes() {
        let code = |e: &ProjectError| grpc_code(e);
        let all = all_errors();
        let by = |name: &str| code(all.iter().find(|e| e.code() == name).unwrap());
        assert_eq!(by("NOT_FOUND"), Code::NotFound);
        assert_eq!(by("PATH_NOT_FOUND"), Code::NotFound);
        assert_eq!(by("CONFLICT"), Code::AlreadyExists);
        assert_eq!(by("MISSING_SECRET"), Code::InvalidArgument);
        assert_eq!(by("PORT_CONFLICT"), Code::FailedPrecondition);
        assert_eq!(by("START_FAILED"), Code::Aborted);
        assert_eq!(by("IMAGE_PULL_FAILED"), Code::Unavailable);
        assert_eq!(by("INTERNAL"), Code::Internal);
    }

    #[test]
    fn details_become_ascii_metadata() {
        let e = ProjectError::StartFailed {
            service: "web".into(),
            message: "web exited".into(),
            last_lines: vec!["one".into(), "twö".into()],
        };
        let st = to_status(&e);
        let md = st.metadata();
        assert_eq!(md.get("berth-error-service").unwrap(), "web");
        assert_eq!(
            md.get("berth-error-last_log_lines").unwrap(),
            "one\\ntw\\u{f6}"
        );
        // ErrorInfo keeps the text as it was.
        let info = st.get_details_error_info().unwrap();
        assert_eq!(info.metadata["last_log_lines"], "one\ntwö");

        let e = ProjectError::PortConflict {
            service: "db".into(),
            host_port: 5432,
            message: "taken".into(),
        };
        assert_eq!(
            to_status(&e)
                .metadata()
                .get("berth-error-host_port")
                .unwrap(),
            "5432"
        );
    }

    #[test]
    fn long_details_keep_their_end() {
        let long = format!("{}END", "é".repeat(3000));
        let cut = keep_tail(&long, MAX_DETAIL_BYTES);
        assert!(cut.starts_with("...") && cut.ends_with("END"));
        assert!(cut.len() <= MAX_DETAIL_BYTES + 3);
    }
}
