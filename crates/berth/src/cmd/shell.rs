//! Shell integration: `berth completions SHELL` (clap_complete) and
//! `berth man` (clap_mangen), both generated from the command line
//! definition itself, so they never drift from it. Neither talks to a
//! daemon.

use crate::error::{CliError, CmdResult};
use clap::Subcommand;
use clap_complete::Shell;
use std::io::Write;
use std::path::PathBuf;

/// The shell group.
#[derive(Subcommand)]
pub(crate) enum Command {
    /// Print a completion script: `berth completions bash > ~/.local/share/bash-completion/completions/berth`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: Shell,
    },
    /// Print the man page (roff): `berth man | man -l -`; with --dir, write
    /// berth.1 and one page per subcommand (berth-up.1, ...) there.
    Man {
        /// Directory to write the pages into, e.g. ~/.local/share/man/man1.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

impl Command {
    /// Writes the script or the pages of `cmd`, the whole command line
    /// definition.
    pub(crate) fn run(self, mut cmd: clap::Command) -> CmdResult {
        match self {
            Command::Completions { shell } => {
                let mut out = std::io::stdout().lock();
                clap_complete::generate(shell, &mut cmd, "berth", &mut out);
                let _ = out.flush();
            }
            Command::Man { dir: None } => {
                let mut out = std::io::stdout().lock();
                match clap_mangen::Man::new(cmd).render(&mut out) {
                    Ok(()) => {}
                    // `berth man | head`: the reader left, nothing is wrong.
                    Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
                    Err(e) => {
                        return Err(CliError::failed(format!("cannot write the man page: {e}")))
                    }
                }
            }
            Command::Man { dir: Some(dir) } => {
                std::fs::create_dir_all(&dir)
                    .map_err(|e| CliError::failed(format!("{}: {e}", dir.display())))?;
                // `help` is a page of its own only in clap's tree.
                let mut cmd = cmd.disable_help_subcommand(true);
                cmd.build();
                clap_mangen::generate_to(cmd, &dir)
                    .map_err(|e| CliError::failed(format!("{}: {e}", dir.display())))?;
                println!("man pages written to {}", dir.display());
            }
        }
        Ok(0)
    }
}
