//! The discovery cache against the real Eureka server (Spring Cloud Netflix, tests/eureka-server).
//!
//! Uses REGISTRAR_TEST_EUREKA_URL when scripts/test.sh provides it; otherwise starts a server
//! with scripts/test-eureka.sh (in REGISTRAR_TEST_RUN_DIR or a temporary directory) and stops
//! it when the test process exits. Every test uses its own app names, so tests can share one
//! registry with each other and with other suites.
//!
//! Instances are registered by registrar itself (the agent) and by raw HTTP requests shaped
//! like the Java client's and like a pure-Python client's (py-eureka-client), so each must come
//! back complete.

use std::collections::BTreeMap;
use std::ffi::{CStr, CString};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::ptr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use registrar::agent::Agent;
use registrar::config::{Config, Settings};
use registrar::discovery::{
    Applications, Choice, Discovery, DiscoveryConfig, Instance, Lookup, Registry,
};
use registrar::error::Error;
use registrar::ffi::*;
use registrar::instance::InstanceStatus;

// ---------------------------------------------------------------------------------------------
// The server.

struct Eureka {
    url: String,
    /// Set when this process started the server (and must stop it).
    dir: Option<PathBuf>,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/test-eureka.sh")
}

fn run_dir() -> PathBuf {
    match std::env::var_os("REGISTRAR_TEST_RUN_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => std::env::temp_dir().join(format!("registrar-discovery-{}", std::process::id())),
    }
}

impl Eureka {
    /// Starts a server of our own in a new subdirectory of the run directory.
    fn start(name: &str) -> Eureka {
        let dir = run_dir().join(format!("{name}-{}", std::process::id()));
        let out = Command::new(script())
            .arg("start")
            .arg(&dir)
            .output()
            .expect("scripts/test-eureka.sh runs");
        // Record the directory first: even a failed start may have left a process to stop.
        let server = Eureka {
            url: String::from_utf8_lossy(&out.stdout).trim().to_string(),
            dir: Some(dir),
        };
        assert!(
            out.status.success(),
            "could not start the test Eureka server: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        server
    }

    fn stop(&self) {
        if let Some(dir) = &self.dir {
            let _ = Command::new(script()).arg("stop").arg(dir).status();
            // A temporary run directory of our own is removed; scripts/test.sh's is kept (logs).
            if std::env::var_os("REGISTRAR_TEST_RUN_DIR").is_none() {
                let _ = std::fs::remove_dir_all(dir);
                let _ = std::fs::remove_dir(run_dir());
            }
        }
    }
}

impl Drop for Eureka {
    fn drop(&mut self) {
        self.stop();
    }
}

static SHARED: OnceLock<Eureka> = OnceLock::new();

extern "C" fn stop_shared_server() {
    if let Some(server) = SHARED.get() {
        server.stop();
    }
}

/// The shared registry: scripts/test.sh's, or one this process starts once and stops at exit.
fn shared_url() -> &'static str {
    &SHARED
        .get_or_init(|| match std::env::var("REGISTRAR_TEST_EUREKA_URL") {
            Ok(url) if !url.is_empty() => Eureka { url, dir: None },
            _ => {
                let server = Eureka::start("discovery-shared");
                // A static is never dropped: stop the server when the test process exits.
                // SAFETY: registering a plain extern "C" function with no arguments.
                unsafe { libc::atexit(stop_shared_server) };
                server
            }
        })
        .url
}

/// A unique tag per test, so app names and VIPs never collide with other tests or runs.
fn tag() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

// ---------------------------------------------------------------------------------------------
// Registrants.

fn http() -> &'static reqwest::blocking::Client {
    static CLIENT: OnceLock<reqwest::blocking::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(10))
            .no_proxy()
            .build()
            .unwrap()
    })
}

