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
use crate::health::{drain_duration, HealthConfig};

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
        "REGISTRY_MAX_RESPONSE_BYTES",
        "discovery: largest registry answer read, in bytes (after decompression); default 67108864 (64 MiB)",
    ),
    (
        "REGISTRY_HEALTH_URL",
        "local http:// URL polled for health (2xx = healthy); failing turns the instance DOWN",
    ),
    (
        "REGISTRY_HEALTH_INTERVAL",
        "seconds between health checks (fractions allowed); default 10",
    ),
    (
        "REGISTRY_HEALTH_THRESHOLD",
        "failed (passed) health checks in a row that turn DOWN (UP again); default 3",
    ),
    (
        "REGISTRY_DRAIN_SECONDS",
        "seconds stop keeps the instance registered as DOWN before the DELETE; default 0",
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
        write!(f, "Settings {{{}}}", self.describe())
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

    /// The settings that are set, for people:
    /// `REGISTRY_APP_NAME='orders', REGISTRY_URL='http://***@host:8761/eureka/'`. The password shows as `***`, user-info in every URL
    /// setting is redacted, long values are cut. Shared by Debug, the C API
    /// (`registrar_config_describe`) and the Python and Go wrappers.
    pub fn describe(&self) -> String {
        let shown: Vec<String> = self
            .values
            .iter()
            .map(|(key, value)| format!("{key}={}", quote(&displayable(key, value))))
            .collect();
        shown.join(", ")
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
                "unknown setting {}; known settings: {}",
                quote(key),
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
/// user-info) and the credentials to send to it. Parsed once, here: requests join their paths
/// onto `url` directly.
#[derive(Clone, PartialEq, Eq)]
pub struct ServiceUrl {
    pub url: reqwest::Url,
    pub credentials: Option<Credentials>,
}

/// The base is shown redacted too: `http://u:12/pass@h/` is a valid URL (host `u`, port 12,
/// path `/pass@h/`) that still holds what the user meant as a password (found by the
/// `redaction` fuzz target).
impl fmt::Debug for ServiceUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceUrl")
            .field("base", &redact_userinfo(self.base()))
            .field("credentials", &self.credentials)
            .finish()
    }
}

impl ServiceUrl {
    /// The base URL as text (no credentials in it).
    pub fn base(&self) -> &str {
        self.url.as_str()
    }
}

/// How to reach the registry, shared by registration and discovery: the servers (in failover
/// order), the time one request may take, and the transport settings that need an HTTP client
/// (connection pool) of their own: the TLS trust and client certificate ([`Tls`]). Handles
/// with equal TLS settings share one client, hence one pool of kept-alive connections per
/// process; timeouts and credentials are per request.
#[derive(Debug, Clone, PartialEq)]
pub struct Connection {
    pub service_urls: Vec<ServiceUrl>,
    pub timeout: Duration,
    pub tls: Tls,
    /// The largest registry fetch read (REGISTRY_MAX_RESPONSE_BYTES); smaller answers have a
    /// small fixed cap.
    pub max_response_bytes: usize,
}

/// REGISTRY_MAX_RESPONSE_BYTES by default: 64 MiB. A full fetch of a 10,000-instance registry
/// is about 10 MiB of JSON (bench/discovery), so this leaves room six times over, while an
/// endless or huge answer can cost the host no more than this.
pub(crate) const DEFAULT_MAX_RESPONSE_BYTES: usize = 64 << 20;

/// REGISTRY_MAX_RESPONSE_BYTES: a whole number of bytes, at least 1 KiB; default 64 MiB.
pub(crate) fn max_response_bytes_setting(settings: &Settings, problems: &mut Problems) -> usize {
    settings
        .value("REGISTRY_MAX_RESPONSE_BYTES")
        .and_then(|value| {
            let bytes = value.parse::<usize>().ok().filter(|n| *n >= 1024);
            problems.check(bytes.ok_or_else(|| {
                format!(
                    "REGISTRY_MAX_RESPONSE_BYTES {} is not a whole number of bytes of at least 1024",
                    quote(value)
                )
            }))
        })
        .unwrap_or(DEFAULT_MAX_RESPONSE_BYTES)
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
    /// REGISTRY_HEALTH_URL / _INTERVAL / _THRESHOLD: the health check the agent runs (a host
    /// check set through the API replaces the URL).
    pub health: HealthConfig,
    /// REGISTRY_DRAIN_SECONDS: how long stop keeps the instance registered as DOWN before the
    /// DELETE.
    pub drain: Duration,
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
            hostname: crate::host::hostname,
            ip_address: crate::host::first_ipv4,
        }
    }
}

