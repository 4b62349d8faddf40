//! Linux primitives berth stands on. Nothing here knows about engines or
//! wire formats; everything is small, synchronous and testable alone.

pub mod dirs;
pub mod fsutil;
pub mod memory;
pub mod proc;
pub mod pty;
pub mod signal;
pub mod spawn;
pub mod time;
pub mod tty;

pub use proc::{ProcessIdentity, ProcessTable};
