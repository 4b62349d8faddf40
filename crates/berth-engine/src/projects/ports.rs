//! Host port allocation. A port the Compose file asks for is kept or
//! refused (PORT_CONFLICT), never moved; any other port gets a free host
//! port that is persisted, so it stays the same across restarts of the
//! project and of the daemon, and is only moved when something else took it.

use super::model::{PortMapping, ProjectError, Protocol};
use super::plan::WantedPort;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, UdpSocket};

/// Whether `port` can be bound on `ip` right now.
pub fn is_free(ip: &str, port: u16, proto: Protocol) -> bool {
    let addr = SocketAddr::new(
        ip.parse::<IpAddr>()
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        port,
    );
    match proto {
        Protocol::Tcp => TcpListener::bind(addr).is_ok(),
        Protocol::Udp => UdpSocket::bind(addr).is_ok(),
    }
}

/// Whether something serves `p`'s host port now: a TCP connection is
/// accepted, or (UDP) the port is bound.
pub async fn is_served(p: &PortMapping) -> bool {
    match p.protocol {
        Protocol::Tcp => {
            let ip = match p.host_ip.parse::<IpAddr>() {
                Ok(ip) if !ip.is_unspecified() => ip,
                _ => IpAddr::V4(Ipv4Addr::LOCALHOST),
            };
            let connect = tokio::net::TcpStream::connect(SocketAddr::new(ip, p.host_port));
            matches!(
                tokio::time::timeout(std::time::Duration::from_secs(2), connect).await,
                Ok(Ok(_))
            )
        }
        Protocol::Udp => !is_free(&p.host_ip, p.host_port, Protocol::Udp),
    }
}

/// A port the kernel says is free now.
fn ephemeral(ip: &str, proto: Protocol) -> Option<u16> {
    let addr = SocketAddr::new(
        ip.parse::<IpAddr>()
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        0,
    );
    match proto {
        Protocol::Tcp => TcpListener::bind(addr)
            .ok()?
            .local_addr()
            .ok()
            .map(|a| a.port()),
        Protocol::Udp => UdpSocket::bind(addr)
            .ok()?
            .local_addr()
            .ok()
            .map(|a| a.port()),
    }
}

/// Decides host ports.
///
/// - `previous`: this project's persisted allocation (kept when possible).
/// - `others`: ports held by other projects (never given out twice).
/// - `check_free`: also require that the port can be bound now (at start;
///   not for a running project).
/// - `native`: the service listens on the host itself, so an allocated host
///   port must differ from every service port of the project.
pub fn allocate(
    wanted: &[WantedPort],
    previous: &[PortMapping],
    others: &[(String, PortMapping)],
    check_free: bool,
    native: bool,
) -> Result<Vec<PortMapping>, ProjectError> {
    let mut out: Vec<PortMapping> = Vec::new();
    let taken_by_other = |port: u16, proto: Protocol| {
        others
            .iter()
            .find(|(_, p)| p.host_port == port && p.protocol == proto)
            .map(|(id, p)| format!("project {id} (service {})", p.service))
    };
    let service_ports: Vec<(u16, Protocol)> = wanted
        .iter()
        .map(|w| (w.container_port, w.protocol))
        .collect();
    for w in wanted {
        if let Some(h) = w.host_port {
            if let Some(owner) = taken_by_other(h, w.protocol) {
                return Err(conflict(w, h, &format!("it is allocated to {owner}")));
            }
            if out
                .iter()
                .any(|o| o.host_port == h && o.protocol == w.protocol)
            {
                return Err(conflict(
                    w,
                    h,
                    "another service of this project asks for it too",
                ));
            }
            // A native service that binds its own port needs it free; one
            // reached through a forwarder needs the host port free.
            if check_free && !is_free(&w.host_ip, h, w.protocol) {
                return Err(conflict(
                    w,
                    h,
                    "another program on this machine is listening on it",
                ));
            }
            out.push(mapping(w, h, true));
            continue;
        }
        let usable = |p: u16, out: &[PortMapping]| {
            p != 0
                && taken_by_other(p, w.protocol).is_none()
                && !out
                    .iter()
                    .any(|o| o.host_port == p && o.protocol == w.protocol)
                && !(native && service_ports.contains(&(p, w.protocol)))
                && (!check_free || is_free(&w.host_ip, p, w.protocol))
        };
        let in_range = |p: u16| w.host_range.is_none_or(|(lo, hi)| (lo..=hi).contains(&p));
        let kept = previous
            .iter()
            .find(|p| {
                p.service == w.service
                    && p.container_port == w.container_port
                    && p.protocol == w.protocol
                    && !p.requested
            })
            .map(|p| p.host_port)
            .filter(|p| in_range(*p) && usable(*p, &out));
        let port = match (kept, w.host_range) {
            (Some(p), _) => p,
            // `8000-8005:80`: the first usable port of the range.
            (None, Some((lo, hi))) => (lo..=hi).find(|p| usable(*p, &out)).ok_or_else(|| {
                conflict(w, lo, &format!("no port of the range {lo}-{hi} is free"))
            })?,
            (None, None) => (0..64)
                .filter_map(|_| ephemeral(&w.host_ip, w.protocol))
                .find(|p| usable(*p, &out))
                .ok_or_else(|| {
                    ProjectError::Internal(format!(
                        "no free {} host port for {}:{}",
                        w.protocol.as_str(),
                        w.service,
                        w.container_port
                    ))
                })?,
        };
        out.push(mapping(w, port, false));
    }
    Ok(out)
}

