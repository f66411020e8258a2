//! Health-driven status and drain before removal (issue 12) against a REAL Eureka server
//! (scripts/test-eureka.sh): the registry, read with `GET apps/APP/ID` (never cached), shows
//! DOWN after the threshold of failed checks and the host's status again after as many passes;
//! a stopping instance stays listed as DOWN through the drain and is gone after it.
//!
//! Checks run every 0.2 s with a threshold of 2, so each test takes a few seconds at most;
//! the bounds below are generous limits for behaviour, not timings.

mod common;

use std::ffi::c_void;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use registrar::ffi::registrar_instance_status::*;
use registrar::ffi::registrar_status::*;
use registrar::ffi::*;

const FAST_HEALTH: [(&str, &str); 2] = [("health_interval", "0.2"), ("health_threshold", "2")];

/// The metrics lines of this client (its app label), from `registrar_metrics_text`.
fn metrics_of(app: &str) -> Vec<String> {
    let mut len = 0usize;
    check(registrar_metrics_text(std::ptr::null_mut(), 0, &mut len)).unwrap();
    let mut buf = vec![0u8; len + 4096];
    check(registrar_metrics_text(
        buf.as_mut_ptr().cast(),
        buf.len(),
        &mut len,
    ))
    .unwrap();
    let label = format!("app=\"{}\"", app.to_uppercase());
    String::from_utf8_lossy(&buf[..len])
        .lines()
        .filter(|l| l.contains(&label))
        .map(str::to_string)
        .collect()
}

fn renewal(url: &str, app: &str, id: &str) -> Option<i64> {
    get_instance(url, app, id, false).and_then(|i| i["leaseInfo"]["lastRenewalTimestamp"].as_i64())
}

/// Waits until the registry shows `status` for the instance (within 10 s).
fn registry_shows(url: &str, app: &str, id: &str, status: &str) -> bool {
    eventually(Duration::from_secs(10), || {
        (status_of(url, app, id).as_deref() == Some(status)).then_some(())
    })
    .is_some()
}

/// What the C health check of these tests reads and counts.
#[derive(Default)]
struct Health {
    healthy: AtomicBool,
    /// While set, a call blocks until it is cleared (at most 10 s).
    hang: AtomicBool,
    calls: AtomicU32,
    running: AtomicI32,
    most_running: AtomicI32,
    freed: AtomicU32,
    /// What registrar_health_check_set_reason returned in the last failing call (0: OK).
    set_reason: AtomicI32,
}

unsafe extern "C" fn check_health(user_data: *mut c_void) -> i32 {
    let health = &*(user_data as *const Health);
    health.calls.fetch_add(1, Ordering::SeqCst);
    let now = health.running.fetch_add(1, Ordering::SeqCst) + 1;
    health.most_running.fetch_max(now, Ordering::SeqCst);
    let until = Instant::now() + Duration::from_secs(10);
    while health.hang.load(Ordering::SeqCst) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
    }
    health.running.fetch_sub(1, Ordering::SeqCst);
    let healthy = health.healthy.load(Ordering::SeqCst);
    if !healthy {
        let status = registrar_health_check_set_reason(b"db unreachable\0".as_ptr().cast());
        health.set_reason.store(status as i32, Ordering::SeqCst);
    }
    healthy as i32
}

unsafe extern "C" fn free_health(user_data: *mut c_void) {
    let health = &*(user_data as *const Health);
    health.freed.fetch_add(1, Ordering::SeqCst);
}

fn install(client: &Client, health: &Arc<Health>) {
    check(registrar_client_set_health_check(
        client.ptr,
        Some(check_health),
        Arc::as_ptr(health) as *mut c_void,
        Some(free_health),
    ))
    .unwrap();
}

