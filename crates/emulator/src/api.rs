//! The requests the emulator answers itself: ApiVersions (with the list `versions` makes),
//! SaslHandshake, SaslAuthenticate, and refused CreateTopics and Produce requests.

use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, CreateTopicsRequest, CreateTopicsResponse,
    ProduceRequest, ProduceResponse, SaslAuthenticateRequest, SaslAuthenticateResponse,
    SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::{Message, StrBytes};
use tracing::{debug, info};

use super::frame::{self, Frame, FrameError, Peek};

/// What refused CreateTopics requests are told, per topic.
pub(crate) const CREATE_TOPICS_REFUSED: &str = "topic creation is not allowed on this namespace";

/// The answer to an ApiVersions request. Versions the emulator does not know get
/// UNSUPPORTED_VERSION in a v0 body, as Kafka does, so that the client retries with one it
/// knows. ApiVersions responses always have a v0 header.
pub(crate) fn api_versions(
    frame: &Frame,
    peek: Peek,
    versions: Vec<ApiVersion>,
) -> Result<Bytes, FrameError> {
    let known = ApiVersionsRequest::VERSIONS;
    if peek.api_version < known.min || peek.api_version > known.max {
        debug!(
            version = peek.api_version,
            "ApiVersions version not supported"
        );
        let body = ApiVersionsResponse::default()
            .with_error_code(ResponseError::UnsupportedVersion.code())
            .with_api_keys(versions);
        return frame::encode_response(
            ApiKey::ApiVersions,
            peek.correlation_id,
            0,
            &body,
            "ApiVersions",
        );
    }
    let (header, request): (_, ApiVersionsRequest) =
        frame::decode_request(frame, ApiKey::ApiVersions, "ApiVersions")?;
    debug!(
        version = peek.api_version,
        client_id = header.client_id.as_deref().unwrap_or(""),
        software = %request.client_software_name,
        software_version = %request.client_software_version,
        "ApiVersions"
    );
    let body = ApiVersionsResponse::default().with_api_keys(versions);
    frame::encode_response(
        ApiKey::ApiVersions,
        peek.correlation_id,
        peek.api_version,
        &body,
        "ApiVersions",
    )
}

/// The mechanism a SaslHandshake request asks for.
pub(crate) fn sasl_handshake_mechanism(frame: &Frame) -> Result<StrBytes, FrameError> {
    let (_, request): (_, SaslHandshakeRequest) =
        frame::decode_request(frame, ApiKey::SaslHandshake, "SaslHandshake")?;
    Ok(request.mechanism)
}

