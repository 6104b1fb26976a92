//! Why an Entra ID token could not be had. Each message names the cluster, the credential mode
//! and the fix, and never the secret, the federated token or the access token.

use std::path::PathBuf;
use std::time::Duration;

/// A token source's failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EntraError {
    /// The authority refused the credential or the request: no retry fixes it.
    #[error(
        "cluster '{alias}': Entra ID ({mode}) refused the token request: {}; {fix}",
        if description.is_empty() { code.as_str() } else { description.as_str() }
    )]
    Refused {
        alias: String,
        mode: &'static str,
        /// `AADSTS7000215`, or the OAuth error.
        code: String,
        /// The authority's first line (Entra never repeats the secret in it).
        description: String,
        fix: String,
    },
    /// The authority (or identity endpoint) gave no answer within the time allowed.
    #[error(
        "cluster '{alias}': no Entra ID token after {}s: {reason}; check that {endpoint} of \
         clusters.{alias}.event_hubs.entra is reachable from here (DNS, proxy, firewall)",
        waited.as_secs()
    )]
    Unreachable {
        alias: String,
        endpoint: &'static str,
        reason: String,
        waited: Duration,
    },
    /// The client secret or federated token file cannot be read.
    #[error(
        "cluster '{alias}': cannot read {}: {source}; check clusters.{alias}.event_hubs.entra \
         (client_secret_file, token_file or AZURE_FEDERATED_TOKEN_FILE)",
        file.display()
    )]
    File {
        alias: String,
        file: PathBuf,
        source: std::io::Error,
    },
    /// The HTTP client could not be set up (the cluster's `tls.ca_file`).
    #[error("cluster '{alias}': cannot set up the Entra ID HTTP client: {reason}")]
    Setup { alias: String, reason: String },
    /// Stopped while waiting for the first token.
    #[error("cluster '{alias}': stopped while waiting for the first Entra ID token")]
    Cancelled { alias: String },
}
