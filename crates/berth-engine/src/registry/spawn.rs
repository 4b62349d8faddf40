//! SPAWN_DAEMON: start a shell command detached from everyone (its own
//! session, stdio on /dev/null) and track it.

use super::{ProcState, Registry, RegistryError, Tracked, DETACHED, SESSION_DETAIL};
use berth_os::proc::{self, ProcessIdentity};
use berth_os::spawn::{detach, layer_env, user_baseline_env, SpawnSpec};
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
    /// With true, the child sees only `env` (and the metadata below).
    pub clear_inherited_env: bool,
    /// Start from the user's login environment instead
    /// ([`user_baseline_env`]; the reference's `USER_BASELINE` policy);
    /// takes precedence over `clear_inherited_env`.
    pub user_baseline: bool,
    /// Originator label recorded with the process and exported to it as
    /// `RUNNING_PROCESS_ORIGINATOR` (not exported when empty).
    pub originator: String,
}

/// The variable through which the reference's tools find the processes of
/// an originator (its `originator` module scans `/proc/*/environ` for it).
pub const ORIGINATOR_ENV_VAR: &str = "RUNNING_PROCESS_ORIGINATOR";
/// Set to `1` in every detached child: a positive mark that the process was
/// launched by a daemon (the reference's `DAEMON_MARKER_ENV_VAR`).
pub const DAEMON_MARKER_ENV_VAR: &str = "RUNNING_PROCESS_IS_DAEMON";

/// The environment of a child berth spawns for a client: the base (the
/// daemon's own, the user's login baseline, or nothing), then the client's
/// ordered overrides (last wins), then berth's `metadata`, which wins over
/// both (as in the reference, a client cannot forge its originator).
pub fn child_env(
    overrides: &[(String, String)],
    clear: bool,
    user_baseline: bool,
    metadata: &[(String, String)],
) -> Vec<(String, String)> {
    let base: Vec<(String, String)> = if user_baseline {
        user_baseline_env(std::env::vars())
    } else if clear {
        Vec::new()
    } else {
        std::env::vars().collect()
    };
    let env = layer_env(base, overrides, false);
    layer_env(env, metadata, false)
}

/// Kind of SPAWN_DAEMON launches, the reference's value.
pub const SPAWNED_KIND: &str = "subprocess";

impl Registry {
    /// Launches `req` detached and registers it (kind `subprocess`,
    /// containment `detached`, detail `session`, as the reference reports).
    /// The child gets `RUNNING_PROCESS_IS_DAEMON=1` and, when there is an
    /// originator, `RUNNING_PROCESS_ORIGINATOR`. A relative `cwd` is resolved
    /// against the daemon's working directory, as the reference does.
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
        let mut metadata = vec![(DAEMON_MARKER_ENV_VAR.to_string(), "1".to_string())];
        if !req.originator.is_empty() {
            metadata.push((ORIGINATOR_ENV_VAR.to_string(), req.originator.clone()));
        }
        spec.env = child_env(
            &req.env,
            req.clear_inherited_env,
            req.user_baseline,
            &metadata,
        );
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
            kind: SPAWNED_KIND.into(),
            command: req.command.clone(),
            cwd,
            originator: req.originator.clone(),
            containment: DETACHED.into(),
            containment_detail: SESSION_DETAIL.into(),
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