fn post(url: &str, app: &str, body: String) {
    let response = http()
        .post(format!("{url}apps/{app}"))
        .header("Content-Type", "application/json")
        .header("Accept", "application/json")
        .body(body)
        .send()
        .unwrap();
    assert_eq!(
        response.status().as_u16(),
        204,
        "{}",
        response.text().unwrap_or_default()
    );
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// What the Java (Spring Cloud) client sends.
fn register_java(url: &str, app: &str, id: &str, port: u16, status: &str, vip: &str, svip: &str) {
    let ts = now_ms();
    let body = format!(
        r#"{{"instance":{{"instanceId":"{id}","hostName":"{id}.java.test","app":"{app}","ipAddr":"10.20.0.1",
        "status":"{status}","overriddenStatus":"UNKNOWN","port":{{"$":{port},"@enabled":"true"}},
        "securePort":{{"$":9443,"@enabled":"false"}},"countryId":1,
        "dataCenterInfo":{{"@class":"com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo","name":"MyOwn"}},
        "leaseInfo":{{"renewalIntervalInSecs":30,"durationInSecs":90,"registrationTimestamp":0,
        "lastRenewalTimestamp":0,"evictionTimestamp":0,"serviceUpTimestamp":0}},
        "metadata":{{"management.port":"{port}","zone":"java-zone"}},
        "homePageUrl":"http://{id}.java.test:{port}/","statusPageUrl":"http://{id}.java.test:{port}/actuator/info",
        "healthCheckUrl":"http://{id}.java.test:{port}/actuator/health","vipAddress":"{vip}",
        "secureVipAddress":"{svip}","isCoordinatingDiscoveryServer":"false",
        "lastUpdatedTimestamp":"{ts}","lastDirtyTimestamp":"{ts}"}}}}"#
    );
    post(url, app, body);
}

/// What py-eureka-client 0.13 sends: `overriddenstatus` in lower case, empty metadata,
/// `secureHealthCheckUrl`, numbers where Java sends strings.
fn register_python(url: &str, app: &str, id: &str, port: u16, status: &str, vip: &str) {
    let ts = now_ms();
    let body = format!(
        r#"{{"instance":{{"instanceId":"{id}","hostName":"{id}.py.test","app":"{app}","ipAddr":"10.30.0.1",
        "status":"{status}","overriddenstatus":"UNKNOWN","port":{{"$":{port},"@enabled":"true"}},
        "securePort":{{"$":443,"@enabled":"false"}},"countryId":1,
        "dataCenterInfo":{{"@class":"com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo","name":"MyOwn"}},
        "leaseInfo":{{"renewalIntervalInSecs":30,"durationInSecs":90,"registrationTimestamp":0,
        "lastRenewalTimestamp":0,"evictionTimestamp":0,"serviceUpTimestamp":0}},
        "metadata":{{}},"homePageUrl":"http://{id}.py.test:{port}/","statusPageUrl":"http://{id}.py.test:{port}/info",
        "healthCheckUrl":"http://{id}.py.test:{port}/health","secureHealthCheckUrl":"",
        "vipAddress":"{vip}","secureVipAddress":"{vip}","lastUpdatedTimestamp":"{ts}",
        "lastDirtyTimestamp":"{ts}","isCoordinatingDiscoveryServer":"false"}}}}"#
    );
    post(url, app, body);
}

/// The operator's status override (`PUT apps/{APP}/{ID}/status?value=...`).
fn override_status(url: &str, app: &str, id: &str, value: &str) {
    let response = http()
        .put(format!("{url}apps/{app}/{id}/status?value={value}"))
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
}

fn deregister(url: &str, app: &str, id: &str) {
    let response = http()
        .delete(format!("{url}apps/{app}/{id}"))
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
}

