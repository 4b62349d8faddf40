//! YAML text to the [`Node`] tree, and the tree to the typed
//! [`ComposeFile`].

use std::fmt;

use crate::error::LoadError;
use crate::model::ComposeFile;
use crate::node::Node;

/// A file that YAML or the model refused: the parser's message, which
/// carries the line and column when the parser knows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub String);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseError {}

fn saphyr_error(e: serde_saphyr::Error) -> ParseError {
    // The parser renders a source snippet after its first line; the first
    // line alone ("line L column C: ...") is what fits a report.
    let text = e.to_string();
    let first = text.lines().next().unwrap_or_default();
    let first = first.strip_prefix("error: ").unwrap_or(first);
    // The parser's duplicate-key message names an option of the parser,
    // which means nothing to the file's author: say which key repeats.
    if let Some((at, rest)) = first.split_once("duplicate mapping key: ") {
        let key = rest
            .split(", set DuplicateKeyPolicy")
            .next()
            .unwrap_or(rest);
        return ParseError(format!("{at}duplicate key \"{key}\""));
    }
    ParseError(first.to_owned())
}

/// Parses YAML text into the ordered tree; the document must be a
/// mapping. YAML 1.2 booleans only, as Compose reads files: `command: [y]`
/// and `restart: no` are strings, not booleans.
pub fn parse_tree(content: &[u8]) -> Result<Node, ParseError> {
    let options = serde_saphyr::options! { strict_booleans: true };
    let tree: Node =
        serde_saphyr::from_slice_with_options(content, options).map_err(saphyr_error)?;
    match tree {
        Node::Map(_) => Ok(tree),
        // An empty document is an empty file.
        Node::Null => Ok(Node::Map(Vec::new())),
        _ => Err(ParseError(
            "a Compose file must be a mapping with a `services` key".into(),
        )),
    }
}

fn typed_raw(tree: &Node) -> Result<ComposeFile, String> {
    // Through JSON text, which keeps mapping order (a JSON value would
    // sort it); the tree came from YAML, so every value fits.
    let json = serde_json::to_string(tree).map_err(|e| e.to_string())?;
    serde_json::from_str(&json).map_err(|e| {
        let msg = e.to_string();
        // serde_json's position is in the JSON text, which the user never
        // saw; the message before it says what was expected.
        match msg.rfind(" at line ") {
            Some(i) => msg[..i].to_owned(),
            None => msg,
        }
    })
}

/// The innermost field of `tree` whose value does not fit the model:
/// each top-level key alone, then each service, each of its keys, each
/// item of a list, until the smallest failing piece.
fn locate(tree: &Node) -> Option<(Vec<String>, String)> {
    let one = |k: &str, v: &Node| Node::Map(vec![(k.to_owned(), v.clone())]);
    for (key, value) in tree.entries() {
        let Err(msg) = typed_raw(&one(key, value)) else {
            continue;
        };
        let Node::Map(services) = value else {
            return Some((vec![key.clone()], msg));
        };
        if key != "services" {
            return Some((vec![key.clone()], msg));
        }
        for (name, svc) in services {
            let wrap = |n: Node| one("services", &one(name, &n));
            let Err(msg) = typed_raw(&wrap(svc.clone())) else {
                continue;
            };
            let mut at = vec!["services".to_owned(), name.clone()];
            let Node::Map(fields) = svc else {
                return Some((at, msg));
            };
            for (k, v) in fields {
                let Err(msg) = typed_raw(&wrap(one(k, v))) else {
                    continue;
                };
                at.push(k.clone());
                if let Node::Seq(items) = v {
                    for (i, item) in items.iter().enumerate() {
                        let single = Node::Seq(vec![item.clone()]);
                        if let Err(msg) = typed_raw(&wrap(one(k, &single))) {
                            at.push(format!("[{i}]"));
                            return Some((at, msg));
                        }
                    }
                }
                return Some((at, msg));
            }
            return Some((at, msg));
        }
        return Some((vec![key.clone()], msg));
    }
    None
}

/// The typed view of a tree. A value of the wrong shape is reported at
/// its path with what was expected.
pub fn typed(tree: &Node) -> Result<ComposeFile, LoadError> {
    typed_raw(tree).map_err(|msg| match locate(tree) {
        Some((at, inner)) if inner.starts_with("invalid") || inner.contains("expected") => {
            LoadError::at(&at, inner)
        }
        Some((at, inner)) => LoadError::at(&at, format!("expected {inner}")),
        None => LoadError::new("", msg),
    })
}

/// Parses one Compose file, without interpolation or merging, into its
/// typed model and its tree.
pub fn parse(content: &[u8]) -> Result<(ComposeFile, Node), ParseError> {
    let tree = parse_tree(content)?;
    if tree.entries().is_empty() {
        return Err(ParseError(
            "a Compose file must be a mapping with a `services` key".into(),
        ));
    }
    let file = typed(&tree).map_err(|e| ParseError(e.to_string()))?;
    Ok((file, tree))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 19: a repeated key is named with its line and column, without
    /// the parser's own option names.
    #[test]
    fn a_duplicate_key_is_named_with_its_position() {
        let e = parse_tree(b"services:\n  a:\n    image: x\n    image: y\n").unwrap_err();
        assert_eq!(e.0, "line 4 column 5: duplicate key \"image\"");
    }
}
