//! The process API surface: running-process's `DaemonRequest` protocol over
//! length-prefixed frames. It translates requests into engine calls and
//! engine results into responses; it keeps no state of its own.

mod attach;
mod conn;
mod handlers;
mod services;
mod sessions;

pub use conn::serve_connection;
