//! SASL `PLAIN` the Event Hubs way: username `$ConnectionString`, password a connection string
//! `Endpoint=sb://…/;SharedAccessKeyName=…;SharedAccessKey=…[;EntityPath=…]`.
//!
//! Failure reasons are for the log: none of them contains the key or the connection string.

use std::fmt;

/// The only username Event Hubs accepts with shared access keys.
pub(crate) const CONNECTION_STRING_USERNAME: &str = "$ConnectionString";

/// The shared-access-key mechanism.
pub(crate) const PLAIN: &str = "PLAIN";

/// Why a `PLAIN` authentication was refused. `Display` never shows secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum AuthFailure {
    /// The payload is not `authzid NUL username NUL password` in UTF-8.
    #[error("malformed PLAIN payload")]
    Malformed,
    /// An authorization id was given that differs from the username.
    #[error("authorization id differs from the username")]
    AuthzidMismatch,
    /// The username is not `$ConnectionString`.
    #[error("username is not $ConnectionString")]
    WrongUsername,
    /// The password is not a valid connection string.
    #[error("password is not a valid connection string: {0}")]
    BadConnectionString(ConnectionStringError),
    /// The connection string names another key.
    #[error("unknown SharedAccessKeyName")]
    WrongKeyName,
    /// The key does not match.
    #[error("SharedAccessKey does not match")]
    WrongKey,
    /// Local (SAS) authentication is disabled: only Entra ID tokens are accepted.
    #[error("local authentication is disabled")]
    LocalAuthDisabled,
}

/// Why a password is not a connection string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ConnectionStringError {
    /// A `;`-separated part has no `=`.
    #[error("a part is not Key=Value")]
    NotKeyValue,
    /// The same key appears twice.
    #[error("duplicate key {0}")]
    Duplicate(&'static str),
    /// A required key is missing or empty.
    #[error("missing {0}")]
    Missing(&'static str),
    /// `Endpoint` does not start with `sb://`.
    #[error("Endpoint is not sb://...")]
    EndpointScheme,
}

/// The parts of a connection string the emulator looks at.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct ConnectionString<'a> {
    /// `sb://<namespace host>/`.
    pub(crate) endpoint: &'a str,
    /// `SharedAccessKeyName`.
    pub(crate) key_name: &'a str,
    /// `SharedAccessKey` (secret).
    pub(crate) key: &'a str,
    /// `EntityPath`, present in entity-scoped connection strings.
    pub(crate) entity_path: Option<&'a str>,
}

impl fmt::Debug for ConnectionString<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionString")
            .field("endpoint", &self.endpoint)
            .field("key_name", &self.key_name)
            .field("key", &"***")
            .field("entity_path", &self.entity_path)
            .finish()
    }
}

/// Parses `;`-separated `Key=Value` pairs; keys are case-insensitive, values taken as they are,
/// empty parts (a trailing `;`) ignored, unknown keys tolerated.
pub(crate) fn parse_connection_string<'a>(
    s: &'a str,
) -> Result<ConnectionString<'a>, ConnectionStringError> {
    let (mut endpoint, mut key_name, mut key, mut entity_path) = (None, None, None, None);
    for part in s.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = part
            .split_once('=')
            .ok_or(ConnectionStringError::NotKeyValue)?;
        let (slot, name) = match k.trim().to_ascii_lowercase().as_str() {
            "endpoint" => (&mut endpoint, "Endpoint"),
            "sharedaccesskeyname" => (&mut key_name, "SharedAccessKeyName"),
            "sharedaccesskey" => (&mut key, "SharedAccessKey"),
            "entitypath" => (&mut entity_path, "EntityPath"),
            _ => continue,
        };
        if slot.replace(v.trim()).is_some() {
            return Err(ConnectionStringError::Duplicate(name));
        }
    }
    let required = |v: Option<&'a str>, name: &'static str| {
        v.filter(|v| !v.is_empty())
            .ok_or(ConnectionStringError::Missing(name))
    };
    let endpoint = required(endpoint, "Endpoint")?;
    let scheme_ok = endpoint
        .get(..5)
        .is_some_and(|s| s.eq_ignore_ascii_case("sb://"))
        && endpoint.len() > 5;
    if !scheme_ok {
        return Err(ConnectionStringError::EndpointScheme);
    }
    Ok(ConnectionString {
        endpoint,
        key_name: required(key_name, "SharedAccessKeyName")?,
        key: required(key, "SharedAccessKey")?,
        entity_path,
    })
}