#[test]
fn a_flapping_c_health_check_turns_the_registry_down_and_up_again() {
    let url = shared_url();
    let app = unique_app("health-c");
    let client = Client::new(&url, &app, &FAST_HEALTH).unwrap();
    let health = Arc::new(Health::default());
    health.healthy.store(true, Ordering::SeqCst);
    install(&client, &health);
    client.set_status(REGISTRAR_INSTANCE_UP).unwrap();
    client.start().unwrap();
    client.wait_registered(5000).unwrap();
    let id = client.instance_id();
    assert!(registry_shows(&url, &app, &id, "UP"));

    health.healthy.store(false, Ordering::SeqCst);
    assert!(
        registry_shows(&url, &app, &id, "DOWN"),
        "DOWN after 2 failed checks"
    );
    assert_eq!(client.info().status, REGISTRAR_INSTANCE_DOWN);
    let snap = client.snapshot();
    assert_eq!(snap["health"]["healthy"], false, "{snap}");
    assert_eq!(snap["host_status"], "UP", "{snap}");
    // The reason the check gave with registrar_health_check_set_reason.
    assert_eq!(
        health.set_reason.load(Ordering::SeqCst),
        REGISTRAR_OK as i32
    );
    assert_eq!(
        snap["health"]["last_failure"], "the health check failed: db unreachable",
        "{snap}"
    );
    let metrics = metrics_of(&app);
    assert!(
        metrics
            .iter()
            .any(|l| l.starts_with("registrar_healthy{") && l.ends_with(" 0")),
        "{metrics:?}"
    );
    assert!(
        metrics
            .iter()
            .any(|l| l.starts_with("registrar_health_checks_total{")
                && l.contains("result=\"failed\"")
                && !l.ends_with(" 0")),
        "{metrics:?}"
    );

    // The host's own status still applies: it is what the registry shows once healthy again.
    client
        .set_status(REGISTRAR_INSTANCE_OUT_OF_SERVICE)
        .unwrap();
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(status_of(&url, &app, &id).as_deref(), Some("DOWN"));
    health.healthy.store(true, Ordering::SeqCst);
    assert!(
        registry_shows(&url, &app, &id, "OUT_OF_SERVICE"),
        "the host's status after 2 passed checks"
    );
    client.set_status(REGISTRAR_INSTANCE_UP).unwrap();
    assert!(registry_shows(&url, &app, &id, "UP"));
    let snap = client.snapshot();
    assert_eq!(snap["health"]["healthy"], true, "{snap}");
    assert!(metrics_of(&app)
        .iter()
        .any(|l| l.starts_with("registrar_healthy{") && l.ends_with(" 1")));
    assert!(snap["health"]["checks"]["failed"].as_u64().unwrap() >= 2);

    client.stop(0).unwrap();
    assert_eq!(get_instance(&url, &app, &id, false), None);
    let calls = health.calls.load(Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(
        health.calls.load(Ordering::SeqCst),
        calls,
        "no check after stop returned"
    );
    assert_eq!(health.most_running.load(Ordering::SeqCst), 1);
    // Refused after stop: not installed, so its user data is not freed either.
    let other = Arc::new(Health::default());
    let refused = check(registrar_client_set_health_check(
        client.ptr,
        Some(check_health),
        Arc::as_ptr(&other) as *mut c_void,
        Some(free_health),
    ));
    assert_eq!(refused.unwrap_err().status, REGISTRAR_ERR_SHUT_DOWN);
    assert_eq!(other.freed.load(Ordering::SeqCst), 0);
    drop(client);
    assert_eq!(
        health.freed.load(Ordering::SeqCst),
        1,
        "user data freed once"
    );
}

#[test]
fn a_hanging_check_counts_as_failure_and_never_delays_heartbeats() {
    let url = shared_url();
    let app = unique_app("health-hang");
    let client = Client::new(
        &url,
        &app,
        &[FAST_HEALTH[0], FAST_HEALTH[1], ("timeout", "0.5")],
    )
    .unwrap();
    let health = Arc::new(Health::default());
    health.healthy.store(true, Ordering::SeqCst);
    install(&client, &health);
    client.set_status(REGISTRAR_INSTANCE_UP).unwrap();
    client.start().unwrap();
    client.wait_registered(5000).unwrap();
    let id = client.instance_id();
    assert!(registry_shows(&url, &app, &id, "UP"));

    health.hang.store(true, Ordering::SeqCst);
    assert!(
        registry_shows(&url, &app, &id, "DOWN"),
        "a check that does not return counts as failing"
    );
    // Heartbeats (every 0.2 s) go on while the check hangs: the renewal time keeps moving.
    let before = renewal(&url, &app, &id).unwrap();
    let moved = eventually(Duration::from_secs(3), || {
        renewal(&url, &app, &id).filter(|r| *r > before)
    });
    assert!(moved.is_some(), "heartbeats continue during a hung check");
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(
        health.most_running.load(Ordering::SeqCst),
        1,
        "no second call while one hangs"
    );

    health.hang.store(false, Ordering::SeqCst);
    assert!(
        registry_shows(&url, &app, &id, "UP"),
        "UP again once the check answers"
    );

    // Stop while a check hangs (longer than its 0.5 s bound already): the DELETE goes out and
    // stop returns without waiting for the check (it waited up to its own 5 s deadline once),
    // and so does a second stop.
    health.hang.store(true, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(1000));
    let started = Instant::now();
    client.stop(5000).unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "stop held up by a hung check: {:?}",
        started.elapsed()
    );
    assert_eq!(get_instance(&url, &app, &id, false), None);
    let started = Instant::now();
    client.stop(5000).unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "a second stop held up by a hung check: {:?}",
        started.elapsed()
    );
    let calls = health.calls.load(Ordering::SeqCst);
    health.hang.store(false, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        health.calls.load(Ordering::SeqCst),
        calls,
        "none after stop"
    );
}

