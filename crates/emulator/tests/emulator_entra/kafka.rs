//! SASL OAUTHBEARER on the Kafka listener: tokens accepted and refused, the session lifetime
//! (KIP-368), connections closed when it ends, re-authentication on a live connection (raw, and
//! librdkafka's own), and PLAIN with and without local authentication.

use std::time::{Duration, Instant, SystemTime};

use kafka_protocol::messages::{
    ApiKey, MetadataRequest, MetadataResponse, SaslAuthenticateRequest, SaslAuthenticateResponse,
    SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::producer::{BaseProducer, Producer};
use serde_json::json;

use super::support::emulator::{bearer_message, RawClient, TEST_CLIENT_ID, TEST_MANAGED_IDENTITY};
use super::{init_logs, start};

/// A Metadata v4 request for every topic, answered by the broker behind.
async fn metadata(c: &mut RawClient) -> MetadataResponse {
    let id = c
        .send(ApiKey::Metadata, 4, &MetadataRequest::default())
        .await;
    c.recv(ApiKey::Metadata, 4, id).await
}

/// Authenticates with `token` on a new connection; returns the answer (connection dropped).
async fn refused(eh: &super::support::emulator::EventHubsEmulator, token: &str) -> String {
    let mut c = RawClient::connect(eh).await;
    let answer = c.oauthbearer(token).await;
    assert_eq!(answer.error_code, 58, "{answer:?}");
    c.assert_closed().await;
    let message = answer
        .error_message
        .map(|m| m.to_string())
        .unwrap_or_default();
    assert!(!message.contains(token), "{message}");
    message
}

#[tokio::test(flavor = "multi_thread")]
async fn a_valid_token_authenticates_for_its_lifetime_and_requests_relay() {
    init_logs();
    let eh = start(Duration::from_secs(3600), false);
    let mut c = RawClient::connect(&eh).await;
    let handshake = c.handshake(1, "OAUTHBEARER").await;
    assert_eq!(handshake.error_code, 0);
    let listed: Vec<String> = handshake.mechanisms.iter().map(|m| m.to_string()).collect();
    assert_eq!(listed, ["OAUTHBEARER"]);
    let auth = SaslAuthenticateRequest::default()
        .with_auth_bytes(bearer_message(&eh.access_token(TEST_CLIENT_ID)));
    let id = c.send(ApiKey::SaslAuthenticate, 2, &auth).await;
    let ok: SaslAuthenticateResponse = c.recv(ApiKey::SaslAuthenticate, 2, id).await;
    assert_eq!(ok.error_code, 0, "{:?}", ok.error_message);
    let lifetime = ok.session_lifetime_ms;
    assert!((3_590_000..=3_600_000).contains(&lifetime), "{lifetime}");
    let m = metadata(&mut c).await;
    assert!(!m.brokers.is_empty(), "{m:?}");

    // A managed identity's token with the resource's trailing slash, and librdkafka's
    // extensions after the token.
    let mut c = RawClient::connect(&eh).await;
    assert_eq!(c.handshake(1, "OAUTHBEARER").await.error_code, 0);
    let token = eh
        .emulator
        .sign_claims(
            &json!({"aud": format!("https://{}/", eh.namespace()), "appid": TEST_MANAGED_IDENTITY,
            "exp": unix_now() + 60, "nbf": unix_now()}),
        )
        .expect("signed");
    let message = format!("n,,\x01auth=Bearer {token}\x01logicalCluster=lkc-1\x01\x01");
    let auth = SaslAuthenticateRequest::default().with_auth_bytes(message.into_bytes().into());
    let id = c.send(ApiKey::SaslAuthenticate, 1, &auth).await;
    let ok: SaslAuthenticateResponse = c.recv(ApiKey::SaslAuthenticate, 1, id).await;
    assert_eq!(ok.error_code, 0, "{:?}", ok.error_message);
    assert!(
        (55_000..=60_000).contains(&ok.session_lifetime_ms),
        "{}",
        ok.session_lifetime_ms
    );
    assert!(!metadata(&mut c).await.brokers.is_empty());
    let stats = eh.entra_stats();
    assert_eq!(stats.oauthbearer_authentications, 2, "{stats:?}");
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

#[tokio::test(flavor = "multi_thread")]
async fn expired_foreign_audience_forged_and_malformed_tokens_are_refused() {
    init_logs();
    let eh = start(Duration::from_secs(3600), false);
    let hour_ago = SystemTime::now() - Duration::from_secs(3600);
    let expired = eh
        .emulator
        .access_token_with(TEST_CLIENT_ID, hour_ago, Duration::from_secs(60))
        .expect("token");
    assert!(refused(&eh, &expired).await.contains("expired"));

    let foreign = eh
        .emulator
        .sign_claims(
            &json!({"aud": "https://eventhubs.azure.net", "appid": TEST_CLIENT_ID,
            "exp": unix_now() + 600, "nbf": unix_now()}),
        )
        .expect("signed");
    assert!(refused(&eh, &foreign).await.contains("audience"));

    let good = eh.access_token(TEST_CLIENT_ID);
    let (head, signature) = good.rsplit_once('.').expect("JWT");
    let flipped = if signature.starts_with('A') { "B" } else { "A" };
    let forged = format!("{head}.{flipped}{}", &signature[1..]);
    assert!(refused(&eh, &forged).await.contains("signature"));

    assert!(refused(&eh, "not-a-jwt").await.contains("malformed"));
    let mut c = RawClient::connect(&eh).await;
    assert_eq!(c.handshake(1, "OAUTHBEARER").await.error_code, 0);
    let bare = format!("auth=Bearer {good}");
    let auth = SaslAuthenticateRequest::default().with_auth_bytes(bare.into_bytes().into());
    let id = c.send(ApiKey::SaslAuthenticate, 2, &auth).await;
    let answer: SaslAuthenticateResponse = c.recv(ApiKey::SaslAuthenticate, 2, id).await;
    assert_eq!(answer.error_code, 58);
    c.assert_closed().await;

    let stats = eh.entra_stats();
    assert_eq!(
        (stats.oauthbearer_refused, stats.oauthbearer_authentications),
        (5, 0),
        "{stats:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn plain_is_refused_without_local_auth_and_accepted_with_it() {
    init_logs();
    let eh = start(Duration::from_secs(3600), false);
    let mut c = RawClient::connect(&eh).await;
    assert_eq!(c.handshake(1, "PLAIN").await.error_code, 0);
    let auth = SaslAuthenticateRequest::default().with_auth_bytes(eh.plain_token());
    let id = c.send(ApiKey::SaslAuthenticate, 2, &auth).await;
    let answer: SaslAuthenticateResponse = c.recv(ApiKey::SaslAuthenticate, 2, id).await;
    assert_eq!(answer.error_code, 58);
    let message = answer
        .error_message
        .map(|m| m.to_string())
        .unwrap_or_default();
    assert!(
        message.contains("Local authentication is disabled"),
        "{message}"
    );
    c.assert_closed().await;
    assert_eq!(eh.entra_stats().plain_refused_local_auth_disabled, 1);

    let eh = start(Duration::from_secs(3600), true);
    let mut c = RawClient::connect(&eh).await;
    let handshake = c.handshake(1, "PLAIN").await;
    let listed: Vec<String> = handshake.mechanisms.iter().map(|m| m.to_string()).collect();
    assert_eq!(listed, ["PLAIN", "OAUTHBEARER"]);
    let auth = SaslAuthenticateRequest::default().with_auth_bytes(eh.plain_token());
    let id = c.send(ApiKey::SaslAuthenticate, 2, &auth).await;
    let ok: SaslAuthenticateResponse = c.recv(ApiKey::SaslAuthenticate, 2, id).await;
    assert_eq!((ok.error_code, ok.session_lifetime_ms), (0, 0));
    assert!(!metadata(&mut c).await.brokers.is_empty());
    let mut c = RawClient::connect_oauthbearer(&eh, &eh.access_token(TEST_CLIENT_ID)).await;
    assert!(!metadata(&mut c).await.brokers.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_not_reauthenticated_is_closed_when_its_token_expires() {
    init_logs();
    let eh = start(Duration::from_secs(3), false);
    let started = Instant::now();
    let mut c = RawClient::connect_oauthbearer(&eh, &eh.access_token(TEST_CLIENT_ID)).await;
    assert!(!metadata(&mut c).await.brokers.is_empty());
    // The token's exp is whole seconds: the session lasts 2 to 3 s.
    let closed = tokio::time::timeout(Duration::from_secs(10), c.recv_frame())
        .await
        .expect("closed within 10 s");
    assert!(closed.is_none(), "{closed:?}");
    let lasted = started.elapsed();
    assert!(lasted >= Duration::from_millis(1900), "{lasted:?}");
    assert_eq!(eh.entra_stats().sessions_expired, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn reauthentication_extends_the_session_and_keeps_responses_in_order() {
    init_logs();
    let eh = start(Duration::from_secs(3), false);
    let first = eh.access_token(TEST_CLIENT_ID);
    let first_expiry = Instant::now() + Duration::from_secs(3);
    let mut c = RawClient::connect_oauthbearer(&eh, &first).await;

    // Pipelined: a Metadata request upstream, then the re-authentication answered locally;
    // the answers come back in request order (`recv` checks each correlation id).
    let second = eh
        .emulator
        .access_token_with(TEST_CLIENT_ID, SystemTime::now(), Duration::from_secs(30))
        .expect("token");
    let m = c
        .send(ApiKey::Metadata, 4, &MetadataRequest::default())
        .await;
    let hs =
        SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("OAUTHBEARER"));
    let h = c.send(ApiKey::SaslHandshake, 1, &hs).await;
    let auth = SaslAuthenticateRequest::default().with_auth_bytes(bearer_message(&second));
    let a = c.send(ApiKey::SaslAuthenticate, 2, &auth).await;
    let meta: MetadataResponse = c.recv(ApiKey::Metadata, 4, m).await;
    assert!(!meta.brokers.is_empty());
    let hs: SaslHandshakeResponse = c.recv(ApiKey::SaslHandshake, 1, h).await;
    assert_eq!(hs.error_code, 0);
    let ok: SaslAuthenticateResponse = c.recv(ApiKey::SaslAuthenticate, 2, a).await;
    assert_eq!(ok.error_code, 0, "{:?}", ok.error_message);
    assert!(
        ok.session_lifetime_ms > 25_000,
        "{}",
        ok.session_lifetime_ms
    );

    // Past the first token's expiry, the connection still serves.
    let deadline = first_expiry + Duration::from_secs(2);
    while Instant::now() < deadline {
        assert!(!metadata(&mut c).await.brokers.is_empty());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let stats = eh.entra_stats();
    assert_eq!(
        (stats.reauthentications, stats.sessions_expired),
        (1, 0),
        "{stats:?}"
    );

    // Re-authenticating as someone else is refused and closes the connection.
    let other = eh.access_token(TEST_MANAGED_IDENTITY);
    let refused = c.oauthbearer(&other).await;
    assert_eq!(refused.error_code, 58);
    c.assert_closed().await;
}

#[test]
fn librdkafka_reauthenticates_by_itself_before_its_session_ends() {
    init_logs();
    // librdkafka re-authenticates at 90% of the session lifetime with the token it holds, and
    // refreshes its token at 80% of the token's lifetime, checked on a 1 s timer; exp is whole
    // seconds (up to 1 s less than the lifetime). Below ~6 s tokens, a re-authentication can
    // present a token that expired before the refresh: 8 s tokens, two rounds in 16 s.
    let eh = start(Duration::from_secs(8), false);
    let context = eh.oauth_context(TEST_CLIENT_ID);
    let producer: BaseProducer<_> = eh
        .oauth_client_config()
        .create_with_context(context.clone())
        .expect("producer");
    let until = Instant::now() + Duration::from_secs(16);
    while Instant::now() < until {
        producer.poll(Duration::from_millis(100));
        let m = producer
            .client()
            .fetch_metadata(None, Duration::from_secs(5))
            .expect("metadata through OAUTHBEARER");
        assert!(!m.brokers().is_empty());
    }
    let stats = eh.entra_stats();
    println!("{stats:?}, tokens asked for: {}", context.tokens_issued());
    assert!(stats.reauthentications >= 1, "{stats:?}");
    assert_eq!(stats.sessions_expired, 0, "{stats:?}");
    assert_eq!(stats.oauthbearer_refused, 0, "{stats:?}");
    assert!(context.tokens_issued() >= 2, "{}", context.tokens_issued());
}
