//! Binding listeners: private socket directories, stale-socket recovery,
//! peer-credential checks, and removal of our sockets on exit.

use crate::addr::ListenAddr;
use berth_os::fsutil::ensure_private_dir;
use std::io;
use std::path::{Path, PathBuf};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{UnixListener, UnixStream};

/// A connected peer stream of any transport.
pub trait PeerStream: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> PeerStream for T {}

/// A bound listener.
pub enum Listener {
    /// Unix socket; the path is removed when the listener is dropped.
    Unix(UnixListener, SocketGuard),
    /// vsock.
    Vsock(tokio_vsock::VsockListener),
}

/// Removes a socket file on drop, if it is still the one we bound.
pub struct SocketGuard {
    path: PathBuf,
    ino: u64,
}

impl Drop for SocketGuard {
    fn drop(&mut self) {
        use std::os::unix::fs::MetadataExt;
        if std::fs::symlink_metadata(&self.path).map(|m| m.ino()).ok() == Some(self.ino) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Binds `path` in a private (0700, owned) directory. A socket file left by
/// a dead daemon is replaced; one that still answers is an error.
pub fn bind_unix(path: &Path) -> io::Result<(UnixListener, SocketGuard)> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::other("socket path has no directory"))?;
    ensure_private_dir(dir)?;
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "{} exists and is not a socket; refusing to replace it",
                    path.display()
                ),
            ));
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("another daemon is already serving {}", path.display()),
            ));
        }
        std::fs::remove_file(path)?;
    }
    let listener = UnixListener::bind(path)?;
    let ino = std::fs::symlink_metadata(path)?.ino();
    Ok((
        listener,
        SocketGuard {
            path: path.to_path_buf(),
            ino,
        },
    ))
}

/// Binds one listener for `addr`.
pub fn bind(addr: &ListenAddr) -> io::Result<Listener> {
    match addr {
        ListenAddr::Unix(p) => {
            let (l, g) = bind_unix(p)?;
            Ok(Listener::Unix(l, g))
        }
        ListenAddr::Vsock { cid, port } => {
            let l = tokio_vsock::VsockListener::bind(tokio_vsock::VsockAddr::new(*cid, *port))
                .map_err(|e| io::Error::new(e.kind(), format!("cannot bind {addr}: {e} (is the vsock driver loaded?)")))?;
            Ok(Listener::Vsock(l))
        }
        ListenAddr::Tcp(_) => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("{addr}: the process API is served on unix:// and vsock:// only (it has no TLS or token auth)"),
        )),
    }
}

/// A connection accepted and admitted.
pub struct Accepted {
    /// The stream.
    pub stream: Box<dyn PeerStream>,
    /// Human-readable peer description for logs.
    pub peer: String,
}

impl Listener {
    /// Accepts the next peer. Unix peers whose uid is neither ours nor root
    /// are refused here (`Ok(None)`), before a byte is read.
    pub async fn accept(&self) -> io::Result<Option<Accepted>> {
        match self {
            Listener::Unix(l, _) => {
                let (s, _) = l.accept().await?;
                admit_unix(s)
            }
            Listener::Vsock(l) => {
                let (s, a) = l.accept().await?;
                Ok(Some(Accepted {
                    stream: Box::new(s),
                    peer: format!("vsock cid {}", a.cid()),
                }))
            }
        }
    }
}

fn admit_unix(s: UnixStream) -> io::Result<Option<Accepted>> {
    let cred = s.peer_cred()?;
    let me = berth_os::dirs::uid();
    if cred.uid() != me && cred.uid() != 0 {
        tracing::warn!(uid = cred.uid(), pid = ?cred.pid(), "refused a peer with a foreign uid");
        return Ok(None);
    }
    let peer = format!("uid {} pid {}", cred.uid(), cred.pid().unwrap_or(0));
    Ok(Some(Accepted {
        stream: Box::new(s),
        peer,
    }))
}
