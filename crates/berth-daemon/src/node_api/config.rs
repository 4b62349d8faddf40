//! Node-API settings: `--node-api ADDR` plus the environment variables of
//! seed 004 ("Configuration", "Log Retrieval Settings"), with its defaults.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Everything the node API needs to serve.
#[derive(Debug, Clone)]
pub struct NodeApiConfig {
    /// HTTPS listen address (the seed's port is 8443).
    pub listen: SocketAddr,
    /// PEM certificate chain and key; `None` = a self-signed certificate
    /// generated once and kept in `state_dir`.
    pub tls_files: Option<(PathBuf, PathBuf)>,
    /// Where the self-signed certificate is kept (0700).
    pub state_dir: PathBuf,
    /// `NODE_ID`: the `node` claim that node-management tokens must carry.
    pub node_id: String,
    /// `CONTROL_PLANE_URL`: issuer default and JWKS location.
    pub control_plane_url: String,
    /// `CALLBACK_TOKEN`: the node's token towards the control plane (kept,
    /// never logged).
    pub callback_token: Option<String>,
    /// `JWKS_ENDPOINT`, else `CONTROL_PLANE_URL/.well-known/jwks.json`.
    pub jwks_url: String,
    /// `JWT_ISSUER`, else the control-plane URL.
    pub issuer: String,
    /// `JWKS_REFRESH_MIN_INTERVAL` (berth extension, default 30s): the
    /// least time between two fetches caused by unknown key ids.
    pub jwks_refresh_min_interval: Duration,
    /// Periodic JWKS refresh (15 minutes).
    pub jwks_refresh_every: Duration,
    /// `LOG_LEVEL` (debug, info, warn, error; default info).
    pub log_level: String,
    /// `LOG_FORMAT` (json or text; default json).
    pub log_format: String,
    /// `ACP_PROMPT_RETRY_MAX_RETRIES` (2).
    pub acp_prompt_retry_max_retries: u32,
    /// `ACP_PROMPT_RETRY_INITIAL_BACKOFF` (15s).
    pub acp_prompt_retry_initial_backoff: Duration,
    /// `ACP_PROMPT_RETRY_MAX_BACKOFF` (2m).
    pub acp_prompt_retry_max_backoff: Duration,
    /// `ACP_NOTIF_SERIALIZE_TIMEOUT` (5s).
    pub acp_notif_serialize_timeout: Duration,
    /// `ACP_REPLAY_BUFFER_SIZE` (berth, 5000): agent-session events kept
    /// for late viewers.
    pub acp_replay_buffer: usize,
    /// `ACP_VIEWER_QUEUE` (berth, 4096): events queued per agent viewer
    /// before one that does not read is dropped.
    pub acp_viewer_queue: usize,
    /// `ACP_IDLE_SESSION_TIMEOUT` (berth, 30m): a session `/agent/ws` made
    /// without a session id is stopped and forgotten after this long with
    /// no viewer and no prompt.
    pub acp_idle_session_timeout: Duration,
    /// `BERTH_ACP_HOST_WORKSPACES` (berth, off): `1` runs the agents of a
    /// workspace id that is no container workspace on the host (else such
    /// a session is refused 404).
    pub acp_host_workspaces: bool,
    /// `LOG_RETRIEVAL_DEFAULT_LIMIT` (200).
    pub log_default_limit: usize,
    /// `LOG_RETRIEVAL_MAX_LIMIT` (1000).
    pub log_max_limit: usize,
    /// `LOG_STREAM_BUFFER_SIZE` (100).
    pub log_stream_buffer: usize,
    /// `LOG_READER_TIMEOUT` (30s).
    pub log_reader_timeout: Duration,
    /// `LOG_STREAM_PING_INTERVAL` (30s).
    pub log_stream_ping: Duration,
    /// `LOG_STREAM_PONG_TIMEOUT` (90s).
    pub log_stream_pong_timeout: Duration,
    /// `PTY_ORPHAN_GRACE_PERIOD`: how long a terminal with no client keeps
    /// running; zero = forever (default 0).
    pub orphan_grace: Duration,
    /// `PTY_OUTPUT_BUFFER_SIZE` (bytes, default 262144 = 256 KiB): the most
    /// raw output one replay sends. A client missing more than this (or a
    /// fresh client of a session that printed more) gets the screen from
    /// the screen model instead. The engine's ring itself is sized by
    /// `--backlog-kib`, as it is shared with every other client.
    pub pty_output_buffer: usize,
    /// The shell of new terminals (`$SHELL`, else /bin/sh).
    pub shell: String,
    /// Working directory of new terminals without `workDir` (`$HOME`).
    pub default_workdir: String,
    /// What the HTTPS port refuses (berth extensions, issue 21):
    /// `NODE_API_HEADER_TIMEOUT` (30s), `NODE_API_BODY_TIMEOUT` (30s),
    /// `NODE_API_MAX_BODY_BYTES` (2097152), and
    /// `NODE_API_MAX_CONNECTIONS_PER_ADDRESS` (512; 0 = no limit). See
    /// [`super::limits`].
    pub limits: super::limits::Limits,
}

