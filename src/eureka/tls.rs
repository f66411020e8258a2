//! TLS to the registry: which certificates we trust, which one we present, and what a failed
//! handshake tells the user.
//!
//! Server certificates are always verified (chain, validity, host name or IP); there is no
//! setting that turns this off. Trust is the operating system's store, read by
//! `rustls-native-certs` (which honours OpenSSL's `SSL_CERT_FILE` and `SSL_CERT_DIR` on every
//! platform), plus the CAs in `REGISTRY_CA_FILE`, which apply to the registry alone.
//! `REGISTRY_CLIENT_CERT` / `REGISTRY_CLIENT_KEY` add a client certificate for mutual TLS.
//!
//! Everything is read and checked once, when a client or discovery handle is created, so a
//! missing, unreadable or non-PEM file, or a key that does not belong to the certificate, is a
//! configuration error naming the setting, never a failure discovered at the first heartbeat.
//! The result is a `rustls::ClientConfig` built with the same rustls and crypto provider
//! (ring) that reqwest uses, handed to reqwest with `use_preconfigured_tls`.

use std::collections::hash_map::DefaultHasher;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{AlertDescription, CertificateError, ClientConfig, RootCertStore};

use crate::config::Settings;
use crate::error::{Error, Result};

/// The TLS settings of one handle, loaded and checked. Cheap to clone (the rustls
/// configuration is shared).
#[derive(Clone)]
pub struct Tls {
    ca_file: Option<PathBuf>,
    client_cert: Option<PathBuf>,
    client_key: Option<PathBuf>,
    config: Arc<ClientConfig>,
    /// A hash of everything loaded (trusted CAs, client chain and key): see `PartialEq`.
    fingerprint: u64,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Paths only: the key's content never appears in debug output.
        f.debug_struct("Tls")
            .field("ca_file", &self.ca_file)
            .field("client_cert", &self.client_cert)
            .field("client_key", &self.client_key)
            .finish()
    }
}

/// Equal when the same certificates and key were loaded, so handles with equal TLS settings
/// can share one HTTP client (and its connections), while a handle created after a file was
/// renewed on disk, or with another SSL_CERT_FILE, gets its own. (rustls configurations
/// cannot be compared themselves.)
impl PartialEq for Tls {
    fn eq(&self, other: &Tls) -> bool {
        self.fingerprint == other.fingerprint
    }
}

impl Tls {
    /// Reads `REGISTRY_CA_FILE`, `REGISTRY_CLIENT_CERT` and `REGISTRY_CLIENT_KEY` and builds the
    /// rustls configuration. The OS trust store is read only when `uses_https` (a registry on
    /// plain http needs no roots, and a broken `SSL_CERT_FILE` must not stop it); the
    /// `REGISTRY_*` files are checked whenever they are set.
    pub fn from_settings(settings: &Settings, uses_https: bool) -> Result<Tls> {
        let path = |key| settings.value(key).map(PathBuf::from);
        let (ca_file, client_cert, client_key) = (
            path("REGISTRY_CA_FILE"),
            path("REGISTRY_CLIENT_CERT"),
            path("REGISTRY_CLIENT_KEY"),
        );

        let mut fingerprint = DefaultHasher::new();
        let mut roots = RootCertStore::empty();
        if uses_https {
            let os_roots = os_roots()?;
            os_roots.hash(&mut fingerprint);
            // Certificates rustls cannot use (old or odd entries of a system bundle) are skipped.
            roots.add_parsable_certificates(os_roots);
        }
        if let Some(file) = &ca_file {
            let certs = read_certificates("REGISTRY_CA_FILE", file)?;
            certs.hash(&mut fingerprint);
            for (index, cert) in certs.into_iter().enumerate() {
                roots.add(cert).map_err(|e| {
                    Error::InvalidConfig(format!(
                        "REGISTRY_CA_FILE '{}': certificate {} is not a usable CA certificate: {e}",
                        file.display(),
                        index + 1
                    ))
                })?;
            }
        }
        if uses_https && roots.is_empty() {
            return Err(Error::InvalidConfig(
                "no trusted CA certificates for the https registry: the OS trust store is empty \
                 or missing; set REGISTRY_CA_FILE (or SSL_CERT_FILE) to a PEM file of CA certificates"
                    .into(),
            ));
        }

        let client_auth = match (&client_cert, &client_key) {
            (None, None) => None,
            (Some(_), None) => return Err(Error::InvalidConfig(
                "REGISTRY_CLIENT_CERT is set but REGISTRY_CLIENT_KEY is not; mutual TLS needs both"
                    .into(),
            )),
            (None, Some(_)) => return Err(Error::InvalidConfig(
                "REGISTRY_CLIENT_KEY is set but REGISTRY_CLIENT_CERT is not; mutual TLS needs both"
                    .into(),
            )),
            (Some(cert_file), Some(key_file)) => {
                let chain = read_certificates("REGISTRY_CLIENT_CERT", cert_file)?;
                let key = read_private_key(key_file)?;
                chain.hash(&mut fingerprint);
                key.secret_der().hash(&mut fingerprint);
                Some((chain, key, cert_file, key_file))
            }
        };
        let fingerprint = fingerprint.finish();
        let config = match shared_config(fingerprint) {
            // Built before from the very same certificates and key, which passed every check.
            Some(config) => config,
            None => {
                let provider = Arc::new(rustls::crypto::ring::default_provider());
                let builder = ClientConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .map_err(|e| Error::Internal(format!("TLS protocol versions: {e}")))?
                    .with_root_certificates(roots);
                let config = match client_auth {
                    None => builder.with_no_client_auth(),
                    Some((chain, key, cert_file, key_file)) => builder
                        .with_client_auth_cert(chain, key)
                        .map_err(|e| client_key_error(cert_file, key_file, e))?,
                };
                share_config(fingerprint, config)
            }
        };
        Ok(Tls {
            ca_file,
            client_cert,
            client_key,
            config,
            fingerprint,
        })
    }

