//! Opening: creation, the marker, refusing foreign, corrupt and locked stores, persistence.

use std::path::Path;
use std::time::Duration;

use super::{key, run};
use crate::store::open::{MARKER, MARKER_KEY};
use crate::store::{Store, StoreError, Translation};

const FIX: &str = "move it away or point store.path elsewhere";

fn marker(store: &Store) -> Option<sled::IVec> {
    store.inner.db.get(MARKER_KEY).expect("read the marker")
}

/// A sled database at `path` holding `entries` in its default tree, then closed.
fn sled_db(path: &Path, entries: &[(&[u8], &[u8])]) {
    let db = sled::open(path).expect("sled open");
    for (k, v) in entries {
        db.insert(*k, *v).expect("insert");
    }
    db.flush().expect("flush");
}

fn refused(path: &Path) -> StoreError {
    let err = Store::open(path).expect_err("must be refused");
    let msg = err.to_string();
    assert!(
        msg.contains(&path.display().to_string()),
        "names the path: {msg}"
    );
    err
}

#[test]
fn a_missing_path_is_created_with_the_marker() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a/b/store");
    let store = Store::open(&path).expect("open");
    assert_eq!(marker(&store).as_deref(), Some(MARKER.as_bytes()));
    assert_eq!(store.path(), path);
    assert!(store.partitions().expect("partitions").is_empty());
}

#[test]
fn an_empty_directory_or_a_fresh_volume_is_initialised() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open an empty directory");
    assert_eq!(marker(&store).as_deref(), Some(MARKER.as_bytes()));
    drop(store);
    let volume = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(volume.path().join("lost+found")).expect("mkdir");
    Store::open(volume.path()).expect("open a volume root holding only lost+found");
}

#[test]
fn a_directory_of_other_files_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("notes.txt"), "mine").expect("write");
    let err = refused(dir.path());
    assert!(matches!(err, StoreError::NotAStore { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("holds no sled database") && msg.contains("notes.txt") && msg.contains(FIX),
        "{msg}"
    );
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .expect("ls")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(
        names,
        ["notes.txt"],
        "sled must not have created its files there"
    );
}

#[test]
fn a_file_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("store");
    std::fs::write(&path, "not a directory").expect("write");
    let err = refused(&path);
    assert!(
        err.to_string().contains("it is a file") && err.to_string().contains(FIX),
        "{err}"
    );
}

#[test]
fn a_foreign_sled_database_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    sled_db(dir.path(), &[(b"user", b"data")]);
    let err = refused(dir.path());
    assert!(matches!(err, StoreError::NotAStore { .. }), "{err}");
    assert!(
        err.to_string().contains("without hubmirror's marker") && err.to_string().contains(FIX),
        "{err}"
    );

    // Even an empty one: a damaged store reads back empty too, and is no store to reuse.
    let empty = tempfile::tempdir().expect("tempdir");
    sled_db(empty.path(), &[]);
    assert!(matches!(
        refused(empty.path()),
        StoreError::NotAStore { .. }
    ));

    let other = tempfile::tempdir().expect("tempdir");
    sled_db(other.path(), &[(MARKER_KEY, b"someone else's")]);
    let err = refused(other.path());
    assert!(
        err.to_string().contains("marker is not hubmirror's"),
        "{err}"
    );
}

#[test]
fn another_format_version_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    sled_db(dir.path(), &[(MARKER_KEY, b"hubmirror-store v2")]);
    let err = refused(dir.path());
    assert!(
        matches!(&err, StoreError::UnsupportedVersion { found, .. } if found == "hubmirror-store v2"),
        "{err}"
    );
    assert!(err.to_string().contains(FIX), "{err}");
}

#[test]
fn garbage_sled_files_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("conf"), "garbage garbage garbage").expect("write");
    std::fs::write(dir.path().join("db"), vec![0xab; 100_000]).expect("write");
    let err = refused(dir.path());
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains(FIX), "{err}");
    assert!(
        !err.to_string().contains("backtrace"),
        "no debug dump: {err}"
    );
    let mut names: Vec<_> = std::fs::read_dir(dir.path())
        .expect("ls")
        .map(|e| e.expect("entry").file_name())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["conf", "db"],
        "sled's blobs/ directory was not left behind"
    );
}

