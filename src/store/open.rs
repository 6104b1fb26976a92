//! Opening `store.path`: refuse anything that is not a hubmirror store, never reuse it silently.
//!
//! sled itself is lenient in ways that matter here: it happily creates its files inside any
//! directory, and it reads a damaged or truncated data file back as an *empty* database (its
//! recovery stops at the first bad log entry). So the directory is inspected before sled sees
//! it, and the marker entry [`MARKER_KEY`] = [`MARKER`] written on creation is what tells a
//! store that survived from one that did not: a pre-existing sled database without it is
//! refused, whatever else it holds.

use std::io::ErrorKind;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::time::{Duration, Instant};

use super::StoreError;

/// The key of the marker entry, in sled's default tree.
pub(super) const MARKER_KEY: &[u8] = b"__hubmirror_store";
/// The marker of this format. Another `hubmirror-store v…` is a future or past format.
pub(super) const MARKER: &str = "hubmirror-store v1";
/// What every hubmirror marker starts with.
const MARKER_FAMILY: &str = "hubmirror-store v";

/// Entries of a directory that do not make it "non-empty": the root of an ext4 volume (a
/// Kubernetes persistent volume mounted at `store.path`) always holds `lost+found`.
const IGNORED_ENTRIES: &[&str] = &["lost+found"];

/// The files that make a directory a sled 0.34 database.
const SLED_FILES: &[&str] = &["conf", "db"];

/// The directory sled 0.34 creates inside its own for large values.
const SLED_BLOBS_DIR: &str = "blobs";

/// sled's page cache limit. The store holds a few segments per partition, not records; sled's
/// default (1 GiB) is far more than it will ever use.
const CACHE_CAPACITY: u64 = 64 * 1024 * 1024;

/// How long [`Store::open`](super::Store::open) waits for a lock to be released before reporting
/// [`StoreError::Locked`]. sled releases its lock asynchronously: when a `Db` is dropped, its
/// file stays locked until sled's shared I/O threads have finished the writes queued for it
/// (milliseconds, or longer when other databases in the process keep those threads busy); a
/// hubmirror process that is exiting releases it only once it is gone.
pub(super) const LOCK_WAIT: Duration = Duration::from_secs(2);

/// Opens (creating when missing or empty) the sled database at `path` and checks its marker,
/// retrying for up to `lock_wait` while another holder releases it; the flag says whether it
/// was created now.
pub(super) fn open_db(path: &Path, lock_wait: Duration) -> Result<(sled::Db, bool), StoreError> {
    let fresh = inspect_dir(path)?;
    // sled creates `blobs/` before it reads anything: a directory it then refuses is left as
    // it was found.
    let blobs = path.join(SLED_BLOBS_DIR);
    let had_blobs = blobs.exists();
    let started = Instant::now();
    let db = loop {
        match open_sled(path) {
            Err(StoreError::Locked { .. }) if started.elapsed() < lock_wait => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => {
                if !had_blobs && !fresh && !matches!(e, StoreError::Locked { .. }) {
                    // Only removes it while empty.
                    let _ = std::fs::remove_dir(&blobs);
                }
                return Err(e);
            }
            Ok(db) => break db,
        }
    };
    check_marker(&db, path, fresh)?;
    Ok((db, fresh))
}

/// A new sled database in a temporary directory that sled removes when it is dropped, with
/// the marker written; `what` names it in errors.
pub(super) fn open_temporary(what: &Path) -> Result<sled::Db, StoreError> {
    let db = sled::Config::new()
        .temporary(true)
        .cache_capacity(CACHE_CAPACITY)
        .open()
        .map_err(|source| StoreError::Sled {
            path: what.to_owned(),
            source,
        })?;
    check_marker(&db, what, true)?;
    Ok(db)
}

