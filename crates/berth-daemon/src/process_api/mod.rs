//! The process API surface: running-process's `DaemonRequest` protocol over
//! length-prefixed frames. It translates requests into engine calls and
//! engine results into responses; it keeps no state of its own.
//!
//! `conn` reads frames and hands each request to `dispatch`, which routes
//! it by its `RequestType` to one handler function in `daemon`,
//! `processes`, `services` or `sessions`. A handler returns the response,
//! or a `Refusal` (status code + message) built with `?` from engine
//! errors; the few that keep the connection busy afterwards (attach, log
//! follow, shutdown) also return an `After`, which `conn` (and `attach`,
//! for attach streams) carries out.

mod after;
mod attach;
mod conn;
mod daemon;
mod dispatch;
mod processes;
mod refusal;
mod services;
mod sessions;

pub use conn::serve_connection;
