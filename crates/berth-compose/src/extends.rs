//! `extends` (Compose Specification, "Extend"): a service starts from
//! another service — of the same file, or of `file:` (relative to the
//! extending file) — and its own keys are merged over it with the merge
//! rules. Paths of a base from another file are rebased. Chains are
//! followed; a cycle is an error.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::LoadError;
use crate::files::normalise;
use crate::merge::merge_service;
use crate::node::Node;
use crate::rebase;
use crate::source::Source;

/// Where a service extends from.
struct From {
    service: String,
    file: Option<String>,
}

fn extends_of(svc: &Node, name: &str) -> Result<Option<From>, LoadError> {
    let at = format!("{name}.extends");
    match svc.get("extends") {
        None => Ok(None),
        Some(Node::Str(s)) => Ok(Some(From {
            service: s.clone(),
            file: None,
        })),
        Some(m @ Node::Map(_)) => {
            let service = m
                .get("service")
                .and_then(Node::scalar_text)
                .ok_or_else(|| LoadError {
                    service: name.to_owned(),
                    ..LoadError::new(&at, "expected `service:` naming the service to extend")
                })?;
            Ok(Some(From {
                service,
                file: m.get("file").and_then(Node::scalar_text),
            }))
        }
        Some(other) => Err(LoadError {
            service: name.to_owned(),
            ..LoadError::new(
                &at,
                format!(
                    "expected a service name or a mapping with `service` and `file`, not {}",
                    other.kind()
                ),
            )
        }),
    }
}

/// Resolves `extends` of every service of `tree` (the file at `path`).
pub(crate) fn apply(
    loader: &mut dyn Source,
    tree: &mut Node,
    path: &Path,
    vars: &BTreeMap<String, String>,
    base: &Path,
) -> Result<(), LoadError> {
    let Some(Node::Map(services)) = tree.get("services") else {
        return Ok(());
    };
    let names: Vec<String> = services.iter().map(|(n, _)| n.clone()).collect();
    let original = tree.clone();
    for name in names {
        let mut chain = Vec::new();
        let resolved = resolve(loader, &original, &name, path, vars, base, &mut chain)?;
        if let Some(Node::Map(services)) = tree.get_mut("services") {
            if let Some((_, s)) = services.iter_mut().find(|(n, _)| *n == name) {
                *s = resolved;
            }
        }
    }
    Ok(())
}

/// Service `name` of `file_tree` (the file at `path`) with its extends
/// resolved, paths relative to `base`.
fn resolve(
    loader: &mut dyn Source,
    file_tree: &Node,
    name: &str,
    path: &Path,
    vars: &BTreeMap<String, String>,
    base: &Path,
    chain: &mut Vec<(std::path::PathBuf, String)>,
) -> Result<Node, LoadError> {
    let key = (path.to_path_buf(), name.to_owned());
    if chain.contains(&key) {
        let names: Vec<&str> = chain.iter().map(|(_, n)| n.as_str()).collect();
        return Err(LoadError {
            service: name.to_owned(),
            ..LoadError::new(
                format!("{name}.extends"),
                format!("extends cycle: {} -> {name}", names.join(" -> ")),
            )
        });
    }
    let svc = file_tree
        .get("services")
        .and_then(|s| s.get(name))
        .cloned()
        .ok_or_else(|| {
            let (last, _) = chain.last().cloned().unwrap_or_default();
            let from = chain.last().map(|(_, n)| n.clone()).unwrap_or_default();
            LoadError {
                service: from.clone(),
                ..LoadError::new(
                    format!("{from}.extends"),
                    format!(
                        "service `{name}` is not defined in {}",
                        if last == path {
                            "this file".to_owned()
                        } else {
                            path.display().to_string()
                        }
                    ),
                )
            }
        })?;
    let Some(from) = extends_of(&svc, name)? else {
        return Ok(svc);
    };
    chain.push(key);
    let here = path.parent().unwrap_or(Path::new("/")).to_path_buf();
    let mut parent = match &from.file {
        None => resolve(loader, file_tree, &from.service, path, vars, base, chain)?,
        Some(f) => {
            let other = normalise(&here.join(f));
            let other_tree = loader.read(&other, vars).map_err(|e| LoadError {
                service: name.to_owned(),
                ..LoadError::new(format!("{name}.extends"), e.to_string())
            })?;
            let other_dir = other.parent().unwrap_or(Path::new("/")).to_path_buf();
            let mut p = resolve(
                loader,
                &other_tree,
                &from.service,
                &other,
                vars,
                &other_dir,
                chain,
            )?;
            rebase::service(&mut p, &other_dir, base);
            p
        }
    };
    chain.pop();
    let mut own = svc;
    own.remove("extends");
    merge_service(&mut parent, own);
    Ok(parent)
}
