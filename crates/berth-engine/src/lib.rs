//! berth's engines. Each owns its state, persists it through [`store`], and
//! exposes plain Rust types: surfaces translate these to and from wire
//! formats, engines never see one.
//!
//! No `unsafe` here: every system call goes through a safe function of
//! `berth_os`, which is the one crate allowed to hold `unsafe` blocks.

pub mod agents;
pub mod packages;
pub mod projects;
pub mod registry;
pub mod services;
pub mod sessions;
pub mod snapshots;
pub mod store;
pub mod tabs;
pub mod workspaces;

pub use store::Store;
