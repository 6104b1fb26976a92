//! Errors of loading `topology.yaml`. Every one displays as `<file>:<line>:<col>: <message>`
//! (1-based), so editors and scripts can jump to the spot, and none contains a secret value.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// A place in the topology file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file, as the user named it.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column (in characters).
    pub col: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.col)
    }
}

/// Why `topology.yaml` could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TopologyError {
    /// The topology file itself could not be read (reported at 1:1).
    #[error("{at}: cannot read the topology file: {source}")]
    ReadFile {
        at: Location,
        #[source]
        source: io::Error,
    },

    /// The YAML is malformed.
    #[error("{at}: YAML syntax error: {message}")]
    Syntax { at: Location, message: String },

    /// A key that hubmirror does not know (usually a typo).
    #[error("{at}: unknown key `{key}` {} (expected one of: {expected})", place(.parent))]
    UnknownKey {
        at: Location,
        /// The unknown key.
        key: String,
        /// Path of the mapping it is in (empty at the top level).
        parent: String,
        /// The keys allowed there, comma-separated.
        expected: String,
    },

    /// A required key is absent.
    #[error("{at}: missing key `{key}` {}{hint}", place(.parent))]
    MissingKey {
        at: Location,
        /// The missing key.
        key: String,
        /// Path of the mapping it belongs in (empty at the top level).
        parent: String,
        /// Extra advice, starting with `; ` when present.
        hint: String,
    },

    /// A value of the wrong shape (a list where a string belongs, ...).
    #[error("{at}: `{path}` must be {expected}, found {found}")]
    WrongType {
        at: Location,
        /// Key path of the value.
        path: String,
        /// What belongs there.
        expected: String,
        /// What was found (a kind, never the value itself).
        found: String,
    },

    /// `${VAR}` names a variable that is not set.
    #[error("{at}: environment variable {name} is not set (used in {path})")]
    MissingVariable {
        at: Location,
        /// The variable.
        name: String,
        /// Key path of the string that uses it.
        path: String,
    },

    /// A file named in the topology (`*_file`, `ca_file`) cannot be read.
    #[error("{at}: cannot read `{}` (from {path}): {source}", file.display())]
    ReadNamedFile {
        at: Location,
        /// Key path, e.g. `clusters.onprem.sasl.password_file`.
        path: String,
        /// The file named there (resolved against the topology file's directory).
        file: PathBuf,
        #[source]
        source: io::Error,
    },

    /// Anything else that is well-formed YAML but not a valid topology.
    #[error("{at}: {message}")]
    Invalid { at: Location, message: String },
}

impl TopologyError {
    /// Where in the file the error is.
    pub fn location(&self) -> &Location {
        match self {
            TopologyError::ReadFile { at, .. }
            | TopologyError::Syntax { at, .. }
            | TopologyError::UnknownKey { at, .. }
            | TopologyError::MissingKey { at, .. }
            | TopologyError::WrongType { at, .. }
            | TopologyError::MissingVariable { at, .. }
            | TopologyError::ReadNamedFile { at, .. }
            | TopologyError::Invalid { at, .. } => at,
        }
    }
}

/// `in clusters.onprem`, or `at the top level` for the root mapping.
fn place(parent: &str) -> String {
    if parent.is_empty() {
        "at the top level".to_string()
    } else {
        format!("in {parent}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> Location {
        Location {
            file: PathBuf::from("t.yaml"),
            line: 3,
            col: 5,
        }
    }

    #[test]
    fn displays_with_location_prefix() {
        let e = TopologyError::UnknownKey {
            at: at(),
            key: "foo".into(),
            parent: "clusters.onprem".into(),
            expected: "bootstrap_servers, tls".into(),
        };
        assert_eq!(
            e.to_string(),
            "t.yaml:3:5: unknown key `foo` in clusters.onprem (expected one of: bootstrap_servers, tls)"
        );
        let e = TopologyError::MissingKey {
            at: at(),
            key: "flows".into(),
            parent: String::new(),
            hint: String::new(),
        };
        assert_eq!(
            e.to_string(),
            "t.yaml:3:5: missing key `flows` at the top level"
        );
        assert_eq!(e.location().line, 3);
    }
}
