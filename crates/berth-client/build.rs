//! Generates the gRPC client of the project API. Messages are not generated
//! here: `extern_path` points them at `berth_wire::supervisor`, so each
//! message type exists once. protox compiles the proto (no system protoc).

fn main() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../proto");
    let file = "berth/supervisor/v1/supervisor.proto";
    println!("cargo:rerun-if-changed={root}/{file}");
    let fds = protox::compile([file], [root]).expect("the project API contract must compile");
    tonic_prost_build::configure()
        .build_server(false)
        .build_client(true)
        .build_transport(false)
        .extern_path(".berth.supervisor.v1", "::berth_wire::supervisor")
        .compile_fds(fds)
        .expect("tonic code generation for the project API");
}
