//! Azure Event Hubs connection strings: the namespace host (hence the Kafka bootstrap) and the
//! key name are read off the string; the whole string is the SASL PLAIN password, with the
//! literal user name `$ConnectionString`.

use super::Secret;
use super::{EventHubs, EventHubsAuth, SharedAccessKey};

/// The Kafka endpoint port of an Event Hubs namespace.
pub const KAFKA_PORT: u16 = 9093;

/// The SASL user name for shared-access-key authentication.
pub const SASL_USERNAME: &str = "$ConnectionString";

/// Why a connection string was refused. Messages say what to fix and never contain the key
/// or the string itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectionStringError {
    /// Nothing (or only whitespace) was given.
    #[error(
        "the connection string is empty; copy it from the Azure portal (Event Hubs namespace → \
         Shared access policies → a policy → Connection string–primary key)"
    )]
    Empty,
    /// A `;`-separated part is not `Key=Value`.
    #[error("part {part} of the connection string has no `=`; expected `Key=Value` parts separated by `;`")]
    Malformed {
        /// 1-based number of the offending part.
        part: usize,
    },
    /// A known key appears twice.
    #[error("`{key}` appears more than once in the connection string")]
    Duplicate {
        /// The key's canonical spelling.
        key: &'static str,
    },
    /// A SAS token instead of a key.
    #[error(
        "the connection string carries a SharedAccessSignature; the Kafka endpoint accepts only \
         shared access keys: use a policy's connection string with SharedAccessKeyName and \
         SharedAccessKey"
    )]
    SasToken,
    /// No `Endpoint=`.
    #[error(
        "the connection string has no `Endpoint=sb://<namespace>.servicebus.windows.net/` part"
    )]
    MissingEndpoint,
    /// `Endpoint=` not starting with `sb://`.
    #[error(
        "Endpoint must start with `sb://`, e.g. `Endpoint=sb://<namespace>.servicebus.windows.net/` \
         (found {found})"
    )]
    EndpointScheme {
        /// The scheme found (`https://`), or a description when there is none.
        found: String,
    },
    /// `Endpoint=sb://` with nothing after it.
    #[error("Endpoint `sb://` has no namespace host after it")]
    EmptyHost,
    /// No `SharedAccessKeyName=`.
    #[error("the connection string has no `SharedAccessKeyName=<policy name>` part")]
    MissingKeyName,
    /// No `SharedAccessKey=`.
    #[error("the connection string has no `SharedAccessKey=<key>` part")]
    MissingKey,
}

/// Parses `Endpoint=sb://<host>/;SharedAccessKeyName=<name>;SharedAccessKey=<key>[;EntityPath=<hub>]`.
///
/// Keys are case-insensitive, a trailing `;` is allowed, values may contain `=` (a part is split
/// at its first `=`), unknown keys (e.g. `TransportType`) are ignored. The host is whatever sits
/// between `sb://` and the next `/` (any cloud's suffix); a `:port` there (an emulator, a private
/// endpoint) replaces the Kafka port 9093.
pub fn parse_connection_string(s: &str) -> Result<EventHubs, ConnectionStringError> {
    if s.trim().is_empty() {
        return Err(ConnectionStringError::Empty);
    }
    let mut endpoint = None;
    let mut key_name = None;
    let mut key = None;
    let mut entity_path = None;
    for (i, part) in s.split(';').enumerate() {
        if part.trim().is_empty() {
            continue;
        }
        let (k, v) = part
            .split_once('=')
            .ok_or(ConnectionStringError::Malformed { part: i + 1 })?;
        let k = k.trim();
        let v = v.trim();
        let slot = if k.eq_ignore_ascii_case("Endpoint") {
            (&mut endpoint, "Endpoint")
        } else if k.eq_ignore_ascii_case("SharedAccessKeyName") {
            (&mut key_name, "SharedAccessKeyName")
        } else if k.eq_ignore_ascii_case("SharedAccessKey") {
            (&mut key, "SharedAccessKey")
        } else if k.eq_ignore_ascii_case("EntityPath") {
            (&mut entity_path, "EntityPath")
        } else if k.eq_ignore_ascii_case("SharedAccessSignature") {
            return Err(ConnectionStringError::SasToken);
        } else {
            continue;
        };
        if slot.0.replace(v).is_some() {
            return Err(ConnectionStringError::Duplicate { key: slot.1 });
        }
    }
    let endpoint = endpoint.ok_or(ConnectionStringError::MissingEndpoint)?;
    let (namespace_host, kafka_port) = endpoint_host(endpoint)?;
    let key_name = key_name
        .filter(|v| !v.is_empty())
        .ok_or(ConnectionStringError::MissingKeyName)?;
    key.filter(|v| !v.is_empty())
        .ok_or(ConnectionStringError::MissingKey)?;
    Ok(EventHubs {
        namespace_host,
        kafka_port,
        auth: EventHubsAuth::ConnectionString(SharedAccessKey {
            key_name: key_name.to_string(),
            entity_path: entity_path.filter(|v| !v.is_empty()).map(str::to_string),
            connection_string: Secret::new(s),
        }),
    })
}

