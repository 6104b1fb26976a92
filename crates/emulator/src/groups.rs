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
