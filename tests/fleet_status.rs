//! `hubmirror status` lists the instances sharing each flow and the partitions each owns, read
//! from the flow's consumer group on the source (real tansu brokers, no daemon running). Two
//! rdkafka consumers stand in for two `hubmirror run` instances: they join the flow's group as a
//! flow's source consumer does (`client.id` = `group.instance.id` = the instance name,
//! cooperative-sticky).

use hubmirror_test_support as support;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::Value;
use support::hubmirror::{run_to_end, Workdir};
use support::kafka;
use support::tansu::Tansu;
use support::topology::TopologyBuilder;
use support::wait_for;

const PARTITIONS: i32 = 6;
const GROUP: &str = "hubmirror-a-b";
const W: Duration = Duration::from_secs(60);

/// A member of `GROUP` named `name`, as a flow's source consumer joins it.
fn instance(bootstrap: &str, name: &str) -> BaseConsumer {
    let consumer: BaseConsumer = kafka::plain(bootstrap)
        .set("group.id", GROUP)
        .set("client.id", name)
        .set("group.instance.id", name)
        .set("partition.assignment.strategy", "cooperative-sticky")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "1000")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    consumer.subscribe(&["orders"]).expect("subscribe");
    consumer
}

fn owned(c: &BaseConsumer) -> BTreeSet<i32> {
    let a = c.assignment().expect("assignment");
    a.elements().iter().map(|e| e.partition()).collect()
}

/// `hubmirror status --json`: exit code and the document.
fn status(topo: &std::path::Path) -> (Option<i32>, Value) {
    let out = run_to_end(
        &["status", "--json", "-c", topo.to_str().expect("utf-8")],
        &[],
    );
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code(), json)
}

fn names(flow: &Value) -> Vec<String> {
    flow["instances"]
        .as_array()
        .expect("instances")
        .iter()
        .map(|i| i["instance"].as_str().expect("instance").to_string())
        .collect()
}

#[test]
fn status_lists_each_instance_in_the_flows_group_with_the_partitions_it_owns() {
    let (a, b) = (Tansu::start(), Tansu::start());
    kafka::create_topic(&kafka::plain(&a.listener()), "orders", PARTITIONS);
    let work = Workdir::new();
    let topo = TopologyBuilder::new()
        .tansu("a", &a)
        .tansu("b", &b)
        .flow("a", "b", &["orders"])
        .write(&work);

    // Nobody in the group yet.
    let (code, s) = status(&topo);
    assert_eq!(code, Some(0), "{s}");
    let flow = &s["flows"][0];
    assert_eq!(flow["group"], GROUP, "{s}");
    assert_eq!(flow["group_state"], "Dead", "{s}");
    assert_eq!(flow["instances"], serde_json::json!([]), "{s}");
    assert_eq!(flow["group_error"], Value::Null, "{s}");
    assert_eq!(s["daemon_running"], false);

    // Two instances share the flow's six partitions.
    let members = [
        instance(&a.listener(), "fleet-1"),
        instance(&a.listener(), "fleet-2"),
    ];
    let split = wait_for("both instances own partitions", W, || {
        for m in &members {
            let _ = m.poll(Duration::from_millis(50));
        }
        let split: Vec<BTreeSet<i32>> = members.iter().map(owned).collect();
        let all: BTreeSet<i32> = split.iter().flatten().copied().collect();
        let whole = split.iter().all(|s| !s.is_empty())
            && all.len() == PARTITIONS as usize
            && split.iter().map(BTreeSet::len).sum::<usize>() == PARTITIONS as usize;
        if whole {
            Ok(split)
        } else {
            Err(split)
        }
    });
    // tansu lists a group only once it has committed offsets, as hubmirror's flows do.
    for (m, parts) in members.iter().zip(&split) {
        let mut tpl = TopicPartitionList::new();
        for p in parts {
            tpl.add_partition_offset("orders", *p, Offset::Offset(0))
                .expect("offset");
        }
        m.commit(&tpl, CommitMode::Sync).expect("commit");
    }
    // The members keep polling (rebalance callbacks) while `status` runs.
    let stop = Arc::new(AtomicBool::new(false));
    let polling = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                for m in &members {
                    let _ = m.poll(Duration::from_millis(50));
                }
            }
            members.map(|m| owned(&m))
        })
    };

    let s = wait_for("status lists both instances", W, || {
        let (code, s) = status(&topo);
        let flow = &s["flows"][0];
        let ready = code == Some(0)
            && flow["group_state"] == "Stable"
            && names(flow) == ["fleet-1", "fleet-2"];
        if ready {
            Ok(s)
        } else {
            Err(s)
        }
    });
    let flow = &s["flows"][0];
    assert_eq!(flow["group"], GROUP);
    assert_eq!(flow["group_error"], Value::Null);
    // Each instance's partitions are exactly those its consumer owns — or, from a broker that
    // keeps no assignments (tansu), unknown (`null`), never a wrong or empty list.
    let listed: Vec<Option<BTreeSet<i32>>> = flow["instances"]
        .as_array()
        .expect("instances")
        .iter()
        .map(|i| {
            let ps = i["partitions"].as_array()?;
            Some(
                ps.iter()
                    .map(|p| {
                        assert_eq!(p["topic"], "orders", "{i}");
                        p["partition"].as_i64().expect("partition") as i32
                    })
                    .collect(),
            )
        })
        .collect();
    for (got, want) in listed.iter().zip(&split) {
        if let Some(got) = got {
            assert_eq!(got, want, "{s}");
        }
    }

    // The text table: one row per instance.
    let out = run_to_end(&["status", "-c", topo.to_str().expect("utf-8")], &[]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    println!("{text}");
    assert!(text.contains("GROUP"), "{text}");
    let rows: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("a ") && l.contains(GROUP))
        .collect();
    assert_eq!(rows.len(), 2, "{text}");
    for (row, (name, parts)) in rows.iter().zip(["fleet-1", "fleet-2"].iter().zip(&split)) {
        let cols: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(&cols[..5], ["a", "b", GROUP, "Stable", name], "{text}");
        let want = format!(
            "orders[{}]",
            parts
                .iter()
                .map(i32::to_string)
                .collect::<Vec<_>>()
                .join(",")
        );
        let last = *cols.last().expect("partitions column");
        assert!(last == want || last == "?", "{row}: {want}");
    }

    stop.store(true, Ordering::Relaxed);
    let after = polling.join().expect("polling thread");
    assert_eq!(after.to_vec(), split, "no rebalance while status ran");
}