    /// The rustls configuration for the HTTP client builder.
    pub fn client_config(&self) -> ClientConfig {
        (*self.config).clone()
    }

    /// Whether a client certificate is configured (it changes what a handshake alert means).
    pub fn has_client_cert(&self) -> bool {
        self.client_cert.is_some()
    }
}

/// The rustls configurations in use, by fingerprint: handles with equal TLS settings share one
/// (a configuration holds the parsed trust store and a session cache sized for 256 servers,
/// tens of KiB, which a thousand handles must not each pay for). Entries of configurations no
/// handle uses any more are dropped as new ones are added.
static CONFIGS: parking_lot::Mutex<Vec<(u64, Weak<ClientConfig>)>> =
    parking_lot::const_mutex(Vec::new());

fn shared_config(fingerprint: u64) -> Option<Arc<ClientConfig>> {
    CONFIGS
        .lock()
        .iter()
        .find(|(f, _)| *f == fingerprint)
        .and_then(|(_, config)| config.upgrade())
}

fn share_config(fingerprint: u64, config: ClientConfig) -> Arc<ClientConfig> {
    let config = Arc::new(config);
    let mut configs = CONFIGS.lock();
    configs.retain(|(f, c)| *f != fingerprint && c.strong_count() > 0);
    configs.push((fingerprint, Arc::downgrade(&config)));
    config
}

/// The OS trust store, or exactly what `SSL_CERT_FILE` / `SSL_CERT_DIR` name when set
/// (OpenSSL's convention, which curl, git and Python follow too).
fn os_roots() -> Result<Vec<CertificateDer<'static>>> {
    let found = rustls_native_certs::load_native_certs();
    // When the user pointed at files, a problem there is theirs to fix, so say which setting.
    // Without the variables, one unreadable file in the system store must not stop the others.
    let chosen: Vec<String> = ["SSL_CERT_FILE", "SSL_CERT_DIR"]
        .iter()
        .filter_map(|variable| {
            let value = std::env::var_os(variable).filter(|v| !v.is_empty())?;
            Some(format!("{variable}='{}'", Path::new(&value).display()))
        })
        .collect();
    if !chosen.is_empty() {
        let chosen = chosen.join(" and ");
        if let Some(error) = found.errors.first() {
            return Err(Error::InvalidConfig(format!("{chosen}: {error}")));
        }
        if found.certs.is_empty() {
            return Err(Error::InvalidConfig(format!(
                "{chosen}: no PEM certificate found (expected '-----BEGIN CERTIFICATE-----')"
            )));
        }
    }
    Ok(found.certs)
}

fn read_file(variable: &str, path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| {
        let why = match e.kind() {
            std::io::ErrorKind::NotFound => "no such file".to_string(),
            std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
            _ => e.to_string(),
        };
        Error::InvalidConfig(format!(
            "{variable} '{}': cannot read: {why}",
            path.display()
        ))
    })
}

