//! From files to the resolved model: the one path every consumer takes
//! (validation, `config`, the engine's runtimes).
//!
//! Order (Compose Specification, "Compose file", "Interpolation",
//! "Merge", "Profiles", "extends", "include"):
//! 1. variables: the `--env-file`s (or the project directory's `.env`),
//!    overridden by the shell environment;
//! 2. each file parsed and interpolated on its own; its `include`s loaded
//!    as projects of their own and added; its services' `extends`
//!    resolved;
//! 3. the files merged in order (`-f a -f b`, or the default file and its
//!    `.override` file);
//! 4. the project name; the active profiles select services, pulling in
//!    the dependencies of active ones;
//! 5. the typed [`ComposeFile`] read from the resulting tree.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::env::project_vars;
pub use crate::error::LoadError;
use crate::files::{normalise, Files};
use crate::loader::Loader;
use crate::merge::merge_file;
use crate::model::ComposeFile;
use crate::node::Node;
use crate::report::FieldNote;
use crate::source::Source;

/// The default file names, in the order Compose looks for them.
pub const DEFAULT_FILES: &[&str] = &[
    "compose.yaml",
    "compose.yml",
    "docker-compose.yaml",
    "docker-compose.yml",
];

/// What to load.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The project directory (relative paths of the files are from it).
    /// Default: the directory of the first file.
    pub project_dir: Option<PathBuf>,
    /// `-f` files, in order. Empty: the first of [`DEFAULT_FILES`] in the
    /// project directory, and its `.override` file when there is one.
    pub files: Vec<PathBuf>,
    /// `--env-file`s, in order (later ones win). Empty: the project
    /// directory's `.env`, if any.
    pub env_files: Vec<PathBuf>,
    /// `--profile`s. Empty: `COMPOSE_PROFILES` (comma separated).
    pub profiles: Vec<String>,
    /// `-p`.
    pub project_name: Option<String>,
    /// The shell environment; it wins over the env files.
    pub environment: BTreeMap<String, String>,
    /// An unset `${VAR:?e}` / `${VAR?e}` becomes empty with a warning
    /// instead of an error: for validating a project whose variables are
    /// given later (berth's secrets at start).
    pub lenient_required: bool,
}

/// A resolved project.
#[derive(Debug, Clone)]
pub struct Project {
    /// The normalised project name.
    pub name: String,
    /// The project directory.
    pub dir: PathBuf,
    /// The Compose files read, in merge order (includes and extended
    /// files not listed).
    pub files: Vec<PathBuf>,
    /// The resolved tree.
    pub tree: Node,
    /// Its typed view.
    pub file: ComposeFile,
    /// The variables interpolation used.
    pub vars: BTreeMap<String, String>,
    /// Variables read unset and without a default: (path, name).
    pub unset: Vec<(String, String)>,
    /// Warnings of resolution (services left out by profiles, ...).
    pub notes: Vec<FieldNote>,
    /// The active profiles.
    pub profiles: Vec<String>,
    /// Every profile a service of the files names, sorted.
    pub all_profiles: Vec<String>,
}

/// Compose's project name rule: lowercase; only `a-z`, `0-9`, `_` and
/// `-` kept; leading characters that are not a letter or digit dropped.
/// `None` when nothing is left.
pub fn normalise_project_name(name: &str) -> Option<String> {
    let kept: String = name
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-'))
        .collect();
    let trimmed = kept.trim_start_matches(['_', '-']);
    (!trimmed.is_empty()).then(|| trimmed.to_owned())
}

/// Checks a project name given imperatively (`-p`, COMPOSE_PROJECT_NAME):
/// Compose refuses one that is not already normal rather than changing
/// it, so the project a user names is the one they get.
///
/// # Errors
/// A sentence naming the value, where it came from (`from`) and the rule.
pub fn check_project_name(name: &str, from: &str) -> Result<(), String> {
    let ok = name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{from} {name:?} is not a valid project name: it must consist only of lowercase letters, digits, dashes and underscores, and start with a letter or digit"
        ))
    }
}

/// The override file next to `main` (`compose.yaml` →
/// `compose.override.yaml`, `.yml` too), when one exists.
fn override_of(files: &dyn Files, main: &Path) -> Option<PathBuf> {
    let stem = main.file_stem()?.to_str()?;
    let dir = main.parent()?;
    ["yaml", "yml"]
        .iter()
        .map(|ext| dir.join(format!("{stem}.override.{ext}")))
        .find(|p| files.exists(p))
}

