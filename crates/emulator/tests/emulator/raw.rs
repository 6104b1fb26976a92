//! The wire protocol spoken directly (kafka-protocol over tokio-rustls), for what librdkafka
//! does not show: advertised versions, SASL rules, requests before authentication.

use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, MetadataRequest, MetadataResponse,
    SaslAuthenticateRequest, SaslAuthenticateResponse,
};
use kafka_protocol::protocol::StrBytes;
use tokio::io::AsyncWriteExt;

use super::support::emulator::{EventHubsEmulator, RawClient as Client};

#[tokio::test(flavor = "multi_thread")]
async fn api_versions_advertise_plain_sasl_and_other_mechanisms_are_refused() {
    super::init_logs();
    let eh = EventHubsEmulator::start();
    let mut c = Client::connect(&eh).await;
    let id = c
        .send(
            ApiKey::ApiVersions,
            3,
            &ApiVersionsRequest::default()
                .with_client_software_name(StrBytes::from_static_str("raw-test"))
                .with_client_software_version(StrBytes::from_static_str("1")),
        )
        .await;
    let versions: ApiVersionsResponse = c.recv(ApiKey::ApiVersions, 3, id).await;
    assert_eq!(versions.error_code, 0);
    let range = |key: ApiKey| {
        versions
            .api_keys
            .iter()
            .find(|v| v.api_key == key as i16)
            .map(|v| (v.min_version, v.max_version))
    };
    println!(
        "advertised: {:?}",
        versions
            .api_keys
            .iter()
            .map(|v| (v.api_key, v.min_version, v.max_version))
            .collect::<Vec<_>>()
    );
    assert_eq!(range(ApiKey::SaslHandshake), Some((0, 1)));
    assert_eq!(range(ApiKey::SaslAuthenticate), Some((0, 2)));
    assert!(
        range(ApiKey::Produce).is_some()
            && range(ApiKey::Fetch).is_some()
            && range(ApiKey::Metadata).is_some()
    );

    // A version the emulator does not know: UNSUPPORTED_VERSION in a v0 body.
    let id = c
        .send(ApiKey::ApiVersions, 9, &ApiVersionsRequest::default())
        .await;
    let refused: ApiVersionsResponse = c.recv(ApiKey::ApiVersions, 0, id).await;
    assert_eq!(refused.error_code, 35);
    assert!(!refused.api_keys.is_empty());

    let scram = c.handshake(1, "SCRAM-SHA-256").await;
    assert_eq!(scram.error_code, 33);
    assert_eq!(scram.mechanisms, vec![StrBytes::from_static_str("PLAIN")]);
    c.assert_closed().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_before_authentication_close_the_connection() {
    super::init_logs();
    let eh = EventHubsEmulator::start();
    let mut c = Client::connect(&eh).await;
    c.send(ApiKey::Metadata, 4, &MetadataRequest::default())
        .await;
    c.assert_closed().await;

    // SaslAuthenticate without a handshake.
    let mut c = Client::connect(&eh).await;
    let auth = SaslAuthenticateRequest::default().with_auth_bytes(eh.plain_token());
    let id = c.send(ApiKey::SaslAuthenticate, 1, &auth).await;
    let refused: SaslAuthenticateResponse = c.recv(ApiKey::SaslAuthenticate, 1, id).await;
    assert_eq!(refused.error_code, 34, "ILLEGAL_SASL_STATE");
    c.assert_closed().await;

    // An oversize frame, even before authentication.
    let mut c = Client::connect(&eh).await;
    c.tls
        .write_all(&2_000_000u32.to_be_bytes())
        .await
        .expect("write");
    c.tls.write_all(&[0u8; 1024]).await.expect("write");
    c.tls.flush().await.expect("flush");
    c.assert_closed().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn authenticated_requests_are_relayed_with_handshake_v1_and_v0() {
    super::init_logs();
    let eh = EventHubsEmulator::start();
    let port = eh.emulator.local_addr().port() as i32;

    let mut c = Client::connect(&eh).await;
    assert_eq!(c.handshake(1, "PLAIN").await.error_code, 0);
    let auth = SaslAuthenticateRequest::default().with_auth_bytes(eh.plain_token());
    let id = c.send(ApiKey::SaslAuthenticate, 2, &auth).await;
    let ok: SaslAuthenticateResponse = c.recv(ApiKey::SaslAuthenticate, 2, id).await;
    assert_eq!((ok.error_code, ok.error_message), (0, None));
    // Pipelined: the emulator's own answer (ApiVersions) waits for the earlier upstream
    // response (Metadata); `recv` checks the correlation ids come back in order.
    let first = c
        .send(ApiKey::Metadata, 9, &MetadataRequest::default())
        .await;
    let second = c
        .send(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default())
        .await;
    let md: MetadataResponse = c.recv(ApiKey::Metadata, 9, first).await;
    assert!(
        md.brokers.iter().all(|b| b.port == port),
        "brokers point back at the emulator"
    );
    let again: ApiVersionsResponse = c.recv(ApiKey::ApiVersions, 3, second).await;
    assert!(again
        .api_keys
        .iter()
        .any(|v| v.api_key == ApiKey::SaslAuthenticate as i16));

    // Handshake v0: the PLAIN token follows as a bare frame, success is an empty frame.
    let mut c = Client::connect(&eh).await;
    assert_eq!(c.handshake(0, "PLAIN").await.error_code, 0);
    c.send_frame(&eh.plain_token()).await;
    assert_eq!(c.recv_frame().await.map(|b| b.len()), Some(0));
    let id = c
        .send(ApiKey::Metadata, 1, &MetadataRequest::default())
        .await;
    let md: MetadataResponse = c.recv(ApiKey::Metadata, 1, id).await;
    assert!(!md.brokers.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn topic_configs_are_taken_as_event_hubs_takes_them() {
    use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
    use kafka_protocol::messages::incremental_alter_configs_request::{
        AlterConfigsResource, AlterableConfig,
    };
    use kafka_protocol::messages::{
        CreateTopicsRequest, CreateTopicsResponse, IncrementalAlterConfigsRequest,
        IncrementalAlterConfigsResponse, TopicName,
    };
    super::init_logs();
    let eh = EventHubsEmulator::start();
    let mut c = Client::connect_authenticated(&eh).await;
    let id = c
        .send(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default())
        .await;
    let versions: ApiVersionsResponse = c.recv(ApiKey::ApiVersions, 3, id).await;
    let advertised = |key: ApiKey| versions.api_keys.iter().any(|v| v.api_key == key as i16);
    assert!(advertised(ApiKey::DescribeConfigs) && advertised(ApiKey::CreateTopics));
    assert!(!advertised(ApiKey::AlterConfigs) && !advertised(ApiKey::IncrementalAlterConfigs));

    // Sent anyway: refused for the resource.
    let alter = IncrementalAlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(StrBytes::from_static_str("t"))
            .with_configs(vec![AlterableConfig::default()
                .with_name(StrBytes::from_static_str("retention.ms"))
                .with_value(Some(StrBytes::from_static_str("1")))]),
    ]);
    let id = c.send(ApiKey::IncrementalAlterConfigs, 1, &alter).await;
    let r: IncrementalAlterConfigsResponse = c.recv(ApiKey::IncrementalAlterConfigs, 1, id).await;
    assert_eq!(
        r.responses[0].error_code, 42,
        "{:?}",
        r.responses[0].error_message
    );

    // At creation: cleanup.policy and retention.ms pass, anything else is INVALID_CONFIG.
    let create = |name: &'static str, configs: &[(&'static str, &'static str)]| {
        CreateTopicsRequest::default()
            .with_timeout_ms(10_000)
            .with_topics(vec![CreatableTopic::default()
                .with_name(TopicName(StrBytes::from_static_str(name)))
                .with_num_partitions(1)
                .with_replication_factor(-1)
                .with_configs(
                    configs
                        .iter()
                        .map(|(k, v)| {
                            CreatableTopicConfig::default()
                                .with_name(StrBytes::from_static_str(k))
                                .with_value(Some(StrBytes::from_static_str(v)))
                        })
                        .collect(),
                )])
    };
    let id = c
        .send(
            ApiKey::CreateTopics,
            5,
            &create("bad", &[("max.message.bytes", "10")]),
        )
        .await;
    let r: CreateTopicsResponse = c.recv(ApiKey::CreateTopics, 5, id).await;
    assert_eq!(
        r.topics[0].error_code, 40,
        "{:?}",
        r.topics[0].error_message
    );
    let good = create(
        "good",
        &[("cleanup.policy", "compact"), ("retention.ms", "5000")],
    );
    let id = c.send(ApiKey::CreateTopics, 5, &good).await;
    let r: CreateTopicsResponse = c.recv(ApiKey::CreateTopics, 5, id).await;
    assert_eq!(r.topics[0].error_code, 0, "{:?}", r.topics[0].error_message);
}
