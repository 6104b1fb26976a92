//! The properties of a MirrorMaker 2 file as [`super::mm2_properties`] reads them: MM2's
//! inheritance (`A->B.key`, then `key`), which keys were read, errors naming key and line.

use std::collections::BTreeSet;
use std::path::Path;

use super::common::{boolean, check_regexes, regex_list};
use super::properties::Props;
use super::ImportError;

/// The properties with the file, for errors.
pub(crate) struct Input<'a> {
    pub file: &'a Path,
    pub props: Props,
    /// Keys read into the topology (the rest become notes).
    pub used: BTreeSet<String>,
}

impl Input<'_> {
    pub(crate) fn error(&self, key: &str, message: impl Into<String>) -> ImportError {
        let line = self.props.get(key).map_or(1, |p| p.line);
        ImportError::Field {
            file: self.file.to_path_buf(),
            line,
            field: key.to_string(),
            message: message.into(),
        }
    }

    /// `key`'s value, marked as read.
    pub(crate) fn get(&mut self, key: &str) -> Option<String> {
        let v = self.props.get(key)?.value.clone();
        self.used.insert(key.to_string());
        Some(v)
    }

    /// `prefix.key`, else the top-level `key` (MM2's inheritance).
    pub(crate) fn scoped(&mut self, prefix: &str, key: &str) -> Option<String> {
        self.get(&format!("{prefix}.{key}"))
            .or_else(|| self.get(key))
    }

    /// Whether `prefix.key` or `key` is set.
    pub(crate) fn has(&self, prefix: &str, key: &str) -> bool {
        self.props.contains_key(&format!("{prefix}.{key}")) || self.props.contains_key(key)
    }

    /// The key an error about `prefix.key` / `key` names: the one that is set.
    pub(crate) fn at(&self, prefix: &str, key: &str) -> String {
        let scoped = format!("{prefix}.{key}");
        if self.props.contains_key(&scoped) {
            scoped
        } else {
            key.to_string()
        }
    }

    /// A regex list at `prefix.key` or `key`; else `default`, with a note saying so.
    pub(crate) fn list(
        &mut self,
        prefix: &str,
        key: &str,
        default: &[&str],
        notes: &mut Vec<String>,
    ) -> Result<Vec<String>, ImportError> {
        let at = self.at(prefix, key);
        let Some(v) = self.scoped(prefix, key) else {
            if !default.is_empty() {
                notes.push(format!(
                    "{key}: MirrorMaker 2's default, {}",
                    default.join(", ")
                ));
            }
            return Ok(default.iter().map(|s| s.to_string()).collect());
        };
        let l = regex_list(&v);
        check_regexes(&l).map_err(|e| self.error(&at, e))?;
        Ok(l)
    }

    /// A boolean at `prefix.key` or `key`, else `default`.
    pub(crate) fn flag(
        &mut self,
        prefix: &str,
        key: &str,
        default: bool,
    ) -> Result<bool, ImportError> {
        let at = self.at(prefix, key);
        match self.scoped(prefix, key) {
            Some(v) => boolean(&v).map_err(|e| self.error(&at, e)),
            None => Ok(default),
        }
    }
}
