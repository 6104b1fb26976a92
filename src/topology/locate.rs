//! YAML text → a [`serde_json::Value`] plus an [`Index`] from key path to line:column, so that
//! every later check (serde, interpolation, semantics) can point at the spot in the file.
//!
//! Scalar typing is deliberately simple: a plain `~`, `null` or empty scalar is null; every
//! other scalar (`true`, `5`, `1.5`, quoted or not) is a string. The typed fields (booleans,
//! durations, addresses) are parsed later, after `${VAR}` interpolation, with their own messages.
//!
//! Paths look like `clusters.onprem.sasl.password_file` and `flows[0].topics[1]` (the same
//! shape `serde_path_to_error` prints), the root is the empty string.

use std::collections::HashMap;
use std::path::Path;
use std::str::Chars;

use serde_json::{Map, Value};
use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use super::error::{Location, TopologyError};

/// A 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pos {
    pub line: usize,
    pub col: usize,
}

impl Pos {
    /// The top of the file.
    pub const START: Pos = Pos { line: 1, col: 1 };

    fn of(mark: Marker) -> Pos {
        Pos {
            line: mark.line().max(1),
            col: mark.col() + 1,
        }
    }
}

/// Where one node of the document is.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Spot {
    /// The key naming the node (absent for list items and the root).
    pub key: Option<Pos>,
    /// The start of the node's value.
    pub value: Pos,
}

/// Key path → position, for every node of the document.
#[derive(Debug, Default)]
pub(crate) struct Index {
    spots: HashMap<String, Spot>,
}

impl Index {
    /// The spot of `path`, or of its nearest ancestor that has one.
    fn nearest(&self, path: &str) -> Option<&Spot> {
        let mut p = path;
        loop {
            if let Some(s) = self.spots.get(p) {
                return Some(s);
            }
            if p.is_empty() {
                return None;
            }
            p = parent_path(p);
        }
    }

    /// Where the value at `path` starts (or its nearest ancestor's).
    pub fn value(&self, path: &str) -> Pos {
        self.nearest(path).map_or(Pos::START, |s| s.value)
    }

    /// Where the key naming `path` is; the value's position for list items.
    pub fn key(&self, path: &str) -> Pos {
        self.nearest(path)
            .map_or(Pos::START, |s| s.key.unwrap_or(s.value))
    }

    fn insert(&mut self, path: &str, spot: Spot) {
        self.spots.insert(path.to_string(), spot);
    }
}

/// `a.b` → `a`, `a[3]` → `a`, `a` → ``.
pub(crate) fn parent_path(path: &str) -> &str {
    match path.rfind(['.', '[']) {
        Some(i) => &path[..i],
        None => "",
    }
}

/// `parent` + `.key` (or just `key` at the root).
pub(crate) fn child(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

/// `parent[i]`.
pub(crate) fn item(parent: &str, i: usize) -> String {
    format!("{parent}[{i}]")
}

/// Parses `text` (one YAML document) into a JSON value and its position index.
pub(crate) fn parse(file: &Path, text: &str) -> Result<(Value, Index), TopologyError> {
    let b = Builder {
        file,
        parser: Parser::new_from_str(text),
        index: Index::default(),
        anchors: HashMap::new(),
    };
    b.document()
}

struct Builder<'a> {
    file: &'a Path,
    parser: Parser<Chars<'a>>,
    index: Index,
    /// Anchored nodes by anchor id, for `*alias` references.
    anchors: HashMap<usize, Value>,
}

