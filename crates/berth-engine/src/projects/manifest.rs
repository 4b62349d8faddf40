//! The project manifest: who the app is and what it needs, beside its
//! Compose file. Format (JSON, `manifest.json` in the project directory,
//! or sent whole in EnsureProject):
//!
//! ```json
//! {
//!   "app_id": "dev.example.todo",
//!   "name": "Todo",
//!   "version": "1.4.0",
//!   "compose": "compose.yaml",
//!   "secrets": ["API_KEY", {"name": "SMTP_PASSWORD", "description": "mail relay", "optional": true}],
//!   "compose_files": ["compose.prod.yaml"],
//!   "env_files": ["prod.env"],
//!   "profiles": ["debug"],
//!   "project_name": "todo"
//! }
//! ```
//!
//! `app_id`, `name` and `version` are required; `compose` defaults to the
//! first of `compose.yaml`, `compose.yml`, `docker-compose.yaml`,
//! `docker-compose.yml` that exists; `secrets` are environment variable
//! names StartProject must be given (unless `optional`), injected into
//! every service. Unknown keys are refused so a typo is not silently
//! ignored.

use super::model::ProjectError;
use serde::{Deserialize, Serialize};
use std::path::{Component, Path, PathBuf};

/// The file EnsureProject reads when the request carries no manifest.
pub const MANIFEST_FILE: &str = "manifest.json";

/// Compose file names tried, in order, when the manifest names none.
pub const COMPOSE_NAMES: &[&str] = &[
    "compose.yaml",
    "compose.yml",
    "docker-compose.yaml",
    "docker-compose.yml",
];

/// A parsed, checked manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Reverse-DNS style app id.
    pub app_id: String,
    /// Display name.
    pub name: String,
    /// The app's version.
    pub version: String,
    /// The Compose file, relative to the project directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compose: Option<String>,
    /// Secrets the app needs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<SecretDecl>,
    /// More Compose files merged over `compose` in order (`-f a -f b`);
    /// without them, the default file's `.override` file is merged.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub compose_files: Vec<String>,
    /// Env files for interpolation (`--env-file`); default `.env`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env_files: Vec<String>,
    /// Active profiles (`--profile`); default `COMPOSE_PROFILES`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub profiles: Vec<String>,
    /// The Compose project name (`-p`), used when the file has no `name:`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_name: Option<String>,
}

/// A secret, by name alone or with details.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SecretDecl {
    /// `"API_KEY"`: required.
    Name(String),
    /// `{"name": ..., "description": ..., "optional": ...}`.
    Full {
        /// The environment variable.
        name: String,
        /// What it is for.
        #[serde(default)]
        description: String,
        /// May be left out at start.
        #[serde(default)]
        optional: bool,
    },
}

impl SecretDecl {
    /// The environment variable.
    pub fn name(&self) -> &str {
        match self {
            SecretDecl::Name(n) | SecretDecl::Full { name: n, .. } => n,
        }
    }

    /// Must StartProject be given it?
    pub fn required(&self) -> bool {
        !matches!(self, SecretDecl::Full { optional: true, .. })
    }
}

fn bad(msg: impl Into<String>) -> ProjectError {
    ProjectError::InvalidManifest(msg.into())
}

impl Manifest {
    /// Parses and checks a manifest document; errors name the field.
    pub fn parse(bytes: &[u8]) -> Result<Self, ProjectError> {
        let m: Manifest = serde_json::from_slice(bytes)
            .map_err(|e| bad(format!("the manifest is not valid: {e}")))?;
        m.check()?;
        Ok(m)
    }

