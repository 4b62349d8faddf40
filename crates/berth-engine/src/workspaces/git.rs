//! The clone step: `git clone` of a repository and branch into a host
//! folder (the build context and the source of the volume's files).
//!
//! A token is handed to git through the environment only
//! (`GIT_CONFIG_COUNT`/`GIT_CONFIG_KEY_0=http.extraHeader`), never through
//! argv (visible in `/proc`), the URL, or the repository's config; every
//! line of git's output goes through the log's redactor.

use super::log::{basic_auth, ProvisionLog};
use std::path::Path;
use std::process::Stdio;

/// Clones `repo` at `branch` (empty = the default branch) into `dest`
/// (removed first). `token` authenticates HTTP(S) remotes. Errors carry
/// git's message, redacted.
pub async fn clone(
    repo: &str,
    branch: &str,
    token: Option<&str>,
    dest: &Path,
    log: &ProvisionLog,
) -> Result<(), String> {
    if dest.exists() {
        std::fs::remove_dir_all(dest)
            .map_err(|e| format!("cannot clear {}: {e}", dest.display()))?;
    }
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    let mut cmd = tokio::process::Command::new("git");
    cmd.arg("clone").arg("--quiet");
    if !branch.is_empty() {
        cmd.args(["--branch", branch, "--single-branch"]);
    }
    cmd.arg("--").arg(repo).arg(dest);
    cmd.env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "/bin/false")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(t) = token {
        cmd.env("GIT_CONFIG_COUNT", "1")
            .env("GIT_CONFIG_KEY_0", "http.extraHeader")
            .env(
                "GIT_CONFIG_VALUE_0",
                format!("Authorization: {}", basic_auth(t)),
            );
    }
    log.line(&format!(
        "$ git clone {}{repo}",
        if branch.is_empty() {
            String::new()
        } else {
            format!("--branch {branch} ")
        }
    ));
    let out = cmd
        .output()
        .await
        .map_err(|e| format!("cannot run git (is it installed?): {e}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !text.trim().is_empty() {
        log.line(text.trim_end());
    }
    if !out.status.success() {
        let why = log.redactor().apply(text.trim());
        return Err(format!(
            "git clone of {repo}{} failed: {why}",
            if branch.is_empty() {
                String::new()
            } else {
                format!(" (branch {branch})")
            }
        ));
    }
    Ok(())
}
