//! A multi-document YAML file (`---` between documents) read into values that know the line
//! of every key path, through the topology's own reader ([`crate::topology::locate`]).

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::ImportError;
use crate::topology::locate::{self, Index};

/// One document of the file.
#[derive(Debug)]
pub(crate) struct Doc {
    /// The file, for messages.
    pub file: PathBuf,
    /// The document (every scalar a string or null).
    pub value: Value,
    index: Index,
}

/// Splits `text` at `---` lines and parses each document; lines stay the file's lines.
pub(crate) fn documents(file: &Path, text: &str) -> Result<Vec<Doc>, ImportError> {
    let mut docs = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    let mut first_line = 0;
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let marker = line.starts_with("---") && line[3..].trim().is_empty();
        let end = line.starts_with("...") && line[3..].trim().is_empty();
        if marker || end {
            parse_one(file, first_line, &current, &mut docs)?;
            current.clear();
            first_line = i + 1;
            continue;
        }
        current.push(line);
    }
    parse_one(file, first_line, &current, &mut docs)?;
    Ok(docs)
}

/// Parses the lines of one document, padded with blank lines so that line numbers match.
fn parse_one(
    file: &Path,
    first_line: usize,
    lines: &[&str],
    docs: &mut Vec<Doc>,
) -> Result<(), ImportError> {
    if lines
        .iter()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
    {
        return Ok(());
    }
    let text = "\n".repeat(first_line) + &lines.join("\n") + "\n";
    let (value, index) =
        locate::parse(file, &text).map_err(|e| ImportError::Yaml(e.to_string()))?;
    docs.push(Doc {
        file: file.to_path_buf(),
        value,
        index,
    });
    Ok(())
}

impl Doc {
    /// `kind:` of a Kubernetes resource.
    pub fn kind(&self) -> Option<&str> {
        self.value.get("kind").and_then(Value::as_str)
    }

    /// `metadata.name`.
    pub fn name(&self) -> Option<&str> {
        self.value.pointer("/metadata/name").and_then(Value::as_str)
    }

    /// Whether this looks like a hubmirror topology.
    pub fn is_topology(&self) -> bool {
        self.value.get("clusters").is_some() && self.value.get("flows").is_some()
    }

    /// The root node.
    pub fn root(&self) -> Node<'_> {
        Node {
            doc: self,
            value: &self.value,
            path: String::new(),
        }
    }
}

/// A node of a [`Doc`] and its path (`spec.clusters[1].alias`).
#[derive(Debug, Clone)]
pub(crate) struct Node<'a> {
    doc: &'a Doc,
    /// The value.
    pub value: &'a Value,
    /// Its path.
    pub path: String,
}

impl<'a> Node<'a> {
    /// The 1-based line of this node's key (or of its nearest ancestor).
    pub fn line(&self) -> usize {
        self.doc.index.key(&self.path).line
    }

    /// An error about this node: `message` says what is wrong and the fix.
    pub fn error(&self, message: impl Into<String>) -> ImportError {
        ImportError::Field {
            file: self.doc.file.clone(),
            line: self.line(),
            field: self.path.clone(),
            message: message.into(),
        }
    }

    fn child_path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// The child `key`, absent when missing or null.
    pub fn get(&self, key: &str) -> Option<Node<'a>> {
        let value = self.value.get(key).filter(|v| !v.is_null())?;
        Some(Node {
            doc: self.doc,
            value,
            path: self.child_path(key),
        })
    }

    /// The child `key`, or an error naming it with `fix`.
    pub fn require(&self, key: &str, fix: &str) -> Result<Node<'a>, ImportError> {
        self.get(key).ok_or_else(|| self.missing(key, fix))
    }

    /// The error for a missing child `key`, with `fix`.
    pub fn missing(&self, key: &str, fix: &str) -> ImportError {
        ImportError::Field {
            file: self.doc.file.clone(),
            line: self.line(),
            field: self.child_path(key),
            message: format!("missing; {fix}"),
        }
    }

    /// This node as a non-empty string.
    pub fn str(&self) -> Result<&'a str, ImportError> {
        match self.value {
            Value::String(s) if !s.trim().is_empty() => Ok(s.as_str()),
            Value::String(_) => Err(self.error("is empty; give it a value")),
            other => Err(self.error(format!("must be a string, found {}", kind(other)))),
        }
    }

    /// The child `key` as a string, if present.
    pub fn opt_str(&self, key: &str) -> Result<Option<&'a str>, ImportError> {
        self.get(key).map(|n| n.str()).transpose()
    }

    /// The child `key` as a required string.
    pub fn req_str(&self, key: &str, fix: &str) -> Result<&'a str, ImportError> {
        self.require(key, fix)?.str()
    }

    /// This node's items (an error unless it is a list).
    pub fn items(&self) -> Result<Vec<Node<'a>>, ImportError> {
        match self.value {
            Value::Array(items) => Ok(items
                .iter()
                .enumerate()
                .map(|(i, value)| Node {
                    doc: self.doc,
                    value,
                    path: format!("{}[{i}]", self.path),
                })
                .collect()),
            other => Err(self.error(format!("must be a list, found {}", kind(other)))),
        }
    }

    /// This node's entries (an error unless it is a mapping).
    pub fn entries(&self) -> Result<Vec<(String, Node<'a>)>, ImportError> {
        match self.value {
            Value::Object(map) => Ok(map
                .iter()
                .map(|(k, value)| {
                    let node = Node {
                        doc: self.doc,
                        value,
                        path: self.child_path(k),
                    };
                    (k.clone(), node)
                })
                .collect()),
            other => Err(self.error(format!("must be a mapping, found {}", kind(other)))),
        }
    }

    /// The value as printed in a note: a scalar as it is, a list or mapping as `{...}`.
    pub fn shown(&self) -> String {
        match self.value {
            Value::String(s) => s.clone(),
            Value::Array(a) if a.is_empty() => "[]".to_string(),
            Value::Array(_) => "[...]".to_string(),
            Value::Object(_) => "{...}".to_string(),
            _ => String::new(),
        }
    }
}

/// The name of a value's shape, for messages (never the value).
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) | Value::Number(_) | Value::String(_) => "a scalar",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_keep_the_file_lines() {
        let text = "kind: Secret\nmetadata:\n  name: s\n---\n# only a comment\n---\napiVersion: v1\nkind: X\nspec:\n  a: [1]\n";
        let docs = documents(Path::new("f.yaml"), text).expect("parses");
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].name(), Some("s"));
        let spec = docs[1].root().get("spec").expect("spec");
        let a = spec.get("a").expect("a");
        assert_eq!(a.line(), 10);
        let e = spec.req_str("b", "set b").unwrap_err();
        assert_eq!(e.to_string(), "f.yaml:9: spec.b: missing; set b");
        let e = a.str().unwrap_err();
        assert_eq!(
            e.to_string(),
            "f.yaml:10: spec.a: must be a string, found a list"
        );
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let e = documents(Path::new("f.yaml"), "a: 1\n---\nb: [c\n").unwrap_err();
        assert!(e.to_string().starts_with("f.yaml:"), "{e}");
    }
}
