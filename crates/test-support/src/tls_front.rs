//! [`TlsFront`]: an `https://` front for a plain-HTTP endpoint (the emulator's Entra ID
//! authority), with a certificate from the emulator's own CA: a test of a client that must trust
//! a private CA (`tls.ca_file`) for its token requests.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

/// Terminates TLS on a free loopback port and relays the bytes to a plain endpoint; stops on
/// drop.
pub struct TlsFront {
    addr: SocketAddr,
    stop: CancellationToken,
    thread: Option<JoinHandle<()>>,
}

impl TlsFront {
    /// A front for `upstream` (`host:port`) with the certificate `cert_pem` and its key
    /// `key_pem` (PEM files).
    pub fn start(upstream: &str, cert_pem: &Path, key_pem: &Path) -> TlsFront {
        let certs: Vec<_> =
            rustls_pemfile::certs(&mut std::fs::read(cert_pem).expect("cert").as_slice())
                .collect::<Result<_, _>>()
                .expect("PEM certificate");
        let key = rustls_pemfile::private_key(&mut std::fs::read(key_pem).expect("key").as_slice())
            .expect("PEM key")
            .expect("a private key");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .expect("server certificate");
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let std = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        std.set_nonblocking(true).expect("nonblocking");
        let addr = std.local_addr().expect("addr");
        let stop = CancellationToken::new();
        let (upstream, s) = (upstream.to_string(), stop.clone());
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = TcpListener::from_std(std).expect("listener");
                loop {
                    let tcp = tokio::select! {
                        _ = s.cancelled() => return,
                        accepted = listener.accept() => match accepted {
                            Ok((tcp, _)) => tcp,
                            Err(_) => continue,
                        },
                    };
                    let (acceptor, upstream, s) = (acceptor.clone(), upstream.clone(), s.clone());
                    tokio::spawn(async move {
                        let Ok(mut tls) = acceptor.accept(tcp).await else {
                            return;
                        };
                        let Ok(mut plain) = TcpStream::connect(&upstream).await else {
                            return;
                        };
                        tokio::select! {
                            _ = s.cancelled() => {}
                            _ = tokio::io::copy_bidirectional(&mut tls, &mut plain) => {}
                        }
                    });
                }
            });
        });
        TlsFront {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    /// `https://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        self.stop.cancel();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
