//! The discovery cache against an in-process stub server, for what a real Eureka server cannot
//! be made to do on demand: a delta whose hash code does not match, registries in the odd
//! shapes other servers send (single objects, numbers and booleans as strings), a server that
//! goes away or answers garbage. Also the C API's contract (nulls, flags, stop, listener).

mod common;

use std::ffi::{c_void, CStr, CString};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::stub::gzip_stored;
use registrar::discovery::{Choice, Discovery, DiscoveryConfig, Lookup};
use registrar::error::Error;
use registrar::ffi::*;
use registrar::instance::InstanceStatus;

// ---------------------------------------------------------------------------------------------
// The stub: serves GET /eureka/apps and /eureka/apps/delta from what the test set last.

#[derive(Clone)]
enum Answer {
    Json(String),
    /// The JSON gzip-compressed, sent with `Content-Encoding: gzip` only if the request
    /// accepted it (else as plain JSON).
    Gzip(String),
    Status(u16),
    /// Accept the connection and close it without answering.
    Close,
}

struct StubState {
    full: Answer,
    delta: Answer,
    full_requests: u64,
    delta_requests: u64,
    /// The Accept-Encoding header of the last request.
    accept_encoding: String,
}

struct Stub {
    url: String,
    state: Arc<Mutex<StubState>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Stub {
    fn start(full: &str) -> Stub {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}/eureka/", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(StubState {
            full: Answer::Json(full.to_string()),
            delta: Answer::Status(404),
            full_requests: 0,
            delta_requests: 0,
            accept_encoding: String::new(),
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (state, stop) = (state.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, _)) => serve(stream, &state),
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            })
        };
        Stub {
            url,
            state,
            stop,
            thread: Some(thread),
        }
    }

    fn set_full(&self, answer: Answer) {
        self.state.lock().unwrap().full = answer;
    }

    fn set_delta(&self, answer: Answer) {
        self.state.lock().unwrap().delta = answer;
    }

    fn requests(&self) -> (u64, u64) {
        let s = self.state.lock().unwrap();
        (s.full_requests, s.delta_requests)
    }
}

impl Drop for Stub {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One request per connection (we answer with `Connection: close`).
fn serve(mut stream: TcpStream, state: &Mutex<StubState>) {
    stream.set_nonblocking(false).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut request = Vec::new();
    let mut buf = [0u8; 4096];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    let line = String::from_utf8_lossy(&request);
    let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
    let accept_encoding = line
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("accept-encoding")
                .then(|| value.trim().to_string())
        })
        .unwrap_or_default();
    let gzip_ok = accept_encoding.contains("gzip");
    let answer = {
        let mut s = state.lock().unwrap();
        s.accept_encoding = accept_encoding;
        if path.ends_with("/apps/delta") {
            s.delta_requests += 1;
            s.delta.clone()
        } else if path.ends_with("/apps") {
            s.full_requests += 1;
            s.full.clone()
        } else {
            Answer::Status(404)
        }
    };
    let (status, body) = match answer {
        Answer::Json(body) => (200, body),
        Answer::Gzip(body) if gzip_ok => {
            let packed = gzip_stored(body.as_bytes());
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                packed.len()
            );
            let _ = stream.write_all(&packed);
            return;
        }
        Answer::Gzip(body) => (200, body),
        Answer::Status(code) => (code, format!("stub says {code}")),
        Answer::Close => return,
    };
    let content_type = if status == 200 {
        "application/json"
    } else {
        "text/plain"
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

// ---------------------------------------------------------------------------------------------
// Registry documents.

fn instance(app: &str, id: &str, status: &str, action: &str) -> String {
    format!(
        r#"{{"instanceId":"{id}","hostName":"{id}.example","app":"{app}","ipAddr":"10.1.0.1",
        "status":"{status}","overriddenStatus":"UNKNOWN","port":{{"$":8080,"@enabled":"true"}},
        "securePort":{{"$":8443,"@enabled":"false"}},"countryId":1,
        "dataCenterInfo":{{"@class":"com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo","name":"MyOwn"}},
        "metadata":{{"@class":"java.util.Collections$EmptyMap"}},
        "vipAddress":"{vip}","secureVipAddress":"{vip}","lastUpdatedTimestamp":"1","lastDirtyTimestamp":"1",
        "actionType":"{action}"}}"#,
        vip = app.to_lowercase()
    )
}

fn registry(hash: &str, apps: &[(&str, Vec<String>)]) -> String {
    let apps: Vec<String> = apps
        .iter()
        .map(|(name, instances)| {
            format!(
                r#"{{"name":"{name}","instance":[{}]}}"#,
                instances.join(",")
            )
        })
        .collect();
    format!(
        r#"{{"applications":{{"versions__delta":"1","apps__hashcode":"{hash}","application":[{}]}}}}"#,
        apps.join(",")
    )
}

fn config(url: &str, interval_secs: f64) -> DiscoveryConfig {
    let mut c = DiscoveryConfig::for_url(url).unwrap();
    c.fetch_interval = Duration::from_secs_f64(interval_secs);
    c.timeout = Duration::from_secs(2);
    c
}

