//! berth's wire layer: the protobuf contracts, the frame codecs and the
//! remote terminal protocol v3.
//!
//! Everything here is pure (bytes in, values out) so it can be fuzzed and
//! reused by clients without pulling in an async runtime.

pub mod frame;

/// The running-process daemon protocol (seed 003), package
/// `running_process.daemon.v1`, generated from `proto/`.
pub mod daemon {
    #![allow(
        missing_docs,
        clippy::large_enum_variant,
        clippy::doc_lazy_continuation
    )]
    include!(concat!(env!("OUT_DIR"), "/running_process.daemon.v1.rs"));
}

pub mod envelope;
pub mod remote;