/// A tiny HTTP server on loopback answering 200 or 503 as `healthy` says, until dropped.
struct HealthServer {
    url: String,
    healthy: Arc<AtomicBool>,
    done: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HealthServer {
    fn start() -> HealthServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}/health", listener.local_addr().unwrap());
        let healthy = Arc::new(AtomicBool::new(true));
        let done = Arc::new(AtomicBool::new(false));
        let (h, d) = (healthy.clone(), done.clone());
        let thread = std::thread::spawn(move || {
            while !d.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((mut s, _)) => {
                        s.set_nonblocking(false).unwrap();
                        s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
                        let mut buf = [0u8; 1024];
                        let _ = s.read(&mut buf);
                        let reply = if h.load(Ordering::SeqCst) {
                            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
                        } else {
                            "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"
                        };
                        let _ = s.write_all(reply.as_bytes());
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        HealthServer {
            url,
            healthy,
            done,
            thread: Some(thread),
        }
    }
}

impl Drop for HealthServer {
    fn drop(&mut self) {
        self.done.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn registry_health_url_flaps_the_registry_status() {
    let url = shared_url();
    let app = unique_app("health-url");
    let server = HealthServer::start();
    let client = Client::new(
        &url,
        &app,
        &[
            FAST_HEALTH[0],
            FAST_HEALTH[1],
            ("health_url", server.url.as_str()),
        ],
    )
    .unwrap();
    client.set_status(REGISTRAR_INSTANCE_UP).unwrap();
    client.start().unwrap();
    client.wait_registered(5000).unwrap();
    let id = client.instance_id();
    assert!(registry_shows(&url, &app, &id, "UP"));
    server.healthy.store(false, Ordering::SeqCst);
    assert!(registry_shows(&url, &app, &id, "DOWN"), "DOWN on 503s");
    let snap = client.snapshot();
    let failure = snap["health"]["last_failure"].as_str().unwrap_or("");
    assert!(failure.contains("503"), "{snap}");
    server.healthy.store(true, Ordering::SeqCst);
    assert!(registry_shows(&url, &app, &id, "UP"), "UP on 200s");
    client.stop(0).unwrap();
    assert_eq!(get_instance(&url, &app, &id, false), None);
}

#[test]
fn a_panicking_rust_check_counts_as_failure() {
    use registrar::agent::Agent;
    use registrar::config::{Config, Settings};
    use registrar::instance::InstanceStatus;
    let url = shared_url();
    let app = unique_app("health-panic");
    let mut settings = Settings::new();
    for (k, v) in [
        ("url", url.as_str()),
        ("app_name", app.as_str()),
        ("hostname", "127.0.0.1"),
        ("ip_address", "127.0.0.1"),
        ("heartbeat_interval", "0.2"),
        ("lease_duration", "2"),
        FAST_HEALTH[0],
        FAST_HEALTH[1],
    ] {
        settings.set(k, v).unwrap();
    }
    let agent = Agent::new(Config::from_settings(&settings).unwrap()).unwrap();
    agent.set_status(InstanceStatus::Up).unwrap();
    // Set after start, on a client that had none: the watcher starts then.
    agent.start().unwrap();
    let failing = Arc::new(AtomicBool::new(false));
    let f = failing.clone();
    agent
        .set_health_check(Some(Arc::new(move || {
            if f.load(Ordering::SeqCst) {
                panic!("the check blew up");
            }
            Ok(())
        })))
        .unwrap();
    agent.wait_registered(Duration::from_secs(5)).unwrap();
    let id = agent.config().instance_id.clone();
    assert!(registry_shows(&url, &app, &id, "UP"));
    failing.store(true, Ordering::SeqCst);
    assert!(registry_shows(&url, &app, &id, "DOWN"));
    let last = agent.snapshot().health.last_failure.unwrap_or_default();
    assert!(last.contains("panicked: the check blew up"), "{last}");
    failing.store(false, Ordering::SeqCst);
    assert!(registry_shows(&url, &app, &id, "UP"));
    agent.stop(Duration::from_secs(5)).unwrap();
}

#[test]
fn stop_drains_as_down_with_heartbeats_then_deletes() {
    let url = shared_url();
    let app = unique_app("drain");
    let client = Arc::new(Client::new(&url, &app, &[("drain_seconds", "1.5")]).unwrap());
    client.set_status(REGISTRAR_INSTANCE_UP).unwrap();
    client.start().unwrap();
    client.wait_registered(5000).unwrap();
    let id = client.instance_id();
    assert!(registry_shows(&url, &app, &id, "UP"));

    let started = Instant::now();
    let stopping = {
        let client = client.clone();
        std::thread::spawn(move || (client.stop(0), Instant::now()))
    };
    // DOWN within a second, and still registered.
    let down = eventually(Duration::from_secs(1), || {
        (status_of(&url, &app, &id).as_deref() == Some("DOWN")).then_some(())
    });
    assert!(down.is_some(), "DOWN at once when stop begins");
    // Heartbeats go on through the drain (lease 2 s, so it would expire without them).
    let before = renewal(&url, &app, &id).expect("still listed during the drain");
    let moved = eventually(Duration::from_millis(1200), || {
        renewal(&url, &app, &id).filter(|r| *r > before)
    });
    assert!(moved.is_some(), "heartbeats during the drain");
    assert_eq!(status_of(&url, &app, &id).as_deref(), Some("DOWN"));
    let (outcome, ended) = stopping.join().unwrap();
    outcome.unwrap();
    let took = ended - started;
    assert!(
        took >= Duration::from_millis(1500),
        "stop covers the drain: {took:?}"
    );
    assert!(took < Duration::from_secs(5), "and not much more: {took:?}");
    assert_eq!(get_instance(&url, &app, &id, false), None, "gone after it");
}

#[test]
fn a_second_stop_with_a_shorter_timeout_cuts_the_drain_short() {
    // A 30 s drain, then a second stop (a second signal) that allows 1 s: the drain ends so
    // that the DELETE fits in that second, and both stops succeed. Before, the second stop
    // abandoned the task at its deadline: both failed and the instance stayed listed as DOWN.
    let url = shared_url();
    let app = unique_app("drain-cut");
    let client = Arc::new(Client::new(&url, &app, &[("drain_seconds", "30")]).unwrap());
    client.set_status(REGISTRAR_INSTANCE_UP).unwrap();
    client.start().unwrap();
    client.wait_registered(5000).unwrap();
    let id = client.instance_id();
    assert!(registry_shows(&url, &app, &id, "UP"));

    let first = {
        let client = client.clone();
        std::thread::spawn(move || client.stop(0))
    };
    assert!(registry_shows(&url, &app, &id, "DOWN"), "draining");
    client.stop(1000).unwrap();
    assert_eq!(get_instance(&url, &app, &id, false), None, "deleted");
    first.join().unwrap().unwrap();
}

#[test]
fn a_stop_timeout_shorter_than_the_drain_still_downs_then_deletes_in_time() {
    let url = shared_url();
    let app = unique_app("drain-short");
    let client = Client::new(&url, &app, &[("drain_seconds", "30"), ("timeout", "1")]).unwrap();
    client.set_status(REGISTRAR_INSTANCE_UP).unwrap();
    client.start().unwrap();
    client.wait_registered(5000).unwrap();
    let id = client.instance_id();
    let started = Instant::now();
    client.stop(2000).unwrap();
    let took = started.elapsed();
    assert!(took < Duration::from_millis(2500), "{took:?}");
    assert!(
        took >= Duration::from_millis(900),
        "drained 1 s of 2: {took:?}"
    );
    assert_eq!(get_instance(&url, &app, &id, false), None);
    assert_eq!(client.stop(0).map_err(|e| e.status), Ok(()));
    assert_eq!(
        client.set_status(REGISTRAR_INSTANCE_UP).unwrap_err().status,
        REGISTRAR_ERR_SHUT_DOWN
    );
}

/// A health check that stops its own client (with a drain): the stop runs on the check's
/// thread, drains and deletes, and returns; nothing waits for itself.
#[derive(Default)]
struct StopFromCheck {
    client: std::sync::atomic::AtomicPtr<registrar_client>,
    stop_now: AtomicBool,
    stop_status: AtomicI32,
    returned: AtomicBool,
}

unsafe extern "C" fn check_then_stop(user_data: *mut c_void) -> i32 {
    let s = &*(user_data as *const StopFromCheck);
    if s.stop_now.swap(false, Ordering::SeqCst) {
        let status = registrar_client_stop(s.client.load(Ordering::SeqCst), 0);
        s.stop_status.store(status as i32, Ordering::SeqCst);
        s.returned.store(true, Ordering::SeqCst);
    }
    1
}

#[test]
fn a_health_check_may_stop_its_own_client_through_the_drain() {
    let url = shared_url();
    let app = unique_app("health-stop");
    let client = Client::new(&url, &app, &[FAST_HEALTH[0], ("drain_seconds", "1")]).unwrap();
    let state = Arc::new(StopFromCheck::default());
    state.client.store(client.ptr, Ordering::SeqCst);
    check(registrar_client_set_health_check(
        client.ptr,
        Some(check_then_stop),
        Arc::as_ptr(&state) as *mut c_void,
        None,
    ))
    .unwrap();
    client.set_status(REGISTRAR_INSTANCE_UP).unwrap();
    client.start().unwrap();
    client.wait_registered(5000).unwrap();
    let id = client.instance_id();
    assert!(registry_shows(&url, &app, &id, "UP"));
    state.stop_now.store(true, Ordering::SeqCst);
    assert!(registry_shows(&url, &app, &id, "DOWN"), "drains as DOWN");
    assert!(
        eventually(Duration::from_secs(5), || state
            .returned
            .load(Ordering::SeqCst)
            .then_some(()))
        .is_some(),
        "stop returned on the check's thread"
    );
    assert_eq!(
        state.stop_status.load(Ordering::SeqCst),
        REGISTRAR_OK as i32
    );
    assert_eq!(
        get_instance(&url, &app, &id, false),
        None,
        "deleted after the drain"
    );
    assert_eq!(
        client.info().state,
        registrar::ffi::registrar_client_state::REGISTRAR_STATE_STOPPED
    );
}

#[test]
fn a_changed_verdict_keeps_the_check_schedule() {
    // Threshold 1: the first (failing) check changes the verdict at once. The next check is
    // still one interval later, not straight away (it ran twice at start before).
    let url = shared_url();
    let app = unique_app("health-schedule");
    let client = Client::new(
        &url,
        &app,
        &[("health_interval", "10"), ("health_threshold", "1")],
    )
    .unwrap();
    let health = Arc::new(Health::default());
    install(&client, &health);
    client.set_status(REGISTRAR_INSTANCE_UP).unwrap();
    client.start().unwrap();
    client.wait_registered(5000).unwrap();
    let id = client.instance_id();
    assert!(registry_shows(&url, &app, &id, "DOWN"));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        health.calls.load(Ordering::SeqCst),
        1,
        "one check per interval"
    );
    client.stop(0).unwrap();
}
