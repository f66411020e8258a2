//! TLS to the registry through the C interface: the real Eureka test server over https (and a
//! second one requiring client certificates), certificates made by scripts/test-certs.sh.
//! Wrong-host and expired certificates come from an in-process rustls listener (one Eureka
//! server cannot serve them beside its good certificate).

mod common;

use std::ptr;
use std::sync::Mutex;

use common::tls_stub::TlsStub;
use common::*;
use registrar::ffi::registrar_instance_status::*;
use registrar::ffi::registrar_status::*;
use registrar::ffi::*;

/// SSL_CERT_FILE / SSL_CERT_DIR are process-wide: tests that create clients take this lock so
/// the ones that set them never leak into the others.
static ENV: Mutex<()> = Mutex::new(());

fn lock_env() -> std::sync::MutexGuard<'static, ()> {
    ENV.lock().unwrap_or_else(|e| e.into_inner())
}

/// Starts a client, waits up to `ms` for the registration and returns the outcome (the
/// client's last error on failure).
fn register(url: &str, prefix: &str, settings: &[(&str, &str)], ms: u32) -> Result<(), String> {
    let client = Client::new(url, &unique_app(prefix), settings).map_err(|f| f.message)?;
    client.set_status(REGISTRAR_INSTANCE_UP).unwrap();
    client.start().unwrap();
    let outcome = client.wait_registered(ms).map_err(|_| client.last_error());
    let _ = client.stop(3000);
    outcome
}

/// registrar_discovery_new's status and message for these settings.
fn discovery_new(settings: &[(&str, &str)]) -> Result<(), Failure> {
    let cfg = config(settings);
    let mut discovery = ptr::null_mut();
    let result = check(registrar_discovery_new(cfg, &mut discovery));
    registrar_config_free(cfg);
    registrar_discovery_free(discovery);
    result
}

#[test]
fn registers_and_discovers_over_https_with_the_registry_ca_file() {
    let _env = lock_env();
    let url = shared_tls_url();
    assert!(url.starts_with("https://"), "{url}");
    let ca = cert("ca.pem");
    register(&url, "tls-ca", &[("ca_file", &ca)], 10_000).unwrap();

    // Discovery reads the registry over the same verified TLS.
    let cfg = config(&[("url", &url), ("ca_file", &ca), ("timeout", "2")]);
    let mut discovery = ptr::null_mut();
    check(registrar_discovery_new(cfg, &mut discovery)).unwrap();
    registrar_config_free(cfg);
    check(registrar_discovery_start(discovery)).unwrap();
    let ready = check(registrar_discovery_wait_ready(discovery, 10_000));
    registrar_discovery_free(discovery);
    ready.unwrap();
}

#[test]
fn an_unknown_issuer_is_refused_and_says_so() {
    let _env = lock_env();
    let url = shared_tls_url();
    // The OS store does not know the test CA; a CA file with another CA does not help either.
    for settings in [vec![], vec![("ca_file", cert("untrusted-ca.pem"))]] {
        let settings: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let error = register(&url, "tls-untrusted", &settings, 1500).unwrap_err();
        assert!(error.contains("TLS"), "{error}");
        assert!(error.contains("unknown issuer"), "{error}");
        assert!(
            error.contains(url.trim_end_matches("eureka/")),
            "names the server: {error}"
        );
        assert!(!error.contains("timed out"), "{error}");
    }
}

#[test]
fn ssl_cert_file_and_ssl_cert_dir_are_honoured() {
    let _env = lock_env();
    let url = shared_tls_url();
    std::env::set_var("SSL_CERT_FILE", cert("ca.pem"));
    let by_file = register(&url, "tls-ssl-cert-file", &[], 10_000);
    std::env::remove_var("SSL_CERT_FILE");
    by_file.unwrap();

    let dir = tls_certs().join("trusted-dir");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(cert("ca.pem"), dir.join("ca.pem")).unwrap();
    std::env::set_var("SSL_CERT_DIR", &dir);
    let by_dir = register(&url, "tls-ssl-cert-dir", &[], 10_000);
    std::env::remove_var("SSL_CERT_DIR");
    by_dir.unwrap();

    // A broken SSL_CERT_FILE is the user's configuration: an error naming it, at client_new.
    for bundle in ["/nonexistent/bundle.pem".to_string(), cert("not-pem.txt")] {
        std::env::set_var("SSL_CERT_FILE", &bundle);
        let broken = Client::new(&url, &unique_app("tls-bad-ssl-cert-file"), &[]).map(|_| ());
        let broken_discovery = discovery_new(&[("url", &url)]);
        std::env::remove_var("SSL_CERT_FILE");
        for result in [broken, broken_discovery] {
            let failure = result.unwrap_err();
            assert_eq!(failure.status, REGISTRAR_ERR_INVALID_CONFIG);
            let named = format!("SSL_CERT_FILE='{bundle}'");
            assert!(failure.message.contains(&named), "{}", failure.message);
        }
    }
}

