//! An in-process TLS listener presenting a certificate the real test Eureka server cannot serve
//! beside its good one (a wrong host name, an expired certificate). It only shakes hands: the
//! client is expected to refuse the certificate before any HTTP is sent.

use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

pub struct TlsStub {
    pub port: u16,
    /// Handshakes the stub saw start (proves the client came here before failing over).
    pub connections: Arc<AtomicUsize>,
    closed: Arc<AtomicBool>,
}

impl TlsStub {
    /// Serves `cert_pem` / `key_pem` (paths) on a free loopback port.
    pub fn start(cert_pem: &str, key_pem: &str) -> TlsStub {
        let chain = CertificateDer::pem_file_iter(cert_pem)
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_file(key_pem).unwrap();
        let config = Arc::new(
            rustls::ServerConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap(),
        );
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let closed = Arc::new(AtomicBool::new(false));
        let (count, done) = (connections.clone(), closed.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if done.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut tcp) = stream else { continue };
                count.fetch_add(1, Ordering::SeqCst);
                let config = config.clone();
                std::thread::spawn(move || {
                    let _ = tcp.set_read_timeout(Some(Duration::from_secs(5)));
                    let Ok(mut conn) = rustls::ServerConnection::new(config) else {
                        return;
                    };
                    // Drive the handshake until the client gives up on our certificate.
                    while conn.is_handshaking() {
                        if conn.complete_io(&mut tcp).is_err() {
                            break;
                        }
                    }
                });
            }
        });
        TlsStub {
            port,
            connections,
            closed,
        }
    }

    /// The service URL clients use: https on 127.0.0.1.
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}/eureka/", self.port)
    }
}

impl Drop for TlsStub {
    fn drop(&mut self) {
        self.closed.store(true, Ordering::SeqCst);
        // Wake the accept loop so the thread sees `closed` and ends.
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
    }
}
