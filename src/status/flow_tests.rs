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
    f.add_in_flight(3);
    f.idle_settled();
    assert!(!reg.ready(), "records in flight: still recovering");
    f.add_in_flight(-3);
    f.idle_settled();
    assert!(reg.ready(), "nothing to send: recovered");
    f.set_recovering();
    assert!(!reg.ready());
    assert!(f.acked(), "an acknowledgement ends a recovery");
    assert!(reg.ready());
}
