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

/// A busy `metrics.listen` stops `run` with one line before it touches a cluster: no topic is
/// created on the target, no heartbeats topic on the source, no flow starts.
#[test]
fn a_busy_metrics_port_stops_run_before_any_cluster_is_touched() {
    let (a, b) = (Tansu::start(), Tansu::start());
    let a_cfg = kafka::plain(&a.listener());
    kafka::create_topic(&a_cfg, "t", 1);
    kafka::produce_batched(&a_cfg, "t", &[(0, b"k".to_vec(), b"v".to_vec())]);
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = busy.local_addr().expect("addr").to_string();
    let work = Workdir::new();
    let topo = TopologyBuilder::new()
        .tansu("a", &a)
        .tansu("b", &b)
        .flow("a", "b", &["t"])
        .metrics(&addr)
        .write(&work);
    let mut run = Running::start(&topo, &[]);
    let status = run
        .wait(Duration::from_secs(15))
        .unwrap_or_else(|| panic!("still running\n{}", run.output()));
    assert_eq!(status.code(), Some(1), "{}", run.output());
    let line = run.wait_for_line(
        &["cannot listen on", &addr, "metrics.listen"],
        Duration::from_secs(1),
    );
    println!("{line}");
    assert!(!run.output().contains("flow started"), "{}", run.output());
    let on_b = kafka::topic_names(&kafka::plain(&b.listener()));
    assert!(!on_b.contains("a.t"), "topics on b: {on_b:?}");
    let on_a = kafka::topic_names(&a_cfg);
    assert!(!on_a.contains("heartbeats"), "topics on a: {on_a:?}");
    drop(busy);
}
