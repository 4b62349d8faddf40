//! What `include` and `extends` need from the loader: reading further
//! files, as a trait so they do not depend on the loader that calls them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::LoadError;
use crate::files::Files;
use crate::node::Node;

pub(crate) trait Source {
    /// The files being read.
    fn files(&self) -> &dyn Files;
    /// The files being loaded, outermost first (include cycles).
    fn stack(&mut self) -> &mut Vec<PathBuf>;
    /// A file with its includes and extends resolved, paths relative to
    /// `base`.
    fn file(
        &mut self,
        path: &Path,
        vars: &BTreeMap<String, String>,
        base: &Path,
    ) -> Result<Node, LoadError>;
    /// A file parsed and interpolated, nothing else.
    fn read(&mut self, path: &Path, vars: &BTreeMap<String, String>) -> Result<Node, LoadError>;
}
