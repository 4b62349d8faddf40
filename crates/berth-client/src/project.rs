//! An async typed client of berth's project API (gRPC over a Unix socket).
//!
//! ```no_run
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! use berth_client::project;
//! let mut c = project::connect(&project::default_socket(None)).await?;
//! let list = c.list_projects(project::pb::ListProjectsRequest::default()).await?;
//! # Ok(()) }
//! ```

use hyper_util::rt::TokioIo;
use std::path::{Path, PathBuf};
use tonic::transport::{Channel, Endpoint, Uri};

/// The generated client of `berth.supervisor.v1.Supervisor`.
pub mod generated {
    #![allow(missing_docs, clippy::doc_lazy_continuation)]
    include!(concat!(env!("OUT_DIR"), "/berth.supervisor.v1.rs"));
}

pub use berth_wire::supervisor as pb;
pub use generated::supervisor_client::SupervisorClient;

/// The trailing metadata key holding the seed's error code.
pub const ERROR_CODE_KEY: &str = "berth-error-code";

/// Why no connection was made.
#[derive(Debug, thiserror::Error)]
#[error("cannot connect to the project API at {}: {source}", path.display())]
pub struct ConnectError {
    /// The socket.
    pub path: PathBuf,
    /// What failed.
    #[source]
    pub source: tonic::transport::Error,
}

/// The project-API socket of a scope's daemon
/// (`$XDG_RUNTIME_DIR/berth/project.sock`, `project-<scope>.sock`).
pub fn default_socket(scope: Option<&str>) -> PathBuf {
    berth_os::dirs::project_socket(scope)
}

/// Connects to the project API at the Unix socket `path`. The connection
/// is made now, so a missing daemon is reported here; a broken one is
/// re-dialled by the channel on the next call.
pub async fn connect(path: &Path) -> Result<SupervisorClient<Channel>, ConnectError> {
    let socket = path.to_path_buf();
    // The URI only fills `:authority`; the connector ignores it and dials
    // the socket.
    let channel = Endpoint::from_static("http://localhost")
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let socket = socket.clone();
            async move {
                let stream = tokio::net::UnixStream::connect(socket).await?;
                Ok::<_, std::io::Error>(TokioIo::new(stream))
            }
        }))
        .await
        .map_err(|source| ConnectError {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(SupervisorClient::new(channel))
}

/// The seed's error code of a failed call (`NOT_FOUND`, `START_FAILED`,
/// ...), from the `berth-error-code` trailing metadata; `None` for errors
/// that did not come from berth's project engine (transport failures).
pub fn error_code(status: &tonic::Status) -> Option<&str> {
    status.metadata().get(ERROR_CODE_KEY)?.to_str().ok()
}

/// A detail of a failed call (`service`, `host_port`, `secrets`, ...) from
/// its `berth-error-<key>` metadata, with the daemon's ASCII escapes
/// (`\n`, `\t`, `\\`, `\u{..}`) undone.
pub fn error_detail(status: &tonic::Status, key: &str) -> Option<String> {
    let raw = status
        .metadata()
        .get(format!("berth-error-{key}").as_str())?
        .to_str()
        .ok()?;
    Some(unescape(raw))
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('u') => {
                let rest: String = chars.by_ref().take_while(|c| *c != '}').collect();
                let code = rest
                    .strip_prefix('{')
                    .and_then(|h| u32::from_str_radix(h, 16).ok());
                out.push(code.and_then(char::from_u32).unwrap_or('\u{fffd}'));
            }
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescape_undoes_the_daemon_escapes() {
        assert_eq!(unescape("one\\ntw\\u{f6}\\t\\\\x"), "one\ntwö\t\\x");
    }
}
