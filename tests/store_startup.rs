//! `hubmirror run` refuses a store directory it cannot trust, with one clear line, instead of
//! reusing it: a directory of other files, and a store another `run` holds.

use hubmirror_test_support as support;

use std::time::Duration;

use support::hubmirror::{Running, Workdir};
use support::kafka;
use support::tansu::Tansu;
use support::topology::TopologyBuilder;

fn topology(work: &Workdir, a: &Tansu, b: &Tansu, store: &str) -> std::path::PathBuf {
    TopologyBuilder::new()
        .tansu("a", a)
        .tansu("b", b)
        .flow("a", "b", &["t"])
        .store(store)
        .write(work)
}

#[test]
fn a_foreign_store_directory_is_refused_and_left_alone() {
    let (a, b) = (Tansu::start(), Tansu::start());
    let work = Workdir::new();
    let dir = work.path().join("not-a-store");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("notes.txt"), "someone else's data").unwrap();
    let mut run = Running::start(&topology(&work, &a, &b, "./not-a-store"), &[]);
    let status = run
        .wait(Duration::from_secs(15))
        .unwrap_or_else(|| panic!("still running\n{}", run.output()));
    assert_eq!(status.code(), Some(1), "{}", run.output());
    let line = run.wait_for_line(&["store.path", "not-a-store"], Duration::from_secs(1));
    println!("{line}");
    assert_eq!(
        std::fs::read_to_string(dir.join("notes.txt")).unwrap(),
        "someone else's data"
    );
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        1,
        "nothing was written into it"
    );
}

#[test]
fn a_second_run_on_the_same_store_is_refused() {
    let (a, b) = (Tansu::start(), Tansu::start());
    kafka::create_topic(&kafka::plain(&a.listener()), "t", 1);
    let work = Workdir::new();
    let topo = topology(&work, &a, &b, "./data");
    let mut first = Running::start(&topo, &[]);
    first.wait_for_line(&["flow started"], Duration::from_secs(30));
    // The second one has its own metrics port (its own work directory) but the same store.
    let other = Workdir::new();
    let store = work.path().join("data").display().to_string();
    let mut second = Running::start(&topology(&other, &a, &b, &store), &[]);
    let status = second
        .wait(Duration::from_secs(15))
        .unwrap_or_else(|| panic!("second run still running\n{}", second.output()));
    assert_eq!(status.code(), Some(1), "{}", second.output());
    let line = second.wait_for_line(&["store.path", "hubmirror run"], Duration::from_secs(1));
    println!("{line}");
    first.stop_cleanly();
}
