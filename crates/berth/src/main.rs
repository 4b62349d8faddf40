//! `berth`: the daemon and the CLI in one binary. Invoked as
//! `running-process-daemon`, it speaks that tool's command line so the
//! published running-process clients can auto-start berth.

mod cli;
mod compat;
mod config_cmd;
mod output;
mod progress;
mod projects_cmd;
mod relay_cmd;
mod remote_cmd;
mod sessions;
mod start;
mod svc;

fn main() {
    let argv0 = std::env::args_os().next().unwrap_or_default();
    let name = std::path::Path::new(&argv0)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("berth")
        .to_string();
    let code = if name.starts_with("running-process-daemon") {
        compat::main()
    } else {
        cli::main()
    };
    std::process::exit(code);
}
