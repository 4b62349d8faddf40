//! `KEY=VALUE` flag values (`--env`, `--secret`), split in one place.
//!
//! They are split after parsing rather than by a clap value parser so that
//! a malformed pair is reported like every other `berth` error: one line,
//! `berth: --env "X" must be KEY=VALUE`.

use std::fmt;

/// A flag value that is not a usable pair.
#[derive(Debug)]
pub(crate) struct BadPair {
    flag: &'static str,
    item: String,
    /// Whether a bare `NAME` was allowed (and missing from the environment).
    from_env: bool,
}

impl fmt::Display for BadPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (flag, item) = (self.flag, &self.item);
        if self.from_env {
            write!(
                f,
                "{flag} {item}: give NAME=VALUE, or set {item} in this environment"
            )
        } else {
            write!(f, "{flag} {item:?} must be KEY=VALUE")
        }
    }
}

/// Splits each `KEY=VALUE` of `flag` at its first `=` (the value may hold
/// more), in order; a key repeated later wins where the caller collects
/// into a map.
///
/// # Errors
/// The first item without `=`.
pub(crate) fn pairs(
    flag: &'static str,
    items: &[String],
) -> Result<Vec<(String, String)>, BadPair> {
    items
        .iter()
        .map(|item| {
            split(item).ok_or_else(|| BadPair {
                flag,
                item: item.clone(),
                from_env: false,
            })
        })
        .collect()
}

/// As [`pairs`], but a bare `NAME` takes its value from this process's
/// environment (so a secret need not appear on the command line).
///
/// # Errors
/// The first bare `NAME` that is not set here.
pub(crate) fn pairs_or_env(
    flag: &'static str,
    items: &[String],
) -> Result<Vec<(String, String)>, BadPair> {
    items
        .iter()
        .map(|item| {
            split(item)
                .or_else(|| Some((item.clone(), std::env::var(item).ok()?)))
                .ok_or_else(|| BadPair {
                    flag,
                    item: item.clone(),
                    from_env: true,
                })
        })
        .collect()
}

fn split(item: &str) -> Option<(String, String)> {
    item.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn pairs_split_at_the_first_equals_sign() {
        let p = pairs("--env", &v(&["A=1", "B=x=y", "C="])).unwrap();
        assert_eq!(
            p,
            [("A", "1"), ("B", "x=y"), ("C", "")].map(|(k, v)| (k.to_string(), v.to_string()))
        );
        let e = pairs("--env", &v(&["A=1", "NOEQUALS"])).unwrap_err();
        assert_eq!(e.to_string(), "--env \"NOEQUALS\" must be KEY=VALUE");
    }

    #[test]
    fn a_bare_name_comes_from_the_environment() {
        let p = pairs_or_env("--secret", &v(&["PATH"])).unwrap();
        assert_eq!(p[0].0, "PATH");
        assert_eq!(p[0].1, std::env::var("PATH").unwrap());
        let e = pairs_or_env("--secret", &v(&["BERTH_TEST_SURELY_UNSET_9"])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--secret BERTH_TEST_SURELY_UNSET_9: give NAME=VALUE, or set \
             BERTH_TEST_SURELY_UNSET_9 in this environment"
        );
    }
}
