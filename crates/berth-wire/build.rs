//! Compiles the .proto contracts with protox, so no system `protoc` is needed.

fn main() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../proto");
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));

    let files = ["running_process/daemon/v1/daemon.proto"];
    for f in &files {
        println!("cargo:rerun-if-changed={root}/{f}");
    }
    let fds = protox::compile(files, [root]).expect("proto contracts must compile");
    prost_build::Config::new()
        .compile_fds(fds)
        .expect("prost code generation");

    // The project API is compiled on its own so that its descriptor set,
    // served by gRPC reflection, holds that one file (with its comments).
    let supervisor = "berth/supervisor/v1/supervisor.proto";
    println!("cargo:rerun-if-changed={root}/{supervisor}");
    let mut compiler = protox::Compiler::new([root]).expect("proto include root");
    compiler.include_source_info(true);
    compiler
        .open_file(supervisor)
        .expect("the project API contract must compile");
    std::fs::write(
        out.join("berth.supervisor.v1.fds.bin"),
        compiler.encode_file_descriptor_set(),
    )
    .expect("write the project API descriptor set");
    prost_build::Config::new()
        .compile_fds(compiler.file_descriptor_set())
        .expect("prost code generation for the project API");
}
