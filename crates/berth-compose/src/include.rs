//! `include` (Compose Specification, "Include"): each entry is a Compose
//! application of its own — its own project directory (default: the
//! directory of its first file) and env file (default: that directory's
//! `.env`), over the including project's variables — whose services,
//! networks, volumes, secrets and configs are added to the including
//! file. A name defined on both sides is an error.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::env::project_vars;
use crate::error::LoadError;
use crate::files::normalise;
use crate::merge::merge_file;
use crate::node::Node;
use crate::rebase;
use crate::source::Source;

fn strings(n: &Node, at: &str) -> Result<Vec<String>, LoadError> {
    match n {
        Node::Seq(items) => items
            .iter()
            .map(|i| {
                i.scalar_text()
                    .ok_or_else(|| LoadError::new(at, "expected a string or a list of strings"))
            })
            .collect(),
        other => other
            .scalar_text()
            .map(|s| vec![s])
            .ok_or_else(|| LoadError::new(at, "expected a string or a list of strings")),
    }
}

/// Adds the includes `inc` of the file at `path` to its `tree`.
pub(crate) fn apply(
    loader: &mut dyn Source,
    tree: &mut Node,
    inc: &Node,
    path: &Path,
    vars: &BTreeMap<String, String>,
    base: &Path,
) -> Result<(), LoadError> {
    let Node::Seq(entries) = inc else {
        return Err(LoadError::new(
            "include",
            "expected a list of paths or of mappings with `path`",
        ));
    };
    let here = path.parent().unwrap_or(Path::new("/")).to_path_buf();
    for (i, e) in entries.iter().enumerate() {
        let at = format!("include[{i}]");
        let (paths, project_dir, env_files) = match e {
            Node::Map(_) => {
                let p = e
                    .get("path")
                    .ok_or_else(|| LoadError::new(&at, "an include needs a `path`"))?;
                (
                    strings(p, &format!("{at}.path"))?,
                    e.get("project_directory").and_then(Node::scalar_text),
                    match e.get("env_file") {
                        Some(n) => strings(n, &format!("{at}.env_file"))?,
                        None => Vec::new(),
                    },
                )
            }
            other => (strings(other, &at)?, None, Vec::new()),
        };
        let files: Vec<PathBuf> = paths.iter().map(|p| normalise(&here.join(p))).collect();
        let Some(first) = files.first() else {
            return Err(LoadError::new(&at, "an include needs a `path`"));
        };
        if let Some(f) = files.iter().find(|f| loader.stack().contains(f)) {
            return Err(LoadError::new(
                &at,
                format!("{} includes itself", f.display()),
            ));
        }
        let dir = match &project_dir {
            Some(d) => normalise(&here.join(d)),
            None => first.parent().unwrap_or(Path::new("/")).to_path_buf(),
        };
        let env_files: Vec<PathBuf> = env_files.iter().map(|f| normalise(&here.join(f))).collect();
        let own = project_vars(loader.files(), &dir, &env_files, vars)?;
        loader.stack().push(path.to_path_buf());
        let mut included = Node::Map(Vec::new());
        let mut result = Ok(());
        for f in &files {
            match loader.file(f, &own, &dir) {
                Ok(t) => merge_file(&mut included, t),
                Err(e) => {
                    result = Err(LoadError {
                        reason: format!("in included {}: {e}", f.display()),
                        ..LoadError::new(&at, "")
                    });
                    break;
                }
            }
        }
        loader.stack().pop();
        result?;
        if let Some(Node::Map(services)) = included.get_mut("services") {
            for (_, svc) in services.iter_mut() {
                rebase::service(svc, &dir, base);
            }
        }
        rebase::resources(&mut included, &dir, base);
        for key in ["services", "networks", "volumes", "secrets", "configs"] {
            let Some(Node::Map(add)) = included.remove(key) else {
                continue;
            };
            if tree.get(key).is_none() {
                tree.set(key, Node::Map(Vec::new()));
            }
            let Some(Node::Map(have)) = tree.get_mut(key) else {
                return Err(LoadError::new(key, "expected a mapping"));
            };
            for (name, def) in add {
                if have.iter().any(|(n, _)| *n == name) {
                    return Err(LoadError::at(
                        &[key.to_owned(), name.clone()],
                        format!(
                            "defined both in {} and in the included {}",
                            path.display(),
                            first.display()
                        ),
                    ));
                }
                have.push((name, def));
            }
        }
    }
    Ok(())
}
