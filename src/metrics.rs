//! Metrics: what every client and discovery cache has done, counted where it happens and
//! rendered on demand in the Prometheus text exposition format (version 0.0.4).
//!
//! Each handle owns an `Arc` of its counters ([`ClientMetrics`], [`DiscoveryMetrics`]); the
//! background threads bump plain atomics (no lock, no allocation on the heartbeat path). A
//! process-wide list keeps a `Weak` reference to each, so [`render`] sees exactly the handles
//! that are alive (not yet freed) without keeping any of them alive.
//!
//! Names follow the Prometheus conventions: a `registrar_` prefix, `_total` for counters,
//! base units (`_seconds`), and a `result` label instead of one metric per outcome.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use once_cell::sync::Lazy;
use parking_lot::Mutex;

/// The outcome of one heartbeat (`PUT apps/{APP}/{ID}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeartbeatResult {
    /// 200: the lease was renewed.
    Success,
    /// 404: the registry does not know the instance (restart, eviction); it registers again.
    NotFound,
    /// Unreachable, timed out, or answered with another error.
    Error,
}

/// The two kinds of registry reads a discovery cache makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchKind {
    /// `GET apps`: the whole registry.
    Full,
    /// `GET apps/delta`: recent changes.
    Delta,
}

/// A point in time, kept in one atomic: milliseconds since [`EPOCH`] plus one (0 = never).
/// Monotonic for ages; converted to wall-clock time only for display.
#[derive(Default)]
struct Moment(AtomicU64);

/// The monotonic clock's zero for [`Moment`], with the wall-clock time it corresponds to.
static EPOCH: Lazy<(Instant, SystemTime)> = Lazy::new(|| (Instant::now(), SystemTime::now()));

impl Moment {
    fn now() -> Moment {
        let m = Moment::default();
        m.set_now();
        m
    }

    fn set_now(&self) {
        let ms = EPOCH.0.elapsed().as_millis() as u64;
        self.0.store(ms + 1, Ordering::Relaxed);
    }

    fn get(&self) -> Option<Duration> {
        match self.0.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(Duration::from_millis(ms - 1)),
        }
    }

    /// Time elapsed since the moment, `None` if it never happened.
    fn age(&self) -> Option<Duration> {
        self.get().map(|at| EPOCH.0.elapsed().saturating_sub(at))
    }

    /// Milliseconds since the Unix epoch, `None` if it never happened.
    fn unix_ms(&self) -> Option<u64> {
        let at = EPOCH.1 + self.get()?;
        at.duration_since(UNIX_EPOCH)
            .ok()
            .map(|d| d.as_millis() as u64)
    }
}

/// Counters of one client (one registered instance).
pub struct ClientMetrics {
    app: String,
    instance: String,
    pid: u32,
    created: Moment,
    registrations_success: AtomicU64,
    registrations_error: AtomicU64,
    heartbeats_success: AtomicU64,
    heartbeats_not_found: AtomicU64,
    heartbeats_error: AtomicU64,
    /// The last request the registry accepted (registration or heartbeat).
    last_success: Moment,
    last_failure: Moment,
    health_passed: AtomicU64,
    health_failed: AtomicU64,
    /// The health verdict: 1 healthy, 0 unhealthy, -1 no health check configured.
    healthy: std::sync::atomic::AtomicI8,
}

/// A copy of a client's counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientCounts {
    pub registrations_success: u64,
    pub registrations_error: u64,
    pub heartbeats_success: u64,
    pub heartbeats_not_found: u64,
    pub heartbeats_error: u64,
    /// Milliseconds since the Unix epoch; `None` if it has not happened yet.
    pub created_unix_ms: Option<u64>,
    pub last_success_unix_ms: Option<u64>,
    pub last_failure_unix_ms: Option<u64>,
}

impl ClientMetrics {
    /// Counters for a new client, listed in the process-wide registry while it lives.
    pub fn register(app: &str, instance: &str) -> Arc<ClientMetrics> {
        let metrics = Arc::new(ClientMetrics {
            app: app.to_string(),
            instance: instance.to_string(),
            pid: std::process::id(),
            created: Moment::now(),
            registrations_success: AtomicU64::new(0),
            registrations_error: AtomicU64::new(0),
            heartbeats_success: AtomicU64::new(0),
            heartbeats_not_found: AtomicU64::new(0),
            heartbeats_error: AtomicU64::new(0),
            last_success: Moment::default(),
            last_failure: Moment::default(),
            health_passed: AtomicU64::new(0),
            health_failed: AtomicU64::new(0),
            healthy: std::sync::atomic::AtomicI8::new(-1),
        });
        LIVE.lock().add_client(&metrics);
        metrics
    }

