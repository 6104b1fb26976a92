//! The store's own instance id: a random id written once, the name of a `hubmirror run` that
//! is given none (see `crate::instance`).

use super::{Store, StoreError};

/// The key of the id, in sled's default tree.
const INSTANCE_KEY: &[u8] = b"__hubmirror_instance";

impl Store {
    /// This store's instance id (`hubmirror-` and 12 hex digits), created on first use.
    pub fn instance_id(&self) -> Result<String, StoreError> {
        let db = &self.inner.db;
        if let Some(v) = db.get(INSTANCE_KEY).map_err(|e| self.sled(e))? {
            return String::from_utf8(v.to_vec())
                .map_err(|_| self.corrupt("the instance id is not UTF-8".into()));
        }
        let simple = uuid::Uuid::new_v4().simple().to_string();
        let id = format!("hubmirror-{}", &simple[..12]);
        // Two handles of one process racing: the first write wins, both return it.
        let _ = db
            .compare_and_swap(INSTANCE_KEY, None as Option<&[u8]>, Some(id.as_bytes()))
            .map_err(|e| self.sled(e))?;
        self.flush()?;
        let v = db
            .get(INSTANCE_KEY)
            .map_err(|e| self.sled(e))?
            .ok_or_else(|| self.corrupt("the instance id vanished".into()))?;
        String::from_utf8(v.to_vec())
            .map_err(|_| self.corrupt("the instance id is not UTF-8".into()))
    }
}
