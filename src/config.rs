//! Configuration: the `REGISTRY_*` settings, where they come from, and their validation.
//!
//! Settings are strings keyed by the environment variable names (`REGISTRY_URL`, ...), so the
//! environment, the C API (`registrar_config_set`) and the wrappers all share one parser and one
//! set of messages. Precedence, lowest to highest: built-in defaults, then the environment (only
//! when the settings were loaded with [`Settings::from_env`]), then values set explicitly.
//! Every message names the setting and what is wrong with its value; passwords are never echoed.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::eureka::Tls;

/// Every setting registrar knows, with a one-line description (used in docs and messages).
/// The ONE list: the C API serves it (`registrar_setting_name`/`_description`), the Python
/// and Go wrappers derive their lists from that, and `scripts/check-parity.py` checks the
/// README table and every wrapper against it. Adding a setting here is all a wrapper needs.
pub const SETTINGS: &[(&str, &str)] = &[
    (
        "REGISTRY_TYPE",
        "registry kind; only NETFLIX_EUREKA (the default)",
    ),
    (
        "REGISTRY_URL",
        "comma-separated Eureka service URLs, e.g. http://localhost:8761/eureka/",
    ),
    ("REGISTRY_USER", "HTTP basic auth user (sent preemptively)"),
    ("REGISTRY_PASSWORD", "HTTP basic auth password"),
    (
        "REGISTRY_CA_FILE",
        "PEM file of extra CA certificates trusted for the registry (beside the OS store, SSL_CERT_FILE, SSL_CERT_DIR)",
    ),
    (
        "REGISTRY_CLIENT_CERT",
        "PEM client certificate chain for mutual TLS (with REGISTRY_CLIENT_KEY)",
    ),
    (
        "REGISTRY_CLIENT_KEY",
        "PEM private key of REGISTRY_CLIENT_CERT: PKCS#8, RSA or EC, unencrypted",
    ),
    (
        "REGISTRY_APP_NAME",
        "application name (required); registered upper-case",
    ),
    (
        "REGISTRY_INSTANCE_ID",
        "instance id; default {hostname}:{app}:{port}",
    ),
    ("REGISTRY_HOSTNAME", "host name; default the OS host name"),
    (
        "REGISTRY_IP_ADDRESS",
        "IP address; default the first non-loopback IPv4 of an up interface",
    ),
    ("REGISTRY_PORT", "HTTP port; default 8080"),
    (
        "REGISTRY_SECURE_PORT",
        "HTTPS port; unset means the secure port is disabled",
    ),
    (
        "REGISTRY_VIP_ADDRESS",
        "VIP address; default the app name in lower case",
    ),
    (
        "REGISTRY_SECURE_VIP_ADDRESS",
        "secure VIP address; default the app name in lower case",
    ),
    (
        "REGISTRY_HOME_PAGE_URL",
        "home page URL; default http://{hostname}:{port}/",
    ),
    (
        "REGISTRY_STATUS_PAGE_URL",
        "status page URL; default http://{hostname}:{port}/status",
    ),
    (
        "REGISTRY_HEALTH_CHECK_URL",
        "health check URL; default http://{hostname}:{port}/healthcheck",
    ),
    ("REGISTRY_METADATA", "instance metadata as k=v,k2=v2"),
    (
        "REGISTRY_HEARTBEAT_INTERVAL",
        "seconds between heartbeats (fractions allowed); default 30",
    ),
    (
        "REGISTRY_LEASE_DURATION",
        "seconds the registry keeps an instance without heartbeat; default 90",
    ),
    (
        "REGISTRY_TIMEOUT",
        "HTTP timeout per request in seconds (fractions allowed); default 5",
    ),
    (
        "REGISTRY_FETCH_INTERVAL",
        "discovery: seconds between registry refreshes (fractions allowed); default 30",
    ),
    (
        "REGISTRY_HEALTH_URL",
        "registrar command: local http:// URL polled for health, 2xx = healthy",
    ),
    (
        "REGISTRY_HEALTH_INTERVAL",
        "registrar command: seconds between health checks (fractions allowed); default 10",
    ),
    (
        "REGISTRY_HEALTH_THRESHOLD",
        "registrar command: failed (passed) checks in a row that turn DOWN (UP); default 3",
    ),
    (
        "REGISTRY_DRAIN_SECONDS",
        "registrar command: seconds registered as DOWN before the DELETE on stop; default 0",
    ),
];

