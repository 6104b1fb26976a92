//! `hubmirror import`: a Strimzi `KafkaMirrorMaker` or `KafkaMirrorMaker2` resource, or a
//! MirrorMaker 2 `.properties` file → an equivalent `topology.yaml`, with a comment on every
//! setting that could not be carried over. Secrets become `*_file` paths or `${VAR}`
//! references, never values.
//!
//! - [`properties`] — the Java properties reader (keys keep their line).
//! - [`yaml`] — multi-document YAML with a line per key path.
//! - [`common`] — what every input shares (aliases, naming policies, durations, regexes).
//! - [`strimzi`] — Strimzi clusters (TLS, authentication) and `KafkaMirrorMaker`.
//! - [`strimzi_mm2`] — Strimzi `KafkaMirrorMaker2`.
//! - [`mm2_properties`], [`mm2_input`], [`mm2_clusters`] — `connect-mirror-maker.properties`.
//! - [`model`] / [`emit`] — the result and its YAML text.

mod common;
mod emit;
mod mm2_clusters;
mod mm2_input;
mod mm2_properties;
mod model;
mod properties;
mod strimzi;
mod strimzi_mm2;
mod strimzi_resource;
mod yaml;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

/// Where `*_file` references to Kubernetes Secrets point by default:
/// `<dir>/<secret name>/<key>`.
pub const DEFAULT_SECRETS_DIR: &str = "/etc/hubmirror/secrets";

/// How an import writes references.
#[derive(Debug, Clone)]
pub struct Options {
    /// The directory each Kubernetes Secret is mounted under (`<dir>/<secret>/<key>`).
    pub secrets_dir: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            secrets_dir: DEFAULT_SECRETS_DIR.to_string(),
        }
    }
}

/// Why a file could not be imported; each displays as one line naming the file, the field
/// and the fix, and never holds a secret value.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file cannot be read.
    #[error("{}: cannot read: {source}; check the path", file.display())]
    Read {
        /// The input file.
        file: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The YAML is malformed (the message starts with `file:line:col`).
    #[error("{0}")]
    Yaml(String),
    /// One field is missing or wrong.
    #[error("{}:{line}: {field}: {message}", file.display())]
    Field {
        /// The input file.
        file: PathBuf,
        /// 1-based line of the field (or of its nearest parent).
        line: usize,
        /// The field: a YAML path (`spec.producer.bootstrapServers`) or a properties key.
        field: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// The file is none of the supported kinds.
    #[error("{}: {message}", file.display())]
    Unsupported {
        /// The input file.
        file: PathBuf,
        /// What was found and which kinds are supported.
        message: String,
    },
}

/// The kinds `import` reads, for messages.
pub(crate) const SUPPORTED: &str = "supported: a Strimzi KafkaMirrorMaker or KafkaMirrorMaker2 \
    resource (apiVersion kafka.strimzi.io/...), or a MirrorMaker 2 properties file \
    (connect-mirror-maker.properties, with `clusters = A, B`)";

/// Reads `file` and returns the topology text.
pub fn import_file(file: &Path, options: &Options) -> Result<String, ImportError> {
    let text = std::fs::read_to_string(file).map_err(|source| ImportError::Read {
        file: file.to_path_buf(),
        source,
    })?;
    import_text(file, &text, options)
}

/// Imports `text`, read from `file` (named in messages; a `.properties` name means properties).
pub fn import_text(file: &Path, text: &str, options: &Options) -> Result<String, ImportError> {
    let is_properties = file.extension().is_some_and(|e| e == "properties");
    let imported = if is_properties {
        mm2_properties::import(file, text)?
    } else {
        match yaml::documents(file, text) {
            Ok(docs) if docs.iter().any(|d| d.kind().is_some()) => {
                strimzi_resource::import(file, &docs, options)?
            }
            Ok(docs) if docs.iter().any(|d| d.is_topology()) => {
                return Err(unsupported(
                    file,
                    "this is already a hubmirror topology (clusters/flows); check it with \
                     `hubmirror validate -c` instead",
                ));
            }
            _ if mm2_properties::looks_like(text) => mm2_properties::import(file, text)?,
            Err(e) => return Err(e),
            Ok(_) => return Err(unsupported(file, "no `kind:` found")),
        }
    };
    Ok(emit::emit(&imported, &file.display().to_string()))
}

/// [`ImportError::Unsupported`] with `what`, then the supported kinds.
pub(crate) fn unsupported(file: &Path, what: &str) -> ImportError {
    ImportError::Unsupported {
        file: file.to_path_buf(),
        message: format!("{what}; {SUPPORTED}"),
    }
}
