//! [`RawClient`]: the Kafka wire protocol spoken directly to an emulated namespace, for what
//! librdkafka hides.

use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, RequestHeader, ResponseHeader, SaslAuthenticateRequest, SaslAuthenticateResponse,
    SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use super::EventHubsEmulator;

/// A Kafka wire-protocol client over TLS (kafka-protocol + tokio-rustls), for testing what
/// librdkafka hides: advertised versions, SASL rules, what happens before authentication.
pub struct RawClient {
    /// The TLS stream, for writing arbitrary bytes.
    pub tls: TlsStream<TcpStream>,
    correlation_id: i32,
}

impl RawClient {
    /// Connects with TLS, trusting the emulator's CA.
    pub async fn connect(eh: &EventHubsEmulator) -> RawClient {
        RawClient::try_connect(eh).await.expect("connect with TLS")
    }

    /// Like [`RawClient::connect`], with failures (refused, closed before or during the TLS
    /// handshake) returned instead of panicking.
    pub async fn try_connect(eh: &EventHubsEmulator) -> std::io::Result<RawClient> {
        let pem = std::fs::read(eh.ca_file()).expect("ca file");
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
            roots.add(cert.expect("pem")).expect("root");
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        let tcp = TcpStream::connect(eh.bootstrap()).await?;
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name");
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await?;
        Ok(RawClient {
            tls,
            correlation_id: 0,
        })
    }

    /// Connects with TLS and authenticates with the namespace's connection string.
    pub async fn connect_authenticated(eh: &EventHubsEmulator) -> RawClient {
        let mut c = RawClient::connect(eh).await;
        assert_eq!(c.handshake(1, "PLAIN").await.error_code, 0);
        let auth = SaslAuthenticateRequest::default().with_auth_bytes(eh.plain_token());
        let id = c.send(ApiKey::SaslAuthenticate, 2, &auth).await;
        let ok: SaslAuthenticateResponse = c.recv(ApiKey::SaslAuthenticate, 2, id).await;
        assert_eq!(ok.error_code, 0, "{:?}", ok.error_message);
        c
    }

    /// Connects with TLS and authenticates with SASL OAUTHBEARER and `token`; panics if refused.
    pub async fn connect_oauthbearer(eh: &EventHubsEmulator, token: &str) -> RawClient {
        let mut c = RawClient::connect(eh).await;
        let ok = c.oauthbearer(token).await;
        assert_eq!(ok.error_code, 0, "{:?}", ok.error_message);
        c
    }

    /// SaslHandshake v1 for OAUTHBEARER then SaslAuthenticate v2 with `token` (also a
    /// re-authentication on an authenticated connection); returns the SaslAuthenticate answer.
    pub async fn oauthbearer(&mut self, token: &str) -> SaslAuthenticateResponse {
        let handshake = self.handshake(1, "OAUTHBEARER").await;
        assert_eq!(handshake.error_code, 0, "{handshake:?}");
        let auth = SaslAuthenticateRequest::default().with_auth_bytes(bearer_message(token));
        let id = self.send(ApiKey::SaslAuthenticate, 2, &auth).await;
        self.recv(ApiKey::SaslAuthenticate, 2, id).await
    }

    /// Sends a request; returns its correlation id.
    pub async fn send<T: Encodable>(&mut self, key: ApiKey, version: i16, body: &T) -> i32 {
        self.correlation_id += 1;
        let header = RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("raw-test")));
        let mut buf = BytesMut::new();
        header
            .encode(&mut buf, key.request_header_version(version))
            .expect("header");
        // Unknown versions are encoded as the newest the crate knows; only the header matters.
        let body_version = version.min(key.valid_versions().max);
        body.encode(&mut buf, body_version).expect("body");
        self.send_frame(&buf).await;
        self.correlation_id
    }

    /// Sends `body` as one frame.
    pub async fn send_frame(&mut self, body: &[u8]) {
        let mut frame = BytesMut::new();
        frame.put_u32(body.len() as u32);
        frame.put_slice(body);
        self.tls.write_all(&frame).await.expect("write");
        self.tls.flush().await.expect("flush");
    }

    /// The next frame's body, or `None` once the emulator has closed the connection.
    pub async fn recv_frame(&mut self) -> Option<Bytes> {
        let mut len = [0u8; 4];
        self.tls.read_exact(&mut len).await.ok()?;
        let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
        self.tls.read_exact(&mut body).await.ok()?;
        Some(body.into())
    }

    /// Reads the response to request `id`.
    pub async fn recv<T: Decodable>(&mut self, key: ApiKey, version: i16, id: i32) -> T {
        let mut body = self
            .recv_frame()
            .await
            .expect("a response, not a closed connection");
        let header = ResponseHeader::decode(&mut body, key.response_header_version(version))
            .expect("response header");
        assert_eq!(header.correlation_id, id);
        T::decode(&mut body, version).expect("response body")
    }

    /// Asserts the emulator closes the connection (within 10 s).
    pub async fn assert_closed(&mut self) {
        let closed = tokio::time::timeout(Duration::from_secs(10), self.recv_frame())
            .await
            .expect("closed within 10 s");
        assert!(closed.is_none(), "connection still open, got {closed:?}");
    }

    /// SaslHandshake with `mechanism`.
    pub async fn handshake(
        &mut self,
        version: i16,
        mechanism: &'static str,
    ) -> SaslHandshakeResponse {
        let req =
            SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str(mechanism));
        let id = self.send(ApiKey::SaslHandshake, version, &req).await;
        self.recv(ApiKey::SaslHandshake, version, id).await
    }
}

/// The RFC 7628 client message librdkafka sends: `n,,\x01auth=Bearer <token>\x01\x01`.
pub fn bearer_message(token: &str) -> Bytes {
    format!("n,,\x01auth=Bearer {token}\x01\x01")
        .into_bytes()
        .into()
}
