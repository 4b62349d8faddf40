//! Compose projects. This first slice holds the Compose model, validation
//! against what berth's runtimes can honour, and the start order.

pub mod compose;
pub mod validate;

pub use compose::{parse, ComposeFile, ParseError};
pub use validate::{start_order, validate, FieldNote, OrderError, Runtime, ValidationReport};

#[cfg(test)]
mod tests;
