//! Sessions on live connections (KIP-368): an OAUTHBEARER session ends when its token expires,
//! and the connection is closed then unless the client re-authenticated before, with a
//! SaslHandshake and a SaslAuthenticate on the same connection (librdkafka 2.2 and later does
//! it by itself at 90% of `session_lifetime_ms`).
//!
//! The relay answers those two requests itself (they are never forwarded) with the rules of
//! the first authentication (see [`super::auth`]), for the same mechanism and principal. The
//! answers are queued behind the responses still owed for earlier requests, so they never
//! overtake them. A successful re-authentication moves the session's end to the new token's
//! expiry at once; a refused one closes the connection after its answer.

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{info, warn};

use super::api;
use super::auth::{self, Session};
use super::error::ConnError;
use super::frame::{Frame, Peek};
use super::Shared;

/// What the relay does with a SASL request on an authenticated connection.
#[derive(Debug)]
pub(crate) enum Step {
    /// Queue this answer and go on.
    Answer(Bytes),
    /// Queue this answer, then close the connection once everything owed is written.
    Close(Bytes),
}

/// The session of one relayed connection.
pub(crate) struct Reauth {
    session: Session,
    /// A re-authentication's SaslHandshake was accepted: its SaslAuthenticate comes next.
    handshaken: bool,
    /// The session's end, watched by [`session_end`].
    expires: watch::Sender<Option<Instant>>,
}

impl Reauth {
    /// The state of a connection authenticated with `session`, and the watch on its end.
    pub(crate) fn new(session: Session) -> (Reauth, watch::Receiver<Option<Instant>>) {
        let (expires, watch) = watch::channel(session.expires);
        let reauth = Reauth {
            session,
            handshaken: false,
            expires,
        };
        (reauth, watch)
    }

    /// A SaslHandshake on the authenticated connection: the start of a re-authentication,
    /// accepted for the session's mechanism (v1 and later).
    pub(crate) fn handshake(
        &mut self,
        shared: &Shared,
        frame: &Frame,
        peek: Peek,
    ) -> Result<Step, ConnError> {
        let name = api::sasl_handshake_mechanism(frame)?;
        let chosen = auth::choose(shared, name.as_str(), peek.api_version)
            .filter(|m| *m == self.session.mechanism && peek.api_version >= 1 && !self.handshaken);
        let answer = api::sasl_handshake(peek, chosen.is_some(), &auth::enabled(shared))?;
        if chosen.is_none() {
            warn!(
                mechanism = %name,
                version = peek.api_version,
                session_mechanism = ?self.session.mechanism,
                "re-authentication handshake refused: connection closed"
            );
            return Ok(Step::Close(answer));
        }
        self.handshaken = true;
        Ok(Step::Answer(answer))
    }

    /// A SaslAuthenticate on the authenticated connection: the end of a re-authentication.
    pub(crate) fn authenticate(
        &mut self,
        shared: &Shared,
        frame: &Frame,
        peek: Peek,
    ) -> Result<Step, ConnError> {
        if !std::mem::replace(&mut self.handshaken, false) {
            warn!(
                "SaslAuthenticate after authentication without a SaslHandshake: connection closed"
            );
            let refusal = (ResponseError::IllegalSaslState, "SaslHandshake first");
            return Ok(Step::Close(api::sasl_authenticate(peek, Some(refusal), 0)?));
        }
        let (answer, outcome) = auth::authenticate(
            shared,
            self.session.mechanism,
            frame,
            peek,
            Some(&self.session.principal),
        )?;
        match outcome {
            Ok(accepted) => {
                let expires = accepted.lifetime.map(|l| Instant::now() + l);
                self.session.expires = expires;
                self.expires.send_replace(expires);
                Ok(Step::Answer(answer))
            }
            Err(reason) => {
                info!(%reason, "re-authentication refused: connection closed");
                Ok(Step::Close(answer))
            }
        }
    }
}

/// Returns when the session ends: its end reached without being moved. Never returns for
/// sessions without an end.
pub(crate) async fn session_end(mut expires: watch::Receiver<Option<Instant>>) {
    loop {
        let end = *expires.borrow_and_update();
        match end {
            None => {
                if expires.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
            Some(at) => {
                tokio::select! {
                    () = tokio::time::sleep_until(at) => return,
                    changed = expires.changed() => {
                        if changed.is_err() {
                            tokio::time::sleep_until(at).await;
                            return;
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Mechanism;
    use std::time::Duration;

    #[tokio::test]
    async fn the_session_ends_at_its_latest_end() {
        let ms = Duration::from_millis;
        let session = Session {
            mechanism: Mechanism::OAuthBearer,
            principal: "app".to_string(),
            expires: Some(Instant::now() + ms(200)),
        };
        let (reauth, watch) = Reauth::new(session);
        let started = Instant::now();
        let end = tokio::spawn(session_end(watch));
        // Moved before the first end is reached: the session lasts until the new one.
        tokio::time::sleep(ms(100)).await;
        reauth.expires.send_replace(Some(Instant::now() + ms(300)));
        end.await.expect("ended");
        let lasted = started.elapsed();
        assert!(lasted >= ms(390) && lasted < ms(3000), "{lasted:?}");

        let (_never, watch) = Reauth::new(Session::plain("key".to_string()));
        let waited = tokio::time::timeout(ms(300), session_end(watch)).await;
        assert!(waited.is_err(), "a PLAIN session never ends");
    }
}
