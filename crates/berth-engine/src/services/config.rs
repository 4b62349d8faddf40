//! What a service is: its launch recipe and restart policy, validated with
//! errors that name the offending field, and the defaults a zero means.

use super::ServiceError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// A service definition, as given by a client or an ecosystem file.
///
/// Zero numbers mean "the default" (see the `effective_*` methods), because
/// the wire format cannot tell an unset number from zero.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ServiceSpec {
    /// Unique name; also the target used by stop/restart/delete.
    pub name: String,
    /// argv; `cmd[0]` is looked up on the service's PATH. No shell.
    pub cmd: Vec<String>,
    /// Working directory; the daemon user's home when empty.
    pub cwd: String,
    /// Environment added over the daemon's own.
    pub env: BTreeMap<String, String>,
    /// Restart when the process exits by itself.
    pub autorestart: bool,
    /// Unstable restarts allowed in a row before the service is errored;
    /// 0 means unlimited.
    pub max_restarts: u32,
    /// Delay before a restart, doubled for each consecutive unstable exit.
    pub restart_delay_ms: u32,
    /// Grace between SIGTERM and SIGKILL when stopping; 0 means 5000.
    pub kill_timeout_ms: u32,
    /// A run shorter than this is unstable; 0 means 1000.
    pub min_uptime_ms: u32,
    /// Keep running when the daemon shuts down (to be re-adopted by the
    /// next one), as containers outlive their engine: set for the native
    /// services of Compose projects, never by runpm clients.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub outlive_daemon: bool,
}

/// Default grace between SIGTERM and SIGKILL.
pub const DEFAULT_KILL_TIMEOUT: Duration = Duration::from_millis(5000);
/// Default shortest run that counts as stable (pm2's default).
pub const DEFAULT_MIN_UPTIME: Duration = Duration::from_millis(1000);
/// First backoff step for unstable exits when `restart_delay_ms` is 0, so a
/// command that fails at once does not spin.
pub const DEFAULT_UNSTABLE_DELAY: Duration = Duration::from_millis(100);
/// Longest backoff, unless `restart_delay_ms` itself is longer.
pub const MAX_BACKOFF: Duration = Duration::from_secs(15);

/// Longest grace a stop may wait before SIGKILL: requests and the daemon's
/// shutdown wait for it.
pub const MAX_KILL_TIMEOUT: Duration = Duration::from_secs(3600);

/// Longest accepted name; names become file names.
pub const MAX_NAME_LEN: usize = 64;

impl ServiceSpec {
    /// Grace between SIGTERM and SIGKILL.
    pub fn kill_timeout(&self) -> Duration {
        match self.kill_timeout_ms {
            0 => DEFAULT_KILL_TIMEOUT,
            ms => Duration::from_millis(ms.into()),
        }
    }

    /// Shortest run that counts as stable.
    pub fn min_uptime(&self) -> Duration {
        match self.min_uptime_ms {
            0 => DEFAULT_MIN_UPTIME,
            ms => Duration::from_millis(ms.into()),
        }
    }

    /// Delay after a stable run.
    pub fn restart_delay(&self) -> Duration {
        Duration::from_millis(self.restart_delay_ms.into())
    }

    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<(), ServiceError> {
        validate_name(&self.name)?;
        if self.cmd.is_empty() {
            return Err(ServiceError::invalid(
                "cmd",
                "must not be empty: give the program and its arguments",
            ));
        }
        for (i, a) in self.cmd.iter().enumerate() {
            if a.contains('\0') {
                return Err(ServiceError::invalid(
                    format!("cmd[{i}]"),
                    "contains a NUL byte",
                ));
            }
        }
        if self.cmd[0].trim().is_empty() {
            return Err(ServiceError::invalid(
                "cmd[0]",
                "the program must not be empty",
            ));
        }
        if !self.cwd.is_empty() {
            if self.cwd.contains('\0') {
                return Err(ServiceError::invalid("cwd", "contains a NUL byte"));
            }
            if !Path::new(&self.cwd).is_absolute() {
                return Err(ServiceError::invalid(
                    "cwd",
                    format!("{:?} must be an absolute path", self.cwd),
                ));
            }
            if !Path::new(&self.cwd).is_dir() {
                return Err(ServiceError::invalid(
                    "cwd",
                    format!("{:?} is not an existing directory", self.cwd),
                ));
            }
        }
        if Duration::from_millis(self.kill_timeout_ms.into()) > MAX_KILL_TIMEOUT {
            return Err(ServiceError::invalid(
                "kill_timeout_ms",
                format!(
                    "{} is longer than the 1 hour a stop may wait",
                    self.kill_timeout_ms
                ),
            ));
        }
        for (k, v) in &self.env {
            if k.is_empty() || k.contains('=') || k.contains('\0') {
                return Err(ServiceError::invalid(
                    format!("env[{k:?}]"),
                    "is not a valid variable name",
                ));
            }
            if v.contains('\0') {
                return Err(ServiceError::invalid(
                    format!("env[{k:?}]"),
                    "value contains a NUL byte",
                ));
            }
        }
        Ok(())
    }
}

/// Names are targets and file names: `[A-Za-z0-9._@:+-]`, not starting with
/// `.`, not `all`, and not all digits (that would shadow an id).
pub fn validate_name(name: &str) -> Result<(), ServiceError> {
    let bad = |why: &str| Err(ServiceError::invalid("name", format!("{name:?} {why}")));
    if name.is_empty() {
        return Err(ServiceError::invalid("name", "must not be empty"));
    }
    if name.len() > MAX_NAME_LEN {
        return bad("is longer than 64 characters");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "._@:+-".contains(c))
    {
        return bad("may only use letters, digits and . _ @ : + -");
    }
    if name.starts_with('.') {
        return bad("must not start with '.'");
    }
    if name == "all" {
        return bad("is reserved (it targets every service)");
    }
    if name.chars().all(|c| c.is_ascii_digit()) {
        return bad("must not be all digits (numbers target service ids)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ServiceSpec {
        ServiceSpec {
            name: "web".into(),
            cmd: vec!["sleep".into(), "1".into()],
            ..Default::default()
        }
    }

    fn field(e: ServiceError) -> String {
        match e {
            ServiceError::Invalid { field, .. } => field,
            other => panic!("not a field error: {other}"),
        }
    }

    #[test]
    fn errors_name_the_field() {
        assert!(spec().validate().is_ok());
        let mut s = spec();
        s.cmd.clear();
        assert_eq!(field(s.validate().unwrap_err()), "cmd");
        let mut s = spec();
        s.cmd[0] = " ".into();
        assert_eq!(field(s.validate().unwrap_err()), "cmd[0]");
        let mut s = spec();
        s.cwd = "relative".into();
        assert_eq!(field(s.validate().unwrap_err()), "cwd");
        let mut s = spec();
        s.cwd = "/no/such/dir/for/berth".into();
        assert_eq!(field(s.validate().unwrap_err()), "cwd");
        let mut s = spec();
        s.env.insert("A=B".into(), "x".into());
        assert!(field(s.validate().unwrap_err()).starts_with("env["));
        for n in ["", "all", "123", ".x", "a b", "a/b"] {
            let mut s = spec();
            s.name = n.into();
            assert_eq!(field(s.validate().unwrap_err()), "name", "{n:?}");
        }
    }

    #[test]
    fn zero_means_default() {
        let s = spec();
        assert_eq!(s.kill_timeout(), DEFAULT_KILL_TIMEOUT);
        assert_eq!(s.min_uptime(), DEFAULT_MIN_UPTIME);
        assert_eq!(s.restart_delay(), Duration::ZERO);
    }
}
