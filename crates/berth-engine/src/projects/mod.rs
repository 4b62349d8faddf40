//! Compose projects (seed 000): the Compose model and its validation, the
//! manifest, plans, host ports, and the orchestration of services in
//! dependency order over a runtime (Docker or native).

pub mod autosave;
pub mod capabilities;
pub mod compose;
pub mod docker;
pub mod engine;
pub mod forward;
pub mod manifest;
pub mod model;
pub mod native;
pub mod orchestrate;
mod persist;
pub mod plan;
pub mod ports;
pub mod runtime;
mod settings;
pub mod validate;

pub use autosave::Autosave;
pub use compose::{parse, ComposeFile, ParseError};
pub use engine::{package_roots, Projects, ProjectsConfig, PruneReport, AUTOSAVE_TICK};
pub use model::*;
pub use runtime::{ProjectRuntime, RuntimeError, RuntimeErrorKind};
pub use validate::{start_order, validate, FieldNote, OrderError, Runtime, ValidationReport};

#[cfg(test)]
mod docker_tests;
#[cfg(test)]
mod engine_tests;
#[cfg(test)]
mod snapshot_tests;
#[cfg(test)]
mod tests;