/// Every `-----BEGIN CERTIFICATE-----` block of a PEM file; at least one.
fn read_certificates(variable: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let bytes = read_file(variable, path)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<std::result::Result<Vec<_>, pem::Error>>()
        .map_err(|e| {
            Error::InvalidConfig(format!(
                "{variable} '{}': not a valid PEM file: {e}",
                path.display()
            ))
        })?;
    if certs.is_empty() {
        return Err(Error::InvalidConfig(format!(
            "{variable} '{}': no PEM certificate in the file (expected '-----BEGIN CERTIFICATE-----')",
            path.display()
        )));
    }
    Ok(certs)
}

/// The first private key of a PEM file: PKCS#8, RSA (PKCS#1) or EC (SEC1).
fn read_private_key(path: &Path) -> Result<PrivateKeyDer<'static>> {
    let bytes = read_file("REGISTRY_CLIENT_KEY", path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| {
        let why = match e {
            pem::Error::NoItemsFound
                if bytes
                    .windows(b"ENCRYPTED PRIVATE KEY".len())
                    .any(|w| w == b"ENCRYPTED PRIVATE KEY") =>
            {
                "the key is encrypted; give an unencrypted PEM key (e.g. openssl pkcs8 -nocrypt)"
                    .to_string()
            }
            pem::Error::NoItemsFound => "no PEM private key in the file (expected \
                 '-----BEGIN PRIVATE KEY-----', 'RSA PRIVATE KEY' or 'EC PRIVATE KEY')"
                .to_string(),
            other => format!("not a valid PEM file: {other}"),
        };
        Error::InvalidConfig(format!("REGISTRY_CLIENT_KEY '{}': {why}", path.display()))
    })
}

fn client_key_error(cert_file: &Path, key_file: &Path, error: rustls::Error) -> Error {
    match error {
        rustls::Error::InconsistentKeys(_) => Error::InvalidConfig(format!(
            "REGISTRY_CLIENT_KEY '{}' does not belong to the certificate in REGISTRY_CLIENT_CERT '{}'",
            key_file.display(),
            cert_file.display()
        )),
        other => Error::InvalidConfig(format!(
            "REGISTRY_CLIENT_KEY '{}': unusable private key: {other}",
            key_file.display()
        )),
    }
}

