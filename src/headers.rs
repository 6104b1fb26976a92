//! The `hubmirror.*` origin headers (spec §3) and the loop rule.
//!
//! - `hubmirror.origin`: alias of the cluster the record was first written to; set once.
//! - `hubmirror.hops`: comma-separated aliases of the clusters the record was replicated into.
//! - `hubmirror.source`: `<source alias>/<topic>/<partition>/<offset>` of the record copied.
//!
//! A flow S→T never writes a record whose origin is T or whose hops contain T.
//!
//! Headers that hubmirror cannot have written — not UTF-8, empty, or not made of cluster aliases
//! (`[a-z][a-z0-9_-]*`) — are foreign data: ignored, never a reason to fail or to drop the
//! record. The copy gets fresh values as on a first hop. Only a well-formed origin or hops list
//! can make the loop rule skip a record.

/// Header naming the cluster a record was first written to.
pub const ORIGIN: &str = "hubmirror.origin";
/// Header listing the clusters a record was replicated into, in order.
pub const HOPS: &str = "hubmirror.hops";
/// Header naming the exact record a copy was made from.
pub const SOURCE: &str = "hubmirror.source";

/// What the `hubmirror.*` headers of a consumed record say, borrowed from it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Provenance<'a> {
    /// `hubmirror.origin`, when present and a cluster alias.
    pub origin: Option<&'a str>,
    /// `hubmirror.hops`, when present and a comma-separated list of cluster aliases.
    pub hops: Option<&'a str>,
}

impl<'a> Provenance<'a> {
    /// Reads provenance from `(name, value)` header pairs (the last of a name wins). Values
    /// hubmirror cannot have written (not UTF-8, empty, not aliases) are treated as absent:
    /// such a record is foreign data, never a reason to fail.
    pub fn read<I>(headers: I) -> Self
    where
        I: IntoIterator<Item = (&'a str, Option<&'a [u8]>)>,
    {
        let mut p = Provenance::default();
        for (name, value) in headers {
            let text = value.and_then(|v| std::str::from_utf8(v).ok());
            match name {
                ORIGIN => p.origin = text.filter(|t| is_alias(t)),
                HOPS => p.hops = text.filter(|t| t.split(',').all(is_alias)),
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
        let mut hops = String::new();
        self.write_next_hops(target, &mut hops);
        hops
    }

    /// [`Provenance::next_hops`] written into `out` (cleared first), reusing its allocation.
    pub fn write_next_hops(&self, target: &str, out: &mut String) {
        out.clear();
        if let Some(h) = self.hops.filter(|h| !h.is_empty()) {
            out.push_str(h);
            out.push(',');
        }
        out.push_str(target);
    }
}

/// The `hubmirror.source` value for a record at `source/topic/partition/offset`.
pub fn source_value(source: &str, topic: &str, partition: i32, offset: i64) -> String {
    let mut value = String::new();
    write_source_value(&mut value, source, topic, partition, offset);
    value
}

/// [`source_value`] written into `out` (cleared first), reusing its allocation.
pub fn write_source_value(
    out: &mut String,
    source: &str,
    topic: &str,
    partition: i32,
    offset: i64,
) {
    out.clear();
    out.push_str(source);
    out.push('/');
    out.push_str(topic);
    out.push('/');
    out.push_str(itoa::Buffer::new().format(partition));
    out.push('/');
    out.push_str(itoa::Buffer::new().format(offset));
}

/// What every [`SOURCE`] value of the copies of one source partition starts with: the value
/// without its offset.
pub fn source_prefix(source: &str, topic: &str, partition: i32) -> String {
    format!("{source}/{topic}/{partition}/")
}

/// Whether `s` can be a cluster alias (`[a-z][a-z0-9_-]*`, the topology's rule).
fn is_alias(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some('a'..='z'))
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_' | '-'))
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
        // Not aliases: foreign, whatever they seem to say.
        let p = prov(&[(ORIGIN, b"Not An Alias!"), (HOPS, b"b,,c")]);
        assert_eq!((p.origin, p.hops), (None, None));
        assert_eq!(p.next_origin("s"), "s");
        assert_eq!(p.next_hops("t"), "t");
        assert!(!p.forbids("b"));
        let p = prov(&[(ORIGIN, b"a"), (HOPS, b"b, c")]);
        assert_eq!((p.origin, p.hops), (Some("a"), None));
        // A well-formed part still applies the loop rule.
        let p = prov(&[(ORIGIN, &[0xff]), (HOPS, b"b,c")]);
        assert!(p.forbids("c") && !p.forbids("d"));
        // A header without a value is absent too.
        let p = Provenance::read([(ORIGIN, None), (HOPS, Some(&b"b"[..]))]);
        assert_eq!((p.origin, p.hops), (None, Some("b")));
    }

    #[test]
    fn source_value_format() {
        assert_eq!(
            source_value("onprem", "testeh", 3, 42),
            "onprem/testeh/3/42"
        );
        assert!(is_ours(SOURCE) && !is_ours("hubmirror.other"));
        // The reused buffers are cleared before each value.
        let mut buf = String::from("left over from the previous record");
        write_source_value(&mut buf, "a", "t", 0, -1);
        assert_eq!(buf, "a/t/0/-1");
        let p = prov(&[(HOPS, b"b")]);
        p.write_next_hops("c", &mut buf);
        assert_eq!(buf, "b,c");
        Provenance::default().write_next_hops("c", &mut buf);
        assert_eq!(buf, "c");
    }
}
