//! The bad-input suite: each kind of wrong input gets one clear line naming the cause (file:line:col,
//! cluster, topic or path) and the fix, with the contract's exit code (2 bad configuration, 1
//! runtime failure) — or, where it shows only at run time and hubmirror rightly goes on, a counted
//! error (`hubmirror_errors_total{kind}`) while the other topics and flows lose nothing.
//!
//! The cases, by concern: `config` (errors found offline, before anything connects), `clusters`
//! (errors that need a cluster: credentials, certificates, brokers, target topics) and `data`
//! (records, the store and headers that hubmirror cannot take as they are).

use hubmirror_test_support as support;

use std::time::Duration;

use support::hubmirror::{http_status, metric_sum, Running, Workdir};
use support::kafka::{self, Rec};
use support::tansu::Tansu;
use support::topology::TopologyBuilder;
use support::wait_for;

#[path = "bad_input/clusters.rs"]
mod clusters;
#[path = "bad_input/config.rs"]
mod config;
#[path = "bad_input/data.rs"]
mod data;

const MINUTE: Duration = Duration::from_secs(60);

/// Waits for `run` to exit by itself; asserts exit 1 and a line starting with `hubmirror: `
/// that holds every needle.
fn run_fails(run: &mut Running, needles: &[&str]) {
    let status = run
        .wait(MINUTE)
        .unwrap_or_else(|| panic!("running\n{}", run.output()));
    let line = run.wait_for_line(&["hubmirror: "], Duration::from_secs(1));
    println!("{status}: {line}");
    assert_eq!(status.code(), Some(1), "{status}\n{}", run.output());
    for n in needles {
        assert!(line.contains(n), "lacks {n:?}: {line}");
    }
}

/// The sum of `name{labels}` on the daemon's /metrics, once it reaches `at_least`.
fn metric_at_least(work: &Workdir, name: &str, labels: &[&str], at_least: f64) -> f64 {
    wait_for(name, MINUTE, || {
        let v = metric_sum(
            &http_status(&work.metrics_addr(), "/metrics")?.1,
            name,
            labels,
        );
        (v >= at_least).then_some(v)
    })
}

/// Every record of `topic` on `broker`, once `n` arrived.
fn read(broker: &Tansu, topic: &str, n: usize) -> Vec<Rec> {
    kafka::read_all(&kafka::plain(&broker.listener()), topic, n, MINUTE)
}

/// A topology `a` → `b` (tansu brokers) over `t`, `alpha` and `beta`: topics refreshed every
/// second, no heartbeats, `create_topics: <create>`.
fn kafka_pair(a: &Tansu, b: &Tansu, create: bool) -> TopologyBuilder {
    TopologyBuilder::new()
        .tansu("a", a)
        .tansu("b", b)
        .flow("a", "b", &["t", "alpha", "beta"])
        .replication("refresh_topics_interval", "1s")
        .replication("heartbeats_interval", "0s")
        .replication("create_topics", &create.to_string())
}