/// If a request failed in the TLS handshake, what went wrong, in words a person can act on.
/// `None` when the failure was not about TLS (refused connection, timeout...).
pub fn describe_failure(
    error: &(dyn std::error::Error + 'static),
    has_client_cert: bool,
) -> Option<String> {
    let tls_error = find_rustls_error(error)?;
    Some(match tls_error {
        rustls::Error::InvalidCertificate(problem) => describe_certificate(problem),
        rustls::Error::AlertReceived(alert) => match alert {
            AlertDescription::CertificateRequired
            | AlertDescription::HandshakeFailure
            | AlertDescription::BadCertificate
                if !has_client_cert =>
            {
                format!(
                    "the server requires a client certificate (alert: {alert:?}); set \
                     REGISTRY_CLIENT_CERT and REGISTRY_CLIENT_KEY"
                )
            }
            AlertDescription::BadCertificate
            | AlertDescription::UnknownCA
            | AlertDescription::CertificateUnknown
            | AlertDescription::CertificateExpired
            | AlertDescription::CertificateRevoked
            | AlertDescription::UnsupportedCertificate
            | AlertDescription::AccessDenied
                if has_client_cert =>
            {
                format!(
                    "the server rejected our client certificate from REGISTRY_CLIENT_CERT \
                     (alert: {alert:?})"
                )
            }
            other => format!("the server ended the handshake (alert: {other:?})"),
        },
        other => format!("handshake failed: {other}"),
    })
}

fn describe_certificate(problem: &CertificateError) -> String {
    match problem {
        CertificateError::UnknownIssuer => "the server's certificate is not trusted (unknown \
             issuer); add its CA with REGISTRY_CA_FILE, SSL_CERT_FILE or the OS trust store"
            .to_string(),
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            "the server's certificate has expired".to_string()
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "the server's certificate is not valid yet (check the clocks)".to_string()
        }
        CertificateError::NotValidForNameContext {
            expected,
            presented,
        } => format!(
            "the server's certificate is not valid for the host name {} (wrong host name; it \
             names {})",
            expected.to_str(),
            if presented.is_empty() {
                "no host".to_string()
            } else {
                presented
                    .iter()
                    .map(|name| plain_name(name))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        ),
        CertificateError::NotValidForName => {
            "the server's certificate is not valid for this host name (wrong host name)".to_string()
        }
        CertificateError::Revoked => "the server's certificate has been revoked".to_string(),
        other => format!("the server's certificate was rejected: {other:?}"),
    }
}

/// Walks an error's causes to the rustls error. An `io::Error` hides the error it wraps from
/// `source()` (it skips to that error's own source), and tokio-rustls's error arrives wrapped
/// in two of them, so step into each `io::Error` explicitly.
fn find_rustls_error<'a>(
    mut error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a rustls::Error> {
    loop {
        if let Some(found) = error.downcast_ref::<rustls::Error>() {
            return Some(found);
        }
        error = match error.downcast_ref::<std::io::Error>() {
            Some(io) => io.get_ref()?,
            None => error.source()?,
        };
    }
}

/// rustls lists the certificate's names as `DnsName("host")`; show `host`.
fn plain_name(presented: &str) -> &str {
    presented
        .strip_prefix("DnsName(\"")
        .and_then(|rest| rest.strip_suffix("\")"))
        .unwrap_or(presented)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alerts_and_certificate_errors_read_as_the_problem() {
        let wrapped = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
        );
        assert!(describe_failure(&wrapped, false)
            .unwrap()
            .contains("unknown issuer"));
        let alert = rustls::Error::AlertReceived(AlertDescription::CertificateRequired);
        assert!(describe_failure(&alert, false)
            .unwrap()
            .contains("requires a client certificate"));
        let alert = rustls::Error::AlertReceived(AlertDescription::BadCertificate);
        assert!(describe_failure(&alert, true)
            .unwrap()
            .contains("rejected our client certificate"));
        // tokio-rustls's shape: an io::Error in an io::Error.
        let nested = std::io::Error::other(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(CertificateError::Expired),
        ));
        assert!(describe_failure(&nested, false)
            .unwrap()
            .contains("has expired"));
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(describe_failure(&refused, false), None);
    }

    #[test]
    fn equal_when_the_same_certificates_are_loaded() {
        let dir = std::env::temp_dir().join(format!("registrar-tls-eq-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (a, b) = (dir.join("a.pem"), dir.join("b.pem"));
        // Two different CA certificates: the first and last of the system store.
        let os = rustls_native_certs::load_native_certs().certs;
        if os.len() < 2 {
            return; // no OS store on this machine; nothing to compare with
        }
        let pem = |der: &CertificateDer| {
            let b64 = base64_encode(der.as_ref());
            format!("-----BEGIN CERTIFICATE-----\n{b64}\n-----END CERTIFICATE-----\n")
        };
        std::fs::write(&a, pem(&os[0])).unwrap();
        std::fs::write(&b, pem(&os[os.len() - 1])).unwrap();
        let load = |path: &Path| {
            let mut s = Settings::new();
            s.set("REGISTRY_CA_FILE", path.to_str().unwrap()).unwrap();
            Tls::from_settings(&s, false).unwrap()
        };
        let first = load(&a);
        assert_eq!(first, load(&a), "same file, same content");
        assert_ne!(first, load(&b), "another CA");
        // The same path renewed on disk is a different configuration.
        std::fs::copy(&b, &a).unwrap();
        assert_ne!(first, load(&a), "same path, new content");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Standard base64 (tests only: PEM-encode a DER certificate).
    fn base64_encode(bytes: &[u8]) -> String {
        const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n =
                chunk.iter().fold(0u32, |n, b| n << 8 | u32::from(*b)) << (8 * (3 - chunk.len()));
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    #[test]
    fn missing_files_and_half_mtls_name_the_setting() {
        let mut s = Settings::new();
        s.set("REGISTRY_CA_FILE", "/nonexistent/ca.pem").unwrap();
        let e = Tls::from_settings(&s, false).unwrap_err().to_string();
        assert!(
            e.contains("REGISTRY_CA_FILE '/nonexistent/ca.pem': cannot read: no such file"),
            "{e}"
        );
        let mut s = Settings::new();
        s.set("REGISTRY_CLIENT_KEY", "/k.pem").unwrap();
        let e = Tls::from_settings(&s, false).unwrap_err().to_string();
        assert!(e.contains("REGISTRY_CLIENT_CERT is not"), "{e}");
    }
}