/// The parts of a `PLAIN` payload (RFC 4616).
#[derive(PartialEq, Eq)]
pub(crate) struct PlainToken<'a> {
    /// Authorization id, usually empty.
    pub(crate) authzid: &'a str,
    /// Authentication id.
    pub(crate) username: &'a str,
    /// Secret.
    pub(crate) password: &'a str,
}

/// Splits `authzid NUL username NUL password`.
pub(crate) fn parse_plain(payload: &[u8]) -> Result<PlainToken<'_>, AuthFailure> {
    let text = std::str::from_utf8(payload).map_err(|_| AuthFailure::Malformed)?;
    let mut parts = text.split('\0');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(authzid), Some(username), Some(password), None) if !username.is_empty() => {
            Ok(PlainToken {
                authzid,
                username,
                password,
            })
        }
        _ => Err(AuthFailure::Malformed),
    }
}

/// The credentials an emulator accepts.
pub(crate) struct Credentials {
    key_name: String,
    key: String,
}

impl Credentials {
    /// Accepts connection strings naming `key_name` with `key`.
    pub(crate) fn new(key_name: &str, key: &str) -> Self {
        Credentials {
            key_name: key_name.to_string(),
            key: key.to_string(),
        }
    }

    /// Checks a `PLAIN` payload. On success returns who authenticated (for the log).
    pub(crate) fn check(&self, payload: &[u8]) -> Result<Principal, AuthFailure> {
        let token = parse_plain(payload)?;
        if !token.authzid.is_empty() && token.authzid != token.username {
            return Err(AuthFailure::AuthzidMismatch);
        }
        if token.username != CONNECTION_STRING_USERNAME {
            return Err(AuthFailure::WrongUsername);
        }
        let cs =
            parse_connection_string(token.password).map_err(AuthFailure::BadConnectionString)?;
        if cs.key_name != self.key_name {
            return Err(AuthFailure::WrongKeyName);
        }
        if !constant_time_eq(cs.key.as_bytes(), self.key.as_bytes()) {
            return Err(AuthFailure::WrongKey);
        }
        Ok(Principal {
            key_name: cs.key_name.to_string(),
            entity_path: cs.entity_path.map(str::to_string),
        })
    }
}

/// Who authenticated: nothing secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Principal {
    /// The `SharedAccessKeyName`.
    pub(crate) key_name: String,
    /// The `EntityPath`, for entity-scoped connection strings.
    pub(crate) entity_path: Option<String>,
}

