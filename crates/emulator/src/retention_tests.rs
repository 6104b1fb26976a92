//! Unit tests of the retention rewriting (a child module of `retention`).

use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{FetchResponse, RequestHeader, TopicName};
use kafka_protocol::protocol::{Encodable, StrBytes};

use super::*;

fn name(s: &'static str) -> TopicName {
    TopicName(StrBytes::from_static_str(s))
}

/// A request frame as a client sends it.
async fn request_frame<T: Encodable>(key: ApiKey, version: i16, body: &T) -> (Frame, Peek) {
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(7)
        .with_client_id(Some(StrBytes::from_static_str("test")));
    let bytes = frame::encode_request(key, &header, body, "request").expect("encode");
    let frame = frame::read_frame(&mut bytes.as_ref(), usize::MAX)
        .await
        .expect("read")
        .expect("frame");
    let peek = frame.peek().expect("peek");
    (frame, peek)
}

/// `t` partitions 0 (log start 4) and 1 (none), `u` partition 0 (log start 1).
fn retention() -> Retention {
    let r = Retention::default();
    assert!(r.is_empty());
    assert_eq!(r.expire_before("t", 0, 4), 4);
    assert_eq!(r.expire_before("u", 0, 1), 1);
    assert!(!r.is_empty());
    r
}

fn fetch_request(t0: i64, t1: i64, u0: i64) -> FetchRequest {
    let part = |p, offset| {
        FetchPartition::default()
            .with_partition(p)
            .with_fetch_offset(offset)
    };
    FetchRequest::default().with_topics(vec![
        FetchTopic::default()
            .with_topic(name("t"))
            .with_partitions(vec![part(0, t0), part(1, t1)]),
        FetchTopic::default()
            .with_topic(name("u"))
            .with_partitions(vec![part(0, u0)]),
    ])
}

/// What the broker answers: every partition with records, log start 0, high watermark 10.
fn fetch_response() -> FetchResponse {
    let part = |p| {
        PartitionData::default()
            .with_partition_index(p)
            .with_high_watermark(10)
            .with_last_stable_offset(10)
            .with_log_start_offset(0)
            .with_records(Some(Bytes::from_static(b"batches")))
    };
    FetchResponse::default().with_responses(vec![
        FetchableTopicResponse::default()
            .with_topic(name("t"))
            .with_partitions(vec![part(0), part(1)]),
        FetchableTopicResponse::default()
            .with_topic(name("u"))
            .with_partitions(vec![part(0)]),
    ])
}

/// `(topic, partition, error, log start, has records)` per partition; no records are sent as
/// an empty record set, never as a null one.
fn summary(response: &FetchResponse) -> Vec<(String, i32, i16, i64, bool)> {
    response
        .responses
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                (
                    t.topic.to_string(),
                    p.partition_index,
                    p.error_code,
                    p.log_start_offset,
                    p.records.as_ref().is_some_and(|r| !r.is_empty()),
                )
            })
        })
        .collect()
}

#[test]
fn the_log_start_never_moves_back() {
    let r = retention();
    assert_eq!(r.expire_before("t", 0, 2), 4);
    assert_eq!(r.expire_before("t", 0, 6), 6);
    assert_eq!(r.log_start("t", 0), Some(6));
    assert_eq!(r.log_start("t", 1), None);
}

#[test]
fn fetches_below_the_log_start_are_out_of_range_and_others_untouched() {
    let r = retention();
    let starts = |t: &str, p| r.log_start(t, p);
    let targets = fetch_targets(&fetch_request(2, 0, 3), starts);
    assert_eq!(targets.len(), 2, "{targets:?}");
    let mut response = fetch_response();
    rewrite_fetch(&mut response.responses, 12, &targets);
    assert_eq!(
        summary(&response),
        vec![
            ("t".into(), 0, 1, 4, false),
            ("t".into(), 1, 0, 0, true),
            ("u".into(), 0, 0, 1, true),
        ]
    );
    // An empty record set: librdkafka rejects a null one.
    assert_eq!(
        response.responses[0].partitions[0].records,
        Some(Bytes::new())
    );
    // High watermarks are the broker's.
    assert!(response.responses[0]
        .partitions
        .iter()
        .all(|p| p.high_watermark == 10));

    // At the log start: records pass, with the log start reported.
    let targets = fetch_targets(&fetch_request(4, 0, 0), starts);
    let mut response = fetch_response();
    rewrite_fetch(&mut response.responses, 12, &targets);
    assert_eq!(
        summary(&response),
        vec![
            ("t".into(), 0, 0, 4, true),
            ("t".into(), 1, 0, 0, true),
            ("u".into(), 0, 1, 1, false),
        ]
    );

    // The broker's own errors stand.
    let targets = fetch_targets(&fetch_request(0, 0, 3), starts);
    let mut response = fetch_response();
    response.responses[0].partitions[0].error_code = 3;
    rewrite_fetch(&mut response.responses, 12, &targets);
    assert_eq!(response.responses[0].partitions[0].error_code, 3);
}

