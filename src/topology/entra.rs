//! `clusters.<alias>.event_hubs.entra`: Microsoft Entra ID instead of a connection string. One of
//! three credentials — an application's client secret, AKS workload identity (a federated token
//! file), or a managed identity — and the authority that issues tokens.

use std::path::PathBuf;

use super::ctx::Ctx;
use super::error::TopologyError;
use super::locate::child;
use super::raw::RawEntra;
use super::Secret;

/// Microsoft's public-cloud authority (sovereign clouds have their own).
pub const DEFAULT_AUTHORITY_HOST: &str = "https://login.microsoftonline.com";
/// The Azure instance metadata service, where managed identities get their tokens.
pub const DEFAULT_IMDS_ENDPOINT: &str = "http://169.254.169.254";

/// Entra ID settings of one namespace.
#[derive(Debug, Clone)]
pub struct Entra {
    /// Who hubmirror is.
    pub credential: EntraCredential,
    /// `https://login.microsoftonline.com` unless set (or `AZURE_AUTHORITY_HOST` under workload
    /// identity); no trailing `/`.
    pub authority_host: String,
}

/// The three ways of getting a token.
#[derive(Debug, Clone)]
pub enum EntraCredential {
    /// An application (service principal) with a client secret.
    ClientSecret {
        tenant_id: String,
        client_id: String,
        secret: SecretSource,
    },
    /// AKS workload identity: the federated service-account token in `token_file` (rotated by
    /// the kubelet; read again for every token) is exchanged for an Entra token.
    WorkloadIdentity {
        tenant_id: String,
        client_id: String,
        token_file: PathBuf,
    },
    /// A managed identity: the system-assigned one, or the user-assigned one with `client_id`.
    ManagedIdentity {
        client_id: Option<String>,
        endpoint: IdentityEndpoint,
    },
}

/// Where a managed identity asks for its token.
#[derive(Debug, Clone)]
pub enum IdentityEndpoint {
    /// The instance metadata service at this base URL (`http://169.254.169.254` on Azure VMs,
    /// VM scale sets and AKS nodes).
    Imds(String),
    /// An App Service / Container Apps / Functions host: `IDENTITY_ENDPOINT` with the
    /// `IDENTITY_HEADER` secret.
    AppService { endpoint: String, header: Secret },
}

/// A secret given inline or in a file (read again for every token, so a rotated file is picked
/// up without a restart).
#[derive(Debug, Clone)]
pub enum SecretSource {
    Value(Secret),
    File(PathBuf),
}

impl EntraCredential {
    /// A short name of the mode, for `validate` and messages.
    pub fn mode(&self) -> &'static str {
        match self {
            EntraCredential::ClientSecret { .. } => "client secret",
            EntraCredential::WorkloadIdentity { .. } => "workload identity",
            EntraCredential::ManagedIdentity { .. } => "managed identity",
        }
    }

    /// The client id the credential names, if any.
    pub fn client_id(&self) -> Option<&str> {
        match self {
            EntraCredential::ClientSecret { client_id, .. }
            | EntraCredential::WorkloadIdentity { client_id, .. } => Some(client_id),
            EntraCredential::ManagedIdentity { client_id, .. } => client_id.as_deref(),
        }
    }

    /// The tenant the credential names, if any (a managed identity's is implicit).
    pub fn tenant_id(&self) -> Option<&str> {
        match self {
            EntraCredential::ClientSecret { tenant_id, .. }
            | EntraCredential::WorkloadIdentity { tenant_id, .. } => Some(tenant_id),
            EntraCredential::ManagedIdentity { .. } => None,
        }
    }
}

