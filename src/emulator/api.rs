//! The requests the emulator answers itself: ApiVersions (the upstream broker's list plus the
//! SASL APIs), SaslHandshake, SaslAuthenticate and, when refusing, CreateTopics.

use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, CreateTopicsRequest, CreateTopicsResponse,
    ProduceRequest, ProduceResponse, RequestHeader, SaslAuthenticateRequest,
    SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::{Message, StrBytes};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tracing::{debug, info};

use super::frame::{self, Frame, FrameError, Peek};
use super::sasl::PLAIN;
use super::Shared;

/// What refused CreateTopics requests are told, per topic.
pub(crate) const CREATE_TOPICS_REFUSED: &str = "topic creation is not allowed on this namespace";

/// How long asking the upstream broker for its API versions may take.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(10);

/// The version the emulator asks the upstream broker for its API versions with (librdkafka's).
const UPSTREAM_API_VERSIONS_VERSION: i16 = 3;

/// Why the upstream broker's API versions are unknown.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UpstreamError {
    /// Connecting or talking to it failed.
    #[error("upstream {upstream}: {source}")]
    Io {
        /// `host:port`.
        upstream: String,
        /// The reason.
        source: std::io::Error,
    },
    /// It did not answer in time.
    #[error("upstream {0}: no ApiVersions answer within {UPSTREAM_TIMEOUT:?}")]
    Timeout(String),
    /// Its answer could not be read.
    #[error("upstream {upstream}: {source}")]
    Frame {
        /// `host:port`.
        upstream: String,
        /// The reason.
        source: FrameError,
    },
    /// It answered with an error code.
    #[error("upstream {upstream}: ApiVersions error {code}")]
    Refused {
        /// `host:port`.
        upstream: String,
        /// The Kafka error code.
        code: i16,
    },
}

/// The upstream broker's API versions, asked once per emulator (failures are not cached).
pub(crate) async fn upstream_versions(shared: &Shared) -> Result<&[ApiVersion], UpstreamError> {
    let versions = shared
        .upstream_versions
        .get_or_try_init(|| async {
            let upstream = shared.upstream.clone();
            tokio::time::timeout(UPSTREAM_TIMEOUT, fetch_upstream_versions(&upstream))
                .await
                .map_err(|_| UpstreamError::Timeout(upstream))?
        })
        .await?;
    Ok(versions)
}

async fn fetch_upstream_versions(upstream: &str) -> Result<Vec<ApiVersion>, UpstreamError> {
    let io = |source| UpstreamError::Io {
        upstream: upstream.to_string(),
        source,
    };
    let framing = |source| UpstreamError::Frame {
        upstream: upstream.to_string(),
        source,
    };
    let mut tcp = TcpStream::connect(upstream).await.map_err(io)?;
    let version = UPSTREAM_API_VERSIONS_VERSION;
    let header = RequestHeader::default()
        .with_request_api_key(ApiKey::ApiVersions as i16)
        .with_request_api_version(version)
        .with_correlation_id(1)
        .with_client_id(Some(StrBytes::from_static_str("hubmirror-emulator")));
    let request = ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("hubmirror-emulator"))
        .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
    let bytes = frame::encode_request(ApiKey::ApiVersions, &header, &request, "ApiVersions")
        .map_err(framing)?;
    tcp.write_all(&bytes).await.map_err(io)?;
    let reply = frame::read_frame(&mut tcp, usize::MAX)
        .await
        .map_err(framing)?
        .ok_or(framing(FrameError::Truncated))?;
    let (_, response): (_, ApiVersionsResponse) =
        frame::decode_response(reply.body(), ApiKey::ApiVersions, version, "ApiVersions")
            .map_err(framing)?;
    if response.error_code != 0 {
        return Err(UpstreamError::Refused {
            upstream: upstream.to_string(),
            code: response.error_code,
        });
    }
    let summary: Vec<String> = response
        .api_keys
        .iter()
        .map(|v| format!("{}:{}-{}", v.api_key, v.min_version, v.max_version))
        .collect();
    info!(%upstream, versions = %summary.join(" "), "upstream broker API versions");
    Ok(response.api_keys)
}