const DEFAULT_PORT: u16 = 8080;
const DEFAULT_HEARTBEAT_SECS: f64 = 30.0;
const DEFAULT_LEASE_SECS: u32 = 90;
const DEFAULT_TIMEOUT_SECS: f64 = 5.0;
const DEFAULT_FETCH_SECS: f64 = 30.0;

/// Raw settings before validation: canonical key -> value.
#[derive(Clone, Default)]
pub struct Settings {
    values: BTreeMap<&'static str, String>,
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (k, v) in &self.values {
            if *k == "REGISTRY_PASSWORD" {
                map.entry(k, &"***");
            } else if *k == "REGISTRY_URL" {
                map.entry(k, &redact_userinfo(v));
            } else {
                map.entry(k, v);
            }
        }
        map.finish()
    }
}

impl Settings {
    /// Empty settings: only defaults and what is set explicitly.
    pub fn new() -> Self {
        Self::default()
    }

    /// Settings loaded from the process environment (`REGISTRY_*`). Empty variables count as unset.
    pub fn from_env() -> Self {
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    /// Settings loaded from any key -> value lookup (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let mut settings = Self::new();
        for (key, _) in SETTINGS {
            if let Some(value) = lookup(key) {
                if !value.trim().is_empty() {
                    settings.values.insert(key, value);
                }
            }
        }
        settings
    }

    /// Sets one value, overriding the environment. `key` is a setting name, case-insensitive,
    /// with or without the `REGISTRY_` prefix (`"url"`, `"app_name"`, `"REGISTRY_PORT"`).
    /// An empty value unsets the key (the default applies again).
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        let canonical = canonical_key(key)?;
        if value.is_empty() {
            self.values.remove(canonical);
        } else {
            self.values.insert(canonical, value.to_string());
        }
        Ok(())
    }

    /// The current raw value of a setting, if any (the password is never returned).
    pub fn get(&self, key: &str) -> Result<Option<&str>> {
        let canonical = canonical_key(key)?;
        if canonical == "REGISTRY_PASSWORD" {
            return Ok(None);
        }
        Ok(self.values.get(canonical).map(String::as_str))
    }

    /// The trimmed value of a canonical key, None when unset or blank.
    pub(crate) fn value(&self, key: &'static str) -> Option<&str> {
        self.values
            .get(key)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }
}

/// Maps `url`, `app_name`, `REGISTRY_URL`, `registry_url` to the canonical name.
fn canonical_key(key: &str) -> Result<&'static str> {
    let upper = key.trim().to_ascii_uppercase();
    let wanted = if upper.starts_with("REGISTRY_") {
        upper
    } else {
        format!("REGISTRY_{upper}")
    };
    SETTINGS
        .iter()
        .map(|(k, _)| *k)
        .find(|k| *k == wanted)
        .ok_or_else(|| {
            let known: Vec<&str> = SETTINGS.iter().map(|(k, _)| *k).collect();
            Error::InvalidConfig(format!(
                "unknown setting '{key}'; known settings: {}",
                known.join(", ")
            ))
        })
}

/// Basic-auth credentials. `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"***")
            .finish()
    }
}

/// One Eureka server: its base URL (always ending in `/`, without `apps/` and without
/// user-info) and the credentials to send to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceUrl {
    pub base: String,
    pub credentials: Option<Credentials>,
}

/// A validated configuration: everything the agent needs, with defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub service_urls: Vec<ServiceUrl>,
    /// REGISTRY_CA_FILE, REGISTRY_CLIENT_CERT, REGISTRY_CLIENT_KEY, loaded and checked.
    pub tls: Tls,
    /// Upper-case, as Eureka stores it.
    pub app_name: String,
    pub instance_id: String,
    pub hostname: String,
    pub ip_address: String,
    pub port: u16,
    pub secure_port: Option<u16>,
    pub vip_address: String,
    pub secure_vip_address: String,
    pub home_page_url: String,
    pub status_page_url: String,
    pub health_check_url: String,
    pub metadata: BTreeMap<String, String>,
    pub heartbeat_interval: Duration,
    pub lease_duration_secs: u32,
    pub timeout: Duration,
    /// Discovery only: how often the registry cache is refreshed.
    pub fetch_interval: Duration,
}

/// Where the OS-derived defaults come from; injectable so tests need no real network.
pub struct HostDefaults {
    pub hostname: fn() -> Option<String>,
    pub ip_address: fn() -> Option<String>,
}