    /// Records the outcome of a registration (`POST apps/{APP}`).
    pub fn registration(&self, success: bool) {
        if success {
            bump(&self.registrations_success);
            self.last_success.set_now();
        } else {
            bump(&self.registrations_error);
            self.last_failure.set_now();
        }
    }

    /// Records the outcome of a heartbeat.
    pub fn heartbeat(&self, result: HeartbeatResult) {
        match result {
            HeartbeatResult::Success => {
                bump(&self.heartbeats_success);
                self.last_success.set_now();
            }
            HeartbeatResult::NotFound => bump(&self.heartbeats_not_found),
            HeartbeatResult::Error => {
                bump(&self.heartbeats_error);
                self.last_failure.set_now();
            }
        }
    }

    /// Records the outcome of one health check.
    pub fn health_check(&self, passed: bool) {
        bump(if passed {
            &self.health_passed
        } else {
            &self.health_failed
        });
    }

    /// Records the health verdict (`None`: no health check configured).
    pub fn set_healthy(&self, healthy: Option<bool>) {
        let value = healthy.map_or(-1, i8::from);
        self.healthy.store(value, Ordering::Relaxed);
    }

    /// Health checks run so far: (passed, failed).
    pub fn health_checks(&self) -> (u64, u64) {
        (read(&self.health_passed), read(&self.health_failed))
    }

    pub fn counts(&self) -> ClientCounts {
        ClientCounts {
            registrations_success: read(&self.registrations_success),
            registrations_error: read(&self.registrations_error),
            heartbeats_success: read(&self.heartbeats_success),
            heartbeats_not_found: read(&self.heartbeats_not_found),
            heartbeats_error: read(&self.heartbeats_error),
            created_unix_ms: self.created.unix_ms(),
            last_success_unix_ms: self.last_success.unix_ms(),
            last_failure_unix_ms: self.last_failure.unix_ms(),
        }
    }
}

/// Counters of one discovery cache.
pub struct DiscoveryMetrics {
    /// Numbers caches in the order they were created (1, 2, ...): the `cache` label.
    id: u64,
    pid: u32,
    created: Moment,
    full_success: AtomicU64,
    full_error: AtomicU64,
    delta_success: AtomicU64,
    delta_error: AtomicU64,
    hash_mismatches: AtomicU64,
    apps: AtomicU64,
    instances: AtomicU64,
    /// The last refresh that succeeded (the cached registry was confirmed by the server).
    last_success: Moment,
    last_failure: Moment,
}

/// A copy of a discovery cache's counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiscoveryCounts {
    pub id: u64,
    pub full_success: u64,
    pub full_error: u64,
    pub delta_success: u64,
    pub delta_error: u64,
    pub hash_mismatches: u64,
    pub apps: u64,
    pub instances: u64,
    pub created_unix_ms: Option<u64>,
    pub last_success_unix_ms: Option<u64>,
    pub last_failure_unix_ms: Option<u64>,
}

static NEXT_CACHE_ID: AtomicU64 = AtomicU64::new(1);

impl DiscoveryMetrics {
    /// Counters for a new cache, listed in the process-wide registry while it lives.
    pub fn register() -> Arc<DiscoveryMetrics> {
        let metrics = Arc::new(DiscoveryMetrics {
            id: NEXT_CACHE_ID.fetch_add(1, Ordering::Relaxed),
            pid: std::process::id(),
            created: Moment::now(),
            full_success: AtomicU64::new(0),
            full_error: AtomicU64::new(0),
            delta_success: AtomicU64::new(0),
            delta_error: AtomicU64::new(0),
            hash_mismatches: AtomicU64::new(0),
            apps: AtomicU64::new(0),
            instances: AtomicU64::new(0),
            last_success: Moment::default(),
            last_failure: Moment::default(),
        });
        LIVE.lock().add_cache(&metrics);
        metrics
    }

