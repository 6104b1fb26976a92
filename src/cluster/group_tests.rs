//! Reading consumer-protocol assignments and member names.

use super::*;

use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition;
use kafka_protocol::messages::TopicName;
use kafka_protocol::protocol::{Encodable, StrBytes};

/// `(topic, partition)` pairs, as the tests expect them.
fn tp(list: &[(&str, i32)]) -> Vec<(String, i32)> {
    list.iter().map(|(t, p)| (t.to_string(), *p)).collect()
}

/// What librdkafka's leader writes (`rd_kafka_group_MemberState_consumer_write`): version 0,
/// the topics with their partitions, then null user data.
fn librdkafka_bytes(topics: &[(&str, &[i32])]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&0i16.to_be_bytes());
    b.extend_from_slice(&(topics.len() as i32).to_be_bytes());
    for (topic, partitions) in topics {
        b.extend_from_slice(&(topic.len() as i16).to_be_bytes());
        b.extend_from_slice(topic.as_bytes());
        b.extend_from_slice(&(partitions.len() as i32).to_be_bytes());
        for p in *partitions {
            b.extend_from_slice(&p.to_be_bytes());
        }
    }
    b.extend_from_slice(&(-1i32).to_be_bytes());
    b
}

/// What a Java client's leader writes: `version` (as the `i16` prefix), then the assignment
/// encoded as `encoded_as`.
fn encoded(version: i16, encoded_as: i16, topics: &[(&str, &[i32])]) -> Vec<u8> {
    let a = ConsumerProtocolAssignment::default()
        .with_assigned_partitions(
            topics
                .iter()
                .map(|(t, ps)| {
                    TopicPartition::default()
                        .with_topic(TopicName(StrBytes::from_string(t.to_string())))
                        .with_partitions(ps.to_vec())
                })
                .collect(),
        )
        .with_user_data(Some(b"sticky".to_vec().into()));
    let mut body = Vec::new();
    a.encode(&mut body, encoded_as).expect("encode");
    let mut b = version.to_be_bytes().to_vec();
    b.extend_from_slice(&body);
    b
}

#[test]
fn reads_what_librdkafka_assigns() {
    let bytes = librdkafka_bytes(&[("orders", &[4, 0, 2]), ("audit", &[1])]);
    assert_eq!(
        parse_assignment(&bytes),
        Ok(tp(&[
            ("audit", 1),
            ("orders", 0),
            ("orders", 2),
            ("orders", 4)
        ]))
    );
    // A member the leader gave nothing (more instances than partitions).
    assert_eq!(parse_assignment(&librdkafka_bytes(&[])), Ok(Vec::new()));
}

#[test]
fn reads_every_known_version_and_newer_ones_as_the_newest() {
    for v in 0..=3 {
        let bytes = encoded(v, v, &[("orders", &[1, 3, 5])]);
        assert_eq!(
            parse_assignment(&bytes),
            Ok(tp(&[("orders", 1), ("orders", 3), ("orders", 5)])),
            "version {v}"
        );
    }
    let future = encoded(7, 3, &[("orders", &[2])]);
    assert_eq!(parse_assignment(&future), Ok(tp(&[("orders", 2)])));
}

#[test]
fn refuses_what_is_not_an_assignment() {
    assert!(parse_assignment(&[]).is_err());
    assert!(parse_assignment(&[0]).is_err());
    let negative = encoded(-1, 0, &[("orders", &[0])]);
    assert_eq!(
        parse_assignment(&negative),
        Err(AssignmentError("version -1".into()))
    );
    let whole = librdkafka_bytes(&[("orders", &[0, 1])]);
    let cut = &whole[..whole.len() - 7];
    let err = parse_assignment(cut).expect_err("truncated");
    assert!(err
        .to_string()
        .starts_with("unreadable consumer-protocol assignment: version 0: "));
}

#[test]
fn a_member_is_named_by_its_client_id_or_its_member_id_without_the_uuid() {
    let uuid = "9c4a9c08-23db-41ff-8ecf-a77d19c1a8cf";
    assert_eq!(
        instance_name("hubmirror-1", &format!("x-{uuid}")),
        "hubmirror-1"
    );
    assert_eq!(
        instance_name("", &format!("hubmirror-1-{uuid}")),
        "hubmirror-1"
    );
    assert_eq!(instance_name("", &format!("pod.a_b-{uuid}")), "pod.a_b");
    // Not `<name>-<uuid>`: the member id as it is.
    assert_eq!(instance_name("", uuid), uuid);
    assert_eq!(instance_name("", &format!("-{uuid}")), format!("-{uuid}"));
    assert_eq!(instance_name("", "rdkafka-1234"), "rdkafka-1234");
    assert_eq!(
        instance_name("", "é-not-a-uuid-at-all-but-long-enough-xx"),
        "é-not-a-uuid-at-all-but-long-enough-xx"
    );
}
