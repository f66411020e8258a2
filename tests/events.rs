//! Events through the C API (`registrar_client_set_event_listener`,
//! `registrar_discovery_set_event_listener`) against the real Eureka server: order, reasons,
//! causes, once per streak, and nothing after stop returns. Where the registry must fail on
//! demand, a TCP forwarder in front of the real server is cut off (tests/common/proxy.rs).

mod common;

use std::ffi::{c_void, CStr};
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use common::proxy::Proxy;
use common::*;
use registrar::ffi::registrar_event_cause::*;
use registrar::ffi::registrar_event_kind::*;
use registrar::ffi::registrar_instance_status::*;
use registrar::ffi::registrar_status::*;
use registrar::ffi::*;

/// One event as the listener saw it (copied out during the call).
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    kind: registrar_event_kind,
    status: registrar_instance_status,
    cause: registrar_event_cause,
    error: registrar_status,
    reason: Option<String>,
    version: u64,
}

/// What a listener records; `returned` is set right after stop returns, so any event after
/// it counts as `late`.
#[derive(Default)]
struct Recorder {
    events: Mutex<Vec<Seen>>,
    returned: AtomicBool,
    late: AtomicUsize,
    freed: AtomicUsize,
    /// Call stop on this client from the listener when it sees REGISTERED.
    stop_from_listener: Mutex<Option<usize>>,
    /// Call stop on this discovery cache from the listener when it sees DISCOVERY_READY.
    stop_discovery_from_listener: Mutex<Option<usize>>,
}

impl Recorder {
    fn leak() -> &'static Recorder {
        Box::leak(Box::default())
    }
    fn kinds(&self) -> Vec<registrar_event_kind> {
        self.events.lock().unwrap().iter().map(|e| e.kind).collect()
    }
    fn find(&self, kind: registrar_event_kind) -> Option<Seen> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .find(|e| e.kind == kind)
            .cloned()
    }
    fn count(&self, kind: registrar_event_kind) -> usize {
        self.kinds().iter().filter(|k| **k == kind).count()
    }
    fn wait_for(&self, kind: registrar_event_kind, limit: Duration) -> Seen {
        eventually(limit, || self.find(kind))
            .unwrap_or_else(|| panic!("no {kind:?} within {limit:?}; saw {:?}", self.kinds()))
    }
    fn as_user_data(&'static self) -> *mut c_void {
        self as *const Recorder as *mut c_void
    }
}

unsafe extern "C" fn record(user_data: *mut c_void, event: *const registrar_event) {
    let rec = &*(user_data as *const Recorder);
    let e = &*event;
    if rec.returned.load(Ordering::SeqCst) {
        rec.late.fetch_add(1, Ordering::SeqCst);
    }
    let reason = (!e.reason.is_null()).then(|| {
        CStr::from_ptr(e.reason)
            .to_str()
            .expect("reason is UTF-8")
            .to_string()
    });
    rec.events.lock().unwrap().push(Seen {
        kind: e.kind,
        status: e.status,
        cause: e.cause,
        error: e.error,
        reason,
        version: e.version,
    });
    if e.kind == REGISTRAR_EVENT_DISCOVERY_READY {
        if let Some(d) = *rec.stop_discovery_from_listener.lock().unwrap() {
            let status = registrar_discovery_stop(d as *const registrar_discovery, 5000);
            assert_eq!(status, REGISTRAR_OK);
        }
    }
    if e.kind == REGISTRAR_EVENT_REGISTERED {
        if let Some(client) = *rec.stop_from_listener.lock().unwrap() {
            // From the listener stop only requests the stop and returns at once.
            let status = registrar_client_stop(client as *const registrar_client, 5000);
            assert_eq!(status, REGISTRAR_OK);
        }
    }
}

unsafe extern "C" fn count_free(user_data: *mut c_void) {
    let rec = &*(user_data as *const Recorder);
    rec.freed.fetch_add(1, Ordering::SeqCst);
}

fn listen(client: &Client, rec: &'static Recorder) {
    check(registrar_client_set_event_listener(
        client.ptr,
        Some(record),
        rec.as_user_data(),
        Some(count_free),
    ))
    .unwrap();
}

fn registry_has(url: &str, app: &str, id: &str) -> bool {
    get_instance(url, app, id, false).is_some()
}

