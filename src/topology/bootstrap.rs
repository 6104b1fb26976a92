//! `clusters.<alias>.bootstrap_servers`: a comma-separated list of `host:port` (an IPv6 host in
//! brackets, `[::1]:9092`), each port 1–65535. A pasted connection string (Event Hubs
//! `Endpoint=...;SharedAccessKey=...`, a URL with credentials) is refused without repeating it:
//! it holds a secret.

/// Why a `bootstrap_servers` value is refused; [`check`] returns it as one sentence fragment
/// that never contains a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BootstrapProblem {
    /// The value looks like a connection string (it has `=` or `;`): never echoed.
    ConnectionString,
    /// An entry is empty (`a:1,,b:2`, a trailing comma).
    EmptyEntry,
    /// An entry has no `:port`.
    NoPort(String),
    /// An entry's port is not a number in 1–65535.
    BadPort(String),
    /// An entry's host is empty or has characters no host name has.
    BadHost(String),
}

impl std::fmt::Display for BootstrapProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BootstrapProblem::ConnectionString => write!(
                f,
                "looks like a connection string (it has `=` or `;`; not repeated here because it \
                 may hold a key): put an Event Hubs connection string under \
                 `event_hubs: {{connection_string: ...}}` and leave bootstrap_servers out, or \
                 write `host:port[,host:port...]`"
            ),
            BootstrapProblem::EmptyEntry => {
                write!(f, "has an empty entry; write `host:port[,host:port...]`")
            }
            BootstrapProblem::NoPort(e) => write!(
                f,
                "entry `{e}` has no port; write `host:port` (Kafka listens on 9092 by default, \
                 Event Hubs on 9093)"
            ),
            BootstrapProblem::BadPort(e) => write!(
                f,
                "entry `{e}` has no valid port; a port is a number from 1 to 65535"
            ),
            BootstrapProblem::BadHost(e) => write!(
                f,
                "entry `{e}` has no valid host; write `host:port` (a name, an IPv4 address, or \
                 an IPv6 address in brackets: `[::1]:9092`)"
            ),
        }
    }
}

/// Checks a `bootstrap_servers` value (already trimmed, not empty).
pub(crate) fn check(value: &str) -> Result<(), BootstrapProblem> {
    if value.contains('=') || value.contains(';') || value.contains('@') {
        return Err(BootstrapProblem::ConnectionString);
    }
    for entry in value.split(',').map(str::trim) {
        if entry.is_empty() {
            return Err(BootstrapProblem::EmptyEntry);
        }
        // librdkafka takes an optional `protocol://` prefix (e.g. `SSL://host:9093`).
        let hostport = entry.split_once("://").map_or(entry, |(_, rest)| rest);
        let (host, port) =
            split_host_port(hostport).ok_or_else(|| BootstrapProblem::NoPort(entry.to_string()))?;
        if !valid_host(host) {
            return Err(BootstrapProblem::BadHost(entry.to_string()));
        }
        match port.parse::<u32>() {
            Ok(p) if (1..=65535).contains(&p) && port.chars().all(|c| c.is_ascii_digit()) => {}
            _ => return Err(BootstrapProblem::BadPort(entry.to_string())),
        }
    }
    Ok(())
}

/// `host:port` or `[v6]:port` → (host, port); `None` without a port.
fn split_host_port(s: &str) -> Option<(&str, &str)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        return Some((host, after.strip_prefix(':')?));
    }
    let (host, port) = s.rsplit_once(':')?;
    if host.contains(':') {
        // A bare IPv6 address: ambiguous without brackets.
        return None;
    }
    Some((host, port))
}

fn valid_host(host: &str) -> bool {
    !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_host_port_lists() {
        for ok in [
            "localhost:9092",
            "a.example.com:9093,b.example.com:9093",
            "10.0.0.1:1, 10.0.0.2:65535",
            "[::1]:9092",
            "SSL://broker:9093",
            "my_host-1:19092",
        ] {
            assert_eq!(check(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn refuses_missing_or_out_of_range_ports_and_bad_hosts() {
        assert_eq!(
            check("localhost"),
            Err(BootstrapProblem::NoPort("localhost".into()))
        );
        assert_eq!(check("h:0"), Err(BootstrapProblem::BadPort("h:0".into())));
        assert_eq!(
            check("h:65536"),
            Err(BootstrapProblem::BadPort("h:65536".into()))
        );
        assert_eq!(
            check("h:90x"),
            Err(BootstrapProblem::BadPort("h:90x".into()))
        );
        assert_eq!(check("h:+9"), Err(BootstrapProblem::BadPort("h:+9".into())));
        assert_eq!(
            check(":9092"),
            Err(BootstrapProblem::BadHost(":9092".into()))
        );
        assert_eq!(
            check("a b:9092"),
            Err(BootstrapProblem::BadHost("a b:9092".into()))
        );
        assert_eq!(check("a:1,,b:2"), Err(BootstrapProblem::EmptyEntry));
        assert_eq!(check("a:1,"), Err(BootstrapProblem::EmptyEntry));
        assert_eq!(
            check("::1:9092"),
            Err(BootstrapProblem::NoPort("::1:9092".into()))
        );
        let msg = BootstrapProblem::BadPort("h:65536".into()).to_string();
        assert!(msg.contains("1 to 65535"), "{msg}");
    }

    #[test]
    fn refuses_a_pasted_connection_string_without_echoing_it() {
        let cs = "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=Root;\
                  SharedAccessKey=c2VjcmV0LWtleQ==";
        let e = check(cs).expect_err("refused");
        assert_eq!(e, BootstrapProblem::ConnectionString);
        let msg = e.to_string();
        assert!(!msg.contains("c2VjcmV0LWtleQ"), "{msg}");
        assert!(!msg.contains("servicebus"), "{msg}");
        assert!(msg.contains("event_hubs"), "{msg}");
        assert_eq!(
            check("user:pa55@host:9092"),
            Err(BootstrapProblem::ConnectionString)
        );
    }
}
