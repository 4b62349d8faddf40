//! Compose's units and value shapes (Compose Specification, "Value
//! types"): durations, byte sizes, CPU fractions, lists or mappings of
//! pairs, `extra_hosts`, `expose`, `tmpfs`, `ulimits`. Each parser says
//! what it expected when a value does not fit.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::node::Node;

/// Parses a Compose duration: `1h2m3s`, `1m30s`, `500ms`, `10s`, `2us`, or
/// a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if let Ok(n) = t.parse::<f64>() {
        if n >= 0.0 && n.is_finite() {
            return Duration::try_from_secs_f64(n).map_err(|_| too_long(s));
        }
    }
    let bad = || format!("`{s}` is not a duration (like 30s, 1m30s, 500ms)");
    let mut total = 0f64;
    let mut rest = t;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        if num_len == 0 {
            return Err(bad());
        }
        let n: f64 = rest[..num_len].parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return Err(bad()),
        };
        total += n * scale;
        rest = &rest[unit_len..];
    }
    Duration::try_from_secs_f64(total).map_err(|_| too_long(s))
}

/// A duration no `Duration` holds (`1e300`) is refused, not a panic.
fn too_long(s: &str) -> String {
    format!("`{s}` is too long a duration")
}

/// A scalar as Compose writes it in a string context.
pub fn scalar(node: &Node) -> Option<String> {
    match node {
        Node::Str(s) => Some(s.clone()),
        Node::Int(_) | Node::Float(_) | Node::Bool(_) => Some(node.to_string()),
        _ => None,
    }
}

/// A byte size: a number of bytes, or a number with a unit (`b`, `k`,
/// `kb`, `m`, `mb`, `g`, `gb`, `t`, `tb`, any case), which Docker reads as
/// powers of 1024.
pub fn parse_bytes(node: &Node) -> Result<i64, String> {
    let text = match node {
        Node::Int(n) if *n >= 0 => return Ok(*n),
        Node::Str(s) => s.trim().to_ascii_lowercase(),
        other => return Err(format!("`{other}` is not a byte size (like 512m or 1g)")),
    };
    let bad = || format!("`{text}` is not a byte size (like 512m or 1g)");
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().map_err(|_| bad())?;
    let scale: f64 = match unit.trim() {
        "" | "b" => 1.0,
        "k" | "kb" | "kib" => 1024.0,
        "m" | "mb" | "mib" => 1024f64.powi(2),
        "g" | "gb" | "gib" => 1024f64.powi(3),
        "t" | "tb" | "tib" => 1024f64.powi(4),
        _ => return Err(bad()),
    };
    let bytes = number * scale;
    if !bytes.is_finite() || bytes < 0.0 || bytes > i64::MAX as f64 {
        return Err(bad());
    }
    Ok(bytes.round() as i64)
}

/// `cpus: 0.5` (or `"0.5"`) in billionths of a CPU, as NanoCpus wants.
pub fn parse_cpus(node: &Node) -> Result<i64, String> {
    let n = match node {
        Node::Int(n) => *n as f64,
        Node::Float(f) => *f,
        Node::Str(s) => s
            .trim()
            .parse::<f64>()
            .map_err(|_| format!("`{s}` is not a number of CPUs (like 0.5)"))?,
        other => return Err(format!("`{other}` is not a number of CPUs (like 0.5)")),
    };
    if !n.is_finite() || n <= 0.0 || n > 1e6 {
        return Err(format!("`{n}` is not a positive number of CPUs"));
    }
    Ok((n * 1e9).round() as i64)
}

/// An integer, written as a number or a string.
pub fn parse_int(node: &Node) -> Result<i64, String> {
    match node {
        Node::Int(n) => Ok(*n),
        Node::Str(s) => s
            .trim()
            .parse()
            .map_err(|_| format!("`{s}` is not an integer")),
        other => Err(format!("`{other}` is not an integer")),
    }
}

/// Microseconds: a bare integer is microseconds already (as Docker takes
/// `cpu_period`), a string is a Compose duration (`400ms`).
pub fn parse_micros(node: &Node) -> Result<i64, String> {
    match node {
        Node::Int(n) => Ok(*n),
        Node::Str(s) => {
            let d = parse_duration(s)?;
            i64::try_from(d.as_micros()).map_err(|_| format!("`{s}` is too long"))
        }
        other => Err(format!("`{other}` is not a duration")),
    }
}

/// A string or a list of strings.
pub fn strings(node: &Node) -> Result<Vec<String>, String> {
    match node {
        Node::Null => Ok(Vec::new()),
        Node::Seq(items) => items
            .iter()
            .map(|i| scalar(i).ok_or_else(|| format!("`{i}` is not a string")))
            .collect(),
        other => scalar(other)
            .map(|s| vec![s])
            .ok_or_else(|| "expected a string or a list of strings".into()),
    }
}

