//! One `clusters.<alias>` entry → [`Cluster`]: plain Kafka (bootstrap, TLS, SASL) or an Event
//! Hubs namespace (everything derived from its connection string).

use std::collections::BTreeMap;

use super::bootstrap;
use super::ctx::Ctx;
use super::error::TopologyError;
use super::event_hubs::{self, parse_connection_string};
use super::locate::child;
use super::model::{Cluster, Compression, Sasl, SaslMechanism, Tls};
use super::raw::{RawCluster, RawEventHubs, RawSasl, RawTls};
use super::Secret;
use crate::topology::{EventHubs, EventHubsAuth};

/// Whether `alias` matches `[a-z][a-z0-9_-]*`.
pub(crate) fn valid_alias(alias: &str) -> bool {
    let mut chars = alias.chars();
    matches!(chars.next(), Some('a'..='z'))
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_' | '-'))
}

/// Resolves `clusters.<alias>`.
pub(crate) fn cluster(
    alias: &str,
    raw: RawCluster,
    ctx: &Ctx<'_>,
) -> Result<Cluster, TopologyError> {
    let p = child("clusters", alias);
    if !valid_alias(alias) {
        return Err(ctx.invalid_key(
            &p,
            format!(
                "cluster alias `{alias}` is not valid: it must match [a-z][a-z0-9_-]* (a lower-case \
                 letter, then lower-case letters, digits, `_` or `-`)"
            ),
        ));
    }
    let tls = raw.tls.map(|t| tls(&p, t, ctx)).transpose()?;
    let client = client(&p, raw.client, ctx)?;
    let heartbeats = switch(&p, "heartbeats", raw.heartbeats.as_deref(), ctx)?;
    let checkpoints = switch(&p, "checkpoints", raw.checkpoints.as_deref(), ctx)?;
    let compression = compression(
        &p,
        raw.compression.as_deref(),
        raw.event_hubs.is_some(),
        ctx,
    )?;
    let bootstrap_given = match raw.bootstrap_servers {
        Some(b) if b.trim().is_empty() => {
            return Err(ctx.invalid_at(
                &child(&p, "bootstrap_servers"),
                format!("{p}.bootstrap_servers is empty; write `host:port[,host:port...]`"),
            ))
        }
        other => other.map(|b| b.trim().to_string()),
    };
    if let Some(b) = &bootstrap_given {
        if let Err(problem) = bootstrap::check(b) {
            return Err(ctx.invalid_at(
                &child(&p, "bootstrap_servers"),
                format!("{p}.bootstrap_servers {problem}"),
            ));
        }
    }

    if let Some(eh) = raw.event_hubs {
        if raw.sasl.is_some() {
            return Err(ctx.invalid_key(
                &child(&p, "sasl"),
                format!(
                    "`sasl` cannot be combined with `event_hubs` in {p}: an Event Hubs namespace \
                     authenticates with its connection string (SASL PLAIN as $ConnectionString) \
                     or with Entra ID (`event_hubs.entra`); remove `sasl`"
                ),
            ));
        }
        let eh = event_hubs_of(&child(&p, "event_hubs"), eh, ctx)?;
        // The connection string is the SASL PLAIN password; Entra ID tokens are not `sasl`.
        let sasl = eh.shared_access_key().map(|k| Sasl {
            mechanism: SaslMechanism::Plain,
            username: event_hubs::SASL_USERNAME.to_string(),
            password: k.connection_string.clone(),
        });
        return Ok(Cluster {
            alias: alias.to_string(),
            bootstrap_servers: bootstrap_given.unwrap_or_else(|| event_hubs::bootstrap(&eh)),
            // Event Hubs is TLS only; `tls:` may still name a CA (emulator, private CA).
            tls: Some(tls.unwrap_or_default()),
            sasl,
            event_hubs: Some(eh),
            client,
            heartbeats,
            checkpoints,
            compression,
        });
    }

    let bootstrap_servers = bootstrap_given.ok_or_else(|| TopologyError::MissingKey {
        at: ctx.loc(ctx.index.key(&p)),
        key: "bootstrap_servers".to_string(),
        parent: p.clone(),
        hint: "; write `bootstrap_servers: host:port`, or give `event_hubs:` for an Event Hubs \
               namespace"
            .to_string(),
    })?;
    let sasl = raw
        .sasl
        .map(|s| sasl(&child(&p, "sasl"), s, ctx))
        .transpose()?;
    Ok(Cluster {
        alias: alias.to_string(),
        bootstrap_servers,
        tls,
        sasl,
        event_hubs: None,
        client,
        heartbeats,
        checkpoints,
        compression,
    })
}