/// Compares without returning early on the first differing byte (lengths are not secret).
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "c2VjcmV0LWtleS0xMjM0NQ==";

    fn creds() -> Credentials {
        Credentials::new("RootManageSharedAccessKey", KEY)
    }

    fn payload(authzid: &str, user: &str, password: &str) -> Vec<u8> {
        format!("{authzid}\0{user}\0{password}").into_bytes()
    }

    fn good_cs() -> String {
        format!("Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey={KEY}")
    }

    #[test]
    fn accepts_the_right_connection_string() {
        let p = payload("", "$ConnectionString", &good_cs());
        let who = creds().check(&p).expect("accepted");
        assert_eq!(who.key_name, "RootManageSharedAccessKey");
        assert_eq!(who.entity_path, None);
        let cs = good_cs();
        let parsed = parse_connection_string(&cs).expect("parsed");
        assert_eq!(parsed.endpoint, "sb://ns.servicebus.windows.net/");
    }

    #[test]
    fn keys_are_case_insensitive_and_entity_path_allowed() {
        let cs = format!(
            " endpoint=SB://ns.servicebus.chinacloudapi.cn/ ; sharedaccesskeyname=RootManageSharedAccessKey;SHAREDACCESSKEY={KEY};EntityPath=orders;"
        );
        let p = payload("$ConnectionString", "$ConnectionString", &cs);
        let parsed = creds().check(&p).expect("accepted");
        assert_eq!(parsed.entity_path.as_deref(), Some("orders"));
    }

    #[test]
    fn key_values_may_contain_equals_signs() {
        let cs =
            parse_connection_string("Endpoint=sb://x/;SharedAccessKeyName=n;SharedAccessKey=a=b==")
                .expect("parsed");
        assert_eq!(cs.key, "a=b==");
    }

    #[test]
    fn refuses_wrong_key_name_and_key() {
        let other_name = good_cs().replace("RootManageSharedAccessKey", "Listen");
        assert_eq!(
            creds().check(&payload("", "$ConnectionString", &other_name)),
            Err(AuthFailure::WrongKeyName)
        );
        let other_key = good_cs().replace(KEY, "c2VjcmV0LWtleS0xMjM0NA==");
        assert_eq!(
            creds().check(&payload("", "$ConnectionString", &other_key)),
            Err(AuthFailure::WrongKey)
        );
        let short_key = good_cs().replace(KEY, "abc");
        assert_eq!(
            creds().check(&payload("", "$ConnectionString", &short_key)),
            Err(AuthFailure::WrongKey)
        );
    }

    #[test]
    fn refuses_other_usernames_and_authzids() {
        assert_eq!(
            creds().check(&payload("", "admin", &good_cs())),
            Err(AuthFailure::WrongUsername)
        );
        assert_eq!(
            creds().check(&payload("", "$connectionstring", &good_cs())),
            Err(AuthFailure::WrongUsername)
        );
        assert_eq!(
            creds().check(&payload("bob", "$ConnectionString", &good_cs())),
            Err(AuthFailure::AuthzidMismatch)
        );
    }

    #[test]
    fn refuses_malformed_payloads() {
        for p in [
            &b""[..],
            b"only-one-part",
            b"\0user",
            b"\0\0password",
            b"a\0b\0c\0d",
            b"\0user\0\xff",
        ] {
            assert_eq!(creds().check(p), Err(AuthFailure::Malformed), "{p:?}");
        }
    }

    #[test]
    fn refuses_bad_connection_strings() {
        use ConnectionStringError::*;
        let cases = [
            ("just-a-key".to_string(), NotKeyValue),
            (
                "SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=k".to_string(),
                Missing("Endpoint"),
            ),
            (
                "Endpoint=https://ns/;SharedAccessKeyName=n;SharedAccessKey=k".to_string(),
                EndpointScheme,
            ),
            (
                "Endpoint=sb://;SharedAccessKeyName=n;SharedAccessKey=k".to_string(),
                EndpointScheme,
            ),
            (
                "Endpoint=sb://ns/;SharedAccessKey=k".to_string(),
                Missing("SharedAccessKeyName"),
            ),
            (
                "Endpoint=sb://ns/;SharedAccessKeyName=n;SharedAccessKey=".to_string(),
                Missing("SharedAccessKey"),
            ),
            (
                "Endpoint=sb://ns/;SharedAccessKeyName=n;SharedAccessKey=k;sharedaccesskey=k"
                    .to_string(),
                Duplicate("SharedAccessKey"),
            ),
            (
                "Endpoint=sb://ns/;SharedAccessSignature=SharedAccessSignature sr=x".to_string(),
                Missing("SharedAccessKeyName"),
            ),
        ];
        for (cs, want) in cases {
            assert_eq!(
                creds().check(&payload("", "$ConnectionString", &cs)),
                Err(AuthFailure::BadConnectionString(want.clone())),
                "{want}"
            );
        }
    }

    #[test]
    fn failure_messages_and_debug_never_show_the_key() {
        let wrong = good_cs().replace(KEY, "Zm9vYmFy");
        let failures = [
            creds().check(&payload("", "$ConnectionString", &wrong)),
            creds().check(&payload("", "admin", &good_cs())),
            creds().check(&payload("", "$ConnectionString", KEY)),
        ];
        assert!(failures.iter().all(Result::is_err));
        for f in failures {
            let text = format!(
                "{} {:?}",
                f.as_ref().err().map(|e| e.to_string()).unwrap_or_default(),
                f.err()
            );
            assert!(!text.contains(KEY) && !text.contains("Zm9vYmFy"), "{text}");
        }
        let good = good_cs();
        let cs = parse_connection_string(&good).expect("parsed");
        assert!(!format!("{cs:?}").contains(KEY));
    }
}