/// An instance registered (and kept alive, and deregistered when dropped) by registrar itself.
#[allow(clippy::too_many_arguments)]
fn register_agent(
    url: &str,
    app: &str,
    id: &str,
    port: u16,
    status: InstanceStatus,
    vip: &str,
    svip: &str,
    secure_port: Option<u16>,
) -> Agent {
    let mut s = Settings::new();
    let mut set = |k: &str, v: &str| s.set(k, v).unwrap();
    set("url", url);
    set("app_name", app);
    set("instance_id", id);
    set("hostname", &format!("{id}.agent.test"));
    set("ip_address", "127.0.0.1");
    set("port", &port.to_string());
    set("vip_address", vip);
    set("secure_vip_address", svip);
    set("metadata", "zone=z1,owner=registrar");
    set("timeout", "5");
    if let Some(p) = secure_port {
        set("secure_port", &p.to_string());
    }
    let agent = Agent::new(Config::from_settings(&s).unwrap()).unwrap();
    agent.set_status(status).unwrap();
    agent.start().unwrap();
    agent.wait_registered(Duration::from_secs(15)).unwrap();
    agent
}

// ---------------------------------------------------------------------------------------------
// Helpers.

fn discovery(url: &str, interval: Duration) -> Discovery {
    let mut config = DiscoveryConfig::for_url(url).unwrap();
    config.fetch_interval = interval;
    let d = Discovery::new(config).unwrap();
    d.start().unwrap();
    d.wait_ready(Duration::from_secs(15)).unwrap();
    d
}

/// The registry as a fresh `GET apps` shows it now.
fn server_registry(url: &str) -> Applications {
    let body = http()
        .get(format!("{url}apps"))
        .header("Accept", "application/json")
        .send()
        .unwrap()
        .bytes()
        .unwrap();
    Applications::parse(&body).unwrap()
}

/// The instances of some apps (every status), by id, from a parsed `GET apps`.
fn server_apps(url: &str, apps: &[&str]) -> BTreeMap<String, Instance> {
    server_registry(url)
        .instances
        .into_iter()
        .map(|(_, i)| i)
        .filter(|i| apps.iter().any(|a| i.app.as_str() == *a))
        .map(|i| (format!("{}/{}", i.app, i.instance_id), i))
        .collect()
}

fn cached_apps(d: &Discovery, apps: &[&str]) -> BTreeMap<String, Instance> {
    let registry = d.registry().unwrap();
    apps.iter()
        .flat_map(|a| registry.instances(Lookup::App, a, true).to_vec())
        .map(|i| (format!("{}/{}", i.app, i.instance_id), (*i).clone()))
        .collect()
}

