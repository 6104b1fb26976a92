//! Turning one consumed record into its copy for the target: same partition, key, value,
//! timestamp and headers, plus the `hubmirror.*` headers — or nothing, when the loop rule
//! forbids writing it.

use rdkafka::message::{BorrowedMessage, Header, Headers, OwnedHeaders};
use rdkafka::producer::BaseRecord;
use rdkafka::Message;

use crate::headers::{self, Provenance};

/// Buffers reused from copy to copy for the header values hubmirror writes (librdkafka copies
/// header values when they are added, so one buffer serves every record).
#[derive(Default)]
pub struct Scratch {
    hops: String,
    source: String,
}

/// The copy of `msg` (consumed from `topic` of cluster `source`) to write into `remote_topic`
/// on cluster `target`, carrying delivery opaque `seq`, or `None` when the loop rule forbids
/// writing it there.
pub fn copy_of<'a>(
    msg: &'a BorrowedMessage<'_>,
    topic: &str,
    (source, target): (&str, &str),
    remote_topic: &'a str,
    seq: usize,
    scratch: &mut Scratch,
) -> Option<BaseRecord<'a, [u8], [u8], usize>> {
    let own = msg.headers();
    let provenance = match own {
        Some(h) => Provenance::read(h.iter().map(|h| (h.key, h.value))),
        None => Provenance::default(),
    };
    if provenance.forbids(target) {
        return None;
    }

    let mut out = OwnedHeaders::new_with_capacity(own.map_or(0, |h| h.count()) + 3);
    if let Some(h) = own {
        for header in h.iter().filter(|h| !headers::is_ours(h.key)) {
            out = out.insert(header);
        }
    }
    provenance.write_next_hops(target, &mut scratch.hops);
    headers::write_source_value(
        &mut scratch.source,
        source,
        topic,
        msg.partition(),
        msg.offset(),
    );
    out = out
        .insert(Header {
            key: headers::ORIGIN,
            value: Some(provenance.next_origin(source)),
        })
        .insert(Header {
            key: headers::HOPS,
            value: Some(&scratch.hops),
        })
        .insert(Header {
            key: headers::SOURCE,
            value: Some(&scratch.source),
        });

    let mut record = BaseRecord::with_opaque_to(remote_topic, seq)
        .partition(msg.partition())
        .headers(out);
    if let Some(key) = msg.key() {
        record = record.key(key);
    }
    if let Some(payload) = msg.payload() {
        record = record.payload(payload);
    }
    if let Some(ts) = msg.timestamp().to_millis() {
        record = record.timestamp(ts);
    }
    Some(record)
}
