//! A workspace's provisioning log: one file per workspace
//! (`<state>/workspaces/<id>/provision.log`), every line passed through
//! [`Redactor`] first so no token reaches it (nor the daemon's log).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Replaces secrets (and their base64 forms, as they appear in HTTP
/// authorization headers) with `***`.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    /// A redactor of `secrets` (empty ones are skipped).
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a str>) -> Self {
        use base64_forms as b;
        let mut out = Vec::new();
        for s in secrets.into_iter().filter(|s| s.len() >= 4) {
            out.push(s.to_string());
            out.extend(b::forms(s));
        }
        out.sort_by_key(|s| std::cmp::Reverse(s.len()));
        out.dedup();
        Redactor { secrets: out }
    }

    /// `line` with every secret replaced.
    pub fn apply(&self, line: &str) -> String {
        let mut s = line.to_string();
        for secret in &self.secrets {
            if s.contains(secret.as_str()) {
                s = s.replace(secret.as_str(), "***");
            }
        }
        s
    }
}

/// The base64 forms a token takes in `Authorization: Basic` headers.
mod base64_forms {
    use base64::Engine;

    /// Base64 of `x-access-token:TOKEN` (what berth sends) and of the bare
    /// token.
    pub(super) fn forms(token: &str) -> Vec<String> {
        vec![
            standard(format!("x-access-token:{token}").as_bytes()),
            standard(token.as_bytes()),
        ]
    }

    /// Base64 (standard, padded).
    pub(super) fn standard(data: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(data)
    }
}

/// `Authorization: Basic` value for `token` (user `x-access-token`, as
/// GitHub's installation tokens take it).
pub fn basic_auth(token: &str) -> String {
    format!(
        "Basic {}",
        base64_forms::standard(format!("x-access-token:{token}").as_bytes())
    )
}

/// One workspace's log file.
#[derive(Debug)]
pub struct ProvisionLog {
    path: PathBuf,
    redact: Redactor,
    file: Mutex<Option<std::fs::File>>,
}

impl ProvisionLog {
    /// Opens (appending) the log at `path`.
    pub fn open(path: &Path, redact: Redactor) -> Self {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .ok();
        ProvisionLog {
            path: path.to_path_buf(),
            redact,
            file: Mutex::new(file),
        }
    }

    /// Appends `text` (one or more lines), redacted.
    pub fn line(&self, text: &str) {
        let clean = self.redact.apply(text);
        tracing::debug!(target: "workspaces", "{}", clean.trim_end());
        let mut f = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(f) = f.as_mut() {
            let _ = f.write_all(clean.as_bytes());
            if !clean.ends_with('\n') {
                let _ = f.write_all(b"\n");
            }
        }
    }

    /// The redactor.
    pub fn redactor(&self) -> &Redactor {
        &self.redact
    }

    /// The last `n` lines.
    pub fn tail(&self, n: usize) -> String {
        tail(&self.path, n)
    }
}

/// The last `n` lines of the file at `path` (empty if it cannot be read).
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_and_their_base64_forms_are_redacted() {
        let r = Redactor::new(["ghs_secret123"]);
        let header = basic_auth("ghs_secret123");
        let line = format!("clone https://x:ghs_secret123@h/r with {header}");
        let out = r.apply(&line);
        assert!(!out.contains("ghs_secret123"), "{out}");
        assert!(!out.contains(header.trim_start_matches("Basic ")), "{out}");
        assert_eq!(base64_forms::standard(b"ab"), "YWI=");
    }
}