/// The host and Kafka port of `sb://host[:port][/...]` (9093 unless a port is written).
fn endpoint_host(endpoint: &str) -> Result<(String, u16), ConnectionStringError> {
    let Some(rest) = strip_prefix_ignore_case(endpoint, "sb://") else {
        let found = match endpoint.find("://") {
            // Only a short alphabetic scheme is echoed: anything else might be key material.
            Some(i) if i <= 10 && endpoint[..i].chars().all(|c| c.is_ascii_alphabetic()) => {
                format!("`{}://`", &endpoint[..i])
            }
            _ => "no `sb://` scheme".to_string(),
        };
        return Err(ConnectionStringError::EndpointScheme { found });
    };
    let authority = rest.split('/').next().unwrap_or_default();
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, port)) if !port.is_empty() && port.chars().all(|c| c.is_ascii_digit()) => (
            h,
            port.parse().ok().filter(|p| *p != 0).unwrap_or(KAFKA_PORT),
        ),
        _ => (authority, KAFKA_PORT),
    };
    if host.is_empty() {
        return Err(ConnectionStringError::EmptyHost);
    }
    Ok((host.to_string(), port))
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// The Kafka bootstrap of a namespace: `<host>:9093` (or the port its `Endpoint` names).
pub fn bootstrap(eh: &EventHubs) -> String {
    format!("{}:{}", eh.namespace_host, eh.kafka_port)
}

