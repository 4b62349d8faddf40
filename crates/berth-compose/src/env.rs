//! The variables of a project (Compose Specification, "Interpolation"
//! and ".env file"): the env files, then the shell environment over them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::dotenv;
use crate::error::LoadError;
use crate::files::{normalise, Files};
use crate::interpolate::Vars;

/// The variables of a project in `dir`: the env files (or `.env`), then
/// the environment over them.
pub(crate) fn project_vars(
    files: &dyn Files,
    dir: &Path,
    env_files: &[PathBuf],
    environment: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, LoadError> {
    let mut vars = BTreeMap::new();
    let defaults = [dir.join(".env")];
    let (list, required) = if env_files.is_empty() {
        (&defaults[..], false)
    } else {
        (env_files, true)
    };
    for f in list {
        let path = normalise(&dir.join(f));
        let text = match files.read(&path) {
            Ok(t) => t,
            Err(_) if !required => continue,
            Err(e) => {
                return Err(LoadError::new(
                    "",
                    format!("cannot read env file {}: {e}", path.display()),
                ))
            }
        };
        let outer = Outer {
            env: environment,
            own: &vars,
        };
        let parsed = dotenv::parse(&text, &outer)
            .map_err(|e| LoadError::new("", format!("{}: {e}", path.display())))?;
        vars.extend(parsed);
    }
    vars.extend(environment.iter().map(|(k, v)| (k.clone(), v.clone())));
    Ok(vars)
}

/// Lookup while reading env files: the environment, then earlier files.
struct Outer<'a> {
    env: &'a BTreeMap<String, String>,
    own: &'a BTreeMap<String, String>,
}

impl Vars for Outer<'_> {
    fn var(&self, name: &str) -> Option<&str> {
        self.env
            .get(name)
            .or_else(|| self.own.get(name))
            .map(String::as_str)
    }
}
