//! An Event Hubs namespace for tests: the emulator (TLS, SASL PLAIN with a connection string,
//! 1 MB request limit) in front of its own tansu broker. Works from plain `#[test]`s and from
//! `#[tokio::test]`s: the emulator runs on a dedicated runtime in a background thread, stopped
//! (and the broker killed) on drop. Fault tests can cut the network, emulate retention, and stop
//! and restart the emulator alone (same address, same CA) while its broker keeps running.
//! [`RawClient`] speaks the Kafka protocol to it directly.

mod entra;
mod raw;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
pub use hubmirror_emulator::{Compression, EmulatorStats};
use hubmirror_emulator::{Emulator, EmulatorConfig, EmulatorError, EntraConfig};
use rdkafka::ClientConfig;
use tokio_util::sync::CancellationToken;

pub use entra::{
    EntraOptions, EntraTokenContext, TEST_CLIENT_ID, TEST_CLIENT_SECRET, TEST_FEDERATED_SUBJECT,
    TEST_MANAGED_IDENTITY,
};
pub use hubmirror_emulator::{EntraApp, EntraStats};
pub use raw::{bearer_message, RawClient};

use crate::tansu::{free_port, Tansu};

/// The shared access key name every test namespace uses.
pub const KEY_NAME: &str = "RootManageSharedAccessKey";
/// The shared access key every test namespace accepts (base64, like a real one).
pub const KEY: &str = "dGVzdC1vbmx5LWtleS1ub3QtYS1yZWFsLXNlY3JldCE=";

