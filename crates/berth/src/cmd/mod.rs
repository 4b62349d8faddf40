//! `berth`'s commands, one module per command group. Each group owns a
//! clap subcommand enum, flattened into the top-level one (so its commands
//! stay top-level words: `berth ps`, `berth run`, `berth up`), with
//! `run(self, &mut Ctx) -> CmdResult`.

pub mod daemon;
pub mod processes;
pub mod projects;
pub mod relay;
pub mod remote;
pub mod services;
pub mod sessions;