/// `compression`: `none` (default) or `gzip`; Kafka clusters also take `snappy`, `lz4`, `zstd`.
fn compression(
    p: &str,
    v: Option<&str>,
    event_hubs: bool,
    ctx: &Ctx<'_>,
) -> Result<Compression, TopologyError> {
    let path = child(p, "compression");
    let c = match v.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
        None | Some("none") => Compression::None,
        Some("gzip") => Compression::Gzip,
        Some("snappy") => Compression::Snappy,
        Some("lz4") => Compression::Lz4,
        Some("zstd") => Compression::Zstd,
        Some(other) => {
            return Err(ctx.invalid_at(
                &path,
                format!(
                    "{path} `{other}` is not known; use `none`, `gzip`, `snappy`, `lz4` or `zstd`"
                ),
            ))
        }
    };
    if event_hubs && !matches!(c, Compression::None | Compression::Gzip) {
        return Err(ctx.invalid_at(
            &path,
            format!(
                "{path} `{}`: Event Hubs accepts only `none` or `gzip` (gzip on Premium and \
                 Dedicated tiers)",
                c.as_str()
            ),
        ));
    }
    Ok(c)
}

/// A per-cluster on/off key (`heartbeats`, `checkpoints`): `true` (the default) or `false`.
fn switch(p: &str, key: &str, v: Option<&str>, ctx: &Ctx<'_>) -> Result<bool, TopologyError> {
    match v.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
        None | Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(_) => {
            let path = child(p, key);
            Err(ctx.invalid_at(&path, format!("{path} must be `true` or `false`")))
        }
    }
}

fn tls(p: &str, raw: RawTls, ctx: &Ctx<'_>) -> Result<Tls, TopologyError> {
    let path = format!("{p}.tls.ca_file");
    Ok(Tls {
        ca_file: raw
            .ca_file
            .map(|f| ctx.existing_file(&path, &f))
            .transpose()?,
    })
}

fn client(
    p: &str,
    raw: BTreeMap<String, Option<String>>,
    ctx: &Ctx<'_>,
) -> Result<BTreeMap<String, String>, TopologyError> {
    raw.into_iter()
        .map(|(k, v)| match v {
            Some(v) => Ok((k, v)),
            None => {
                let path = format!("{p}.client.{k}");
                Err(ctx.invalid_key(
                    &path,
                    format!("{path} has no value; give one (quote it if it is empty: \"\") or remove the line"),
                ))
            }
        })
        .collect()
}

/// Exactly one of two keys: the chosen (key path, value).
fn one_of(
    p: &str,
    a: (&str, Option<String>),
    b: (&str, Option<String>),
    ctx: &Ctx<'_>,
) -> Result<(String, String, bool), TopologyError> {
    match (a.1, b.1) {
        (Some(v), None) => Ok((child(p, a.0), v, false)),
        (None, Some(v)) => Ok((child(p, b.0), v, true)),
        (Some(_), Some(_)) => Err(ctx.invalid_key(
            &child(p, b.0),
            format!("{p}: give either `{}` or `{}`, not both", a.0, b.0),
        )),
        (None, None) => Err(ctx.invalid_key(
            p,
            format!("{p}: missing `{}` (or `{}`); give exactly one", a.0, b.0),
        )),
    }
}

fn sasl(p: &str, raw: RawSasl, ctx: &Ctx<'_>) -> Result<Sasl, TopologyError> {
    let mechanism = match raw
        .mechanism
        .as_deref()
        .map(str::to_ascii_uppercase)
        .as_deref()
    {
        None | Some("PLAIN") => SaslMechanism::Plain,
        Some("SCRAM-SHA-256") => SaslMechanism::ScramSha256,
        Some("SCRAM-SHA-512") => SaslMechanism::ScramSha512,
        Some(other) => {
            return Err(ctx.invalid_at(
                &child(p, "mechanism"),
                format!(
                    "{p}.mechanism `{other}` is not supported; use PLAIN, SCRAM-SHA-256 or \
                     SCRAM-SHA-512"
                ),
            ))
        }
    };
    let username = raw.username.ok_or_else(|| TopologyError::MissingKey {
        at: ctx.loc(ctx.index.key(p)),
        key: "username".to_string(),
        parent: p.to_string(),
        hint: String::new(),
    })?;
    let (path, value, from_file) = one_of(
        p,
        ("password", raw.password),
        ("password_file", raw.password_file),
        ctx,
    )?;
    let password = if from_file {
        ctx.read_secret(&path, &value)?
    } else if value.is_empty() {
        return Err(ctx.invalid_at(&path, format!("{path} is empty")));
    } else {
        Secret::new(value)
    };
    Ok(Sasl {
        mechanism,
        username,
        password,
    })
}

