//! Merging Compose files (Compose Specification, "Merge and override"):
//! mappings are merged key by key; scalars are replaced; sequences follow
//! their field: `command`, `entrypoint` and `healthcheck.test` are
//! replaced, `ports` are merged by host IP, published port, target and
//! protocol, `volumes`
//! by target, `secrets` and `configs` by source, `environment`, `labels`,
//! `annotations`, `sysctls`, `extra_hosts` and `build.args` by key (their
//! list forms read as mappings), and other sequences appended without
//! duplicates.

use crate::node::Node;

/// Merges file `over` into `base` (the files' top-level keys).
pub fn merge_file(base: &mut Node, over: Node) {
    let Node::Map(entries) = over else { return };
    for (k, v) in entries {
        match (k.as_str(), base.get_mut(&k)) {
            ("services", Some(Node::Map(services))) => {
                let Node::Map(over_services) = v else {
                    base.set(&k, v);
                    continue;
                };
                for (name, svc) in over_services {
                    match services.iter_mut().find(|(n, _)| *n == name) {
                        Some((_, b)) => merge_service(b, svc),
                        None => services.push((name, svc)),
                    }
                }
            }
            (_, Some(b @ Node::Map(_))) if matches!(v, Node::Map(_)) => deep(b, v, &[]),
            _ => base.set(&k, v),
        }
    }
}

/// Merges service `over` into service `base`.
pub fn merge_service(base: &mut Node, over: Node) {
    if !matches!(base, Node::Map(_)) || !matches!(over, Node::Map(_)) {
        *base = over;
        return;
    }
    deep(base, over, &[]);
}

/// The key under which a mapping-or-list field's entry merges.
fn keyed_list(node: &Node, sep: &[char]) -> Option<Vec<(String, Node)>> {
    match node {
        Node::Map(e) => Some(e.clone()),
        Node::Seq(items) => items
            .iter()
            .map(|i| {
                let s = i.scalar_text()?;
                Some(match s.find(sep) {
                    Some(at) => (s[..at].to_owned(), Node::Str(s[at + 1..].to_owned())),
                    None => (s, Node::Null),
                })
            })
            .collect(),
        _ => None,
    }
}

/// A port entry's identity: host IP, target, published port and protocol
/// (Compose Specification, "Merge and override": ports are the same entry
/// only when all four match, so `8080:80` and `8081:80` are two ports).
fn port_key(n: &Node) -> Option<String> {
    let (ip, published, target, proto) = match n {
        Node::Map(_) => {
            let text = |k: &str| n.get(k).and_then(Node::scalar_text).unwrap_or_default();
            (
                text("host_ip"),
                text("published"),
                n.get("target")?.scalar_text()?,
                text("protocol"),
            )
        }
        other => {
            let s = other.scalar_text()?;
            let (rest, proto) = s.rsplit_once('/').unwrap_or((&s, ""));
            let (front, target) = rest.rsplit_once(':').unwrap_or(("", rest));
            let (ip, published) = match front.rsplit_once(':') {
                Some((ip, p)) => (ip, p),
                None => ("", front),
            };
            (
                ip.to_owned(),
                published.to_owned(),
                target.to_owned(),
                proto.to_owned(),
            )
        }
    };
    let proto = if proto.is_empty() {
        "tcp".into()
    } else {
        proto.to_lowercase()
    };
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    Some(format!("{ip}|{published}|{target}|{proto}"))
}

/// A volume entry's target.
fn volume_key(n: &Node) -> Option<String> {
    match n {
        Node::Map(_) => n.get("target")?.scalar_text(),
        other => {
            let s = other.scalar_text()?;
            let parts: Vec<&str> = s.split(':').collect();
            Some(match parts.as_slice() {
                [one] => (*one).to_owned(),
                [_, dst, ..] => (*dst).to_owned(),
                [] => String::new(),
            })
        }
    }
}

/// A secret or config reference's source.
fn source_key(n: &Node) -> Option<String> {
    match n {
        Node::Map(_) => n.get("source")?.scalar_text(),
        other => other.scalar_text(),
    }
}

/// Merges sequence `over` into `base`, entries with the same key replaced
/// in place, new ones appended.
fn by_key(base: &mut Vec<Node>, over: Vec<Node>, key: fn(&Node) -> Option<String>) {
    for item in over {
        let k = key(&item);
        match k.and_then(|k| {
            base.iter()
                .position(|b| key(b).as_deref() == Some(k.as_str()))
        }) {
            Some(i) => base[i] = item,
            None => base.push(item),
        }
    }
}

fn deep(base: &mut Node, over: Node, path: &[&str]) {
    let Node::Map(over_entries) = over else {
        *base = over;
        return;
    };
    for (k, v) in over_entries {
        let mut p = path.to_vec();
        p.push(k.as_str());
        let Some(b) = base.get_mut(&k) else {
            base.set(&k, v);
            continue;
        };
        merge_value(b, v, &p);
    }
}