fn mapping(w: &WantedPort, host_port: u16, requested: bool) -> PortMapping {
    PortMapping {
        service: w.service.clone(),
        container_port: w.container_port,
        host_port,
        protocol: w.protocol,
        host_ip: w.host_ip.clone(),
        requested,
    }
}

fn conflict(w: &WantedPort, port: u16, why: &str) -> ProjectError {
    ProjectError::PortConflict {
        service: w.service.clone(),
        host_port: port,
        message: format!(
            "host port {port}/{} requested by service {} is taken: {why}; free it or change `ports` in the Compose file",
            w.protocol.as_str(),
            w.service
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `8000-8005:80`: one free port of the range, kept across restarts.
    #[test]
    fn a_host_range_publishes_one_free_port_of_it() {
        let base = ephemeral("127.0.0.1", Protocol::Tcp).unwrap().min(60000);
        let hold = TcpListener::bind(("127.0.0.1", base)).unwrap();
        let mut w = want("web", 80, None);
        w.host_range = Some((base, base + 3));
        let got = allocate(std::slice::from_ref(&w), &[], &[], true, false).unwrap();
        assert!((base + 1..=base + 3).contains(&got[0].host_port), "{got:?}");
        let again = allocate(std::slice::from_ref(&w), &got, &[], false, false).unwrap();
        assert_eq!(again, got);
        drop(hold);
    }

    fn want(service: &str, port: u16, host: Option<u16>) -> WantedPort {
        WantedPort {
            service: service.into(),
            container_port: port,
            protocol: Protocol::Tcp,
            host_ip: "127.0.0.1".into(),
            host_port: host,
            host_range: None,
        }
    }

    #[test]
    fn unrequested_ports_are_kept_across_allocations() {
        let w = [want("web", 80, None), want("api", 8000, None)];
        let first = allocate(&w, &[], &[], true, false).unwrap();
        assert_eq!(first.len(), 2);
        assert_ne!(first[0].host_port, first[1].host_port);
        let again = allocate(&w, &first, &[], true, false).unwrap();
        assert_eq!(first, again);
    }

    #[test]
    fn a_taken_requested_port_is_a_conflict() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let err = allocate(&[want("web", 80, Some(port))], &[], &[], true, false).unwrap_err();
        assert_eq!(err.code(), "PORT_CONFLICT");
        assert!(err.to_string().contains(&port.to_string()), "{err}");
        drop(l);
        let ok = allocate(&[want("web", 80, Some(port))], &[], &[], true, false).unwrap();
        assert_eq!(ok[0].host_port, port);
        assert!(ok[0].requested);
    }

    #[test]
    fn other_projects_ports_are_not_handed_out() {
        let mine = allocate(&[want("web", 80, None)], &[], &[], true, false).unwrap();
        let others = vec![("other".to_string(), mine[0].clone())];
        let err = allocate(
            &[want("web", 80, Some(mine[0].host_port))],
            &[],
            &others,
            false,
            false,
        )
        .unwrap_err();
        assert!(err.to_string().contains("project other"), "{err}");
        let moved = allocate(&[want("web", 80, None)], &mine, &others, false, false).unwrap();
        assert_ne!(moved[0].host_port, mine[0].host_port);
    }
}
