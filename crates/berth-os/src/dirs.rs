//! Where berth keeps sockets and state, per user.
//!
//! `XDG_RUNTIME_DIR` / `XDG_STATE_HOME` win when set (tests and sandboxes set
//! them); otherwise root uses `/run` and `/var/lib`, other users
//! `/tmp/berth-<uid>` and `~/.local/state`.

use std::path::PathBuf;

fn env_dir(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// The effective uid of this process.
pub fn uid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

/// berth's runtime directory (sockets, pid files); mode 0700 once created.
pub fn runtime_dir() -> PathBuf {
    match env_dir("XDG_RUNTIME_DIR") {
        Some(d) => d.join("berth"),
        None if uid() == 0 => PathBuf::from("/run/berth"),
        None => PathBuf::from(format!("/tmp/berth-{}", uid())),
    }
}

/// The directory the published running-process clients look in:
/// `$XDG_RUNTIME_DIR/running-process`, else `/tmp/running-process-<uid>`.
pub fn compat_runtime_dir() -> PathBuf {
    match env_dir("XDG_RUNTIME_DIR") {
        Some(d) => d.join("running-process"),
        None => PathBuf::from(format!("/tmp/running-process-{}", uid())),
    }
}

/// berth's state directory (database, logs, snapshots).
pub fn state_dir() -> PathBuf {
    match env_dir("XDG_STATE_HOME") {
        Some(d) => d.join("berth"),
        None if uid() == 0 => PathBuf::from("/var/lib/berth"),
        None => match env_dir("HOME") {
            Some(h) => h.join(".local/state/berth"),
            None => PathBuf::from(format!("/tmp/berth-{}-state", uid())),
        },
    }
}

/// `daemon.sock`, or `daemon-<scope>.sock` for a named scope.
pub fn socket_name(scope: Option<&str>) -> String {
    match scope {
        Some(s) if !s.is_empty() => format!("daemon-{s}.sock"),
        _ => "daemon.sock".to_string(),
    }
}

/// Default process-API socket of berth.
pub fn daemon_socket(scope: Option<&str>) -> PathBuf {
    runtime_dir().join(socket_name(scope))
}

/// `project.sock`, or `project-<scope>.sock`: the project API (gRPC)
/// socket, beside the process API's in the same private directory.
pub fn project_socket_name(scope: Option<&str>) -> String {
    match scope {
        Some(s) if !s.is_empty() => format!("project-{s}.sock"),
        _ => "project.sock".to_string(),
    }
}

/// Default project-API socket of berth.
pub fn project_socket(scope: Option<&str>) -> PathBuf {
    runtime_dir().join(project_socket_name(scope))
}

/// The running-process compatible socket path.
pub fn compat_socket(scope: Option<&str>) -> PathBuf {
    compat_runtime_dir().join(socket_name(scope))
}

/// Default database path: `berth.db`, or `berth-<scope>.db`.
pub fn database(scope: Option<&str>) -> PathBuf {
    state_dir().join(match scope {
        Some(s) if !s.is_empty() => format!("berth-{s}.db"),
        _ => "berth.db".to_string(),
    })
}

/// Rejects scope names that could escape the runtime directory.
pub fn validate_scope(scope: &str) -> Result<(), String> {
    if scope.is_empty()
        || scope.len() > 64
        || !scope
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        || scope.starts_with('.')
    {
        return Err(format!(
            "invalid scope {scope:?}: use 1-64 characters from [A-Za-z0-9._-], not starting with '.'"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_cannot_traverse() {
        assert!(validate_scope("ci-1").is_ok());
        assert!(validate_scope("../x").is_err());
        assert!(validate_scope("..").is_err());
        assert!(validate_scope("").is_err());
        assert_eq!(socket_name(Some("ci-1")), "daemon-ci-1.sock");
        assert_eq!(project_socket_name(Some("ci-1")), "project-ci-1.sock");
        assert_eq!(project_socket_name(None), "project.sock");
    }
}
