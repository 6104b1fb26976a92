//! The emulator's JWTs: HS256 with its own key. Access tokens (what Entra ID issues for the
//! namespace) and federated assertions (what the AKS OIDC issuer projects into pods) are signed
//! and verified here.
//!
//! Refusal reasons name what is wrong, never the token.

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// The audience of federated (workload identity) assertions.
pub(crate) const TOKEN_EXCHANGE_AUDIENCE: &str = "api://AzureADTokenExchange";

/// Seconds since the Unix epoch.
pub(crate) fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Milliseconds since the Unix epoch.
pub(crate) fn unix_millis(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The claims of an access token the emulator issues (a subset of Entra's v1 tokens).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct AccessClaims {
    /// `https://<namespace>` (or the resource a managed identity asked for).
    pub(crate) aud: String,
    /// `https://sts.windows.net/<tenant>/`.
    pub(crate) iss: String,
    /// The tenant id.
    pub(crate) tid: String,
    /// The application's (or managed identity's) client id.
    pub(crate) appid: String,
    /// Object id: the client id again.
    pub(crate) oid: String,
    /// Subject: the client id again.
    pub(crate) sub: String,
    /// Issued at (Unix seconds).
    pub(crate) iat: u64,
    /// Not before (Unix seconds).
    pub(crate) nbf: u64,
    /// Expires (Unix seconds).
    pub(crate) exp: u64,
}

/// What an access token presented with OAUTHBEARER must at least carry (tests may sign odd
/// claim sets with [`Signer::sign`]).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(crate) struct PresentedClaims {
    /// Expires (Unix seconds).
    pub(crate) exp: u64,
    /// The client id, if any.
    #[serde(default)]
    pub(crate) appid: Option<String>,
    /// The subject, if any.
    #[serde(default)]
    pub(crate) sub: Option<String>,
}

/// The claims of a federated assertion (a projected service-account token).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct AssertionClaims {
    /// The OIDC issuer: `<authority>/oidc-issuer`.
    pub(crate) iss: String,
    /// The service account: `system:serviceaccount:<namespace>:<name>`.
    pub(crate) sub: String,
    /// [`TOKEN_EXCHANGE_AUDIENCE`].
    pub(crate) aud: String,
    /// Issued at (Unix seconds).
    pub(crate) iat: u64,
    /// Not before (Unix seconds).
    pub(crate) nbf: u64,
    /// Expires (Unix seconds).
    pub(crate) exp: u64,
}

/// Why a JWT was refused. `Display` is safe for logs and for clients.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum JwtRefusal {
    /// Not three base64url parts, or not JSON, or claims missing or of the wrong type.
    #[error("token is malformed")]
    Malformed,
    /// Signed with another key or algorithm, or altered.
    #[error("token signature is invalid")]
    BadSignature,
    /// `exp` has passed.
    #[error("token has expired")]
    Expired,
    /// `nbf` is in the future.
    #[error("token is not valid yet")]
    NotYetValid,
    /// `aud` is not the expected audience.
    #[error("token audience is not {expected}")]
    WrongAudience {
        /// The audience the emulator wants.
        expected: String,
    },
    /// `iss` is not the expected issuer.
    #[error("token issuer is not {expected}")]
    WrongIssuer {
        /// The issuer the emulator wants.
        expected: String,
    },
}

/// Signs and verifies with the emulator's HMAC key.
pub(crate) struct Signer {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl Signer {
    /// A signer with `key` (HS256).
    pub(crate) fn new(key: &[u8]) -> Signer {
        Signer {
            encoding: EncodingKey::from_secret(key),
            decoding: DecodingKey::from_secret(key),
        }
    }

    /// Signs any claim set.
    pub(crate) fn sign<T: Serialize>(&self, claims: &T) -> String {
        // HS256 over claims that serialize to JSON cannot fail; an empty token would be
        // refused as malformed anyway.
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .unwrap_or_default()
    }