impl HostDefaults {
    /// The real host: OS host name and interface addresses.
    pub fn system() -> Self {
        HostDefaults {
            hostname: crate::ffi::os::hostname,
            ip_address: crate::ffi::os::first_ipv4,
        }
    }
}

impl Config {
    /// Loads and validates the configuration from the environment alone.
    pub fn from_env() -> Result<Config> {
        Config::from_settings(&Settings::from_env())
    }

    /// Validates settings, filling defaults from the real host.
    pub fn from_settings(settings: &Settings) -> Result<Config> {
        Config::from_settings_with(settings, &HostDefaults::system())
    }

    /// Validates settings with the given host defaults.
    pub fn from_settings_with(settings: &Settings, host: &HostDefaults) -> Result<Config> {
        if let Some(kind) = settings.value("REGISTRY_TYPE") {
            if !kind.eq_ignore_ascii_case("NETFLIX_EUREKA") {
                return Err(Error::InvalidConfig(format!(
                    "REGISTRY_TYPE '{kind}' is not supported; accepted values: NETFLIX_EUREKA"
                )));
            }
        }
        let credentials = parse_credentials(settings)?;
        let service_urls =
            parse_service_urls(settings.value("REGISTRY_URL"), credentials.as_ref())?;
        let tls = Tls::from_settings(settings, uses_https(&service_urls))?;

        let app = settings.value("REGISTRY_APP_NAME").ok_or_else(|| {
            Error::InvalidConfig(
                "REGISTRY_APP_NAME is not set; name the application to register".into(),
            )
        })?;
        check_path_segment("REGISTRY_APP_NAME", app)?;
        let app_name = app.to_ascii_uppercase();

        let hostname = match settings.value("REGISTRY_HOSTNAME") {
            Some(h) => h.to_string(),
            None => (host.hostname)().ok_or_else(|| {
                Error::InvalidConfig(
                    "REGISTRY_HOSTNAME is not set and the OS host name could not be read".into(),
                )
            })?,
        };
        let ip_address = match settings.value("REGISTRY_IP_ADDRESS") {
            Some(ip) => {
                ip.parse::<IpAddr>().map_err(|_| {
                    Error::InvalidConfig(format!("REGISTRY_IP_ADDRESS '{ip}' is not an IP address"))
                })?;
                ip.to_string()
            }
            None => (host.ip_address)().ok_or_else(|| {
                Error::InvalidConfig(
                    "REGISTRY_IP_ADDRESS is not set and no network interface that is up has a \
                     non-loopback IPv4 address"
                        .into(),
                )
            })?,
        };
        let port = match settings.value("REGISTRY_PORT") {
            Some(p) => parse_port("REGISTRY_PORT", p)?,
            None => DEFAULT_PORT,
        };
        let secure_port = settings
            .value("REGISTRY_SECURE_PORT")
            .map(|p| parse_port("REGISTRY_SECURE_PORT", p))
            .transpose()?;

        let instance_id = match settings.value("REGISTRY_INSTANCE_ID") {
            Some(id) => id.to_string(),
            None => format!("{hostname}:{}:{port}", app.to_ascii_lowercase()),
        };
        check_path_segment("REGISTRY_INSTANCE_ID", &instance_id)?;

        let default_vip = app.to_ascii_lowercase();
        let vip_address = settings
            .value("REGISTRY_VIP_ADDRESS")
            .unwrap_or(&default_vip)
            .to_string();
        let secure_vip_address = settings
            .value("REGISTRY_SECURE_VIP_ADDRESS")
            .unwrap_or(&default_vip)
            .to_string();

        let url_host = if hostname.contains(':') {
            format!("[{hostname}]")
        } else {
            hostname.clone()
        };
        let home_page_url = settings
            .value("REGISTRY_HOME_PAGE_URL")
            .map(str::to_string)
            .unwrap_or_else(|| format!("http://{url_host}:{port}/"));
        let status_page_url = settings
            .value("REGISTRY_STATUS_PAGE_URL")
            .map(str::to_string)
            .unwrap_or_else(|| format!("http://{url_host}:{port}/status"));
        let health_check_url = settings
            .value("REGISTRY_HEALTH_CHECK_URL")
            .map(str::to_string)
            .unwrap_or_else(|| format!("http://{url_host}:{port}/healthcheck"));

        let metadata = match settings.value("REGISTRY_METADATA") {
            Some(m) => parse_metadata(m)?,
            None => BTreeMap::new(),
        };

        let heartbeat_interval = match settings.value("REGISTRY_HEARTBEAT_INTERVAL") {
            Some(v) => parse_seconds("REGISTRY_HEARTBEAT_INTERVAL", v)?,
            None => Duration::from_secs_f64(DEFAULT_HEARTBEAT_SECS),
        };
        let lease_duration_secs = match settings.value("REGISTRY_LEASE_DURATION") {
            Some(v) => v.parse::<u32>().ok().filter(|s| *s >= 1).ok_or_else(|| {
                Error::InvalidConfig(format!(
                    "REGISTRY_LEASE_DURATION '{v}' is not a whole number of seconds of at least 1"
                ))
            })?,
            None => DEFAULT_LEASE_SECS,
        };
        if Duration::from_secs(lease_duration_secs.into()) <= heartbeat_interval {
            return Err(Error::InvalidConfig(format!(
                "REGISTRY_LEASE_DURATION ({lease_duration_secs} s) must be longer than \
                 REGISTRY_HEARTBEAT_INTERVAL ({} s), or the registry drops the instance between heartbeats",
                heartbeat_interval.as_secs_f64()
            )));
        }
        let timeout = match settings.value("REGISTRY_TIMEOUT") {
            Some(v) => parse_seconds("REGISTRY_TIMEOUT", v)?,
            None => Duration::from_secs_f64(DEFAULT_TIMEOUT_SECS),
        };

        let fetch_interval = match settings.value("REGISTRY_FETCH_INTERVAL") {
            Some(v) => parse_seconds("REGISTRY_FETCH_INTERVAL", v)?,
            None => Duration::from_secs_f64(DEFAULT_FETCH_SECS),
        };

        Ok(Config {
            service_urls,
            tls,
            app_name,
            instance_id,
            hostname,
            ip_address,
            port,
            secure_port,
            vip_address,
            secure_vip_address,
            home_page_url,
            status_page_url,
            health_check_url,
            metadata,
            heartbeat_interval,
            lease_duration_secs,
            timeout,
            fetch_interval,
        })
    }
}

