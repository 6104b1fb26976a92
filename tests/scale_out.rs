//! Scale-out on real brokers (issue 15): several `hubmirror run` instances of one topology share
//! a flow's partitions through the source cluster's consumer group, and every record is still
//! copied exactly once, in order, whatever happens to the instances.
//!
//! Each instance has its own work directory (topology copy, store, metrics port) and runs with
//! `--instance NAME` ([`support::fleet::Fleet`]). A background stream produces to the 6
//! partitions of the source topic at a steady rate, batched as applications produce; every
//! record's key names its partition and its number in it (`s-<partition>-<seq>`). A ledger
//! reads the copies on the target from the beginning and counts, against what the source
//! acknowledged: lost, duplicated, out of order (a copy after a copy of a later record of the
//! same source partition), in another partition, unknown. Each test prints one line (run with
//! `--nocapture`):
//!
//! `SCALE <name>: records N, lost L, duplicated D, out of order O, ...; <event>: moving after Xs,
//! longest pause Ys (partition P) ...; ...`
//!
//! "moving after" is the time from the event until every partition had a copy of a record
//! produced once the event was done (for a kill: until the killed instance's partitions had moved
//! to another instance; an add or a restart includes the wait for the instance to own partitions);
//! "longest pause" the longest time any partition went without a copy arriving, between this
//! event and the next.
//!
//! At the end the partitions must be split among exactly the surviving instances (each
//! instance's `/status` lists the partitions it replicates), each of which copied records since
//! it last started and is ready.
//!
//! When a test fails, the end of every instance's logs (each process it ran, oldest first) is
//! printed: 300 lines each, `FLEET_LOG_LINES=<n>` for more.

use hubmirror_test_support as support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;

use support::fleet::{describe, Fleet};
use support::kafka::{self, Ledger, Stream};
use support::tansu::Tansu;
use support::topology::TopologyBuilder;
use support::wait_for;

/// The source topic the stream writes to.
const TOPIC: &str = "orders";
const PARTITIONS: i32 = 6;
/// The stream's key prefix.
const PREFIX: &str = "s";
/// Records per second of the stream.
const RATE: u64 = 800;
/// The flow consumers' session timeout (`cluster::clients::SESSION_TIMEOUT_MS`).
const SESSION_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest a partition may take to move on after an event (a kill waits for the session
/// timeout, then a rebalance).
const MOVE_LIMIT: Duration = Duration::from_secs(60);
/// How long, at most, the target may take to show every record after the stream stopped.
const CATCH_UP: Duration = Duration::from_secs(90);

#[path = "scale_out/active_active.rs"]
mod active_active;
#[path = "scale_out/event_hubs.rs"]
mod event_hubs;
#[path = "scale_out/failover.rs"]
mod failover;
#[path = "scale_out/scene.rs"]
mod scene;
#[path = "scale_out/zombie.rs"]
mod zombie;

use scene::*;

/// tansu `onprem` (with [`TOPIC`]) → tansu `dr` (`onprem.orders`).
fn tansu_pair() -> (Tansu, Tansu, Ends, TopologyBuilder) {
    let (onprem, dr) = (Tansu::start(), Tansu::start());
    let (ends, topology) = onprem_to_dr(&onprem, &dr);
    (onprem, dr, ends, topology)
}

/// The flow `onprem → dr` between two running brokers, [`TOPIC`] created on `onprem`.
fn onprem_to_dr(onprem: &Tansu, dr: &Tansu) -> (Ends, TopologyBuilder) {
    let source = kafka::plain(&onprem.listener());
    kafka::create_topic(&source, TOPIC, PARTITIONS);
    let ends = Ends {
        source,
        target: kafka::plain(&dr.listener()),
        flow: ("onprem", "dr"),
        remote: "onprem.orders",
    };
    let topology = TopologyBuilder::new()
        .tansu("onprem", onprem)
        .tansu("dr", dr)
        .flow("onprem", "dr", &[TOPIC])
        .replication("refresh_topics_interval", "2s");
    (ends, topology)
}

/// Three instances; one killed with SIGKILL, one added, one restarted (SIGTERM, then started
/// again with the same name and store), all under the stream.
#[test]
fn three_instances_killed_added_restarted_copy_every_record_once() {
    let (_onprem, _dr, ends, topology) = tansu_pair();
    let fleet = Fleet::new(topology, &[]);
    let mut scene = Scene::start("kill_add_restart", fleet, &ends, RATE, &["m1", "m2", "m3"]);
    scene.run_for(Duration::from_secs(3));
    scene.kill("m2");
    scene.run_for(Duration::from_secs(2));
    scene.add(&["m4"]);
    scene.run_for(Duration::from_secs(2));
    scene.restart("m3");
    scene.run_for(Duration::from_secs(3));
    scene.finish(&["m1", "m3", "m4"]);
}

/// Two instances; one frozen (SIGSTOP) past the session timeout while the stream goes on, so its
/// partitions move to the other; then resumed (SIGCONT): whatever it still held must not reach
/// the target after the new owner resumed, and it rejoins.
#[test]
fn an_instance_frozen_past_the_session_timeout_writes_nothing_twice() {
    let (_onprem, _dr, ends, topology) = tansu_pair();
    let fleet = Fleet::new(topology, &[]);
    let mut scene = Scene::start("frozen", fleet, &ends, RATE, &["m1", "m2"]);
    scene.run_for(Duration::from_secs(3));
    let frozen = Instant::now();
    scene.freeze("m2");
    // Past the session timeout by 5 s: the group has given m2's partitions to m1 by then.
    scene.run_for((SESSION_TIMEOUT + Duration::from_secs(5)).saturating_sub(frozen.elapsed()));
    scene.thaw("m2");
    scene.run_for(Duration::from_secs(4));
    scene.finish(&["m1", "m2"]);
}

/// One instance, then three (two added), then one again (the two stopped with SIGTERM).
#[test]
fn scaling_one_to_three_to_one_copies_every_record_once() {
    let (_onprem, _dr, ends, topology) = tansu_pair();
    let fleet = Fleet::new(topology, &[]);
    let mut scene = Scene::start("scale_1_3_1", fleet, &ends, RATE, &["m1"]);
    scene.run_for(Duration::from_secs(3));
    scene.add(&["m2", "m3"]);
    scene.run_for(Duration::from_secs(4));
    scene.stop(&["m2", "m3"]);
    scene.run_for(Duration::from_secs(3));
    scene.finish(&["m1"]);
}
