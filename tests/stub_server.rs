//! What a real Eureka server cannot be made to do, against an in-process stub: 500s, garbage,
//! hangs, a 404 on heartbeat; and what the client must never do (send after stop).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::stub::{healthy, Reply, Request, Stub};
use common::*;
use registrar::ffi::registrar_client_state::*;
use registrar::ffi::registrar_instance_status::*;
use registrar::ffi::registrar_status::*;

fn methods(requests: &[Request]) -> Vec<String> {
    requests.iter().map(|r| r.method.clone()).collect()
}

#[test]
fn a_500_is_reported_with_the_servers_reason_and_retried_with_backoff() {
    let stub = Stub::start(|_| Reply::Status(500, "registry exploded"));
    let client = Client::new(
        &stub.url(),
        "five-hundred",
        &[("heartbeat_interval", "5"), ("lease_duration", "15")],
    )
    .unwrap();
    client.start().unwrap();
    let failure = client.wait_registered(1000).unwrap_err();
    assert_eq!(failure.status, REGISTRAR_ERR_TIMEOUT);
    assert!(
        failure.message.contains("HTTP 500") && failure.message.contains("registry exploded"),
        "{}",
        failure.message
    );
    assert_eq!(client.info().last_error, REGISTRAR_ERR_REJECTED);
    // Backoff 100, 200, 400, 800 ms...: a second of failures is a handful of requests, not a flood.
    let sent = stub.requests().len();
    assert!((2..=6).contains(&sent), "{sent} requests in one second");
    client.stop(500).unwrap();
}

#[test]
fn garbage_error_bodies_are_quoted_not_parsed() {
    let stub = Stub::start(|_| Reply::Status(400, "\u{1}{{{not json <html>\u{7f}"));
    let client = Client::new(&stub.url(), "garbage", &[]).unwrap();
    client.start().unwrap();
    let failure = client.wait_registered(500).unwrap_err();
    assert!(
        failure.message.contains("HTTP 400") && failure.message.contains("not json"),
        "{}",
        failure.message
    );
    client.stop(500).unwrap();
}

#[test]
fn stop_is_bounded_when_the_server_hangs_and_nothing_is_sent_afterwards() {
    let stub = Stub::start(|_| Reply::Hang(Duration::from_secs(10)));
    let client = Client::new(&stub.url(), "hang", &[("timeout", "1")]).unwrap();
    client.start().unwrap();
    assert!(
        eventually(Duration::from_secs(2), || (!stub.requests().is_empty())
            .then_some(()))
        .is_some()
    );
    let started = Instant::now();
    let result = client.stop(300);
    let took = started.elapsed();
    assert_eq!(result.unwrap_err().status, REGISTRAR_ERR_TIMEOUT);
    assert!(
        took < Duration::from_millis(1000),
        "stop returned after {took:?}"
    );
    let sent = stub.requests().len();
    // The hanging request times out after 1 s; the worker must then send nothing more.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        stub.requests().len(),
        sent,
        "{:?}",
        methods(&stub.requests())
    );
    assert_eq!(client.info().state, REGISTRAR_STATE_STOPPED);
    // Free after a timed-out stop does not wait again.
    let started = Instant::now();
    drop(client);
    assert!(started.elapsed() < Duration::from_millis(500));
}

/// A heartbeat that gets no answer fails at REGISTRY_TIMEOUT, no sooner and not much later, and
/// the next one goes out. Its timer was armed ahead at the previous answer (see
/// `worker::arm_ahead`), so this checks that arming ahead leaves the deadline exact.
#[test]
fn a_heartbeat_without_answer_fails_at_the_timeout_and_the_next_one_follows() {
    let puts = Arc::new(AtomicUsize::new(0));
    let counted = puts.clone();
    let stub = Stub::start(move |request| match request.method.as_str() {
        "PUT" if counted.fetch_add(1, Ordering::SeqCst) == 3 => {
            Reply::Hang(Duration::from_secs(10))
        }
        _ => healthy(request),
    });
    let client = Client::new(
        &stub.url(),
        "heartbeat-timeout",
        &[("heartbeat_interval", "0.1"), ("timeout", "0.6")],
    )
    .unwrap();
    client.start().unwrap();
    let heartbeats = |requests: Vec<Request>| -> Vec<Instant> {
        requests
            .iter()
            .filter(|r| r.method == "PUT")
            .map(|r| r.at)
            .collect()
    };
    let sent = eventually(Duration::from_secs(5), || {
        let sent = heartbeats(stub.requests());
        (sent.len() >= 6).then_some(sent)
    })
    .expect("heartbeats go on after the one without answer");
    let gap = sent[4] - sent[3];
    assert!(
        gap >= Duration::from_millis(600) && gap < Duration::from_millis(1600),
        "the heartbeat after the unanswered one went out {gap:?} after it"
    );
    assert_eq!(client.info().failed_requests, 1);
    client.stop(1000).unwrap();
}