/// Resolves `event_hubs.entra` at `p` (`clusters.<alias>.event_hubs.entra`).
pub(crate) fn entra(p: &str, raw: RawEntra, ctx: &Ctx<'_>) -> Result<Entra, TopologyError> {
    let workload = flag(
        p,
        "workload_identity",
        raw.workload_identity.as_deref(),
        ctx,
    )?;
    let managed = flag(p, "managed_identity", raw.managed_identity.as_deref(), ctx)?;
    let secret_given = raw.client_secret.is_some() || raw.client_secret_file.is_some();
    let modes = [secret_given, workload, managed]
        .iter()
        .filter(|m| **m)
        .count();
    if modes != 1 {
        let what = if modes == 0 {
            "no credential"
        } else {
            "more than one credential"
        };
        return Err(ctx.invalid_key(
            p,
            format!(
                "{p} has {what}: give exactly one of `client_secret` / `client_secret_file` (an \
                 application's secret), `workload_identity: true` (AKS workload identity) or \
                 `managed_identity: true`"
            ),
        ));
    }
    let authority_default = if workload {
        ctx.env("AZURE_AUTHORITY_HOST")
    } else {
        None
    };
    let authority_host = authority(p, raw.authority_host.or(authority_default), ctx)?;
    let for_mode = |key: &str| {
        format!(
            "{} is only read with {}",
            child(p, key),
            match key {
                "token_file" => "`workload_identity: true`",
                _ => "`managed_identity: true`",
            }
        )
    };
    if !workload && raw.token_file.is_some() {
        return Err(ctx.invalid_key(&child(p, "token_file"), for_mode("token_file")));
    }
    if !managed && raw.identity_endpoint.is_some() {
        return Err(ctx.invalid_key(
            &child(p, "identity_endpoint"),
            for_mode("identity_endpoint"),
        ));
    }
    let credential = if managed {
        if raw.tenant_id.is_some() {
            return Err(ctx.invalid_key(
                &child(p, "tenant_id"),
                format!(
                    "{}: a managed identity belongs to the resource's own tenant; remove \
                     `tenant_id`",
                    child(p, "tenant_id")
                ),
            ));
        }
        let client_id = raw
            .client_id
            .map(|c| guid(&child(p, "client_id"), c, ctx))
            .transpose()?;
        let endpoint = match raw.identity_endpoint {
            Some(e) => IdentityEndpoint::Imds(url(&child(p, "identity_endpoint"), e, ctx)?),
            None => match (ctx.env("IDENTITY_ENDPOINT"), ctx.env("IDENTITY_HEADER")) {
                (Some(endpoint), Some(header)) if !endpoint.is_empty() && !header.is_empty() => {
                    IdentityEndpoint::AppService {
                        endpoint,
                        header: Secret::new(header),
                    }
                }
                _ => IdentityEndpoint::Imds(DEFAULT_IMDS_ENDPOINT.to_string()),
            },
        };
        EntraCredential::ManagedIdentity {
            client_id,
            endpoint,
        }
    } else {
        // Workload identity's webhook sets these; a client secret names its ids itself.
        let from_env = |var: &str| -> Option<String> {
            workload
                .then(|| ctx.env(var))
                .flatten()
                .filter(|v| !v.is_empty())
        };
        let tenant_id = raw
            .tenant_id
            .or_else(|| from_env("AZURE_TENANT_ID"))
            .ok_or_else(|| missing(p, "tenant_id", workload.then_some("AZURE_TENANT_ID"), ctx))?;
        let tenant_id = tenant(&child(p, "tenant_id"), tenant_id, ctx)?;
        let client_id = raw
            .client_id
            .or_else(|| from_env("AZURE_CLIENT_ID"))
            .ok_or_else(|| missing(p, "client_id", workload.then_some("AZURE_CLIENT_ID"), ctx))?;
        let client_id = guid(&child(p, "client_id"), client_id, ctx)?;
        if workload {
            let file = raw
                .token_file
                .or_else(|| from_env("AZURE_FEDERATED_TOKEN_FILE"))
                .ok_or_else(|| missing(p, "token_file", Some("AZURE_FEDERATED_TOKEN_FILE"), ctx))?;
            let token_file = ctx.existing_file(&child(p, "token_file"), &file)?;
            EntraCredential::WorkloadIdentity {
                tenant_id,
                client_id,
                token_file,
            }
        } else {
            let secret = secret(p, raw.client_secret, raw.client_secret_file, ctx)?;
            EntraCredential::ClientSecret {
                tenant_id,
                client_id,
                secret,
            }
        }
    };
    Ok(Entra {
        credential,
        authority_host,
    })
}

