//! Right under registry faults (issue 9, items 1-5), against in-process stubs (what a real
//! Eureka server cannot be made to do): failover with quarantine on 5xx/429, other 4xx final,
//! jittered retries, a stop that tells the truth and after which nothing is sent or called,
//! bounded responses (endless, stalled, gzip), redirects refused. Through the C API for
//! clients, through the Rust API for discovery.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::stub::{gzip_stored, healthy, Reply, Request, Stub};
use common::*;
use registrar::config::Settings;
use registrar::discovery::{Discovery, DiscoveryConfig};
use registrar::error::Error;
use registrar::ffi::registrar_instance_status::*;
use registrar::ffi::registrar_status::*;

fn both(a: &Stub, b: &Stub) -> String {
    format!("{},{}", a.url(), b.url())
}

fn fast_client(url: &str, app: &str) -> Client {
    Client::new(
        url,
        app,
        &[("heartbeat_interval", "0.05"), ("lease_duration", "5")],
    )
    .unwrap()
}

fn discovery(url: &str, extra: &[(&str, &str)]) -> Discovery {
    let mut settings = Settings::new();
    settings.set("url", url).unwrap();
    settings.set("timeout", "1").unwrap();
    for (k, v) in extra {
        settings.set(k, v).unwrap();
    }
    Discovery::new(DiscoveryConfig::from_settings(&settings).unwrap()).unwrap()
}

const EMPTY_REGISTRY: &str =
    r#"{"applications":{"versions__delta":"1","apps__hashcode":"","application":[]}}"#;

fn healthy_registry(request: &Request) -> Reply {
    match request.method.as_str() {
        "GET" => Reply::Status(200, EMPTY_REGISTRY),
        _ => healthy(request),
    }
}

#[test]
fn a_5xx_or_429_moves_the_same_request_on_and_quarantines_the_server() {
    for code in [500u16, 502, 503, 429] {
        let failing = Stub::start(move |_| Reply::Status(code, "failing (stub)"));
        let good = Stub::start(healthy_registry);
        let client = fast_client(&both(&failing, &good), &format!("failover-{code}"));
        client.set_status(REGISTRAR_INSTANCE_UP).unwrap();
        client.start().unwrap();
        client.wait_registered(3000).unwrap();
        std::thread::sleep(Duration::from_millis(1000)); // ~20 heartbeats
        assert!(client.info().heartbeats >= 5, "{code}: {:?}", client.info());
        // Asked once (the registration that moved on), then skipped: not once per beat.
        assert_eq!(failing.requests().len(), 1, "{code}");
        client.stop(2000).unwrap();

        // Discovery fails over the same way.
        let d = discovery(&both(&failing, &good), &[]);
        d.start().unwrap();
        d.wait_ready(Duration::from_secs(3)).unwrap();
        assert!(d.server_in_use().unwrap().contains(&good.port.to_string()));
    }
}

#[test]
fn other_4xx_answers_are_final() {
    let refusing = Stub::start(|_| Reply::Status(400, "Missing instanceId (stub)"));
    let good = Stub::start(healthy);
    let client = fast_client(&both(&refusing, &good), "final-400");
    client.start().unwrap();
    let failure = client.wait_registered(800).unwrap_err();
    assert!(failure.message.contains("HTTP 400"), "{}", failure.message);
    assert!(
        good.requests().is_empty(),
        "a configuration problem is not failed over"
    );
    client.stop(1000).unwrap();
}

#[test]
fn the_quarantine_is_lifted_when_every_server_fails() {
    let a = Stub::start(|_| Reply::Status(503, "a down"));
    let b = Stub::start(|_| Reply::Status(503, "b down"));
    let client = Client::new(&both(&a, &b), "all-failing", &[]).unwrap();
    client.start().unwrap();
    std::thread::sleep(Duration::from_millis(1200));
    // Every retry tries both again (100, 200, 400 ms backoff: 3-5 attempts each).
    let (na, nb) = (a.requests().len(), b.requests().len());
    assert!(na >= 3 && nb >= 3, "{na} / {nb}");
    client.stop(1000).unwrap();
}

