//! Consumer-group descriptions as a Kafka coordinator gives them: DescribeGroups names each
//! member's client id and host and carries its assignment, which is how `kafka-consumer-groups
//! --describe` (and `hubmirror status`) show who owns which partition.
//!
//! tansu, the broker behind the emulator, answers DescribeGroups with member ids only (no client
//! id, no host, no assignment). The emulator fills those in from what it relays: each JoinGroup's
//! client id and peer address (recorded under the member id its answer gives), and the
//! assignments the group's leader hands out in SyncGroup. Everything else in the answer (which
//! members, the state, the protocol) stays tansu's.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use kafka_protocol::messages::{
    ApiKey, DescribeGroupsResponse, JoinGroupRequest, JoinGroupResponse, SyncGroupRequest,
};
use kafka_protocol::protocol::{Message, StrBytes};

use super::frame::{self, Frame, FrameError, Peek};

/// What the emulator learnt of one member.
#[derive(Debug, Clone, Default)]
struct Known {
    client_id: String,
    host: String,
    /// The consumer-protocol assignment bytes from the leader's last SyncGroup.
    assignment: Option<Bytes>,
}

/// Members by (group, member id), shared by every connection.
#[derive(Debug, Default)]
pub(crate) struct Book {
    members: Mutex<HashMap<(String, String), Known>>,
}

/// How to read a JoinGroup answer: whose member id it gives.
#[derive(Debug, Clone)]
pub(crate) struct Join {
    book: Arc<Book>,
    version: i16,
    group: String,
    client_id: String,
    host: String,
}

/// How to fill a DescribeGroups answer in.
#[derive(Debug, Clone)]
pub(crate) struct Describe {
    book: Arc<Book>,
    version: i16,
}

fn decodable<M: Message>(version: i16) -> bool {
    (M::VERSIONS.min..=M::VERSIONS.max).contains(&version)
}

/// For a JoinGroup request: how to read its answer. `None` for a version `kafka-protocol` cannot
/// decode (then nothing is learnt).
pub(crate) fn plan_join(
    book: &Arc<Book>,
    frame: &Frame,
    peek: Peek,
    peer: Option<IpAddr>,
) -> Result<Option<Join>, FrameError> {
    if !decodable::<JoinGroupRequest>(peek.api_version) {
        return Ok(None);
    }
    let (header, request): (_, JoinGroupRequest) =
        frame::decode_request(frame, ApiKey::JoinGroup, "JoinGroup")?;
    Ok(Some(Join {
        book: book.clone(),
        version: peek.api_version,
        group: request.group_id.to_string(),
        client_id: header.client_id.map(|c| c.to_string()).unwrap_or_default(),
        host: peer.map(|ip| format!("/{ip}")).unwrap_or_default(),
    }))
}

/// Records the member id a JoinGroup answer (a whole frame) gives; the answer goes on unchanged.
pub(crate) fn note_join(response: &[u8], join: &Join) -> Result<Bytes, FrameError> {
    let body = Bytes::copy_from_slice(response.get(4..).unwrap_or_default());
    let (_, answer): (_, JoinGroupResponse) =
        frame::decode_response(body, ApiKey::JoinGroup, join.version, "JoinGroup")?;
    if answer.error_code == 0 && !answer.member_id.is_empty() {
        if let Ok(mut members) = join.book.members.lock() {
            let known = members
                .entry((join.group.clone(), answer.member_id.to_string()))
                .or_default();
            known.client_id = join.client_id.clone();
            known.host = join.host.clone();
        }
    }
    Ok(Bytes::copy_from_slice(response))
}

/// Records the assignments in a SyncGroup request from the group's leader (the other members
/// send none). The request goes on unchanged.
pub(crate) fn note_sync(book: &Book, frame: &Frame, peek: Peek) -> Result<(), FrameError> {
    if !decodable::<SyncGroupRequest>(peek.api_version) {
        return Ok(());
    }
    let (_, request): (_, SyncGroupRequest) =
        frame::decode_request(frame, ApiKey::SyncGroup, "SyncGroup")?;
    if request.assignments.is_empty() {
        return Ok(());
    }
    let group = request.group_id.to_string();
    if let Ok(mut members) = book.members.lock() {
        // The leader's assignment is the whole group's: members it leaves out own nothing.
        for ((g, _), known) in members.iter_mut() {
            if *g == group {
                known.assignment = None;
            }
        }
        for a in request.assignments {
            members
                .entry((group.clone(), a.member_id.to_string()))
                .or_default()
                .assignment = Some(a.assignment);
        }
    }
    Ok(())
}

/// For a DescribeGroups request: how to fill its answer in, when decodable.
pub(crate) fn plan_describe(book: &Arc<Book>, peek: Peek) -> Option<Describe> {
    decodable::<DescribeGroupsResponse>(peek.api_version).then(|| Describe {
        book: book.clone(),
        version: peek.api_version,
    })
}