    /// Verifies the signature, `exp` and `nbf` (no leeway), `aud` against `audiences` and, if
    /// given, `iss`.
    pub(crate) fn verify<T: for<'de> Deserialize<'de>>(
        &self,
        token: &str,
        audiences: &[String],
        issuer: Option<&str>,
    ) -> Result<T, JwtRefusal> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.validate_nbf = true;
        validation.set_audience(audiences);
        validation.set_required_spec_claims(&["exp", "aud"]);
        if let Some(iss) = issuer {
            validation.set_issuer(&[iss]);
        }
        match jsonwebtoken::decode::<T>(token, &self.decoding, &validation) {
            Ok(data) => Ok(data.claims),
            Err(e) => Err(match e.kind() {
                ErrorKind::InvalidSignature | ErrorKind::InvalidAlgorithm => {
                    JwtRefusal::BadSignature
                }
                ErrorKind::ExpiredSignature => JwtRefusal::Expired,
                ErrorKind::ImmatureSignature => JwtRefusal::NotYetValid,
                ErrorKind::InvalidAudience => JwtRefusal::WrongAudience {
                    expected: audiences.first().cloned().unwrap_or_default(),
                },
                ErrorKind::InvalidIssuer => JwtRefusal::WrongIssuer {
                    expected: issuer.unwrap_or_default().to_string(),
                },
                _ => JwtRefusal::Malformed,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn claims(aud: &str, exp: u64, nbf: u64) -> AccessClaims {
        AccessClaims {
            aud: aud.to_string(),
            iss: "https://sts.windows.net/t/".to_string(),
            tid: "t".to_string(),
            appid: "app".to_string(),
            oid: "app".to_string(),
            sub: "app".to_string(),
            iat: nbf,
            nbf,
            exp,
        }
    }

    #[test]
    fn verifies_what_it_signs_and_refuses_the_rest() {
        let signer = Signer::new(b"0123456789abcdef0123456789abcdef");
        let now = unix_secs(SystemTime::now());
        let aud = vec!["https://ns".to_string(), "https://ns/".to_string()];
        let good = signer.sign(&claims("https://ns", now + 60, now));
        let got: PresentedClaims = signer.verify(&good, &aud, None).expect("valid");
        assert_eq!(got.appid.as_deref(), Some("app"));
        let slash = signer.sign(&claims("https://ns/", now + 60, now));
        assert!(signer.verify::<PresentedClaims>(&slash, &aud, None).is_ok());

        let check = |token: &str| signer.verify::<PresentedClaims>(token, &aud, None);
        assert_eq!(
            check(&signer.sign(&claims("https://ns", now - 10, now - 70))),
            Err(JwtRefusal::Expired)
        );
        assert_eq!(
            check(&signer.sign(&claims("https://ns", now + 600, now + 300))),
            Err(JwtRefusal::NotYetValid)
        );
        assert_eq!(
            check(&signer.sign(&claims("https://other", now + 60, now))),
            Err(JwtRefusal::WrongAudience {
                expected: "https://ns".to_string()
            })
        );
        let other = Signer::new(b"another key, another key, another");
        assert_eq!(
            check(&other.sign(&claims("https://ns", now + 60, now))),
            Err(JwtRefusal::BadSignature)
        );
        // One character of the signature changed.
        let mut tampered = good.clone().into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).expect("utf8");
        assert_eq!(check(&tampered), Err(JwtRefusal::BadSignature));
        assert_eq!(check("not.a.jwt"), Err(JwtRefusal::Malformed));
        assert_eq!(check(""), Err(JwtRefusal::Malformed));
        assert_eq!(
            signer.verify::<PresentedClaims>(&good, &aud, Some("https://issuer")),
            Err(JwtRefusal::WrongIssuer {
                expected: "https://issuer".to_string()
            })
        );
        assert!(unix_millis(SystemTime::now() + Duration::from_secs(1)) > 0);
    }
}
