//! berth-compose: the Compose Specification as a pure library.
//!
//! Compose files are what users hand berth, written for Docker Compose.
//! This crate turns them into one resolved model — interpolated
//! ([`interpolate`]), `.env` read ([`dotenv`]), several files merged
//! ([`merge`]), `include`s and `extends` applied, profiles selected
//! ([`profiles`]) — through [`resolve::load`], the one path every
//! consumer takes: [`validate`] reports on exactly the model the engine's
//! runtimes receive, and [`config`] prints it as `docker compose config`
//! does. [`order`] gives the start order, [`ports`] the ports to publish.
//!
//! Pure: no async runtime, no Docker, no database, no processes; files are
//! read only through [`files::Files`], so tests and fuzzing run on
//! in-memory trees ([`files::MemFiles`]).

pub mod config;
pub mod dotenv;
mod env;
pub mod error;
mod extends;
pub mod files;
mod include;
pub mod interpolate;
mod loader;
pub mod merge;
pub mod model;
pub mod node;
pub mod order;
pub mod parse;
pub mod ports;
pub mod profiles;
mod rebase;
pub mod report;
pub mod resolve;
pub mod shape;
mod source;
pub mod units;
pub mod validate;

pub use files::{Files, MemFiles, RealFiles};
pub use model::*;
pub use node::{Node, Ordered};
pub use order::{start_order, OrderError};
pub use parse::{parse, ParseError};
pub use resolve::{check_project_name, load, LoadError, Options, Project};
pub use validate::{FieldNote, Runtime, ValidationReport};