impl Config {
    /// How to reach the registry (see [`Connection`]).
    pub fn connection(&self) -> Connection {
        Connection {
            service_urls: self.service_urls.clone(),
            timeout: self.timeout,
            tls: self.tls.clone(),
            // A registration fetches nothing large.
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        }
    }

    /// Loads and validates the configuration from the environment alone.
    pub fn from_env() -> Result<Config> {
        Config::from_settings(&Settings::from_env())
    }

    /// Validates settings, filling defaults from the real host.
    pub fn from_settings(settings: &Settings) -> Result<Config> {
        Config::from_settings_with(settings, &HostDefaults::system())
    }

    /// Validates settings with the given host defaults. Every mistake is collected, so one
    /// message lists them all; a failed check substitutes a placeholder so the others still run.
    pub fn from_settings_with(settings: &Settings, host: &HostDefaults) -> Result<Config> {
        let mut problems = Problems::default();
        check_type(settings, &mut problems);
        let service_urls = connection_settings(settings, &mut problems);
        let tls = tls_settings(settings, &service_urls, &mut problems);

        let app = settings.value("REGISTRY_APP_NAME");
        if app.is_none() {
            problems.add("REGISTRY_APP_NAME is not set; name the application to register".into());
        }
        let app = app.unwrap_or_default();
        if !app.is_empty() {
            problems.check(check_name("REGISTRY_APP_NAME", app, MAX_APP_NAME_LEN, None));
        }
        let app_name = app.to_ascii_uppercase();

        let hostname = match settings.value("REGISTRY_HOSTNAME") {
            Some(h) => h.to_string(),
            None => (host.hostname)().unwrap_or_else(|| {
                problems.add(
                    "REGISTRY_HOSTNAME is not set and the OS host name could not be read".into(),
                );
                String::new()
            }),
        };
        let hostname_ok = problems
            .check(check_length(
                "REGISTRY_HOSTNAME",
                &hostname,
                MAX_HOSTNAME_LEN,
            ))
            .is_some();
        let ip_address = match settings.value("REGISTRY_IP_ADDRESS") {
            Some(ip) => match ip.parse::<IpAddr>() {
                Ok(_) => ip.to_string(),
                Err(_) => {
                    problems.add(format!(
                        "REGISTRY_IP_ADDRESS {} is not an IP address",
                        quote(ip)
                    ));
                    String::new()
                }
            },
            None => (host.ip_address)().unwrap_or_else(|| {
                problems.add(
                    "REGISTRY_IP_ADDRESS is not set and no network interface that is up has a \
                     non-loopback IPv4 address"
                        .into(),
                );
                String::new()
            }),
        };
        let port = settings
            .value("REGISTRY_PORT")
            .map_or(Some(DEFAULT_PORT), |p| {
                problems.check(parse_port("REGISTRY_PORT", p))
            });
        let secure_port = settings
            .value("REGISTRY_SECURE_PORT")
            .and_then(|p| problems.check(parse_port("REGISTRY_SECURE_PORT", p)));

        let instance_id = match settings.value("REGISTRY_INSTANCE_ID") {
            Some(id) => {
                problems.check(check_name(
                    "REGISTRY_INSTANCE_ID",
                    id,
                    MAX_INSTANCE_ID_LEN,
                    None,
                ));
                id.to_string()
            }
            None => {
                let id = format!(
                    "{hostname}:{}:{}",
                    app.to_ascii_lowercase(),
                    port.unwrap_or(DEFAULT_PORT)
                );
                // Only worth a message of its own when its parts were fine.
                if hostname_ok && !app.is_empty() {
                    problems.check(check_name(
                        "REGISTRY_INSTANCE_ID",
                        &id,
                        MAX_INSTANCE_ID_LEN,
                        Some("the default {hostname}:{app}:{port}"),
                    ));
                }
                id
            }
        };

        let default_vip = app.to_ascii_lowercase();
        let vip_address = settings
            .value("REGISTRY_VIP_ADDRESS")
            .unwrap_or(&default_vip)
            .to_string();
        let secure_vip_address = settings
            .value("REGISTRY_SECURE_VIP_ADDRESS")
            .unwrap_or(&default_vip)
            .to_string();
        for (key, value) in [
            ("REGISTRY_VIP_ADDRESS", &vip_address),
            ("REGISTRY_SECURE_VIP_ADDRESS", &secure_vip_address),
        ] {
            if settings.value(key).is_some() {
                problems.check(check_length(key, value, MAX_VIP_LEN));
            }
        }

        let url_host = if hostname.contains(':') {
            format!("[{hostname}]")
        } else {
            hostname.clone()
        };
        let shown_port = port.unwrap_or(DEFAULT_PORT);
        let mut page_url = |key: &'static str, default: String| match settings.value(key) {
            Some(url) => {
                problems.check(check_length(key, url, MAX_URL_LEN));
                url.to_string()
            }
            None => default,
        };
        let home_page_url = page_url(
            "REGISTRY_HOME_PAGE_URL",
            format!("http://{url_host}:{shown_port}/"),
        );
        let status_page_url = page_url(
            "REGISTRY_STATUS_PAGE_URL",
            format!("http://{url_host}:{shown_port}/status"),
        );
        let health_check_url = page_url(
            "REGISTRY_HEALTH_CHECK_URL",
            format!("http://{url_host}:{shown_port}/healthcheck"),
        );

