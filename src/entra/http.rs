//! The HTTP client of the token sources: rustls, trusting the system's CAs plus the cluster's
//! `tls.ca_file` (a private CA, an emulator), with bounded timeouts.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::request::TokenRequest;

/// How long one token request may take (connection included).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A client trusting the system store and `ca_file`.
pub fn client(ca_file: Option<&Path>) -> Result<reqwest::Client, String> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    if let Some(ca) = ca_file {
        let pem = std::fs::read(ca).map_err(|e| format!("cannot read {}: {e}", ca.display()))?;
        for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
            let cert = cert.map_err(|e| format!("{} is not PEM: {e}", ca.display()))?;
            roots
                .add(cert)
                .map_err(|e| format!("{}: {e}", ca.display()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .timeout(REQUEST_TIMEOUT)
        .connect_timeout(CONNECT_TIMEOUT)
        .build()
        .map_err(|e| e.to_string())
}

/// Sends `req`; the status and body, or why no answer came (no secret in it).
pub async fn send(client: &reqwest::Client, req: TokenRequest) -> Result<(u16, Vec<u8>), String> {
    let mut builder = match req.form {
        Some(form) => client.post(&req.url).form(&form),
        None => client.get(&req.url),
    };
    for (k, v) in req.headers {
        builder = builder.header(k, v);
    }
    let answer = builder.send().await.map_err(describe)?;
    let status = answer.status().as_u16();
    let body = answer.bytes().await.map_err(describe)?;
    Ok((status, body.to_vec()))
}

/// reqwest's error without the URL's query (which may carry ids, never secrets, but is long).
fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
