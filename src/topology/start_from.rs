//! `flows[].start_from`: where a flow starts the source partitions it has never replicated —
//! `earliest` (the default), `latest`, or an RFC 3339 time.
//!
//! Times are `YYYY-MM-DDTHH:MM:SS[.fraction]` with a zone, `Z` or `±HH:MM` (RFC 3339 also
//! allows `t`, `z` and a space for the `T`). A time without a zone is refused: it would mean a
//! different instant on every machine.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where a flow starts a source partition it has never replicated (no committed offset it can
/// trust, no copy in the target's tail). Partitions the flow already replicated resume where
/// they were, whatever this says.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum StartFrom {
    /// At the partition's log start (the default).
    #[default]
    Earliest,
    /// At the partition's end when the flow first takes it: only records produced from then on.
    Latest,
    /// At the first record whose timestamp is at or after this time (the end when none is).
    Time(SystemTime),
}

impl StartFrom {
    /// The time as milliseconds since the epoch (what Kafka's ListOffsets takes).
    pub fn time_ms(t: SystemTime) -> i64 {
        t.duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    }
}

impl fmt::Display for StartFrom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartFrom::Earliest => f.write_str("earliest"),
            StartFrom::Latest => f.write_str("latest"),
            StartFrom::Time(t) => {
                let nanos = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
                match nanos {
                    0 => write!(f, "{}", humantime::format_rfc3339_seconds(*t)),
                    n if n % 1_000_000 == 0 => {
                        write!(f, "{}", humantime::format_rfc3339_millis(*t))
                    }
                    _ => write!(f, "{}", humantime::format_rfc3339_nanos(*t)),
                }
            }
        }
    }
}

/// The accepted forms, for error messages.
pub const FORMS: &str =
    "use `earliest` (the default), `latest` or an RFC 3339 time such as `2026-03-01T00:00:00Z` \
     or `2026-03-01T01:00:00+01:00`";

