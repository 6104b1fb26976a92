//! Unit tests of the crate root: configuration and start-up.

use super::*;

#[test]
fn debug_never_shows_the_key() {
    let config = EmulatorConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        upstream: "127.0.0.1:1".to_string(),
        key_name: "RootManageSharedAccessKey".to_string(),
        key: "c2VjcmV0LWtleQ==".to_string(),
        cert_dir: PathBuf::from("certs"),
        extra_hosts: Vec::new(),
        refuse_create_topics: false,
        entra: None,
    };
    let text = format!("{config:?}");
    assert!(text.contains("RootManageSharedAccessKey") && !text.contains("c2VjcmV0LWtleQ=="));
}

#[tokio::test]
async fn starts_reports_its_address_and_stops() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = EmulatorConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        upstream: "127.0.0.1:1".to_string(),
        key_name: "k".to_string(),
        key: "s3cr3t".to_string(),
        cert_dir: dir.path().to_path_buf(),
        extra_hosts: vec!["emulator.test".to_string()],
        refuse_create_topics: false,
        entra: None,
    };
    let shutdown = CancellationToken::new();
    let emulator = Emulator::start(config, shutdown.clone())
        .await
        .expect("start");
    assert_ne!(emulator.local_addr().port(), 0);
    assert_eq!(emulator.ca_file(), dir.path().join("ca.pem"));
    assert_eq!(
        emulator.connection_string(),
        format!(
            "Endpoint=sb://localhost:{}/;SharedAccessKeyName=k;SharedAccessKey=s3cr3t",
            emulator.local_addr().port()
        )
    );
    assert!(!format!("{emulator:?}").contains("s3cr3t"));
    let _client = tokio::net::TcpStream::connect(emulator.local_addr())
        .await
        .expect("connect");
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), emulator.stopped())
        .await
        .expect("stops with a connection open");
}
