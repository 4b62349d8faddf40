//! Why the daemon could not start or keep serving: the composition root's
//! typed error, each variant keeping the error it came from as its source.
//!
//! The texts are what the CLI prints on a failed `berth daemon`; where a
//! cause is wrapped its text is part of the message too, since the CLI
//! prints one line.

use crate::addr::ListenAddr;
use berth_engine::projects::{ProjectError, RuntimeError};
use berth_engine::services::ServiceError;
use berth_engine::sessions::SessionError;
use berth_engine::store::StoreError;
use std::io;

/// A daemon that did not start, or stopped serving, and why.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The tokio runtime could not be built.
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] io::Error),
    /// The database could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The service engine could not be opened.
    #[error(transparent)]
    Services(#[from] ServiceError),
    /// The session engine could not be opened.
    #[error(transparent)]
    Sessions(#[from] SessionError),
    /// A `tcp://` address was given for the process or project API, which
    /// have no TLS or token auth (the relay is the TCP surface).
    #[error("cannot listen on {0}: the process and project APIs are served on unix:// and vsock:// only (they have no TLS or token auth)")]
    TcpNotServed(ListenAddr),
    /// A listener could not be bound (another daemon serves the socket, a
    /// directory is not private, vsock is missing, ...).
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address asked for.
        addr: ListenAddr,
        /// Why binding failed.
        #[source]
        source: io::Error,
    },
    /// `--project-runtime docker` was asked for and no Docker Engine
    /// answered.
    #[error("--project-runtime docker: no Docker Engine answered: {0}")]
    NoDocker(#[source] RuntimeError),
    /// The project engine could not be opened.
    #[error("cannot open the project engine: {0}")]
    Projects(#[source] ProjectError),
    /// The node API could not start (certificate, JWKS URL, address).
    #[error("cannot start the node API: {0}")]
    NodeApi(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error;

    #[test]
    fn a_listen_error_names_the_address_and_keeps_its_cause() {
        let e = DaemonError::Listen {
            addr: ListenAddr::Unix("/run/b.sock".into()),
            source: io::Error::new(io::ErrorKind::AddrInUse, "another daemon"),
        };
        assert_eq!(
            e.to_string(),
            "cannot listen on unix:///run/b.sock: another daemon"
        );
        let cause = e.source().and_then(|s| s.downcast_ref::<io::Error>());
        assert_eq!(cause.map(io::Error::kind), Some(io::ErrorKind::AddrInUse));
    }
}
