//! Compiles the .proto contracts with protox, so no system `protoc` is needed.

fn main() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../proto");
    let files = ["running_process/daemon/v1/daemon.proto"];
    for f in &files {
        println!("cargo:rerun-if-changed={root}/{f}");
    }
    let fds = protox::compile(files, [root]).expect("proto contracts must compile");
    prost_build::Config::new()
        .compile_fds(fds)
        .expect("prost code generation");
}
