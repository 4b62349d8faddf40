//! The shape each service key takes (Compose Specification, "Services
//! top-level elements"), checked before what the key means, so a value of
//! the wrong kind is refused at its path with what was expected, rather
//! than ignored or failing at `up`.

use crate::node::Node;

/// What a key's value must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// A scalar read as text: a string or a number (`user: 1000`).
    Str,
    /// A boolean: a YAML boolean, or a string docker compose casts to one
    /// (`"true"`, `"yes"`, `"off"`: [`crate::units::parse_bool`]), since
    /// interpolation leaves strings.
    Bool,
    /// A duration: a string like `1m30s`, or a number of seconds.
    Duration,
    /// A string or a list of strings.
    StrOrList,
    /// A list.
    List,
    /// A mapping, or a list (of `KEY=VALUE` strings or names).
    MapOrList,
    /// A mapping.
    Map,
    /// A string or a mapping.
    StrOrMap,
}

impl Shape {
    /// What the error says was expected.
    pub fn expected(self) -> &'static str {
        match self {
            Shape::Str => "a string",
            Shape::Bool => "true or false",
            Shape::Duration => "a duration (like 10s, 1m30s) or a number of seconds",
            Shape::StrOrList => "a string or a list of strings",
            Shape::List => "a list",
            Shape::MapOrList => "a mapping or a list",
            Shape::Map => "a mapping",
            Shape::StrOrMap => "a string or a mapping",
        }
    }

    /// Whether `v` has this shape.
    pub fn fits(self, v: &Node) -> bool {
        let scalar = |n: &Node| matches!(n, Node::Str(_) | Node::Int(_) | Node::Float(_));
        match self {
            Shape::Str => scalar(v),
            Shape::Bool => crate::units::parse_bool(v).is_some(),
            Shape::Duration => match v {
                Node::Str(s) => crate::units::parse_duration(s).is_ok(),
                Node::Int(n) => *n >= 0,
                Node::Float(f) => *f >= 0.0,
                _ => false,
            },
            Shape::StrOrList => match v {
                Node::Seq(items) => items.iter().all(scalar),
                other => scalar(other),
            },
            Shape::List => matches!(v, Node::Seq(_)),
            Shape::MapOrList => matches!(v, Node::Map(_) | Node::Seq(_)),
            Shape::Map => matches!(v, Node::Map(_)),
            Shape::StrOrMap => scalar(v) || matches!(v, Node::Map(_)),
        }
    }
}

/// The shape of service key `key`, for the keys whose shape is not
/// already checked by the typed model or by what the key means.
pub fn of(key: &str) -> Option<Shape> {
    Some(match key {
        "container_name" | "domainname" | "hostname" | "restart" | "user" | "working_dir"
        | "stop_signal" | "platform" | "runtime" | "cgroup_parent" | "pull_policy"
        | "mac_address" | "isolation" | "uts" | "userns_mode" | "cgroup" => Shape::Str,
        "read_only" | "tty" | "stdin_open" | "oom_kill_disable" => Shape::Bool,
        "stop_grace_period" => Shape::Duration,
        "dns" | "dns_search" | "tmpfs" | "label_file" => Shape::StrOrList,
        "expose" | "cap_drop" | "external_links" | "group_add" | "dns_opt" | "secrets"
        | "configs" => Shape::List,
        "labels" | "annotations" | "extra_hosts" | "sysctls" => Shape::MapOrList,
        "logging" | "ulimits" | "blkio_config" | "deploy" | "healthcheck" => Shape::Map,
        "build" | "extends" => Shape::StrOrMap,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        assert!(of("stop_grace_period")
            .unwrap()
            .fits(&Node::Str("1m30s".into())));
        assert!(!of("stop_grace_period")
            .unwrap()
            .fits(&Node::Str("soon".into())));
        assert!(of("dns").unwrap().fits(&Node::Str("1.1.1.1".into())));
        assert!(!of("dns").unwrap().fits(&Node::Map(vec![])));
        assert!(of("read_only").unwrap().fits(&Node::Str("yes".into())));
        assert!(!of("read_only")
            .unwrap()
            .fits(&Node::Str("sometimes".into())));
        assert_eq!(of("image"), None);
    }
}