        let metadata = settings
            .value("REGISTRY_METADATA")
            .map_or(Some(BTreeMap::new()), |m| {
                parse_metadata(m)
                    .map_err(|all| all.into_iter().for_each(|p| problems.add(p)))
                    .ok()
            })
            .unwrap_or_default();

        let heartbeat_interval = settings
            .value("REGISTRY_HEARTBEAT_INTERVAL")
            .map_or(Some(Duration::from_secs_f64(DEFAULT_HEARTBEAT_SECS)), |v| {
                problems.check(seconds("REGISTRY_HEARTBEAT_INTERVAL", v))
            });
        let lease_duration_secs = match settings.value("REGISTRY_LEASE_DURATION") {
            Some(v) => problems.check(v.parse::<u32>().ok().filter(|s| *s >= 1).ok_or_else(|| {
                format!(
                    "REGISTRY_LEASE_DURATION {} is not a whole number of seconds of at least 1",
                    quote(v)
                )
            })),
            None => Some(DEFAULT_LEASE_SECS),
        };
        if let (Some(lease), Some(interval)) = (lease_duration_secs, heartbeat_interval) {
            if Duration::from_secs(lease.into()) <= interval {
                problems.add(format!(
                    "REGISTRY_LEASE_DURATION ({lease} s) must be longer than \
                     REGISTRY_HEARTBEAT_INTERVAL ({} s), or the registry drops the instance between heartbeats",
                    interval.as_secs_f64()
                ));
            }
        }
        let timeout = timeout_setting(settings, &mut problems);
        let fetch_interval = fetch_interval_setting(settings, &mut problems);
        let health = problems.check(HealthConfig::from_settings(settings).map_err(config_message));
        let drain = problems.check(drain_duration(settings).map_err(config_message));

        problems.into_result()?;
        Ok(Config {
            service_urls,
            tls: checked(tls, "TLS settings")?,
            app_name,
            instance_id,
            hostname,
            ip_address,
            port: shown_port,
            secure_port,
            vip_address,
            secure_vip_address,
            home_page_url,
            status_page_url,
            health_check_url,
            metadata,
            heartbeat_interval: heartbeat_interval.unwrap_or_default(),
            lease_duration_secs: lease_duration_secs.unwrap_or_default(),
            timeout,
            fetch_interval,
            health: checked(health, "health settings")?,
            drain: drain.unwrap_or_default(),
        })
    }

    /// How long `stop` may take when the host gives no bound: the drain, then one request.
    pub fn default_stop_timeout(&self) -> Duration {
        self.drain + self.timeout
    }
}

/// The message of a configuration error, to be listed among the other problems.
fn config_message(error: Error) -> String {
    match error {
        Error::InvalidConfig(message) => message,
        other => other.to_string(),
    }
}

/// Longest app name accepted: names travel in every request path and message.
pub const MAX_APP_NAME_LEN: usize = 255;
/// Longest instance id (room for the default `{hostname}:{app}:{port}` of long names).
pub const MAX_INSTANCE_ID_LEN: usize = 512;
/// Longest host name (DNS allows 253).
pub const MAX_HOSTNAME_LEN: usize = 255;
/// Longest VIP address list.
pub const MAX_VIP_LEN: usize = 1024;
/// Longest advertised page URL.
pub const MAX_URL_LEN: usize = 2048;
/// Longest part of a value quoted in a message or description; the rest is elided.
const MAX_SHOWN_CHARS: usize = 80;

/// Every problem found in a configuration, reported together in one message.
#[derive(Default)]
pub(crate) struct Problems(Vec<String>);

impl Problems {
    pub(crate) fn add(&mut self, problem: String) {
        self.0.push(problem);
    }

    /// The value of a check that passed; None (and the problem noted) otherwise.
    pub(crate) fn check<T>(&mut self, checked: std::result::Result<T, String>) -> Option<T> {
        checked.map_err(|problem| self.add(problem)).ok()
    }