/// Refreshes until the cache shows these apps exactly as a fresh full fetch does.
fn wait_until_cache_matches_server(d: &Discovery, url: &str, apps: &[&str], what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        d.refresh(Duration::from_secs(10)).unwrap();
        let (cached, server) = (cached_apps(d, apps), server_apps(url, apps));
        if cached == server {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: the cache never matched a full fetch\ncache:  {:?}\nserver: {:?}",
            cached.keys().collect::<Vec<_>>(),
            server.keys().collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn ids(list: &[Arc<Instance>]) -> Vec<&str> {
    list.iter().map(|i| i.instance_id.as_str()).collect()
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

// ---------------------------------------------------------------------------------------------

#[test]
fn queries_by_app_vip_secure_vip_and_id_with_the_up_filter() {
    let url = shared_url();
    let t = tag();
    let (app_a, app_b) = (format!("DISC_A_{t}"), format!("DISC_B_{t}"));
    let (vip_a, svip_a) = (format!("vip-a-{t}"), format!("svip-a-{t}"));
    let (vip_b, svip_b, shared) = (
        format!("vip-b-{t}"),
        format!("svip-b-{t}"),
        format!("vip-shared-{t}"),
    );
    let id = |s: &str| format!("{s}-{t}");

    // Registered by registrar itself: two UP (one with its secure port), one DOWN.
    let _a1 = register_agent(
        url,
        &app_a,
        &id("a1"),
        8001,
        InstanceStatus::Up,
        &vip_a,
        &svip_a,
        Some(8443),
    );
    let _a2 = register_agent(
        url,
        &app_a,
        &id("a2"),
        8002,
        InstanceStatus::Up,
        &vip_a,
        &svip_a,
        None,
    );
    let _a3 = register_agent(
        url,
        &app_a,
        &id("a3"),
        8003,
        InstanceStatus::Down,
        &vip_a,
        &svip_a,
        None,
    );
    // Registered like the Java and Python clients: UP, STARTING, UP overridden OUT_OF_SERVICE, UP.
    register_java(
        url,
        &app_b,
        &id("b1"),
        9001,
        "UP",
        &format!("{vip_b},{shared}"),
        &svip_b,
    );
    register_python(url, &app_b, &id("b2"), 9002, "STARTING", &vip_b);
    register_java(url, &app_b, &id("b3"), 9003, "UP", &vip_b, &svip_b);
    override_status(url, &app_b, &id("b3"), "OUT_OF_SERVICE");
    register_python(url, &app_b, &id("b4"), 9004, "UP", &shared);

    let d = discovery(url, Duration::from_secs(1));
    let apps = [app_a.as_str(), app_b.as_str()];
    wait_until_cache_matches_server(&d, url, &apps, "initial");
    let r = d.registry().unwrap();

    // By app, case-insensitive; UP only unless every status is asked for.
    assert_eq!(
        ids(r.instances(Lookup::App, &app_a.to_lowercase(), false)),
        [id("a1"), id("a2")]
    );
    assert_eq!(
        ids(r.instances(Lookup::App, &app_a, true)),
        [id("a1"), id("a2"), id("a3")]
    );
    assert_eq!(
        ids(r.instances(Lookup::App, &app_b, false)),
        [id("b1"), id("b4")]
    );
    assert_eq!(ids(r.instances(Lookup::App, &app_b, true)).len(), 4);
    // By VIP and secure VIP, exact; comma-separated lists split.
    assert_eq!(
        ids(r.instances(Lookup::Vip, &vip_a, false)),
        [id("a1"), id("a2")]
    );
    assert_eq!(
        ids(r.instances(Lookup::Vip, &shared, false)),
        [id("b1"), id("b4")]
    );
    assert_eq!(
        ids(r.instances(Lookup::Vip, &vip_b, true)),
        [id("b1"), id("b2"), id("b3")]
    );
    assert!(r
        .instances(Lookup::Vip, &vip_b.to_uppercase(), true)
        .is_empty());
    assert_eq!(
        ids(r.instances(Lookup::SecureVip, &svip_a, false)),
        [id("a1"), id("a2")]
    );
    assert_eq!(
        ids(r.instances(Lookup::SecureVip, &svip_b, true)),
        [id("b1"), id("b3")]
    );
    assert!(r
        .instances(Lookup::Vip, &format!("{vip_b},{shared}"), true)
        .is_empty());

    // By id, complete, whatever the status.
    let a1 = &r.instance(&id("a1"))[0];
    assert_eq!(a1.app.as_str(), app_a);
    assert_eq!(a1.host_name.as_str(), format!("{}.agent.test", id("a1")));
    assert_eq!(a1.ip_addr, "127.0.0.1");
    assert_eq!(
        (
            a1.port,
            a1.port_enabled,
            a1.secure_port,
            a1.secure_port_enabled
        ),
        (8001, true, 8443, true)
    );
    assert_eq!(a1.metadata_value("zone"), Some("z1"));
    assert_eq!(a1.metadata_value("owner"), Some("registrar"));
    assert_eq!(
        a1.health_check_url.as_str(),
        format!("http://{}.agent.test:8001/healthcheck", id("a1"))
    );
    assert_eq!(
        a1.base_url(true, false),
        format!("https://{}.agent.test:8443", id("a1"))
    );
    assert_eq!(a1.base_url(false, true), "http://127.0.0.1:8001");
    assert!(a1.last_dirty_timestamp > 0 && a1.last_updated_timestamp > 0);
    assert_eq!(r.instance(&id("a3"))[0].status, InstanceStatus::Down);

    let b1 = &r.instance(&id("b1"))[0];
    assert_eq!(b1.host_name.as_str(), format!("{}.java.test", id("b1")));
    assert_eq!(b1.ip_addr, "10.20.0.1");
    assert_eq!(
        (
            b1.port,
            b1.port_enabled,
            b1.secure_port,
            b1.secure_port_enabled
        ),
        (9001, true, 9443, false)
    );
    assert_eq!(b1.status, InstanceStatus::Up);
    assert_eq!(b1.overridden_status, InstanceStatus::Unknown);
    assert_eq!(b1.metadata_value("management.port"), Some("9001"));
    assert_eq!(b1.metadata.len(), 2);
    assert_eq!(
        b1.status_page_url.as_str(),
        format!("http://{}.java.test:9001/actuator/info", id("b1"))
    );
    assert_eq!(b1.vip_address.as_str(), format!("{vip_b},{shared}"));
    assert_eq!(
        b1.base_url(true, false),
        format!("http://{}.java.test:9001", id("b1")),
        "secure port disabled"
    );
    let b2 = &r.instance(&id("b2"))[0];
    assert_eq!(b2.status, InstanceStatus::Starting);
    assert!(
        b2.metadata.is_empty(),
        "the server's @class for an empty map is dropped"
    );
    assert_eq!(
        b2.home_page_url.as_str(),
        format!("http://{}.py.test:9002/", id("b2"))
    );
    let b3 = &r.instance(&id("b3"))[0];
    assert_eq!(b3.status, InstanceStatus::OutOfService);
    assert_eq!(b3.overridden_status, InstanceStatus::OutOfService);

    // DOWN, STARTING and OUT_OF_SERVICE are left out of queries but counted in the hash code,
    // which our parse of a real registry reproduces exactly.
    let full = server_registry(url);
    let ours = registrar::eureka::read::reconcile_hashcode(
        full.instances.iter().map(|(_, i)| i.status_name()),
    );
    assert_eq!(ours, full.apps_hashcode);
    assert!(full.apps_hashcode.contains("DOWN_") && full.apps_hashcode.contains("OUT_OF_SERVICE_"));
    assert_eq!(Registry::from_applications(full, None).hashcode(), ours);

    // Round robin visits every UP instance evenly.
    let mut counts = BTreeMap::new();
    for _ in 0..1000 {
        let chosen = r.choose(Lookup::App, &app_a, Choice::RoundRobin).unwrap();
        *counts.entry(chosen.instance_id.to_string()).or_insert(0) += 1;
    }
    assert_eq!(counts, BTreeMap::from([(id("a1"), 500), (id("a2"), 500)]));
    let mut counts = BTreeMap::new();
    for _ in 0..1000 {
        let chosen = r.choose(Lookup::Vip, &shared, Choice::RoundRobin).unwrap();
        *counts.entry(chosen.instance_id.to_string()).or_insert(0) += 1;
    }
    assert_eq!(counts, BTreeMap::from([(id("b1"), 500), (id("b4"), 500)]));

    d.stop(Duration::from_secs(10)).unwrap();
    for b in ["b1", "b2", "b3", "b4"] {
        deregister(url, &app_b, &id(b));
    }
}

#[test]
fn deltas_follow_register_status_change_and_deregister() {
    let url = shared_url();
    let t = tag();
    let app = format!("DISC_DELTA_{t}");
    let id = |s: &str| format!("{s}-{t}");
    let c1 = register_agent(
        url,
        &app,
        &id("c1"),
        7001,
        InstanceStatus::Up,
        "delta-vip",
        "delta-vip",
        None,
    );
    let d = discovery(url, Duration::from_millis(500));
    let apps = [app.as_str()];
    wait_until_cache_matches_server(&d, url, &apps, "start");
    let fulls_at_start = d.info().counters.full_fetches;

    // A new instance (Java-shaped).
    register_java(url, &app, &id("c2"), 7002, "UP", "delta-vip", "delta-vip");
    wait_until_cache_matches_server(&d, url, &apps, "after a registration");
    assert_eq!(
        ids(d.registry().unwrap().instances(Lookup::App, &app, false)),
        [id("c1"), id("c2")]
    );

    // A status change by the registrant (registrar re-registers with the new status).
    c1.set_status(InstanceStatus::Down).unwrap();
    c1.wait_registered(Duration::from_secs(10)).unwrap();
    wait_until_cache_matches_server(&d, url, &apps, "after a status change");
    assert_eq!(
        d.registry().unwrap().instance(&id("c1"))[0].status,
        InstanceStatus::Down
    );
    assert_eq!(
        ids(d.registry().unwrap().instances(Lookup::App, &app, false)),
        [id("c2")]
    );

    // An operator's override.
    override_status(url, &app, &id("c2"), "OUT_OF_SERVICE");
    wait_until_cache_matches_server(&d, url, &apps, "after an override");
    assert!(d
        .registry()
        .unwrap()
        .instances(Lookup::App, &app, false)
        .is_empty());
    assert!(d
        .registry()
        .unwrap()
        .choose(Lookup::App, &app, Choice::Random)
        .is_none());

    // A deregistration, then registrar's own stop (DOWN, then DELETE).
    deregister(url, &app, &id("c2"));
    wait_until_cache_matches_server(&d, url, &apps, "after a deregistration");
    assert!(d.registry().unwrap().instance(&id("c2")).is_empty());
    c1.stop(Duration::from_secs(10)).unwrap();
    wait_until_cache_matches_server(&d, url, &apps, "after the agent stopped");
    assert!(d
        .registry()
        .unwrap()
        .instances(Lookup::App, &app, true)
        .is_empty());

    // All of that travelled by deltas; any extra full fetch is explained by a hash mismatch.
    let info = d.info();
    eprintln!("delta test counters: {:?}", info.counters);
    assert!(info.counters.delta_fetches >= 5, "{:?}", info.counters);
    assert!(
        info.counters.full_fetches <= fulls_at_start + info.counters.hash_mismatches,
        "{:?}",
        info.counters
    );
    assert!(info.version >= 5);
    d.stop(Duration::from_secs(10)).unwrap();
}

#[test]
fn the_c_api_against_the_real_registry() {
    use registrar_status::*;
    let url = shared_url();
    let t = tag();
    let app = format!("DISC_C_{t}");
    let id = |s: &str| format!("{s}-{t}");
    register_java(
        url,
        &app,
        &id("x1"),
        6001,
        "UP",
        &format!("c-vip-{t}"),
        &format!("c-svip-{t}"),
    );
    register_python(url, &app, &id("x2"), 6002, "UP", &format!("c-vip-{t}"));
    register_java(
        url,
        &app,
        &id("x3"),
        6003,
        "DOWN",
        &format!("c-vip-{t}"),
        &format!("c-svip-{t}"),
    );

    let mut config = ptr::null_mut();
    assert_eq!(registrar_config_new(&mut config), REGISTRAR_OK);
    let (k, v) = (CString::new("url").unwrap(), CString::new(url).unwrap());
    assert_eq!(
        registrar_config_set(config, k.as_ptr(), v.as_ptr()),
        REGISTRAR_OK
    );
    let mut d = ptr::null_mut();
    assert_eq!(registrar_discovery_new(config, &mut d), REGISTRAR_OK);
    registrar_config_free(config);
    assert_eq!(registrar_discovery_start(d), REGISTRAR_OK);
    assert_eq!(registrar_discovery_wait_ready(d, 15_000), REGISTRAR_OK);

    let name = CString::new(app.to_lowercase()).unwrap();
    let mut list = ptr::null_mut();
    assert_eq!(
        registrar_discovery_instances(d, REGISTRAR_LOOKUP_APP, name.as_ptr(), 0, &mut list),
        REGISTRAR_OK
    );
    let mut lines = Vec::new();
    for i in 0..registrar_instance_list_len(list) {
        let inst = unsafe { &*registrar_instance_list_get(list, i) };
        let s = |p| unsafe { CStr::from_ptr(p) }.to_str().unwrap().to_string();
        let status = s(registrar_instance_status_str(inst.status as i32));
        lines.push(format!(
            "{} {}:{} {}",
            s(inst.instance_id),
            s(inst.host_name),
            inst.port,
            status
        ));
        if s(inst.instance_id) == id("x1") {
            assert_eq!(inst.metadata_len, 2);
            let entries = unsafe { std::slice::from_raw_parts(inst.metadata, inst.metadata_len) };
            assert_eq!(s(entries[0].key), "management.port");
            assert_eq!(s(entries[0].value), "6001");
            assert_eq!(s(entries[1].key), "zone");
        }
    }
    registrar_instance_list_free(list);
    assert_eq!(
        lines,
        [
            format!("{} {}.java.test:6001 UP", id("x1"), id("x1")),
            format!("{} {}.py.test:6002 UP", id("x2"), id("x2")),
        ]
    );

    let mut url_buf = [0u8; 256];
    let mut len = 0;
    let mut seen = std::collections::BTreeSet::new();
    let vip = CString::new(format!("c-vip-{t}")).unwrap();
    for _ in 0..4 {
        assert_eq!(
            registrar_discovery_choose_url(
                d,
                REGISTRAR_LOOKUP_VIP,
                vip.as_ptr(),
                REGISTRAR_CHOICE_ROUND_ROBIN,
                0,
                url_buf.as_mut_ptr().cast(),
                url_buf.len(),
                &mut len
            ),
            REGISTRAR_OK
        );
        seen.insert(String::from_utf8(url_buf[..len].to_vec()).unwrap());
    }
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        [
            format!("http://{}.java.test:6001", id("x1")),
            format!("http://{}.py.test:6002", id("x2"))
        ]
    );
    let mut info: registrar_discovery_info = unsafe { std::mem::zeroed() };
    assert_eq!(registrar_discovery_get_info(d, &mut info), REGISTRAR_OK);
    assert_eq!((info.ready, info.last_error), (1, REGISTRAR_OK));
    assert!(info.instances >= 3);
    registrar_discovery_free(d);
    for x in ["x1", "x2", "x3"] {
        deregister(url, &app, &id(x));
    }
}

#[test]
fn the_last_good_registry_survives_the_server_going_down() {
    // A server of our own, since we stop it.
    let server = Eureka::start("discovery-down");
    let url = server.url.clone();
    let app = format!("DISC_DOWN_{}", tag());
    register_java(&url, &app, "d1", 5001, "UP", "down-vip", "down-vip");
    let d = discovery(&url, Duration::from_millis(200));
    wait_for("the instance in the cache", || {
        d.registry()
            .unwrap()
            .instances(Lookup::App, &app, false)
            .len()
            == 1
    });

    server.stop();
    let error = d.refresh(Duration::from_secs(15)).unwrap_err();
    assert!(
        matches!(error, Error::Transport(_) | Error::Timeout(_)),
        "{error}"
    );
    // Still there, still answered from memory, with its age growing and the reason reported.
    let age = d.info().age.unwrap();
    wait_for("a few failed refreshes", || {
        d.info().counters.failed_refreshes >= 3
    });
    let info = d.info();
    assert!(info.age.unwrap() > age, "{info:?}");
    assert!(info.last_error.is_some());
    assert_eq!(
        ids(d.registry().unwrap().instances(Lookup::App, &app, false)),
        ["d1"]
    );
    assert_eq!(
        d.registry()
            .unwrap()
            .choose(Lookup::Vip, "down-vip", Choice::RoundRobin)
            .unwrap()
            .base_url(false, false),
        "http://d1.java.test:5001"
    );
    d.stop(Duration::from_secs(10)).unwrap();
}
