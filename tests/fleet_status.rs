//! `hubmirror status` lists the instances sharing each flow and the partitions each owns, read
//! from the flow's consumer group on the source, with no daemon running. Two rdkafka consumers
//! stand in for two `hubmirror run` instances: they join the flow's group as a flow's source
//! consumer does (`client.id` = `group.instance.id` = the instance name, cooperative-sticky).
//!
//! The source is a real tansu broker, which describes a group's members by member id only (no
//! client id, host or assignment: the partitions are then unknown, never guessed), and the Event
//! Hubs emulator in front of tansu, which describes them as a Kafka coordinator does (client id,
//! host, and the assignment the group's leader handed out): there the exact partitions.

use hubmirror_test_support as support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::ClientConfig;
use rdkafka::{Offset, TopicPartitionList};
use serde_json::Value;
use support::emulator::EventHubsEmulator;
use support::hubmirror::{run_to_end, Workdir};
use support::kafka;
use support::tansu::Tansu;
use support::topology::{TopologyBuilder, CONNECTION_STRING_VAR};
use support::wait_for;

const PARTITIONS: i32 = 6;
const GROUP: &str = "hubmirror-a-b";
const W: Duration = Duration::from_secs(60);

/// A member of `GROUP` named `name`, as a flow's source consumer joins it.
fn instance(cfg: &ClientConfig, name: &str) -> BaseConsumer {
    let consumer: BaseConsumer = cfg
        .clone()
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
fn status(topo: &Path, env: &[(&str, &str)]) -> (Option<i32>, Value) {
    let out = run_to_end(
        &["status", "--json", "-c", topo.to_str().expect("utf-8")],
        env,
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

/// What the source's coordinator tells of each member.
#[derive(Clone, Copy, PartialEq)]
enum Coordinator {
    /// Member ids only (tansu).
    MemberIds,
    /// Client id, host and assignment (Apache Kafka; the emulator).
    Kafka,
}

#[test]
fn status_names_each_instance_in_the_flows_group_on_tansu() {
    let (a, b) = (Tansu::start(), Tansu::start());
    let topo = |work: &Workdir| {
        TopologyBuilder::new()
            .tansu("a", &a)
            .tansu("b", &b)
            .flow("a", "b", &["orders"])
            .write(work)
    };
    shared_flow(
        &kafka::plain(&a.listener()),
        topo,
        &[],
        Coordinator::MemberIds,
    );
}

#[test]
fn status_lists_the_exact_partitions_each_instance_owns_through_the_event_hubs_emulator() {
    let (eh, b) = (EventHubsEmulator::start(), Tansu::start());
    let topo = |work: &Workdir| {
        TopologyBuilder::new()
            .event_hubs("a", &eh)
            .tansu("b", &b)
            .flow("a", "b", &["orders"])
            .write(work)
    };
    let conn = eh.connection_string();
    let env = [(CONNECTION_STRING_VAR, conn.as_str())];
    shared_flow(&eh.client_config(), topo, &env, Coordinator::Kafka);
}

/// Two instances share flow a → b, whose source `a` is reached with `source`; `status` (with
/// `env`) must list them as `coordinator` allows.
fn shared_flow(
    source: &ClientConfig,
    topology: impl Fn(&Workdir) -> PathBuf,
    env: &[(&str, &str)],
    coordinator: Coordinator,
) {
    kafka::create_topic(source, "orders", PARTITIONS);
    let work = Workdir::new();
    let topo = topology(&work);

    // Nobody in the group yet.
    let (code, s) = status(&topo, env);
    assert_eq!(code, Some(0), "{s}");
    let flow = &s["flows"][0];
    assert_eq!(flow["group"], GROUP, "{s}");
    assert_eq!(flow["group_state"], "Dead", "{s}");
    assert_eq!(flow["instances"], serde_json::json!([]), "{s}");
    assert_eq!(flow["group_error"], Value::Null, "{s}");
    assert_eq!(s["daemon_running"], false);

    // Two instances share the flow's six partitions.
    let members = [instance(source, "fleet-1"), instance(source, "fleet-2")];
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
        let (code, s) = status(&topo, env);
        let flow = &s["flows"][0];
        let listed = code == Some(0)
            && flow["group_state"] == "Stable"
            && names(flow) == ["fleet-1", "fleet-2"];
        if listed {
            Ok(s)
        } else {
            Err(s)
        }
    });
    let flow = &s["flows"][0];
    assert_eq!(flow["group"], GROUP);
    assert_eq!(flow["group_error"], Value::Null);
    let instances = flow["instances"].as_array().expect("instances");
    for (i, want) in instances.iter().zip(&split) {
        match coordinator {
            // Unknown, never empty or guessed.
            Coordinator::MemberIds => {
                assert_eq!(i["partitions"], Value::Null, "{s}");
                assert_eq!(i["host"], "", "{s}");
            }
            // Exactly what each consumer owns: together every partition, each once.
            Coordinator::Kafka => {
                let got: Vec<(String, i64)> = i["partitions"]
                    .as_array()
                    .unwrap_or_else(|| panic!("partitions of {i}"))
                    .iter()
                    .map(|p| {
                        let topic = p["topic"].as_str().expect("topic").to_string();
                        (topic, p["partition"].as_i64().expect("partition"))
                    })
                    .collect();
                let want: Vec<(String, i64)> = want
                    .iter()
                    .map(|p| ("orders".to_string(), i64::from(*p)))
                    .collect();
                assert_eq!(got, want, "{s}");
                assert_eq!(i["host"], "127.0.0.1", "{s}");
            }
        }
    }

    // The text table: one row per instance.
    let out = run_to_end(&["status", "-c", topo.to_str().expect("utf-8")], env);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    println!("{text}");
    let rows: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("a ") && l.contains(GROUP))
        .collect();
    assert_eq!(rows.len(), 2, "{text}");
    for (row, (name, parts)) in rows.iter().zip(["fleet-1", "fleet-2"].iter().zip(&split)) {
        let cols: Vec<&str> = row.split_whitespace().collect();
        let (host, partitions) = match coordinator {
            Coordinator::MemberIds => ("-".to_string(), "?".to_string()),
            Coordinator::Kafka => {
                let list: Vec<String> = parts.iter().map(i32::to_string).collect();
                (
                    "127.0.0.1".to_string(),
                    format!("orders[{}]", list.join(",")),
                )
            }
        };
        assert_eq!(
            cols,
            ["a", "b", GROUP, "Stable", name, &host, &partitions],
            "{text}"
        );
    }
    let unknown_note = text.contains("did not report that member's assignment");
    assert_eq!(
        unknown_note,
        coordinator == Coordinator::MemberIds,
        "{text}"
    );

    stop.store(true, Ordering::Relaxed);
    let after = polling.join().expect("polling thread");
    assert_eq!(after.to_vec(), split, "no rebalance while status ran");
}
