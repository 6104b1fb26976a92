//! Which instance of a topology this process is. Every flow's source consumer joins its group
//! with this name as its static membership id (`group.instance.id`) and shows it in its
//! `client.id`, so that `hubmirror status` can tell the instances apart and a restarted
//! instance gets its partitions back without reshuffling the others.
//!
//! The name comes from `hubmirror run --instance NAME` (or `HUBMIRROR_INSTANCE`; the
//! Kubernetes manifests set it to the pod name), else from the store: a random id written there
//! on first use, so the same store always runs as the same instance and two stores never share
//! a name (a store is opened by one process at a time).

use thiserror::Error;

use crate::store::{Store, StoreError};

/// Longest instance name accepted (it becomes part of client ids and group member ids).
pub const MAX_LEN: usize = 100;

/// Why no instance name could be settled on.
#[derive(Debug, Error)]
pub enum InstanceError {
    /// The name given on the command line or in `HUBMIRROR_INSTANCE` is not usable.
    #[error("instance name '{name}' {why}: use 1–{MAX_LEN} characters from [A-Za-z0-9._-] (--instance or HUBMIRROR_INSTANCE)")]
    Invalid {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The store could not give or keep its id.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The instance name: `given` when set (validated), else the store's own id.
pub fn resolve(given: Option<&str>, store: &Store) -> Result<String, InstanceError> {
    match given.map(str::trim).filter(|s| !s.is_empty()) {
        Some(name) => validate(name).map(|()| name.to_string()),
        None => Ok(store.instance_id()?),
    }
}

fn validate(name: &str) -> Result<(), InstanceError> {
    let invalid = |why| {
        Err(InstanceError::Invalid {
            name: name.chars().take(MAX_LEN + 10).collect(),
            why,
        })
    };
    if name.len() > MAX_LEN {
        return invalid("is too long");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return invalid("has characters other than letters, digits, '.', '_' and '-'");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_given_name_is_used_when_valid() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("store");
        assert_eq!(
            resolve(Some("hubmirror-2"), &store).expect("name"),
            "hubmirror-2"
        );
        let err = resolve(Some("pod 2"), &store).expect_err("space");
        assert!(err.to_string().contains("'pod 2'"), "{err}");
        assert!(resolve(Some(&"x".repeat(MAX_LEN + 1)), &store).is_err());
    }

    #[test]
    fn without_a_name_the_store_keeps_one_id() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = {
            let store = Store::open(dir.path()).expect("store");
            resolve(None, &store).expect("id")
        };
        let store = Store::open(dir.path()).expect("reopen");
        assert_eq!(resolve(Some("  "), &store).expect("id"), first);
        let other = tempfile::tempdir().expect("tempdir");
        let other = Store::open(other.path()).expect("other store");
        assert_ne!(resolve(None, &other).expect("id"), first);
        validate(&first).expect("a store id is a valid name");
    }
}
