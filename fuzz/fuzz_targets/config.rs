//! The configuration parser on every setting at once: `REGISTRY_URL` lists (built from parts,
//! with user-info, or raw), metadata, numbers, names, for the agent and for discovery; and the
//! content of the files REGISTRY_CA_FILE, REGISTRY_CLIENT_CERT and REGISTRY_CLIENT_KEY name
//! (real certificates and keys, damaged or not, DER of any kind in PEM armour, any bytes).
//!
//! Properties beyond "no crash": an accepted configuration is usable as promised (base URLs
//! that parse, end in `/`, carry no user-info, query or `apps/`; the credentials the user
//! meant; names that travel as one path segment each; numbers in range); a refusal names the
//! setting at fault (for a bad file: the file's setting); a value set is the value read back;
//! the private key's content appears in no message and no debug output.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use registrar::config::{check_metadata_key, Config, HostDefaults, Settings, SETTINGS};
use registrar::discovery::DiscoveryConfig;
use registrar::eureka::paths;
use registrar::instance::InstanceStatus;
use registrar_fuzz::server_view;

#[derive(Arbitrary, Debug)]
struct Input {
    urls: Vec<UrlParts>,
    raw_url: Option<String>,
    /// Values for the other settings, by index into `SETTINGS` (some left unset).
    values: Vec<(u8, Value)>,
    /// What the files of REGISTRY_CA_FILE, REGISTRY_CLIENT_CERT, REGISTRY_CLIENT_KEY hold.
    ca_file: Option<FileContent>,
    client_cert: Option<FileContent>,
    client_key: Option<FileContent>,
}

/// Real certificates and keys (fuzz/tls/: throw-away, made for this target with openssl).
const FIXTURES: [&[u8]; 8] = [
    include_bytes!("../tls/one-ca.pem"),
    include_bytes!("../tls/client.pem"),
    include_bytes!("../tls/client-ec.key"),
    include_bytes!("../tls/client-pkcs8.key"),
    include_bytes!("../tls/client-rsa.pem"),
    include_bytes!("../tls/client-rsa.key"),
    include_bytes!("../tls/client-encrypted.key"),
    // A certificate chain: two certificates in one file.
    concat!(
        include_str!("../tls/client.pem"),
        include_str!("../tls/one-ca.pem")
    )
    .as_bytes(),
];

/// PEM labels: the ones the library reads, the ones it must refuse, and any.
const LABELS: [&str; 7] = [
    "CERTIFICATE",
    "PRIVATE KEY",
    "EC PRIVATE KEY",
    "RSA PRIVATE KEY",
    "ENCRYPTED PRIVATE KEY",
    "X509 CRL",
    "PUBLIC KEY",
];

