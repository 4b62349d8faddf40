//! Listener addresses as URIs: `unix:///path`, `vsock://CID:PORT`,
//! `tcp://HOST:PORT`.

use std::fmt;
use std::path::PathBuf;

/// A parsed listener address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddr {
    /// A Unix socket path.
    Unix(PathBuf),
    /// A vsock context id and port (`VMADDR_CID_ANY` is `u32::MAX`).
    Vsock {
        /// Context id.
        cid: u32,
        /// Port.
        port: u32,
    },
    /// A TCP host and port.
    Tcp(String),
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unix(p) => write!(f, "unix://{}", p.display()),
            Self::Vsock { cid, port } => write!(f, "vsock://{cid}:{port}"),
            Self::Tcp(hp) => write!(f, "tcp://{hp}"),
        }
    }
}

impl std::str::FromStr for ListenAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if let Some(path) = s.strip_prefix("unix://") {
            if !path.starts_with('/') {
                return Err(format!(
                    "{s:?}: a unix address needs an absolute path, as in unix:///run/x.sock"
                ));
            }
            return Ok(Self::Unix(PathBuf::from(path)));
        }
        if let Some(rest) = s.strip_prefix("vsock://") {
            let (cid, port) = rest
                .split_once(':')
                .ok_or_else(|| format!("{s:?}: a vsock address is vsock://CID:PORT"))?;
            let cid = match cid {
                "any" | "-1" => u32::MAX,
                c => c
                    .parse()
                    .map_err(|_| format!("{s:?}: CID {c:?} is not a number"))?,
            };
            let port = port
                .parse()
                .map_err(|_| format!("{s:?}: port {port:?} is not a number"))?;
            return Ok(Self::Vsock { cid, port });
        }
        if let Some(hp) = s.strip_prefix("tcp://") {
            if !hp.contains(':') {
                return Err(format!("{s:?}: a tcp address is tcp://HOST:PORT"));
            }
            return Ok(Self::Tcp(hp.to_string()));
        }
        Err(format!(
            "{s:?}: unsupported address; use unix:///path, vsock://CID:PORT or tcp://HOST:PORT"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_scheme_and_names_mistakes() {
        assert_eq!(
            "unix:///a/b.sock".parse::<ListenAddr>().unwrap(),
            ListenAddr::Unix("/a/b.sock".into())
        );
        assert_eq!(
            "vsock://3:1025".parse::<ListenAddr>().unwrap(),
            ListenAddr::Vsock { cid: 3, port: 1025 }
        );
        assert_eq!(
            "vsock://any:5".parse::<ListenAddr>().unwrap(),
            ListenAddr::Vsock {
                cid: u32::MAX,
                port: 5
            }
        );
        assert!("unix://rel"
            .parse::<ListenAddr>()
            .unwrap_err()
            .contains("absolute"));
        assert!("http://x"
            .parse::<ListenAddr>()
            .unwrap_err()
            .contains("unsupported"));
        assert!("vsock://x:1"
            .parse::<ListenAddr>()
            .unwrap_err()
            .contains("CID"));
    }
}