fn ids(discovery: &Discovery, app: &str, all: bool) -> Vec<String> {
    discovery
        .registry()
        .unwrap()
        .instances(Lookup::App, app, all)
        .iter()
        .map(|i| i.instance_id.to_string())
        .collect()
}

const WAIT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------

#[test]
fn single_objects_and_string_typed_json_come_back_complete() {
    // What some servers and hand-written registrants produce: a single application object, a
    // single instance object, numbers and booleans as strings, the legacy `overriddenstatus`,
    // an `@class` in metadata, a missing instance list, an unknown status.
    let body = r#"{"applications": {"versions__delta": "3", "apps__hashcode": "OUT_OF_SERVICE_1_RESTARTING_1_",
      "application": [
        {"name": "ODD", "instance": {
          "instanceId": "odd-1", "hostName": "odd.example", "app": "odd", "ipAddr": "10.9.9.9",
          "status": "OUT_OF_SERVICE", "overriddenstatus": "OUT_OF_SERVICE",
          "port": {"$": "9090", "@enabled": "true"}, "securePort": {"$": "9443", "@enabled": "true"},
          "metadata": {"@class": "java.util.LinkedHashMap", "zone": "z1", "weight": 3, "canary": true},
          "homePageUrl": "http://odd.example:9090/", "statusPageUrl": "http://odd.example:9090/info",
          "healthCheckUrl": "http://odd.example:9090/health",
          "vipAddress": "odd-vip,odd-alias", "secureVipAddress": "odd-secure",
          "lastUpdatedTimestamp": "1700000000123", "lastDirtyTimestamp": 1700000000100,
          "isCoordinatingDiscoveryServer": "false", "leaseInfo": {"durationInSecs": "90"}}},
        {"name": "EMPTY"},
        {"name": "WEIRD", "instance": [{"instanceId": "w-1", "hostName": "w", "status": "RESTARTING"}]}
      ]}}"#;
    let stub = Stub::start(body);
    let discovery = Discovery::new(config(&stub.url, 60.0)).unwrap();
    discovery.start().unwrap();
    discovery.wait_ready(WAIT).unwrap();
    let registry = discovery.registry().unwrap();
    assert_eq!(registry.len(), 2);
    // An unknown status counts under its own name, as the server counts it.
    assert_eq!(registry.hashcode(), "OUT_OF_SERVICE_1_RESTARTING_1_");

    let odd = &registry.instance("odd-1")[0];
    assert_eq!(odd.app, "ODD");
    assert_eq!(odd.host_name, "odd.example");
    assert_eq!(odd.ip_addr, "10.9.9.9");
    assert_eq!((odd.port, odd.port_enabled), (9090, true));
    assert_eq!((odd.secure_port, odd.secure_port_enabled), (9443, true));
    assert_eq!(odd.status, InstanceStatus::OutOfService);
    assert_eq!(odd.overridden_status, InstanceStatus::OutOfService);
    assert_eq!(odd.metadata_value("zone"), Some("z1"));
    assert_eq!(odd.metadata_value("weight"), Some("3"));
    assert_eq!(odd.metadata_value("canary"), Some("true"));
    assert_eq!(odd.metadata.len(), 3, "@class is dropped");
    assert_eq!(odd.home_page_url, "http://odd.example:9090/");
    assert_eq!(odd.status_page_url, "http://odd.example:9090/info");
    assert_eq!(odd.health_check_url, "http://odd.example:9090/health");
    assert_eq!(odd.last_updated_timestamp, 1_700_000_000_123);
    assert_eq!(odd.last_dirty_timestamp, 1_700_000_000_100);
    assert_eq!(odd.base_url(true, false), "https://odd.example:9443");

    // The OUT_OF_SERVICE instance is listed only when every status is asked for.
    assert!(ids(&discovery, "odd", false).is_empty());
    assert_eq!(ids(&discovery, "odd", true), ["odd-1"]);
    let vip = registry.instances(Lookup::Vip, "odd-alias", true);
    assert_eq!(vip.len(), 1);
    assert_eq!(
        registry.instances(Lookup::SecureVip, "odd-secure", true)[0].instance_id,
        "odd-1"
    );
    assert_eq!(
        registry.instance("w-1")[0].status,
        InstanceStatus::Unknown,
        "unknown statuses read as UNKNOWN"
    );
    assert_eq!(registry.instance("w-1")[0].status_name(), "RESTARTING");
    // So a delta checked against the server's hash code does not mismatch on it.
    stub.set_delta(Answer::Json(
        r#"{"applications": {"apps__hashcode": "OUT_OF_SERVICE_1_RESTARTING_1_", "application": []}}"#.into(),
    ));
    discovery.refresh(WAIT).unwrap();
    assert_eq!(discovery.info().counters.hash_mismatches, 0);
    assert_eq!(stub.requests(), (1, 1));
    assert!(registry.instances(Lookup::App, "EMPTY", true).is_empty());
    discovery.stop(WAIT).unwrap();
}