    /// Records the outcome of one `GET apps` or `GET apps/delta`.
    pub fn fetch(&self, kind: FetchKind, success: bool) {
        let counter = match (kind, success) {
            (FetchKind::Full, true) => &self.full_success,
            (FetchKind::Full, false) => &self.full_error,
            (FetchKind::Delta, true) => &self.delta_success,
            (FetchKind::Delta, false) => &self.delta_error,
        };
        bump(counter);
    }

    /// A delta left the registry with another hash code than the server's.
    pub fn hash_mismatch(&self) {
        bump(&self.hash_mismatches);
    }

    /// Records the outcome of one refresh (which may have taken one or two fetches).
    pub fn refreshed(&self, success: bool) {
        if success {
            self.last_success.set_now();
        } else {
            self.last_failure.set_now();
        }
    }

    /// The size of the registry now cached.
    pub fn cached(&self, apps: usize, instances: usize) {
        self.apps.store(apps as u64, Ordering::Relaxed);
        self.instances.store(instances as u64, Ordering::Relaxed);
    }

    pub fn counts(&self) -> DiscoveryCounts {
        DiscoveryCounts {
            id: self.id,
            full_success: read(&self.full_success),
            full_error: read(&self.full_error),
            delta_success: read(&self.delta_success),
            delta_error: read(&self.delta_error),
            hash_mismatches: read(&self.hash_mismatches),
            apps: read(&self.apps),
            instances: read(&self.instances),
            created_unix_ms: self.created.unix_ms(),
            last_success_unix_ms: self.last_success.unix_ms(),
            last_failure_unix_ms: self.last_failure.unix_ms(),
        }
    }
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

fn read(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

/// Every handle alive in this process, by weak reference (dead ones are pruned as we go).
#[derive(Default)]
struct Live {
    clients: Vec<Weak<ClientMetrics>>,
    caches: Vec<Weak<DiscoveryMetrics>>,
}

static LIVE: Lazy<Mutex<Live>> = Lazy::new(|| Mutex::new(Live::default()));

impl Live {
    fn add_client(&mut self, metrics: &Arc<ClientMetrics>) {
        self.clients.retain(|w| w.strong_count() > 0);
        self.clients.push(Arc::downgrade(metrics));
    }

    fn add_cache(&mut self, metrics: &Arc<DiscoveryMetrics>) {
        self.caches.retain(|w| w.strong_count() > 0);
        self.caches.push(Arc::downgrade(metrics));
    }
}

/// The live handles of this process. Handles inherited through fork() belong to the parent
/// (their threads do not run here) and are left out.
fn live_handles() -> (Vec<Arc<ClientMetrics>>, Vec<Arc<DiscoveryMetrics>>) {
    let pid = std::process::id();
    let mut live = LIVE.lock();
    live.clients.retain(|w| w.strong_count() > 0);
    live.caches.retain(|w| w.strong_count() > 0);
    let clients = live
        .clients
        .iter()
        .filter_map(Weak::upgrade)
        .filter(|m| m.pid == pid)
        .collect();
    let caches = live
        .caches
        .iter()
        .filter_map(Weak::upgrade)
        .filter(|m| m.pid == pid)
        .collect();
    (clients, caches)
}

/// The metrics of every live client and discovery cache of this process, and of the process
/// itself, in the Prometheus text exposition format (version 0.0.4).
pub fn render() -> String {
    let (clients, caches) = live_handles();
    let mut out = Exposition::default();

    out.family(
        "registrar_info",
        "gauge",
        "Always 1; the version label is the registrar library's version.",
    );
    out.sample(
        "registrar_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1.0,
    );
    out.family(
        "registrar_clients",
        "gauge",
        "Client handles alive in this process (created and not yet freed).",
    );
    out.sample("registrar_clients", &[], clients.len() as f64);
    out.family(
        "registrar_discovery_caches",
        "gauge",
        "Discovery cache handles alive in this process (created and not yet freed).",
    );
    out.sample("registrar_discovery_caches", &[], caches.len() as f64);

    let client_counts: Vec<(&ClientMetrics, ClientCounts)> =
        clients.iter().map(|m| (m.as_ref(), m.counts())).collect();
    out.family(
        "registrar_registrations_total",
        "counter",
        "Registrations (POST apps/{APP}) sent, by result: success (the registry accepted it) \
         or error (unreachable, timed out or rejected).",
    );
    for (m, c) in &client_counts {
        for (result, value) in [
            ("success", c.registrations_success),
            ("error", c.registrations_error),
        ] {
            out.sample(
                "registrar_registrations_total",
                &[
                    ("app", &m.app),
                    ("instance", &m.instance),
                    ("result", result),
                ],
                value as f64,
            );
        }
    }
    out.family(
        "registrar_heartbeats_total",
        "counter",
        "Heartbeats (PUT apps/{APP}/{ID}) sent, by result: success (lease renewed), \
         not_found (the registry did not know the instance, which then registers again) \
         or error (unreachable, timed out or rejected).",
    );
    for (m, c) in &client_counts {
        for (result, value) in [
            ("success", c.heartbeats_success),
            ("not_found", c.heartbeats_not_found),
            ("error", c.heartbeats_error),
        ] {
            out.sample(
                "registrar_heartbeats_total",
                &[
                    ("app", &m.app),
                    ("instance", &m.instance),
                    ("result", result),
                ],
                value as f64,
            );
        }
    }
    out.family(
        "registrar_last_success_age_seconds",
        "gauge",
        "Seconds since the registry last accepted a registration or heartbeat of the \
         instance; absent until the first success.",
    );
    for m in &clients {
        if let Some(age) = m.last_success.age() {
            out.sample(
                "registrar_last_success_age_seconds",
                &[("app", &m.app), ("instance", &m.instance)],
                age.as_secs_f64(),
            );
        }
    }

    // Each family's samples follow its own HELP and TYPE lines, all in one group: the format
    // requires it (OpenMetrics parsers reject interleaved families, and Python's
    // prometheus_client makes an untyped second family of samples under another TYPE).
    let health: Vec<(&ClientMetrics, i64, u64, u64)> = clients
        .iter()
        .map(|m| {
            let (passed, failed) = m.health_checks();
            (
                m.as_ref(),
                m.healthy.load(Ordering::Relaxed) as i64,
                passed,
                failed,
            )
        })
        .filter(|(_, healthy, passed, failed)| *healthy >= 0 || passed + failed > 0)
        .collect();
    out.family(
        "registrar_health_checks_total",
        "counter",
        "Health checks of the service run by the client (REGISTRY_HEALTH_URL or the host's \
         check), by result: passed or failed (including a check that did not answer within \
         REGISTRY_TIMEOUT). Only clients with a health check.",
    );
    for (m, _, passed, failed) in &health {
        for (result, value) in [("passed", *passed), ("failed", *failed)] {
            out.sample(
                "registrar_health_checks_total",
                &[
                    ("app", &m.app),
                    ("instance", &m.instance),
                    ("result", result),
                ],
                value as f64,
            );
        }
    }
    out.family(
        "registrar_healthy",
        "gauge",
        "1 while the client's health check passes, 0 while it fails (the instance is then \
         registered DOWN). Only clients with a health check.",
    );
    for (m, healthy, _, _) in &health {
        if *healthy >= 0 {
            out.sample(
                "registrar_healthy",
                &[("app", &m.app), ("instance", &m.instance)],
                *healthy as f64,
            );
        }
    }

    let cache_counts: Vec<(&DiscoveryMetrics, DiscoveryCounts)> =
        caches.iter().map(|m| (m.as_ref(), m.counts())).collect();
    out.family(
        "registrar_discovery_fetches_total",
        "counter",
        "Registry reads by a discovery cache, by kind (full: GET apps, delta: GET apps/delta) \
         and result (success or error). The cache label numbers the caches of the process.",
    );
    for (m, c) in &cache_counts {
        let id = m.id.to_string();
        for (kind, result, value) in [
            ("full", "success", c.full_success),
            ("full", "error", c.full_error),
            ("delta", "success", c.delta_success),
            ("delta", "error", c.delta_error),
        ] {
            out.sample(
                "registrar_discovery_fetches_total",
                &[("cache", &id), ("kind", kind), ("result", result)],
                value as f64,
            );
        }
    }
    out.family(
        "registrar_discovery_hash_mismatches_total",
        "counter",
        "Deltas after which the cache's hash code differed from the server's (each followed \
         by a full fetch).",
    );
    for (m, c) in &cache_counts {
        out.sample(
            "registrar_discovery_hash_mismatches_total",
            &[("cache", &m.id.to_string())],
            c.hash_mismatches as f64,
        );
    }
    out.family(
        "registrar_discovery_instances",
        "gauge",
        "Instances (of every status) in the cached registry.",
    );
    for (m, c) in &cache_counts {
        out.sample(
            "registrar_discovery_instances",
            &[("cache", &m.id.to_string())],
            c.instances as f64,
        );
    }
    out.family(
        "registrar_discovery_applications",
        "gauge",
        "Applications in the cached registry.",
    );
    for (m, c) in &cache_counts {
        out.sample(
            "registrar_discovery_applications",
            &[("cache", &m.id.to_string())],
            c.apps as f64,
        );
    }
    out.family(
        "registrar_discovery_last_success_age_seconds",
        "gauge",
        "Seconds since the cached registry was last confirmed by the server (a successful \
         refresh); absent until the first one.",
    );
    for m in &caches {
        if let Some(age) = m.last_success.age() {
            out.sample(
                "registrar_discovery_last_success_age_seconds",
                &[("cache", &m.id.to_string())],
                age.as_secs_f64(),
            );
        }
    }
    out.text
}

/// Builds the exposition text: one HELP and TYPE line per family, then its samples.
#[derive(Default)]
struct Exposition {
    text: String,
}

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (label, value)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let _ = write!(self.text, "{label}=\"{}\"", escape_label_value(value));
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {value}");
    }
}