fn merge_value(b: &mut Node, v: Node, p: &[&str]) {
    let field = p.join(".");
    match field.as_str() {
        "command" | "entrypoint" | "healthcheck.test" => *b = v,
        "environment" | "labels" | "annotations" | "sysctls" | "build.args" | "extra_hosts"
        | "build.labels" => {
            let sep: &[char] = if field == "extra_hosts" {
                &['=', ':']
            } else {
                &['=']
            };
            match (keyed_list(b, sep), keyed_list(&v, sep)) {
                (Some(mut base), Some(over)) => {
                    for (k, val) in over {
                        match base.iter_mut().find(|(bk, _)| *bk == k) {
                            Some((_, bv)) => *bv = val,
                            None => base.push((k, val)),
                        }
                    }
                    *b = Node::Map(base);
                }
                _ => *b = v,
            }
        }
        "ports" | "volumes" | "secrets" | "configs" => match (b, v) {
            (Node::Seq(base), Node::Seq(over)) => {
                let key = match field.as_str() {
                    "ports" => port_key,
                    "volumes" => volume_key,
                    _ => source_key,
                };
                by_key(base, over, key);
            }
            (b, v) => *b = v,
        },
        "depends_on" | "networks" => {
            let as_map = |n: &Node| -> Option<Vec<(String, Node)>> {
                match n {
                    Node::Map(e) => Some(e.clone()),
                    Node::Seq(items) => items
                        .iter()
                        .map(|i| {
                            let name = i.scalar_text()?;
                            let val = if field == "depends_on" {
                                Node::Map(vec![(
                                    "condition".into(),
                                    Node::Str("service_started".into()),
                                )])
                            } else {
                                Node::Null
                            };
                            Some((name, val))
                        })
                        .collect(),
                    _ => None,
                }
            };
            match (&*b, &v) {
                (Node::Seq(_), Node::Seq(_)) => append_unique(b, v),
                _ => match (as_map(b), as_map(&v)) {
                    (Some(base), Some(over)) => {
                        let mut m = Node::Map(base);
                        deep(&mut m, Node::Map(over), &[]);
                        *b = m;
                    }
                    _ => *b = v,
                },
            }
        }
        _ => match (&*b, &v) {
            (Node::Map(_), Node::Map(_)) => deep(b, v, p),
            (Node::Seq(_), Node::Seq(_)) => append_unique(b, v),
            // `env_file: a` then `env_file: [b]`: both, in order.
            (Node::Str(_), Node::Seq(_)) if matches!(field.as_str(), "env_file" | "label_file") => {
                let first = std::mem::replace(b, Node::Seq(Vec::new()));
                *b = Node::Seq(vec![first]);
                append_unique(b, v);
            }
            _ => *b = v,
        },
    }
}

fn append_unique(b: &mut Node, v: Node) {
    if let (Node::Seq(base), Node::Seq(over)) = (b, v) {
        for item in over {
            if !base.contains(&item) {
                base.push(item);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_tree;

    fn tree(s: &str) -> Node {
        parse_tree(s.as_bytes()).unwrap()
    }

    #[test]
    fn spec_rules() {
        let mut base = tree(
            "services:
  web:
    image: a
    command: [a, b]
    environment: [A=1, B=2]
    ports: ['8080:80', '443']
    volumes: ['./a:/data', '/cache']
    dns: [1.1.1.1]
    depends_on: [db]
    healthcheck: {test: [CMD, a], interval: 5s}
",
        );
        merge_file(
            &mut base,
            tree(
                "services:
  web:
    image: b
    command: [c]
    environment: {B: 3, C: 4}
    ports: [{target: 80, published: 9090}, {target: 443, published: '443', protocol: tcp}, '8080:80/udp']
    volumes: ['./b:/data']
    dns: [1.1.1.1, 8.8.8.8]
    depends_on: {cache: {condition: service_healthy}}
    healthcheck: {test: [CMD, b]}
  extra:
    image: x
",
            ),
        );
        let expected = tree(
            "services:
  web:
    image: b
    command: [c]
    environment: {A: '1', B: 3, C: 4}
    ports: ['8080:80', '443', {target: 80, published: 9090}, {target: 443, published: '443', protocol: tcp}, '8080:80/udp']
    volumes: ['./b:/data', '/cache']
    dns: [1.1.1.1, 8.8.8.8]
    depends_on: {db: {condition: service_started}, cache: {condition: service_healthy}}
    healthcheck: {test: [CMD, b], interval: 5s}
  extra:
    image: x
",
        );
        assert_eq!(base, expected);
    }

    #[test]
    fn ports_are_one_entry_only_when_ip_target_published_and_protocol_match() {
        let mut base = tree("services:\n  w:\n    ports: ['8080:80', '127.0.0.1:5000:5000', '[::1]:6000:6000/udp']\n");
        merge_file(
            &mut base,
            tree("services:\n  w:\n    ports: ['8081:80', {host_ip: 127.0.0.1, target: 5000, published: '5000'}, '[::1]:6000:6000/UDP']\n"),
        );
        let expected = tree("services:\n  w:\n    ports: ['8080:80', {host_ip: 127.0.0.1, target: 5000, published: '5000'}, '[::1]:6000:6000/UDP', '8081:80']\n");
        assert_eq!(base, expected);
    }
}
