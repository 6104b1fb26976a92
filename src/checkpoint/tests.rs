//! The checkpoint format against exact bytes, round trips and malformed input; group
//! selection; which record wins when a key repeats.

use regex::Regex;

use super::read::supersedes;
use super::*;
use crate::mm2::FormatError;

fn cp(group: &str, topic: &str, partition: i32, up: i64, down: i64, meta: &str) -> Checkpoint {
    Checkpoint {
        group: group.into(),
        topic: topic.into(),
        partition,
        upstream_offset: up,
        downstream_offset: down,
        metadata: meta.into(),
    }
}

#[test]
fn exact_bytes() {
    let c = cp("g1", "onprem.orders", 3, 4321, 1234, "");
    let key = c.encode_key().expect("encodes");
    let mut want = vec![0, 2];
    want.extend_from_slice(b"g1");
    want.extend_from_slice(&[0, 13]);
    want.extend_from_slice(b"onprem.orders");
    want.extend_from_slice(&[0, 0, 0, 3]);
    assert_eq!(key, want);
    let value = c.encode_value().expect("encodes");
    assert_eq!(
        value,
        [
            0, 0, // version
            0, 0, 0, 0, 0, 0, 0x10, 0xe1, // 4321
            0, 0, 0, 0, 0, 0, 0x04, 0xd2, // 1234
            0, 0, // empty metadata
        ]
    );
    assert_eq!(Checkpoint::decode(&key, &value).expect("decodes"), c);

    // Negative partition and offsets are two's complement; metadata is a length-prefixed string.
    let c = cp("", "t", -1, -2, i64::MAX, "m");
    assert_eq!(
        c.encode_key().expect("encodes"),
        [0, 0, 0, 1, b't', 0xff, 0xff, 0xff, 0xff]
    );
    assert_eq!(
        c.encode_value().expect("encodes"),
        [
            0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, 0x7f, 0xff, 0xff, 0xff, 0xff,
            0xff, 0xff, 0xff, 0, 1, b'm'
        ]
    );
}

#[test]
fn round_trips() {
    let long = "x".repeat(i16::MAX as usize);
    for c in [
        cp("g", "t", 0, 0, 0, ""),
        cp("", "", i32::MAX, i64::MAX, i64::MIN, "meta"),
        cp("grüppe", "ünï.cødé", i32::MIN, 7, 9, "ß"),
        cp(&long, &long, 1, 2, 3, &long),
    ] {
        let (key, value) = (
            c.encode_key().expect("key"),
            c.encode_value().expect("value"),
        );
        assert_eq!(Checkpoint::decode(&key, &value).expect("decodes"), c);
    }
    let too_long = format!("{long}x");
    for (c, field) in [
        (cp(&too_long, "t", 0, 0, 0, ""), "group"),
        (cp("g", &too_long, 0, 0, 0, ""), "topic"),
    ] {
        assert!(
            matches!(c.encode_key(), Err(CheckpointError::Format(FormatError::TooLong { field: f, len: 32768 })) if f == field),
            "{field}"
        );
    }
    assert!(matches!(
        cp("g", "t", 0, 0, 0, &too_long).encode_value(),
        Err(CheckpointError::Format(FormatError::TooLong {
            field: "metadata",
            len: 32768
        }))
    ));
}

#[test]
fn malformed_input_is_an_error() {
    let c = cp("g", "t", 5, 10, 20, "m");
    let key = c.encode_key().expect("encodes");
    let value = c.encode_value().expect("encodes");
    let cases: Vec<(Vec<u8>, Vec<u8>, &str)> = vec![
        (
            vec![],
            value.clone(),
            "checkpoint group is truncated: it needs 2 bytes, 0 are left",
        ),
        (
            vec![0],
            value.clone(),
            "checkpoint group is truncated: it needs 2 bytes, 1 are left",
        ),
        (
            vec![0, 3, b'g'],
            value.clone(),
            "checkpoint group is truncated: it needs 3 bytes, 1 are left",
        ),
        (
            vec![0, 1, b'g'],
            value.clone(),
            "checkpoint topic is truncated: it needs 2 bytes, 0 are left",
        ),
        (
            vec![0, 1, b'g', 0, 1, b't'],
            value.clone(),
            "checkpoint partition is truncated: it needs 4 bytes, 0 are left",
        ),
        (
            vec![0, 1, b'g', 0, 1, b't', 0, 0, 5],
            value.clone(),
            "checkpoint partition is truncated: it needs 4 bytes, 3 are left",
        ),
        (
            vec![0xff, 0xff, 0, 1, b't', 0, 0, 0, 5],
            value.clone(),
            "checkpoint group has a negative length (-1)",
        ),
        (
            vec![0, 1, b'g', 0x80, 0, 0, 0, 0, 5],
            value.clone(),
            "checkpoint topic has a negative length (-32768)",
        ),
        (
            vec![0, 1, 0xff, 0, 1, b't', 0, 0, 0, 5],
            value.clone(),
            "checkpoint group is not UTF-8",
        ),
        (
            vec![0, 1, b'g', 0, 2, 0xc3, 0x28, 0, 0, 0, 5],
            value.clone(),
            "checkpoint topic is not UTF-8",
        ),
        (
            [key.as_slice(), &[0]].concat(),
            value.clone(),
            "checkpoint key has 1 bytes after its last field",
        ),
        (
            key.clone(),
            vec![],
            "checkpoint version is truncated: it needs 2 bytes, 0 are left",
        ),
        (
            key.clone(),
            value[..9].to_vec(),
            "checkpoint upstream offset is truncated: it needs 8 bytes, 7 are left",
        ),
        (
            key.clone(),
            value[..17].to_vec(),
            "checkpoint downstream offset is truncated: it needs 8 bytes, 7 are left",
        ),
        (
            key.clone(),
            value[..18].to_vec(),
            "checkpoint metadata is truncated: it needs 2 bytes, 0 are left",
        ),
        (
            key.clone(),
            value[..20].to_vec(),
            "checkpoint metadata is truncated: it needs 1 bytes, 0 are left",
        ),
        (
            key.clone(),
            [&value[..18], &[0xff, 0xfe][..]].concat(),
            "checkpoint metadata has a negative length (-2)",
        ),
        (
            key.clone(),
            [&value[..18], &[0, 1, 0xff][..]].concat(),
            "checkpoint metadata is not UTF-8",
        ),
        (
            key.clone(),
            [&[0, 1][..], &value[2..]].concat(),
            "checkpoint value version 1 is not supported (only 0 is)",
        ),
        (
            key.clone(),
            [&[0xff, 0xff][..], &value[2..]].concat(),
            "checkpoint value version -1 is not supported (only 0 is)",
        ),
        (
            key.clone(),
            [value.as_slice(), &[9, 9]].concat(),
            "checkpoint value has 2 bytes after its last field",
        ),
        // A heartbeat is not a checkpoint.
        (
            vec![0, 1, b'a', 0, 1, b'b'],
            vec![0, 0, 0, 0, 1, 0x8b, 0xcf, 0xe5, 0x68, 0x00],
            "checkpoint partition is truncated: it needs 4 bytes, 0 are left",
        ),
    ];
    for (k, v, want) in cases {
        let got = Checkpoint::decode(&k, &v).map(|c| format!("{c:?}"));
        assert_eq!(
            got.map_err(|e| e.to_string()),
            Err(want.to_string()),
            "{k:?} {v:?}"
        );
    }
}