/// A setting that could not be read, named.
#[derive(Debug, thiserror::Error)]
#[error("{name}={value:?}: {why}")]
pub struct BadSetting {
    name: &'static str,
    value: String,
    why: String,
}

impl NodeApiConfig {
    /// Settings for `listen`, read from `env` (the process environment in
    /// the daemon, a map in tests). Fails on a value that does not parse,
    /// naming the variable.
    pub fn from_env(
        listen: SocketAddr,
        state_dir: PathBuf,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, BadSetting> {
        let get = |n: &str| env(n).filter(|v| !v.is_empty());
        let control_plane_url = get("CONTROL_PLANE_URL")
            .unwrap_or_default()
            .trim_end_matches('/')
            .to_string();
        let jwks_url = get("JWKS_ENDPOINT")
            .unwrap_or_else(|| format!("{control_plane_url}/.well-known/jwks.json"));
        let dur = |name: &'static str, default: Duration| -> Result<Duration, BadSetting> {
            match get(name) {
                None => Ok(default),
                Some(v) => parse_duration(&v).map_err(|why| BadSetting {
                    name,
                    value: v,
                    why,
                }),
            }
        };
        let num = |name: &'static str, default: usize| -> Result<usize, BadSetting> {
            match get(name) {
                None => Ok(default),
                Some(v) => v.trim().parse().map_err(|_| BadSetting {
                    name,
                    value: v,
                    why: "expected a whole number".into(),
                }),
            }
        };
        let one_of = |name: &'static str, default: &str, allowed: &[&str]| {
            let v = get(name).unwrap_or_else(|| default.into());
            if allowed.contains(&v.as_str()) {
                Ok(v)
            } else {
                Err(BadSetting {
                    name,
                    value: v,
                    why: format!("use one of {}", allowed.join(", ")),
                })
            }
        };
        Ok(Self {
            listen,
            tls_files: None,
            state_dir,
            node_id: get("NODE_ID").unwrap_or_default(),
            issuer: get("JWT_ISSUER").unwrap_or_else(|| control_plane_url.clone()),
            callback_token: get("CALLBACK_TOKEN"),
            jwks_url,
            control_plane_url,
            jwks_refresh_min_interval: dur("JWKS_REFRESH_MIN_INTERVAL", Duration::from_secs(30))?,
            jwks_refresh_every: Duration::from_secs(15 * 60),
            log_level: one_of("LOG_LEVEL", "info", &["debug", "info", "warn", "error"])?,
            log_format: one_of("LOG_FORMAT", "json", &["json", "text"])?,
            acp_prompt_retry_max_retries: num("ACP_PROMPT_RETRY_MAX_RETRIES", 2)? as u32,
            acp_prompt_retry_initial_backoff: dur(
                "ACP_PROMPT_RETRY_INITIAL_BACKOFF",
                Duration::from_secs(15),
            )?,
            acp_prompt_retry_max_backoff: dur(
                "ACP_PROMPT_RETRY_MAX_BACKOFF",
                Duration::from_secs(120),
            )?,
            acp_notif_serialize_timeout: dur(
                "ACP_NOTIF_SERIALIZE_TIMEOUT",
                Duration::from_secs(5),
            )?,
            acp_replay_buffer: num("ACP_REPLAY_BUFFER_SIZE", 5000)?,
            acp_viewer_queue: num("ACP_VIEWER_QUEUE", 4096)?,
            acp_idle_session_timeout: dur(
                "ACP_IDLE_SESSION_TIMEOUT",
                Duration::from_secs(30 * 60),
            )?,
            acp_host_workspaces: one_of("BERTH_ACP_HOST_WORKSPACES", "0", &["0", "1"])? == "1",
            log_default_limit: num("LOG_RETRIEVAL_DEFAULT_LIMIT", 200)?,
            log_max_limit: num("LOG_RETRIEVAL_MAX_LIMIT", 1000)?,
            log_stream_buffer: num("LOG_STREAM_BUFFER_SIZE", 100)?,
            log_reader_timeout: dur("LOG_READER_TIMEOUT", Duration::from_secs(30))?,
            log_stream_ping: dur("LOG_STREAM_PING_INTERVAL", Duration::from_secs(30))?,
            log_stream_pong_timeout: dur("LOG_STREAM_PONG_TIMEOUT", Duration::from_secs(90))?,
            orphan_grace: dur("PTY_ORPHAN_GRACE_PERIOD", Duration::ZERO)?,
            pty_output_buffer: match num("PTY_OUTPUT_BUFFER_SIZE", 256 * 1024)? {
                0 => {
                    return Err(BadSetting {
                        name: "PTY_OUTPUT_BUFFER_SIZE",
                        value: "0".into(),
                        why: "expected a number of bytes of at least 1".into(),
                    })
                }
                n => n,
            },
            limits: {
                let d = super::limits::Limits::default();
                let l = super::limits::Limits {
                    header_timeout: dur("NODE_API_HEADER_TIMEOUT", d.header_timeout)?,
                    body_timeout: dur("NODE_API_BODY_TIMEOUT", d.body_timeout)?,
                    max_body: num("NODE_API_MAX_BODY_BYTES", d.max_body)?,
                    max_per_address: num(
                        "NODE_API_MAX_CONNECTIONS_PER_ADDRESS",
                        d.max_per_address,
                    )?,
                };
                for (name, zero) in [
                    ("NODE_API_HEADER_TIMEOUT", l.header_timeout.is_zero()),
                    ("NODE_API_BODY_TIMEOUT", l.body_timeout.is_zero()),
                ] {
                    if zero {
                        return Err(BadSetting {
                            name,
                            value: get(name).unwrap_or_default(),
                            why: "expected a duration longer than zero".into(),
                        });
                    }
                }
                l
            },
            shell: env("SHELL").unwrap_or_else(|| "/bin/sh".into()),
            default_workdir: env("HOME").unwrap_or_else(|| "/".into()),
        })
    }
}