#[test]
fn listed_offsets_below_the_log_start_are_raised() {
    let r = retention();
    let part = |p, ts| {
        ListOffsetsPartition::default()
            .with_partition_index(p)
            .with_timestamp(ts)
    };
    let request = ListOffsetsRequest::default().with_topics(vec![ListOffsetsTopic::default()
        .with_name(name("t"))
        .with_partitions(vec![part(0, -2), part(1, -2)])]);
    let targets = list_offsets_targets(&request, |t, p| r.log_start(t, p));
    let answer = |p, offset| {
        ListOffsetsPartitionResponse::default()
            .with_partition_index(p)
            .with_offset(offset)
    };
    let mut response =
        ListOffsetsResponse::default().with_topics(vec![ListOffsetsTopicResponse::default()
            .with_name(name("t"))
            .with_partitions(vec![answer(0, 0), answer(1, 0)])]);
    rewrite_list_offsets(&mut response, &targets);
    let offsets: Vec<i64> = response.topics[0]
        .partitions
        .iter()
        .map(|p| p.offset)
        .collect();
    assert_eq!(offsets, vec![4, 0]);

    // Offsets at or past the log start, -1 (none) and errors are left alone.
    for (offset, error, want) in [(7, 0, 7), (-1, 0, -1), (0, 6, 0)] {
        let mut response =
            ListOffsetsResponse::default().with_topics(vec![ListOffsetsTopicResponse::default()
                .with_name(name("t"))
                .with_partitions(vec![answer(0, offset).with_error_code(error)])]);
        rewrite_list_offsets(&mut response, &targets);
        assert_eq!(response.topics[0].partitions[0].offset, want);
    }
}

#[tokio::test]
async fn plans_and_rewrites_whole_frames() {
    let r = retention();
    for version in [4, 11, 12] {
        let (frame, peek) = request_frame(ApiKey::Fetch, version, &fetch_request(1, 1, 1)).await;
        let rewrite = plan(&frame, peek, &r).expect("plan").expect("a rewrite");
        let upstream = fetch_response().with_throttle_time_ms(3);
        let upstream =
            frame::encode_response(ApiKey::Fetch, 7, version, &upstream, "F").expect("encode");
        let bytes = super::rewrite(&upstream, &rewrite).expect("rewrite");
        let (header, response): (_, FetchResponse) =
            frame::decode_response(bytes.slice(4..), ApiKey::Fetch, version, "Fetch")
                .expect("decode");
        assert_eq!(header.correlation_id, 7);
        assert_eq!(response.throttle_time_ms, 3, "v{version}");
        let got = summary(&response);
        assert_eq!((got[0].2, got[0].4), (1, false), "v{version}");
        assert_eq!((got[1].2, got[1].4), (0, true), "v{version}");
        assert_eq!((got[2].2, got[2].4), (0, true), "v{version}");
        if version >= 5 {
            assert_eq!((got[0].3, got[2].3), (4, 1), "v{version}");
        }
    }

    // Tagged fields after the topics pass as they came, even those the version does not
    // define (tansu sends node endpoints, tag 0, with v12).
    let (frame, peek) = request_frame(ApiKey::Fetch, 12, &fetch_request(1, 1, 1)).await;
    let rewrite = plan(&frame, peek, &r).expect("plan").expect("a rewrite");
    let mut upstream = frame::encode_response(ApiKey::Fetch, 7, 12, &fetch_response(), "F")
        .expect("encode")
        .to_vec();
    // No tagged fields (0) becomes one: tag 0, two bytes.
    assert_eq!(upstream.pop(), Some(0));
    upstream.extend([1, 0, 2, 0xab, 0xcd]);
    let len = u32::try_from(upstream.len() - 4).expect("len");
    upstream[..4].copy_from_slice(&len.to_be_bytes());
    let upstream = Bytes::from(upstream);
    let strict: Result<(_, FetchResponse), _> =
        frame::decode_response(upstream.slice(4..), ApiKey::Fetch, 12, "Fetch");
    assert!(strict.is_err(), "kafka-protocol rejects tag 0 at v12");
    let bytes = super::rewrite(&upstream, &rewrite).expect("rewrite");
    let (_, before): (_, FetchBody) =
        frame::decode_response(upstream.slice(4..), ApiKey::Fetch, 12, "Fetch").expect("split");
    let (_, after): (_, FetchBody) =
        frame::decode_response(bytes.slice(4..), ApiKey::Fetch, 12, "Fetch").expect("split");
    assert_eq!((&after.head, &after.tail), (&before.head, &before.tail));
    assert_eq!(&after.tail[..], &[1, 0, 2, 0xab, 0xcd]);
    let response = FetchResponse::default().with_responses(after.topics);
    assert_eq!(summary(&response)[0], ("t".into(), 0, 1, 4, false));

    // Partitions without a log start: nothing to rewrite.
    let request = FetchRequest::default().with_topics(vec![FetchTopic::default()
        .with_topic(name("t"))
        .with_partitions(vec![FetchPartition::default().with_partition(1)])]);
    let (frame, peek) = request_frame(ApiKey::Fetch, 12, &request).await;
    assert_eq!(plan(&frame, peek, &r).expect("plan"), None);

    let request = ListOffsetsRequest::default().with_topics(vec![ListOffsetsTopic::default()
        .with_name(name("t"))
        .with_partitions(vec![ListOffsetsPartition::default()
            .with_partition_index(0)
            .with_timestamp(-2)])]);
    let (frame, peek) = request_frame(ApiKey::ListOffsets, 7, &request).await;
    let rewrite = plan(&frame, peek, &r).expect("plan").expect("a rewrite");
    let upstream =
        ListOffsetsResponse::default().with_topics(vec![ListOffsetsTopicResponse::default()
            .with_name(name("t"))
            .with_partitions(vec![ListOffsetsPartitionResponse::default()
                .with_partition_index(0)
                .with_offset(0)])]);
    let upstream =
        frame::encode_response(ApiKey::ListOffsets, 7, 7, &upstream, "L").expect("encode");
    let bytes = super::rewrite(&upstream, &rewrite).expect("rewrite");
    let (_, response): (_, ListOffsetsResponse) =
        frame::decode_response(bytes.slice(4..), ApiKey::ListOffsets, 7, "ListOffsets")
            .expect("decode");
    assert_eq!(response.topics[0].partitions[0].offset, 4);
}
