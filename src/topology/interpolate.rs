//! `${VAR}` substitution in every string value of the parsed document.
//!
//! Substitution runs after YAML parsing, so a variable's value is never YAML: a value
//! containing `: `, `#` or quotes stays one string.
//!
//! Syntax inside any string value (keys are never substituted):
//! - `${NAME}` — the environment variable `NAME` (`[A-Za-z_][A-Za-z0-9_]*`); unset is an error.
//! - `${NAME:-fallback}` — `NAME` if set and non-empty, else the literal `fallback`.
//! - `$${` — a literal `${` (so `$${HOME}` stays `${HOME}`).
//! - any other `$` is kept as it is.

use std::path::Path;

use serde_json::Value;

use super::error::{Location, TopologyError};
use super::locate::{child, item, Index};

/// Why one string could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ExpandError {
    /// `${NAME}` with `NAME` unset.
    Missing(String),
    /// `${` without a closing `}`.
    Unterminated,
    /// `${...}` whose name is not a valid variable name.
    BadName(String),
}

/// Expands the `${...}` references in `s`, looking variables up with `env`.
pub(crate) fn expand(s: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, ExpandError> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i..];
        if let Some(tail) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("${") {
            let end = tail.find('}').ok_or(ExpandError::Unterminated)?;
            let body = &tail[..end];
            let (name, fallback) = match body.split_once(":-") {
                Some((n, f)) => (n, Some(f)),
                None => (body, None),
            };
            if !valid_name(name) {
                return Err(ExpandError::BadName(name.to_string()));
            }
            match (env(name), fallback) {
                (Some(v), Some(f)) if v.is_empty() => out.push_str(f),
                (Some(v), _) => out.push_str(&v),
                (None, Some(f)) => out.push_str(f),
                (None, None) => return Err(ExpandError::Missing(name.to_string())),
            }
            rest = &tail[end + 1..];
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// Expands every string in `value` (at `path`) in place; errors point at the string's value.
pub(crate) fn interpolate(
    value: &mut Value,
    path: &str,
    file: &Path,
    index: &Index,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), TopologyError> {
    match value {
        Value::String(s) => {
            if s.contains('$') {
                *s = expand(s, env).map_err(|e| to_error(e, path, file, index))?;
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter_mut().enumerate() {
                interpolate(v, &item(path, i), file, index, env)?;
            }
        }
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                interpolate(v, &child(path, k), file, index, env)?;
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
    Ok(())
}

fn to_error(e: ExpandError, path: &str, file: &Path, index: &Index) -> TopologyError {
    let pos = index.value(path);
    let at = Location {
        file: file.to_path_buf(),
        line: pos.line,
        col: pos.col,
    };
    match e {
        ExpandError::Missing(name) => TopologyError::MissingVariable {
            at,
            name,
            path: path.to_string(),
        },
        ExpandError::Unterminated => TopologyError::Invalid {
            at,
            message: format!(
                "`${{` without a closing `}}` in {path} (write `$${{` for a literal `${{`)"
            ),
        },
        ExpandError::BadName(name) => TopologyError::Invalid {
            at,
            message: format!(
                "`${{{name}}}` in {path} is not a variable reference: names are letters, digits \
                 and `_` (write `$${{` for a literal `${{`)"
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "A" => Some("alpha".into()),
            "EMPTY" => Some(String::new()),
            "TRICKY" => Some("x: y # z ${A}".into()),
            _ => None,
        }
    }

    #[test]
    fn expansion_table() {
        let cases: &[(&str, Result<&str, ExpandError>)] = &[
            ("plain", Ok("plain")),
            ("${A}", Ok("alpha")),
            ("pre-${A}-post", Ok("pre-alpha-post")),
            ("${A}${A}", Ok("alphaalpha")),
            ("$${A}", Ok("${A}")),
            ("cost $5", Ok("cost $5")),
            ("end$", Ok("end$")),
            ("${TRICKY}", Ok("x: y # z ${A}")),
            ("${NOPE:-dflt}", Ok("dflt")),
            ("${EMPTY:-dflt}", Ok("dflt")),
            ("${A:-dflt}", Ok("alpha")),
            ("${EMPTY}", Ok("")),
            ("${NOPE}", Err(ExpandError::Missing("NOPE".into()))),
            ("${A", Err(ExpandError::Unterminated)),
            ("${1X}", Err(ExpandError::BadName("1X".into()))),
            ("${}", Err(ExpandError::BadName(String::new()))),
        ];
        for (input, want) in cases {
            let got = expand(input, &env);
            assert_eq!(got, want.clone().map(str::to_string), "input {input:?}");
        }
    }

    #[test]
    fn missing_variable_points_at_the_value() {
        let file = Path::new("t.yaml");
        let (mut v, ix) =
            super::super::locate::parse(file, "a:\n  b: [x, \"${NOPE_X}\"]\n").expect("yaml");
        let e = interpolate(&mut v, "", file, &ix, &env).unwrap_err();
        assert_eq!(
            e.to_string(),
            "t.yaml:2:10: environment variable NOPE_X is not set (used in a.b[1])"
        );
    }
}
