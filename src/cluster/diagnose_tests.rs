//! The recognisers, on librdkafka's texts as it writes them (2.12).

use super::*;

fn cause(text: &str) -> Option<Cause> {
    recognise(text)
}

#[test]
fn recognises_a_wrong_port_or_protocol() {
    let http = "[thrd:127.0.0.1:39112/bootstrap]: 127.0.0.1:39112/bootstrap: Receive failed: \
                Invalid response size 1213486160 (0..100000000): increase \
                receive.message.max.bytes (after 0ms in state APIVERSION_QUERY)";
    assert_eq!(cause(http), Some(Cause::HttpPort));
    // A TLS alert (0x15 0x03 0x03 ...) read as a length.
    let alert =
        "b:9093/bootstrap: Receive failed: Invalid response size 352518912 (0..100000000): \
                 increase receive.message.max.bytes";
    assert_eq!(cause(alert), Some(Cause::PlaintextOnTlsPort));
    let other = "b:1/bootstrap: Receive failed: Invalid response size 542393671 (0..100000000)";
    assert_eq!(cause(other), Some(Cause::NotKafka));
    let closed = "127.0.0.1:9093/bootstrap: Disconnected while requesting ApiVersion: might be \
                  caused by incorrect security.protocol configuration (connecting to a SSL \
                  listener?) or broker version is < 0.10 (see api.version.request) (after 1ms \
                  in state APIVERSION_QUERY)";
    assert_eq!(cause(closed), Some(Cause::PlaintextOnTlsPort));
    let closed = "127.0.0.1:39501/bootstrap: Disconnected: connection closed by peer: receive 0 \
                  after POLLIN (after 0ms in state APIVERSION_QUERY)";
    assert_eq!(cause(closed), Some(Cause::PlaintextOnTlsPort));
    let tls_closed = "ssl://127.0.0.1:39501/bootstrap: Disconnected: connection closed by peer \
                      (after 0ms in state APIVERSION_QUERY)";
    assert_eq!(cause(tls_closed), None);
    let hang = "[thrd:ssl://127.0.0.1:39111/bootstrap]: ssl://127.0.0.1:39111/bootstrap: \
                Connection setup timed out in state SSL_HANDSHAKE (after 3007ms in state \
                SSL_HANDSHAKE)";
    assert_eq!(cause(hang), Some(Cause::TlsOnPlaintextPort));
    let version = "ssl://h:9092/bootstrap: SSL handshake failed: error:0A00010B:SSL \
                   routines::wrong version number (after 2ms in state SSL_HANDSHAKE)";
    assert_eq!(cause(version), Some(Cause::TlsOnPlaintextPort));
    let sasl = "h:9092/1: Disconnected: verify that security.protocol is correctly configured, \
                broker might require SASL authentication (after 12ms in state UP)";
    assert_eq!(cause(sasl), Some(Cause::SaslRequired));
}

#[test]
fn recognises_auth_trust_dns_refused_and_timeouts() {
    let auth = "sasl_ssl://127.0.0.1:40001/bootstrap: SASL authentication error: \
                Authentication failed during authentication due to invalid credentials with \
                SASL mechanism PLAIN (after 5ms in state AUTH_REQ)";
    assert_eq!(cause(auth), Some(Cause::AuthenticationFailed));
    let cert = "ssl://h:9093/bootstrap: SSL handshake failed: error:0A000086:SSL \
                routines::certificate verify failed: broker certificate could not be verified";
    assert_eq!(cause(cert), Some(Cause::CertificateNotTrusted));
    let dns = "nosuchhost.invalid:9092/bootstrap: Failed to resolve 'nosuchhost.invalid:9092': \
               Name or service not known (after 1ms in state CONNECT)";
    assert_eq!(cause(dns), Some(Cause::HostNotFound));
    let refused = "127.0.0.1:39113/bootstrap: Connect to ipv4#127.0.0.1:39113 failed: \
                   Connection refused (after 0ms in state CONNECT)";
    assert_eq!(cause(refused), Some(Cause::ConnectionRefused));
    let slow = "10.1.2.3:9092/bootstrap: Connection setup timed out in state CONNECT (after \
                30029ms in state CONNECT)";
    assert_eq!(cause(slow), Some(Cause::TimedOut));
    assert_eq!(cause("1/1 brokers are down"), None);
    assert_eq!(cause("Configuration property x is experimental"), None);
}

#[test]
fn names_the_broker_the_cause_and_the_fix_in_one_line() {
    let p = ConnectionProblem::recognise(
        "west",
        false,
        "[thrd:127.0.0.1:39112/bootstrap]: 127.0.0.1:39112/bootstrap: Receive failed: Invalid \
         response size 1213486160 (0..100000000): increase receive.message.max.bytes",
    )
    .expect("recognised");
    assert_eq!(p.broker.as_deref(), Some("127.0.0.1:39112"));
    let line = p.to_string();
    assert!(
        line.starts_with("cluster 'west' (127.0.0.1:39112): the port answers HTTP, not Kafka; "),
        "{line}"
    );
    assert!(line.contains("clusters.west.bootstrap_servers"), "{line}");
    assert!(!line.contains('\n'));
    assert!(!line.contains("receive.message.max.bytes"), "{line}");
    assert_eq!(
        broker_of("ssl://[::1]:9093/2: x").as_deref(),
        Some("[::1]:9093")
    );
    assert_eq!(broker_of("no broker here"), None);
}

#[test]
fn the_board_keeps_the_latest_problem_and_rate_limits_repeats() {
    let p = |cause| ConnectionProblem {
        alias: "board-test".into(),
        broker: None,
        cause,
        event_hubs: false,
    };
    let t0 = Instant::now();
    assert!(note_at(&p(Cause::ConnectionRefused), t0));
    assert!(!note_at(
        &p(Cause::ConnectionRefused),
        t0 + Duration::from_secs(1)
    ));
    // A different cause is logged at once.
    assert!(note_at(
        &p(Cause::HostNotFound),
        t0 + Duration::from_secs(2)
    ));
    assert!(note_at(
        &p(Cause::HostNotFound),
        t0 + Duration::from_secs(3) + CURRENT_FOR
    ));
    assert_eq!(
        recent("board-test").map(|p| p.cause),
        Some(Cause::HostNotFound)
    );
    assert_eq!(recent("board-test-none"), None);
}

#[test]
fn transport_errors_are_already_named_once_the_cause_is_known() {
    use rdkafka::error::{KafkaError, RDKafkaErrorCode};
    let down = KafkaError::MessageConsumption(RDKafkaErrorCode::AllBrokersDown);
    assert!(!already_named("named-test", &down));
    note(&ConnectionProblem {
        alias: "named-test".into(),
        broker: None,
        cause: Cause::ConnectionRefused,
        event_hubs: false,
    });
    assert!(already_named("named-test", &down));
    let other = KafkaError::MessageConsumption(RDKafkaErrorCode::UnknownTopicOrPartition);
    assert!(!already_named("named-test", &other));
}
