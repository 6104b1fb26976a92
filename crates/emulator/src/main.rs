//! `hubmirror-emulator`: the Azure Event Hubs Kafka endpoint (TLS, SASL PLAIN with a connection
//! string, 1 MB request limit) in front of a Kafka-API broker, for demos and manual tests.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use hubmirror_emulator::{Emulator, EmulatorConfig};
use tokio_util::sync::CancellationToken;

/// Emulates the Azure Event Hubs Kafka endpoint in front of a Kafka-API broker (e.g. tansu,
/// started with `--advertised-listener-url` pointing at this emulator).
#[derive(Debug, Parser)]
#[command(version)]
struct Opt {
    /// Address to listen on (TLS).
    #[arg(long, default_value = "127.0.0.1:9093")]
    listen: SocketAddr,
    /// `host:port` of the upstream broker (plain TCP).
    #[arg(long, default_value = "127.0.0.1:19092")]
    upstream: String,
    /// Directory for ca.pem (trust it with `ssl.ca.location`) and the server certificate;
    /// an existing CA there is reused.
    #[arg(long, default_value = "./certs")]
    cert_dir: PathBuf,
    /// The SharedAccessKeyName clients must present.
    #[arg(long, default_value = "RootManageSharedAccessKey")]
    key_name: String,
    /// The SharedAccessKey clients must present.
    #[arg(long, env = "EMULATOR_SHARED_ACCESS_KEY", hide_env_values = true)]
    key: String,
    /// More host names for the server certificate (besides localhost and 127.0.0.1).
    #[arg(long = "extra-host", value_name = "HOST")]
    extra_hosts: Vec<String>,
    /// Refuse CreateTopics requests (POLICY_VIOLATION), like a namespace without admin-API
    /// topic creation.
    #[arg(long)]
    refuse_create_topics: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let opt = Opt::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let config = EmulatorConfig {
        listen: opt.listen,
        upstream: opt.upstream,
        key_name: opt.key_name,
        key: opt.key,
        cert_dir: opt.cert_dir,
        extra_hosts: opt.extra_hosts,
        refuse_create_topics: opt.refuse_create_topics,
    };
    let shutdown = CancellationToken::new();
    let emulator = Emulator::start(config, shutdown.clone())
        .await
        .context("starting the emulator")?;
    println!(
        "emulator listening on {}, CA at {}",
        emulator.local_addr(),
        emulator.ca_file().display()
    );
    wait_for_signal().await?;
    shutdown.cancel();
    emulator.stopped().await;
    Ok(())
}

/// Returns on SIGINT or SIGTERM.
async fn wait_for_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result.context("waiting for SIGINT")?,
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    Ok(())
}
