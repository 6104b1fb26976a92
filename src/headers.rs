//! The `hubmirror.*` origin headers (spec §3) and the loop rule.
//!
//! - `hubmirror.origin`: alias of the cluster the record was first written to; set once.
//! - `hubmirror.hops`: comma-separated aliases of the clusters the record was replicated into.
//! - `hubmirror.source`: `<source alias>/<topic>/<partition>/<offset>` of the record copied.
//!
//! A flow S→T never writes a record whose origin is T or whose hops contain T.

/// Header naming the cluster a record was first written to.
pub const ORIGIN: &str = "hubmirror.origin";
/// Header listing the clusters a record was replicated into, in order.
pub const HOPS: &str = "hubmirror.hops";
/// Header naming the exact record a copy was made from.
pub const SOURCE: &str = "hubmirror.source";

/// What the `hubmirror.*` headers of a consumed record say, borrowed from it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Provenance<'a> {
    /// `hubmirror.origin`, when present and UTF-8.
    pub origin: Option<&'a str>,
    /// `hubmirror.hops`, when present and UTF-8.
    pub hops: Option<&'a str>,
}

impl<'a> Provenance<'a> {
    /// Reads provenance from `(name, value)` header pairs. Values that are not UTF-8 are
    /// treated as absent: such a record is foreign data, never a reason to fail.
    pub fn read<I>(headers: I) -> Self
    where
        I: IntoIterator<Item = (&'a str, Option<&'a [u8]>)>,
    {
        let mut p = Provenance::default();
        for (name, value) in headers {
            let text = value.and_then(|v| std::str::from_utf8(v).ok());
            match name {
                ORIGIN => p.origin = text,
                HOPS => p.hops = text,
                _ => {}
            }
        }
        p
    }

    /// The loop rule: whether a flow into `target` must not write this record.
    pub fn forbids(&self, target: &str) -> bool {
        self.origin == Some(target)
            || self
                .hops
                .is_some_and(|h| h.split(',').any(|a| !a.is_empty() && a == target))
    }

    /// The `hubmirror.origin` value of the copy: kept if set, else the source cluster.
    pub fn next_origin<'b>(&self, source: &'b str) -> &'b str
    where
        'a: 'b,
    {
        match self.origin {
            Some(o) if !o.is_empty() => o,
            _ => source,
        }
    }

    /// The `hubmirror.hops` value of the copy: the old hops followed by `target`.
    pub fn next_hops(&self, target: &str) -> String {
        match self.hops {
            Some(h) if !h.is_empty() => format!("{h},{target}"),
            _ => target.to_string(),
        }
    }
}

/// The `hubmirror.source` value for a record at `source/topic/partition/offset`.
pub fn source_value(source: &str, topic: &str, partition: i32, offset: i64) -> String {
    format!("{source}/{topic}/{partition}/{offset}")
}

/// Whether a header is one of ours (replaced on every hop rather than copied).
pub fn is_ours(name: &str) -> bool {
    name == ORIGIN || name == HOPS || name == SOURCE
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prov<'a>(h: &'a [(&'a str, &'a [u8])]) -> Provenance<'a> {
        Provenance::read(h.iter().map(|(n, v)| (*n, Some(*v))))
    }

    #[test]
    fn first_hop_sets_origin_to_source_and_hops_to_target() {
        let p = prov(&[("app", b"x")]);
        assert!(!p.forbids("eventhub"));
        assert_eq!(p.next_origin("onprem"), "onprem");
        assert_eq!(p.next_hops("eventhub"), "eventhub");
    }

    #[test]
    fn later_hops_keep_origin_and_append() {
        let p = prov(&[(ORIGIN, b"a"), (HOPS, b"b")]);
        assert_eq!(p.next_origin("b"), "a");
        assert_eq!(p.next_hops("c"), "b,c");
    }

    #[test]
    fn loop_rule_checks_origin_and_every_hop() {
        let p = prov(&[(ORIGIN, b"a"), (HOPS, b"b,c")]);
        assert!(p.forbids("a"));
        assert!(p.forbids("b"));
        assert!(p.forbids("c"));
        assert!(!p.forbids("d"));
        // no partial matches
        let p = prov(&[(ORIGIN, b"ab"), (HOPS, b"bc")]);
        assert!(!p.forbids("a") && !p.forbids("b"));
    }

    #[test]
    fn malformed_headers_are_foreign_data() {
        let p = prov(&[(ORIGIN, &[0xff, 0xfe]), (HOPS, b"")]);
        assert_eq!(p.origin, None);
        assert!(!p.forbids(""));
        assert_eq!(p.next_origin("s"), "s");
        assert_eq!(p.next_hops("t"), "t");
    }

    #[test]
    fn source_value_format() {
        assert_eq!(
            source_value("onprem", "testeh", 3, 42),
            "onprem/testeh/3/42"
        );
        assert!(is_ours(SOURCE) && !is_ours("hubmirror.other"));
    }
}
