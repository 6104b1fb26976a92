//! `hubmirror-emulator`: the Azure Event Hubs Kafka endpoint (TLS, SASL PLAIN with a connection
//! string, 1 MB request limit; optionally Microsoft Entra ID with SASL OAUTHBEARER) in front of
//! a Kafka-API broker, for demos and manual tests.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use hubmirror_emulator::{Emulator, EmulatorConfig, EntraApp, EntraConfig, DEFAULT_TENANT};
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
    #[command(flatten)]
    entra: EntraOpt,
}

/// Microsoft Entra ID (enabled by `--entra-namespace`).
#[derive(Debug, clap::Args)]
struct EntraOpt {
    /// Play Entra ID for this namespace host (tokens must have the audience
    /// `https://<namespace>`), e.g. `emulated.servicebus.windows.net`.
    #[arg(long, value_name = "HOST")]
    entra_namespace: Option<String>,
    /// The tenant id.
    #[arg(long, default_value = DEFAULT_TENANT)]
    entra_tenant: String,
    /// An application: `CLIENT_ID[:SECRET]` (repeatable; comma-separated in the environment
    /// variable, which keeps secrets off the command line).
    #[arg(
        long = "entra-app",
        value_name = "CLIENT_ID[:SECRET]",
        env = "EMULATOR_ENTRA_APPS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    entra_apps: Vec<String>,
    /// A federated credential (workload identity): `CLIENT_ID=SUBJECT`, e.g.
    /// `1111...=system:serviceaccount:hubmirror:hubmirror` (repeatable).
    #[arg(long = "entra-federated", value_name = "CLIENT_ID=SUBJECT")]
    entra_federated: Vec<String>,
    /// A managed identity's client id (repeatable; the first is the system-assigned one).
    #[arg(long = "entra-managed-identity", value_name = "CLIENT_ID")]
    entra_managed_identities: Vec<String>,
    /// How long issued access tokens are valid.
    #[arg(long, default_value = "3600s", value_parser = humantime::parse_duration)]
    entra_token_lifetime: std::time::Duration,
    /// Where the token endpoints listen (plain HTTP).
    #[arg(long, default_value = "127.0.0.1:0")]
    entra_listen: SocketAddr,
    /// The App Service `X-IDENTITY-HEADER` value (random when not given; never printed).
    #[arg(long, env = "EMULATOR_IDENTITY_HEADER", hide_env_values = true)]
    entra_identity_header: Option<String>,
    /// Refuse SASL PLAIN (shared access keys), like a namespace with `disableLocalAuth`.
    #[arg(long, requires = "entra_namespace")]
    no_local_auth: bool,
}

impl EntraOpt {
    /// The Entra configuration, if enabled.
    fn config(self) -> anyhow::Result<Option<EntraConfig>> {
        let Some(namespace) = self.entra_namespace else {
            return Ok(None);
        };
        let mut apps: Vec<EntraApp> = self
            .entra_apps
            .iter()
            .map(|a| {
                let (client_id, secret) = match a.split_once(':') {
                    Some((id, secret)) => (id, Some(secret.to_string())),
                    None => (a.as_str(), None),
                };
                EntraApp {
                    client_id: client_id.to_string(),
                    client_secret: secret,
                    federated_subject: None,
                }
            })
            .collect();
        for f in &self.entra_federated {
            let (client_id, subject) = f
                .split_once('=')
                .with_context(|| format!("--entra-federated {f}: not CLIENT_ID=SUBJECT"))?;
            match apps.iter_mut().find(|a| a.client_id == client_id) {
                Some(app) => app.federated_subject = Some(subject.to_string()),
                None => apps.push(EntraApp {
                    client_id: client_id.to_string(),
                    client_secret: None,
                    federated_subject: Some(subject.to_string()),
                }),
            }
        }
        Ok(Some(EntraConfig {
            namespace,
            tenant_id: self.entra_tenant,
            apps,
            managed_identities: self.entra_managed_identities,
            token_lifetime: self.entra_token_lifetime,
            local_auth: !self.no_local_auth,
            listen: self.entra_listen,
            signing_key: None,
            identity_header: self.entra_identity_header,
        }))
    }
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
        entra: opt.entra.config()?,
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
    if let (Some(authority), Some(config)) = (emulator.authority_host(), emulator.entra_config()) {
        println!(
            "entra id: authority {authority}, tenant {}, namespace {} (audience https://{}), \
             token endpoint {authority}/{}/oauth2/v2.0/token, IMDS \
             {authority}/metadata/identity/oauth2/token, App Service {authority}/msi/token, \
             local auth {}",
            config.tenant_id,
            config.namespace,
            config.namespace,
            config.tenant_id,
            if config.local_auth {
                "enabled"
            } else {
                "disabled"
            }
        );
    }
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
