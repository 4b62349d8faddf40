//! `.env` and `env_file` contents (Compose Specification, "env_file
//! format"): `KEY=VALUE` lines, `export ` prefixes, `#` comments, values
//! unquoted (an inline ` #` starts a comment), in single quotes (kept
//! literally) or double quotes (`\n`, `\t`, `\\`, `\"` escapes). Unquoted
//! and double-quoted values are interpolated with the variables known so
//! far; a line of only `KEY` takes KEY from the lookup, if set.

use std::collections::BTreeMap;

use crate::interpolate::{interpolate, Vars};

/// Variables visible while reading a file: those of the file so far,
/// then `outer`.
struct Layered<'a> {
    own: &'a [(String, String)],
    outer: &'a dyn Vars,
}

impl Vars for Layered<'_> {
    fn var(&self, name: &str) -> Option<&str> {
        self.own
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .or_else(|| self.outer.var(name))
    }
}

/// Parses `text`. Errors name the line (1-based) and what is wrong.
pub fn parse(text: &str, outer: &dyn Vars) -> Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
        let (key, value) = match line.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim_start())),
            None => (line, None),
        };
        if key.is_empty()
            || !key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        {
            return Err(format!("line {}: `{key}` is not a variable name", n + 1));
        }
        let Some(value) = value else {
            // A bare `KEY` takes the outer value; like `KEY=VALUE`, a later
            // line replaces an earlier one (found by fuzzing: a repeated
            // bare key was listed twice).
            if let Some(v) = outer.var(key) {
                let v = v.to_owned();
                out.retain(|(k, _)| k != key);
                out.push((key.to_owned(), v));
            }
            continue;
        };
        let lookup = Layered { own: &out, outer };
        let value = if let Some(v) = value.strip_prefix('\'') {
            v.strip_suffix('\'')
                .or_else(|| v.split_once('\'').map(|(a, _)| a))
                .ok_or_else(|| format!("line {}: unclosed `'`", n + 1))?
                .to_owned()
        } else if let Some(v) = value.strip_prefix('"') {
            let mut s = String::new();
            let mut chars = v.chars();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '"' => {
                        closed = true;
                        break;
                    }
                    '\\' => match chars.next() {
                        Some('n') => s.push('\n'),
                        Some('t') => s.push('\t'),
                        Some('r') => s.push('\r'),
                        Some(other) => s.push(other),
                        None => s.push('\\'),
                    },
                    c => s.push(c),
                }
            }
            if !closed {
                return Err(format!("line {}: unclosed `\"`", n + 1));
            }
            interpolate(&s, &lookup)
                .map_err(|e| format!("line {}: {e}", n + 1))?
                .value
        } else {
            let v = match value.find(" #") {
                Some(i) => &value[..i],
                None => value,
            };
            interpolate(v.trim_end(), &lookup)
                .map_err(|e| format!("line {}: {e}", n + 1))?
                .value
        };
        out.retain(|(k, _)| k != key);
        out.push((key.to_owned(), value));
    }
    Ok(out)
}

/// The `raw` format of `env_file` entries (`format: raw`): each
/// `KEY=VALUE` line as written, no quotes removed and no interpolation;
/// blank lines and `#` comment lines skipped.
pub fn parse_raw(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .ok_or_else(|| format!("line {}: expected KEY=VALUE", n + 1))?;
        out.retain(|(key, _)| key != k);
        out.push((k.to_owned(), v.to_owned()));
    }
    Ok(out)
}

/// An env file in `format` (`None` or `"dotenv"`: [`parse`]; `"raw"`:
/// [`parse_raw`]); another format is an error naming it.
pub fn parse_format(
    text: &str,
    format: Option<&str>,
    outer: &dyn Vars,
) -> Result<Vec<(String, String)>, String> {
    match format {
        None | Some("dotenv") => parse(text, outer),
        Some("raw") => parse_raw(text),
        Some(other) => Err(format!("unknown env_file format `{other}` (dotenv or raw)")),
    }
}

/// [`parse`] into a map.
pub fn parse_map(text: &str, outer: &dyn Vars) -> Result<BTreeMap<String, String>, String> {
    Ok(parse(text, outer)?.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let outer = BTreeMap::from([("HOME".to_string(), "/h".to_string())]);
        let text = "# c\nA=1\nexport B = two words # note\nC='lit $A'\nD=\"q\\n$A\"\nE=${A}-${HOME}\nHOME\nF=\n";
        let m = parse_map(text, &outer).unwrap();
        assert_eq!(m["A"], "1");
        assert_eq!(m["B"], "two words");
        assert_eq!(m["C"], "lit $A");
        assert_eq!(m["D"], "q\n1");
        assert_eq!(m["E"], "1-/h");
        assert_eq!(m["HOME"], "/h");
        assert_eq!(m["F"], "");
        assert!(parse("A B=1", &outer).is_err());
        assert!(parse("A=\"x", &outer).is_err());
    }

    #[test]
    fn a_repeated_bare_key_is_listed_once() {
        let outer = BTreeMap::from([("A".to_string(), "outer".to_string())]);
        let vars = parse("A=1\nA\nB=2\nA\n", &outer).unwrap();
        assert_eq!(
            vars,
            [("B".into(), "2".into()), ("A".into(), "outer".into())]
        );
    }
}