    /// Ok when nothing was wrong, else one InvalidConfig naming every problem.
    pub(crate) fn into_result(self) -> Result<()> {
        match self.0.len() {
            0 => Ok(()),
            1 => Err(Error::InvalidConfig(
                self.0.into_iter().next().unwrap_or_default(),
            )),
            n => {
                let numbered: Vec<String> = (1..=n)
                    .zip(&self.0)
                    .map(|(i, p)| format!("{i}) {p}"))
                    .collect();
                Err(Error::InvalidConfig(format!(
                    "{n} problems: {}",
                    numbered.join("; ")
                )))
            }
        }
    }
}

/// REGISTRY_TYPE: only Eureka is supported.
pub(crate) fn check_type(settings: &Settings, problems: &mut Problems) {
    if let Some(kind) = settings.value("REGISTRY_TYPE") {
        if !kind.eq_ignore_ascii_case("NETFLIX_EUREKA") {
            problems.add(format!(
                "REGISTRY_TYPE {} is not supported; accepted values: NETFLIX_EUREKA",
                quote(kind)
            ));
        }
    }
}

/// REGISTRY_URL with REGISTRY_USER / REGISTRY_PASSWORD: the servers to talk to.
pub(crate) fn connection_settings(settings: &Settings, problems: &mut Problems) -> Vec<ServiceUrl> {
    let credentials = problems.check(parse_credentials(settings)).flatten();
    parse_service_urls(
        settings.value("REGISTRY_URL"),
        credentials.as_ref(),
        problems,
    )
}

/// Whether any of the servers is reached over https (then the OS trust store is needed).
pub(crate) fn uses_https(urls: &[ServiceUrl]) -> bool {
    urls.iter().any(|u| u.url.scheme() == "https")
}

/// REGISTRY_CA_FILE, REGISTRY_CLIENT_CERT, REGISTRY_CLIENT_KEY; None (and the problem noted)
/// when they are wrong.
pub(crate) fn tls_settings(
    settings: &Settings,
    service_urls: &[ServiceUrl],
    problems: &mut Problems,
) -> Option<Tls> {
    let tls = Tls::from_settings(settings, uses_https(service_urls)).map_err(|e| match e {
        Error::InvalidConfig(message) => message,
        other => other.to_string(),
    });
    problems.check(tls)
}

/// The value of a check that can only be missing when a problem was noted: after
/// `Problems::into_result` passed it is always there.
pub(crate) fn checked<T>(value: Option<T>, what: &str) -> Result<T> {
    value.ok_or_else(|| Error::Internal(format!("{what} missing after validation passed")))
}

/// REGISTRY_TIMEOUT, default 5 s.
pub(crate) fn timeout_setting(settings: &Settings, problems: &mut Problems) -> Duration {
    settings
        .value("REGISTRY_TIMEOUT")
        .and_then(|v| problems.check(seconds("REGISTRY_TIMEOUT", v)))
        .unwrap_or(Duration::from_secs_f64(DEFAULT_TIMEOUT_SECS))
}

/// REGISTRY_FETCH_INTERVAL, default 30 s.
pub(crate) fn fetch_interval_setting(settings: &Settings, problems: &mut Problems) -> Duration {
    settings
        .value("REGISTRY_FETCH_INTERVAL")
        .and_then(|v| problems.check(seconds("REGISTRY_FETCH_INTERVAL", v)))
        .unwrap_or(Duration::from_secs_f64(DEFAULT_FETCH_SECS))
}

fn parse_credentials(settings: &Settings) -> std::result::Result<Option<Credentials>, String> {
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
        None if !password.is_empty() => {
            Err("REGISTRY_PASSWORD is set but REGISTRY_USER is not; set both for basic auth".into())
        }
        None => Ok(None),
        // Not quoted: a value with ':' is likely "user:password".
        Some(u) if u.contains(':') => {
            Err("REGISTRY_USER contains ':', which HTTP basic auth cannot carry".into())
        }
        Some(u) => Ok(Some(Credentials {
            user: u.to_string(),
            password,
        })),
    }
}

