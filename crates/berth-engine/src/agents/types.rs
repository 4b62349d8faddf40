//! Agent types (issue 15, seed 004 "VM Agent Reference": Claude Code,
//! OpenAI Codex, Gemini CLI, Mistral Vibe, OpenCode, Amp): which program
//! speaks ACP on its stdio for each type. Built-in defaults are the
//! published ACP adapters' commands; `BERTH_ACP_AGENT_<TYPE>` overrides
//! one or adds a type (`TYPE` upper-cased with `-` as `_`; the value is a
//! command line split like a shell's words). Between the two, the agent
//! types file (`agents.toml` in berth's state directory, [`FILE_NAME`]):
//! `[types.NAME]` tables with `command = ["program", "arg"…]` (or a
//! string split like the environment's). Environment over file over
//! built-ins.

use super::AgentError;
use std::collections::BTreeMap;

/// The built-in agent types and their commands. Sources: the ACP agent
/// list (agentclientprotocol.com "Agents") and each adapter's README:
/// `@zed-industries/claude-code-acp` and `@zed-industries/codex-acp` (npm),
/// Gemini CLI's `--experimental-acp`, Mistral's `vibe-acp`, `opencode acp`,
/// and the `amp-acp` adapter (npm).
pub const BUILT_IN: &[(&str, &str)] = &[
    ("claude-code", "npx -y @zed-industries/claude-code-acp"),
    ("codex", "npx -y @zed-industries/codex-acp"),
    ("gemini", "gemini --experimental-acp"),
    ("mistral-vibe", "vibe-acp"),
    ("opencode", "opencode acp"),
    ("amp", "npx -y amp-acp"),
];

/// The prefix of the environment variables that set an agent type's
/// command.
pub const ENV_PREFIX: &str = "BERTH_ACP_AGENT_";

/// The agent types file's name in berth's state directory.
pub const FILE_NAME: &str = "agents.toml";

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FileTypes {
    #[serde(default)]
    types: BTreeMap<String, toml::Value>,
}

/// One `[types.NAME]` table; `command` is checked by hand so that a wrong
/// one is named `types.NAME.command` (serde's untagged enums only say
/// "data did not match any variant").
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FileType {
    command: toml::Value,
}

/// Agent type → argv.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentTypes {
    map: BTreeMap<String, Vec<String>>,
}

impl AgentTypes {
    /// The built-in types, then every `BERTH_ACP_AGENT_<TYPE>` of `env`
    /// over them. An empty or unsplittable value is an error naming the
    /// variable.
    pub fn from_env(env: impl IntoIterator<Item = (String, String)>) -> Result<Self, AgentError> {
        Self::built_in().with_env(env)
    }

    /// The built-in types only.
    pub fn built_in() -> Self {
        Self {
            map: BUILT_IN
                .iter()
                .map(|(t, c)| (t.to_string(), split_words(c).unwrap_or_default()))
                .collect(),
        }
    }

    /// These types with the `[types.NAME]` tables of the agent types file
    /// `text` (read from `path`, named in errors) over them. Errors name
    /// the file, the line and what is wrong (TOML syntax, an unknown key,
    /// a `command` that is not a non-empty list of words or a command
    /// line); then nothing of the file applies.
    pub fn with_file(mut self, path: &std::path::Path, text: &str) -> Result<Self, AgentError> {
        let at = |span: Option<std::ops::Range<usize>>| {
            span.map(|r| {
                let line = text[..r.start.min(text.len())].matches('\n').count() + 1;
                format!(" line {line}:")
            })
            .unwrap_or_default()
        };
        let f: FileTypes = toml::from_str(text).map_err(|e| {
            AgentError::Invalid(format!(
                "{}:{} {}",
                path.display(),
                at(e.span()),
                e.message()
            ))
        })?;
        for (ty, t) in f.types {
            let line = text
                .lines()
                .position(|l| l.contains(&format!("types.{ty}")))
                .map(|n| format!(" line {}:", n + 1))
                .unwrap_or_default();
            let bad = |why: String| {
                AgentError::Invalid(format!("{}:{line} types.{ty}{why}", path.display()))
            };
            let t: FileType = t.try_into().map_err(|e| bad(format!(": {e}")))?;
            let argv = match t.command {
                toml::Value::String(l) => split_words(&l),
                toml::Value::Array(a) => a
                    .into_iter()
                    .map(|w| match w {
                        toml::Value::String(w) => Some(w),
                        _ => None,
                    })
                    .collect(),
                _ => None,
            }
            .filter(|a: &Vec<String>| a.first().is_some_and(|p| !p.is_empty()));
            let Some(argv) = argv else {
                return Err(bad(
                    ".command: expected a list of strings or a command line string (a program and its arguments)".into(),
                ));
            };
            self.map.insert(ty, argv);
        }
        Ok(self)
    }

    /// These types with every `BERTH_ACP_AGENT_<TYPE>` of `env` over them.
    /// An empty or unsplittable value is an error naming the variable.
    pub fn with_env(
        self,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, AgentError> {
        let mut map = self.map;
        for (k, v) in env {
            let Some(ty) = k.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            if ty.is_empty() {
                continue;
            }
            let argv = split_words(&v).filter(|a| !a.is_empty()).ok_or_else(|| {
                AgentError::Invalid(format!(
                    "{k}={v:?}: expected a command line (program and arguments)"
                ))
            })?;
            map.insert(ty.to_ascii_lowercase().replace('_', "-"), argv);
        }
        Ok(Self { map })
    }

    /// Sets `ty`'s command (for tests and the daemon's own settings).
    pub fn set(&mut self, ty: &str, argv: Vec<String>) {
        self.map.insert(ty.to_string(), argv);
    }

    /// The argv of `ty`; [`AgentError::UnknownType`] lists the configured
    /// types otherwise.
    pub fn command(&self, ty: &str) -> Result<Vec<String>, AgentError> {
        self.map
            .get(ty)
            .cloned()
            .ok_or_else(|| AgentError::UnknownType {
                ty: ty.to_string(),
                known: self.names().join(", "),
            })
    }

    /// The configured type names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.map.keys().cloned().collect()
    }
}

/// Splits a command line into words: whitespace separates, single quotes
/// keep text literally, double quotes keep spaces (with `\"` and `\\`),
/// a backslash outside quotes escapes the next character. `None` for an
/// unterminated quote.
pub fn split_words(s: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '\'' => break,
                        c => cur.push(c),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => match chars.next()? {
                            c @ ('"' | '\\' | '$' | '`') => cur.push(c),
                            c => {
                                cur.push('\\');
                                cur.push(c)
                            }
                        },
                        c => cur.push(c),
                    }
                }
            }
            '\\' => {
                in_word = true;
                cur.push(chars.next()?);
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    Some(out)
}