/// Retries of instances that failed together spread out (jitter): the spread of the times of
/// their later retries is shown, not just claimed.
#[test]
fn retries_of_many_instances_are_jittered() {
    let failing = Stub::start(|_| Reply::Status(503, "down"));
    let clients: Vec<Client> = (0..20)
        .map(|i| Client::new(&failing.url(), &format!("jitter-{i}"), &[]).unwrap())
        .collect();
    let t0 = Instant::now();
    for c in &clients {
        c.start().unwrap();
    }
    std::thread::sleep(Duration::from_millis(1600));
    drop(clients);
    // The 4th request of each client (after 100 + 200 + 400 ms steps, each jittered to
    // 50-100 %): without jitter they would all land within a few ms of each other.
    let mut by_client: std::collections::HashMap<String, Vec<Duration>> = Default::default();
    for r in failing.requests() {
        if r.method == "POST" {
            by_client
                .entry(r.path.clone())
                .or_default()
                .push(r.at.duration_since(t0));
        }
    }
    let fourth: Vec<u128> = by_client
        .values()
        .filter_map(|times| times.get(3).map(Duration::as_millis))
        .collect();
    assert!(fourth.len() >= 15, "{by_client:?}");
    let spread = fourth.iter().max().unwrap() - fourth.iter().min().unwrap();
    eprintln!(
        "4th retry of {} instances: spread over {spread} ms: {fourth:?}",
        fourth.len()
    );
    assert!(spread >= 60, "4th retries within {spread} ms: {fourth:?}");
}

fn methods(requests: &[Request]) -> Vec<&str> {
    requests.iter().map(|r| r.method.as_str()).collect()
}

fn is_down_registration(r: &Request) -> bool {
    r.method == "POST" && String::from_utf8_lossy(&r.body).contains("\"DOWN\"")
}

/// When the DELETE of a stop (without drain) fails, the instance is registered as DOWN so
/// traffic stops anyway, the DELETE is tried again until the deadline, and stop reports
/// that the registry was not told.
#[test]
fn stop_says_when_the_registry_was_not_told() {
    let refuses_delete = Stub::start(|r| match r.method.as_str() {
        "DELETE" => Reply::Status(500, "delete refused (stub)"),
        _ => healthy(r),
    });
    let client = fast_client(&refuses_delete.url(), "no-delete");
    client.set_status(REGISTRAR_INSTANCE_UP).unwrap();
    client.start().unwrap();
    client.wait_registered(3000).unwrap();
    let before_stop = refuses_delete.requests().len();
    let failure = client.stop(2000).unwrap_err();
    assert_eq!(failure.status, REGISTRAR_ERR_REJECTED);
    for word in [
        "DELETE",
        "HTTP 500",
        "delete refused (stub)",
        "not told",
        "as DOWN",
    ] {
        assert!(
            failure.message.contains(word),
            "{word}: {}",
            failure.message
        );
    }
    let sent = refuses_delete.requests();
    let sent = &sent[before_stop..];
    let downs = sent.iter().filter(|r| is_down_registration(r)).count();
    let deletes = sent.iter().filter(|r| r.method == "DELETE").count();
    assert_eq!(downs, 1, "{:?}", methods(sent));
    assert!(
        deletes >= 2,
        "the DELETE was not retried: {:?}",
        methods(sent)
    );
    assert_eq!(sent[0].method, "DELETE", "{:?}", methods(sent));
    // Asked again, stop gives the same truth.
    assert_eq!(client.stop(2000).unwrap_err(), failure);

    // The first DELETE fails, the retry after the DOWN succeeds: the registry was told.
    let deletes = Arc::new(AtomicUsize::new(0));
    let counted = deletes.clone();
    let refuses_one_delete = Stub::start(move |r| match r.method.as_str() {
        "DELETE" if counted.fetch_add(1, Ordering::SeqCst) == 0 => Reply::Status(503, "busy"),
        _ => healthy(r),
    });
    let client = fast_client(&refuses_one_delete.url(), "one-delete");
    client.set_status(REGISTRAR_INSTANCE_UP).unwrap();
    client.start().unwrap();
    client.wait_registered(3000).unwrap();
    client.stop(2000).unwrap();
    assert_eq!(deletes.load(Ordering::SeqCst), 2);
    assert!(refuses_one_delete
        .requests()
        .iter()
        .any(is_down_registration));

    // Neither DELETE nor DOWN accepted: the error says both.
    let refuses_all = Stub::start(|r| match r.method.as_str() {
        "DELETE" => Reply::Status(500, "no delete"),
        "POST" if is_down_registration(r) => Reply::Status(500, "no down"),
        _ => healthy(r),
    });
    let client = fast_client(&refuses_all.url(), "no-down");
    client.set_status(REGISTRAR_INSTANCE_UP).unwrap();
    client.start().unwrap();
    client.wait_registered(3000).unwrap();
    let failure = client.stop(2000).unwrap_err();
    assert!(
        failure.message.contains("marking it DOWN failed too"),
        "{}",
        failure.message
    );
}