pub(crate) fn parse_credentials(settings: &Settings) -> Result<Option<Credentials>> {
    let user = settings
        .values
        .get("REGISTRY_USER")
        .map(String::as_str)
        .filter(|u| !u.is_empty());
    let password = settings
        .values
        .get("REGISTRY_PASSWORD")
        .cloned()
        .unwrap_or_default();
    match user {
        None if !password.is_empty() => Err(Error::InvalidConfig(
            "REGISTRY_PASSWORD is set but REGISTRY_USER is not; set both for basic auth".into(),
        )),
        None => Ok(None),
        Some(u) if u.contains(':') => Err(Error::InvalidConfig(format!(
            "REGISTRY_USER '{u}' contains ':', which HTTP basic auth cannot carry"
        ))),
        Some(u) => Ok(Some(Credentials {
            user: u.to_string(),
            password,
        })),
    }
}

pub(crate) fn parse_service_urls(
    raw: Option<&str>,
    credentials: Option<&Credentials>,
) -> Result<Vec<ServiceUrl>> {
    let raw = raw.ok_or_else(|| {
        Error::InvalidConfig(
            "REGISTRY_URL is not set; expected the Eureka service URL, e.g. http://localhost:8761/eureka/"
                .into(),
        )
    })?;
    let mut urls = Vec::new();
    for (index, entry) in raw.split(',').map(str::trim).enumerate() {
        if entry.is_empty() {
            return Err(Error::InvalidConfig(format!(
                "REGISTRY_URL entry {} is empty (check the commas)",
                index + 1
            )));
        }
        urls.push(parse_service_url(entry, credentials)?);
    }
    Ok(urls)
}

/// Whether any of the servers is reached over https (then the OS trust store is needed).
pub(crate) fn uses_https(urls: &[ServiceUrl]) -> bool {
    urls.iter().any(|u| u.base.starts_with("https://"))
}