#[test]
fn deltas_apply_idempotently_and_a_hash_mismatch_forces_a_full_fetch() {
    let v1 = registry(
        "UP_2_",
        &[(
            "APP",
            vec![
                instance("APP", "a1", "UP", "ADDED"),
                instance("APP", "a2", "UP", "ADDED"),
            ],
        )],
    );
    let stub = Stub::start(&v1);
    let discovery = Discovery::new(config(&stub.url, 3600.0)).unwrap();
    discovery.start().unwrap();
    discovery.wait_ready(WAIT).unwrap();
    assert_eq!(ids(&discovery, "app", false), ["a1", "a2"]);
    let v = discovery.version();
    assert_eq!(v, 1);

    // A correct delta: a2 goes DOWN, a3 arrives. Applied without a full fetch.
    let delta = registry(
        "DOWN_1_UP_2_",
        &[(
            "APP",
            vec![
                instance("APP", "a2", "DOWN", "MODIFIED"),
                instance("APP", "a3", "UP", "ADDED"),
            ],
        )],
    );
    stub.set_delta(Answer::Json(delta));
    discovery.refresh(WAIT).unwrap();
    assert_eq!(ids(&discovery, "app", false), ["a1", "a3"]);
    assert_eq!(ids(&discovery, "app", true), ["a1", "a2", "a3"]);
    assert_eq!(discovery.version(), 2);
    assert_eq!(stub.requests(), (1, 1));

    // The same delta again (the server keeps changes for minutes): nothing changes.
    discovery.refresh(WAIT).unwrap();
    assert_eq!(discovery.version(), 2, "re-applying a delta is a no-op");
    assert_eq!(stub.requests(), (1, 2));

    // A delta whose hash code disagrees with ours (we missed something): full fetch.
    let v3 = registry(
        "UP_3_",
        &[
            (
                "APP",
                vec![
                    instance("APP", "a1", "UP", "ADDED"),
                    instance("APP", "a3", "UP", "ADDED"),
                ],
            ),
            ("OTHER", vec![instance("OTHER", "o1", "UP", "ADDED")]),
        ],
    );
    stub.set_full(Answer::Json(v3));
    stub.set_delta(Answer::Json(registry(
        "UP_3_",
        &[("APP", vec![instance("APP", "a1", "UP", "MODIFIED")])],
    )));
    discovery.refresh(WAIT).unwrap();
    let info = discovery.info();
    assert_eq!(info.counters.hash_mismatches, 1);
    assert_eq!(info.counters.full_fetches, 2);
    assert_eq!(stub.requests(), (2, 3));
    assert_eq!(ids(&discovery, "app", true), ["a1", "a3"], "a2 is gone");
    assert_eq!(ids(&discovery, "other", false), ["o1"]);
    assert_eq!(discovery.registry().unwrap().hashcode(), "UP_3_");
    assert_eq!(discovery.version(), 3);

    // A failing delta endpoint also falls back to the full registry.
    stub.set_delta(Answer::Status(500));
    discovery.refresh(WAIT).unwrap();
    assert_eq!(stub.requests(), (3, 4));
    assert_eq!(discovery.version(), 3, "same content: no new version");
    assert!(discovery.info().last_error.is_none());
    discovery.stop(WAIT).unwrap();
}

#[test]
fn an_unreachable_or_garbled_server_keeps_the_last_good_registry() {
    let v1 = registry(
        "UP_1_",
        &[("APP", vec![instance("APP", "a1", "UP", "ADDED")])],
    );
    let stub = Stub::start(&v1);
    let discovery = Discovery::new(config(&stub.url, 3600.0)).unwrap();
    discovery.start().unwrap();
    discovery.wait_ready(WAIT).unwrap();

    for (answer, expect) in [
        (Answer::Status(503), "503"),
        (Answer::Close, ""),
        (
            Answer::Json("<html>gateway error</html>".into()),
            "not a readable",
        ),
        (Answer::Status(401), "credentials"),
    ] {
        stub.set_full(answer.clone());
        stub.set_delta(answer);
        let error = discovery.refresh(WAIT).unwrap_err();
        assert!(error.to_string().contains(expect), "{error}");
        assert_eq!(ids(&discovery, "app", false), ["a1"], "kept after: {error}");
        let info = discovery.info();
        assert_eq!(info.last_error, Some(error));
        assert_eq!(info.version, 1);
    }
    let age = discovery.info().age.unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert!(discovery.info().age.unwrap() >= age + Duration::from_millis(200));
    assert!(discovery.info().counters.failed_refreshes >= 4);

    // The server itself gone (connection refused): same.
    drop(stub);
    assert!(matches!(
        discovery.refresh(WAIT),
        Err(Error::Transport(_)) | Err(Error::Timeout(_))
    ));
    assert_eq!(ids(&discovery, "app", false), ["a1"]);

    discovery.stop(WAIT).unwrap();
}

#[test]
fn recovers_when_the_server_answers_again() {
    let v1 = registry(
        "UP_1_",
        &[("APP", vec![instance("APP", "a1", "UP", "ADDED")])],
    );
    let stub = Stub::start(&v1);
    let discovery = Discovery::new(config(&stub.url, 0.05)).unwrap();
    stub.set_full(Answer::Status(500));
    discovery.start().unwrap();
    let e = discovery
        .wait_ready(Duration::from_millis(300))
        .unwrap_err();
    assert!(e.to_string().contains("HTTP 500"), "{e}");
    assert!(discovery.registry().is_none());
    stub.set_full(Answer::Json(v1));
    // The failing cache retries with backoff (100 ms, 200 ms, ...), not only every interval.
    discovery.wait_ready(WAIT).unwrap();
    assert_eq!(ids(&discovery, "app", false), ["a1"]);
    let deadline = Instant::now() + WAIT;
    while discovery.info().last_error.is_some() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(discovery.info().last_error.is_none());
    discovery.stop(WAIT).unwrap();
}

