//! Flow status: readiness, lag, reports.

use super::*;
use crate::status::Registry;

#[test]
fn reports_what_was_recorded() {
    let mut reg = Registry::default();
    let f = reg.add("a", "b");
    assert!(!reg.ready());
    let r = f.report();
    assert_eq!(
        (r.state, r.heartbeat_age_ms, r.replication_latency_ms),
        (FlowState::Starting, None, None)
    );
    f.set_state(FlowState::Running);
    f.add_replicated(5);
    // Without heartbeats, the records' latency.
    f.record_latency(7);
    assert_eq!(f.report().replication_latency_ms, Some(7));
    f.heartbeat_replicated(now_ms() - 40);
    let r = reg.reports().remove(0);
    assert!(reg.ready());
    assert_eq!(r.records_replicated, 5);
    assert!(r.replication_latency_ms.unwrap() >= 40);
    assert!(r.heartbeat_age_ms.unwrap() >= 40);
    let json = serde_json::to_string(&r).unwrap();
    assert!(json.contains("\"state\":\"running\""), "{json}");
}

#[test]
fn a_new_run_forgets_what_the_previous_one_left_in_flight() {
    let mut reg = Registry::default();
    let f = reg.add("a", "b");
    f.set_state(FlowState::Running);
    f.add_in_flight(500);
    let stalled = now_ms() - 2 * STALL_AFTER.as_millis() as i64;
    f.last_ack_ms.store(stalled, Ordering::Relaxed);
    let why = reg.readiness().unwrap_err().join("");
    assert!(why.contains("500 records in flight"), "{why}");
    f.begin_run();
    assert!(reg.ready(), "{:?}", reg.readiness());
    assert_eq!(f.report().records_in_flight, 0);
}

#[test]
fn a_flow_not_ready_says_which_cluster_cannot_be_reached_and_why() {
    let f = FlowStatus::new("readiness-src", "readiness-tgt");
    assert_eq!(
        f.readiness(),
        Err("flow readiness-src->readiness-tgt: starting".into())
    );
    let p = crate::cluster::ConnectionProblem {
        alias: "readiness-src".into(),
        broker: Some("h:9092".into()),
        cause: crate::cluster::Cause::HttpPort,
        event_hubs: false,
    };
    diagnose::note(&p);
    assert_eq!(
        f.readiness(),
        Err(format!("flow readiness-src->readiness-tgt: starting: {p}"))
    );
    f.set_state(FlowState::Running);
    assert_eq!(
        f.readiness(),
        Ok(()),
        "a problem alone does not make a flow unready"
    );
}

#[test]
fn a_recovery_ends_with_an_acknowledgement_or_with_nothing_left_to_send() {
    let mut reg = Registry::default();
    let f = reg.add("a", "b");
    f.set_state(FlowState::Running);
    f.set_recovering();
    assert!(
        !f.idle_settled(),
        "owning nothing yet: nothing says the target is back"
    );
    f.own("t", [0]);
    f.set_position("t", 0, 10);
    f.source_stats.update(
        br#"{"topics":{"t":{"partitions":{"0":{"partition":0,"lo_offset":0,"hi_offset":12}}}}}"#,
    );
    f.add_in_flight(3);
    assert!(!f.idle_settled());
    assert!(!reg.ready(), "records in flight: still recovering");
    f.add_in_flight(-3);
    assert!(!f.idle_settled(), "2 records left to copy");
    f.set_position("t", 0, 12);
    assert!(f.idle_settled());
    assert!(reg.ready(), "nothing to send: recovered");
    f.set_recovering();
    assert!(!reg.ready());
    assert!(f.acked(), "an acknowledgement ends a recovery");
    assert!(reg.ready());
}

/// Statistics of a consumer that joined its group and heard from the cluster just now.
const MEMBER: &[u8] =
    br#"{"brokers":{"b/1":{"rx":7}},"cgrp":{"state":"up","join_state":"steady"}}"#;

#[test]
fn an_instance_that_owns_no_partition_is_ready_while_its_source_answers() {
    let f = FlowStatus::new("idle-src", "idle-tgt");
    f.set_state(FlowState::Running);
    f.source_stats.update(MEMBER);
    assert!(f.owned().is_empty());
    assert_eq!(
        f.readiness(),
        Ok(()),
        "idle: owns nothing, hears heartbeats"
    );
    // Given partitions, then all handed over to another instance: idle again, still ready.
    f.own("orders", [0, 1]);
    f.set_position("orders", 0, 5);
    f.disown("orders", [0, 1]);
    assert!(f.owned().is_empty());
    assert_eq!(f.readiness(), Ok(()));
}

#[test]
fn a_member_whose_source_went_silent_is_not_ready_even_owning_nothing() {
    let f = FlowStatus::new("silent-src", "silent-tgt");
    f.set_state(FlowState::Running);
    f.source_stats.update(MEMBER);
    f.source_stats
        .last_response_ago(SOURCE_SILENT_AFTER + Duration::from_secs(1));
    assert!(f.owned().is_empty());
    assert_eq!(
        f.readiness(),
        Err(
            "flow silent-src->silent-tgt: no response from source 'silent-src' for over 5 s".into()
        )
    );
    // A consumer assigned partitions by hand and given none asks the source nothing: its
    // silence is not a fault.
    let by_hand = FlowStatus::new("hand-src", "hand-tgt");
    by_hand.set_state(FlowState::Running);
    by_hand
        .source_stats
        .update(br#"{"brokers":{"b/1":{"rx":7}},"cgrp":{"join_state":"init"}}"#);
    by_hand
        .source_stats
        .last_response_ago(SOURCE_SILENT_AFTER + Duration::from_secs(1));
    assert_eq!(by_hand.readiness(), Ok(()));
    // ... but once it has partitions, it is.
    by_hand.set_position("orders", 0, 0);
    assert!(by_hand.readiness().is_err());
}

#[test]
fn reports_name_the_instance_and_the_partitions_it_owns() {
    let mut reg = Registry::new("hubmirror-2");
    let f = reg.add("a", "b");
    f.own("orders", [3, 1]);
    f.own("audit", [0]);
    let r = reg.reports().remove(0);
    assert_eq!(r.instance, "hubmirror-2");
    let owned: Vec<(String, i32)> = r
        .owned_partitions
        .iter()
        .map(|p| (p.topic.clone(), p.partition))
        .collect();
    assert_eq!(
        owned,
        [("audit", 0), ("orders", 1), ("orders", 3)].map(|(t, p)| (t.to_string(), p))
    );
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["instance"], "hubmirror-2");
    assert_eq!(
        json["owned_partitions"][0],
        serde_json::json!({"topic": "audit", "partition": 0})
    );
    f.disown("orders", [1, 3]);
    assert_eq!(reg.reports()[0].owned_partitions.len(), 1);
}
