//! `berth`: the daemon and the CLI in one binary. Invoked as
//! `running-process-daemon`, it speaks that tool's command line so the
//! published running-process clients can auto-start berth.

mod cli;
mod cmd;
mod compat;
mod ctx;
mod error;
mod key_value;
mod output;
mod start;
mod words;

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