/// `client_secret` or `client_secret_file` (exactly one).
fn secret(
    p: &str,
    value: Option<String>,
    file: Option<String>,
    ctx: &Ctx<'_>,
) -> Result<SecretSource, TopologyError> {
    match (value, file) {
        (Some(_), Some(_)) => Err(ctx.invalid_key(
            &child(p, "client_secret_file"),
            format!("{p}: give either `client_secret` or `client_secret_file`, not both"),
        )),
        (Some(v), None) if v.is_empty() => {
            let path = child(p, "client_secret");
            Err(ctx.invalid_at(&path, format!("{path} is empty")))
        }
        (Some(v), None) => Ok(SecretSource::Value(Secret::new(v))),
        (None, Some(f)) => {
            let path = child(p, "client_secret_file");
            // Read now so that a missing or empty file is named at start.
            ctx.read_secret(&path, &f)?;
            Ok(SecretSource::File(ctx.file_path(&f)))
        }
        (None, None) => Err(missing(p, "client_secret", None, ctx)),
    }
}

fn missing(p: &str, key: &str, var: Option<&str>, ctx: &Ctx<'_>) -> TopologyError {
    TopologyError::MissingKey {
        at: ctx.loc(ctx.index.key(p)),
        key: key.to_string(),
        parent: p.to_string(),
        hint: match var {
            Some(var) => {
                format!(" (or the environment variable {var}, which AKS workload identity sets)")
            }
            None => String::new(),
        },
    }
}

fn flag(p: &str, key: &str, v: Option<&str>, ctx: &Ctx<'_>) -> Result<bool, TopologyError> {
    match v.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(_) => {
            let path = child(p, key);
            Err(ctx.invalid_at(&path, format!("{path} must be `true` or `false`")))
        }
    }
}

/// An `http://` or `https://` URL without a trailing `/`.
fn url(path: &str, v: String, ctx: &Ctx<'_>) -> Result<String, TopologyError> {
    let v = v.trim();
    let rest = v
        .strip_prefix("https://")
        .or_else(|| v.strip_prefix("http://"));
    match rest {
        Some(host) if !host.is_empty() && !host.starts_with('/') => {
            Ok(v.trim_end_matches('/').to_string())
        }
        _ => Err(ctx.invalid_at(
            path,
            format!("{path} `{v}` is not a URL; write `https://host` (or `http://host:port` for an emulator)"),
        )),
    }
}

fn authority(p: &str, v: Option<String>, ctx: &Ctx<'_>) -> Result<String, TopologyError> {
    match v {
        Some(v) => url(&child(p, "authority_host"), v, ctx),
        None => Ok(DEFAULT_AUTHORITY_HOST.to_string()),
    }
}

/// A tenant: its id (a GUID) or one of its domain names (`contoso.onmicrosoft.com`).
fn tenant(path: &str, v: String, ctx: &Ctx<'_>) -> Result<String, TopologyError> {
    let t = v.trim();
    let ok = !t.is_empty()
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    if ok {
        Ok(t.to_string())
    } else {
        Err(ctx.invalid_at(
            path,
            format!(
                "{path} `{t}` is not a tenant: give the directory (tenant) id, a GUID from the \
                 app registration's Overview page, or a domain such as contoso.onmicrosoft.com"
            ),
        ))
    }
}

/// A client id: a GUID.
fn guid(path: &str, v: String, ctx: &Ctx<'_>) -> Result<String, TopologyError> {
    let t = v.trim();
    if uuid::Uuid::try_parse(t).is_ok() {
        Ok(t.to_string())
    } else {
        Err(ctx.invalid_at(
            path,
            format!(
                "{path} `{t}` is not a client id: give the application (client) id, a GUID such \
                 as 11111111-2222-3333-4444-555555555555"
            ),
        ))
    }
}