#[test]
fn wrong_host_and_expired_certificates_are_refused_and_named() {
    let _env = lock_env();
    let ca = cert("ca.pem");
    let wrong = TlsStub::start(&cert("wrong-host.pem"), &cert("wrong-host.key"));
    let error = register(&wrong.url(), "tls-wrong-host", &[("ca_file", &ca)], 1500).unwrap_err();
    assert!(error.contains("wrong host name"), "{error}");
    assert!(error.contains("127.0.0.1"), "{error}");
    assert!(error.contains("wrong-host.invalid"), "{error}");

    let expired = TlsStub::start(&cert("expired.pem"), &cert("expired.key"));
    let error = register(&expired.url(), "tls-expired", &[("ca_file", &ca)], 1500).unwrap_err();
    assert!(error.contains("has expired"), "{error}");
    assert!(
        error.contains(&format!("127.0.0.1:{}", expired.port)),
        "names the server: {error}"
    );
}

#[test]
fn a_tls_failure_moves_on_to_the_next_service_url() {
    let _env = lock_env();
    let expired = TlsStub::start(&cert("expired.pem"), &cert("expired.key"));
    let urls = format!("{},{}", expired.url(), shared_tls_url());
    register(
        &urls,
        "tls-failover",
        &[("ca_file", &cert("ca.pem"))],
        10_000,
    )
    .unwrap();
    assert!(
        expired
            .connections
            .load(std::sync::atomic::Ordering::SeqCst)
            >= 1,
        "the first URL was tried"
    );
}

#[test]
fn mutual_tls_with_ec_pkcs8_and_rsa_keys() {
    let _env = lock_env();
    let url = shared_mtls_url();
    let ca = cert("ca.pem");
    for (certificate, key) in [
        ("client.pem", "client.key"),
        ("client.pem", "client-pkcs8.key"),
        ("client-rsa.pem", "client-rsa.key"),
    ] {
        let (certificate, key) = (cert(certificate), cert(key));
        register(
            &url,
            "mtls",
            &[
                ("ca_file", &ca),
                ("client_cert", &certificate),
                ("client_key", &key),
            ],
            10_000,
        )
        .unwrap_or_else(|e| panic!("{certificate} + {key}: {e}"));
    }
}

#[test]
fn mutual_tls_without_a_client_certificate_says_one_is_required() {
    let _env = lock_env();
    let url = shared_mtls_url();
    let error = register(&url, "mtls-none", &[("ca_file", &cert("ca.pem"))], 1500).unwrap_err();
    assert!(error.contains("requires a client certificate"), "{error}");
    assert!(error.contains("REGISTRY_CLIENT_CERT"), "{error}");

    // A certificate from a CA the server does not accept.
    let error = register(
        &url,
        "mtls-wrong-ca",
        &[
            ("ca_file", &cert("ca.pem")),
            ("client_cert", &cert("server.pem")),
            ("client_key", &cert("server.key")),
        ],
        1500,
    )
    .unwrap_err();
    assert!(error.contains("rejected our client certificate"), "{error}");
}

#[test]
fn bad_files_are_configuration_errors_naming_the_setting() {
    let _env = lock_env();
    let url = "https://127.0.0.1:1/eureka/";
    let certs = tls_certs().display().to_string();
    let (ca, client, client_key) = (cert("ca.pem"), cert("client.pem"), cert("client.key"));
    let (not_pem, rsa_key) = (cert("not-pem.txt"), cert("client-rsa.key"));
    let (server_key, encrypted_key) = (cert("server.key"), cert("client-encrypted.key"));
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (
            vec![("ca_file", "/nonexistent/ca.pem")],
            "REGISTRY_CA_FILE '/nonexistent/ca.pem': cannot read: no such file",
        ),
        // A directory stands for an unreadable file (tests may run as root, who reads all).
        (vec![("ca_file", &certs)], "REGISTRY_CA_FILE"),
        (vec![("ca_file", &not_pem)], "REGISTRY_CA_FILE '"),
        (
            vec![("client_cert", &client)],
            "REGISTRY_CLIENT_CERT is set but REGISTRY_CLIENT_KEY is not",
        ),
        (
            vec![("client_cert", &not_pem), ("client_key", &client_key)],
            "REGISTRY_CLIENT_CERT '",
        ),
        (
            vec![("client_cert", &client), ("client_key", &not_pem)],
            "REGISTRY_CLIENT_KEY '",
        ),
        (
            vec![("client_cert", &client), ("client_key", &ca)],
            "no PEM private key",
        ),
        (
            vec![("client_cert", &client), ("client_key", &rsa_key)],
            "does not belong to the certificate in REGISTRY_CLIENT_CERT",
        ),
        // Same key type (EC P-256), another key.
        (
            vec![("client_cert", &client), ("client_key", &server_key)],
            "does not belong to the certificate in REGISTRY_CLIENT_CERT",
        ),
        (
            vec![("client_cert", &client), ("client_key", &encrypted_key)],
            "the key is encrypted",
        ),
    ];
    for (settings, expected) in cases {
        let client_result = Client::new(url, &unique_app("tls-bad"), &settings).map(|_| ());
        let mut discovery_settings = settings.clone();
        discovery_settings.push(("url", url));
        for result in [client_result, discovery_new(&discovery_settings)] {
            let failure = result.expect_err(expected);
            assert_eq!(
                failure.status, REGISTRAR_ERR_INVALID_CONFIG,
                "{}",
                failure.message
            );
            assert!(
                failure.message.contains(expected),
                "expected '{expected}' in: {}",
                failure.message
            );
        }
    }
    // The good files pass, so the cases above fail for the reason they name.
    Client::new(
        url,
        &unique_app("tls-good"),
        &[
            ("ca_file", &ca),
            ("client_cert", &client),
            ("client_key", &client_key),
        ],
    )
    .unwrap();
}
