//! The ONE interpolation of berth (Compose Specification, "Interpolation"):
//! `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`,
//! `${VAR:?error}`, `${VAR?error}`, `${VAR:+alternative}`,
//! `${VAR+alternative}` and `$$` (a literal `$`). The word after an
//! operator is itself interpolated, nested to any depth, and only when it
//! is used (an unused `${X:?e}` inside a default does not fail).
//!
//! A `$` followed by anything but a name, `{` or `$` stays a literal `$`
//! (`cost: 5$`). An unterminated `${`, an empty `${}` or a braced name
//! followed by anything but an operator or `}` is an error, as in Compose.

use std::collections::BTreeMap;
use std::fmt;

/// Why a string could not be interpolated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InterpolateError {
    /// `${VAR:?msg}` / `${VAR?msg}` with VAR unset (or empty, for `:?`).
    Required {
        /// The variable.
        name: String,
        /// The author's text after `?`; may be empty.
        message: String,
    },
    /// The text is not a well-formed template; `at` is a byte offset.
    Invalid {
        /// The whole string, for the message.
        text: String,
        /// Where in `text` the template went wrong, in bytes.
        at: usize,
    },
}

impl fmt::Display for InterpolateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InterpolateError::Required { name, message } if message.is_empty() => {
                write!(f, "required variable `{name}` is missing a value")
            }
            InterpolateError::Required { name, message } => {
                write!(f, "required variable `{name}` is missing a value: {message}")
            }
            InterpolateError::Invalid { text, at } => write!(
                f,
                "invalid interpolation format in `{text}` at offset {at} (write `$$` for a literal `$`)"
            ),
        }
    }
}

impl std::error::Error for InterpolateError {}

/// A string after interpolation, with the variables it used that were
/// unset and had no default (Compose warns that they become empty).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Interpolated {
    /// The text with every variable replaced.
    pub value: String,
    /// The variables that were unset and had no default, as they were met,
    /// so the caller can warn about each.
    pub unset: Vec<String>,
}

/// Where variable values come from.
pub trait Vars {
    /// The value of `name`, or `None` when it is unset. An empty value is
    /// set: `${X-d}` keeps it, `${X:-d}` does not.
    fn var(&self, name: &str) -> Option<&str>;
}

