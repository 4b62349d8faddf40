//! Profiles (Compose Specification, "Using profiles with Compose"): a
//! service without `profiles` always runs; one with profiles runs when one
//! of them is active (`--profile`, else `COMPOSE_PROFILES`; `*` activates
//! all). A service an active one depends on is pulled in whatever its
//! profiles, as Compose starts what a started service needs.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::LoadError;
use crate::node::Node;
use crate::report::FieldNote;

/// The services `svc` needs running: `depends_on`, `links`,
/// `network_mode`/`pid`/`ipc: service:X`, `volumes_from` (not
/// `container:`).
pub fn needs(svc: &Node) -> Vec<String> {
    let mut out = Vec::new();
    match svc.get("depends_on") {
        Some(Node::Seq(items)) => out.extend(items.iter().filter_map(Node::scalar_text)),
        Some(Node::Map(e)) => out.extend(e.iter().map(|(k, _)| k.clone())),
        _ => {}
    }
    if let Some(Node::Seq(links)) = svc.get("links") {
        for l in links.iter().filter_map(Node::scalar_text) {
            out.push(l.split(':').next().unwrap_or_default().to_owned());
        }
    }
    for key in ["network_mode", "pid", "ipc"] {
        if let Some(s) = svc
            .get(key)
            .and_then(Node::as_str)
            .and_then(|m| m.strip_prefix("service:"))
        {
            out.push(s.to_owned());
        }
    }
    if let Some(Node::Seq(v)) = svc.get("volumes_from") {
        for e in v.iter().filter_map(Node::scalar_text) {
            if !e.starts_with("container:") {
                out.push(e.split(':').next().unwrap_or_default().to_owned());
            }
        }
    }
    out
}

fn profiles_of(svc: &Node) -> Vec<String> {
    match svc.get("profiles") {
        Some(Node::Seq(p)) => p.iter().filter_map(Node::scalar_text).collect(),
        Some(other) => other.scalar_text().into_iter().collect(),
        None => Vec::new(),
    }
}

/// Keeps the services the active profiles select (and what they need),
/// drops the others with a note each. Returns the active profiles and
/// every profile the file names.
pub fn apply(
    tree: &mut Node,
    requested: &[String],
    vars: &BTreeMap<String, String>,
    notes: &mut Vec<FieldNote>,
) -> Result<(Vec<String>, Vec<String>), LoadError> {
    let active: Vec<String> = if requested.is_empty() {
        vars.get("COMPOSE_PROFILES")
            .map(|p| {
                p.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    } else {
        requested.to_vec()
    };
    let Some(Node::Map(services)) = tree.get_mut("services") else {
        return Ok((active, Vec::new()));
    };
    let all: BTreeSet<String> = services.iter().flat_map(|(_, s)| profiles_of(s)).collect();
    let on = |p: &[String]| {
        p.is_empty() || p.iter().any(|x| active.contains(x)) || active.iter().any(|a| a == "*")
    };
    let mut enabled: BTreeSet<String> = services
        .iter()
        .filter(|(_, s)| on(&profiles_of(s)))
        .map(|(n, _)| n.clone())
        .collect();
    let mut pulled = Vec::new();
    loop {
        let mut more = Vec::new();
        for (name, svc) in services.iter() {
            if !enabled.contains(name) {
                continue;
            }
            for dep in needs(svc) {
                if !enabled.contains(&dep)
                    && !more.iter().any(|(d, _): &(String, String)| *d == dep)
                    && services.iter().any(|(n, _)| *n == dep)
                {
                    more.push((dep, name.clone()));
                }
            }
        }
        if more.is_empty() {
            break;
        }
        for (dep, by) in more {
            enabled.insert(dep.clone());
            pulled.push((dep, by));
        }
    }
    for (dep, by) in pulled {
        notes.push(FieldNote {
            service: dep.clone(),
            path: format!("{dep}.profiles"),
            reason: format!("its profiles are not active; it runs because `{by}` needs it"),
        });
    }
    services.retain(|(name, svc)| {
        let keep = enabled.contains(name);
        if !keep {
            notes.push(FieldNote {
                service: name.clone(),
                path: format!("{name}.profiles"),
                reason: format!(
                    "not run: none of its profiles ({}) is active",
                    profiles_of(svc).join(", ")
                ),
            });
        }
        keep
    });
    Ok((active, all.into_iter().collect()))
}