#[test]
fn round_robin_and_random_over_up_instances() {
    let body = registry(
        "DOWN_1_UP_3_",
        &[(
            "APP",
            vec![
                instance("APP", "a1", "UP", "ADDED"),
                instance("APP", "a2", "DOWN", "ADDED"),
                instance("APP", "a3", "UP", "ADDED"),
                instance("APP", "a4", "UP", "ADDED"),
            ],
        )],
    );
    let stub = Stub::start(&body);
    let discovery = Discovery::new(config(&stub.url, 3600.0)).unwrap();
    discovery.start().unwrap();
    discovery.wait_ready(WAIT).unwrap();
    let registry = discovery.registry().unwrap();
    let mut counts = std::collections::BTreeMap::new();
    for _ in 0..300 {
        let chosen = registry
            .choose(Lookup::App, "App", Choice::RoundRobin)
            .unwrap();
        *counts.entry(chosen.instance_id.to_string()).or_insert(0) += 1;
    }
    assert_eq!(
        counts.into_iter().collect::<Vec<_>>(),
        [("a1".into(), 100), ("a3".into(), 100), ("a4".into(), 100)]
    );
    let mut counts = std::collections::BTreeMap::new();
    for _ in 0..3000 {
        let chosen = registry.choose(Lookup::Vip, "app", Choice::Random).unwrap();
        *counts.entry(chosen.instance_id.to_string()).or_insert(0) += 1;
    }
    assert_eq!(counts.len(), 3, "{counts:?}");
    assert!(counts.values().all(|c| *c > 800), "{counts:?}");
    discovery.stop(WAIT).unwrap();
}

// ---------------------------------------------------------------------------------------------
// The C API.

fn last_error() -> String {
    let mut buf = vec![0u8; 2048];
    let n = registrar_last_error_message(buf.as_mut_ptr().cast(), buf.len());
    buf.truncate(n.min(buf.len() - 1));
    String::from_utf8(buf).unwrap()
}

fn c_config(url: &str, pairs: &[(&str, &str)]) -> *mut registrar_config {
    let mut config = ptr::null_mut();
    assert_eq!(
        registrar_config_new(&mut config),
        registrar_status::REGISTRAR_OK
    );
    let set = |k: &str, v: &str| {
        let (k, v) = (CString::new(k).unwrap(), CString::new(v).unwrap());
        assert_eq!(
            registrar_config_set(config, k.as_ptr(), v.as_ptr()),
            registrar_status::REGISTRAR_OK,
            "{}",
            last_error()
        );
    };
    set("url", url);
    for (k, v) in pairs {
        set(k, v);
    }
    config
}

unsafe fn text(p: *const std::ffi::c_char) -> String {
    CStr::from_ptr(p).to_str().unwrap().to_string()
}

fn list_ids(list: *const registrar_instance_list) -> Vec<String> {
    (0..registrar_instance_list_len(list))
        .map(|i| unsafe { text((*registrar_instance_list_get(list, i)).instance_id) })
        .collect()
}

unsafe extern "C" fn count_changes(user_data: *mut c_void, version: u64) {
    let seen = &*(user_data as *const AtomicU64);
    seen.store(version, Ordering::SeqCst);
}

static FREED: AtomicU64 = AtomicU64::new(0);

unsafe extern "C" fn free_counter(user_data: *mut c_void) {
    drop(Box::from_raw(user_data as *mut AtomicU64));
    FREED.fetch_add(1, Ordering::SeqCst);
}

