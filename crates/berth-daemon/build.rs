//! Generates the gRPC server of the project API. Messages are not generated
//! here: `extern_path` points them at `berth_wire::supervisor`, so each
//! message type exists once. protox compiles the proto (no system protoc).
//!
//! Also embeds the web terminal page's xterm.js files (issue 16) when
//! `web/terminal/node_modules` holds them (`cd web/terminal && npm ci`):
//! `$OUT_DIR/web_vendor.rs` lists them as `include_bytes!`, or is empty so
//! a machine without Node still builds (the page then says how to enable
//! it).

use std::path::Path;

/// (name served under `/assets/`, path under `node_modules`, content type).
const VENDOR: &[(&str, &str, &str)] = &[
    (
        "xterm.js",
        "@xterm/xterm/lib/xterm.js",
        "text/javascript; charset=utf-8",
    ),
    (
        "xterm.css",
        "@xterm/xterm/css/xterm.css",
        "text/css; charset=utf-8",
    ),
    (
        "addon-fit.js",
        "@xterm/addon-fit/lib/addon-fit.js",
        "text/javascript; charset=utf-8",
    ),
    (
        "addon-web-links.js",
        "@xterm/addon-web-links/lib/addon-web-links.js",
        "text/javascript; charset=utf-8",
    ),
    (
        "xterm-LICENSE.txt",
        "@xterm/xterm/LICENSE",
        "text/plain; charset=utf-8",
    ),
];

fn main() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../proto");
    let file = "berth/supervisor/v1/supervisor.proto";
    println!("cargo:rerun-if-changed={root}/{file}");
    let fds = protox::compile([file], [root]).expect("the project API contract must compile");
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(false)
        .build_transport(false)
        .extern_path(".berth.supervisor.v1", "::berth_wire::supervisor")
        .compile_fds(fds)
        .expect("tonic code generation for the project API");
    web_vendor();
}

/// Writes `web_vendor.rs`: `VENDOR: &[(name, content type, bytes)]`, all
/// of the files or none.
fn web_vendor() {
    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web/terminal");
    // A directory: cargo reruns this when anything under it changes, such
    // as `npm ci` creating node_modules (a missing path would rerun it on
    // every build).
    println!("cargo:rerun-if-changed={}", web.display());
    let modules = web.join("node_modules");
    let found: Vec<_> = VENDOR
        .iter()
        .map(|(name, rel, ctype)| (name, modules.join(rel), ctype))
        .collect();
    let mut out = String::from("/// The page's vendored files, embedded at build time.\n");
    out.push_str("pub(crate) const VENDOR: &[(&str, &str, &[u8])] = &[\n");
    if found.iter().all(|(_, p, _)| p.is_file()) {
        for (name, path, ctype) in &found {
            let path = path.canonicalize().expect("a vendored file's path");
            out.push_str(&format!(
                "    ({name:?}, {ctype:?}, include_bytes!({:?})),\n",
                path.display().to_string()
            ));
        }
    } else {
        println!(
            "cargo:warning=web terminal page not embedded: run `cd web/terminal && npm ci` and rebuild"
        );
    }
    out.push_str("];\n");
    let dest = Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("web_vendor.rs");
    std::fs::write(dest, out).expect("write web_vendor.rs");
}