/// The `SharedAccessKey` value of a connection string, if it has one: for redaction only.
pub(crate) fn shared_access_key(s: &str) -> Option<&str> {
    s.split(';')
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("SharedAccessKey"))
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ConnectionStringError as E;

    const KEY: &str = "s3cr3tK3y+abc/def=";

    struct Ok_ {
        host: &'static str,
        key_name: &'static str,
        entity: Option<&'static str>,
    }

    #[test]
    fn accepts_valid_strings() {
        let cases: Vec<(String, Ok_)> = vec![
            (
                format!("Endpoint=sb://myns.servicebus.windows.net/;SharedAccessKeyName=Root;SharedAccessKey={KEY}"),
                Ok_ { host: "myns.servicebus.windows.net", key_name: "Root", entity: None },
            ),
            (
                format!("Endpoint=sb://myns.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey={KEY};EntityPath=orders;"),
                Ok_ { host: "myns.servicebus.windows.net", key_name: "send", entity: Some("orders") },
            ),
            (
                format!("endpoint=sb://cn.servicebus.chinacloudapi.cn/;sharedaccesskeyname=k;sharedaccesskey={KEY}"),
                Ok_ { host: "cn.servicebus.chinacloudapi.cn", key_name: "k", entity: None },
            ),
            (
                format!("Endpoint=sb://gov.servicebus.usgovcloudapi.net;SharedAccessKeyName=k;SharedAccessKey={KEY};TransportType=Amqp"),
                Ok_ { host: "gov.servicebus.usgovcloudapi.net", key_name: "k", entity: None },
            ),
            (
                format!("Endpoint=sb://localhost:5672;SharedAccessKeyName=k;SharedAccessKey={KEY};UseDevelopmentEmulator=true;"),
                Ok_ { host: "localhost", key_name: "k", entity: None },
            ),
        ];
        for (s, want) in cases {
            let eh = parse_connection_string(&s).unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(eh.namespace_host, want.host, "{s}");
            let k = eh.shared_access_key().expect("a connection string");
            assert_eq!(k.key_name, want.key_name, "{s}");
            assert_eq!(k.entity_path.as_deref(), want.entity, "{s}");
            assert_eq!(
                k.connection_string.expose(),
                s,
                "the password is the whole string"
            );
        }
    }

    #[test]
    fn refuses_invalid_strings() {
        let cases: Vec<(String, E)> = vec![
            (String::new(), E::Empty),
            ("  ".into(), E::Empty),
            (format!("SharedAccessKeyName=k;SharedAccessKey={KEY}"), E::MissingEndpoint),
            (
                format!("Endpoint=https://myns.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey={KEY}"),
                E::EndpointScheme { found: "`https://`".into() },
            ),
            (
                format!("Endpoint=myns.servicebus.windows.net;SharedAccessKeyName=k;SharedAccessKey={KEY}"),
                E::EndpointScheme { found: "no `sb://` scheme".into() },
            ),
            (format!("Endpoint=sb://;SharedAccessKeyName=k;SharedAccessKey={KEY}"), E::EmptyHost),
            (format!("Endpoint=sb://ns.example/;SharedAccessKey={KEY}"), E::MissingKeyName),
            ("Endpoint=sb://ns.example/;SharedAccessKeyName=k".into(), E::MissingKey),
            ("Endpoint=sb://ns.example/;SharedAccessKeyName=k;SharedAccessKey=".into(), E::MissingKey),
            (format!("Endpoint=sb://ns.example/;SharedAccessKeyName=k;s3cr3t;SharedAccessKey={KEY}"), E::Malformed { part: 3 }),
            (
                format!("Endpoint=sb://ns.example/;SharedAccessKeyName=k;SharedAccessKey={KEY};SharedAccessKey={KEY}"),
                E::Duplicate { key: "SharedAccessKey" },
            ),
            (
                format!("Endpoint=sb://ns.example/;SharedAccessSignature=SharedAccessSignature sr={KEY}"),
                E::SasToken,
            ),
            (
                format!("Endpoint=sb{KEY}://x;SharedAccessKeyName=k;SharedAccessKey={KEY}"),
                E::EndpointScheme { found: "no `sb://` scheme".into() },
            ),
        ];
        for (s, want) in cases {
            let got = parse_connection_string(&s).map(|_| ()).unwrap_err();
            assert_eq!(got, want, "{s}");
            let msg = got.to_string();
            assert!(!msg.contains("s3cr3t"), "message leaks the key: {msg}");
            assert!(
                !msg.contains(&s) || s.trim().is_empty(),
                "message echoes the string"
            );
        }
    }

    #[test]
    fn bootstrap_uses_port_9093_unless_the_endpoint_names_one() {
        let cs = |ep: &str| format!("Endpoint={ep};SharedAccessKeyName=k;SharedAccessKey={KEY}");
        let eh = parse_connection_string(&cs("sb://x.servicebus.chinacloudapi.cn/")).unwrap();
        assert_eq!(bootstrap(&eh), "x.servicebus.chinacloudapi.cn:9093");
        let eh = parse_connection_string(&cs("sb://localhost:19093/")).unwrap();
        assert_eq!(bootstrap(&eh), "localhost:19093");
        assert_eq!(eh.namespace_host, "localhost");
    }

    #[test]
    fn finds_the_key_for_redaction() {
        let s = format!("Endpoint=sb://n/;SharedAccessKeyName=k;SharedAccessKey={KEY}");
        assert_eq!(shared_access_key(&s), Some(KEY));
        assert_eq!(shared_access_key("Endpoint=sb://n/"), None);
    }
}
