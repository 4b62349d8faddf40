//! The process API surface: running-process's `DaemonRequest` protocol over
//! length-prefixed frames. It translates requests into engine calls and
//! engine results into responses; it keeps no state of its own.

mod conn;
mod handlers;
mod services;

pub use conn::serve_connection;