/// Fills the client id, host and assignment of every member the emulator knows into a
/// DescribeGroups answer (a whole frame); fields the broker filled itself are kept.
pub(crate) fn describe(response: &[u8], d: &Describe) -> Result<Bytes, FrameError> {
    let body = Bytes::copy_from_slice(response.get(4..).unwrap_or_default());
    let (header, mut answer): (_, DescribeGroupsResponse) =
        frame::decode_response(body, ApiKey::DescribeGroups, d.version, "DescribeGroups")?;
    if let Ok(members) = d.book.members.lock() {
        for g in &mut answer.groups {
            for m in &mut g.members {
                let key = (g.group_id.to_string(), m.member_id.to_string());
                let Some(known) = members.get(&key) else {
                    continue;
                };
                if m.client_id.is_empty() {
                    m.client_id = StrBytes::from_string(known.client_id.clone());
                }
                if m.client_host.is_empty() {
                    m.client_host = StrBytes::from_string(known.host.clone());
                }
                if m.member_assignment.is_empty() {
                    if let Some(a) = &known.assignment {
                        m.member_assignment = a.clone();
                    }
                }
            }
        }
    }
    frame::encode_response(
        ApiKey::DescribeGroups,
        header.correlation_id,
        d.version,
        &answer,
        "DescribeGroups",
    )
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::describe_groups_response::{
        DescribedGroup, DescribedGroupMember,
    };
    use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
    use kafka_protocol::messages::{DescribeGroupsRequest, GroupId, RequestHeader};

    use super::*;

    fn s(v: &str) -> StrBytes {
        StrBytes::from_string(v.to_string())
    }

    fn request<T: kafka_protocol::protocol::Encodable>(
        key: ApiKey,
        version: i16,
        client_id: &str,
        body: &T,
    ) -> Frame {
        let header = RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(7)
            .with_client_id(Some(s(client_id)));
        Frame::from_raw(frame::encode_request(key, &header, body, "test").expect("encode"))
    }

    fn join(book: &Arc<Book>, client_id: &str, member_id: &str) {
        let req = JoinGroupRequest::default().with_group_id(GroupId(s("g")));
        let f = request(ApiKey::JoinGroup, 5, client_id, &req);
        let peer = "10.1.2.3".parse().ok();
        let j = plan_join(book, &f, f.peek().expect("peek"), peer)
            .expect("plan")
            .expect("decodable");
        let answer = JoinGroupResponse::default().with_member_id(s(member_id));
        let bytes = frame::encode_response(ApiKey::JoinGroup, 7, 5, &answer, "test").expect("enc");
        assert_eq!(
            note_join(&bytes, &j).expect("note"),
            bytes,
            "relayed unchanged"
        );
    }

    fn sync(book: &Book, assignments: &[(&str, &'static [u8])]) {
        let req = SyncGroupRequest::default()
            .with_group_id(GroupId(s("g")))
            .with_assignments(
                assignments
                    .iter()
                    .map(|(m, a)| {
                        SyncGroupRequestAssignment::default()
                            .with_member_id(s(m))
                            .with_assignment(Bytes::from_static(a))
                    })
                    .collect(),
            );
        let f = request(ApiKey::SyncGroup, 3, "x", &req);
        note_sync(book, &f, f.peek().expect("peek")).expect("note");
    }

    /// tansu's answer: member ids only; the described members as (client id, host, assignment).
    fn described(book: &Arc<Book>, members: &[&str]) -> Vec<(String, String, Bytes)> {
        let group = DescribedGroup::default()
            .with_group_id(GroupId(s("g")))
            .with_group_state(s("Stable"))
            .with_members(
                members
                    .iter()
                    .map(|m| DescribedGroupMember::default().with_member_id(s(m)))
                    .collect(),
            );
        let answer = DescribeGroupsResponse::default().with_groups(vec![group]);
        let bytes =
            frame::encode_response(ApiKey::DescribeGroups, 9, 0, &answer, "test").expect("enc");
        let asked = DescribeGroupsRequest::default().with_groups(vec![GroupId(s("g"))]);
        let f = request(ApiKey::DescribeGroups, 0, "x", &asked);
        let d = plan_describe(book, f.peek().expect("peek")).expect("decodable");
        let filled = describe(&bytes, &d).expect("describe");
        let (header, back): (_, DescribeGroupsResponse) =
            frame::decode_response(filled.slice(4..), ApiKey::DescribeGroups, 0, "test")
                .expect("decode");
        assert_eq!(header.correlation_id, 9);
        back.groups[0]
            .members
            .iter()
            .map(|m| {
                (
                    m.client_id.to_string(),
                    m.client_host.to_string(),
                    m.member_assignment.clone(),
                )
            })
            .collect()
    }

    #[test]
    fn describe_groups_names_members_and_carries_the_leaders_assignments() {
        let book = Arc::new(Book::default());
        join(&book, "fleet-1", "fleet-1-u1");
        join(&book, "fleet-2", "fleet-2-u2");
        sync(&book, &[]); // a follower's SyncGroup carries nothing
        sync(&book, &[("fleet-1-u1", b"one"), ("fleet-2-u2", b"two")]);
        let host = "/10.1.2.3".to_string();
        assert_eq!(
            described(&book, &["fleet-1-u1", "fleet-2-u2", "stranger"]),
            [
                ("fleet-1".into(), host.clone(), Bytes::from_static(b"one")),
                ("fleet-2".into(), host.clone(), Bytes::from_static(b"two")),
                (String::new(), String::new(), Bytes::new()),
            ]
        );
        // The leader's next assignment is the whole group's: fleet-2 now owns nothing known.
        sync(&book, &[("fleet-1-u1", b"all")]);
        assert_eq!(
            described(&book, &["fleet-1-u1", "fleet-2-u2"]),
            [
                ("fleet-1".into(), host.clone(), Bytes::from_static(b"all")),
                ("fleet-2".into(), host, Bytes::new()),
            ]
        );
    }
}