/// Loads and resolves a project.
pub fn load(files: &dyn Files, opts: &Options) -> Result<Project, LoadError> {
    let dir = match (&opts.project_dir, opts.files.first()) {
        (Some(d), _) => normalise(d),
        (None, Some(f)) => normalise(f)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default(),
        (None, None) => {
            return Err(LoadError::new(
                "",
                "no project directory and no Compose file given",
            ))
        }
    };
    let paths: Vec<PathBuf> = if opts.files.is_empty() {
        let main = DEFAULT_FILES
            .iter()
            .map(|n| dir.join(n))
            .find(|p| files.exists(p))
            .ok_or_else(|| {
                LoadError::new(
                    "",
                    format!(
                        "no Compose file in {} (looked for {})",
                        dir.display(),
                        DEFAULT_FILES.join(", ")
                    ),
                )
            })?;
        let mut v = vec![main.clone()];
        v.extend(override_of(files, &main));
        v
    } else {
        opts.files.iter().map(|f| normalise(&dir.join(f))).collect()
    };
    let mut vars = project_vars(files, &dir, &opts.env_files, &opts.environment)?;
    // The project name, in Compose's order: -p, then COMPOSE_PROJECT_NAME
    // (shell or env file), then `name:`, then the directory's name. The
    // first two must already be valid names; `name:` and the directory's
    // name are normalised. The name is visible to interpolation as
    // COMPOSE_PROJECT_NAME, so when `name:` decides it, the files are read
    // again with the final name.
    let imperative = match (&opts.project_name, vars.get("COMPOSE_PROJECT_NAME")) {
        (Some(n), _) if !n.is_empty() => Some(("-p", n.clone())),
        (_, Some(n)) if !n.is_empty() => Some(("COMPOSE_PROJECT_NAME", n.clone())),
        _ => None,
    };
    if let Some((from, n)) = &imperative {
        check_project_name(n, from).map_err(|e| LoadError::new("name", e))?;
    }
    let imperative = imperative.map(|(_, n)| n);
    let dir_name = dir.file_name().map(|n| n.to_string_lossy().into_owned());
    let first = |tree: &Node| {
        if let Some(n) = &imperative {
            return Ok(n.clone());
        }
        let raw = [
            tree.get("name").and_then(Node::scalar_text),
            dir_name.clone(),
        ]
        .into_iter()
        .flatten()
        .find(|c| !c.is_empty())
        .unwrap_or_default();
        normalise_project_name(&raw).ok_or_else(|| {
            LoadError::new(
                "name",
                format!("`{raw}` is not a project name: it needs a letter or digit"),
            )
        })
    };
    let mut guess = first(&Node::Null)?;
    let mut passes = 0;
    let (tree, name, unset) = loop {
        passes += 1;
        vars.insert("COMPOSE_PROJECT_NAME".into(), guess.clone());
        let mut loader = Loader {
            files,
            lenient: opts.lenient_required,
            unset: Vec::new(),
            stack: Vec::new(),
        };
        let mut tree = Node::Map(Vec::new());
        for p in &paths {
            let one = loader.file(p, &vars, &dir)?;
            merge_file(&mut tree, one);
        }
        tree.remove("include");
        let name = first(&tree)?;
        // A name made from COMPOSE_PROJECT_NAME itself settles after
        // one more reading.
        if name == guess || passes == 2 {
            break (tree, name, loader.unset);
        }
        guess = name;
    };
    let mut tree = tree;
    if tree.get("name").is_some() {
        tree.set("name", Node::Str(name.clone()));
    }
    let mut notes = Vec::new();
    let (profiles, all_profiles) =
        crate::profiles::apply(&mut tree, &opts.profiles, &vars, &mut notes)?;
    check_env_files(files, &dir, &tree)?;
    let file = crate::parse::typed(&tree)?;
    Ok(Project {
        name,
        dir,
        files: paths,
        tree,
        file,
        vars,
        unset,
        notes,
        profiles,
        all_profiles,
    })
}

/// Every required `env_file` of the services left must exist: `up`
/// reads them, so a missing one is refused here, at its path.
fn check_env_files(files: &dyn Files, dir: &Path, tree: &Node) -> Result<(), LoadError> {
    for (name, svc) in tree.get("services").map_or(&[][..], Node::entries) {
        let entries: Vec<(usize, String, bool)> = match svc.get("env_file") {
            Some(Node::Seq(items)) => items
                .iter()
                .enumerate()
                .filter_map(|(i, e)| match e {
                    Node::Map(_) => Some((
                        i,
                        e.get("path")?.scalar_text()?,
                        !matches!(e.get("required"), Some(Node::Bool(false))),
                    )),
                    other => Some((i, other.scalar_text()?, true)),
                })
                .collect(),
            Some(other) => other
                .scalar_text()
                .map(|p| (0, p, true))
                .into_iter()
                .collect(),
            None => Vec::new(),
        };
        for (i, p, required) in entries {
            let full = normalise(&dir.join(&p));
            if required && !files.exists(&full) {
                let mut at = vec!["services".to_owned(), name.clone(), "env_file".to_owned()];
                if matches!(svc.get("env_file"), Some(Node::Seq(_))) {
                    at.push(format!("[{i}]"));
                }
                return Err(LoadError::at(
                    &at,
                    format!(
                        "{} does not exist (mark it `required: false` if it is optional)",
                        full.display()
                    ),
                ));
            }
        }
    }
    Ok(())
}
