//! berth's engines. Each owns its state, persists it through [`store`], and
//! exposes plain Rust types: surfaces translate these to and from wire
//! formats, engines never see one.

pub mod projects;
pub mod registry;
pub mod services;
pub mod sessions;
pub mod store;

pub use store::Store;