/// Reads a Go-style duration as the seed writes them: `15s`, `2m`,
/// `1h30m`, `500ms`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    if rest.is_empty() {
        return Err("empty duration".into());
    }
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("{s:?}: a number needs a unit (ms, s, m, h)"))?;
        let value: f64 = rest[..n]
            .parse()
            .map_err(|_| format!("{s:?}: expected a number before the unit"))?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = match &rest[..u] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            other => return Err(format!("{s:?}: unknown unit {other:?} (use ms, s, m, h)")),
        };
        total = Duration::try_from_secs_f64(value * unit)
            .ok()
            .and_then(|d| total.checked_add(d))
            .ok_or_else(|| format!("{s:?}: too long a duration"))?;
        rest = &rest[u..];
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_defaults_and_go_durations() {
        let c = NodeApiConfig::from_env("127.0.0.1:8443".parse().unwrap(), "/tmp".into(), |n| {
            (n == "CONTROL_PLANE_URL").then(|| "https://cp.example/".into())
        })
        .unwrap();
        assert_eq!(c.jwks_url, "https://cp.example/.well-known/jwks.json");
        assert_eq!(c.issuer, "https://cp.example");
        assert_eq!(c.log_default_limit, 200);
        assert_eq!(c.acp_prompt_retry_max_backoff, Duration::from_secs(120));
        assert_eq!(c.pty_output_buffer, 256 * 1024);
        let zero = NodeApiConfig::from_env("127.0.0.1:1".parse().unwrap(), "/tmp".into(), |n| {
            (n == "PTY_OUTPUT_BUFFER_SIZE").then(|| "0".into())
        });
        assert!(zero
            .unwrap_err()
            .to_string()
            .contains("PTY_OUTPUT_BUFFER_SIZE"));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert!(parse_duration("5 parsecs").is_err());
        // Past what a Duration holds: an error naming the value, not a panic.
        let huge = parse_duration("99999999999999999999999h").unwrap_err();
        assert!(huge.contains("too long"), "{huge}");
        assert!(parse_duration("18446744073709551615s1s").is_err());
        let bad = NodeApiConfig::from_env("127.0.0.1:1".parse().unwrap(), "/tmp".into(), |n| {
            (n == "LOG_FORMAT").then(|| "xml".into())
        });
        assert!(bad.unwrap_err().to_string().contains("LOG_FORMAT"));
    }
}