/// Without a drain, stop's only request is the DELETE (as the Java client's shutdown sends only
/// its cancel): no DOWN registration before it, which would double the requests of a stop.
#[test]
fn stop_sends_only_delete_and_then_nothing() {
    let stub = Stub::start(healthy);
    let client = Client::new(
        &stub.url(),
        "orderly",
        &[("heartbeat_interval", "0.05"), ("lease_duration", "1")],
    )
    .unwrap();
    client.set_status(REGISTRAR_INSTANCE_UP).unwrap();
    client.start().unwrap();
    client.wait_registered(2000).unwrap();
    assert!(
        eventually(Duration::from_secs(2), || (client.info().heartbeats >= 5)
            .then_some(()))
        .is_some()
    );
    let before_stop = stub.requests().len();
    client.stop(0).unwrap();
    let requests = stub.requests();
    let n = requests.len();
    // A heartbeat (PUT) may have been in flight as stop came; nothing else but the DELETE.
    let sent_by_stop: Vec<&str> = requests[before_stop..]
        .iter()
        .map(|r| r.method.as_str())
        .filter(|m| *m != "PUT")
        .collect();
    assert_eq!(sent_by_stop, ["DELETE"]);
    assert_eq!(requests[n - 1].method, "DELETE");
    assert_eq!(
        requests[n - 1].path,
        "/eureka/apps/ORDERLY/127.0.0.1:orderly:8080"
    );
    std::thread::sleep(Duration::from_millis(300)); // six heartbeat intervals
    assert_eq!(stub.requests().len(), n, "nothing after stop returned");

    // Protocol details: JSON both ways, heartbeats on one kept-alive connection.
    let first = &requests[0];
    assert!(first
        .headers
        .iter()
        .any(|(k, v)| k == "accept" && v == "application/json"));
    assert!(first
        .headers
        .iter()
        .any(|(k, v)| k == "content-type" && v == "application/json"));
    let heartbeats: Vec<&Request> = requests.iter().filter(|r| r.method == "PUT").collect();
    assert!(heartbeats[0]
        .path
        .starts_with("/eureka/apps/ORDERLY/127.0.0.1:orderly:8080?status=UP&lastDirtyTimestamp="));
    assert!(
        heartbeats
            .iter()
            .all(|r| r.connection == heartbeats[0].connection),
        "one reused connection"
    );
}

#[test]
fn a_404_heartbeat_registers_again_at_once() {
    let puts = Arc::new(AtomicUsize::new(0));
    let counter = puts.clone();
    let stub = Stub::start(move |r| {
        if r.method == "PUT" && counter.fetch_add(1, Ordering::SeqCst) == 1 {
            Reply::Status(404, "")
        } else {
            healthy(r)
        }
    });
    let client = Client::new(
        &stub.url(),
        "evicted",
        &[("heartbeat_interval", "0.1"), ("lease_duration", "1")],
    )
    .unwrap();
    client.start().unwrap();
    assert!(
        eventually(Duration::from_secs(3), || (client.info().registrations
            >= 2)
            .then_some(()))
        .is_some()
    );
    let requests = stub.requests();
    let second_put = requests
        .iter()
        .enumerate()
        .filter(|(_, r)| r.method == "PUT")
        .nth(1)
        .unwrap()
        .0;
    assert_eq!(
        requests[second_put + 1].method,
        "POST",
        "{:?}",
        methods(&requests)
    );
    // Without waiting for the next interval.
    assert!(requests[second_put + 1].at - requests[second_put].at < Duration::from_millis(90));
    client.stop(0).unwrap();
}

#[test]
fn credentials_are_sent_preemptively() {
    let stub = Stub::start(healthy);
    let client = Client::new(
        &stub.url(),
        "preemptive",
        &[("user", "alice"), ("password", "pw:with:colons")],
    )
    .unwrap();
    client.start().unwrap();
    client.wait_registered(2000).unwrap();
    let expected = "Basic YWxpY2U6cHc6d2l0aDpjb2xvbnM="; // alice:pw:with:colons
    assert!(stub.requests()[0]
        .headers
        .iter()
        .any(|(k, v)| k == "authorization" && v == expected));
    client.stop(0).unwrap();
}

#[test]
fn a_client_never_started_sends_nothing() {
    let stub = Stub::start(healthy);
    let client = Client::new(&stub.url(), "idle", &[]).unwrap();
    client.stop(0).unwrap();
    drop(client);
    std::thread::sleep(Duration::from_millis(100));
    assert!(stub.requests().is_empty());
}
