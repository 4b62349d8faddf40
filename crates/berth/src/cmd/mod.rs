//! `berth`'s commands, one module per command group. Each group owns a
//! clap subcommand enum, flattened into the top-level one (so its commands
//! stay top-level words: `berth ps`, `berth run`, `berth up`), with
//! `run(self, &mut Ctx) -> CmdResult`.

pub(crate) mod daemon;
pub(crate) mod host_api;
pub(crate) mod packages;
pub(crate) mod processes;
pub(crate) mod projects;
pub(crate) mod relay;
pub(crate) mod remote;
pub(crate) mod services;
pub(crate) mod sessions;
pub(crate) mod share;
pub(crate) mod shell;
pub(crate) mod workspaces;
