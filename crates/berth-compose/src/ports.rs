//! The host ports a project publishes (Compose Specification, "ports"),
//! one per container port, as the engine's allocator takes them. The
//! validator and the engine both call [`wanted`], so what `up` would
//! refuse is refused by validation first, with the same reason and path.

use crate::model::ComposeFile;

/// A port the Compose file publishes, before host ports are assigned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WantedPort {
    /// The service.
    pub service: String,
    /// Its port.
    pub container_port: u16,
    /// `tcp` or `udp`.
    pub protocol: String,
    /// The host IP asked for ("" = all).
    pub host_ip: String,
    /// The host port asked for, if any.
    pub host_port: Option<u16>,
    /// A host range to pick one free port from (`8000-8005:80`); then
    /// `host_port` is `None`.
    pub host_range: Option<(u16, u16)>,
}

/// A port entry berth cannot publish: its path (`web.ports[0]`), its
/// service and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortError {
    /// The service whose entry it is.
    pub service: String,
    /// The entry (`web.ports[0]`), so the report points at it.
    pub path: String,
    /// Why it cannot be published.
    pub reason: String,
}

/// The ports of entry `i` of service `name`.
pub fn entry(
    name: &str,
    i: usize,
    entry: &crate::model::PortEntry,
) -> Result<Vec<WantedPort>, PortError> {
    let err = |reason: String| PortError {
        service: name.to_owned(),
        path: format!("{name}.ports[{i}]"),
        reason,
    };
    let m = entry.mapping().map_err(err)?;
    if !matches!(m.protocol.as_str(), "tcp" | "udp") {
        return Err(err(format!(
            "protocol {} is not forwarded (tcp or udp)",
            m.protocol
        )));
    }
    let (c0, c1) = m.container;
    let count = u32::from(c1 - c0) + 1;
    // One container port published on a host range: any free port of it.
    let range = m.host.filter(|(h0, h1)| h0 != h1 && c0 == c1);
    Ok((0..count)
        .map(|k| {
            let container_port = c0 + k as u16;
            let host_port = match range {
                Some(_) => None,
                None => m
                    .host
                    .map(|(h0, h1)| if h0 == h1 { h0 } else { h0 + k as u16 }),
            };
            WantedPort {
                service: name.to_owned(),
                container_port,
                protocol: m.protocol.clone(),
                host_ip: m.host_ip.clone().unwrap_or_default(),
                host_port: host_port.filter(|p| *p != 0),
                host_range: range,
            }
        })
        .collect())
}

/// Every port `file` publishes, expanded (ranges become single ports),
/// each container port once.
pub fn wanted(file: &ComposeFile) -> Result<Vec<WantedPort>, PortError> {
    let mut out: Vec<WantedPort> = Vec::new();
    for (name, svc) in &file.services.0 {
        for (i, e) in svc.ports.iter().enumerate() {
            for w in entry(name, i, e)? {
                if !out.iter().any(|o| {
                    o.service == w.service
                        && o.container_port == w.container_port
                        && o.protocol == w.protocol
                }) {
                    out.push(w);
                }
            }
        }
    }
    Ok(out)
}