#[test]
fn every_prefix_and_every_byte_flip_decodes_or_errs() {
    let c = cp("group", "topic", 7, 100, 200, "meta");
    let key = c.encode_key().expect("encodes");
    let value = c.encode_value().expect("encodes");
    for n in 0..key.len() {
        assert!(Checkpoint::decode(&key[..n], &value).is_err(), "key[..{n}]");
    }
    for n in 0..value.len() {
        assert!(
            Checkpoint::decode(&key, &value[..n]).is_err(),
            "value[..{n}]"
        );
    }
    for i in 0..key.len() {
        for b in [0x00, 0x7f, 0x80, 0xff] {
            let mut k = key.clone();
            k[i] = b;
            let _ = Checkpoint::decode(&k, &value);
        }
    }
    for i in 0..value.len() {
        for b in [0x00, 0x7f, 0x80, 0xff] {
            let mut v = value.clone();
            v[i] = b;
            let _ = Checkpoint::decode(&key, &v);
        }
    }
}

fn anchored(patterns: &[&str]) -> Vec<Regex> {
    patterns
        .iter()
        .map(|p| Regex::new(&format!("^(?:{p})$")).expect("regex"))
        .collect()
}

#[test]
fn group_selection() {
    let all: Vec<String> = [
        "orders-app",
        "billing",
        "hubmirror-onprem-eventhub",
        "hubmirror-checkpoints-reader",
        "test-1",
        "orders-app",
        "billing-dev",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let sel = |inc: &[&str], exc: &[&str]| select_groups(&all, &anchored(inc), &anchored(exc));

    assert_eq!(
        sel(&[".*"], &[]),
        ["billing", "billing-dev", "orders-app", "test-1"]
    );
    assert_eq!(
        sel(&[".*"], &[".*-dev", "test-.*"]),
        ["billing", "orders-app"]
    );
    // Anchored: `billing` does not match `billing-dev`.
    assert_eq!(sel(&["billing"], &[]), ["billing"]);
    // hubmirror's own groups are never selected, even by name.
    assert!(sel(&["hubmirror-.*"], &[]).is_empty());
    // No include pattern: nothing (the topology's default).
    assert!(sel(&[], &[]).is_empty());
    assert!(select_groups(&[], &anchored(&[".*"]), &[]).is_empty());
}

#[test]
fn checkpoints_topic_name() {
    assert_eq!(checkpoints_topic("onprem"), "onprem.checkpoints.internal");
    let naming = crate::naming::Naming::new(crate::topology::Policy::Default, ".");
    assert!(naming.is_internal(&checkpoints_topic("eventhub")));
}

fn stored(partition: i32, offset: i64, ts: Option<i64>) -> StoredCheckpoint {
    StoredCheckpoint {
        checkpoint: cp("g", "t", 0, 1, 1, ""),
        timestamp_ms: ts,
        record_partition: partition,
        record_offset: offset,
    }
}

#[test]
fn later_record_wins() {
    // Same partition: the later offset, whatever the timestamps say.
    assert!(supersedes(&stored(0, 5, Some(1)), &stored(0, 4, Some(100))));
    assert!(!supersedes(
        &stored(0, 4, Some(100)),
        &stored(0, 5, Some(1))
    ));
    // Across partitions: the newer timestamp.
    assert!(supersedes(&stored(1, 0, Some(10)), &stored(0, 9, Some(9))));
    assert!(!supersedes(&stored(1, 9, Some(9)), &stored(0, 0, Some(10))));
    assert!(supersedes(&stored(1, 0, Some(0)), &stored(0, 9, None)));
}