/// Accepts `http://host:8761/eureka/`, the seed's `http://host:8761/eureka/apps/`, with or
/// without trailing slash, optionally with `user:password@`.
fn parse_service_url(entry: &str, credentials: Option<&Credentials>) -> Result<ServiceUrl> {
    let shown = redact_userinfo(entry);
    let mut url = reqwest::Url::parse(entry).map_err(|e| {
        Error::InvalidConfig(format!("REGISTRY_URL '{shown}' is not a valid URL: {e}"))
    })?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(Error::InvalidConfig(format!(
            "REGISTRY_URL '{shown}' must start with http:// or https://"
        )));
    }
    if url.host_str().map_or(true, str::is_empty) {
        return Err(Error::InvalidConfig(format!(
            "REGISTRY_URL '{shown}' has no host"
        )));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(Error::InvalidConfig(format!(
            "REGISTRY_URL '{shown}' must not have a query or fragment"
        )));
    }
    let from_url = if url.username().is_empty() {
        None
    } else {
        Some(Credentials {
            user: percent_decode(url.username()),
            password: percent_decode(url.password().unwrap_or("")),
        })
    };
    // Removing user-info cannot fail for http(s) URLs with a host.
    let _ = url.set_username("");
    let _ = url.set_password(None);

    let mut path = url.path().trim_end_matches('/').to_string();
    if path.ends_with("/apps") {
        path.truncate(path.len() - "/apps".len());
    }
    path.push('/');
    url.set_path(&path);
    Ok(ServiceUrl {
        base: url.to_string(),
        // Explicit REGISTRY_USER/REGISTRY_PASSWORD win over user-info in the URL.
        credentials: credentials.cloned().or(from_url),
    })
}