/// Returns whether `path` is to be initialised (missing, now created, or empty); errors when
/// it is something other than a directory holding a sled database.
fn inspect_dir(path: &Path) -> Result<bool, StoreError> {
    let io = |action, source| StoreError::Io {
        path: path.to_owned(),
        action,
        source,
    };
    match std::fs::metadata(path) {
        Err(e) if e.kind() == ErrorKind::NotFound => {
            std::fs::create_dir_all(path).map_err(|e| io("cannot create the directory", e))?;
            Ok(true)
        }
        Err(e) => Err(io("cannot read the directory's metadata", e)),
        Ok(m) if !m.is_dir() => Err(StoreError::NotAStore {
            path: path.to_owned(),
            reason: "it is a file, not a directory".to_owned(),
        }),
        Ok(_) => {
            let mut names = Vec::new();
            for entry in std::fs::read_dir(path).map_err(|e| io("cannot list the directory", e))? {
                let entry = entry.map_err(|e| io("cannot list the directory", e))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if !IGNORED_ENTRIES.contains(&name.as_str()) {
                    names.push(name);
                }
            }
            if names.is_empty() {
                return Ok(true);
            }
            if SLED_FILES.iter().all(|f| names.iter().any(|n| n == f)) {
                return Ok(false);
            }
            names.sort();
            let shown = names
                .iter()
                .take(5)
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(", ");
            let more = if names.len() > 5 { ", …" } else { "" };
            Err(StoreError::NotAStore {
                path: path.to_owned(),
                reason: format!(
                    "the directory is not empty and holds no sled database (found {shown}{more})"
                ),
            })
        }
    }
}

/// Opens sled, turning its lock, I/O and corruption failures into [`StoreError`]s.
fn open_sled(path: &Path) -> Result<sled::Db, StoreError> {
    let config = sled::Config::new()
        .path(path)
        .cache_capacity(CACHE_CAPACITY);
    // sled 0.34 reports most bad files as errors, but is not above panicking on some; a panic
    // here must still become the clear startup error, not a crash with sled's internals.
    let opened = catch_unwind(AssertUnwindSafe(|| config.open()));
    match opened {
        Ok(Ok(db)) => Ok(db),
        // sled takes an exclusive `flock` on `<path>/db` and reports a failure this way only.
        Ok(Err(sled::Error::Io(e))) if e.to_string().contains("could not acquire lock") => {
            Err(StoreError::Locked {
                path: path.to_owned(),
            })
        }
        Ok(Err(sled::Error::Io(source))) => Err(StoreError::Io {
            path: path.to_owned(),
            action: "cannot open the sled database",
            source,
        }),
        // sled's own text for this one ends in a debug dump (`... backtrace ()`).
        Ok(Err(sled::Error::Corruption { .. })) => Err(StoreError::Corrupt {
            path: path.to_owned(),
            detail: "sled found damaged files".to_owned(),
        }),
        Ok(Err(e)) => Err(StoreError::Corrupt {
            path: path.to_owned(),
            detail: format!("sled cannot read it: {e}"),
        }),
        Err(_) => Err(StoreError::Corrupt {
            path: path.to_owned(),
            detail: "sled failed while reading it".to_owned(),
        }),
    }
}

/// Accepts our marker; writes it into a `fresh` store; refuses everything else.
fn check_marker(db: &sled::Db, path: &Path, fresh: bool) -> Result<(), StoreError> {
    let sled_err = |source| StoreError::Sled {
        path: path.to_owned(),
        source,
    };
    let found = db.get(MARKER_KEY).map_err(sled_err)?;
    match found {
        Some(v) if v == MARKER.as_bytes() => Ok(()),
        Some(v) => match std::str::from_utf8(&v) {
            Ok(s) if s.starts_with(MARKER_FAMILY) => Err(StoreError::UnsupportedVersion {
                path: path.to_owned(),
                found: s.to_owned(),
                expected: MARKER,
            }),
            _ => Err(StoreError::NotAStore {
                path: path.to_owned(),
                reason: "it holds a sled database whose marker is not hubmirror's".to_owned(),
            }),
        },
        None if fresh => {
            db.insert(MARKER_KEY, MARKER.as_bytes()).map_err(sled_err)?;
            db.flush().map_err(sled_err)?;
            Ok(())
        }
        None => Err(StoreError::NotAStore {
            path: path.to_owned(),
            reason: "it holds a sled database without hubmirror's marker: another program's, or \
                     a hubmirror store whose data sled could not read back (damaged or truncated \
                     files read as empty)"
                .to_owned(),
        }),
    }
}
