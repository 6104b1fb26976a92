//! Topic auto-creation as Event Hubs does it: a Metadata request that names a missing topic
//! creates nothing unless the request allows creation (`allow_auto_topic_creation`, Metadata
//! v4 and later; librdkafka consumers do not allow it, producers and admin clients do).
//!
//! Whatever the upstream broker does with that flag, the emulator keeps it: a Metadata request
//! that names topics and does not allow creation is relayed as a request for *all* topics
//! (which creates nothing anywhere), and the answer is cut back to the topics that were named,
//! a missing one answered UNKNOWN_TOPIC_OR_PARTITION, in the order they were named. Requests
//! that allow creation, or name no topics, pass unchanged.

use bytes::Bytes;
use kafka_protocol::messages::metadata_response::MetadataResponseTopic;
use kafka_protocol::messages::{ApiKey, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::Message;

use super::frame::{self, Frame, FrameError, Peek};

/// UNKNOWN_TOPIC_OR_PARTITION.
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;

/// The first Metadata version with `allow_auto_topic_creation` (before it, every request
/// allowed creation) and the first whose null topic list means "all topics".
const FIRST_WITH_FLAG: i16 = 4;

/// How to cut the upstream answer back to what was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rewrite {
    version: i16,
    /// The topics named, in request order.
    named: Vec<TopicName>,
}

/// For a Metadata request that names topics without allowing their creation: the request to
/// send upstream instead (all topics) and how to rewrite its answer. `None` for anything else.
pub(crate) fn plan(frame: &Frame, peek: Peek) -> Result<Option<(Bytes, Rewrite)>, FrameError> {
    let version = peek.api_version;
    let decodable =
        (MetadataRequest::VERSIONS.min..=MetadataRequest::VERSIONS.max).contains(&version);
    if version < FIRST_WITH_FLAG || !decodable {
        return Ok(None);
    }
    let (header, mut request): (_, MetadataRequest) =
        frame::decode_request(frame, ApiKey::Metadata, "Metadata")?;
    if request.allow_auto_topic_creation {
        return Ok(None);
    }
    let named: Vec<TopicName> = match &request.topics {
        Some(topics) if !topics.is_empty() => {
            topics.iter().filter_map(|t| t.name.clone()).collect()
        }
        _ => return Ok(None),
    };
    if named.is_empty() {
        // Topics named by id only (v10 and later): nothing to create either way.
        return Ok(None);
    }
    request.topics = None;
    let upstream = frame::encode_request(ApiKey::Metadata, &header, &request, "Metadata")?;
    Ok(Some((upstream, Rewrite { version, named })))
}

/// Cuts an upstream Metadata answer (a whole frame, length prefix included) back to the topics
/// `rewrite` names.
pub(crate) fn rewrite(response: &[u8], rewrite: &Rewrite) -> Result<Bytes, FrameError> {
    let body = Bytes::copy_from_slice(response.get(4..).unwrap_or_default());
    let (header, mut answer): (_, MetadataResponse) =
        frame::decode_response(body, ApiKey::Metadata, rewrite.version, "Metadata")?;
    let mut all = std::mem::take(&mut answer.topics);
    answer.topics = rewrite
        .named
        .iter()
        .map(
            |name| match all.iter().position(|t| t.name.as_ref() == Some(name)) {
                Some(i) => all.swap_remove(i),
                None => MetadataResponseTopic::default()
                    .with_name(Some(name.clone()))
                    .with_error_code(UNKNOWN_TOPIC_OR_PARTITION),
            },
        )
        .collect();
    frame::encode_response(
        ApiKey::Metadata,
        header.correlation_id,
        rewrite.version,
        &answer,
        "Metadata",
    )
}

#[cfg(test)]
mod tests {
    use bytes::{BufMut, BytesMut};
    use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
    use kafka_protocol::messages::RequestHeader;
    use kafka_protocol::protocol::StrBytes;

    use super::*;

    fn name(s: &str) -> TopicName {
        TopicName(StrBytes::from_string(s.to_string()))
    }

    fn request_frame(version: i16, topics: Option<&[&str]>, allow: bool) -> Frame {
        let header = RequestHeader::default()
            .with_request_api_key(ApiKey::Metadata as i16)
            .with_request_api_version(version)
            .with_correlation_id(42)
            .with_client_id(Some(StrBytes::from_static_str("test")));
        let request = MetadataRequest::default()
            .with_topics(topics.map(|ts| {
                ts.iter()
                    .map(|t| MetadataRequestTopic::default().with_name(Some(name(t))))
                    .collect()
            }))
            .with_allow_auto_topic_creation(allow);
        let bytes =
            frame::encode_request(ApiKey::Metadata, &header, &request, "Metadata").expect("encode");
        Frame::from_raw(bytes)
    }

    #[test]
    fn only_named_topics_without_creation_are_rewritten() {
        for (version, topics, allow, rewritten) in [
            (12, Some(&["a", "b"][..]), false, true),
            (4, Some(&["a"][..]), false, true),
            (12, Some(&["a"][..]), true, false),
            // v3 has no flag: every request allows creation.
            (3, Some(&["a"][..]), true, false),
            (12, None, false, false),
            (12, Some(&[][..]), false, false),
        ] {
            let f = request_frame(version, topics, allow);
            let planned = plan(&f, f.peek().expect("peek")).expect("plan");
            assert_eq!(
                planned.is_some(),
                rewritten,
                "v{version} {topics:?} allow={allow}"
            );
            if let Some((upstream, rw)) = planned {
                let sent = Frame::from_raw(upstream);
                let (h, r): (_, MetadataRequest) =
                    frame::decode_request(&sent, ApiKey::Metadata, "Metadata").expect("decode");
                assert_eq!(h.correlation_id, 42);
                assert_eq!(r.topics, None, "asks for all topics");
                let want: Vec<TopicName> =
                    topics.unwrap_or_default().iter().map(|t| name(t)).collect();
                assert_eq!(rw.named, want);
            }
        }
    }

    #[test]
    fn answers_only_what_was_named_and_missing_topics_as_unknown() {
        let version = 12;
        let topic = |n: &str| MetadataResponseTopic::default().with_name(Some(name(n)));
        let upstream =
            MetadataResponse::default().with_topics(vec![topic("x"), topic("b"), topic("y")]);
        let mut buf = BytesMut::new();
        buf.put_slice(
            &frame::encode_response(ApiKey::Metadata, 7, version, &upstream, "Metadata")
                .expect("encode"),
        );
        let rw = Rewrite {
            version,
            named: vec![name("a"), name("b")],
        };
        let out = rewrite(&buf, &rw).expect("rewrite");
        let (h, answer): (_, MetadataResponse) =
            frame::decode_response(out.slice(4..), ApiKey::Metadata, version, "Metadata")
                .expect("decode");
        assert_eq!(h.correlation_id, 7);
        let got: Vec<(String, i16)> = answer
            .topics
            .iter()
            .map(|t| {
                (
                    t.name.as_ref().map(|n| n.to_string()).unwrap_or_default(),
                    t.error_code,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("a".to_string(), UNKNOWN_TOPIC_OR_PARTITION),
                ("b".to_string(), 0)
            ]
        );
    }
}
