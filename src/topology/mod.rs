//! `topology.yaml`: the [`model`] everything else reads, and [`load`] / [`parse`], which turn
//! the file into it with `file:line:col: message` errors ([`TopologyError`]).
//!
//! # Pipeline
//!
//! 1. `locate`: YAML → JSON value + an index from key path to line:col (yaml-rust2 events).
//! 2. `interpolate`: `${VAR}` (and `${VAR:-fallback}`) in every string value, after parsing,
//!    so a variable's value is never YAML; `$${` is a literal `${`.
//! 3. `decode`: serde into the `raw` structs (`deny_unknown_fields`); serde's errors are
//!    looked up in the index.
//! 4. `resolve` / `clusters`: defaults and semantic checks, secret files, relative paths
//!    (relative to the topology file's directory).

mod bootstrap;
mod clusters;
mod ctx;
mod decode;
pub mod entra;
#[cfg(test)]
mod entra_tests;
mod error;
pub mod event_hubs;
mod interpolate;
pub(crate) mod locate;
pub mod model;
mod raw;
mod resolve;
mod secret;
mod start_from;
#[cfg(test)]
mod tests;

use std::path::Path;

pub use error::{Location, TopologyError};
pub use model::*;
pub use secret::Secret;

/// Reads and resolves the topology file at `path`.
pub fn load(path: &Path) -> Result<Topology, TopologyError> {
    let text = std::fs::read_to_string(path).map_err(|source| TopologyError::ReadFile {
        at: Location {
            file: path.to_path_buf(),
            line: 1,
            col: 1,
        },
        source,
    })?;
    parse(path, &text)
}

/// Resolves topology `text` as if read from `file_name` (used in messages and as the base of
/// relative paths). Variables come from the process environment.
pub fn parse(file_name: &Path, text: &str) -> Result<Topology, TopologyError> {
    parse_with_env(file_name, text, &|name| std::env::var(name).ok())
}

/// [`parse`] with a custom variable lookup.
pub fn parse_with_env(
    file_name: &Path,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Topology, TopologyError> {
    let (mut value, index) = locate::parse(file_name, text)?;
    interpolate::interpolate(&mut value, "", file_name, &index, env)?;
    let ctx = ctx::Ctx::new(file_name, &index, env);
    let raw = decode::decode(&value, &ctx)?;
    resolve::resolve(raw, &ctx)
}
