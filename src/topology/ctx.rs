//! [`Ctx`]: what every resolution step needs — the file (for `file:line:col` locations and
//! relative paths) and the key-path index — and the checks they share: durations, booleans,
//! anchored regexes, secret files, files that must exist.

use std::path::{Path, PathBuf};
use std::time::Duration;

use regex::Regex;

use super::error::{Location, TopologyError};
use super::locate::{item, Index, Pos};
use super::Secret;

/// What every check needs: the file (for locations and relative paths) and the position index.
pub(crate) struct Ctx<'a> {
    /// The topology file as the user named it.
    pub file: &'a Path,
    /// Its directory: relative paths in the file resolve against it.
    pub base: PathBuf,
    /// Key path → position.
    pub index: &'a Index,
    /// Environment lookup (the process environment, or a test's).
    env: &'a dyn Fn(&str) -> Option<String>,
}

impl<'a> Ctx<'a> {
    pub fn new(file: &'a Path, index: &'a Index, env: &'a dyn Fn(&str) -> Option<String>) -> Self {
        let base = file.parent().map(Path::to_path_buf).unwrap_or_default();
        Ctx {
            file,
            base,
            index,
            env,
        }
    }

    /// The environment variable `name`, if set.
    pub fn env(&self, name: &str) -> Option<String> {
        (self.env)(name)
    }

    pub fn loc(&self, pos: Pos) -> Location {
        Location {
            file: self.file.to_path_buf(),
            line: pos.line,
            col: pos.col,
        }
    }

    /// An error at the value of `path`.
    pub fn invalid_at(&self, path: &str, message: String) -> TopologyError {
        TopologyError::Invalid {
            at: self.loc(self.index.value(path)),
            message,
        }
    }

    /// An error at the key of `path`.
    pub fn invalid_key(&self, path: &str, message: String) -> TopologyError {
        TopologyError::Invalid {
            at: self.loc(self.index.key(path)),
            message,
        }
    }

    /// A path from the file: relative ones are relative to the topology file's directory.
    pub fn file_path(&self, s: &str) -> PathBuf {
        let p = Path::new(s);
        let joined = if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base.join(p)
        };
        // `dir/./x` → `dir/x`, for readable messages; `..` is kept (symlinks).
        let clean: PathBuf = joined
            .components()
            .filter(|c| !matches!(c, std::path::Component::CurDir))
            .collect();
        if clean.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            clean
        }
    }

    /// Reads the secret in the file named at `path` (trailing whitespace dropped).
    pub fn read_secret(&self, path: &str, name: &str) -> Result<Secret, TopologyError> {
        let file = self.file_path(name);
        let text =
            std::fs::read_to_string(&file).map_err(|source| TopologyError::ReadNamedFile {
                at: self.loc(self.index.key(path)),
                path: path.to_string(),
                file: file.clone(),
                source,
            })?;
        let secret = text.trim_end();
        if secret.is_empty() {
            return Err(
                self.invalid_key(path, format!("`{}` (from {path}) is empty", file.display()))
            );
        }
        Ok(Secret::new(secret))
    }

    /// A file that must exist (a CA bundle): its resolved path.
    pub fn existing_file(&self, path: &str, name: &str) -> Result<PathBuf, TopologyError> {
        let file = self.file_path(name);
        match std::fs::File::open(&file) {
            Ok(_) => Ok(file),
            Err(source) => Err(TopologyError::ReadNamedFile {
                at: self.loc(self.index.value(path)),
                path: path.to_string(),
                file,
                source,
            }),
        }
    }

    pub fn duration(
        &self,
        path: &str,
        v: Option<&str>,
        default: Duration,
    ) -> Result<Duration, TopologyError> {
        let Some(v) = v else { return Ok(default) };
        humantime::parse_duration(v.trim()).map_err(|e| {
            self.invalid_at(
                path,
                format!("{path}: `{v}` is not a duration ({e}); write e.g. `500ms`, `5s`, `2m`"),
            )
        })
    }

    pub fn boolean(
        &self,
        path: &str,
        v: Option<&str>,
        default: bool,
    ) -> Result<bool, TopologyError> {
        match v.map(str::to_ascii_lowercase).as_deref() {
            None => Ok(default),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(_) => Err(self.invalid_at(path, format!("{path} must be `true` or `false`"))),
        }
    }

    /// Compiles anchored regexes (`^(?:re)$`); a bad one is reported at its list item.
    pub fn regexes(&self, path: &str, patterns: &[String]) -> Result<Vec<Regex>, TopologyError> {
        patterns
            .iter()
            .enumerate()
            .map(|(i, p)| {
                Regex::new(p)
                    .and_then(|_| Regex::new(&format!("^(?:{p})$")))
                    .map_err(|e| {
                        let p_i = item(path, i);
                        self.invalid_at(
                            &p_i,
                            format!("{p_i}: `{p}` is not a valid regex: {}", regex_reason(&e)),
                        )
                    })
            })
            .collect()
    }
}

/// The one-line reason of a regex error (its display is a multi-line diagram).
fn regex_reason(e: &regex::Error) -> String {
    let text = e.to_string();
    text.lines()
        .rev()
        .find_map(|l| l.strip_prefix("error: "))
        .unwrap_or_else(|| text.lines().last().unwrap_or("invalid"))
        .to_string()
}