#[derive(Arbitrary, Debug)]
enum FileContent {
    /// A fixture with some bytes changed (position modulo its length, XOR) and maybe cut.
    Fixture {
        which: u8,
        edits: Vec<(u16, u8)>,
        cut: Option<u16>,
    },
    /// PEM blocks around DER the fuzzer shapes (a fixture's DER, edited, or any bytes), so
    /// the certificate and key parsers behind the PEM armour are reached.
    Pem(Vec<PemBlock>),
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
struct PemBlock {
    label: Result<u8, String>,
    der: Result<(u8, Vec<(u16, u8)>, Option<u16>), Vec<u8>>,
}

fn edit(bytes: &[u8], edits: &[(u16, u8)], cut: Option<u16>) -> Vec<u8> {
    let mut out = bytes.to_vec();
    if !out.is_empty() {
        for &(at, xor) in edits {
            let at = at as usize % out.len();
            out[at] ^= xor;
        }
    }
    if let Some(cut) = cut {
        out.truncate(cut as usize);
    }
    out
}

/// The DER inside a fixture's first PEM block.
fn fixture_der(which: u8) -> Vec<u8> {
    let pem = std::str::from_utf8(FIXTURES[which as usize % FIXTURES.len()]).unwrap();
    let body: String = pem
        .lines()
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .filter(|l| !l.contains(':'))
        .collect();
    registrar_fuzz::base64_decode(&body)
}

impl FileContent {
    fn render(&self) -> Vec<u8> {
        match self {
            FileContent::Fixture { which, edits, cut } => {
                edit(FIXTURES[*which as usize % FIXTURES.len()], edits, *cut)
            }
            FileContent::Pem(blocks) => {
                let mut out = String::new();
                for block in blocks {
                    let label = match &block.label {
                        Ok(n) => LABELS[*n as usize % LABELS.len()].to_string(),
                        Err(any) => any.clone(),
                    };
                    let der = match &block.der {
                        Ok((which, edits, cut)) => edit(&fixture_der(*which), edits, *cut),
                        Err(any) => any.clone(),
                    };
                    out += &format!("-----BEGIN {label}-----\n");
                    let b64 = registrar_fuzz::base64_encode(&der);
                    for line in b64.as_bytes().chunks(64) {
                        out += std::str::from_utf8(line).unwrap();
                        out += "\n";
                    }
                    out += &format!("-----END {label}-----\n");
                }
                out.into_bytes()
            }
            FileContent::Raw(bytes) => bytes.clone(),
        }
    }
}

/// Writes the files (in a directory of this process) and names them in the settings.
/// Returns the key file's content.
fn write_tls_files(input: &Input, settings: &mut Settings) -> Option<Vec<u8>> {
    // scripts/fuzz.sh names a directory it removes afterwards; else one of this process. In
    // memory when the machine has /dev/shm: a file write is a large part of a run.
    static DIR: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let dir = std::env::var_os("REGISTRAR_FUZZ_FILES")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| {
                let shm = std::path::Path::new("/dev/shm");
                let base = if shm.is_dir() {
                    shm.to_path_buf()
                } else {
                    std::env::temp_dir()
                };
                base.join(format!("registrar-fuzz-{}", std::process::id()))
            });
        std::fs::create_dir_all(&dir).unwrap();
        dir
    });
    let mut key = None;
    for (setting, file, content) in [
        ("REGISTRY_CA_FILE", "ca.pem", &input.ca_file),
        ("REGISTRY_CLIENT_CERT", "cert.pem", &input.client_cert),
        ("REGISTRY_CLIENT_KEY", "key.pem", &input.client_key),
    ] {
        let Some(content) = content else { continue };
        let path = dir.join(file);
        let bytes = content.render();
        std::fs::write(&path, &bytes).unwrap();
        settings.set(setting, path.to_str().unwrap()).unwrap();
        if setting == "REGISTRY_CLIENT_KEY" {
            key = Some(bytes);
        }
    }
    key
}

/// The key file's secret: its lines that look like key material (base64 only, at least 24
/// characters), except the ones that also occur in another value the user gave (`elsewhere`,
/// compared without case, as names are upper-cased), which a message may quote for its own
/// reasons. (Looser rules gave false alarms: a fuzzed key line equal to the fuzzed REGISTRY_URL
/// that the refusal quotes, and one equal to a piece of the library's own message text.)
fn key_secrets(key: &[u8], elsewhere: &[String]) -> Vec<String> {
    let elsewhere: Vec<String> = elsewhere.iter().map(|v| v.to_ascii_lowercase()).collect();
    String::from_utf8_lossy(key)
        .lines()
        .map(str::trim)
        .filter(|l| {
            l.len() >= 24
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
        })
        .filter(|l| {
            let l = l.to_ascii_lowercase();
            !elsewhere.iter().any(|value| value.contains(&l))
        })
        .map(str::to_string)
        .collect()
}

fn assert_no_secret(output: &str, secrets: &[String]) {
    for secret in secrets {
        assert!(
            !output.contains(secret.as_str()),
            "the private key's content ({secret:?}) is shown: {output}"
        );
    }
}

#[derive(Arbitrary, Debug)]
struct UrlParts {
    https: bool,
    user_info: Option<(String, Option<String>)>,
    host: Host,
    port: Option<u16>,
    path: Vec<String>,
    seed_form: bool,
    trailing_slash: bool,
}

#[derive(Arbitrary, Debug)]
enum Host {
    Loopback,
    Name(String),
    V6,
}

#[derive(Arbitrary, Debug)]
enum Value {
    Text(String),
    Number(f64),
    Integer(i64),
    /// A metadata list `k=v,...` from pairs.
    Pairs(Vec<(String, String)>),
}

/// Percent-encodes everything but unreserved characters (what a careful user writes).
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