    fn check(&self) -> Result<(), ProjectError> {
        let token = |field: &str, v: &str| -> Result<(), ProjectError> {
            if v.trim().is_empty() {
                return Err(bad(format!("manifest field `{field}` must not be empty")));
            }
            if v.len() > 200 || v.chars().any(char::is_control) {
                return Err(bad(format!(
                    "manifest field `{field}` must be at most 200 printable characters"
                )));
            }
            Ok(())
        };
        token("app_id", &self.app_id)?;
        if !self
            .app_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        {
            return Err(bad(format!(
                "manifest field `app_id` {:?} may only use letters, digits and . _ -",
                self.app_id
            )));
        }
        token("name", &self.name)?;
        token("version", &self.version)?;
        if let Some(c) = &self.compose {
            relative_inside(c)
                .map_err(|why| bad(format!("manifest field `compose` {c:?} {why}")))?;
        }
        for (field, list) in [
            ("compose_files", &self.compose_files),
            ("env_files", &self.env_files),
        ] {
            for (i, f) in list.iter().enumerate() {
                relative_inside(f)
                    .map_err(|why| bad(format!("manifest field `{field}[{i}]` {f:?} {why}")))?;
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, s) in self.secrets.iter().enumerate() {
            let n = s.name();
            let ok = !n.is_empty()
                && !n.starts_with(|c: char| c.is_ascii_digit())
                && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !ok {
                return Err(bad(format!(
                    "manifest field `secrets[{i}]` {n:?} must be an environment variable name (letters, digits, _; not starting with a digit)"
                )));
            }
            if !seen.insert(n) {
                return Err(bad(format!(
                    "manifest field `secrets[{i}]` names {n:?} twice"
                )));
            }
        }
        Ok(())
    }

    /// The Compose file of a project in `dir`.
    pub fn compose_path(&self, dir: &Path) -> Result<PathBuf, ProjectError> {
        match &self.compose {
            Some(c) => {
                let p = dir.join(c);
                if p.is_file() {
                    Ok(p)
                } else {
                    Err(ProjectError::PathNotFound(format!(
                        "the manifest's compose file {} does not exist",
                        p.display()
                    )))
                }
            }
            None => COMPOSE_NAMES
                .iter()
                .map(|n| dir.join(n))
                .find(|p| p.is_file())
                .ok_or_else(|| {
                    ProjectError::PathNotFound(format!(
                        "{} has no Compose file (looked for {})",
                        dir.display(),
                        COMPOSE_NAMES.join(", ")
                    ))
                }),
        }
    }

    /// Secrets that must be given.
    pub fn required_secrets(&self) -> impl Iterator<Item = &str> {
        self.secrets
            .iter()
            .filter(|s| s.required())
            .map(SecretDecl::name)
    }

    /// The manifest as stored.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Checks that `p` is a relative path that stays inside its base.
pub fn relative_inside(p: &str) -> Result<(), &'static str> {
    let path = Path::new(p);
    if p.is_empty() {
        return Err("is empty");
    }
    for c in path.components() {
        match c {
            Component::Normal(_) | Component::CurDir => {}
            Component::ParentDir => return Err("must not leave the project directory (`..`)"),
            Component::RootDir | Component::Prefix(_) => {
                return Err("must be relative to the project directory")
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_manifest_parses() {
        let m = Manifest::parse(
            br#"{"app_id":"dev.x.todo","name":"Todo","version":"1.0","compose":"stack/compose.yaml",
                "secrets":["API_KEY",{"name":"SMTP","optional":true}]}"#,
        )
        .unwrap();
        assert_eq!(m.required_secrets().collect::<Vec<_>>(), ["API_KEY"]);
        assert_eq!(m.compose.as_deref(), Some("stack/compose.yaml"));
    }

    #[test]
    fn errors_name_the_field() {
        let err = |doc: &str| Manifest::parse(doc.as_bytes()).unwrap_err().to_string();
        assert!(err(r#"{"name":"a","version":"1"}"#).contains("app_id"));
        assert!(err(r#"{"app_id":"a b","name":"a","version":"1"}"#).contains("`app_id`"));
        assert!(err(r#"{"app_id":"a","name":"","version":"1"}"#).contains("`name`"));
        assert!(
            err(r#"{"app_id":"a","name":"a","version":"1","compose":"../x.yaml"}"#)
                .contains("`compose`")
        );
        assert!(
            err(r#"{"app_id":"a","name":"a","version":"1","secrets":["1X"]}"#)
                .contains("secrets[0]")
        );
        assert!(
            err(r#"{"app_id":"a","name":"a","version":"1","colour":"red"}"#).contains("colour")
        );
        assert!(err("not json").contains("not valid"));
    }
}