/// A heartbeat or registration hung on one URL must not go on to the next URL after stop
/// returned, and the log callback is not called after stop returned.
#[test]
fn after_stop_returns_nothing_is_sent_and_nothing_called() {
    static LOG: LogSink = LogSink {
        lines: std::sync::Mutex::new(Vec::new()),
    };
    let hanging = Stub::start(|_| Reply::Hang(Duration::from_secs(10)));
    let good = Stub::start(healthy);
    let client = Client::new(&both(&hanging, &good), "after-stop", &[("timeout", "1")]).unwrap();
    install_log(&client, &LOG);
    client.start().unwrap();
    std::thread::sleep(Duration::from_millis(300)); // the registration hangs on the first URL
    let started = Instant::now();
    let result = client.stop(300);
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(result.unwrap_err().status, REGISTRAR_ERR_TIMEOUT);
    let logged = LOG.lines.lock().unwrap().len();
    std::thread::sleep(Duration::from_millis(1500)); // past the hung request's 1 s timeout
    assert!(good.requests().is_empty(), "{:?}", good.requests());
    assert_eq!(
        LOG.lines.lock().unwrap().len(),
        logged,
        "{:?}",
        LOG.lines.lock().unwrap()
    );
}

#[test]
fn a_3xx_is_an_error_naming_status_and_location() {
    let good = Stub::start(healthy);
    let target = format!("{}apps/ELSEWHERE", good.url());
    let redirecting = Stub::start(move |_| Reply::Redirect(302, target.clone()));
    let client = fast_client(&redirecting.url(), "redirected");
    client.start().unwrap();
    let failure = client.wait_registered(800).unwrap_err();
    assert!(
        failure.message.contains("HTTP 302") && failure.message.contains("apps/ELSEWHERE"),
        "{}",
        failure.message
    );
    assert!(good.requests().is_empty(), "the redirect was not followed");
    client.stop(500).unwrap();

    let d = discovery(&redirecting.url(), &[]);
    d.start().unwrap();
    let e = d.refresh(Duration::from_secs(3)).unwrap_err();
    assert!(matches!(e, Error::Rejected { status: 302, .. }), "{e}");
}

