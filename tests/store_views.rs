//! A store lost and recreated by `run`: the new store knows nothing of what the flow copied
//! before. `run` says so; `checkpoints` reads the group's checkpoint from the checkpoints topic
//! on the target, and `translate` answers exactly through the daemon, whose store took in the
//! segments the flow had published to the segments topic on the target — in the human output
//! as in the JSON.

use hubmirror_test_support as support;

use std::time::Duration;

use hubmirror::checkpoint::commit_group_offsets;
use serde_json::Value;
use support::hubmirror::{run_to_end, Running, Workdir};
use support::kafka;
use support::tansu::Tansu;
use support::topology::TopologyBuilder;
use support::wait_for;

const GROUP: &str = "app";
const RECORDS: usize = 40;
const W: Duration = Duration::from_secs(60);

fn cli(args: &[&str]) -> String {
    let out = run_to_end(args, &[]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{args:?}: {text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

#[test]
fn a_recreated_store_is_reported_and_the_views_read_what_the_target_keeps() {
    let (a, b) = (Tansu::start(), Tansu::start());
    let (ca, cb) = (kafka::plain(&a.listener()), kafka::plain(&b.listener()));
    kafka::create_topic(&ca, "orders", 1);
    let recs: Vec<(i32, Vec<u8>, Vec<u8>)> = (0..RECORDS)
        .map(|i| (0, format!("k{i}").into_bytes(), b"v".to_vec()))
        .collect();
    kafka::produce_batched(&ca, "orders", &recs);
    let work = Workdir::new();
    let topo = TopologyBuilder::new()
        .tansu("a", &a)
        .tansu("b", &b)
        .flow("a", "b", &["orders"])
        .flow_set("groups", r#"[".*"]"#)
        .replication("checkpoints_interval", "1s")
        .replication("refresh_topics_interval", "1s")
        .replication("heartbeats_interval", "0s")
        .write(&work);
    let cfg = topo.to_str().unwrap();
    let mut run = Running::start(&topo, &[]);
    kafka::read_all(&cb, "a.orders", RECORDS, W);
    let at = [("orders".to_string(), 0, 25)];
    commit_group_offsets(ca.clone(), GROUP, &at, Duration::from_secs(15)).expect("commit");
    let checkpointed = || {
        let rows: Value =
            serde_json::from_str(&cli(&["checkpoints", "--json", "-c", cfg])).expect("json");
        (rows[0]["upstream_offset"] == 25).then_some(())
    };
    wait_for("a checkpoint at 25", W, checkpointed);
    run.stop_cleanly();

    // The store is lost; `run` creates a new one and says what it means.
    std::fs::remove_dir_all(work.path().join("data")).expect("remove the store");
    let mut run = Running::start(&topo, &[]);
    let line = run.wait_for_line(&["is new", "hubmirror-a-b"], W);
    assert!(line.contains("a.checkpoints.internal"), "{line}");

    // `checkpoints` through the daemon: the new store has none, the topic has the group's.
    let human = cli(&["checkpoints", "-c", cfg]);
    assert!(!human.contains("no checkpoints"), "{human}");
    assert!(
        human.contains("via: checkpoints-topic for flow a -> b"),
        "{human}"
    );
    let rows: Value =
        serde_json::from_str(&cli(&["checkpoints", "--json", "-c", cfg])).expect("json");
    assert_eq!(rows[0]["upstream_offset"], 25, "{rows}");
    assert_eq!(rows[0]["via"], "checkpoints-topic", "{rows}");

    // `translate`: the human output says where the row came from, as the JSON does — the
    // daemon, exactly: its new store read the segments published before the loss.
    let args = ["translate", "--group", GROUP, "--from", "a", "--to", "b"];
    let human = cli(&[&args[..], &["-c", cfg]].concat());
    assert!(human.starts_with("via: daemon"), "{human}");
    let rows: Value =
        serde_json::from_str(&cli(&[&args[..], &["--json", "-c", cfg]].concat())).expect("json");
    assert_eq!(rows[0]["via"], "daemon", "{rows}");
    assert_eq!(rows[0]["downstream_offset"], 25, "{rows}");
    assert_eq!(rows[0]["records_again"], 0, "exact: {rows}");
    run.stop_cleanly();
}
