//! Why a project could not be resolved, and the paths errors name.

use std::fmt;

/// Why a project could not be resolved: the path of the field (empty for
/// whole-file problems) and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    /// The service the path is under; empty outside `services`.
    pub service: String,
    /// The field as a user would point at it (`web.ports[0]`); empty for
    /// the whole file.
    pub path: String,
    /// Why, as one sentence for the report.
    pub reason: String,
}

impl LoadError {
    /// An error at `path` (report form, e.g. `volumes.data`) that names
    /// no service.
    pub fn new(path: impl Into<String>, reason: impl Into<String>) -> Self {
        LoadError {
            service: String::new(),
            path: path.into(),
            reason: reason.into(),
        }
    }

    /// An error at tree path `segments` (`services`, `web`, `ports`,
    /// `[0]`), its service named when it is under `services`.
    pub(crate) fn at(segments: &[String], reason: impl Into<String>) -> Self {
        let service = match segments {
            [top, svc, ..] if top == "services" => svc.clone(),
            _ => String::new(),
        };
        LoadError {
            service,
            path: report_path(segments),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.reason)
        } else {
            write!(f, "{}: {}", self.path, self.reason)
        }
    }
}

impl std::error::Error for LoadError {}

/// A path in report form: under `services.<name>` it starts at the
/// service name, as the import report names fields.
pub(crate) fn report_path(segments: &[String]) -> String {
    let segs = match segments.first().map(String::as_str) {
        Some("services") if segments.len() > 1 => &segments[1..],
        _ => segments,
    };
    let mut out = String::new();
    for s in segs {
        if s.starts_with('[') {
            out.push_str(s);
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(s);
        }
    }
    out
}
