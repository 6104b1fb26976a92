//! An Event Hubs namespace for tests: the emulator (TLS, SASL PLAIN with a connection string,
//! 1 MB request limit) in front of its own tansu broker. Works from plain `#[test]`s and from
//! `#[tokio::test]`s: the emulator runs on a dedicated runtime in a background thread, stopped
//! (and the broker killed) on drop.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use hubmirror::emulator::{Emulator, EmulatorConfig, EmulatorStats};
use kafka_protocol::messages::{
    ApiKey, RequestHeader, ResponseHeader, SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use rdkafka::ClientConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_util::sync::CancellationToken;

use super::tansu::{free_port, Tansu};

/// The shared access key name every test namespace uses.
pub const KEY_NAME: &str = "RootManageSharedAccessKey";
/// The shared access key every test namespace accepts (base64, like a real one).
pub const KEY: &str = "dGVzdC1vbmx5LWtleS1ub3QtYS1yZWFsLXNlY3JldCE=";

/// A running emulated namespace.
pub struct EventHubsEmulator {
    /// The broker behind the emulator (reach it directly with [`EventHubsEmulator::listener`]).
    pub tansu: Tansu,
    /// The emulator itself.
    pub emulator: Emulator,
    /// Stops the emulator.
    shutdown: CancellationToken,
    /// The thread that owns the emulator's runtime; returns once the emulator has stopped.
    thread: Option<JoinHandle<()>>,
    /// Holds `ca.pem` and the server certificate; removed on drop.
    _cert_dir: tempfile::TempDir,
}

impl EventHubsEmulator {
    /// A namespace that lets clients create topics.
    pub fn start() -> EventHubsEmulator {
        Self::start_with(false)
    }

    /// A namespace; with `refuse_create_topics`, CreateTopics gets POLICY_VIOLATION.
    pub fn start_with(refuse_create_topics: bool) -> EventHubsEmulator {
        let cert_dir = tempfile::tempdir().expect("cert tempdir");
        let tansu_port = free_port();
        let config = EmulatorConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            upstream: format!("127.0.0.1:{tansu_port}"),
            key_name: KEY_NAME.to_string(),
            key: KEY.to_string(),
            cert_dir: cert_dir.path().to_path_buf(),
            extra_hosts: Vec::new(),
            refuse_create_topics,
        };
        let shutdown = CancellationToken::new();
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let token = shutdown.clone();
        let thread = std::thread::Builder::new()
            .name("eh-emulator".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("eh-emulator-rt")
                    .enable_all()
                    .build()
                    .expect("emulator runtime");
                runtime.block_on(async move {
                    let emulator = Emulator::start(config, token.clone()).await;
                    let ok = emulator.is_ok();
                    let _ = started_tx.send(emulator);
                    if ok {
                        token.cancelled().await;
                    }
                });
                // Connection tasks end with the runtime, as on a real namespace going away.
                runtime.shutdown_timeout(std::time::Duration::from_secs(5));
            })
            .expect("emulator thread");
        let emulator = started_rx
            .recv()
            .expect("emulator thread died")
            .expect("emulator start");
        let tansu = Tansu::start_on(tansu_port, &emulator.local_addr().to_string());
        EventHubsEmulator {
            tansu,
            emulator,
            shutdown,
            thread: Some(thread),
            _cert_dir: cert_dir,
        }
    }

    /// `127.0.0.1:<port>` of the emulator: the Kafka bootstrap of this namespace.
    pub fn bootstrap(&self) -> String {
        self.emulator.local_addr().to_string()
    }

    /// The CA certificate clients must trust.
    pub fn ca_file(&self) -> PathBuf {
        self.emulator.ca_file()
    }

    /// A connection string the emulator accepts.
    pub fn connection_string(&self) -> String {
        self.emulator.connection_string()
    }

    /// A client config that talks to the namespace like an Event Hubs client: SASL_SSL, PLAIN,
    /// `$ConnectionString`, certificate verified against [`EventHubsEmulator::ca_file`].
    pub fn client_config(&self) -> ClientConfig {
        self.client_config_with("$ConnectionString", &self.connection_string())
    }

    /// Like [`EventHubsEmulator::client_config`] with other credentials.
    pub fn client_config_with(&self, username: &str, password: &str) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", self.bootstrap())
            .set("security.protocol", "SASL_SSL")
            .set("sasl.mechanism", "PLAIN")
            .set("sasl.username", username)
            .set("sasl.password", password)
            .set("ssl.ca.location", self.ca_file().display().to_string());
        c
    }

    /// `127.0.0.1:<port>` of the broker itself, bypassing the emulator (no TLS, no auth).
    /// Only the bootstrap connection stays there: the broker advertises the emulator, so
    /// librdkafka clients are sent on to the emulator after their first metadata request.
    pub fn listener(&self) -> String {
        self.tansu.listener()
    }

    /// Throttles produce requests like Event Hubs for `duration` from now (see
    /// [`Emulator::throttle_for`]); `Duration::ZERO` ends the window.
    pub fn throttle_for(&self, duration: Duration) {
        self.emulator.throttle_for(duration);
    }

    /// What the emulator counted so far (see [`Emulator::stats`]).
    pub fn stats(&self) -> EmulatorStats {
        self.emulator.stats()
    }

    /// A SASL PLAIN token (`\0$ConnectionString\0<connection string>`) the emulator accepts.
    pub fn plain_token(&self) -> Bytes {
        format!("\0$ConnectionString\0{}", self.connection_string())
            .into_bytes()
            .into()
    }
}

impl Drop for EventHubsEmulator {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

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
        let tcp = TcpStream::connect(eh.bootstrap()).await.expect("connect");
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name");
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .expect("TLS handshake");
        RawClient {
            tls,
            correlation_id: 0,
        }
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
        let closed = tokio::time::timeout(std::time::Duration::from_secs(10), self.recv_frame())
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
