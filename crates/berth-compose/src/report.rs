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
    /// The service the field belongs to; empty for top-level keys.
    pub service: String,
    /// The field (`web.ports[0]`, `volumes.data`).
    pub path: String,
    /// What berth does with it or why not; empty when supported as is.
    pub reason: String,
}

/// The import report of ValidateCompose.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValidationReport {
    /// True when nothing was rejected: berth can run the file.
    pub valid: bool,
    /// Service names in file order.
    pub services: Vec<String>,
    /// Fields berth honours as Compose does.
    pub supported_fields: Vec<FieldNote>,
    /// Fields berth honours differently (port allocation, namespacing,
    /// the native runtime), each saying how.
    pub transformed_fields: Vec<FieldNote>,
    /// Fields berth refuses, and whole-file errors (parse errors,
    /// dependency cycles, unknown services), each with why.
    pub rejected_fields: Vec<FieldNote>,
    /// Fields ignored or that may not do what the author expects (unset
    /// variables, Swarm settings); they do not stop the project.
    pub warnings: Vec<FieldNote>,
}
