//! Turning one consumed record into its copy for the target: same partition, key, value,
//! timestamp and headers, plus the `hubmirror.*` headers — or nothing, when the loop rule
//! forbids writing it.

use rdkafka::message::{BorrowedMessage, Header, Headers, OwnedHeaders};
use rdkafka::producer::FutureRecord;
use rdkafka::Message;

use crate::headers::{self, Provenance};

/// The copy of `msg` (consumed from cluster `source`) to write into `remote_topic` on cluster
/// `target`, or `None` when the loop rule forbids writing it there.
pub fn copy_of<'a>(
    msg: &'a BorrowedMessage<'_>,
    source: &str,
    target: &str,
    remote_topic: &'a str,
) -> Option<FutureRecord<'a, [u8], [u8]>> {
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
    let hops = provenance.next_hops(target);
    let source_header = headers::source_value(source, msg.topic(), msg.partition(), msg.offset());
    out = out
        .insert(Header {
            key: headers::ORIGIN,
            value: Some(provenance.next_origin(source)),
        })
        .insert(Header {
            key: headers::HOPS,
            value: Some(&hops),
        })
        .insert(Header {
            key: headers::SOURCE,
            value: Some(&source_header),
        });

    let mut record = FutureRecord::to(remote_topic)
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