/// Parses a `start_from` value; the error says what is wrong with it (without the key).
pub fn parse(v: &str) -> Result<StartFrom, String> {
    let v = v.trim();
    match v.to_ascii_lowercase().as_str() {
        "earliest" => return Ok(StartFrom::Earliest),
        "latest" => return Ok(StartFrom::Latest),
        _ => {}
    }
    if !v.as_bytes().first().is_some_and(u8::is_ascii_digit) {
        return Err(format!("`{v}` is not known; {FORMS}"));
    }
    parse_time(v)
        .map(StartFrom::Time)
        .map_err(|why| format!("`{v}` is not a valid RFC 3339 time ({why}); {FORMS}"))
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` as an instant.
fn parse_time(v: &str) -> Result<SystemTime, String> {
    if !v.is_ascii() {
        return Err("unexpected characters".into());
    }
    let b = v.as_bytes();
    if b.len() < "2026-03-01T00:00:00".len() {
        return Err("too short".into());
    }
    if !matches!(b[10], b'T' | b't' | b' ') {
        return Err("date and time must be separated by `T`".into());
    }
    // The zone: `Z`, or `±HH:MM` east of UTC.
    let (local, east) = match b[b.len() - 1] {
        b'Z' | b'z' => (&v[..v.len() - 1], 0i64),
        _ if b.len() < "2026-03-01T00:00:00+00:00".len() => {
            return Err("no time zone: end it with `Z` or `±HH:MM`".into())
        }
        _ => {
            let at = v.len() - 6;
            let zone = &v[at..];
            let zb = zone.as_bytes();
            let sign = match zb[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return Err("no time zone: end it with `Z` or `±HH:MM`".into()),
            };
            let (hh, mm) = (&zone[1..3], &zone[4..6]);
            let digits = |s: &str| s.bytes().all(|c| c.is_ascii_digit());
            if zb[3] != b':' || !digits(hh) || !digits(mm) {
                return Err(format!("time zone `{zone}` is not `±HH:MM`"));
            }
            let (h, m): (i64, i64) = (
                hh.parse().map_err(|_| "bad zone hours")?,
                mm.parse().map_err(|_| "bad zone minutes")?,
            );
            if h > 23 || m > 59 {
                return Err(format!("time zone `{zone}` is out of range"));
            }
            (&v[..at], sign * (h * 3600 + m * 60))
        }
    };
    let utc = format!("{}T{}Z", &local[..10], &local[11..]);
    let t = humantime::parse_rfc3339(&utc).map_err(|e| e.to_string())?;
    let shift = Duration::from_secs(east.unsigned_abs());
    let t = if east >= 0 {
        t.checked_sub(shift)
    } else {
        t.checked_add(shift)
    };
    t.filter(|t| *t >= UNIX_EPOCH)
        .ok_or_else(|| "before 1970".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64, millis: u64) -> StartFrom {
        StartFrom::Time(UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(millis))
    }

    /// 2026-03-01T00:00:00Z.
    const MARCH: u64 = 1_772_323_200;

    #[test]
    fn keywords_in_any_case() {
        assert_eq!(parse("earliest"), Ok(StartFrom::Earliest));
        assert_eq!(parse(" Latest "), Ok(StartFrom::Latest));
        assert_eq!(parse("EARLIEST"), Ok(StartFrom::Earliest));
    }

    #[test]
    fn times_with_a_zone() {
        assert_eq!(parse("2026-03-01T00:00:00Z"), Ok(at(MARCH, 0)));
        assert_eq!(parse("2026-03-01t00:00:00z"), Ok(at(MARCH, 0)));
        assert_eq!(parse("2026-03-01 00:00:00Z"), Ok(at(MARCH, 0)));
        assert_eq!(parse("2026-03-01T00:00:00.250Z"), Ok(at(MARCH, 250)));
        assert_eq!(parse("2026-03-01T01:30:00+01:30"), Ok(at(MARCH, 0)));
        assert_eq!(parse("2026-02-28T19:00:00-05:00"), Ok(at(MARCH, 0)));
        assert_eq!(parse("2026-03-01T00:00:00+00:00"), Ok(at(MARCH, 0)));
        assert_eq!(
            StartFrom::time_ms(UNIX_EPOCH + Duration::from_secs(MARCH)),
            MARCH as i64 * 1000
        );
    }

    #[test]
    fn renders_as_written_in_utc() {
        assert_eq!(StartFrom::Earliest.to_string(), "earliest");
        assert_eq!(StartFrom::Latest.to_string(), "latest");
        let t = parse("2026-03-01T01:00:00+01:00").expect("time");
        assert_eq!(t.to_string(), "2026-03-01T00:00:00Z");
        assert_eq!(at(MARCH, 250).to_string(), "2026-03-01T00:00:00.250Z");
    }

    #[test]
    fn refusals_say_what_is_wrong_and_the_forms() {
        for (v, why) in [
            ("now", "`now` is not known"),
            ("beginning", "`beginning` is not known"),
            ("", "`` is not known"),
            ("2026-03-01T00:00:00", "no time zone"),
            ("2026-03-01", "too short"),
            ("2026-03-01X00:00:00Z", "separated by `T`"),
            ("2026-13-01T00:00:00Z", "not a valid RFC 3339 time"),
            ("2026-03-01T25:00:00Z", "not a valid RFC 3339 time"),
            ("2026-03-01T00:00:00+1:000", "is not `±HH:MM`"),
            ("2026-03-01T00:00:00+24:00", "out of range"),
            ("1970-01-01T00:00:00+01:00", "before 1970"),
            ("2026-03-01T00:00:00ÿZ", "unexpected characters"),
        ] {
            let e = parse(v).expect_err(v);
            assert!(e.contains(why), "{v}: {e}");
            assert!(e.ends_with(FORMS), "{v}: {e}");
        }
    }
}
