//! Relative paths of a file loaded from another directory (`include`,
//! `extends` with `file:`) rebased so they stay relative to the project
//! that uses them, as the Compose Specification asks of both.

use std::path::Path;

use crate::files::normalise;
use crate::node::Node;

/// `p` (relative to `from`) relative to `to` when `from` is under `to`
/// (`./sub/x`), else absolute.
pub(crate) fn rebase_path(p: &str, from: &Path, to: &Path) -> String {
    if p.starts_with('/') || p.starts_with('~') || from == to {
        return p.to_owned();
    }
    let full = normalise(&from.join(p));
    match full.strip_prefix(normalise(to)) {
        Ok(rel) if rel.as_os_str().is_empty() => ".".to_owned(),
        Ok(rel) => format!("./{}", rel.display()),
        Err(_) => full.display().to_string(),
    }
}

fn is_relative_source(s: &str) -> bool {
    s.starts_with('.')
}

/// Rebases the paths of a service: `build` (context), `env_file`,
/// `label_file`, bind sources of `volumes`.
pub(crate) fn service(svc: &mut Node, from: &Path, to: &Path) {
    let r = |s: &str| rebase_path(s, from, to);
    match svc.get_mut("build") {
        Some(Node::Str(s)) => *s = r(s),
        Some(b @ Node::Map(_)) => {
            if let Some(Node::Str(s)) = b.get_mut("context") {
                *s = r(s);
            }
        }
        _ => {}
    }
    for key in ["env_file", "label_file"] {
        match svc.get_mut(key) {
            Some(Node::Str(s)) => *s = r(s),
            Some(Node::Seq(items)) => {
                for i in items {
                    match i {
                        Node::Str(s) => *s = r(s),
                        m @ Node::Map(_) => {
                            if let Some(Node::Str(s)) = m.get_mut("path") {
                                *s = r(s);
                            }
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    if let Some(Node::Seq(vols)) = svc.get_mut("volumes") {
        for v in vols {
            match v {
                Node::Str(s) => {
                    if let Some((src, rest)) = s.split_once(':') {
                        if is_relative_source(src) {
                            *s = format!("{}:{rest}", r(src));
                        }
                    }
                }
                m @ Node::Map(_) => {
                    if let Some(Node::Str(s)) = m.get_mut("source") {
                        if is_relative_source(s) {
                            *s = r(s);
                        }
                    }
                }
                _ => {}
            }
        }
    }
}

/// Rebases the `file:` of top-level secrets and configs.
pub(crate) fn resources(tree: &mut Node, from: &Path, to: &Path) {
    for key in ["secrets", "configs"] {
        if let Some(Node::Map(defs)) = tree.get_mut(key) {
            for (_, d) in defs {
                if let Some(Node::Str(s)) = d.get_mut("file") {
                    *s = rebase_path(s, from, to);
                }
            }
        }
    }
}