/// Hides `user:password@` in a URL-ish string so it can appear in a message.
pub fn redact_userinfo(s: &str) -> String {
    let Some(scheme_end) = s.find("://") else {
        return s.to_string();
    };
    let rest = &s[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{}***@{}", &s[..scheme_end + 3], &rest[at + 1..]),
        None => s.to_string(),
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_port(key: &str, value: &str) -> Result<u16> {
    value
        .parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| {
            Error::InvalidConfig(format!("{key} '{value}' is not a port number (1-65535)"))
        })
}

pub(crate) fn parse_seconds(key: &str, value: &str) -> Result<Duration> {
    let secs: f64 = value
        .parse()
        .map_err(|_| Error::InvalidConfig(format!("{key} '{value}' is not a number of seconds")))?;
    if !(0.01..=86_400.0).contains(&secs) {
        return Err(Error::InvalidConfig(format!(
            "{key} '{value}' is out of range (0.01 to 86400 seconds)"
        )));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// App names and instance ids travel as URL path segments; refuse what cannot.
fn check_path_segment(key: &str, value: &str) -> Result<()> {
    if value.is_empty()
        || value
            .chars()
            .any(|c| c == '/' || c == '?' || c == '#' || c.is_whitespace() || c.is_control())
    {
        return Err(Error::InvalidConfig(format!(
            "{key} '{value}' must be non-empty and contain no '/', '?', '#' or whitespace"
        )));
    }
    Ok(())
}

/// Parses `k=v,k2=v2`. Keys must be valid XML element names, because Eureka also serves
/// metadata as XML elements.
pub fn parse_metadata(raw: &str) -> Result<BTreeMap<String, String>> {
    let mut map = BTreeMap::new();
    for pair in raw.split(',') {
        let pair = pair.trim();
        if pair.is_empty() {
            continue;
        }
        let (key, value) = pair.split_once('=').ok_or_else(|| {
            Error::InvalidConfig(format!(
                "REGISTRY_METADATA entry '{pair}' is not of the form key=value"
            ))
        })?;
        let key = key.trim();
        check_metadata_key(key)
            .map_err(|why| Error::InvalidConfig(format!("REGISTRY_METADATA {why}")))?;
        map.insert(key.to_string(), value.trim().to_string());
    }
    Ok(map)
}

/// Checks a metadata key; the error text starts with "key '...'" so callers can prefix it.
pub fn check_metadata_key(key: &str) -> std::result::Result<(), String> {
    let mut chars = key.chars();
    let valid_first = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    let valid_rest = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if !valid_first || !valid_rest {
        return Err(format!(
            "key '{key}' is not valid: use letters, digits, '_', '-', '.', starting with a letter or '_'"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> HostDefaults {
        HostDefaults {
            hostname: || Some("myhost".into()),
            ip_address: || Some("10.1.2.3".into()),
        }
    }

    fn settings(pairs: &[(&str, &str)]) -> Settings {
        let mut s = Settings::new();
        for (k, v) in pairs {
            s.set(k, v).unwrap();
        }
        s
    }

    fn config(pairs: &[(&str, &str)]) -> Result<Config> {
        Config::from_settings_with(&settings(pairs), &host())
    }

    fn err(pairs: &[(&str, &str)]) -> String {
        config(pairs).unwrap_err().to_string()
    }

    const MIN: [(&str, &str); 2] = [
        ("REGISTRY_URL", "http://localhost:8761/eureka/"),
        ("app_name", "my_awsome_go_ms"),
    ];

    #[test]
    fn defaults_follow_the_seed() {
        let c = config(&MIN).unwrap();
        assert_eq!(c.app_name, "MY_AWSOME_GO_MS");
        assert_eq!(c.instance_id, "myhost:my_awsome_go_ms:8080");
        assert_eq!(c.hostname, "myhost");
        assert_eq!(c.ip_address, "10.1.2.3");
        assert_eq!(c.port, 8080);
        assert_eq!(c.secure_port, None);
        assert_eq!(c.vip_address, "my_awsome_go_ms");
        assert_eq!(c.home_page_url, "http://myhost:8080/");
        assert_eq!(c.status_page_url, "http://myhost:8080/status");
        assert_eq!(c.health_check_url, "http://myhost:8080/healthcheck");
        assert_eq!(c.heartbeat_interval, Duration::from_secs(30));
        assert_eq!(c.lease_duration_secs, 90);
        assert_eq!(c.timeout, Duration::from_secs(5));
        assert_eq!(
            c.service_urls,
            vec![ServiceUrl {
                base: "http://localhost:8761/eureka/".into(),
                credentials: None
            }]
        );
    }

    #[test]
    fn both_url_forms_are_accepted_and_normalised() {
        for raw in [
            "http://localhost:8761/eureka/apps/",
            "http://localhost:8761/eureka/apps",
            "http://localhost:8761/eureka",
            "http://localhost:8761/eureka/",
        ] {
            let c = config(&[("url", raw), ("app_name", "a")]).unwrap();
            assert_eq!(
                c.service_urls[0].base, "http://localhost:8761/eureka/",
                "{raw}"
            );
        }
        let c = config(&[
            ("url", "http://a:1/eureka/, https://b:2/eureka/v2/apps/"),
            ("app_name", "a"),
        ])
        .unwrap();
        assert_eq!(c.service_urls.len(), 2);
        assert_eq!(c.service_urls[1].base, "https://b:2/eureka/v2/");
    }

    #[test]
    fn userinfo_is_decoded_split_and_removed_from_the_url() {
        let c = config(&[
            ("url", "http://us%40er:p%3Ass:word@h:1/eureka/"),
            ("app_name", "a"),
        ])
        .unwrap();
        assert_eq!(c.service_urls[0].base, "http://h:1/eureka/");
        let creds = c.service_urls[0].credentials.clone().unwrap();
        assert_eq!(creds.user, "us@er");
        assert_eq!(creds.password, "p:ss:word");
        let c = config(&[
            ("url", "http://x:y@h:1/eureka/"),
            ("app_name", "a"),
            ("user", "u"),
            ("password", "pw"),
        ])
        .unwrap();
        assert_eq!(
            c.service_urls[0].credentials,
            Some(Credentials {
                user: "u".into(),
                password: "pw".into()
            })
        );
    }

    #[test]
    fn mistakes_name_the_setting_and_the_problem() {
        assert!(err(&[("app_name", "a")]).contains("REGISTRY_URL is not set"));
        assert!(err(&[("url", "localhost:8761"), ("app_name", "a")]).contains("REGISTRY_URL"));
        assert!(
            err(&[("url", "ftp://h/eureka"), ("app_name", "a")]).contains("http:// or https://")
        );
        assert!(err(&[("url", "http://h/eureka,"), ("app_name", "a")]).contains("entry 2 is empty"));
        assert!(err(&[("url", "http://h/")]).contains("REGISTRY_APP_NAME is not set"));
        assert!(
            err(&[("url", "http://h/"), ("app_name", "a/b")]).contains("REGISTRY_APP_NAME 'a/b'")
        );
        let e = err(&[MIN[0], MIN[1], ("port", "70000")]);
        assert!(e.contains("REGISTRY_PORT '70000'"), "{e}");
        assert!(err(&[MIN[0], MIN[1], ("port", "0")]).contains("REGISTRY_PORT"));
        assert!(err(&[MIN[0], MIN[1], ("secure_port", "x")]).contains("REGISTRY_SECURE_PORT 'x'"));
        let e = err(&[MIN[0], MIN[1], ("type", "consul")]);
        assert!(
            e.contains("REGISTRY_TYPE 'consul'") && e.contains("NETFLIX_EUREKA"),
            "{e}"
        );
        assert!(
            err(&[MIN[0], MIN[1], ("metadata", "a=1,b")]).contains("REGISTRY_METADATA entry 'b'")
        );
        assert!(err(&[MIN[0], MIN[1], ("metadata", "1x=1")]).contains("REGISTRY_METADATA key '1x'"));
        assert!(err(&[MIN[0], MIN[1], ("heartbeat_interval", "fast")])
            .contains("REGISTRY_HEARTBEAT_INTERVAL 'fast'"));
        assert!(err(&[MIN[0], MIN[1], ("heartbeat_interval", "-1")]).contains("out of range"));
        assert!(err(&[
            MIN[0],
            MIN[1],
            ("lease_duration", "2"),
            ("heartbeat_interval", "5")
        ])
        .contains("must be longer"));
        assert!(err(&[MIN[0], MIN[1], ("ip_address", "999.1.1.1")]).contains("REGISTRY_IP_ADDRESS"));
        assert!(err(&[MIN[0], MIN[1], ("password", "pw")]).contains("REGISTRY_USER is not"));
        assert!(Settings::new()
            .set("colour", "red")
            .unwrap_err()
            .to_string()
            .contains("unknown setting 'colour'"));
    }

    #[test]
    fn passwords_never_appear_in_messages_or_debug() {
        let e = err(&[
            ("url", "http://user:s3cret@h:1/eureka/?x=1"),
            ("app_name", "a"),
        ]);
        assert!(!e.contains("s3cret"), "{e}");
        let e = err(&[("url", "not a url s3cret@"), ("app_name", "a")]);
        assert!(!e.contains("s3cret") || !e.contains("://"), "{e}");
        let s = settings(&[
            ("url", "http://user:s3cret@h:1/eureka/"),
            ("password", "s3cret"),
            ("user", "u"),
            ("app_name", "a"),
        ]);
        assert!(!format!("{s:?}").contains("s3cret"));
        let c = Config::from_settings_with(&s, &host()).unwrap();
        assert!(!format!("{c:?}").contains("s3cret"));
        assert_eq!(s.get("password").unwrap(), None);
    }

    #[test]
    fn metadata_and_fractions() {
        let c = config(&[
            MIN[0],
            MIN[1],
            ("metadata", " zone = a , version=1.2=3 ,"),
            ("heartbeat_interval", "0.25"),
            ("lease_duration", "2"),
            ("timeout", "1.5"),
        ])
        .unwrap();
        assert_eq!(c.metadata.get("zone").unwrap(), "a");
        assert_eq!(c.metadata.get("version").unwrap(), "1.2=3");
        assert_eq!(c.heartbeat_interval, Duration::from_millis(250));
        assert_eq!(c.timeout, Duration::from_millis(1500));
        let c = config(&[MIN[0], MIN[1], ("fetch_interval", "0.5")]).unwrap();
        assert_eq!(c.fetch_interval, Duration::from_millis(500));
        assert!(err(&[MIN[0], MIN[1], ("fetch_interval", "soon")])
            .contains("REGISTRY_FETCH_INTERVAL 'soon'"));
    }

    #[test]
    fn explicit_settings_override_the_environment() {
        let env = |k: &str| match k {
            "REGISTRY_URL" => Some("http://env:1/eureka/".to_string()),
            "REGISTRY_APP_NAME" => Some("fromenv".to_string()),
            "REGISTRY_PORT" => Some("   ".to_string()),
            _ => None,
        };
        let mut s = Settings::from_lookup(env);
        s.set("REGISTRY_APP_NAME", "explicit").unwrap();
        let c = Config::from_settings_with(&s, &host()).unwrap();
        assert_eq!(c.app_name, "EXPLICIT");
        assert_eq!(c.port, 8080);
        assert_eq!(c.service_urls[0].base, "http://env:1/eureka/");
    }

    #[test]
    fn redaction() {
        assert_eq!(redact_userinfo("http://u:p@h:1/x@y"), "http://***@h:1/x@y");
        assert_eq!(redact_userinfo("http://h:1/"), "http://h:1/");
    }
}
