//! Linux primitives berth stands on. Nothing here knows about engines or
//! wire formats; everything is small, synchronous (but for registering a
//! descriptor with tokio's reactor) and testable alone.
//!
//! This is the one crate of berth with `unsafe` code: every system call the
//! other crates need is wrapped here in a safe function, using nix's safe
//! wrappers where nix has one. Each remaining `unsafe` block says why it is
//! sound.

pub mod async_fd;
pub mod dirs;
pub mod error;
pub mod fd;
pub mod fsutil;
pub mod ids;
pub mod memory;
pub mod priority;
pub mod proc;
pub mod pty;
pub mod signal;
pub mod spawn;
pub mod termmodes;
pub mod text;
pub mod time;
pub mod tty;
pub mod watch;

pub use error::OsError;
pub use proc::{ProcessIdentity, ProcessTable};