#[test]
fn c_api_queries_lists_listener_and_stop() {
    use registrar_status::*;
    let body = registry(
        "STARTING_1_UP_2_",
        &[
            (
                "APP",
                vec![
                    instance("APP", "a1", "UP", "ADDED"),
                    instance("APP", "a2", "STARTING", "ADDED"),
                ],
            ),
            ("BEE", vec![instance("BEE", "b1", "UP", "ADDED")]),
        ],
    );
    let stub = Stub::start(&body);
    // No REGISTRY_APP_NAME: a discovery-only process needs none.
    let config = c_config(&stub.url, &[("timeout", "2")]);
    let mut d: *mut registrar_discovery = ptr::null_mut();
    assert_eq!(
        registrar_discovery_new(config, &mut d),
        REGISTRAR_OK,
        "{}",
        last_error()
    );
    registrar_config_free(config);

    // Before start: empty answers, and choose says why it has nothing.
    let app = CString::new("app").unwrap();
    let mut list: *mut registrar_instance_list = ptr::null_mut();
    assert_eq!(
        registrar_discovery_instances(d, REGISTRAR_LOOKUP_APP, app.as_ptr(), 0, &mut list),
        REGISTRAR_OK
    );
    assert_eq!(registrar_instance_list_len(list), 0);
    registrar_instance_list_free(list);
    assert_eq!(
        registrar_discovery_choose(d, REGISTRAR_LOOKUP_APP, app.as_ptr(), 0, &mut list),
        REGISTRAR_ERR_NOT_FOUND
    );
    assert!(
        last_error().contains("not been fetched yet"),
        "{}",
        last_error()
    );
    assert_eq!(registrar_discovery_wait_ready(d, 50), REGISTRAR_ERR_TIMEOUT);
    assert!(
        last_error().contains("not been started"),
        "{}",
        last_error()
    );

    let seen = Box::into_raw(Box::new(AtomicU64::new(0)));
    assert_eq!(
        registrar_discovery_set_listener(d, Some(count_changes), seen.cast(), Some(free_counter)),
        REGISTRAR_OK
    );
    assert_eq!(registrar_discovery_start(d), REGISTRAR_OK);
    assert_eq!(
        registrar_discovery_start(d),
        REGISTRAR_OK,
        "start is idempotent"
    );
    assert_eq!(
        registrar_discovery_wait_ready(d, 10_000),
        REGISTRAR_OK,
        "{}",
        last_error()
    );
    let mut version = 0;
    assert_eq!(
        registrar_discovery_wait_change(d, 0, 1000, &mut version),
        REGISTRAR_OK
    );
    assert_eq!(version, 1);
    assert_eq!(
        registrar_discovery_wait_change(d, 1, 50, &mut version),
        REGISTRAR_ERR_TIMEOUT
    );
    let deadline = Instant::now() + WAIT;
    while unsafe { (*seen).load(Ordering::SeqCst) } != 1 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(
        unsafe { (*seen).load(Ordering::SeqCst) },
        1,
        "listener called"
    );

    let mut info: registrar_discovery_info = unsafe { std::mem::zeroed() };
    assert_eq!(registrar_discovery_get_info(d, &mut info), REGISTRAR_OK);
    assert_eq!(
        info.state,
        registrar_discovery_state::REGISTRAR_DISCOVERY_RUNNING
    );
    assert_eq!(
        (info.ready, info.version, info.apps, info.instances),
        (1, 1, 2, 3)
    );
    assert!(info.age_ms >= 0);
    assert_eq!(info.last_error, REGISTRAR_OK);
    assert_eq!(info.full_fetches, 1);

    // Queries: UP by default, every status on request; the structs are complete.
    assert_eq!(
        registrar_discovery_instances(d, REGISTRAR_LOOKUP_APP, app.as_ptr(), 0, &mut list),
        REGISTRAR_OK
    );
    assert_eq!(list_ids(list), ["a1"]);
    assert_eq!(registrar_instance_list_version(list), 1);
    let a1 = unsafe { &*registrar_instance_list_get(list, 0) };
    unsafe {
        assert_eq!(text(a1.app), "APP");
        assert_eq!(text(a1.host_name), "a1.example");
        assert_eq!(text(a1.ip_addr), "10.1.0.1");
        assert_eq!(text(a1.vip_address), "app");
        assert_eq!(text(a1.home_page_url), "");
        assert_eq!(text(registrar_instance_status_str(a1.status as i32)), "UP");
    }
    assert_eq!(
        (
            a1.port,
            a1.port_enabled,
            a1.secure_port,
            a1.secure_port_enabled
        ),
        (8080, 1, 8443, 0)
    );
    assert_eq!(a1.status, registrar_instance_status::REGISTRAR_INSTANCE_UP);
    assert_eq!(a1.metadata_len, 0);
    assert!(a1.metadata.is_null());
    assert!(registrar_instance_list_get(list, 1).is_null());
    let mut url = [0u8; 64];
    let mut len = 0;
    assert_eq!(
        registrar_instance_list_url(
            list,
            0,
            REGISTRAR_URL_SECURE,
            url.as_mut_ptr().cast(),
            url.len(),
            &mut len
        ),
        REGISTRAR_OK
    );
    assert_eq!(
        &url[..len],
        b"http://a1.example:8080",
        "secure port disabled: plain URL"
    );
    assert_eq!(
        registrar_instance_list_url(
            list,
            0,
            REGISTRAR_URL_USE_IP,
            url.as_mut_ptr().cast(),
            url.len(),
            &mut len
        ),
        REGISTRAR_OK
    );
    assert_eq!(&url[..len], b"http://10.1.0.1:8080");
    assert_eq!(
        registrar_instance_list_url(list, 5, 0, url.as_mut_ptr().cast(), url.len(), &mut len),
        REGISTRAR_ERR_INVALID_ARGUMENT
    );
    registrar_instance_list_free(list);

    assert_eq!(
        registrar_discovery_instances(
            d,
            REGISTRAR_LOOKUP_VIP,
            app.as_ptr(),
            REGISTRAR_QUERY_ALL_STATUSES,
            &mut list
        ),
        REGISTRAR_OK
    );
    assert_eq!(list_ids(list), ["a1", "a2"]);
    registrar_instance_list_free(list);
    assert_eq!(
        registrar_discovery_all(d, REGISTRAR_QUERY_ALL_STATUSES, &mut list),
        REGISTRAR_OK
    );
    assert_eq!(list_ids(list), ["a1", "a2", "b1"]);
    registrar_instance_list_free(list);
    let id = CString::new("a2").unwrap();
    assert_eq!(
        registrar_discovery_instance(d, id.as_ptr(), &mut list),
        REGISTRAR_OK
    );
    assert_eq!(list_ids(list), ["a2"], "by id: whatever the status");
    registrar_instance_list_free(list);
    let missing = CString::new("zz").unwrap();
    assert_eq!(
        registrar_discovery_instance(d, missing.as_ptr(), &mut list),
        REGISTRAR_ERR_NOT_FOUND
    );

    // Choice: round robin over the single UP instance; a URL in one call.
    let mut url = [0u8; 64];
    let mut len = 0;
    assert_eq!(
        registrar_discovery_choose_url(
            d,
            REGISTRAR_LOOKUP_APP,
            app.as_ptr(),
            REGISTRAR_CHOICE_ROUND_ROBIN,
            0,
            url.as_mut_ptr().cast(),
            url.len(),
            &mut len
        ),
        REGISTRAR_OK
    );
    assert_eq!(&url[..len], b"http://a1.example:8080");
    assert_eq!(url[len], 0);
    // snprintf-style truncation reports the full length.
    let mut small = [0u8; 8];
    assert_eq!(
        registrar_discovery_choose_url(
            d,
            REGISTRAR_LOOKUP_APP,
            app.as_ptr(),
            REGISTRAR_CHOICE_RANDOM,
            0,
            small.as_mut_ptr().cast(),
            small.len(),
            &mut len
        ),
        REGISTRAR_OK
    );
    assert_eq!(len, "http://a1.example:8080".len());
    assert_eq!(&small, b"http://\0");
    let nobody = CString::new("nobody").unwrap();
    assert_eq!(
        registrar_discovery_choose(d, REGISTRAR_LOOKUP_APP, nobody.as_ptr(), 0, &mut list),
        REGISTRAR_ERR_NOT_FOUND
    );
    assert!(
        last_error().contains("no UP instance of application 'nobody'"),
        "{}",
        last_error()
    );

    // Misuse.
    assert_eq!(
        registrar_discovery_instances(d, 7, app.as_ptr(), 0, &mut list),
        REGISTRAR_ERR_INVALID_ARGUMENT
    );
    assert_eq!(
        registrar_discovery_instances(d, 0, app.as_ptr(), 8, &mut list),
        REGISTRAR_ERR_INVALID_ARGUMENT
    );
    assert_eq!(
        registrar_discovery_choose(d, 0, app.as_ptr(), 9, &mut list),
        REGISTRAR_ERR_INVALID_ARGUMENT
    );
    assert_eq!(
        registrar_discovery_instances(d, 0, ptr::null(), 0, &mut list),
        REGISTRAR_ERR_NULL_ARGUMENT
    );
    assert!(last_error().contains("'name'"));
    assert_eq!(
        registrar_discovery_instances(ptr::null(), 0, app.as_ptr(), 0, &mut list),
        REGISTRAR_ERR_NULL_ARGUMENT
    );
    assert_eq!(
        registrar_discovery_instances(d, 0, app.as_ptr(), 0, ptr::null_mut()),
        REGISTRAR_ERR_NULL_ARGUMENT
    );
    let bad = [0xffu8, 0];
    assert_eq!(
        registrar_discovery_instances(d, 0, bad.as_ptr().cast(), 0, &mut list),
        REGISTRAR_ERR_INVALID_UTF8
    );
    assert_eq!(registrar_instance_list_len(ptr::null()), 0);
    assert!(registrar_instance_list_get(ptr::null(), 0).is_null());
    registrar_instance_list_free(ptr::null_mut());
    registrar_discovery_free(ptr::null_mut());

    // A list outlives changes of the cache and the stop.
    assert_eq!(registrar_discovery_all(d, 0, &mut list), REGISTRAR_OK);
    assert_eq!(registrar_discovery_stop(d, 0), REGISTRAR_OK);
    assert_eq!(
        registrar_discovery_stop(d, 0),
        REGISTRAR_OK,
        "stop is idempotent"
    );
    assert_eq!(list_ids(list), ["a1", "b1"]);
    registrar_instance_list_free(list);
    assert_eq!(
        registrar_discovery_instances(d, 0, app.as_ptr(), 0, &mut list),
        REGISTRAR_ERR_SHUT_DOWN
    );
    assert_eq!(registrar_discovery_start(d), REGISTRAR_ERR_SHUT_DOWN);
    assert_eq!(registrar_discovery_refresh(d, 100), REGISTRAR_ERR_SHUT_DOWN);
    assert_eq!(
        registrar_discovery_wait_change(d, 1, 100, &mut version),
        REGISTRAR_ERR_SHUT_DOWN
    );
    assert_eq!(registrar_discovery_get_info(d, &mut info), REGISTRAR_OK);
    assert_eq!(
        info.state,
        registrar_discovery_state::REGISTRAR_DISCOVERY_STOPPED
    );
    let freed_before = FREED.load(Ordering::SeqCst);
    registrar_discovery_free(d);
    assert_eq!(
        FREED.load(Ordering::SeqCst),
        freed_before + 1,
        "free_user_data called once"
    );
    drop(stub);
}

