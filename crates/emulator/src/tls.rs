//! The emulator's certificates: a CA (generated once per `cert_dir`, then reused so clients that
//! trust `ca.pem` keep working across restarts) and a server certificate it signs at every start.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tracing::info;

/// File with the CA certificate, for clients' `ssl.ca.location`.
pub(crate) const CA_CERT_FILE: &str = "ca.pem";
/// File with the CA's private key (mode 0600).
const CA_KEY_FILE: &str = "ca.key.pem";
/// File with the server certificate.
const SERVER_CERT_FILE: &str = "server.pem";
/// File with the server's private key (mode 0600).
const SERVER_KEY_FILE: &str = "server.key.pem";
/// The CA's subject. Rebuilt identically when the CA is reused, so the issuer name matches.
const CA_COMMON_NAME: &str = "hubmirror Event Hubs emulator CA";

/// Why the TLS material could not be prepared.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A certificate file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The reason.
        source: std::io::Error,
    },
    /// rcgen could not generate, parse or sign.
    #[error("certificate generation: {0}")]
    Rcgen(#[from] rcgen::Error),
    /// rustls rejected the certificate or key.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The server side of TLS, ready for a `TlsAcceptor`.
pub(crate) struct TlsMaterial {
    /// Where the CA certificate (PEM) is.
    pub(crate) ca_file: PathBuf,
    /// rustls configuration with the server certificate.
    pub(crate) server_config: Arc<rustls::ServerConfig>,
}

/// Loads or creates the CA in `dir`, signs a server certificate for `localhost`, `127.0.0.1`
/// and `extra_hosts`, writes it, and builds the rustls configuration.
pub(crate) fn prepare(dir: &Path, extra_hosts: &[String]) -> Result<TlsMaterial, TlsError> {
    std::fs::create_dir_all(dir).map_err(|source| TlsError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let ca_file = dir.join(CA_CERT_FILE);
    let ca_key_file = dir.join(CA_KEY_FILE);
    let ca_key = if ca_file.exists() && ca_key_file.exists() {
        info!(ca = %ca_file.display(), "reusing emulator CA");
        KeyPair::from_pem(&read(&ca_key_file)?)?
    } else {
        let key = KeyPair::generate()?;
        let cert = ca_params().self_signed(&key)?;
        write(&ca_key_file, &key.serialize_pem(), true)?;
        write(&ca_file, &cert.pem(), false)?;
        info!(ca = %ca_file.display(), "generated emulator CA");
        key
    };
    let ca_der = first_cert(&read(&ca_file)?, &ca_file)?;
    let issuer = Issuer::new(ca_params(), ca_key);

    let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    for host in extra_hosts {
        if !names.contains(host) {
            names.push(host.clone());
        }
    }
    let mut params = CertificateParams::new(names)?;
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    let server_key = KeyPair::generate()?;
    let server_cert = params.signed_by(&server_key, &issuer)?;
    write(&dir.join(SERVER_CERT_FILE), &server_cert.pem(), false)?;
    write(
        &dir.join(SERVER_KEY_FILE),
        &server_key.serialize_pem(),
        true,
    )?;

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der()));
    let server_config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![server_cert.der().clone(), ca_der], key)?;
    Ok(TlsMaterial {
        ca_file,
        server_config: Arc::new(server_config),
    })
}

/// The CA's parameters; deterministic so that a reused CA key signs with the same issuer name
/// and key identifier as the certificate in `ca.pem`.
fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, CA_COMMON_NAME);
    params
        .distinguished_name
        .push(DnType::OrganizationName, "hubmirror");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

/// The first certificate of a PEM file, DER-encoded.
fn first_cert(pem: &str, path: &Path) -> Result<CertificateDer<'static>, TlsError> {
    let invalid = |what: &str| TlsError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string()),
    };
    match rustls_pemfile::certs(&mut pem.as_bytes()).next() {
        Some(Ok(der)) => Ok(der),
        Some(Err(e)) => Err(invalid(&e.to_string())),
        None => Err(invalid("no certificate in file")),
    }
}

fn read(path: &Path) -> Result<String, TlsError> {
    std::fs::read_to_string(path).map_err(|source| TlsError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes through a temporary file and a rename, so readers never see half a file; private
/// keys get mode 0600.
fn write(path: &Path, contents: &str, private: bool) -> Result<(), TlsError> {
    let io = |source| TlsError::Io {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut file = options.open(&tmp).map_err(io)?;
    file.write_all(contents.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_then_reuses_the_ca() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = prepare(dir.path(), &["broker.local".to_string()]).expect("first");
        let ca = std::fs::read_to_string(&first.ca_file).expect("ca");
        let server_one =
            std::fs::read_to_string(dir.path().join(SERVER_CERT_FILE)).expect("server");
        let second = prepare(dir.path(), &[]).expect("second");
        assert_eq!(std::fs::read_to_string(&second.ca_file).expect("ca"), ca);
        let server_two =
            std::fs::read_to_string(dir.path().join(SERVER_CERT_FILE)).expect("server");
        assert_ne!(server_one, server_two);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(CA_KEY_FILE))
                .expect("key")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    /// A client trusting the CA of the first start accepts the server of a later start.
    #[tokio::test]
    async fn reused_ca_still_verifies_new_server_certificates() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = prepare(dir.path(), &[]).expect("first");
        let second = prepare(dir.path(), &[]).expect("second");
        let mut roots = rustls::RootCertStore::empty();
        let pem = std::fs::read_to_string(&first.ca_file).expect("ca");
        roots
            .add(first_cert(&pem, &first.ca_file).expect("der"))
            .expect("root");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        let acceptor = tokio_rustls::TlsAcceptor::from(second.server_config);
        let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
        for name in ["localhost", "127.0.0.1"] {
            let (a, b) = tokio::io::duplex(64 * 1024);
            let acceptor = acceptor.clone();
            let server = tokio::spawn(async move { acceptor.accept(b).await.map(|_| ()) });
            let name = rustls::pki_types::ServerName::try_from(name).expect("name");
            // Kept open until the server is done (TLS 1.3 sends tickets after the handshake).
            let _client = connector.connect(name, a).await.expect("client handshake");
            server.await.expect("join").expect("server handshake");
        }
    }
}
