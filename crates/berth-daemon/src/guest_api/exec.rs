//! `POST /api/v1/exec`: run a program in the guest and return its exit
//! code and output.
//!
//! Request `{command, args?, cwd?, env?, timeout_ms?, stdin?, shell?}`;
//! response `{exit_code, signal, stdout, stderr, timed_out, truncated}`.
//! No shell unless `shell` is true (then `command` is a `/bin/sh -c`
//! script and `args` its `$1...`). The child leads a new session and
//! process group (`berth_os::spawn::new_session`, as the registry spawns),
//! so a timeout kills the whole tree with one `killpg`; when the command
//! itself ends, what it left behind in its group is killed too, so the
//! response never waits on a stray holder of its pipes.

use super::error::Json;
use super::error::{ApiError, ApiResult};
use super::{JsonBody, Shared};
use axum::extract::State;
use berth_os::signal::Signal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

/// Default largest stdout and stderr returned, each: 1 MiB.
pub const DEFAULT_OUTPUT_LIMIT: usize = 1 << 20;
/// Default timeout: 60 s.
pub const DEFAULT_TIMEOUT_MS: u64 = 60_000;

/// An exec request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecRequest {
    /// The program (looked up on PATH), or the script when `shell`.
    pub command: String,
    /// Its arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// Working directory; the daemon's when absent.
    pub cwd: Option<String>,
    /// Variables set over the daemon's environment.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Milliseconds before the whole process tree is killed (default 60 s).
    pub timeout_ms: Option<u64>,
    /// Text written to the program's stdin (then closed).
    pub stdin: Option<String>,
    /// Run `command` with `/bin/sh -c`.
    #[serde(default)]
    pub shell: bool,
}

/// What an exec did.
#[derive(Debug, Serialize)]
pub struct ExecResponse {
    /// Exit code; `null` when a signal ended it.
    pub exit_code: Option<i32>,
    /// The signal that ended it, if one did.
    pub signal: Option<i32>,
    /// stdout, UTF-8 (invalid bytes replaced), at most the output limit.
    pub stdout: String,
    /// stderr, likewise.
    pub stderr: String,
    /// The timeout fired and the tree was killed.
    pub timed_out: bool,
    /// stdout or stderr was cut at the output limit.
    pub truncated: bool,
}

pub(super) async fn handle(
    State(api): State<Shared>,
    JsonBody(req): JsonBody<ExecRequest>,
) -> ApiResult<Json<ExecResponse>> {
    Ok(Json(run(req, api.config.exec_output_limit).await?))
}

/// Runs `req`, keeping at most `limit` bytes of each output stream.
pub async fn run(req: ExecRequest, limit: usize) -> ApiResult<ExecResponse> {
    if req.command.is_empty() {
        return Err(ApiError::bad_request("\"command\" is empty"));
    }
    let argv = if req.shell {
        let mut v = vec![
            "/bin/sh".into(),
            "-c".into(),
            req.command.clone(),
            "sh".into(),
        ];
        v.extend(req.args.iter().cloned());
        v
    } else {
        let mut v = vec![req.command.clone()];
        v.extend(req.args.iter().cloned());
        v
    };
    let overrides: Vec<(String, String)> = req.env.into_iter().collect();
    let spec = berth_os::spawn::SpawnSpec {
        argv,
        cwd: req.cwd.clone(),
        env: berth_os::spawn::layer_env(std::env::vars(), &overrides, false),
    };
    let mut cmd = spec
        .command()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    berth_os::spawn::new_session(&mut cmd);
    cmd.stdin(if req.stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = tokio::process::Command::from(cmd)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            let what = match &req.cwd {
                Some(cwd) => format!("cannot run {:?} in {cwd:?}", req.command),
                None => format!("cannot run {:?}", req.command),
            };
            ApiError::io(&what, &e)
        })?;
    let pgid = child.id().map(|p| p as i32);
    // Should this future be dropped mid-run (the server stopping), the
    // tree goes with it.
    let mut tree = TreeGuard(pgid);
    if let (Some(text), Some(mut pipe)) = (req.stdin, child.stdin.take()) {
        // Written beside the wait: a program that never reads must not
        // block the response (its timeout still applies).
        tokio::spawn(async move {
            let _ = pipe.write_all(text.as_bytes()).await;
        });
    }
    let out = tokio::spawn(read_limited(child.stdout.take(), limit));
    let err = tokio::spawn(read_limited(child.stderr.take(), limit));
    let timeout = Duration::from_millis(req.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS));
    let (status, timed_out) = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(st) => (st, false),
        Err(_) => {
            kill_group(pgid);
            (child.wait().await, true)
        }
    };
    // The command is done: whatever it left in its group goes with it.
    kill_group(pgid);
    tree.0 = None;
    let status = status.map_err(|e| ApiError::io("cannot wait for the command", &e))?;
    let (stdout, t1) = out.await.unwrap_or_default();
    let (stderr, t2) = err.await.unwrap_or_default();
    Ok(ExecResponse {
        exit_code: status.code(),
        signal: status.signal(),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
        timed_out,
        truncated: t1 || t2,
    })
}

/// Kills the process group when dropped.
struct TreeGuard(Option<i32>);

impl Drop for TreeGuard {
    fn drop(&mut self) {
        kill_group(self.0);
    }
}

fn kill_group(pgid: Option<i32>) {
    if let Some(pgid) = pgid.filter(|p| *p > 1) {
        let _ = berth_os::signal::send_group(pgid, Signal::SIGKILL);
    }
}

/// Reads a pipe to its end, keeping the first `limit` bytes and draining
/// the rest (so the writer never blocks); true when something was cut.
async fn read_limited(pipe: Option<impl AsyncRead + Unpin>, limit: usize) -> (Vec<u8>, bool) {
    let Some(mut pipe) = pipe else {
        return (Vec::new(), false);
    };
    let mut kept = Vec::new();
    let mut cut = false;
    let mut buf = vec![0u8; 64 << 10];
    loop {
        match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = limit.saturating_sub(kept.len());
                if n > room {
                    cut = true;
                }
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
    if cut {
        // The limit fell where it fell: end on a whole character, so the
        // cut text does not end in U+FFFD.
        kept.truncate(kept.len() - berth_os::text::incomplete_utf8_tail(&kept));
    }
    (kept, cut)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 21, item 5: output cut at the limit ended inside a character.
    #[tokio::test]
    async fn output_cut_at_the_limit_ends_on_a_whole_character() {
        let text = "ab€€".as_bytes(); // 2 + 3 + 3 bytes
        let (kept, cut) = read_limited(Some(text), 6).await;
        assert!(cut);
        assert_eq!(kept, "ab€".as_bytes());
        let (kept, cut) = read_limited(Some(text), 8).await;
        assert!(!cut);
        assert_eq!(kept, text);
    }
}
