//! SPAWN_DAEMON: start a shell command detached from everyone (its own
//! session, stdio on /dev/null) and track it.

use super::{ProcState, Registry, RegistryError, Tracked};
use berth_os::proc::{self, ProcessIdentity};
use berth_os::spawn::{detach, layer_env, SpawnSpec};
use berth_os::OsError;
use std::io;

/// A detached launch.
#[derive(Debug, Clone, Default)]
pub struct SpawnRequest {
    /// Shell command line, run by `/bin/sh -c`.
    pub command: String,
    /// Working directory; the daemon's when empty.
    pub cwd: String,
    /// Ordered overrides; the last entry for a key wins.
    pub env: Vec<(String, String)>,
    /// With true, the child sees only `env`.
    pub clear_inherited_env: bool,
    /// Originator label recorded with the process.
    pub originator: String,
}

/// Containment label of detached launches: their own session and group.
pub(crate) const DETACHED_CONTAINMENT: &str = "session";

impl Registry {
    /// Launches `req` detached and registers it (kind `daemon`).
    pub async fn spawn_detached(&self, req: &SpawnRequest) -> Result<Tracked, RegistryError> {
        if req.command.trim().is_empty() {
            return Err(RegistryError::InvalidArgument(
                "spawn_daemon.command must not be empty".into(),
            ));
        }
        if let Some((k, _)) = req
            .env
            .iter()
            .find(|(k, _)| k.is_empty() || k.contains('=') || k.contains('\0'))
        {
            return Err(RegistryError::InvalidArgument(format!(
                "spawn_daemon.env has an invalid key {k:?}"
            )));
        }
        let cwd = if req.cwd.is_empty() {
            std::env::current_dir()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| "/".into())
        } else {
            req.cwd.clone()
        };
        if !std::path::Path::new(&cwd).is_dir() {
            return Err(RegistryError::InvalidArgument(format!(
                "spawn_daemon.cwd {cwd:?} is not an existing directory"
            )));
        }
        let mut spec = SpawnSpec::shell(&req.command);
        spec.cwd = Some(cwd.clone());
        spec.env = layer_env(std::env::vars(), &req.env, req.clear_inherited_env);
        let mut cmd = spec.command().map_err(|e| RegistryError::Os(e.into()))?;
        detach(&mut cmd);
        let mut child = tokio::process::Command::from(cmd).spawn().map_err(|e| {
            RegistryError::Os(OsError::new("spawn_daemon: cannot start /bin/sh", e))
        })?;
        let pid = child.id().ok_or_else(|| {
            RegistryError::Os(io::Error::other("spawned child has no pid").into())
        })?;
        let identity = ProcessIdentity::of(pid).map_err(|e| {
            RegistryError::Os(OsError::new(
                format!("spawned pid {pid} vanished before it could be tracked"),
                e,
            ))
        })?;
        // Reap it when it exits so it never lingers as a zombie of ours.
        tokio::spawn(async move {
            let _ = child.wait().await;
        });
        let now = proc::now_epoch();
        let row = Tracked {
            identity,
            created_at: identity.started_at(),
            kind: "daemon".into(),
            command: req.command.clone(),
            cwd,
            originator: req.originator.clone(),
            containment: DETACHED_CONTAINMENT.into(),
            registered_at: now,
            parent: None,
            state: ProcState::Alive,
            last_validated_at: now,
            parent_alive: true,
        };
        self.insert(&row)?;
        Ok(self.annotate(row))
    }
}
