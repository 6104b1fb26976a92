//! The client context: redaction, fatal reports, the lines it logs.

use super::*;

#[test]
fn recognises_gapless_failures_only() {
    assert!(is_gapless_failure(
        "Fatal error: Local: Gap-less ordering would not be guaranteed if proceeding: \
         ProduceRequest for t [0] with 3 message(s) failed: Broker: Policy violation \
         (broker 1 PID{Id:1,Epoch:0}, base seq 0): unable to satisfy gap-less guarantee"
    ));
    assert!(!is_gapless_failure(
        "Fatal error: Broker: Producer attempted an operation with an old epoch"
    ));
}

#[test]
fn redacts_secrets_and_reports_fatal_errors() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let ctx = ClusterContext::new("eventhub", vec!["s3cr3t".into(), String::new()], tx);
    assert_eq!(ctx.redact("password s3cr3t here"), "password *** here");
    ctx.error(
        KafkaError::Global(RDKafkaErrorCode::Authentication),
        "SASL failed for s3cr3t",
    );
    let e = rx.try_recv().expect("reported");
    assert_eq!(
        e.to_string(),
        "cluster 'eventhub': authentication failed; check the \
         credentials of clusters.eventhub: the Event Hubs connection string \
         (SharedAccessKeyName and SharedAccessKey of a policy of that namespace) or \
         sasl.username and sasl.password"
    );
    assert_eq!(e.reason, "SASL failed for ***", "kept, redacted");
    let e = FatalClusterError {
        alias: "eventhub".into(),
        what: "fatal client error",
        reason: "x".into(),
        problem: None,
    };
    assert_eq!(e.to_string(), "cluster 'eventhub': fatal client error: x");
}

#[test]
fn a_recognised_authentication_failure_displays_as_its_one_line() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let ctx = ClusterContext::new("eventhub", vec!["s3cr3t".into()], tx);
    ctx.error(
        KafkaError::Global(RDKafkaErrorCode::Authentication),
        "sasl_ssl://127.0.0.1:4000/bootstrap: SASL authentication error: Authentication \
         failed (key s3cr3t) (after 5ms in state AUTH_REQ)",
    );
    let line = rx.try_recv().expect("reported").to_string();
    assert!(
        line.starts_with("cluster 'eventhub' (127.0.0.1:4000): authentication failed; check"),
        "{line}"
    );
    assert!(!line.contains("s3cr3t"), "{line}");
}

#[test]
fn strips_the_thread_prefix_and_hides_the_experimental_warning() {
    assert_eq!(
        strip_thread("[thrd:app]: Configuration x"),
        "Configuration x"
    );
    assert_eq!(strip_thread("plain"), "plain");
    assert!(is_noise(
        "CONFWARN",
        "Configuration property enable.gapless.guarantee is experimental: ..."
    ));
    assert!(!is_noise(
        "CONFWARN",
        "Configuration property x is a consumer property"
    ));
}

#[test]
fn unreachable_warnings_are_rate_limited_per_cluster() {
    let t0 = Instant::now();
    assert!(unreachable_warning_due("rate-test-a", t0));
    assert!(!unreachable_warning_due(
        "rate-test-a",
        t0 + Duration::from_secs(1)
    ));
    assert!(unreachable_warning_due(
        "rate-test-b",
        t0 + Duration::from_secs(1)
    ));
    assert!(unreachable_warning_due(
        "rate-test-a",
        t0 + UNREACHABLE_WARN_EVERY + Duration::from_secs(1)
    ));
}