#[test]
fn a_client_reports_registered_status_changed_stopped_in_order_and_nothing_after_stop() {
    let url = shared_url();
    let client = Client::new(&url, &unique_app("events-order"), &[]).unwrap();
    let rec = Recorder::leak();
    listen(&client, rec);
    client.start().unwrap();
    client.wait_registered(10_000).unwrap();
    client.set_status(REGISTRAR_INSTANCE_UP).unwrap();
    client.wait_registered(10_000).unwrap();
    // Heartbeats alone announce nothing.
    std::thread::sleep(Duration::from_millis(500));
    client.stop(5000).unwrap();
    rec.returned.store(true, Ordering::SeqCst);

    let events = rec.events.lock().unwrap().clone();
    assert_eq!(
        rec.kinds(),
        vec![
            REGISTRAR_EVENT_REGISTERED,
            REGISTRAR_EVENT_STATUS_CHANGED,
            REGISTRAR_EVENT_STOPPED
        ],
        "{events:#?}"
    );
    assert_eq!(events[0].status, REGISTRAR_INSTANCE_STARTING);
    assert_eq!(events[1].status, REGISTRAR_INSTANCE_UP);
    assert_eq!(events[1].cause, REGISTRAR_CAUSE_HOST);
    assert_eq!(events[2].error, REGISTRAR_OK, "the registry was told");
    assert_eq!(events[2].reason, None);

    // Still running the agent for other handles: nothing more for this one.
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(rec.late.load(Ordering::SeqCst), 0);
    assert_eq!(rec.kinds().len(), 3);
    assert_eq!(rec.freed.load(Ordering::SeqCst), 0, "kept until free");
    drop(client);
    assert_eq!(
        rec.freed.load(Ordering::SeqCst),
        1,
        "free_user_data once, at free"
    );
}

