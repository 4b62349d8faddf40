//! Reading one Compose file: parsed, interpolated, its `include`s added
//! and its services' `extends` resolved.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{report_path, LoadError};
use crate::files::Files;
use crate::interpolate::interpolate_with;
use crate::node::Node;
use crate::parse::parse_tree;
use crate::source::Source;

/// Interpolates every string value of `node` (keys stay as written).
pub(crate) struct Interpolator<'a> {
    pub vars: &'a BTreeMap<String, String>,
    pub lenient: bool,
    pub unset: Vec<(String, String)>,
}

impl Interpolator<'_> {
    pub(crate) fn node(
        &mut self,
        node: &mut Node,
        path: &mut Vec<String>,
    ) -> Result<(), LoadError> {
        match node {
            Node::Str(s) if s.contains('$') => {
                let r = interpolate_with(s, self.vars, self.lenient)
                    .map_err(|e| LoadError::at(path, e.to_string()))?;
                let at = report_path(path);
                for v in r.unset {
                    self.unset.push((at.clone(), v));
                }
                *s = r.value;
                Ok(())
            }
            Node::Seq(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    path.push(format!("[{i}]"));
                    let r = self.node(item, path);
                    path.pop();
                    r?;
                }
                Ok(())
            }
            Node::Map(entries) => {
                for (k, v) in entries.iter_mut() {
                    // Extension fields are not interpolated.
                    if path.is_empty() && k.starts_with("x-") {
                        continue;
                    }
                    path.push(k.clone());
                    let r = self.node(v, path);
                    path.pop();
                    r?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// Reads one file with its includes and extends.
pub(crate) struct Loader<'a> {
    pub files: &'a dyn Files,
    pub lenient: bool,
    pub unset: Vec<(String, String)>,
    /// Files being loaded (include cycles).
    pub stack: Vec<PathBuf>,
}

impl Source for Loader<'_> {
    fn files(&self) -> &dyn Files {
        self.files
    }

    fn stack(&mut self) -> &mut Vec<PathBuf> {
        &mut self.stack
    }

    /// The parsed, interpolated tree of `path` with its includes added
    /// and its services' extends resolved. Relative paths stay relative
    /// to `base` (the directory of the project the file belongs to).
    fn file(
        &mut self,
        path: &Path,
        vars: &BTreeMap<String, String>,
        base: &Path,
    ) -> Result<Node, LoadError> {
        let mut tree = self.read(path, vars)?;
        let includes = tree.remove("include");
        if let Some(inc) = includes {
            crate::include::apply(self, &mut tree, &inc, path, vars, base)?;
        }
        crate::extends::apply(self, &mut tree, path, vars, base)?;
        Ok(tree)
    }

    /// Parsed and interpolated, nothing else.
    fn read(&mut self, path: &Path, vars: &BTreeMap<String, String>) -> Result<Node, LoadError> {
        let text = self
            .files
            .read(path)
            .map_err(|e| LoadError::new("", format!("cannot read {}: {e}", path.display())))?;
        let mut tree = parse_tree(text.as_bytes())
            .map_err(|e| LoadError::new("", format!("{}: {e}", path.display())))?;
        let mut i = Interpolator {
            vars,
            lenient: self.lenient,
            unset: Vec::new(),
        };
        i.node(&mut tree, &mut Vec::new())?;
        self.unset.extend(i.unset);
        Ok(tree)
    }
}
