//! The API versions the emulator advertises: the upstream broker's, asked once, with the APIs
//! the emulator answers or decodes itself replaced or narrowed.

use std::time::Duration;

use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader, SaslAuthenticateRequest,
    SaslHandshakeRequest,
};
use kafka_protocol::protocol::{Message, StrBytes};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tracing::info;

use super::frame::{self, FrameError};
use super::retention::FETCH_MAX_VERSION;
use super::Shared;

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

/// What the emulator advertises: the upstream broker's APIs without AlterConfigs and
/// IncrementalAlterConfigs (Event Hubs has neither), with ApiVersions and the SASL
/// APIs replaced by the emulator's own and the APIs it decodes (Produce for `acks`,
/// CreateTopics, Fetch and ListOffsets for retention emulation) narrowed to the versions
/// `kafka-protocol` knows; Fetch also to [`FETCH_MAX_VERSION`], the last version that names
/// topics (later ones use topic ids).
pub(crate) fn advertised(upstream: &[ApiVersion]) -> Vec<ApiVersion> {
    let own = [
        (ApiKey::ApiVersions, ApiVersionsRequest::VERSIONS),
        (ApiKey::SaslHandshake, SaslHandshakeRequest::VERSIONS),
        (ApiKey::SaslAuthenticate, SaslAuthenticateRequest::VERSIONS),
    ];
    let decoded = [
        ApiKey::Produce,
        ApiKey::CreateTopics,
        ApiKey::Fetch,
        ApiKey::ListOffsets,
    ];
    // Event Hubs has neither (see `configs`).
    let absent = [ApiKey::AlterConfigs, ApiKey::IncrementalAlterConfigs];
    let mut out: Vec<ApiVersion> = upstream
        .iter()
        .filter(|v| !own.iter().any(|(k, _)| *k as i16 == v.api_key))
        .filter(|v| !absent.iter().any(|k| *k as i16 == v.api_key))
        .filter_map(|v| {
            let Some(key) = decoded.iter().find(|k| **k as i16 == v.api_key) else {
                return Some(v.clone());
            };
            let valid = key.valid_versions();
            let cap = match key {
                ApiKey::Fetch => FETCH_MAX_VERSION,
                _ => valid.max,
            };
            let (min, max) = (
                v.min_version.max(valid.min),
                v.max_version.min(valid.max).min(cap),
            );
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
            v(1, 0, 17),
            v(2, 0, 9),
            v(17, 0, 1),
            v(18, 0, 3),
            v(19, 0, 1),
            v(3, 0, 12),
            v(33, 0, 2),
            v(44, 0, 1),
            v(32, 0, 4),
        ];
        let got: Vec<(i16, i16, i16)> = advertised(&upstream)
            .iter()
            .map(|v| (v.api_key, v.min_version, v.max_version))
            .collect();
        // CreateTopics 0..1 has no version kafka-protocol decodes (2..7): dropped. Fetch stops
        // at v12 (names, not topic ids) and starts at v4, like ListOffsets at v1.
        assert_eq!(
            got,
            vec![
                (0, 3, 13),
                (1, 4, 12),
                (2, 1, 9),
                (3, 0, 12),
                (17, 0, 1),
                (18, 0, 4),
                (32, 0, 4),
                (36, 0, 2)
            ]
        );
    }
}