#[test]
fn deleting_the_instance_behind_the_clients_back_is_a_lost_registration_then_re_registered() {
    let url = shared_url();
    let app = unique_app("events-lost");
    let client = Client::new(&url, &app, &[]).unwrap();
    let rec = Recorder::leak();
    listen(&client, rec);
    client.set_status(REGISTRAR_INSTANCE_UP).unwrap();
    client.start().unwrap();
    client.wait_registered(10_000).unwrap();
    let id = client.instance_id();
    assert!(registry_has(&url, &app, &id));

    let deleted = http()
        .delete(format!("{url}apps/{}/{id}", app.to_uppercase()))
        .send()
        .unwrap();
    assert_eq!(deleted.status().as_u16(), 200);

    let lost = rec.wait_for(REGISTRAR_EVENT_REGISTRATION_LOST, Duration::from_secs(10));
    assert_eq!(lost.cause, REGISTRAR_CAUSE_NOT_FOUND);
    assert_eq!(lost.error, REGISTRAR_ERR_NOT_FOUND);
    assert_eq!(lost.status, REGISTRAR_INSTANCE_UP);
    assert!(
        lost.reason
            .as_deref()
            .unwrap_or("")
            .contains("does not know this instance"),
        "{lost:?}"
    );
    let back = rec.wait_for(REGISTRAR_EVENT_REREGISTERED, Duration::from_secs(10));
    assert_eq!(back.status, REGISTRAR_INSTANCE_UP);
    assert!(
        eventually(Duration::from_secs(5), || registry_has(&url, &app, &id)
            .then_some(()))
        .is_some()
    );

    client.stop(5000).unwrap();
    rec.returned.store(true, Ordering::SeqCst);
    assert_eq!(
        rec.kinds(),
        vec![
            REGISTRAR_EVENT_REGISTERED,
            REGISTRAR_EVENT_REGISTRATION_LOST,
            REGISTRAR_EVENT_REREGISTERED,
            REGISTRAR_EVENT_STOPPED
        ]
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(rec.late.load(Ordering::SeqCst), 0);
}

#[test]
fn heartbeats_failing_past_the_lease_are_a_lost_registration_once_then_re_registered() {
    let url = shared_url();
    let proxy = Proxy::start(&url);
    let app = unique_app("events-lease");
    // Lease 2 s (common::Client's default), heartbeat every 0.2 s, short timeout.
    let client = Client::new(&proxy.url(), &app, &[("timeout", "0.5")]).unwrap();
    let rec = Recorder::leak();
    listen(&client, rec);
    client.set_status(REGISTRAR_INSTANCE_UP).unwrap();
    client.start().unwrap();
    client.wait_registered(10_000).unwrap();

    proxy.cut();
    let lost = rec.wait_for(REGISTRAR_EVENT_REGISTRATION_LOST, Duration::from_secs(8));
    assert_eq!(lost.cause, REGISTRAR_CAUSE_LEASE_EXPIRED);
    assert_ne!(lost.error, REGISTRAR_OK);
    assert!(
        lost.reason.as_deref().unwrap().contains("lease"),
        "{lost:?}"
    );
    // Retries go on failing: still one loss, not one per retry.
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(rec.count(REGISTRAR_EVENT_REGISTRATION_LOST), 1);

    proxy.restore();
    rec.wait_for(REGISTRAR_EVENT_REREGISTERED, Duration::from_secs(10));
    client.stop(5000).unwrap();
    assert_eq!(
        rec.kinds(),
        vec![
            REGISTRAR_EVENT_REGISTERED,
            REGISTRAR_EVENT_REGISTRATION_LOST,
            REGISTRAR_EVENT_REREGISTERED,
            REGISTRAR_EVENT_STOPPED
        ]
    );
}

#[test]
fn stop_called_from_the_listener_only_requests_it_and_stopped_still_comes_last() {
    let url = shared_url();
    let app = unique_app("events-stop-in-listener");
    let client = Client::new(&url, &app, &[]).unwrap();
    let rec = Recorder::leak();
    *rec.stop_from_listener.lock().unwrap() = Some(client.ptr as usize);
    listen(&client, rec);
    client.start().unwrap();
    let stopped = rec.wait_for(REGISTRAR_EVENT_STOPPED, Duration::from_secs(10));
    assert_eq!(stopped.error, REGISTRAR_OK);
    assert_eq!(
        rec.kinds(),
        vec![REGISTRAR_EVENT_REGISTERED, REGISTRAR_EVENT_STOPPED]
    );
    let id = client.instance_id();
    assert!(!registry_has(&url, &app, &id), "deregistered");
    // A later stop returns the same outcome and delivers nothing more.
    client.stop(5000).unwrap();
    assert_eq!(rec.kinds().len(), 2);
}

/// With a drain, stop announces DOWN (a status-changed event) and logs the drain. Called from
/// the listener, that announcement comes back to the same listener: it must not wait for the
/// listener's own delivery (that hung the agent thread) and must not re-enter it.
#[test]
fn stop_with_a_drain_called_from_the_listener_does_not_hang() {
    let url = shared_url();
    let app = unique_app("events-drain-in-listener");
    let client = Client::new(&url, &app, &[("drain_seconds", "0.5")]).unwrap();
    let rec = Recorder::leak();
    *rec.stop_from_listener.lock().unwrap() = Some(client.ptr as usize);
    listen(&client, rec);
    client.start().unwrap();
    let stopped = rec.wait_for(REGISTRAR_EVENT_STOPPED, Duration::from_secs(10));
    assert_eq!(stopped.error, REGISTRAR_OK);
    assert_eq!(rec.kinds().first(), Some(&REGISTRAR_EVENT_REGISTERED));
    assert_eq!(rec.kinds().last(), Some(&REGISTRAR_EVENT_STOPPED));
    let id = client.instance_id();
    assert!(
        !registry_has(&url, &app, &id),
        "deregistered after the drain"
    );
}

/// The log callback's twin of the test above: stop with a drain logs "draining", and called
/// from the log callback that message is for the callback running on this very thread. It
/// must not wait for that call to end (the agent thread hung there) nor re-enter it.
#[test]
fn stop_with_a_drain_called_from_the_log_callback_does_not_hang() {
    static CLIENT: AtomicUsize = AtomicUsize::new(0);
    static STOP_STATUS: Mutex<Option<registrar_status>> = Mutex::new(None);
    static DEPTH: AtomicUsize = AtomicUsize::new(0);
    static REENTERED: AtomicBool = AtomicBool::new(false);
    unsafe extern "C" fn on_log(_: *mut c_void, _level: i32, message: *const std::ffi::c_char) {
        if DEPTH.fetch_add(1, Ordering::SeqCst) > 0 {
            REENTERED.store(true, Ordering::SeqCst);
        }
        let message = CStr::from_ptr(message).to_string_lossy();
        let client = CLIENT.load(Ordering::SeqCst);
        if message.contains("registered") && client != 0 {
            CLIENT.store(0, Ordering::SeqCst);
            let status = registrar_client_stop(client as *const registrar_client, 5000);
            *STOP_STATUS.lock().unwrap() = Some(status);
        }
        DEPTH.fetch_sub(1, Ordering::SeqCst);
    }
    let url = shared_url();
    let app = unique_app("log-drain-in-callback");
    let client = Client::new(&url, &app, &[("drain_seconds", "0.5")]).unwrap();
    CLIENT.store(client.ptr as usize, Ordering::SeqCst);
    let status = registrar_client_set_logger(
        client.ptr,
        Some(on_log),
        ptr::null_mut(),
        None,
        3, // REGISTRAR_LOG_DEBUG
    );
    assert_eq!(status, REGISTRAR_OK);
    client.start().unwrap();
    let stop_status = eventually(Duration::from_secs(10), || *STOP_STATUS.lock().unwrap())
        .expect("the log callback called stop, and stop returned");
    assert_eq!(stop_status, REGISTRAR_OK);
    // The drain and the DELETE still happen, on the agent thread, after the callback returned.
    let id = client.instance_id();
    eventually(Duration::from_secs(10), || {
        (!registry_has(&url, &app, &id)).then_some(())
    })
    .expect("deregistered after the drain");
    assert!(
        !REENTERED.load(Ordering::SeqCst),
        "the log callback was re-entered"
    );
}

#[test]
fn a_stop_that_times_out_still_delivers_stopped_last_with_the_reason() {
    // A registry that never answers: the registration hangs, stop gives up at its deadline.
    let stub = stub::Stub::start(|_| stub::Reply::Hang(Duration::from_secs(30)));
    let client = Client::new(
        &stub.url(),
        &unique_app("events-hang"),
        &[("timeout", "10")],
    )
    .unwrap();
    let rec = Recorder::leak();
    listen(&client, rec);
    client.start().unwrap();
    eventually(Duration::from_secs(5), || {
        (!stub.requests().is_empty()).then_some(())
    })
    .unwrap();
    let err = client.stop(300).unwrap_err();
    rec.returned.store(true, Ordering::SeqCst);
    assert_eq!(err.status, REGISTRAR_ERR_TIMEOUT);
    assert_eq!(rec.kinds(), vec![REGISTRAR_EVENT_STOPPED]);
    let stopped = rec.find(REGISTRAR_EVENT_STOPPED).unwrap();
    assert_eq!(stopped.error, REGISTRAR_ERR_TIMEOUT);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(rec.late.load(Ordering::SeqCst), 0);
}

#[test]
fn null_arguments_and_removal() {
    assert_eq!(
        registrar_client_set_event_listener(ptr::null(), Some(record), ptr::null_mut(), None),
        REGISTRAR_ERR_NULL_ARGUMENT
    );
    assert_eq!(
        registrar_discovery_set_event_listener(ptr::null(), Some(record), ptr::null_mut(), None),
        REGISTRAR_ERR_NULL_ARGUMENT
    );
    let client = Client::new("http://127.0.0.1:9/eureka/", "events-null", &[]).unwrap();
    let rec = Recorder::leak();
    listen(&client, rec);
    // Removing it frees the user data at once.
    check(registrar_client_set_event_listener(
        client.ptr,
        None,
        ptr::null_mut(),
        None,
    ))
    .unwrap();
    assert_eq!(rec.freed.load(Ordering::SeqCst), 1);
}

// ---------------------------------------------------------------------------------------------
// Discovery

struct Discovery(*mut registrar_discovery);

impl Discovery {
    fn new(url: &str) -> Discovery {
        let cfg = config(&[("url", url), ("fetch_interval", "0.2"), ("timeout", "1")]);
        let mut d = ptr::null_mut();
        check(registrar_discovery_new(cfg, &mut d)).unwrap();
        registrar_config_free(cfg);
        Discovery(d)
    }
    fn listen(&self, rec: &'static Recorder) {
        check(registrar_discovery_set_event_listener(
            self.0,
            Some(record),
            rec.as_user_data(),
            Some(count_free),
        ))
        .unwrap();
    }
}

impl Drop for Discovery {
    fn drop(&mut self) {
        registrar_discovery_free(self.0);
    }
}

#[test]
fn discovery_reports_ready_then_changed_when_another_instance_registers() {
    let url = shared_url();
    let d = Discovery::new(&url);
    let rec = Recorder::leak();
    d.listen(rec);
    check(registrar_discovery_start(d.0)).unwrap();
    check(registrar_discovery_wait_ready(d.0, 10_000)).unwrap();
    let ready = rec.wait_for(REGISTRAR_EVENT_DISCOVERY_READY, Duration::from_secs(2));
    assert_eq!(ready.version, 1);
    assert_eq!(ready.status, REGISTRAR_INSTANCE_UNKNOWN);

    let other = Client::new(&url, &unique_app("events-other"), &[]).unwrap();
    other.set_status(REGISTRAR_INSTANCE_UP).unwrap();
    other.start().unwrap();
    other.wait_registered(10_000).unwrap();
    let changed = rec.wait_for(REGISTRAR_EVENT_DISCOVERY_CHANGED, Duration::from_secs(10));
    assert!(changed.version >= 2, "{changed:?}");
    assert_eq!(rec.kinds()[0], REGISTRAR_EVENT_DISCOVERY_READY);

    check(registrar_discovery_stop(d.0, 5000)).unwrap();
    rec.returned.store(true, Ordering::SeqCst);
    // The other instance leaving changes the registry: this stopped cache says nothing.
    other.stop(5000).unwrap();
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(rec.late.load(Ordering::SeqCst), 0);
    assert_eq!(rec.count(REGISTRAR_EVENT_DISCOVERY_FETCH_FAILING), 0);
}

#[test]
fn discovery_reports_fetch_failing_once_per_streak_then_recovered() {
    let url = shared_url();
    let proxy = Proxy::start(&url);
    let d = Discovery::new(&proxy.url());
    let rec = Recorder::leak();
    d.listen(rec);
    check(registrar_discovery_start(d.0)).unwrap();
    check(registrar_discovery_wait_ready(d.0, 10_000)).unwrap();

    proxy.cut();
    let failing = rec.wait_for(
        REGISTRAR_EVENT_DISCOVERY_FETCH_FAILING,
        Duration::from_secs(5),
    );
    assert_ne!(failing.error, REGISTRAR_OK);
    assert!(failing.reason.is_some());
    // Several retries fail meanwhile (backoff from 100 ms): still one event.
    std::thread::sleep(Duration::from_millis(1500));
    let mut info = std::mem::MaybeUninit::<registrar_discovery_info>::uninit();
    check(registrar_discovery_get_info(d.0, info.as_mut_ptr())).unwrap();
    let info = unsafe { info.assume_init() };
    assert!(
        info.failed_refreshes >= 2,
        "{} failed refreshes",
        info.failed_refreshes
    );
    assert_eq!(rec.count(REGISTRAR_EVENT_DISCOVERY_FETCH_FAILING), 1);

    proxy.restore();
    rec.wait_for(REGISTRAR_EVENT_DISCOVERY_RECOVERED, Duration::from_secs(10));
    let kinds: Vec<_> = rec
        .kinds()
        .into_iter()
        .filter(|k| *k != REGISTRAR_EVENT_DISCOVERY_CHANGED)
        .collect();
    assert_eq!(
        kinds,
        vec![
            REGISTRAR_EVENT_DISCOVERY_READY,
            REGISTRAR_EVENT_DISCOVERY_FETCH_FAILING,
            REGISTRAR_EVENT_DISCOVERY_RECOVERED
        ]
    );
    check(registrar_discovery_stop(d.0, 5000)).unwrap();
}

static HEALTHY: AtomicBool = AtomicBool::new(true);

/// What registrar_health_check_set_reason returned in the last failing check (-1: not called).
static SET_REASON: AtomicI32 = AtomicI32::new(-1);

unsafe extern "C" fn flag_health(_user_data: *mut c_void) -> i32 {
    let healthy = HEALTHY.load(Ordering::SeqCst);
    if !healthy {
        let status = registrar_health_check_set_reason(b"db unreachable\0".as_ptr().cast());
        SET_REASON.store(status as i32, Ordering::SeqCst);
    }
    healthy as i32
}

#[test]
fn a_failing_health_check_is_a_status_change_caused_by_the_health_check_and_drain_by_stop() {
    let url = shared_url();
    let app = unique_app("events-health");
    let client = Client::new(
        &url,
        &app,
        &[
            ("health_interval", "0.2"),
            ("health_threshold", "1"),
            ("drain_seconds", "0.5"),
        ],
    )
    .unwrap();
    let rec = Recorder::leak();
    listen(&client, rec);
    check(registrar_client_set_health_check(
        client.ptr,
        Some(flag_health),
        ptr::null_mut(),
        None,
    ))
    .unwrap();
    client.set_status(REGISTRAR_INSTANCE_UP).unwrap();
    client.start().unwrap();
    client.wait_registered(10_000).unwrap();
    rec.wait_for(REGISTRAR_EVENT_REGISTERED, Duration::from_secs(2));

    HEALTHY.store(false, Ordering::SeqCst);
    let down = eventually(Duration::from_secs(10), || {
        rec.events
            .lock()
            .unwrap()
            .iter()
            .find(|e| {
                e.kind == REGISTRAR_EVENT_STATUS_CHANGED && e.status == REGISTRAR_INSTANCE_DOWN
            })
            .cloned()
    })
    .expect("DOWN by the health check");
    assert_eq!(down.cause, REGISTRAR_CAUSE_HEALTH_CHECK);
    assert_eq!(SET_REASON.load(Ordering::SeqCst), REGISTRAR_OK as i32);
    // The reason the check gave (registrar_health_check_set_reason), after the agent's prefix.
    assert_eq!(
        down.reason.as_deref(),
        Some("health check failing: the health check failed: db unreachable"),
        "{down:?}"
    );

    HEALTHY.store(true, Ordering::SeqCst);
    let up = eventually(Duration::from_secs(10), || {
        rec.events
            .lock()
            .unwrap()
            .iter()
            .skip_while(|e| e.status != REGISTRAR_INSTANCE_DOWN)
            .find(|e| e.kind == REGISTRAR_EVENT_STATUS_CHANGED && e.status == REGISTRAR_INSTANCE_UP)
            .cloned()
    })
    .expect("UP again when the check passes");
    assert_eq!(up.cause, REGISTRAR_CAUSE_HEALTH_CHECK);

    // stop drains: DOWN (caused by stop), then removed.
    client.stop(5000).unwrap();
    rec.returned.store(true, Ordering::SeqCst);
    let events = rec.events.lock().unwrap().clone();
    let n = events.len();
    assert!(n >= 5, "{events:#?}");
    assert_eq!(
        events[n - 2].kind,
        REGISTRAR_EVENT_STATUS_CHANGED,
        "{events:#?}"
    );
    assert_eq!(events[n - 2].status, REGISTRAR_INSTANCE_DOWN);
    assert_eq!(events[n - 2].cause, REGISTRAR_CAUSE_STOP);
    assert_eq!(events[n - 1].kind, REGISTRAR_EVENT_STOPPED);
    assert_eq!(events[n - 1].error, REGISTRAR_OK);
}

#[test]
fn a_discovery_listener_that_stops_the_cache_hears_nothing_more() {
    let url = shared_url();
    let d = Discovery::new(&url);
    let rec = Recorder::leak();
    *rec.stop_discovery_from_listener.lock().unwrap() = Some(d.0 as usize);
    d.listen(rec);
    check(registrar_discovery_start(d.0)).unwrap();
    rec.wait_for(REGISTRAR_EVENT_DISCOVERY_READY, Duration::from_secs(10));
    // Changes keep coming (another instance registers), but the cache was stopped.
    let other = Client::new(&url, &unique_app("events-after-stop"), &[]).unwrap();
    other.start().unwrap();
    other.wait_registered(10_000).unwrap();
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(rec.kinds(), vec![REGISTRAR_EVENT_DISCOVERY_READY]);
    let mut info = std::mem::MaybeUninit::<registrar_discovery_info>::uninit();
    check(registrar_discovery_get_info(d.0, info.as_mut_ptr())).unwrap();
    let info = unsafe { info.assume_init() };
    assert_eq!(
        info.state,
        registrar_discovery_state::REGISTRAR_DISCOVERY_STOPPED
    );
    other.stop(5000).unwrap();
}

#[test]
fn a_registry_down_at_start_is_fetch_failing_then_recovered_and_ready() {
    let url = shared_url();
    let proxy = Proxy::start(&url);
    proxy.cut();
    let d = Discovery::new(&proxy.url());
    let rec = Recorder::leak();
    d.listen(rec);
    check(registrar_discovery_start(d.0)).unwrap();
    let failing = rec.wait_for(
        REGISTRAR_EVENT_DISCOVERY_FETCH_FAILING,
        Duration::from_secs(5),
    );
    assert_eq!(failing.version, 0, "nothing fetched yet");
    proxy.restore();
    check(registrar_discovery_wait_ready(d.0, 10_000)).unwrap();
    rec.wait_for(REGISTRAR_EVENT_DISCOVERY_READY, Duration::from_secs(2));
    assert_eq!(
        rec.kinds()[..3],
        [
            REGISTRAR_EVENT_DISCOVERY_FETCH_FAILING,
            REGISTRAR_EVENT_DISCOVERY_RECOVERED,
            REGISTRAR_EVENT_DISCOVERY_READY
        ]
    );
    check(registrar_discovery_stop(d.0, 5000)).unwrap();
}
