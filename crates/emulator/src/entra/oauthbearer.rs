//! SASL OAUTHBEARER (RFC 7628, KIP-255) on the Kafka listener: the client's first message
//! `n,[a=<authzid>],\x01auth=Bearer <token>\x01[key=value\x01]*\x01` and the check of its token
//! (signed by the emulator, audience `https://<namespace>`, within `nbf`..`exp`).
//!
//! Refusal texts go to the client and the log; none contains the token.

use std::time::{Duration, SystemTime};

use super::jwt::{self, JwtRefusal, PresentedClaims};
use super::Entra;

/// The mechanism's name.
pub(crate) const OAUTHBEARER: &str = "OAUTHBEARER";

/// The parts of a client's first message the emulator uses.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ClientFirst<'a> {
    /// The authorization id of the GS2 header, if any.
    pub(crate) authzid: Option<&'a str>,
    /// The bearer token (secret).
    pub(crate) token: &'a str,
}

/// Why an OAUTHBEARER authentication was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum BearerRefusal {
    /// The message is not an RFC 7628 client response.
    #[error("malformed OAUTHBEARER client message: {0}")]
    Malformed(&'static str),
    /// The token itself was refused.
    #[error("{0}")]
    Token(JwtRefusal),
    /// The token names no client (neither `appid` nor `sub`).
    #[error("token names no client (appid or sub)")]
    NoClient,
    /// The GS2 authorization id is not the token's client.
    #[error("authorization id does not match the token's subject")]
    AuthzidMismatch,
    /// A re-authentication presented another client's token.
    #[error("re-authentication as another principal is not allowed")]
    PrincipalChanged,
}

/// A successful OAUTHBEARER authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Session {
    /// Who: the token's `appid` (or `sub`).
    pub(crate) client_id: String,
    /// How long until the token expires: the session's lifetime.
    pub(crate) lifetime: Duration,
}

/// Splits a client's first message.
pub(crate) fn parse(payload: &[u8]) -> Result<ClientFirst<'_>, BearerRefusal> {
    let malformed = BearerRefusal::Malformed;
    let text = std::str::from_utf8(payload).map_err(|_| malformed("not UTF-8"))?;
    let (gs2, rest) = text
        .split_once('\x01')
        .ok_or(malformed("no key-value separator"))?;
    // gs2-header = gs2-cb-flag "," [ "a=" authzid ] ","; channel binding is not supported.
    let mut parts = gs2.splitn(3, ',');
    let (flag, authz, tail) = (parts.next(), parts.next(), parts.next());
    if !matches!(flag, Some("n" | "y")) || tail != Some("") {
        return Err(malformed("bad GS2 header"));
    }
    let authzid = match authz {
        Some("") => None,
        Some(a) => Some(a.strip_prefix("a=").ok_or(malformed("bad authzid"))?),
        None => return Err(malformed("bad GS2 header")),
    };
    let pairs = rest
        .strip_suffix("\x01\x01")
        .ok_or(malformed("not terminated by two key-value separators"))?;
    let mut token = None;
    for pair in pairs.split('\x01') {
        let (key, value) = pair
            .split_once('=')
            .ok_or(malformed("a pair is not key=value"))?;
        if key == "auth" {
            let (scheme, bearer) = value
                .split_once(' ')
                .ok_or(malformed("auth is not 'Bearer <token>'"))?;
            if !scheme.eq_ignore_ascii_case("bearer") || bearer.trim().is_empty() {
                return Err(malformed("auth is not 'Bearer <token>'"));
            }
            if token.replace(bearer.trim()).is_some() {
                return Err(malformed("auth given twice"));
            }
        }
    }
    let token = token.ok_or(malformed("no auth=Bearer"))?;
    Ok(ClientFirst { authzid, token })
}