#[test]
fn a_store_whose_data_file_was_damaged_is_refused() {
    // sled reads a damaged log back as an empty database: the missing marker gives it away.
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = Store::open(dir.path()).expect("open");
        store.record(&key(), &run(0..1000, 0)).expect("record");
        store.flush().expect("flush");
    }
    let db = dir.path().join("db");
    let len = std::fs::metadata(&db).expect("stat").len() as usize;
    std::fs::write(&db, vec![0x5a; len]).expect("overwrite");
    let err = refused(dir.path());
    assert!(matches!(err, StoreError::NotAStore { .. }), "{err}");
    assert!(err.to_string().contains("could not read back"), "{err}");
}

#[test]
fn a_malformed_entry_is_a_corrupt_error_naming_the_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    store.record(&key(), &run(0..10, 0)).expect("record");
    let (meta_key, _) = store
        .inner
        .offsets
        .first()
        .expect("read")
        .expect("an entry");
    store
        .inner
        .offsets
        .insert(meta_key, &[9u8, 1, 2][..])
        .expect("insert");
    let err = store.translate(&key(), 3).expect_err("corrupt");
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("format version 9") && msg.contains(&dir.path().display().to_string()),
        "{msg}"
    );
}

#[test]
fn a_store_held_by_another_process_is_refused_until_released() {
    // sled locks `<path>/db` with flock, which also excludes a second open in this process.
    let dir = tempfile::tempdir().expect("tempdir");
    let first = Store::open(dir.path()).expect("open");
    let started = std::time::Instant::now();
    let err = Store::open_waiting(dir.path(), Duration::ZERO).expect_err("held");
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "no wait asked for"
    );
    assert!(matches!(err, StoreError::Locked { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("is `hubmirror run` running?")
            && msg.contains(&dir.path().display().to_string()),
        "{msg}"
    );
    // `open` waits a little for the holder to go away (here it never does).
    let started = std::time::Instant::now();
    assert!(matches!(refused(dir.path()), StoreError::Locked { .. }));
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "waited {:?}",
        started.elapsed()
    );
    // Released while a second opener waits: it gets the store.
    let path = dir.path().to_owned();
    let waiter = std::thread::spawn(move || Store::open(&path).map(drop));
    std::thread::sleep(Duration::from_millis(200));
    drop(first);
    waiter.join().expect("join").expect("opened once released");
}

#[test]
fn a_clone_shares_the_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    let clone = store.clone();
    clone.record(&key(), &run(0..10, 0)).expect("record");
    assert_eq!(
        store.translate(&key(), 5).expect("translate"),
        Translation::Exact(5)
    );
    assert!(format!("{store:?}").contains(&dir.path().display().to_string()));
}

#[test]
fn everything_survives_a_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("store");
    let before = {
        let store = Store::open(&path).expect("open");
        store.record(&key(), &run(0..10, 0)).expect("record");
        store.record(&key(), &run(10..20, 30)).expect("record");
        store.prune(&key(), 10).expect("prune");
        store.flush().expect("flush");
        (
            store.segments(&key()).expect("segments"),
            store.partition_state(&key()).expect("state"),
        )
    };
    let store = Store::open(&path).expect("reopen");
    assert_eq!(
        (
            store.segments(&key()).expect("segments"),
            store.partition_state(&key()).expect("state")
        ),
        before
    );
    assert_eq!(
        store.translate(&key(), 15).expect("translate"),
        Translation::Exact(35)
    );
}

#[test]
fn dropping_the_last_handle_flushes() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = Store::open(dir.path()).expect("open");
        store.record(&key(), &run(0..10, 0)).expect("record");
    }
    let store = Store::open(dir.path()).expect("reopen");
    assert_eq!(
        store.translate(&key(), 10).expect("translate"),
        Translation::Exact(10)
    );
}