/// A running emulated namespace.
pub struct EventHubsEmulator {
    /// The broker behind the emulator (reach it directly with [`EventHubsEmulator::listener`]).
    pub tansu: Tansu,
    /// The emulator itself (after [`EventHubsEmulator::stop_emulator`], the stopped one until
    /// [`EventHubsEmulator::start_emulator_again`] replaces it).
    pub emulator: Emulator,
    /// Stops the emulator.
    shutdown: CancellationToken,
    /// The thread that owns the emulator's runtime; returns once the emulator has stopped.
    /// `None` while the emulator is stopped.
    thread: Option<JoinHandle<()>>,
    /// How the emulator was started, its listen address made concrete: a restart reuses it.
    config: EmulatorConfig,
    /// Every `expire_before` so far, applied again to a restarted emulator.
    expired: Mutex<Vec<(String, i32, i64)>>,
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
        Self::start_config(refuse_create_topics, None)
    }

    /// A namespace, playing Entra ID when `entra` is given.
    fn start_config(refuse_create_topics: bool, entra: Option<EntraConfig>) -> EventHubsEmulator {
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
            entra,
        };
        let (emulator, shutdown, thread) = spawn(config.clone()).expect("emulator start");
        // A restart reuses the ports, the signing key and the identity header.
        let config = EmulatorConfig {
            listen: emulator.local_addr(),
            entra: emulator.entra_config(),
            ..config
        };
        let tansu = Tansu::start_on(tansu_port, &emulator.local_addr().to_string());
        EventHubsEmulator {
            tansu,
            emulator,
            shutdown,
            thread: Some(thread),
            config,
            expired: Mutex::new(Vec::new()),
            _cert_dir: cert_dir,
        }
    }

    /// Stops the emulator alone, like an Event Hubs front end going away: open connections are
    /// closed and the port stops accepting; the broker keeps running with its data. Does
    /// nothing when already stopped.
    pub fn stop_emulator(&mut self) {
        self.shutdown.cancel();
        if let Some(thread) = self.thread.take() {
            thread.join().expect("emulator thread panicked");
        }
    }

    /// Starts a new emulator on the same address and port, with the same CA (`ca_file()`) and
    /// credentials, in front of the same broker, so that running clients reconnect by
    /// themselves. Log starts set with [`EventHubsEmulator::expire_before`] are applied again;
    /// throttle windows and [`EventHubsEmulator::stats`] start afresh. With Entra ID, the token
    /// endpoints come back on the same port with the same signing key and identity header
    /// (tokens issued before stay valid); [`EventHubsEmulator::entra_stats`] start afresh and
    /// the endpoints are available again. Stops the running
    /// emulator first if there is one. Retries binding for up to 10 s (the port may linger).
    pub fn start_emulator_again(&mut self) {
        self.stop_emulator();
        let deadline = Instant::now() + Duration::from_secs(10);
        let (emulator, shutdown, thread) = loop {
            match spawn(self.config.clone()) {
                Ok(started) => break started,
                Err(EmulatorError::Bind { addr, source }) if Instant::now() < deadline => {
                    println!("emulator restart: cannot bind {addr} yet ({source}), retrying");
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => panic!("emulator restart on {}: {e}", self.config.listen),
            }
        };
        assert_eq!(emulator.local_addr(), self.config.listen);
        for (topic, partition, log_start) in self.expired.lock().expect("expired").iter() {
            emulator.expire_before(topic, *partition, *log_start);
        }
        self.emulator = emulator;
        self.shutdown = shutdown;
        self.thread = Some(thread);
    }

    /// Whether the emulator is running (not stopped with [`EventHubsEmulator::stop_emulator`]).
    pub fn emulator_running(&self) -> bool {
        self.thread.is_some()
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

    /// Cuts the network for `duration`: every open connection closed now, new ones refused
    /// until the window ends (see [`Emulator::cut_connections_for`]).
    pub fn cut_connections_for(&self, duration: Duration) {
        self.emulator.cut_connections_for(duration);
    }

    /// Emulates retention: `topic`/`partition` behaves like a log starting at `log_start` (see
    /// [`Emulator::expire_before`]); kept across [`EventHubsEmulator::start_emulator_again`].
    pub fn expire_before(&self, topic: &str, partition: i32, log_start: i64) {
        self.emulator.expire_before(topic, partition, log_start);
        self.expired
            .lock()
            .expect("expired")
            .push((topic.to_string(), partition, log_start));
    }

    /// What the emulator counted so far (see [`Emulator::stats`]; since its last start).
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

impl EventHubsEmulator {
    /// Creates `topic` on the broker behind the emulator, bypassing its CreateTopics refusal.
    ///
    /// An rdkafka admin client bootstrapped at the broker's own listener does not work: it learns the
    /// controller's address from metadata, which is the emulator's (the broker advertises it), and
    /// times out talking plaintext to a TLS listener. So one CreateTopics v4 request is written by
    /// hand (kafka-protocol) to the broker's listener, which answers it itself.
    pub fn create_topic_behind(&self, topic: &str, partitions: i32) {
        use std::io::{Read, Write};

        use bytes::BytesMut;
        use kafka_protocol::messages::create_topics_request::CreatableTopic;
        use kafka_protocol::messages::{
            ApiKey, CreateTopicsRequest, CreateTopicsResponse, RequestHeader, ResponseHeader,
            TopicName,
        };
        use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

        const V: i16 = 4;
        let key = ApiKey::CreateTopics;
        let mut buf = BytesMut::new();
        RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(V)
            .with_correlation_id(1)
            .with_client_id(Some(StrBytes::from_static_str("hubmirror-test-support")))
            .encode(&mut buf, key.request_header_version(V))
            .expect("header");
        let new_topic = CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_num_partitions(partitions)
            .with_replication_factor(1);
        CreateTopicsRequest::default()
            .with_topics(vec![new_topic])
            .with_timeout_ms(10_000)
            .encode(&mut buf, V)
            .expect("body");
        let mut conn =
            std::net::TcpStream::connect(self.listener()).expect("connect to the broker");
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        conn.write_all(&(buf.len() as u32).to_be_bytes())
            .and_then(|()| conn.write_all(&buf))
            .expect("send CreateTopics");
        let mut len = [0u8; 4];
        conn.read_exact(&mut len).expect("response length");
        let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
        conn.read_exact(&mut body).expect("response");
        let mut body = Bytes::from(body);
        let header =
            ResponseHeader::decode(&mut body, key.response_header_version(V)).expect("header");
        assert_eq!(header.correlation_id, 1);
        let response = CreateTopicsResponse::decode(&mut body, V).expect("CreateTopics response");
        let codes: Vec<i16> = response.topics.iter().map(|t| t.error_code).collect();
        assert_eq!(
            codes,
            [0],
            "creating {topic} behind the emulator: {response:?}"
        );
        assert!(
            crate::kafka::topic_names(&self.client_config())
                .iter()
                .any(|t| t == topic),
            "{topic} visible through the emulator"
        );
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

/// Starts an emulator with `config` on a dedicated runtime in a new thread; the thread returns
/// once the token is cancelled and the runtime is shut down (its connections closed).
fn spawn(
    config: EmulatorConfig,
) -> Result<(Emulator, CancellationToken, JoinHandle<()>), EmulatorError> {
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
            runtime.shutdown_timeout(Duration::from_secs(5));
        })
        .expect("emulator thread");
    match started_rx.recv().expect("emulator thread died") {
        Ok(emulator) => Ok((emulator, shutdown, thread)),
        Err(e) => {
            let _ = thread.join();
            Err(e)
        }
    }
}