fn parse_service_urls(
    raw: Option<&str>,
    credentials: Option<&Credentials>,
    problems: &mut Problems,
) -> Vec<ServiceUrl> {
    let Some(raw) = raw else {
        problems.add(
            "REGISTRY_URL is not set; expected the Eureka service URL, e.g. http://localhost:8761/eureka/"
                .into(),
        );
        return Vec::new();
    };
    let entries: Vec<&str> = raw.split(',').map(str::trim).collect();
    // Entries are shown from the redacted whole, never redacted one by one: a password
    // holding a ',' would split into entries that no longer look like user-info.
    let redacted = redact_userinfo(raw);
    let shown_entries: Vec<&str> = redacted.split(',').map(str::trim).collect();
    let show = |index: usize| -> String {
        if entries.len() == 1 {
            format!("REGISTRY_URL {}", quote(&redacted))
        } else if shown_entries.len() == entries.len() {
            format!(
                "REGISTRY_URL entry {} {}",
                index + 1,
                quote(shown_entries[index])
            )
        } else {
            format!("REGISTRY_URL entry {} of {}", index + 1, quote(&redacted))
        }
    };
    let mut urls = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        if entry.is_empty() {
            problems.add(format!(
                "REGISTRY_URL entry {} is empty (check the commas)",
                index + 1
            ));
            continue;
        }
        if let Some(url) = problems.check(parse_service_url(entry, credentials, || show(index))) {
            urls.push(url);
        }
    }
    urls
}

/// Accepts `http://host:8761/eureka/`, the seed's `http://host:8761/eureka/apps/`, with or
/// without trailing slash, optionally with `user:password@`. `shown` names the entry in a
/// message, with credentials redacted.
fn parse_service_url(
    entry: &str,
    credentials: Option<&Credentials>,
    shown: impl Fn() -> String,
) -> std::result::Result<ServiceUrl, String> {
    if entry.len() > MAX_URL_LEN {
        return Err(format!("{} is longer than {MAX_URL_LEN} bytes", shown()));
    }
    let mut url =
        reqwest::Url::parse(entry).map_err(|e| format!("{} is not a valid URL: {e}", shown()))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(format!("{} must start with http:// or https://", shown()));
    }
    if url.host_str().map_or(true, str::is_empty) {
        return Err(format!("{} has no host", shown()));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "{} must not have a query or fragment (a password containing '/', '?' or '#' must be \
             percent-encoded, or set with REGISTRY_PASSWORD)",
            shown()
        ));
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
        url,
        // Explicit REGISTRY_USER/REGISTRY_PASSWORD win over user-info in the URL.
        credentials: credentials.cloned().or(from_url),
    })
}

/// Hides every `user:password@` in a REGISTRY_URL value, whatever was given: several
/// comma-separated URLs, a missing scheme, a password holding an unencoded `/`, `?`, `#`,
/// `@`, `,` or `://`. The one redaction of the crate: messages, Debug and descriptions use it.
///
/// The value is cut into URLs where a `scheme://` follows a comma (or starts the value). In
/// each, everything from the start of the authority (after `://`, or the start when there is
/// no scheme) to the LAST `@` becomes `***`. Cutting at the last `@` rather than the end of
/// the authority over-redacts a path holding `@`, which is the safe side: an unencoded `/` in
/// a password makes the authority's end unknowable.
pub fn redact_userinfo(raw: &str) -> String {
    let mut starts = vec![0];
    let bytes = raw.as_bytes();
    for (comma, _) in raw.match_indices(',') {
        let after = comma + 1;
        let scheme_start = after + raw[after..].len() - raw[after..].trim_start().len();
        if scheme_len(&bytes[scheme_start..]).is_some() {
            starts.push(scheme_start);
        }
    }
    starts.push(raw.len());
    let mut out = String::with_capacity(raw.len());
    for pair in starts.windows(2) {
        let url = &raw[pair[0]..pair[1]];
        let trimmed = url.len() - url.trim_start().len();
        let authority = trimmed + scheme_len(&url.as_bytes()[trimmed..]).map_or(0, |n| n + 3);
        match url[authority..].rfind('@') {
            Some(at) => {
                out.push_str(&url[..authority]);
                out.push_str("***");
                out.push_str(&url[authority + at..]);
            }
            None => out.push_str(url),
        }
    }
    out
}