/// A mapping of scalars, or a list of `KEY<sep>VALUE` strings (an entry
/// without `sep` maps to `""`).
pub fn pairs(node: &Node, sep: char) -> Result<Vec<(String, String)>, String> {
    match node {
        Node::Null => Ok(Vec::new()),
        Node::Map(entries) => entries
            .iter()
            .map(|(k, v)| match v {
                Node::Null => Ok((k.clone(), String::new())),
                v => scalar(v)
                    .map(|v| (k.clone(), v))
                    .ok_or_else(|| format!("`{k}` must have a scalar value")),
            })
            .collect(),
        Node::Seq(items) => items
            .iter()
            .map(|i| {
                let s = scalar(i).ok_or_else(|| format!("`{i}` is not a string"))?;
                Ok(match s.split_once(sep) {
                    Some((k, v)) => (k.to_owned(), v.to_owned()),
                    None => (s, String::new()),
                })
            })
            .collect(),
        other => Err(format!("`{other}` is not a mapping or a list")),
    }
}

/// `extra_hosts`: `["host:ip"]`, `["host=ip"]` or `{host: ip}`, as the
/// engine's `host:ip`. The first separator splits, so IPv6 addresses keep
/// their colons.
pub fn parse_extra_hosts(node: &Node) -> Result<Vec<String>, String> {
    let list = match node {
        Node::Seq(items) => items
            .iter()
            .map(|i| {
                let s = scalar(i).ok_or_else(|| format!("`{i}` is not a string"))?;
                let at = s
                    .find(['=', ':'])
                    .ok_or_else(|| format!("`{s}` is not HOST:IP"))?;
                Ok((s[..at].to_owned(), s[at + 1..].to_owned()))
            })
            .collect::<Result<Vec<_>, String>>()?,
        other => pairs(other, ':')?,
    };
    list.into_iter()
        .map(|(host, ip)| {
            if host.is_empty() || ip.is_empty() {
                Err(format!("`{host}:{ip}` is not HOST:IP"))
            } else {
                Ok(format!("{host}:{ip}"))
            }
        })
        .collect()
}

/// One `expose` entry, `PORT[-PORT][/PROTO]`, as the engine's
/// `port/proto` keys (a range is one key per port, as the CLI does).
pub fn parse_expose(entry: &str) -> Result<Vec<String>, String> {
    let (ports, proto) = entry.split_once('/').unwrap_or((entry, "tcp"));
    let bad = || format!("`{entry}` is not PORT[-PORT][/PROTOCOL]");
    let port = |s: &str| s.trim().parse::<u16>().map_err(|_| bad());
    let (lo, hi) = match ports.split_once('-') {
        Some((a, b)) => (port(a)?, port(b)?),
        None => (port(ports)?, port(ports)?),
    };
    if lo > hi || !matches!(proto, "tcp" | "udp" | "sctp") {
        return Err(bad());
    }
    Ok((lo..=hi).map(|p| format!("{p}/{proto}")).collect())
}

/// `tmpfs`: a path or a list of `path[:options]`.
pub fn parse_tmpfs(node: &Node) -> Result<BTreeMap<String, String>, String> {
    Ok(strings(node)?
        .into_iter()
        .map(|s| match s.split_once(':') {
            Some((p, o)) => (p.to_owned(), o.to_owned()),
            None => (s, String::new()),
        })
        .collect())
}

/// `ulimits`: `name: n` (soft and hard) or `name: {soft, hard}`.
pub fn parse_ulimits(node: &Node) -> Result<Vec<(String, i64, i64)>, String> {
    let Node::Map(entries) = node else {
        return Err("expected a mapping of limits".into());
    };
    entries
        .iter()
        .map(|(name, v)| {
            let (soft, hard) = match v {
                Node::Map(_) => {
                    let get = |k: &str| {
                        v.get(k)
                            .ok_or_else(|| format!("`{name}` needs `soft` and `hard`"))
                            .and_then(|n| parse_int(n).map_err(|e| format!("{name}.{k}: {e}")))
                    };
                    (get("soft")?, get("hard")?)
                }
                v => {
                    let n = parse_int(v).map_err(|e| format!("{name}: {e}"))?;
                    (n, n)
                }
            };
            Ok((name.clone(), soft, hard))
        })
        .collect()
}

/// A boolean attribute's value: a YAML boolean, or a string as
/// interpolation leaves it (`read_only: ${RO}`), cast as docker compose
/// casts it: `true`/`yes`/`y`/`on` and `false`/`no`/`n`/`off`, any case.
/// `None` for anything else.
pub fn parse_bool(v: &Node) -> Option<bool> {
    match v {
        Node::Bool(b) => Some(*b),
        Node::Str(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "y" | "on" => Some(true),
            "false" | "no" | "n" | "off" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("10x").is_err());
        for huge in ["1e300", "99999999999999999999999h"] {
            assert!(
                parse_duration(huge).unwrap_err().contains("too long"),
                "{huge}"
            );
        }
    }
}
