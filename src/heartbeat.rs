//! Heartbeats in MirrorMaker 2's format (being completed): key
//! `[source alias: int16-length string][target alias: string]`, value
//! `[version int16 = 0][timestamp int64 ms]`, big-endian.

/// The heartbeat timestamp (ms) in a heartbeat record's value, if it is one.
pub fn decode_value(value: &[u8]) -> Option<i64> {
    let version = i16::from_be_bytes(value.get(0..2)?.try_into().ok()?);
    let ts = i64::from_be_bytes(value.get(2..10)?.try_into().ok()?);
    (version == 0).then_some(ts)
}