/// The answer to a SaslHandshake request: accepted or UNSUPPORTED_SASL_MECHANISM, with the
/// enabled mechanisms listed either way.
pub(crate) fn sasl_handshake(
    peek: Peek,
    accepted: bool,
    enabled: &[&'static str],
) -> Result<Bytes, FrameError> {
    let code = if accepted {
        0
    } else {
        ResponseError::UnsupportedSaslMechanism.code()
    };
    let mechanisms = enabled
        .iter()
        .map(|m| StrBytes::from_static_str(m))
        .collect();
    let body = SaslHandshakeResponse::default()
        .with_error_code(code)
        .with_mechanisms(mechanisms);
    frame::encode_response(
        ApiKey::SaslHandshake,
        peek.correlation_id,
        peek.api_version,
        &body,
        "SaslHandshake",
    )
}

/// Decodes a SaslAuthenticate request's token.
pub(crate) fn sasl_authenticate_token(frame: &Frame) -> Result<Bytes, FrameError> {
    let (_, request): (_, SaslAuthenticateRequest) =
        frame::decode_request(frame, ApiKey::SaslAuthenticate, "SaslAuthenticate")?;
    Ok(request.auth_bytes)
}

/// The answer to a SaslAuthenticate request: success with `session_lifetime_ms` (KIP-368, 0
/// for none; only in v1 and later), or `error` with its message.
pub(crate) fn sasl_authenticate(
    peek: Peek,
    error: Option<(ResponseError, &str)>,
    session_lifetime_ms: i64,
) -> Result<Bytes, FrameError> {
    let body = match error {
        // Kafka sends a null message on success.
        None => SaslAuthenticateResponse::default()
            .with_error_message(None)
            .with_session_lifetime_ms(session_lifetime_ms),
        Some((code, message)) => SaslAuthenticateResponse::default()
            .with_error_code(code.code())
            .with_error_message(Some(StrBytes::from_string(message.to_string()))),
    };
    frame::encode_response(
        ApiKey::SaslAuthenticate,
        peek.correlation_id,
        peek.api_version,
        &body,
        "SaslAuthenticate",
    )
}

/// The answer to a refused CreateTopics request: POLICY_VIOLATION for every topic.
pub(crate) fn refuse_create_topics(frame: &Frame, peek: Peek) -> Result<Bytes, FrameError> {
    let (_, request): (_, CreateTopicsRequest) =
        frame::decode_request(frame, ApiKey::CreateTopics, "CreateTopics")?;
    let topics = request
        .topics
        .into_iter()
        .map(|t| {
            info!(topic = %t.name.as_str(), "refused CreateTopics");
            CreatableTopicResult::default()
                .with_name(t.name)
                .with_error_code(ResponseError::PolicyViolation.code())
                .with_error_message(Some(StrBytes::from_static_str(CREATE_TOPICS_REFUSED)))
        })
        .collect();
    let body = CreateTopicsResponse::default().with_topics(topics);
    frame::encode_response(
        ApiKey::CreateTopics,
        peek.correlation_id,
        peek.api_version,
        &body,
        "CreateTopics",
    )
}

/// Decodes a Produce request (once per request: `acks`, `timeout_ms` and the record batches).
pub(crate) fn decode_produce(frame: &Frame) -> Result<ProduceRequest, FrameError> {
    let (_, request) = frame::decode_request(frame, ApiKey::Produce, "Produce")?;
    Ok(request)
}

/// What refused (throttled) Produce requests are told, per partition (versions 8 and later).
pub(crate) const PRODUCE_THROTTLED: &str =
    "request throttled past half its timeout (emulated Event Hubs throttling)";

/// The answer to a Produce request held by a throttle window past half its timeout:
/// POLICY_VIOLATION and base offset -1 for every partition, `throttle_time_ms` the time held.
pub(crate) fn refuse_produce(
    peek: Peek,
    request: &ProduceRequest,
    held: Duration,
) -> Result<Bytes, FrameError> {
    let responses = request
        .topic_data
        .iter()
        .map(|t| {
            let partitions = t
                .partition_data
                .iter()
                .map(|p| {
                    PartitionProduceResponse::default()
                        .with_index(p.index)
                        .with_error_code(ResponseError::PolicyViolation.code())
                        .with_base_offset(-1)
                        .with_log_append_time_ms(-1)
                        .with_log_start_offset(-1)
                        .with_error_message(Some(StrBytes::from_static_str(PRODUCE_THROTTLED)))
                })
                .collect();
            TopicProduceResponse::default()
                .with_name(t.name.clone())
                .with_topic_id(t.topic_id)
                .with_partition_responses(partitions)
        })
        .collect();
    let throttle_time_ms = i32::try_from(held.as_millis()).unwrap_or(i32::MAX);
    let body = ProduceResponse::default()
        .with_responses(responses)
        .with_throttle_time_ms(throttle_time_ms);
    frame::encode_response(
        ApiKey::Produce,
        peek.correlation_id,
        peek.api_version,
        &body,
        "Produce",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_produce_answers_every_partition_at_the_request_version() {
        use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
        use kafka_protocol::messages::TopicName;

        let request = ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(2000)
            .with_topic_data(vec![
                TopicProduceData::default()
                    .with_name(TopicName(StrBytes::from_static_str("a")))
                    .with_partition_data(vec![
                        PartitionProduceData::default().with_index(0),
                        PartitionProduceData::default().with_index(2),
                    ]),
                TopicProduceData::default()
                    .with_name(TopicName(StrBytes::from_static_str("b")))
                    .with_partition_data(vec![PartitionProduceData::default().with_index(1)]),
            ]);
        for version in [3, 7, 8, 9, 12] {
            let peek = Peek {
                api_key: ApiKey::Produce as i16,
                api_version: version,
                correlation_id: 42,
            };
            let bytes =
                refuse_produce(peek, &request, Duration::from_millis(1500)).expect("encode");
            let (header, response): (_, ProduceResponse) =
                frame::decode_response(bytes.slice(4..), ApiKey::Produce, version, "Produce")
                    .expect("decode");
            assert_eq!(header.correlation_id, 42);
            assert_eq!(response.throttle_time_ms, 1500);
            let got: Vec<(String, i32, i16, i64)> = response
                .responses
                .iter()
                .flat_map(|t| {
                    t.partition_responses
                        .iter()
                        .map(|p| (t.name.to_string(), p.index, p.error_code, p.base_offset))
                })
                .collect();
            assert_eq!(
                got,
                vec![
                    ("a".to_string(), 0, 44, -1),
                    ("a".to_string(), 2, 44, -1),
                    ("b".to_string(), 1, 44, -1)
                ],
                "v{version}"
            );
        }
    }
}
