//! Where an agent session runs (issue 15; seed 004 "Agent Sessions": an
//! agent runs inside its workspace, on the host where there is none).
//! The daemon gives the agent table a [`Placer`] that knows the
//! workspaces; this module only holds the answer's shape, so the agent
//! engine does not depend on the workspace engine.

use std::sync::Arc;

/// Where the agents (and the agent's terminals) of one workspace run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// On the host, in the session's working directory, with the
    /// daemon's environment; `fs/*` are served from the host's files.
    Host,
    /// In the workspace's container: `prefix` (for example `docker -H …
    /// exec -i -w DIR -u USER CONTAINER`) is put before the agent's or a
    /// terminal's command; `folder` is the workspace folder inside the
    /// container (a session's default working directory and root).
    Container {
        /// The words before the command, ending with the container.
        prefix: Vec<String>,
        /// The workspace folder inside the container.
        folder: String,
    },
    /// The workspace exists but cannot run anything yet (why, naming its
    /// status): answered 409.
    NotReady(String),
    /// No workspace has this id and host agents are not enabled
    /// (`BERTH_ACP_HOST_WORKSPACES`): answered 404 naming it.
    Missing,
}

/// Placement of workspace `id` with the working directory `workdir`
/// (inside the container; `None` = the workspace folder).
pub type Placer = Arc<dyn Fn(&str, Option<&str>) -> Placement + Send + Sync>;