#[test]
fn responses_are_read_under_a_cap() {
    // An endless registry answer: an error that names the limit, the host lives on.
    let endless = Stub::start(|r| match r.method.as_str() {
        "GET" => Reply::Endless,
        _ => healthy(r),
    });
    let d = discovery(
        &endless.url(),
        &[("REGISTRY_MAX_RESPONSE_BYTES", "1000000")],
    );
    d.start().unwrap();
    let e = d.refresh(Duration::from_secs(10)).unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("larger than 1000000 bytes") && text.contains("REGISTRY_MAX_RESPONSE_BYTES"),
        "{text}"
    );

    // Over the cap after decompression (the compressed stream is as large; the cap counts what
    // it decodes to).
    let big = format!("{{\"x\":\"{}\"}}", "a".repeat(2_000_000));
    let packed = Arc::new(gzip_stored(big.as_bytes()));
    let gz = Stub::start(move |_| Reply::Gzip(packed.to_vec()));
    let d = discovery(&gz.url(), &[("REGISTRY_MAX_RESPONSE_BYTES", "1000000")]);
    d.start().unwrap();
    let e = d.refresh(Duration::from_secs(10)).unwrap_err();
    assert!(e.to_string().contains("larger than 1000000 bytes"), "{e}");

    // Announced as gzip but not gzip (here: plain JSON): an error that says so, never the
    // bytes taken as they are. (Decoded by src/eureka/body.rs, which the fuzz target
    // read_registry runs on arbitrary bytes.)
    let not_gzip = Stub::start(|r| match r.method.as_str() {
        "GET" => Reply::Gzip(br#"{"applications":{"application":[]}}"#.to_vec()),
        _ => healthy(r),
    });
    let d = discovery(&not_gzip.url(), &[]);
    d.start().unwrap();
    let e = d.refresh(Duration::from_secs(10)).unwrap_err();
    assert!(e.to_string().contains("is not valid gzip"), "{e}");

    // A body that stops arriving is a timeout that says so, not a JSON error.
    let stalled = Stub::start(|_| Reply::Stall(Duration::from_secs(5)));
    let d = discovery(&stalled.url(), &[]);
    d.start().unwrap();
    let e = d.refresh(Duration::from_secs(10)).unwrap_err();
    assert!(
        matches!(e, Error::Timeout(_)) && e.to_string().contains("stopped arriving"),
        "{e}"
    );

    // Registration answers have a small cap.
    let posts = Arc::new(AtomicUsize::new(0));
    let counted = posts.clone();
    let huge_post = Stub::start(move |r| {
        counted.fetch_add(1, Ordering::SeqCst);
        match r.method.as_str() {
            "POST" => Reply::Endless,
            _ => healthy(r),
        }
    });
    let client = fast_client(&huge_post.url(), "huge-answer");
    client.start().unwrap();
    let failure = client.wait_registered(1500).unwrap_err();
    assert!(
        failure.message.contains("larger than 65536 bytes"),
        "{}",
        failure.message
    );
    assert!(posts.load(Ordering::SeqCst) >= 1);
    client.stop(500).unwrap();

    // The setting is validated.
    let mut settings = Settings::new();
    settings.set("url", &endless.url()).unwrap();
    settings.set("REGISTRY_MAX_RESPONSE_BYTES", "12").unwrap();
    let e = DiscoveryConfig::from_settings(&settings).unwrap_err();
    assert!(
        e.to_string().contains("REGISTRY_MAX_RESPONSE_BYTES '12'"),
        "{e}"
    );
}

/// A burst of many handles against one server waits for turns instead of opening a connection
/// per request (at most 32 requests in flight per server: src/eureka/http.rs), and every one
/// of them still registers and deregisters. The stub is slow on purpose (a real server cannot
/// be made slow), so without the limit every client's request would be in flight at once.
#[test]
fn a_burst_of_clients_shares_a_bounded_set_of_connections() {
    let slow = Stub::start(|request| {
        std::thread::sleep(Duration::from_millis(100));
        healthy(request)
    });
    let clients: Vec<Client> = (0..100)
        .map(|i| Client::new(&slow.url(), &format!("burst-{i}"), &[]).unwrap())
        .collect();
    for client in &clients {
        client.set_status(REGISTRAR_INSTANCE_UP).unwrap();
        client.start().unwrap();
    }
    for client in &clients {
        client.wait_registered(20_000).unwrap();
    }
    std::thread::scope(|scope| {
        for client in &clients {
            scope.spawn(|| client.stop(20_000).unwrap());
        }
    });
    let requests = slow.requests();
    let count = |method: &str| requests.iter().filter(|r| r.method == method).count();
    // STARTING and UP, then DELETE, for each (and heartbeats meanwhile).
    assert_eq!((count("POST"), count("DELETE")), (200, 100));
    let mut connections: Vec<usize> = requests.iter().map(|r| r.connection).collect();
    connections.sort_unstable();
    connections.dedup();
    assert!(
        connections.len() <= 32,
        "{} connections for 100 clients starting at once",
        connections.len()
    );
}
