//! The import report (ValidateCompose's answer): what berth makes of
//! every field of a resolved project.

/// Where a project's services run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    /// Containers on a Docker Engine.
    Docker,
    /// Each service's command as a supervised process on the host.
    Native,
}

/// One field of the file and what berth makes of it. `service` is empty
/// for top-level keys and whole-file problems; `path` is the field as a
/// user would point at it (`web.ports[0]`, `volumes.data`); `reason` is
/// empty for supported fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldNote {
    pub service: String,
    pub path: String,
    pub reason: String,
}

/// The import report of ValidateCompose.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValidationReport {
    /// True when nothing was rejected: berth can run the file.
    pub valid: bool,
    /// Service names in file order.
    pub services: Vec<String>,
    pub supported_fields: Vec<FieldNote>,
    pub transformed_fields: Vec<FieldNote>,
    /// Fields berth refuses, and whole-file errors (parse errors,
    /// dependency cycles, unknown services), each with why.
    pub rejected_fields: Vec<FieldNote>,
    pub warnings: Vec<FieldNote>,
}
