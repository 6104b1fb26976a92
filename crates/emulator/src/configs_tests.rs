use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{RequestHeader, TopicName};
use kafka_protocol::protocol::{Encodable, StrBytes};

use super::*;

fn frame<T: Encodable>(key: ApiKey, version: i16, body: &T) -> Frame {
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(7);
    Frame::from_raw(frame::encode_request(key, &header, body, "test").expect("encode"))
}

fn topic(name: &str, configs: &[(&str, &str)]) -> CreatableTopic {
    CreatableTopic::default()
        .with_name(TopicName(StrBytes::from_string(name.into())))
        .with_num_partitions(3)
        .with_replication_factor(-1)
        .with_configs(
            configs
                .iter()
                .map(|(k, v)| {
                    CreatableTopicConfig::default()
                        .with_name(StrBytes::from_string(k.to_string()))
                        .with_value(Some(StrBytes::from_string(v.to_string())))
                })
                .collect(),
        )
}

fn answer(request: &CreateTopicsRequest, version: i16) -> Option<Vec<(String, i16, String)>> {
    let f = frame(ApiKey::CreateTopics, version, request);
    let bytes = plan_create_topics(&f, f.peek().expect("peek")).expect("plan")?;
    let (header, response): (_, CreateTopicsResponse) = frame::decode_response(
        bytes.slice(4..),
        ApiKey::CreateTopics,
        version,
        "CreateTopics",
    )
    .expect("decode");
    assert_eq!(header.correlation_id, 7);
    Some(
        response
            .topics
            .into_iter()
            .map(|t| {
                let message = t.error_message.map(|m| m.to_string()).unwrap_or_default();
                (t.name.to_string(), t.error_code, message)
            })
            .collect(),
    )
}

#[test]
fn creation_with_accepted_configs_goes_upstream() {
    let request = CreateTopicsRequest::default().with_topics(vec![topic(
        "a",
        &[("cleanup.policy", "compact"), ("retention.ms", "5000")],
    )]);
    for version in [2, 5, 7] {
        assert_eq!(answer(&request, version), None, "v{version}");
    }
}

#[test]
fn other_configs_are_refused_with_invalid_config_naming_them() {
    let request = CreateTopicsRequest::default().with_topics(vec![
        topic(
            "a",
            &[
                ("retention.ms", "5"),
                ("max.message.bytes", "10"),
                ("segment.ms", "1"),
            ],
        ),
        topic("b", &[("cleanup.policy", "compact")]),
    ]);
    let got = answer(&request, 5).expect("answered by the emulator");
    assert_eq!(got.len(), 2);
    assert_eq!((got[0].0.as_str(), got[0].1), ("a", 40));
    assert!(
        got[0].2.contains("refused: max.message.bytes, segment.ms"),
        "{}",
        got[0].2
    );
    assert!(
        got[0].2.contains("cleanup.policy and retention.ms"),
        "{}",
        got[0].2
    );
    assert_eq!((got[1].0.as_str(), got[1].1), ("b", 42));
}

#[test]
fn validate_only_requests_are_answered_without_creating() {
    let request = CreateTopicsRequest::default()
        .with_validate_only(true)
        .with_topics(vec![topic("a", &[("retention.ms", "5")])]);
    assert_eq!(
        answer(&request, 5),
        Some(vec![("a".into(), 0, String::new())])
    );
}

#[test]
fn incremental_alter_configs_is_refused_per_resource() {
    let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(StrBytes::from_static_str("t"))
            .with_configs(vec![AlterableConfig::default()
                .with_name(StrBytes::from_static_str("retention.ms"))
                .with_value(Some(StrBytes::from_static_str("1")))]),
    ]);
    for version in [0, 1] {
        let f = frame(ApiKey::IncrementalAlterConfigs, version, &request);
        let bytes = refuse_alter(&f, f.peek().expect("peek"), ApiKey::IncrementalAlterConfigs)
            .expect("answer");
        let (_, response): (_, IncrementalAlterConfigsResponse) = frame::decode_response(
            bytes.slice(4..),
            ApiKey::IncrementalAlterConfigs,
            version,
            "IncrementalAlterConfigs",
        )
        .expect("decode");
        let r = &response.responses[0];
        assert_eq!(
            (r.error_code, r.resource_type, r.resource_name.as_str()),
            (42, 2, "t")
        );
        assert_eq!(r.error_message.as_deref(), Some(ALTER_REFUSED));
    }
}

#[test]
fn alter_configs_is_refused_per_resource() {
    use kafka_protocol::messages::alter_configs_request::AlterConfigsResource as Resource;
    let request = AlterConfigsRequest::default().with_resources(vec![Resource::default()
        .with_resource_type(2)
        .with_resource_name(StrBytes::from_static_str("t"))]);
    let f = frame(ApiKey::AlterConfigs, 1, &request);
    let bytes = refuse_alter(&f, f.peek().expect("peek"), ApiKey::AlterConfigs).expect("answer");
    let (_, response): (_, AlterConfigsResponse) =
        frame::decode_response(bytes.slice(4..), ApiKey::AlterConfigs, 1, "AlterConfigs")
            .expect("decode");
    assert_eq!(response.responses[0].error_code, 42);
}
