//! What every command runs with: the global options (`--socket`,
//! `--scope`) and the daemon, connected to — or started — on first use.
//!
//! Commands that never talk to a daemon (`daemon`, `relay`, `remote`)
//! simply never ask, so they neither connect nor start one.

use crate::error::CliError;
use crate::start;
use berth_client::Client;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a command waits for a daemon it started to answer.
const START_WAIT: Duration = Duration::from_secs(10);

/// The context of one `berth` command.
pub(crate) struct Ctx {
    scope: Option<String>,
    socket: PathBuf,
    /// `--socket` (or `BERTH_SOCKET`) was given: that daemon is used as it
    /// is and never started, since berth cannot know how it was meant to
    /// be configured.
    explicit_socket: bool,
    client: Option<Client>,
}

impl Ctx {
    /// The context of `--socket` and `--scope`.
    ///
    /// # Errors
    /// The scope is not a valid scope name (see `berth_os::dirs`).
    pub(crate) fn new(socket: Option<PathBuf>, scope: Option<String>) -> Result<Self, CliError> {
        if let Some(s) = &scope {
            berth_os::dirs::validate_scope(s).map_err(CliError::failed)?;
        }
        Ok(Self {
            explicit_socket: socket.is_some(),
            socket: socket.unwrap_or_else(|| berth_os::dirs::daemon_socket(scope.as_deref())),
            scope,
            client: None,
        })
    }

    /// The scope, if one was given.
    pub(crate) fn scope(&self) -> Option<&str> {
        self.scope.as_deref()
    }

    /// The process-API socket commands talk to.
    pub(crate) fn socket(&self) -> &Path {
        &self.socket
    }

    /// The daemon's process API. Connects on first use; when nothing
    /// answers at the default socket, starts a daemon in the background
    /// (`berth daemon [--scope S]`) and waits for it.
    ///
    /// # Errors
    /// No daemon answers (at an explicit socket), or one could not be
    /// started in time.
    pub(crate) fn client(&mut self) -> Result<&mut Client, CliError> {
        let client = match self.client.take() {
            Some(c) => c,
            None => self.connect()?,
        };
        Ok(self.client.insert(client))
    }

    /// The process-API connection itself, for commands that turn it into a
    /// stream (`attach`, `logs -f`).
    ///
    /// # Errors
    /// As [`Ctx::client`].
    pub(crate) fn take_client(&mut self) -> Result<Client, CliError> {
        match self.client.take() {
            Some(c) => Ok(c),
            None => self.connect(),
        }
    }

    /// The project API's socket, once a daemon answers (started as for
    /// [`Ctx::client`]): the daemon serves both.
    ///
    /// # Errors
    /// As [`Ctx::client`].
    pub(crate) fn project_socket(&mut self) -> Result<PathBuf, CliError> {
        self.client()?;
        Ok(berth_os::dirs::project_socket(self.scope()))
    }

    fn connect(&self) -> Result<Client, CliError> {
        if self.explicit_socket {
            return Ok(Client::connect(&self.socket)?);
        }
        let scope = self.scope.clone();
        Ok(Client::connect_or_start(&self.socket, START_WAIT, || {
            let mut args = Vec::new();
            if let Some(s) = scope {
                args.extend(["--scope".to_string(), s]);
            }
            start::spawn_background(&args).map(|_| ())
        })?)
    }
}
