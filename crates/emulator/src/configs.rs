//! Topic configs as Event Hubs takes them: at creation only `cleanup.policy` and
//! `retention.ms` ([`CREATE_CONFIGS`]); AlterConfigs and IncrementalAlterConfigs not at all
//! (not advertised in ApiVersions, see [`super::versions`], and refused if sent anyway).
//!
//! A CreateTopics request in which some topic carries another config is answered by the
//! emulator as a whole: that topic gets INVALID_CONFIG naming the refused configs, the other
//! topics of the same request INVALID_REQUEST (send them alone). A validate-only request the
//! emulator would pass is answered by it too (no error for every topic), because the upstream
//! test broker ignores `validate_only` and would create the topics.

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse as IncrementalResourceResponse;
use kafka_protocol::messages::{
    AlterConfigsRequest, AlterConfigsResponse, ApiKey, CreateTopicsRequest, CreateTopicsResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;
use tracing::info;

use super::frame::{self, Frame, FrameError, Peek};

/// The configs Event Hubs takes when an event hub is created through the Kafka API.
pub(crate) const CREATE_CONFIGS: [&str; 2] = ["cleanup.policy", "retention.ms"];

/// What AlterConfigs and IncrementalAlterConfigs requests are told, per resource.
pub(crate) const ALTER_REFUSED: &str =
    "Event Hubs does not support altering topic configs over the Kafka protocol; \
     set event hub properties when it is created, or in the Azure portal/ARM";

/// The emulator's own answer to a CreateTopics request it does not pass upstream: one with a
/// config Event Hubs refuses at creation, or a validate-only one. `None`: forward it.
pub(crate) fn plan_create_topics(frame: &Frame, peek: Peek) -> Result<Option<Bytes>, FrameError> {
    let (_, request): (_, CreateTopicsRequest) =
        frame::decode_request(frame, ApiKey::CreateTopics, "CreateTopics")?;
    let refused: Vec<Vec<String>> = request
        .topics
        .iter()
        .map(|t| {
            t.configs
                .iter()
                .map(|c| c.name.to_string())
                .filter(|n| !CREATE_CONFIGS.contains(&n.as_str()))
                .collect()
        })
        .collect();
    let any_refused = refused.iter().any(|r| !r.is_empty());
    if !any_refused && !request.validate_only {
        return Ok(None);
    }
    let topics = request
        .topics
        .into_iter()
        .zip(refused)
        .map(|(t, refused)| {
            let result = CreatableTopicResult::default().with_name(t.name.clone());
            if !refused.is_empty() {
                info!(topic = %t.name.as_str(), configs = %refused.join(","), "CreateTopics: refused configs");
                let message = format!(
                    "Event Hubs takes only {} when an event hub is created; refused: {}",
                    CREATE_CONFIGS.join(" and "),
                    refused.join(", ")
                );
                result
                    .with_error_code(ResponseError::InvalidConfig.code())
                    .with_error_message(Some(StrBytes::from_string(message)))
            } else if any_refused {
                result
                    .with_error_code(ResponseError::InvalidRequest.code())
                    .with_error_message(Some(StrBytes::from_static_str(
                        "sent with a topic whose configs are refused; send it in its own request",
                    )))
            } else {
                result
                    .with_num_partitions(t.num_partitions)
                    .with_replication_factor(t.replication_factor)
            }
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
    .map(Some)
}

/// The answer to an AlterConfigs (key 33) or IncrementalAlterConfigs (key 44) request:
/// INVALID_REQUEST with [`ALTER_REFUSED`] for every resource.
pub(crate) fn refuse_alter(frame: &Frame, peek: Peek, key: ApiKey) -> Result<Bytes, FrameError> {
    let message = Some(StrBytes::from_static_str(ALTER_REFUSED));
    let code = ResponseError::InvalidRequest.code();
    if key == ApiKey::AlterConfigs {
        let (_, request): (_, AlterConfigsRequest) =
            frame::decode_request(frame, key, "AlterConfigs")?;
        let responses = request
            .resources
            .into_iter()
            .map(|r| {
                info!(resource = %r.resource_name.as_str(), "refused AlterConfigs");
                AlterConfigsResourceResponse::default()
                    .with_error_code(code)
                    .with_error_message(message.clone())
                    .with_resource_type(r.resource_type)
                    .with_resource_name(r.resource_name)
            })
            .collect();
        let body = AlterConfigsResponse::default().with_responses(responses);
        return frame::encode_response(
            key,
            peek.correlation_id,
            peek.api_version,
            &body,
            "AlterConfigs",
        );
    }
    let (_, request): (_, IncrementalAlterConfigsRequest) =
        frame::decode_request(frame, key, "IncrementalAlterConfigs")?;
    let responses = request
        .resources
        .into_iter()
        .map(|r| {
            info!(resource = %r.resource_name.as_str(), "refused IncrementalAlterConfigs");
            IncrementalResourceResponse::default()
                .with_error_code(code)
                .with_error_message(message.clone())
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name)
        })
        .collect();
    let body = IncrementalAlterConfigsResponse::default().with_responses(responses);
    frame::encode_response(
        key,
        peek.correlation_id,
        peek.api_version,
        &body,
        "IncrementalAlterConfigs",
    )
}

#[cfg(test)]
#[path = "configs_tests.rs"]
mod tests;