#[test]
fn c_api_refuses_bad_config_without_needing_an_app_name() {
    use registrar_status::*;
    let config = c_config("not a url", &[]);
    let mut d: *mut registrar_discovery = ptr::null_mut();
    assert_eq!(
        registrar_discovery_new(config, &mut d),
        REGISTRAR_ERR_INVALID_CONFIG
    );
    assert!(last_error().contains("REGISTRY_URL"), "{}", last_error());
    assert!(d.is_null(), "out untouched on failure");
    registrar_config_free(config);
    assert_eq!(
        registrar_discovery_new(ptr::null(), &mut d),
        REGISTRAR_ERR_NULL_ARGUMENT
    );
    // Freeing a never-started handle is immediate.
    let config = c_config("http://127.0.0.1:9/eureka/", &[]);
    assert_eq!(registrar_discovery_new(config, &mut d), REGISTRAR_OK);
    registrar_config_free(config);
    let started = Instant::now();
    registrar_discovery_free(d);
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[test]
fn c_api_in_a_fork_child_refuses_and_frees_memory_only() {
    use registrar_status::*;
    let body = registry(
        "UP_1_",
        &[("APP", vec![instance("APP", "a1", "UP", "ADDED")])],
    );
    let stub = Stub::start(&body);
    let config = c_config(&stub.url, &[]);
    let mut d: *mut registrar_discovery = ptr::null_mut();
    assert_eq!(registrar_discovery_new(config, &mut d), REGISTRAR_OK);
    registrar_config_free(config);
    assert_eq!(registrar_discovery_start(d), REGISTRAR_OK);
    assert_eq!(registrar_discovery_wait_ready(d, 10_000), REGISTRAR_OK);
    let app = CString::new("app").unwrap();

    // SAFETY: the child only calls registrar functions and then _exit()s.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        unsafe { libc::alarm(10) }; // a hang in the child must not hang the test
        let mut list = ptr::null_mut();
        let query =
            registrar_discovery_instances(d, REGISTRAR_LOOKUP_APP, app.as_ptr(), 0, &mut list);
        let stop = registrar_discovery_stop(d, 100);
        registrar_discovery_free(d); // memory only: the parent's thread is not here
        let code = if query == REGISTRAR_ERR_FORKED && stop == REGISTRAR_ERR_FORKED {
            0
        } else {
            1
        };
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child status {status:#x}"
    );

    // The parent's handle is untouched.
    let mut list = ptr::null_mut();
    assert_eq!(
        registrar_discovery_instances(d, REGISTRAR_LOOKUP_APP, app.as_ptr(), 0, &mut list),
        REGISTRAR_OK
    );
    assert_eq!(list_ids(list), ["a1"]);
    registrar_instance_list_free(list);
    assert_eq!(registrar_discovery_refresh(d, 5000), REGISTRAR_OK);
    registrar_discovery_free(d);
}

#[test]
fn asks_for_gzip_and_reads_compressed_registries() {
    // A registry of 10,000 instances is about 10 MB of JSON and 0.45 MB gzip-compressed; the
    // server compresses GET apps and apps/delta when asked.
    let many: Vec<String> = (0..300)
        .map(|i| instance("BIG", &format!("big-{i:03}"), "UP", "ADDED"))
        .collect();
    let body = registry("UP_300_", &[("BIG", many)]);
    assert!(body.len() > 65_535, "spans several stored blocks");
    let stub = Stub::start("");
    stub.set_full(Answer::Gzip(body));
    let discovery = Discovery::new(config(&stub.url, 3600.0)).unwrap();
    discovery.start().unwrap();
    discovery.wait_ready(WAIT).unwrap();
    assert!(
        stub.state.lock().unwrap().accept_encoding.contains("gzip"),
        "the request offers gzip"
    );
    assert_eq!(ids(&discovery, "big", false).len(), 300);
    stub.set_delta(Answer::Gzip(registry(
        "UP_301_",
        &[("BIG", vec![instance("BIG", "big-new", "UP", "ADDED")])],
    )));
    discovery.refresh(WAIT).unwrap();
    assert_eq!(ids(&discovery, "big", false).len(), 301);
    assert_eq!(discovery.info().counters.full_fetches, 1);
    discovery.stop(WAIT).unwrap();
}

unsafe extern "C" fn collect_log(
    user_data: *mut c_void,
    level: i32,
    message: *const std::ffi::c_char,
) {
    let lines = &*(user_data as *const Mutex<Vec<(i32, String)>>);
    let text = CStr::from_ptr(message).to_string_lossy().into_owned();
    lines.lock().unwrap().push((level, text));
}

static LOGS_FREED: AtomicU64 = AtomicU64::new(0);

unsafe extern "C" fn free_log(user_data: *mut c_void) {
    drop(Box::from_raw(user_data as *mut Mutex<Vec<(i32, String)>>));
    LOGS_FREED.fetch_add(1, Ordering::SeqCst);
}

#[test]
fn c_api_logger_reports_each_problem_once() {
    use registrar_status::*;
    let body = registry(
        "UP_1_",
        &[("APP", vec![instance("APP", "a1", "UP", "ADDED")])],
    );
    let stub = Stub::start(&body);
    let config = c_config(&stub.url, &[]);
    let mut d: *mut registrar_discovery = ptr::null_mut();
    assert_eq!(registrar_discovery_new(config, &mut d), REGISTRAR_OK);
    registrar_config_free(config);
    let lines = Box::into_raw(Box::new(Mutex::new(Vec::<(i32, String)>::new())));
    assert_eq!(
        registrar_discovery_set_logger(d, Some(collect_log), lines.cast(), Some(free_log), 9),
        REGISTRAR_ERR_INVALID_ARGUMENT
    );
    assert_eq!(
        registrar_discovery_set_logger(d, Some(collect_log), lines.cast(), Some(free_log), 3),
        REGISTRAR_OK
    );
    assert_eq!(registrar_discovery_start(d), REGISTRAR_OK);
    assert_eq!(registrar_discovery_wait_ready(d, 10_000), REGISTRAR_OK);
    stub.set_full(Answer::Status(503));
    stub.set_delta(Answer::Status(503));
    for _ in 0..3 {
        assert_eq!(
            registrar_discovery_refresh(d, 10_000),
            REGISTRAR_ERR_REJECTED
        );
    }
    stub.set_full(Answer::Json(body.clone()));
    stub.set_delta(Answer::Json(registry("UP_7_", &[])));
    assert_eq!(registrar_discovery_refresh(d, 10_000), REGISTRAR_OK);
    let seen: Vec<(i32, String)> = unsafe { (*lines).lock().unwrap().clone() };
    let count = |needle: &str| seen.iter().filter(|(_, m)| m.contains(needle)).count();
    assert_eq!(
        count("registry fetched: 1 instances in 1 apps"),
        1,
        "{seen:?}"
    );
    assert_eq!(
        count("refresh failed"),
        1,
        "once per distinct problem: {seen:?}"
    );
    assert!(seen.iter().any(|(l, m)| *l == 1
        && m.contains("HTTP 503")
        && m.contains("keeping the last good registry")));
    assert_eq!(count("answers again"), 1, "{seen:?}");
    assert!(
        seen.iter().any(|(l, m)| *l == 1 && m.contains("hash code")),
        "{seen:?}"
    );
    let freed = LOGS_FREED.load(Ordering::SeqCst);
    registrar_discovery_free(d);
    assert_eq!(LOGS_FREED.load(Ordering::SeqCst), freed + 1);
}

/// The handle pointer, sent to other threads (the C API allows calls from any thread at once).
#[derive(Clone, Copy)]
struct Handle(*mut registrar_discovery);
unsafe impl Send for Handle {}

#[test]
fn c_api_queries_from_many_threads_while_the_cache_changes() {
    use registrar_status::*;
    let version = |n: usize| {
        let instances = (0..n)
            .map(|i| instance("APP", &format!("a{i}"), "UP", "ADDED"))
            .collect();
        registry(&format!("UP_{n}_"), &[("APP", instances)])
    };
    let stub = Stub::start(&version(3));
    let config = c_config(&stub.url, &[]);
    let mut d: *mut registrar_discovery = ptr::null_mut();
    assert_eq!(registrar_discovery_new(config, &mut d), REGISTRAR_OK);
    registrar_config_free(config);
    assert_eq!(registrar_discovery_start(d), REGISTRAR_OK);
    assert_eq!(registrar_discovery_wait_ready(d, 10_000), REGISTRAR_OK);

    let handle = Handle(d);
    let readers: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(move || {
                let h = handle;
                let app = CString::new("app").unwrap();
                let mut url = [0u8; 128];
                for _ in 0..20_000 {
                    let mut list = ptr::null_mut();
                    assert_eq!(
                        registrar_discovery_choose(
                            h.0,
                            REGISTRAR_LOOKUP_APP,
                            app.as_ptr(),
                            0,
                            &mut list
                        ),
                        REGISTRAR_OK
                    );
                    let chosen = unsafe { &*registrar_instance_list_get(list, 0) };
                    let id = unsafe { CStr::from_ptr(chosen.instance_id) }
                        .to_str()
                        .unwrap();
                    assert!(id.starts_with('a'));
                    registrar_instance_list_free(list);
                    let mut len = 0;
                    assert_eq!(
                        registrar_discovery_choose_url(
                            h.0,
                            REGISTRAR_LOOKUP_APP,
                            app.as_ptr(),
                            1,
                            0,
                            url.as_mut_ptr().cast(),
                            url.len(),
                            &mut len
                        ),
                        REGISTRAR_OK
                    );
                }
            })
        })
        .collect();
    // Meanwhile the registry changes under them: full fetches of 3 to 8 instances.
    for n in 3..9 {
        stub.set_full(Answer::Json(version(n)));
        assert_eq!(registrar_discovery_refresh(d, 10_000), REGISTRAR_OK);
    }
    for reader in readers {
        reader.join().unwrap();
    }
    let mut info: registrar_discovery_info = unsafe { std::mem::zeroed() };
    assert_eq!(registrar_discovery_get_info(d, &mut info), REGISTRAR_OK);
    assert_eq!((info.version, info.instances), (6, 8));
    registrar_discovery_free(d);
}