impl Builder<'_> {
    fn at(&self, pos: Pos) -> Location {
        Location {
            file: self.file.to_path_buf(),
            line: pos.line,
            col: pos.col,
        }
    }

    fn next(&mut self) -> Result<(Event, Marker), TopologyError> {
        self.parser.next_token().map_err(|e| TopologyError::Syntax {
            at: self.at(Pos::of(*e.marker())),
            message: e.info().to_string(),
        })
    }

    fn document(mut self) -> Result<(Value, Index), TopologyError> {
        let mut root = None;
        loop {
            let (ev, mark) = self.next()?;
            match ev {
                Event::StreamStart | Event::DocumentEnd | Event::Nothing => {}
                Event::StreamEnd => break,
                Event::DocumentStart if root.is_some() => {
                    return Err(TopologyError::Invalid {
                        at: self.at(Pos::of(mark)),
                        message: "a second YAML document (`---`): the topology must be one \
                                  document"
                            .to_string(),
                    });
                }
                Event::DocumentStart => {
                    let (ev, mark) = self.next()?;
                    root = Some(self.node(ev, mark, "", None)?);
                }
                _ => {
                    return Err(TopologyError::Syntax {
                        at: self.at(Pos::of(mark)),
                        message: "unexpected content outside a document".to_string(),
                    })
                }
            }
        }
        let root = root.unwrap_or(Value::Null);
        if !self.index.spots.contains_key("") {
            self.index.insert(
                "",
                Spot {
                    key: None,
                    value: Pos::START,
                },
            );
        }
        Ok((root, self.index))
    }

    /// Reads the node that starts with `ev`, records it (and its children) under `path`.
    fn node(
        &mut self,
        ev: Event,
        mark: Marker,
        path: &str,
        key: Option<Pos>,
    ) -> Result<Value, TopologyError> {
        let (value, pos, anchor) = match ev {
            Event::Scalar(s, style, anchor, _tag) => {
                let is_null = style == TScalarStyle::Plain
                    && matches!(s.as_str(), "" | "~" | "null" | "Null" | "NULL");
                // An empty value's marker points at whatever follows; the key is more useful.
                let pos = match (s.is_empty() && style == TScalarStyle::Plain, key) {
                    (true, Some(k)) => k,
                    _ => Pos::of(mark),
                };
                let v = if is_null {
                    Value::Null
                } else {
                    Value::String(s)
                };
                (v, pos, anchor)
            }
            Event::SequenceStart(anchor, _) => {
                let pos = Pos::of(mark);
                let mut items = Vec::new();
                loop {
                    let (ev, mark) = self.next()?;
                    if ev == Event::SequenceEnd {
                        break;
                    }
                    let p = item(path, items.len());
                    items.push(self.node(ev, mark, &p, None)?);
                }
                (Value::Array(items), pos, anchor)
            }
            Event::MappingStart(anchor, _) => self.mapping(mark, anchor, path)?,
            Event::Alias(id) => {
                let v = self
                    .anchors
                    .get(&id)
                    .cloned()
                    .ok_or_else(|| TopologyError::Syntax {
                        at: self.at(Pos::of(mark)),
                        message: "alias to an unknown anchor".to_string(),
                    })?;
                (v, Pos::of(mark), 0)
            }
            other => {
                return Err(TopologyError::Syntax {
                    at: self.at(Pos::of(mark)),
                    message: format!("unexpected YAML event {other:?}"),
                })
            }
        };
        self.index.insert(path, Spot { key, value: pos });
        if anchor > 0 {
            self.anchors.insert(anchor, value.clone());
        }
        Ok(value)
    }

    fn mapping(
        &mut self,
        start: Marker,
        anchor: usize,
        path: &str,
    ) -> Result<(Value, Pos, usize), TopologyError> {
        let mut map = Map::new();
        // A block mapping's start marker lands after its first key; use the first key instead.
        let mut pos = Pos::of(start);
        let mut first = true;
        loop {
            let (ev, mark) = self.next()?;
            if ev == Event::MappingEnd {
                break;
            }
            let key_pos = Pos::of(mark);
            if first && mark.index() < start.index() {
                pos = key_pos;
            }
            first = false;
            let name = match ev {
                Event::Scalar(s, ..) => s,
                _ => {
                    return Err(TopologyError::Invalid {
                        at: self.at(key_pos),
                        message: format!(
                            "a key in {} is a list or mapping; keys must be plain strings",
                            if path.is_empty() {
                                "the top level"
                            } else {
                                path
                            }
                        ),
                    })
                }
            };
            let p = child(path, &name);
            if map.contains_key(&name) {
                return Err(TopologyError::Invalid {
                    at: self.at(key_pos),
                    message: format!("duplicate key `{name}` (`{p}` is already set above)"),
                });
            }
            let (ev, mark) = self.next()?;
            let v = self.node(ev, mark, &p, Some(key_pos))?;
            map.insert(name, v);
        }
        Ok((Value::Object(map), pos, anchor))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str) -> (Value, Index) {
        parse(Path::new("t.yaml"), text).expect("parses")
    }

    #[test]
    fn scalars_are_strings_or_null() {
        let (v, _) = doc("a: true\nb: 5\nc: 'x'\nd:\ne: ~\nf: \"null\"\n");
        assert_eq!(
            v,
            serde_json::json!({"a": "true", "b": "5", "c": "x", "d": null, "e": null, "f": "null"})
        );
    }

    #[test]
    fn positions_of_keys_and_values() {
        let text = "clusters:\n  onprem:\n    bootstrap_servers: \"x:1\"\nflows:\n  - topics: [a, 'b']\n    groups:\n";
        let (_, ix) = doc(text);
        assert_eq!(ix.key("clusters.onprem"), Pos { line: 2, col: 3 });
        assert_eq!(ix.value("clusters.onprem"), Pos { line: 3, col: 5 });
        assert_eq!(
            ix.value("clusters.onprem.bootstrap_servers"),
            Pos { line: 3, col: 24 }
        );
        assert_eq!(ix.value("flows[0].topics[1]"), Pos { line: 5, col: 17 });
        assert_eq!(ix.value("flows[0]"), Pos { line: 5, col: 5 });
        // Empty value: points at the key.
        assert_eq!(ix.value("flows[0].groups"), Pos { line: 6, col: 5 });
        // Unknown paths fall back to the nearest ancestor.
        assert_eq!(ix.value("flows[0].topics[7]"), Pos { line: 5, col: 13 });
        assert_eq!(ix.value("nothing.here"), Pos::START);
    }

    #[test]
    fn syntax_errors_have_positions() {
        let e = parse(Path::new("t.yaml"), "a: b\n c: d\n").unwrap_err();
        assert!(e.to_string().starts_with("t.yaml:2:"), "{e}");
        let e = parse(Path::new("t.yaml"), "a: [b\n").unwrap_err();
        assert!(e.to_string().contains("YAML syntax error"), "{e}");
    }

    #[test]
    fn duplicate_keys_and_documents_are_errors() {
        let e = parse(Path::new("t.yaml"), "a: 1\nb:\n  c: 1\n  c: 2\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "t.yaml:4:3: duplicate key `c` (`b.c` is already set above)"
        );
        let e = parse(Path::new("t.yaml"), "a: 1\n---\nb: 2\n").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("t.yaml:2:1: a second YAML document"),
            "{e}"
        );
    }

    #[test]
    fn aliases_copy_the_anchored_node() {
        let (v, _) = doc("a: &x [1, 2]\nb: *x\n");
        assert_eq!(v["b"], serde_json::json!(["1", "2"]));
    }

    #[test]
    fn parent_paths() {
        assert_eq!(parent_path("a.b[2]"), "a.b");
        assert_eq!(parent_path("a.b"), "a");
        assert_eq!(parent_path("a"), "");
    }
}