impl UrlParts {
    fn render(&self) -> String {
        let mut s = String::from(if self.https { "https://" } else { "http://" });
        if let Some((user, password)) = &self.user_info {
            s += &encode(user);
            if let Some(p) = password {
                s += ":";
                s += &encode(p);
            }
            s += "@";
        }
        match &self.host {
            Host::Loopback => s += "127.0.0.1",
            Host::Name(n) => s += n,
            Host::V6 => s += "[::1]",
        }
        if let Some(p) = self.port {
            s += &format!(":{p}");
        }
        for segment in &self.path {
            s += "/";
            s += &encode(segment);
        }
        if self.seed_form {
            s += "/apps";
        }
        if self.trailing_slash {
            s += "/";
        }
        s
    }
}

fn host() -> HostDefaults {
    HostDefaults {
        hostname: || Some("fuzz-host".into()),
        ip_address: || Some("10.0.0.1".into()),
    }
}

fuzz_target!(|input: Input| {
    registrar_fuzz::small_trust_store();
    let mut settings = Settings::new();
    let url = match &input.raw_url {
        Some(raw) => raw.clone(),
        None => input
            .urls
            .iter()
            .map(UrlParts::render)
            .collect::<Vec<_>>()
            .join(","),
    };
    let mut expected: Vec<(&'static str, String)> = Vec::new();
    settings.set("REGISTRY_URL", &url).unwrap();
    expected.push(("REGISTRY_URL", url.clone()));
    for (index, value) in &input.values {
        let key = SETTINGS[*index as usize % SETTINGS.len()].0;
        if registrar_fuzz::FILE_SETTINGS.contains(&key) {
            continue;
        }
        let text = match value {
            Value::Text(t) => t.clone(),
            Value::Number(n) => n.to_string(),
            Value::Integer(n) => n.to_string(),
            Value::Pairs(pairs) => pairs
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(","),
        };
        // Keys are case-insensitive, with or without the prefix.
        let spelled = if text.len() % 2 == 0 {
            key.to_string()
        } else {
            key[9..].to_lowercase()
        };
        settings
            .set(&spelled, &text)
            .expect("a known key is accepted");
        expected.retain(|(k, _)| *k != key);
        expected.push((key, text));
    }
    let key = write_tls_files(&input, &mut settings);
    // Everything else the user gave may be quoted by a message (a refused REGISTRY_URL is), so
    // a key line that is also part of another value proves nothing when it shows up.
    let mut elsewhere: Vec<String> = expected.iter().map(|(_, value)| value.clone()).collect();
    for file_setting in registrar_fuzz::FILE_SETTINGS {
        if let Some(path) = settings.get(file_setting).unwrap() {
            elsewhere.push(path.to_string());
        }
    }
    for content in [&input.ca_file, &input.client_cert].into_iter().flatten() {
        elsewhere.push(String::from_utf8_lossy(&content.render()).into_owned());
    }
    let secrets = key
        .as_deref()
        .map(|key| key_secrets(key, &elsewhere))
        .unwrap_or_default();
    // What was set is what is read back (the password never is).
    for (key, value) in &expected {
        let read = settings.get(key).unwrap();
        if *key == "REGISTRY_PASSWORD" {
            assert_eq!(read, None);
        } else if value.is_empty() {
            assert_eq!(read, None);
        } else {
            assert_eq!(read, Some(value.as_str()));
        }
    }

    let mut config_error = None;
    match Config::from_settings_with(&settings, &host()) {
        Ok(config) => {
            assert_no_secret(&format!("{config:?}"), &secrets);
            check_service_urls(&config.service_urls, &settings);
            assert!(!config.app_name.is_empty());
            assert_eq!(config.app_name, config.app_name.to_ascii_uppercase());
            assert!(config.port != 0 && config.secure_port != Some(0));
            for key in config.metadata.keys() {
                assert!(
                    check_metadata_key(key).is_ok(),
                    "bad metadata key {key:?} accepted"
                );
            }
            for d in [
                config.heartbeat_interval,
                config.timeout,
                config.fetch_interval,
            ] {
                assert!(
                    d.as_secs_f64() >= 0.009 && d.as_secs_f64() <= 86_400.0,
                    "{d:?}"
                );
            }
            assert!(u64::from(config.lease_duration_secs) > config.heartbeat_interval.as_secs());
            // Names travel as one path segment each: the server must see exactly them.
            let base = url::Url::parse(&config.service_urls[0].base()).unwrap();
            // A base the server itself cannot read (the user's own %2F, say) proves nothing.
            let Ok((mut base_segments, _)) = server_view(base.as_str()) else {
                return;
            };
            assert_eq!(base_segments.pop().as_deref(), Some(""), "base ends in /");
            let target =
                paths::heartbeat(&config.app_name, &config.instance_id, InstanceStatus::Up, 1);
            let sent = paths::join(&base, &target);
            let (segments, _) = server_view(sent.as_str())
                .unwrap_or_else(|why| panic!("{sent}: {why} ({:?})", config.instance_id));
            let mut want = base_segments;
            want.extend([
                "apps".to_string(),
                config.app_name.clone(),
                config.instance_id.clone(),
            ]);
            assert_eq!(
                segments, want,
                "the server sees another resource than {target}"
            );
        }
        Err(e) => {
            let message = e.to_string();
            assert_no_secret(&format!("{message} {e:?}"), &secrets);
            assert!(message.starts_with("invalid configuration: "), "{message}");
            assert!(
                message.contains("REGISTRY_"),
                "the setting is not named: {message}"
            );
            config_error = Some(message);
        }
    }
    let config_error = config_error.unwrap_or_default();
    match DiscoveryConfig::from_settings(&settings) {
        Ok(discovery) => {
            assert_no_secret(&format!("{discovery:?}"), &secrets);
            check_service_urls(&discovery.service_urls, &settings)
        }
        Err(e) => {
            assert_no_secret(&format!("{e} {e:?}"), &secrets);
            assert!(e.to_string().contains("REGISTRY_"), "{e}")
        }
    }
    let named_a_file = registrar_fuzz::FILE_SETTINGS
        .iter()
        .any(|key| config_error.contains(key));
    if !named_a_file {
        check_file_errors(&input, &settings);
    }
});

fn check_service_urls(urls: &[registrar::config::ServiceUrl], settings: &Settings) {
    assert!(!urls.is_empty());
    let user_set = settings.get("REGISTRY_USER").unwrap().is_some();
    for service in urls {
        let base = url::Url::parse(&service.base())
            .unwrap_or_else(|e| panic!("base {:?} does not parse: {e}", service.base()));
        assert_eq!(base.as_str(), service.base(), "base not in normal form");
        assert!(matches!(base.scheme(), "http" | "https"));
        assert!(base.host_str().is_some_and(|h| !h.is_empty()));
        assert!(
            base.username().is_empty() && base.password().is_none(),
            "user-info kept"
        );
        assert!(base.query().is_none() && base.fragment().is_none());
        assert!(
            base.path().ends_with('/'),
            "base {} does not end in /",
            service.base()
        );
        assert!(
            !base.path().ends_with("/apps/"),
            "seed form kept: {}",
            service.base()
        );
        if user_set {
            let creds = service.credentials.as_ref().expect("REGISTRY_USER given");
            assert_eq!(
                Some(creds.user.as_str()),
                settings.get("REGISTRY_USER").unwrap()
            );
        }
        if let Some(creds) = &service.credentials {
            assert!(!creds.user.is_empty());
        }
    }
}

/// A file that is not what its setting needs is refused by a message naming that setting.
/// Checked on the TLS settings alone (with a plain http URL), so no other problem can be the
/// one reported (only needed when the full configuration's message named no file setting).
fn check_file_errors(input: &Input, settings: &Settings) {
    if input.ca_file.is_none() && input.client_cert.is_none() && input.client_key.is_none() {
        return;
    }
    let mut alone = Settings::new();
    alone
        .set("REGISTRY_URL", "http://127.0.0.1:8761/eureka/")
        .unwrap();
    alone.set("REGISTRY_APP_NAME", "fuzz").unwrap();
    for key in registrar_fuzz::FILE_SETTINGS {
        if let Some(path) = settings.get(key).unwrap() {
            alone.set(key, path).unwrap();
        }
    }
    let Err(e) = Config::from_settings_with(&alone, &host()) else {
        return;
    };
    let message = e.to_string();
    assert!(
        registrar_fuzz::FILE_SETTINGS
            .iter()
            .any(|key| message.contains(key)),
        "a TLS file refused without naming its setting: {message}"
    );
}
