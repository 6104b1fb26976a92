//! Three real `hubmirror run` instances of one topology on a flow with two source partitions:
//! `hubmirror status` lists all three with the partitions each owns (from the flow's group on the
//! source: the Event Hubs emulator, which describes members as a Kafka coordinator does), each
//! daemon's `/status` names itself and owns exactly what the group says, every instance — the
//! idle one too — is ready, and every metric sample names its instance.

use hubmirror_test_support as support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::Value;
use support::emulator::EventHubsEmulator;
use support::hubmirror::{daemon_status, http_status, run_to_end, Running, Workdir};
use support::kafka;
use support::tansu::Tansu;
use support::topology::{TopologyBuilder, CONNECTION_STRING_VAR};
use support::wait_for;

const NAMES: [&str; 3] = ["fleet-1", "fleet-2", "fleet-3"];
const W: Duration = Duration::from_secs(120);

/// Instance name → the partitions of `orders` it owns, as `status --json` lists the flow's group;
/// `None` until the group is stable with every instance's assignment known.
fn listed(flow: &Value) -> Option<BTreeMap<String, BTreeSet<i64>>> {
    if flow["group_state"] != "Stable" {
        return None;
    }
    let mut out = BTreeMap::new();
    for i in flow["instances"].as_array()? {
        let parts = i["partitions"].as_array()?;
        let set: BTreeSet<i64> = parts
            .iter()
            .map(|p| {
                assert_eq!(p["topic"], "orders", "{flow}");
                p["partition"].as_i64().expect("partition")
            })
            .collect();
        out.insert(i["instance"].as_str()?.to_string(), set);
    }
    Some(out)
}

/// What a daemon's `/status` says: its instance name and the partitions it owns.
fn daemon_owns(addr: &str) -> Option<(String, BTreeSet<i64>)> {
    let s = daemon_status(addr)?;
    let flow = &s.as_array()?[0];
    let owned = flow["owned_partitions"]
        .as_array()?
        .iter()
        .map(|p| p["partition"].as_i64().expect("partition"))
        .collect();
    Some((flow["instance"].as_str()?.to_string(), owned))
}

#[test]
fn three_instances_share_a_flow_status_lists_them_and_the_idle_one_is_ready() {
    let (eh, b) = (EventHubsEmulator::start(), Tansu::start());
    let conn = eh.connection_string();
    kafka::create_topic(&eh.client_config(), "orders", 2);
    let records: Vec<_> = (0..20)
        .map(|i| (i % 2, format!("k{i}").into_bytes(), b"v".to_vec()))
        .collect();
    kafka::produce_batched(&eh.client_config(), "orders", &records);
    // No heartbeats topic on the source: the group shares out exactly the two `orders`
    // partitions, so one of the three instances owns nothing.
    let builder = TopologyBuilder::new()
        .event_hubs("a", &eh)
        .set("a", "heartbeats", "false")
        .tansu("b", &b)
        .flow("a", "b", &["orders"]);
    let works: Vec<Workdir> = NAMES.iter().map(|_| Workdir::new()).collect();
    let topos: Vec<_> = works.iter().map(|w| builder.write(w)).collect();
    let mut runs: Vec<Running> = NAMES
        .iter()
        .zip(&topos)
        .map(|(name, topo)| {
            Running::start(
                topo,
                &[
                    (CONNECTION_STRING_VAR, conn.as_str()),
                    ("HUBMIRROR_INSTANCE", name),
                ],
            )
        })
        .collect();
    kafka::read_all(&kafka::plain(&b.listener()), "a.orders", 20, W);

    // The group, as `status` (asked with the first instance's topology) lists it, agrees with
    // what each daemon says it owns.
    let env = [(CONNECTION_STRING_VAR, conn.as_str())];
    let cfg = topos[0].to_str().expect("utf-8");
    let (status, owners) = wait_for("status and the daemons agree on a stable split", W, || {
        let out = run_to_end(&["status", "--json", "-c", cfg], &env);
        let s: Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
        let group = listed(&s["flows"][0]).ok_or_else(|| s.to_string())?;
        let daemons: BTreeMap<String, BTreeSet<i64>> = works
            .iter()
            .filter_map(|w| daemon_owns(&w.metrics_addr()))
            .collect();
        if group.len() == NAMES.len() && group == daemons {
            Ok((s, group))
        } else {
            Err(format!("group {group:?} vs daemons {daemons:?}"))
        }
    });
    let names: Vec<&str> = owners.keys().map(String::as_str).collect();
    assert_eq!(names, NAMES, "{status}");
    let all: Vec<i64> = owners.values().flatten().copied().collect();
    assert_eq!(all.len(), 2, "each partition owned once: {owners:?}");
    assert_eq!(
        all.iter().copied().collect::<BTreeSet<_>>(),
        BTreeSet::from([0, 1])
    );
    let idle: Vec<&String> = owners
        .iter()
        .filter(|(_, p)| p.is_empty())
        .map(|(n, _)| n)
        .collect();
    assert_eq!(idle.len(), 1, "one instance owns nothing: {owners:?}");
    assert_eq!(status["daemon_instance"], "fleet-1", "{status}");

    for (name, work) in NAMES.iter().zip(&works) {
        let addr = work.metrics_addr();
        // Every instance is ready, the idle one too.
        let ready = http_status(&addr, "/readyz").expect("/readyz");
        assert_eq!(ready, (200, "ready\n".to_string()), "{name}");
        // Every sample names its instance.
        let page = http_status(&addr, "/metrics").expect("/metrics").1;
        let up = format!("hubmirror_flow_up{{source=\"a\",target=\"b\",instance=\"{name}\"}} 1");
        assert!(
            page.lines().any(|l| l == up),
            "{name}: no `{up}` in\n{page}"
        );
        let samples: Vec<&str> = page
            .lines()
            .filter(|l| l.starts_with("hubmirror_"))
            .collect();
        assert!(!samples.is_empty());
        for s in samples {
            assert!(s.contains(&format!("instance=\"{name}\"")), "{name}: {s}");
        }
    }
    for run in &mut runs {
        run.stop_cleanly();
    }
}