/// What the emulator advertises: the upstream broker's APIs, with ApiVersions and the SASL
/// APIs replaced by the emulator's own and the APIs it decodes (Produce for `acks`,
/// CreateTopics) narrowed to the versions `kafka-protocol` knows.
pub(crate) fn advertised(upstream: &[ApiVersion]) -> Vec<ApiVersion> {
    let own = [
        (ApiKey::ApiVersions, ApiVersionsRequest::VERSIONS),
        (ApiKey::SaslHandshake, SaslHandshakeRequest::VERSIONS),
        (ApiKey::SaslAuthenticate, SaslAuthenticateRequest::VERSIONS),
    ];
    let decoded = [ApiKey::Produce, ApiKey::CreateTopics];
    let mut out: Vec<ApiVersion> = upstream
        .iter()
        .filter(|v| !own.iter().any(|(k, _)| *k as i16 == v.api_key))
        .filter_map(|v| {
            let Some(key) = decoded.iter().find(|k| **k as i16 == v.api_key) else {
                return Some(v.clone());
            };
            let valid = key.valid_versions();
            let (min, max) = (v.min_version.max(valid.min), v.max_version.min(valid.max));
            (min <= max).then(|| v.clone().with_min_version(min).with_max_version(max))
        })
        .collect();
    out.extend(own.iter().map(|(key, range)| {
        ApiVersion::default()
            .with_api_key(*key as i16)
            .with_min_version(range.min)
            .with_max_version(range.max)
    }));
    out.sort_by_key(|v| v.api_key);
    out
}

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

/// The answer to a SaslHandshake request, and whether the mechanism is the enabled one.
pub(crate) fn sasl_handshake(frame: &Frame, peek: Peek) -> Result<(Bytes, bool), FrameError> {
    let (_, request): (_, SaslHandshakeRequest) =
        frame::decode_request(frame, ApiKey::SaslHandshake, "SaslHandshake")?;
    let ok = request.mechanism.as_str() == PLAIN;
    let code = if ok {
        0
    } else {
        info!(mechanism = %request.mechanism, "SASL mechanism not enabled");
        ResponseError::UnsupportedSaslMechanism.code()
    };
    let body = SaslHandshakeResponse::default()
        .with_error_code(code)
        .with_mechanisms(vec![StrBytes::from_static_str(PLAIN)]);
    let bytes = frame::encode_response(
        ApiKey::SaslHandshake,
        peek.correlation_id,
        peek.api_version,
        &body,
        "SaslHandshake",
    )?;
    Ok((bytes, ok))
}

/// Decodes a SaslAuthenticate request's token.
pub(crate) fn sasl_authenticate_token(frame: &Frame) -> Result<Bytes, FrameError> {
    let (_, request): (_, SaslAuthenticateRequest) =
        frame::decode_request(frame, ApiKey::SaslAuthenticate, "SaslAuthenticate")?;
    Ok(request.auth_bytes)
}

/// The answer to a SaslAuthenticate request: success, or `error` with `message`.
pub(crate) fn sasl_authenticate(
    peek: Peek,
    error: Option<(ResponseError, &'static str)>,
) -> Result<Bytes, FrameError> {
    let body = match error {
        // Kafka sends a null message on success.
        None => SaslAuthenticateResponse::default().with_error_message(None),
        Some((code, message)) => SaslAuthenticateResponse::default()
            .with_error_code(code.code())
            .with_error_message(Some(StrBytes::from_static_str(message))),
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

    fn v(key: i16, min: i16, max: i16) -> ApiVersion {
        ApiVersion::default()
            .with_api_key(key)
            .with_min_version(min)
            .with_max_version(max)
    }

    #[test]
    fn advertises_sasl_and_narrows_decoded_apis() {
        let upstream = [
            v(0, 0, 20),
            v(1, 0, 12),
            v(17, 0, 1),
            v(18, 0, 3),
            v(19, 0, 1),
            v(3, 0, 12),
        ];
        let got: Vec<(i16, i16, i16)> = advertised(&upstream)
            .iter()
            .map(|v| (v.api_key, v.min_version, v.max_version))
            .collect();
        // CreateTopics 0..1 has no version kafka-protocol decodes (2..7): dropped.
        assert_eq!(
            got,
            vec![
                (0, 3, 13),
                (1, 0, 12),
                (3, 0, 12),
                (17, 0, 1),
                (18, 0, 4),
                (36, 0, 2)
            ]
        );
    }

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
