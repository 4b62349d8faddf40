//! How projects look on a terminal: service tables with their URLs, and
//! port mappings as JSON.

use crate::output;
use berth_client::project::pb;

/// Where a port is reached from this machine: `http://HOST:PORT` for TCP,
/// `HOST:PORT/PROTO` otherwise (a wildcard host becomes 127.0.0.1).
pub(super) fn url(p: &pb::PortMapping) -> String {
    let host = match p.host_ip.as_str() {
        "" | "0.0.0.0" | "::" => "127.0.0.1",
        ip => ip,
    };
    match p.protocol.as_str() {
        "tcp" => format!("http://{host}:{}", p.host_port),
        proto => format!("{host}:{}/{proto}", p.host_port),
    }
}

/// The SERVICE / STATUS / URL / DETAIL table of a project's services.
pub(super) fn services_table(services: &[pb::ServiceStatus], ports: &[pb::PortMapping]) -> String {
    let rows = services
        .iter()
        .map(|s| {
            let urls: Vec<String> = ports
                .iter()
                .filter(|p| p.service_name == s.name)
                .map(|p| format!("{} -> {}", url(p), p.container_port))
                .collect();
            let status = if s.health.is_empty() {
                s.status.clone()
            } else {
                format!("{} ({})", s.status, s.health)
            };
            vec![s.name.clone(), status, urls.join(", "), s.detail.clone()]
        })
        .collect();
    output::table(&["SERVICE", "STATUS", "URL", "DETAIL"], rows)
}

/// One port mapping as `berth project status --json` shows it.
pub(super) fn port_json(p: &pb::PortMapping) -> serde_json::Value {
    serde_json::json!({
        "service_name": p.service_name, "container_port": p.container_port,
        "host_port": p.host_port, "protocol": p.protocol, "host_ip": p.host_ip,
        "requested": p.requested,
    })
}