/// Checks a client's first message at `now`.
pub(crate) fn check(
    entra: &Entra,
    payload: &[u8],
    now: SystemTime,
) -> Result<Session, BearerRefusal> {
    let first = parse(payload)?;
    let claims: PresentedClaims = entra
        .signer()
        .verify(first.token, &entra.audiences(), None)
        .map_err(BearerRefusal::Token)?;
    let client_id = claims
        .appid
        .or(claims.sub)
        .filter(|c| !c.is_empty())
        .ok_or(BearerRefusal::NoClient)?;
    if first.authzid.is_some_and(|a| a != client_id) {
        return Err(BearerRefusal::AuthzidMismatch);
    }
    let exp_ms = i64::try_from(claims.exp)
        .unwrap_or(i64::MAX / 1000)
        .saturating_mul(1000);
    let left_ms = exp_ms - jwt::unix_millis(now);
    if left_ms <= 0 {
        return Err(BearerRefusal::Token(JwtRefusal::Expired));
    }
    Ok(Session {
        client_id,
        lifetime: Duration::from_millis(left_ms.unsigned_abs()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entra::EntraConfig;
    use std::net::SocketAddr;

    fn entra() -> Entra {
        Entra::new(
            &EntraConfig::default(),
            SocketAddr::from(([127, 0, 0, 1], 1)),
        )
    }

    #[test]
    fn parses_librdkafkas_messages() {
        let got = parse(b"n,,\x01auth=Bearer abc.def.ghi\x01\x01").expect("parsed");
        assert_eq!(
            got,
            ClientFirst {
                authzid: None,
                token: "abc.def.ghi"
            }
        );
        let got = parse(b"n,a=app,\x01auth=Bearer t\x01logicalCluster=lkc\x01\x01").expect("ext");
        assert_eq!(got.authzid, Some("app"));
        assert_eq!(got.token, "t");
        for bad in [
            &b""[..],
            b"n,,",
            b"p=x,,\x01auth=Bearer t\x01\x01",
            b"n,,\x01auth=Bearer t\x01",
            b"n,,\x01auth=Basic t\x01\x01",
            b"n,,\x01auth=Bearer \x01\x01",
            b"n,,\x01\x01",
            b"n,,\x01noequals\x01\x01",
            b"n,,\x01auth=Bearer a\x01auth=Bearer b\x01\x01",
            b"\x01",
        ] {
            assert!(
                matches!(parse(bad), Err(BearerRefusal::Malformed(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn checks_the_token_and_reports_the_remaining_lifetime() {
        let e = entra();
        let now = SystemTime::now();
        let message = |t: &str| format!("n,,\x01auth=Bearer {t}\x01\x01").into_bytes();
        let (token, _) = e.issue("app-1", &e.audience(), now, Duration::from_secs(600));
        let session = check(&e, &message(&token), now).expect("accepted");
        assert_eq!(session.client_id, "app-1");
        assert!(session.lifetime <= Duration::from_secs(600));
        assert!(session.lifetime > Duration::from_secs(598), "{session:?}");

        let slash = format!("{}/", e.audience());
        let (token, _) = e.issue("app-1", &slash, now, Duration::from_secs(60));
        assert!(check(&e, &message(&token), now).is_ok());

        let (old, _) = e.issue(
            "app-1",
            &e.audience(),
            now - Duration::from_secs(3600),
            Duration::from_secs(60),
        );
        assert_eq!(
            check(&e, &message(&old), now),
            Err(BearerRefusal::Token(JwtRefusal::Expired))
        );
        let (other, _) = e.issue(
            "app-1",
            "https://eventhubs.azure.net",
            now,
            Duration::from_secs(60),
        );
        let refused = check(&e, &message(&other), now).expect_err("wrong audience");
        assert!(refused.to_string().contains("audience"), "{refused}");
        let foreign = entra()
            .issue("app-1", &e.audience(), now, Duration::from_secs(60))
            .0;
        assert_eq!(
            check(&e, &message(&foreign), now),
            Err(BearerRefusal::Token(JwtRefusal::BadSignature))
        );
        let (token, _) = e.issue("app-1", &e.audience(), now, Duration::from_secs(60));
        let with_authzid = format!("n,a=someone-else,\x01auth=Bearer {token}\x01\x01");
        assert_eq!(
            check(&e, with_authzid.as_bytes(), now),
            Err(BearerRefusal::AuthzidMismatch)
        );
        let refusal = check(&e, &message(&foreign), now).expect_err("refused");
        assert!(!refusal.to_string().contains(&foreign));
    }
}