impl Vars for BTreeMap<String, String> {
    fn var(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

fn is_name_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

fn is_name(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

struct Scanner<'a> {
    text: &'a str,
    vars: &'a dyn Vars,
    unset: Vec<String>,
    /// Record each unset name once.
    dedupe: bool,
    /// A required variable left unset is recorded and empty, not an error.
    lenient: bool,
    /// Open `${` being read (bounded, so hostile input cannot exhaust the
    /// stack).
    depth: usize,
}

/// How deeply `${...}` may nest.
pub const MAX_DEPTH: usize = 200;

impl Scanner<'_> {
    fn invalid(&self, at: usize) -> InterpolateError {
        InterpolateError::Invalid {
            text: self.text.to_owned(),
            at,
        }
    }

    /// Reads a word from `*pos`: to the end of the text, or (`nested`) to
    /// the `}` closing the enclosing `${`, which is consumed. With `eval`
    /// false the word is only checked and skipped.
    fn word(
        &mut self,
        pos: &mut usize,
        nested: bool,
        eval: bool,
    ) -> Result<String, InterpolateError> {
        let b = self.text.as_bytes();
        let mut out = String::new();
        let mut lit = *pos;
        while *pos < b.len() {
            match b[*pos] {
                b'}' if nested => {
                    if eval {
                        out.push_str(&self.text[lit..*pos]);
                    }
                    *pos += 1;
                    return Ok(out);
                }
                b'$' => {
                    if eval {
                        out.push_str(&self.text[lit..*pos]);
                    }
                    let v = self.dollar(pos, eval)?;
                    out.push_str(&v);
                    lit = *pos;
                }
                _ => *pos += 1,
            }
        }
        if nested {
            return Err(self.invalid(self.text.len()));
        }
        if eval {
            out.push_str(&self.text[lit..]);
        }
        Ok(out)
    }

    /// At a `$`: one expansion, `*pos` moved past it.
    fn dollar(&mut self, pos: &mut usize, eval: bool) -> Result<String, InterpolateError> {
        let b = self.text.as_bytes();
        let start = *pos;
        match b.get(start + 1) {
            Some(b'$') => {
                *pos = start + 2;
                Ok("$".into())
            }
            Some(&c) if is_name_start(c) => {
                let mut end = start + 1;
                while end < b.len() && is_name(b[end]) {
                    end += 1;
                }
                *pos = end;
                let name = &self.text[start + 1..end];
                Ok(if eval {
                    self.plain(name)
                } else {
                    String::new()
                })
            }
            Some(b'{') => self.braced(pos, eval),
            _ => {
                *pos = start + 1;
                Ok("$".into())
            }
        }
    }

    fn plain(&mut self, name: &str) -> String {
        match self.vars.var(name) {
            Some(v) => v.to_owned(),
            None => {
                if !self.dedupe || !self.unset.iter().any(|u| u == name) {
                    self.unset.push(name.to_owned());
                }
                String::new()
            }
        }
    }

    /// `${NAME}` or `${NAME<op>word}`; `*pos` is at the `$`.
    fn braced(&mut self, pos: &mut usize, eval: bool) -> Result<String, InterpolateError> {
        if self.depth >= MAX_DEPTH {
            return Err(self.invalid(*pos));
        }
        self.depth += 1;
        let r = self.braced_inner(pos, eval);
        self.depth -= 1;
        r
    }

    fn braced_inner(&mut self, pos: &mut usize, eval: bool) -> Result<String, InterpolateError> {
        let b = self.text.as_bytes();
        let name_start = *pos + 2;
        if !b.get(name_start).copied().is_some_and(is_name_start) {
            return Err(self.invalid(name_start));
        }
        let mut end = name_start;
        while end < b.len() && is_name(b[end]) {
            end += 1;
        }
        let name = self.text[name_start..end].to_owned();
        let rest = &self.text[end..];
        let (op, len) = if rest.starts_with('}') {
            ("}", 1)
        } else {
            match ([":-", ":?", ":+", "-", "?", "+"])
                .into_iter()
                .find(|op| rest.starts_with(op))
            {
                Some(op) => (op, op.len()),
                None => return Err(self.invalid(end)),
            }
        };
        *pos = end + len;
        if op == "}" {
            return Ok(if eval {
                self.plain(&name)
            } else {
                String::new()
            });
        }
        let value = if eval {
            self.vars.var(&name).map(str::to_owned)
        } else {
            None
        };
        let set = value.is_some();
        let nonempty = value.as_deref().is_some_and(|v| !v.is_empty());
        // Which of the value and the word this form yields.
        let use_word = match op {
            ":-" | ":?" => !nonempty,
            "-" | "?" => !set,
            ":+" => nonempty,
            _ => set, // "+"
        };
        let word = self.word(pos, true, eval && use_word)?;
        if !eval {
            return Ok(String::new());
        }
        Ok(match op {
            ":?" | "?" if use_word && self.lenient => {
                if !self.dedupe || !self.unset.contains(&name) {
                    self.unset.push(name);
                }
                String::new()
            }
            ":?" | "?" if use_word => {
                return Err(InterpolateError::Required {
                    name,
                    message: word,
                })
            }
            ":+" | "+" if !use_word => String::new(),
            _ if use_word => word,
            _ => value.unwrap_or_default(),
        })
    }
}

/// Interpolates `text` with `vars`.
pub fn interpolate(text: &str, vars: &dyn Vars) -> Result<Interpolated, InterpolateError> {
    interpolate_with(text, vars, false)
}

/// [`interpolate`]; with `lenient`, a required variable (`${A:?e}`,
/// `${A?e}`) left unset is listed in `unset` and reads as empty instead
/// of failing, for checks made before every variable is known.
pub fn interpolate_with(
    text: &str,
    vars: &dyn Vars,
    lenient: bool,
) -> Result<Interpolated, InterpolateError> {
    let mut s = Scanner {
        text,
        vars,
        unset: Vec::new(),
        dedupe: true,
        lenient,
        depth: 0,
    };
    let mut pos = 0;
    let value = s.word(&mut pos, false, true)?;
    Ok(Interpolated {
        value,
        unset: s.unset,
    })
}

/// The variables `text` reads without a default of its own (`$A`, `${A}`,
/// `${A:?e}`, `${A?e}`), in order, once per reference. Defaults are read
/// as if every variable were unset, so names inside defaults count too.
/// Reading stops at the first malformed `${`.
pub fn undefaulted_vars(text: &str) -> Vec<String> {
    struct Unset;
    impl Vars for Unset {
        fn var(&self, _: &str) -> Option<&str> {
            None
        }
    }
    let mut s = Scanner {
        text,
        vars: &Unset,
        unset: Vec::new(),
        dedupe: false,
        lenient: false,
        depth: 0,
    };
    let b = text.as_bytes();
    let mut pos = 0;
    // Like `word`, but a required variable is recorded rather than failing.
    while pos < b.len() {
        if b[pos] != b'$' {
            pos += 1;
            continue;
        }
        let before = pos;
        match s.dollar(&mut pos, true) {
            Ok(_) => {}
            Err(InterpolateError::Required { name, .. }) => {
                s.unset.push(name);
                // Skip the rest of this `${...}` without evaluating it.
                let mut p = before;
                if s.dollar(&mut p, false).is_err() {
                    break;
                }
                pos = p;
            }
            Err(InterpolateError::Invalid { .. }) => break,
        }
    }
    s.unset
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> BTreeMap<String, String> {
        BTreeMap::from([
            ("A".to_string(), "1".to_string()),
            ("E".to_string(), String::new()),
            ("X".to_string(), "x".to_string()),
        ])
    }

    fn i(s: &str) -> String {
        interpolate(s, &vars()).unwrap().value
    }

    #[test]
    fn every_form() {
        assert_eq!(i("x$A-${A}"), "x1-1");
        assert_eq!(i("$$A costs $$5"), "$A costs $5");
        assert_eq!(i("${B:-two}|${E:-d}|${E-d}|${B-d}"), "two|d||d");
        assert_eq!(i("${A:+set}${B:+no}${E:+no}${E+yes}${B+no}"), "setyes");
        assert_eq!(i("end$"), "end$");
        assert_eq!(i("a $ b $1"), "a $ b $1");
    }

    #[test]
    fn nested_forms() {
        assert_eq!(i("${NOPE:-${X}}"), "x");
        assert_eq!(i("${A:+x-${A}}"), "x-1");
        assert_eq!(i("${N1:-${N2:-${N3:-${X}deep}}}"), "xdeep");
        assert_eq!(i("${A:-${UNUSED:?never}}"), "1");
        assert_eq!(i("${N:-$$}"), "$");
        assert_eq!(i("${N:-a}b}"), "ab}");
    }

    #[test]
    fn errors() {
        let e = interpolate("${MISSING:?set it}", &vars()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "required variable `MISSING` is missing a value: set it"
        );
        assert!(interpolate("${E:?e}", &vars()).is_err());
        assert_eq!(i("${E?e}"), "");
        assert!(interpolate("${unterminated", &vars()).is_err());
        assert!(interpolate("${}", &vars()).is_err());
        assert!(interpolate("${A B}", &vars()).is_err());
        assert!(interpolate("${N:-${unterminated}", &vars()).is_err());
        let deep = "${A:-".repeat(MAX_DEPTH + 1) + &"}".repeat(MAX_DEPTH + 1);
        assert!(interpolate(&deep, &vars()).is_err());
    }

    #[test]
    fn unset_variables_are_listed() {
        let r = interpolate("$NOPE ${NOPE} ${B:-x} ${A}", &vars()).unwrap();
        assert_eq!(r.unset, ["NOPE"]);
        assert_eq!(undefaulted_vars("${A:?must be set}"), ["A"]);
        assert_eq!(undefaulted_vars("$$A ${B:-${C}} $D $D"), ["C", "D", "D"]);
    }
}