fn event_hubs_of(p: &str, raw: RawEventHubs, ctx: &Ctx<'_>) -> Result<EventHubs, TopologyError> {
    if let Some(entra) = raw.entra {
        if raw.connection_string.is_some() || raw.connection_string_file.is_some() {
            let key = if raw.connection_string.is_some() {
                "connection_string"
            } else {
                "connection_string_file"
            };
            return Err(ctx.invalid_key(
                &child(p, key),
                format!(
                    "{p}: give either a connection string or `entra`, not both (a namespace \
                     with local authentication disabled takes only Entra ID)"
                ),
            ));
        }
        let namespace = raw.namespace.ok_or_else(|| TopologyError::MissingKey {
            at: ctx.loc(ctx.index.key(p)),
            key: "namespace".to_string(),
            parent: p.to_string(),
            hint: "; with `entra`, name the namespace host, e.g. \
                   `namespace: myns.servicebus.windows.net`"
                .to_string(),
        })?;
        let namespace_host = namespace_host(&child(p, "namespace"), &namespace, ctx)?;
        let entra = super::entra::entra(&child(p, "entra"), entra, ctx)?;
        return Ok(EventHubs {
            namespace_host,
            kafka_port: event_hubs::KAFKA_PORT,
            auth: EventHubsAuth::Entra(entra),
        });
    }
    if raw.namespace.is_some() {
        return Err(ctx.invalid_key(
            &child(p, "namespace"),
            format!(
                "{p}.namespace goes with `entra`; a connection string names its namespace in \
                 `Endpoint=sb://...`: remove `namespace`"
            ),
        ));
    }
    if raw.connection_string.is_none() && raw.connection_string_file.is_none() {
        return Err(ctx.invalid_key(
            p,
            format!(
                "{p}: missing `connection_string` (or `connection_string_file`, or `entra` with \
                 `namespace` for Microsoft Entra ID); give exactly one"
            ),
        ));
    }
    let (path, value, from_file) = one_of(
        p,
        ("connection_string", raw.connection_string),
        ("connection_string_file", raw.connection_string_file),
        ctx,
    )?;
    if from_file {
        let secret = ctx.read_secret(&path, &value)?;
        parse_connection_string(secret.expose()).map_err(|e| {
            ctx.invalid_at(
                &path,
                format!(
                    "the connection string in `{}` (from {path}) is not valid: {e}",
                    ctx.file_path(&value).display()
                ),
            )
        })
    } else {
        parse_connection_string(&value)
            .map_err(|e| ctx.invalid_at(&path, format!("{path} is not valid: {e}")))
    }
}

/// A namespace host: a DNS name (`myns.servicebus.windows.net`), no scheme, port or path.
fn namespace_host(path: &str, v: &str, ctx: &Ctx<'_>) -> Result<String, TopologyError> {
    let h = v.trim();
    let ok = !h.is_empty()
        && h.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    if ok {
        Ok(h.to_ascii_lowercase())
    } else {
        Err(ctx.invalid_at(
            path,
            format!(
                "{path} `{h}` is not a namespace host: write it as \
                 `myns.servicebus.windows.net` (no `sb://`, port or path; \
                 `bootstrap_servers` overrides the `<namespace>:9093` endpoint)"
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::valid_alias;

    #[test]
    fn alias_rule() {
        for ok in ["a", "onprem", "eh-1", "x_y", "a0"] {
            assert!(valid_alias(ok), "{ok}");
        }
        for bad in ["", "1a", "Onprem", "a.b", "-a", "a b", "é"] {
            assert!(!valid_alias(bad), "{bad}");
        }
    }
}