/// The length of `scheme` when `bytes` starts with `scheme://` (RFC 3986 scheme characters).
fn scheme_len(bytes: &[u8]) -> Option<usize> {
    let len = bytes
        .iter()
        .position(|b| !(b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.')))?;
    (len > 0 && bytes[0].is_ascii_alphabetic() && bytes[len..].starts_with(b"://")).then_some(len)
}

/// A setting's value as it may be shown: the password masked, URLs redacted.
fn displayable(key: &str, value: &str) -> String {
    if key == "REGISTRY_PASSWORD" {
        "***".to_string()
    } else if key == "REGISTRY_USER" && value.contains(':') {
        // Likely "user:password" given as the user: the config is refused, never shown whole.
        format!("{}:***", value.split(':').next().unwrap_or_default())
    } else if key.ends_with("_URL") {
        redact_userinfo(value)
    } else {
        value.to_string()
    }
}

/// Quotes a value for a message: control characters escaped, at most MAX_SHOWN_CHARS shown
/// (a 1 MB value must not make a 1 MB message). Callers redact first.
pub fn quote(value: &str) -> String {
    match shorten(value, MAX_SHOWN_CHARS) {
        (shown, false) => format!("'{shown}'"),
        (shown, true) => format!("'{shown}...' ({} bytes)", value.len()),
    }
}

/// The first `max_chars` characters of `value` with control characters escaped (a message
/// stays one line, whatever the value holds); true when `value` was longer and was cut there.
pub(crate) fn shorten(value: &str, max_chars: usize) -> (String, bool) {
    let mut out = String::new();
    for (count, c) in value.chars().enumerate() {
        if count == max_chars {
            return (out, true);
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    (out, false)
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

fn parse_port(key: &str, value: &str) -> std::result::Result<u16, String> {
    value
        .parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| format!("{key} {} is not a port number (1-65535)", quote(value)))
}

/// A number of seconds between 0.01 and 86400, for settings outside this module.
pub(crate) fn parse_seconds(key: &str, value: &str) -> Result<Duration> {
    seconds(key, value).map_err(Error::InvalidConfig)
}

fn seconds(key: &str, value: &str) -> std::result::Result<Duration, String> {
    let secs: f64 = value
        .parse()
        .map_err(|_| format!("{key} {} is not a number of seconds", quote(value)))?;
    if !(0.01..=86_400.0).contains(&secs) {
        return Err(format!(
            "{key} {} is out of range (0.01 to 86400 seconds)",
            quote(value)
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn check_length(key: &str, value: &str, max: usize) -> std::result::Result<(), String> {
    if value.len() > max {
        return Err(format!(
            "{key} is {} bytes long; at most {max} are accepted ({}...)",
            value.len(),
            quote(&value.chars().take(20).collect::<String>())
        ));
    }
    Ok(())
}

/// App names and instance ids travel as URL path segments (`apps/{APP}/{ID}`): refuse what
/// a URL parser or the server's servlet container would rewrite instead of carry. `.` and
/// `..` are dot segments (`apps/..` is `apps/`); `%` would let `%2e` smuggle one in, and the
/// server's firewall refuses encoded `%`, `/`, `\` and `;`; `\` counts as `/` in http URLs;
/// `;` starts a path parameter the server strips; tabs and newlines are dropped by parsers.
pub(crate) fn check_name(
    key: &str,
    value: &str,
    max: usize,
    derived_from: Option<&str>,
) -> std::result::Result<(), String> {
    check_length(key, value, max)?;
    let from = derived_from.map_or(String::new(), |d| format!(" ({d})"));
    if value == "." || value == ".." {
        return Err(format!(
            "{key} {}{from} is a dot segment, which URLs drop from the request path",
            quote(value)
        ));
    }
    if let Some(bad) = value.chars().find(|c| {
        matches!(c, '/' | '\\' | '?' | '#' | '%' | ';') || c.is_whitespace() || c.is_control()
    }) {
        return Err(format!(
            "{key} {}{from} contains {}; names travel in URL paths and must not contain '/', \
             '\\', '?', '#', '%', ';', whitespace or control characters",
            quote(value),
            quote(&bad.to_string())
        ));
    }
    Ok(())
}

/// Parses `k=v,k2=v2`. Keys must be valid XML element names, because Eureka also serves
/// metadata as XML elements. Every bad entry is reported.
pub fn parse_metadata(raw: &str) -> std::result::Result<BTreeMap<String, String>, Vec<String>> {
    let mut map = BTreeMap::new();
    let mut problems = Vec::new();
    for pair in raw.split(',') {
        let pair = pair.trim();
        if pair.is_empty() {
            continue;
        }
        let Some((key, value)) = pair.split_once('=') else {
            problems.push(format!(
                "REGISTRY_METADATA entry {} is not of the form key=value",
                quote(pair)
            ));
            continue;
        };
        let key = key.trim();
        match check_metadata_key(key) {
            Ok(()) => {
                map.insert(key.to_string(), value.trim().to_string());
            }
            Err(why) => problems.push(format!("REGISTRY_METADATA {why}")),
        }
    }
    if problems.is_empty() {
        Ok(map)
    } else {
        Err(problems)
    }
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
            "key {} is not valid: use letters, digits, '_', '-', '.', starting with a letter or '_'",
            quote(key)
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
        assert_eq!(c.service_urls.len(), 1);
        assert_eq!(c.service_urls[0].base(), "http://localhost:8761/eureka/");
        assert_eq!(c.service_urls[0].credentials, None);
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
                c.service_urls[0].base(),
                "http://localhost:8761/eureka/",
                "{raw}"
            );
        }
        let c = config(&[
            ("url", "http://a:1/eureka/, https://b:2/eureka/v2/apps/"),
            ("app_name", "a"),
        ])
        .unwrap();
        assert_eq!(c.service_urls.len(), 2);
        assert_eq!(c.service_urls[1].base(), "https://b:2/eureka/v2/");
    }

    #[test]
    fn userinfo_is_decoded_split_and_removed_from_the_url() {
        let c = config(&[
            ("url", "http://us%40er:p%3Ass:word@h:1/eureka/"),
            ("app_name", "a"),
        ])
        .unwrap();
        assert_eq!(c.service_urls[0].base(), "http://h:1/eureka/");
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
        assert!(!e.contains("s3cret"), "{e}");
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
        // "user:password" given as the user is refused and never shown.
        let s = settings(&[MIN[0], MIN[1], ("user", "u:s3cret")]);
        let e = Config::from_settings_with(&s, &host())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("REGISTRY_USER contains ':'") && !e.contains("s3cret"),
            "{e}"
        );
        assert!(
            s.describe().contains("REGISTRY_USER='u:***'"),
            "{}",
            s.describe()
        );
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
        assert_eq!(c.service_urls[0].base(), "http://env:1/eureka/");
    }

    #[test]
    fn redaction() {
        assert_eq!(redact_userinfo("http://u:p@h:1/x"), "http://***@h:1/x");
        assert_eq!(redact_userinfo("http://h:1/"), "http://h:1/");
        // A path holding '@' is over-redacted: the safe side.
        assert_eq!(redact_userinfo("http://u:p@h:1/x@y"), "http://***@y");
        assert_eq!(
            redact_userinfo("http://u:p@a/e/, https://v:q@b/e/"),
            "http://***@a/e/, https://***@b/e/"
        );
        assert_eq!(redact_userinfo("u:p@h:1/e"), "***@h:1/e");
        assert_eq!(redact_userinfo("http://u:p,q@h/"), "http://***@h/");
    }

    /// REGISTRY_URL values the issue found leaking, each with the secret "Xy7q...Zw9k" split
    /// by the character that confused the old redaction.
    const MALFORMED_URLS: &[&str] = &[
        "http://user:Xy7q/Zw9k@127.0.0.1:8761/eureka/",
        "http://user:Xy7q#Zw9k@127.0.0.1:8761/eureka/",
        "http://user:Xy7q?Zw9k@127.0.0.1:8761/eureka/",
        "http://user:Xy7q@Zw9k@127.0.0.1:8761/eureka/",
        "http://user:Xy7q,Zw9k@127.0.0.1:8761/eureka/",
        "http://user:Xy7q://Zw9k@127.0.0.1:8761/eureka/",
        "user:Xy7qZw9k@127.0.0.1:8761/eureka/",
        "//user:Xy7qZw9k@127.0.0.1:8761/eureka/",
        "http://user:Xy7qZw9k@127.0.0.1:8761/eureka/?zone=a",
        "http://user:Xy7qZw9k@127.0.0.1:eighty/eureka/",
        "http://user:Xy7qZw9k@/eureka/",
        "ftp://user:Xy7qZw9k@127.0.0.1/eureka/",
        "http://ok:1/eureka/,http://user:Xy7q/Zw9k@127.0.0.1:8761/eureka/,",
        "http://user:Xy7qZw9k@a:1/eureka/, user:Xy7qZw9k@b:2/eureka/",
        " http://user:Xy7q Zw9k@127.0.0.1:8761/eureka/",
    ];

    #[test]
    fn passwords_never_appear_for_malformed_urls() {
        for url in MALFORMED_URLS {
            // Some of these URLs are invalid, the rest are made invalid by a bad port.
            let s = settings(&[("url", url), ("app_name", "a"), ("port", "x")]);
            let e = Config::from_settings_with(&s, &host())
                .unwrap_err()
                .to_string();
            let described = s.describe();
            let debug = format!("{s:?}");
            let discovery = crate::discovery::DiscoveryConfig::from_settings(&s)
                .map(|c| format!("{c:?}"))
                .unwrap_or_else(|e| e.to_string());
            for text in [&e, &described, &debug, &discovery] {
                assert!(
                    !text.contains("Xy7q") && !text.contains("Zw9k"),
                    "{url} leaked: {text}"
                );
            }
            assert!(described.contains("REGISTRY_URL='"), "{described}");
            assert!(e.contains("REGISTRY_PORT 'x'"), "{e}");
        }
    }

    #[test]
    fn every_mistake_is_reported_at_once() {
        let e = err(&[
            ("type", "consul"),
            ("url", "http://h/eureka/"),
            ("app_name", "a"),
            ("port", "eighty"),
        ]);
        assert!(e.contains("2 problems"), "{e}");
        assert!(e.contains("REGISTRY_TYPE 'consul'"), "{e}");
        assert!(e.contains("REGISTRY_PORT 'eighty'"), "{e}");
        let e = err(&[
            ("url", "ftp://h/, "),
            ("heartbeat_interval", "fast"),
            ("lease_duration", "0"),
            ("metadata", "1x=1,b"),
            ("password", "pw"),
        ]);
        for part in [
            "8 problems: 1) REGISTRY_PASSWORD",
            "REGISTRY_PASSWORD is set but REGISTRY_USER is not",
            "entry 1 'ftp://h/' must start with http://",
            "entry 2 is empty",
            "REGISTRY_APP_NAME is not set",
            "REGISTRY_HEARTBEAT_INTERVAL 'fast'",
            "REGISTRY_LEASE_DURATION '0'",
            "5) REGISTRY_METADATA key '1x'",
            "6) REGISTRY_METADATA entry 'b'",
        ] {
            assert!(e.contains(part), "{part} missing in {e}");
        }
        // A placeholder for a bad value does not cause follow-up complaints.
        let e = err(&[
            MIN[0],
            MIN[1],
            ("heartbeat_interval", "x"),
            ("lease_duration", "2"),
        ]);
        assert!(
            !e.contains("must be longer") && !e.contains("problems"),
            "{e}"
        );
    }

    #[test]
    fn names_a_url_parser_would_rewrite_are_refused() {
        for bad in [
            ".", "..", "%2e", "%2E%2e", ".%2E", "a%2Fb", "a\\b", "a;b", "a/b", "a?b", "a#b", "a b",
            "a\tb",
        ] {
            let e = err(&[MIN[0], ("app_name", bad)]);
            assert!(e.contains("REGISTRY_APP_NAME"), "{bad}: {e}");
            let e = err(&[MIN[0], MIN[1], ("instance_id", bad)]);
            assert!(e.contains("REGISTRY_INSTANCE_ID"), "{bad}: {e}");
        }
        // Dots inside a name are fine (host names, versions).
        let c = config(&[
            MIN[0],
            ("app_name", "..."),
            ("instance_id", "h.example.com:a:1"),
        ])
        .unwrap();
        assert_eq!(c.instance_id, "h.example.com:a:1");
        // A bad host name shows in the default instance id, and the message says where from.
        let e = err(&[MIN[0], MIN[1], ("hostname", "a/b")]);
        assert!(
            e.contains("REGISTRY_INSTANCE_ID 'a/b:my_awsome_go_ms:8080' (the default"),
            "{e}"
        );
    }

    #[test]
    fn long_names_are_refused_with_a_short_message() {
        let huge = "a".repeat(1 << 20);
        for key in [
            "app_name",
            "instance_id",
            "hostname",
            "vip_address",
            "secure_vip_address",
        ] {
            let e = err(&[MIN[0], MIN[1], (key, &huge)]);
            let name = format!("REGISTRY_{}", key.to_uppercase());
            assert!(e.contains(&format!("{name} is 1048576 bytes long")), "{e}");
            assert!(e.len() < 600, "{} bytes: {}", e.len(), &e[..600]);
        }
        let e = err(&[("url", &format!("http://h/{huge}")), MIN[1]]);
        assert!(
            e.contains("REGISTRY_URL") && e.len() < 600,
            "{}",
            &e[..600.min(e.len())]
        );
        // Every quoted value is cut, whichever the setting.
        for key in [
            "port",
            "timeout",
            "ip_address",
            "metadata",
            "type",
            "lease_duration",
        ] {
            let e = err(&[MIN[0], MIN[1], (key, &huge)]);
            assert!(e.len() < 600, "{key}: {} bytes", e.len());
        }
        let e = Settings::new().set(&huge, "x").unwrap_err().to_string();
        assert!(e.len() < 1000, "{} bytes", e.len());
        let mut s = settings(&MIN);
        s.set("metadata", &format!("k={huge}")).unwrap();
        assert!(s.describe().len() < 600);
        let name = "b".repeat(MAX_APP_NAME_LEN);
        assert_eq!(
            config(&[MIN[0], ("app_name", &name)])
                .unwrap()
                .app_name
                .len(),
            255
        );
    }
}
