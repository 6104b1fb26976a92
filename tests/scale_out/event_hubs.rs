//! The kill / add / restart scene, shorter, with the Event Hubs emulator as the flow's target
//! and as its source (where the flow's consumer group is then coordinated).

use super::*;

use support::emulator::{EntraOptions, EventHubsEmulator, TEST_CLIENT_ID, TEST_CLIENT_SECRET};
use support::topology::{quoted, CONNECTION_STRING_VAR};

/// Records per second of the stream through the emulator.
const EH_RATE: u64 = 500;

/// Three instances of `topology`; one killed, one added, one restarted, under the stream.
fn kill_add_restart(
    name: &'static str,
    ends: &Ends,
    topology: TopologyBuilder,
    env: &[(&str, &str)],
) {
    let fleet = Fleet::new(topology, env);
    let mut scene = Scene::start(name, fleet, ends, EH_RATE, &["m1", "m2", "m3"]);
    scene.run_for(Duration::from_secs(2));
    scene.kill("m2");
    scene.add(&["m4"]);
    scene.restart("m3");
    scene.run_for(Duration::from_secs(2));
    scene.finish(&["m1", "m3", "m4"]);
}

#[test]
fn event_hubs_as_target_three_instances_killed_added_restarted() {
    let onprem = Tansu::start();
    let eh = EventHubsEmulator::start();
    let source = kafka::plain(&onprem.listener());
    kafka::create_topic(&source, TOPIC, PARTITIONS);
    let ends = Ends {
        source,
        target: eh.client_config(),
        flow: ("onprem", "eventhub"),
        remote: "onprem.orders",
    };
    let topology = TopologyBuilder::new()
        .tansu("onprem", &onprem)
        .event_hubs("eventhub", &eh)
        .flow("onprem", "eventhub", &[TOPIC])
        .replication("refresh_topics_interval", "2s");
    let cs = eh.connection_string();
    kill_add_restart(
        "event_hubs_target",
        &ends,
        topology,
        &[(CONNECTION_STRING_VAR, &cs)],
    );
}

#[test]
fn event_hubs_as_source_three_instances_killed_added_restarted() {
    let onprem = Tansu::start();
    let eh = EventHubsEmulator::start();
    let source = eh.client_config();
    kafka::create_topic(&source, TOPIC, PARTITIONS);
    let ends = Ends {
        source,
        target: kafka::plain(&onprem.listener()),
        flow: ("eventhub", "onprem"),
        remote: "eventhub.orders",
    };
    // The flow consumers' session timeout on an Event Hubs source is Microsoft's 30 s; the test
    // broker behind the emulator takes about half the session timeout per join round (README,
    // "tansu caveats"), so a cooperative rebalance (two rounds) would take over 30 s there. The
    // scene uses the 10 s of a Kafka source; what it asserts is unchanged.
    let topology = TopologyBuilder::new()
        .tansu("onprem", &onprem)
        .event_hubs("eventhub", &eh)
        .client("eventhub", "session.timeout.ms", "10000")
        .flow("eventhub", "onprem", &[TOPIC])
        .replication("refresh_topics_interval", "2s");
    let cs = eh.connection_string();
    kill_add_restart(
        "event_hubs_source",
        &ends,
        topology,
        &[(CONNECTION_STRING_VAR, &cs)],
    );
}

/// The same scene into a namespace that takes only Entra ID tokens from hubmirror, with tokens
/// of 20 s: every instance fetches and refreshes its own while partitions move between them.
#[test]
fn event_hubs_entra_target_three_instances_killed_added_restarted() {
    let onprem = Tansu::start();
    let eh = EventHubsEmulator::start_entra(EntraOptions {
        token_lifetime: Duration::from_secs(20),
        // SAS stays on for the test's own checking client only.
        local_auth: true,
        ..EntraOptions::default()
    });
    let source = kafka::plain(&onprem.listener());
    kafka::create_topic(&source, TOPIC, PARTITIONS);
    let ends = Ends {
        source,
        target: eh.client_config(),
        flow: ("onprem", "eventhub"),
        remote: "onprem.orders",
    };
    let entra = format!(
        "{{tenant_id: {}, client_id: {TEST_CLIENT_ID}, client_secret: \"${{ENTRA_CLIENT_SECRET}}\", \
         authority_host: {}}}",
        quoted(&eh.tenant_id()),
        quoted(&eh.authority_host())
    );
    let topology = TopologyBuilder::new()
        .tansu("onprem", &onprem)
        .event_hubs_entra("eventhub", &eh, &eh.namespace(), &entra)
        .flow("onprem", "eventhub", &[TOPIC])
        .replication("refresh_topics_interval", "2s");
    kill_add_restart(
        "event_hubs_entra_target",
        &ends,
        topology,
        &[("ENTRA_CLIENT_SECRET", TEST_CLIENT_SECRET)],
    );
    let stats = eh.entra_stats();
    eprintln!("event_hubs_entra_target: emulator {stats:?}");
    assert!(
        stats.oauthbearer_authentications > 0,
        "the instances signed in with tokens: {stats:?}"
    );
    assert_eq!(
        stats.sessions_expired, 0,
        "no connection outlived its token: {stats:?}"
    );
}
