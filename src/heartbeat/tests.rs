//! The heartbeat format against exact bytes, round trips, malformed input, and hop counts.

use super::*;
use crate::mm2::FormatError;
use crate::topology::Policy;

fn hb(source: &str, target: &str, timestamp_ms: i64) -> Heartbeat {
    Heartbeat {
        source: source.into(),
        target: target.into(),
        timestamp_ms,
    }
}

#[test]
fn exact_bytes() {
    let h = hb("onprem", "eventhub", 1_700_000_000_000);
    let key = h.encode_key().expect("encodes");
    let mut want = vec![0, 6];
    want.extend_from_slice(b"onprem");
    want.extend_from_slice(&[0, 8]);
    want.extend_from_slice(b"eventhub");
    assert_eq!(key, want);
    let value = h.encode_value();
    assert_eq!(value, [0, 0, 0, 0, 1, 0x8b, 0xcf, 0xe5, 0x68, 0x00]);
    assert_eq!(Heartbeat::decode(&key, &value).expect("decodes"), h);
    assert_eq!(decode_value(&value), Some(1_700_000_000_000));

    let neg = hb("a", "b", -2).encode_value();
    assert_eq!(neg, [0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe]);
}

#[test]
fn round_trips() {
    let long = "x".repeat(i16::MAX as usize);
    for h in [
        hb("a", "b", 0),
        hb("", "", i64::MAX),
        hb("ünï-cødé", "b_2", i64::MIN),
        hb(&long, "t", 1),
    ] {
        let key = h.encode_key().expect("encodes");
        assert_eq!(
            Heartbeat::decode(&key, &h.encode_value()).expect("decodes"),
            h
        );
    }
    let too_long = hb(&format!("{long}x"), "b", 0);
    assert!(matches!(
        too_long.encode_key(),
        Err(HeartbeatError::Format(FormatError::TooLong {
            field: "source alias",
            len: 32768
        }))
    ));
}

#[test]
fn malformed_input_is_an_error() {
    let key = hb("a", "b", 5).encode_key().expect("encodes");
    let value = hb("a", "b", 5).encode_value();
    let cases: Vec<(Vec<u8>, Vec<u8>, &str)> = vec![
        (
            vec![],
            value.clone(),
            "heartbeat source alias is truncated: it needs 2 bytes, 0 are left",
        ),
        (
            vec![0],
            value.clone(),
            "heartbeat source alias is truncated: it needs 2 bytes, 1 are left",
        ),
        (
            vec![0, 3, b'a'],
            value.clone(),
            "heartbeat source alias is truncated: it needs 3 bytes, 1 are left",
        ),
        (
            vec![0, 1, b'a'],
            value.clone(),
            "heartbeat target alias is truncated: it needs 2 bytes, 0 are left",
        ),
        (
            vec![0xff, 0xff, 0, 1, b'b'],
            value.clone(),
            "heartbeat source alias has a negative length (-1)",
        ),
        (
            vec![0, 1, 0xff, 0, 1, b'b'],
            value.clone(),
            "heartbeat source alias is not UTF-8",
        ),
        (
            vec![0, 1, b'a', 0, 2, 0xc3, 0x28],
            value.clone(),
            "heartbeat target alias is not UTF-8",
        ),
        (
            [key.as_slice(), &[0]].concat(),
            value.clone(),
            "heartbeat key has 1 bytes after its last field",
        ),
        (
            key.clone(),
            vec![],
            "heartbeat version is truncated: it needs 2 bytes, 0 are left",
        ),
        (
            key.clone(),
            vec![0, 0, 0, 0, 0],
            "heartbeat timestamp is truncated: it needs 8 bytes, 3 are left",
        ),
        (
            key.clone(),
            [&[0, 1][..], &value[2..]].concat(),
            "heartbeat value version 1 is not supported (only 0 is)",
        ),
        (
            key.clone(),
            [value.as_slice(), &[9, 9]].concat(),
            "heartbeat value has 2 bytes after its last field",
        ),
    ];
    for (k, v, want) in cases {
        let got = Heartbeat::decode(&k, &v).map(|h| format!("{h:?}"));
        assert_eq!(
            got.map_err(|e| e.to_string()),
            Err(want.to_string()),
            "{k:?} {v:?}"
        );
    }
    assert_eq!(decode_value(&[0, 1, 0, 0, 0, 0, 0, 0, 0, 0]), None);
    assert_eq!(decode_value(&[0, 0, 0]), None);
}

#[test]
fn upstream_clusters_and_hops() {
    let d = Naming::new(Policy::Default, ".");
    let topics = [
        "heartbeats",
        "b.heartbeats",
        "b.a.heartbeats",
        "c.b.a.heartbeats",
        "c.x.heartbeats",
        "b.orders",
        "z.orders",
        "myheartbeats",
    ];
    let got = upstream_clusters(&d, topics);
    let want: BTreeMap<String, u32> = [("a", 2), ("b", 1), ("c", 1), ("x", 2)]
        .into_iter()
        .map(|(a, h)| (a.to_string(), h))
        .collect();
    assert_eq!(got, want);
    assert!(upstream_clusters(&d, ["heartbeats", "orders"]).is_empty());

    // Only the far copy: `a` is 2 hops away, `b` 1.
    let got = upstream_clusters(&d, ["b.a.heartbeats"]);
    assert_eq!(got.get("a"), Some(&2));
    assert_eq!(got.get("b"), Some(&1));

    // Identity names keep topics, but heartbeats are renamed, so hops still show.
    let i = Naming::new(Policy::Identity, ".");
    let got = upstream_clusters(&i, ["b.a.heartbeats", "a.orders"]);
    assert_eq!(got.len(), 2);
    assert_eq!((got["b"], got["a"]), (1, 2));

    let u = Naming::new(Policy::Default, "_");
    let got = upstream_clusters(&u, ["b_a_heartbeats", "x.heartbeats"]);
    assert_eq!(
        got.into_iter().collect::<Vec<_>>(),
        [("a".to_string(), 2), ("b".to_string(), 1)]
    );
}
