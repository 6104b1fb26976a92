//! The clusters of a MirrorMaker 2 properties file: `A.bootstrap.servers`, `security.protocol`,
//! the truststore, and SASL from `sasl.jaas.config` — a password becomes `${<ALIAS>_SASL_PASSWORD}`,
//! an Event Hubs connection string (user `$ConnectionString`) `${<ALIAS>_CONNECTION_STRING}`.

use super::common::{self, env_var};
use super::mm2_input::Input;
use super::model::{Cluster, Sasl, SecretRef};
use super::ImportError;

/// The cluster `raw`: bootstrap, TLS, SASL or Event Hubs.
pub(crate) fn cluster(input: &mut Input, raw: &str) -> Result<Cluster, ImportError> {
    let alias = common::alias(raw);
    let bootstrap_key = format!("{raw}.bootstrap.servers");
    let Some(bootstrap) = input.get(&bootstrap_key) else {
        return Err(input.error(
            "clusters",
            format!("{bootstrap_key} is missing; set it to the cluster's host:port"),
        ));
    };
    let mut c = Cluster {
        alias: alias.clone(),
        bootstrap: Some(bootstrap.clone()),
        ..Cluster::default()
    };
    if alias != raw {
        c.notes.push(format!(
            "alias {raw} is written {alias} (hubmirror aliases are [a-z][a-z0-9_-]*): under the \
             default policy remote topics are named {alias}.<topic>, not {raw}.<topic>"
        ));
    }
    let protocol = input
        .scoped(raw, "security.protocol")
        .unwrap_or_else(|| "PLAINTEXT".into());
    let (tls, sasl) = match protocol.to_ascii_uppercase().as_str() {
        "PLAINTEXT" => (false, false),
        "SSL" => (true, false),
        "SASL_PLAINTEXT" => (false, true),
        "SASL_SSL" => (true, true),
        _ => {
            let key = format!("{raw}.security.protocol");
            let key = if input.props.contains_key(&key) {
                key
            } else {
                "security.protocol".into()
            };
            return Err(input.error(&key, format!("`{protocol}` is not a protocol; use PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL")));
        }
    };
    if tls {
        c.tls = Some(truststore(input, raw, &mut c.notes));
    }
    if let Some(alg) = input.scoped(raw, "ssl.endpoint.identification.algorithm") {
        if alg.is_empty() {
            c.client.push((
                "ssl.endpoint.identification.algorithm".into(),
                "none".into(),
            ));
        }
    }
    if sasl {
        sasl_settings(input, raw, &mut c)?;
    }
    Ok(c)
}

/// `ssl.truststore.*` → a CA file when it is PEM, else a note on converting it.
fn truststore(input: &mut Input, raw: &str, notes: &mut Vec<String>) -> Option<String> {
    let location = input.scoped(raw, "ssl.truststore.location")?;
    let kind = input
        .scoped(raw, "ssl.truststore.type")
        .unwrap_or_else(|| "JKS".into());
    input.scoped(raw, "ssl.truststore.password");
    if kind.eq_ignore_ascii_case("PEM") {
        return Some(location);
    }
    notes.push(format!(
        "not carried over: {raw}.ssl.truststore.location={location} ({kind}): hubmirror reads PEM; \
         export it (keytool -exportcert -rfc -keystore {location} -alias <alias> > ca.pem) and set tls.ca_file"
    ));
    None
}

/// `sasl.mechanism` and `sasl.jaas.config` → `sasl:` with `${<ALIAS>_SASL_PASSWORD}`, or
/// `event_hubs:` with `${<ALIAS>_CONNECTION_STRING}` for the user `$ConnectionString`.
fn sasl_settings(input: &mut Input, raw: &str, c: &mut Cluster) -> Result<(), ImportError> {
    let jaas_key = format!("{raw}.sasl.jaas.config");
    let jaas_at = if input.props.contains_key(&jaas_key) {
        jaas_key
    } else {
        "sasl.jaas.config".into()
    };
    let Some(jaas) = input.scoped(raw, "sasl.jaas.config") else {
        return Err(input.error(
            &jaas_at,
            format!("missing for SASL on cluster {raw}; set {raw}.sasl.jaas.config"),
        ));
    };
    let username = jaas_option(&jaas, "username");
    let default_mechanism = if jaas.contains("PlainLoginModule") {
        "PLAIN"
    } else {
        "GSSAPI"
    };
    let mechanism = input
        .scoped(raw, "sasl.mechanism")
        .unwrap_or_else(|| default_mechanism.into())
        .to_ascii_uppercase();
    if !["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"].contains(&mechanism.as_str()) {
        c.notes.push(format!(
            "not carried over: {raw}.sasl.mechanism={mechanism}: hubmirror signs in to Kafka with PLAIN or \
             SCRAM (Event Hubs: a connection string or Entra ID); fill in `sasl:` yourself"
        ));
        return Ok(());
    }
    let Some(username) = username else {
        return Err(input.error(
            &jaas_at,
            "has no username=\"...\"; give the login module a username and password",
        ));
    };
    if jaas_option(&jaas, "password").is_some_and(|p| p.starts_with("${")) {
        c.notes.push(format!("check: {jaas_at} reads its password through a config provider; set the variable below instead"));
    }
    if mechanism == "PLAIN" && username == "$ConnectionString" {
        let var = env_var(&c.alias, "CONNECTION_STRING");
        c.notes.push(format!("Azure Event Hubs: the user $ConnectionString makes the password the namespace's connection string; set {var} to it"));
        if c.bootstrap
            .as_deref()
            .is_some_and(common::is_event_hubs_endpoint)
        {
            c.bootstrap = None;
        }
        c.tls = c.tls.take().filter(|ca| ca.is_some());
        c.event_hubs = Some(SecretRef::Env(var));
    } else {
        let var = env_var(&c.alias, "SASL_PASSWORD");
        c.notes.push(format!(
            "set {var} to the password of {raw}.sasl.jaas.config"
        ));
        c.sasl = Some(Sasl {
            mechanism,
            username,
            password: SecretRef::Env(var),
        });
    }
    Ok(())
}

/// `name="value"` (or unquoted) from a JAAS configuration line.
fn jaas_option(jaas: &str, name: &str) -> Option<String> {
    let mut rest = jaas;
    while let Some(i) = rest.find(name) {
        let before_ok = i == 0 || rest[..i].ends_with(char::is_whitespace);
        let after = rest[i + name.len()..].trim_start();
        rest = &rest[i + name.len()..];
        let Some(value) = after
            .strip_prefix('=')
            .map(str::trim_start)
            .filter(|_| before_ok)
        else {
            continue;
        };
        return Some(match value.strip_prefix('"') {
            Some(q) => q.split('"').next().unwrap_or("").to_string(),
            None => value.split([' ', ';']).next().unwrap_or("").to_string(),
        });
    }
    None
}