/// HELP text escapes backslash and line feed.
fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

/// Label values escape backslash, double quote and line feed.
fn escape_label_value(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod checker {
    //! A small parser of the text exposition format, strict enough to catch what Prometheus
    //! would reject: used by the tests to read rendered text back.

    use std::collections::{BTreeMap, BTreeSet};

    #[derive(Debug, Clone, PartialEq)]
    pub struct Sample {
        pub name: String,
        pub labels: BTreeMap<String, String>,
        pub value: f64,
    }

    fn valid_name(name: &str) -> bool {
        let mut chars = name.chars();
        matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    }

    /// Parses the whole text; an error names the offending line.
    pub fn parse(text: &str) -> Result<Vec<Sample>, String> {
        let mut helped = BTreeSet::new();
        let mut typed = BTreeMap::new();
        let mut samples = Vec::new();
        let mut seen = BTreeSet::new();
        // The family whose lines come now, and those already ended: a family's lines are one
        // group (HELP and TYPE first), never interleaved with another's or reopened.
        let mut current: Option<String> = None;
        let mut ended = BTreeSet::new();
        if !text.is_empty() && !text.ends_with('\n') {
            return Err("the text does not end with a line feed".into());
        }
        for (n, line) in text.lines().enumerate() {
            let fail = |why: &str| Err(format!("line {}: {why}: {line:?}", n + 1));
            let family = line
                .strip_prefix("# HELP ")
                .or_else(|| line.strip_prefix("# TYPE "))
                .map(|rest| rest.split(' ').next().unwrap_or(rest))
                .or_else(|| {
                    (!line.starts_with('#') && !line.is_empty())
                        .then(|| line.split(['{', ' ']).next().unwrap_or(line))
                });
            if let Some(family) = family {
                if current.as_deref() != Some(family) {
                    if ended.contains(family) {
                        return fail("a family's lines are not one group");
                    }
                    if let Some(previous) = current.replace(family.to_string()) {
                        ended.insert(previous);
                    }
                }
            }
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, _) = rest.split_once(' ').unwrap_or((rest, ""));
                if !valid_name(name) || !helped.insert(name.to_string()) {
                    return fail("bad or repeated HELP");
                }
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                let Some((name, kind)) = rest.split_once(' ') else {
                    return fail("TYPE without a type");
                };
                let known = ["counter", "gauge", "histogram", "summary", "untyped"];
                if !valid_name(name) || !known.contains(&kind) || typed.contains_key(name) {
                    return fail("bad or repeated TYPE");
                }
                if samples.iter().any(|s: &Sample| s.name == name) {
                    return fail("TYPE after the family's samples");
                }
                typed.insert(name.to_string(), kind.to_string());
            } else if line.starts_with('#') || line.is_empty() {
                continue;
            } else {
                let sample = parse_sample(line).map_err(|why| format!("line {}: {why}", n + 1))?;
                if !typed.contains_key(&sample.name) {
                    return fail("sample without a TYPE line");
                }
                if typed[&sample.name] == "counter" && !sample.name.ends_with("_total") {
                    return fail("counter not named *_total");
                }
                let key = format!("{}{:?}", sample.name, sample.labels);
                if !seen.insert(key) {
                    return fail("duplicate series");
                }
                samples.push(sample);
            }
        }
        Ok(samples)
    }

    fn parse_sample(line: &str) -> Result<Sample, String> {
        let name_end = line.find(['{', ' ']).ok_or("no value")?;
        let name = &line[..name_end];
        if !valid_name(name) {
            return Err(format!("bad metric name {name:?}"));
        }
        let mut labels = BTreeMap::new();
        let mut rest = &line[name_end..];
        if let Some(body) = rest.strip_prefix('{') {
            let mut chars = body.char_indices().peekable();
            let end;
            loop {
                // label name
                let start = chars.peek().map(|(i, _)| *i).ok_or("unterminated labels")?;
                if body[start..].starts_with('}') {
                    end = start + 1;
                    break;
                }
                let eq = body[start..].find('=').ok_or("label without '='")? + start;
                let label = &body[start..eq];
                if !valid_name(label) || label.contains(':') {
                    return Err(format!("bad label name {label:?}"));
                }
                while chars.peek().is_some_and(|(i, _)| *i <= eq) {
                    chars.next();
                }
                if chars.next().map(|(_, c)| c) != Some('"') {
                    return Err("label value not quoted".into());
                }
                let mut value = String::new();
                loop {
                    match chars.next().ok_or("unterminated label value")? {
                        (_, '"') => break,
                        (_, '\\') => match chars.next().ok_or("dangling escape")?.1 {
                            '\\' => value.push('\\'),
                            '"' => value.push('"'),
                            'n' => value.push('\n'),
                            other => return Err(format!("bad escape \\{other}")),
                        },
                        (_, '\n') => return Err("raw line feed in a label value".into()),
                        (_, c) => value.push(c),
                    }
                }
                if labels.insert(label.to_string(), value).is_some() {
                    return Err(format!("repeated label {label}"));
                }
                match chars.next().ok_or("unterminated labels")? {
                    (_, ',') => continue,
                    (i, '}') => {
                        end = i + 1;
                        break;
                    }
                    (_, c) => return Err(format!("unexpected {c:?} after a label")),
                }
            }
            rest = &body[end..];
        }
        let value_text = rest.strip_prefix(' ').ok_or("no space before the value")?;
        let value_text = value_text.split(' ').next().unwrap_or("");
        let value = match value_text {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            v => v.parse().map_err(|_| format!("bad value {v:?}"))?,
        };
        Ok(Sample {
            name: name.to_string(),
            labels,
            value,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::checker::parse;
    use super::*;

    fn find<'a>(
        samples: &'a [checker::Sample],
        name: &str,
        labels: &[(&str, &str)],
    ) -> Option<&'a checker::Sample> {
        samples.iter().find(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
    }

    #[test]
    fn label_values_are_escaped_and_read_back() {
        let tricky = "a\\b\"c\nd}e,f=g";
        let mut out = Exposition::default();
        out.family("x_total", "counter", "help with \\ and \n newline");
        out.sample("x_total", &[("app", tricky), ("result", "ok")], 3.0);
        assert!(
            out.text.contains(r#"app="a\\b\"c\nd}e,f=g""#),
            "{}",
            out.text
        );
        assert!(out.text.contains("help with \\\\ and \\n newline"));
        let samples = parse(&out.text).unwrap();
        assert_eq!(samples.len(), 1);
        assert_eq!(samples[0].labels["app"], tricky);
        assert_eq!(samples[0].value, 3.0);
    }

    #[test]
    fn the_checker_rejects_what_prometheus_rejects() {
        let bad = [
            "x 1\n",                                           // no TYPE
            "# TYPE x_total counter\nx_total{a=\"1} 1\n",      // unterminated
            "# TYPE x_total counter\nx_total{a=\"\\q\"} 1\n",  // bad escape
            "# TYPE x counter\nx 1\n",                         // counter without _total
            "# TYPE x gauge\nx 1\nx 2\n",                      // duplicate series
            "# TYPE x gauge\nx one\n",                         // bad value
            "# TYPE x gauge\nx 1",                             // no final newline
            "# TYPE x gauge\n# TYPE x gauge\nx 1\n",           // repeated TYPE
            "# TYPE x gauge\nx{1a=\"v\"} 1\n",                 // bad label name
            "# TYPE x gauge\n# TYPE y gauge\nx 1\ny 1\n",      // x under y's TYPE
            "# TYPE x gauge\nx 1\n# TYPE y gauge\ny 1\nx 2\n", // x again after y
        ];
        for text in bad {
            assert!(parse(text).is_err(), "accepted {text:?}");
        }
    }

    #[test]
    fn live_handles_are_rendered_and_dropped_ones_are_not() {
        let client = ClientMetrics::register("ORDERS\"X", "host:orders\\1:8080");
        client.registration(true);
        client.heartbeat(HeartbeatResult::Success);
        client.heartbeat(HeartbeatResult::Success);
        client.heartbeat(HeartbeatResult::Error);
        client.heartbeat(HeartbeatResult::NotFound);
        client.health_check(true);
        client.health_check(false);
        client.set_healthy(Some(false));
        let cache = DiscoveryMetrics::register();
        cache.fetch(FetchKind::Full, true);
        cache.fetch(FetchKind::Delta, false);
        cache.hash_mismatch();
        cache.cached(2, 5);
        cache.refreshed(true);

        let samples = parse(&render()).unwrap();
        let who = [("app", "ORDERS\"X"), ("instance", "host:orders\\1:8080")];
        let value = |name: &str, extra: &[(&str, &str)]| {
            let labels: Vec<_> = who.iter().chain(extra).copied().collect();
            find(&samples, name, &labels).map(|s| s.value)
        };
        assert_eq!(
            value("registrar_heartbeats_total", &[("result", "success")]),
            Some(2.0)
        );
        assert_eq!(
            value("registrar_heartbeats_total", &[("result", "error")]),
            Some(1.0)
        );
        assert_eq!(
            value("registrar_heartbeats_total", &[("result", "not_found")]),
            Some(1.0)
        );
        assert_eq!(
            value("registrar_registrations_total", &[("result", "success")]),
            Some(1.0)
        );
        assert_eq!(
            value("registrar_health_checks_total", &[("result", "failed")]),
            Some(1.0)
        );
        assert_eq!(value("registrar_healthy", &[]), Some(0.0));
        let age = value("registrar_last_success_age_seconds", &[]).unwrap();
        assert!((0.0..60.0).contains(&age), "{age}");

        let id = cache.counts().id.to_string();
        let cache_value = |name: &str, extra: &[(&str, &str)]| {
            let labels: Vec<_> = [("cache", id.as_str())]
                .iter()
                .chain(extra)
                .copied()
                .collect();
            find(&samples, name, &labels).map(|s| s.value)
        };
        assert_eq!(
            cache_value(
                "registrar_discovery_fetches_total",
                &[("kind", "full"), ("result", "success")]
            ),
            Some(1.0)
        );
        assert_eq!(
            cache_value(
                "registrar_discovery_fetches_total",
                &[("kind", "delta"), ("result", "error")]
            ),
            Some(1.0)
        );
        assert_eq!(cache_value("registrar_discovery_instances", &[]), Some(5.0));
        assert_eq!(
            cache_value("registrar_discovery_applications", &[]),
            Some(2.0)
        );
        assert_eq!(
            cache_value("registrar_discovery_hash_mismatches_total", &[]),
            Some(1.0)
        );
        assert!(find(&samples, "registrar_clients", &[]).unwrap().value >= 1.0);

        drop(client);
        drop(cache);
        let samples = parse(&render()).unwrap();
        assert!(find(&samples, "registrar_heartbeats_total", &who).is_none());
        assert!(find(&samples, "registrar_discovery_instances", &[("cache", &id)]).is_none());
    }

    #[test]
    fn moments_report_wall_clock_and_age() {
        let m = Moment::default();
        assert_eq!(m.unix_ms(), None);
        assert_eq!(m.age(), None);
        m.set_now();
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let at = m.unix_ms().unwrap();
        assert!(at.abs_diff(now_ms) < 5_000, "{at} vs {now_ms}");
        assert!(m.age().unwrap() < Duration::from_secs(5));
    }
}
