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

/// The project API (seed 000), package `berth.supervisor.v1`, generated
/// from `proto/berth/supervisor/v1/supervisor.proto`. Messages only: the
/// gRPC server and client are generated in the crates that serve and call
/// it, so this crate stays free of tonic and tokio.
pub mod supervisor {
    #![allow(missing_docs, clippy::doc_lazy_continuation)]
    include!(concat!(env!("OUT_DIR"), "/berth.supervisor.v1.rs"));

    /// The encoded `FileDescriptorSet` of `supervisor.proto` (with source
    /// comments), for gRPC server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/berth.supervisor.v1.fds.bin"));
}
