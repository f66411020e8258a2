//! Two REAL Eureka servers replicating to each other; one is killed while a client
//! heartbeats. The heartbeats must go on against the survivor without missing a beat, and the
//! instance must stay visible there (it got there by replication, then by our own heartbeats).

mod common;

use std::time::{Duration, Instant};

use common::*;
use registrar::ffi::registrar_instance_status::*;

const INTERVAL: Duration = Duration::from_secs(1);

/// Times at which the client's accepted-heartbeat counter went up, sampled every 10 ms.
fn heartbeat_times(client: &Client, for_how_long: Duration) -> Vec<Instant> {
    let mut times = Vec::new();
    let mut last = client.info().heartbeats;
    let end = Instant::now() + for_how_long;
    while Instant::now() < end {
        let now = client.info().heartbeats;
        if now > last {
            times.push(Instant::now());
            last = now;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    times
}

#[test]
fn heartbeats_continue_on_the_surviving_peer() {
    let (first, second) = Registry::start_peers("peers");
    let app = unique_app("peers");
    let urls = format!("{},{}", first.url(), second.url());
    let client = Client::new(
        &urls,
        &app,
        &[
            ("heartbeat_interval", "1"),
            ("lease_duration", "30"),
            ("timeout", "2"),
        ],
    )
    .unwrap();
    client.set_status(REGISTRAR_INSTANCE_UP).unwrap();
    client.start().unwrap();
    client.wait_registered(10_000).unwrap();
    let id = client.instance_id();

    // The first server answered (requests start with the first URL) and replicated to the
    // second: the instance is UP on both before anything fails.
    for registry in [&first, &second] {
        let up = eventually(Duration::from_secs(10), || {
            get_instance(&registry.url(), &app, &id, false).filter(|i| i["status"] == "UP")
        });
        assert!(up.is_some(), "UP on {} before the kill", registry.url());
    }

    let before = heartbeat_times(&client, 3 * INTERVAL);
    assert!(
        before.len() >= 2,
        "heartbeats before the kill: {}",
        before.len()
    );
    first.kill();
    let killed = Instant::now();
    let after = heartbeat_times(&client, 5 * INTERVAL);

    // The largest pause between two accepted heartbeats around the kill. One interval apart
    // is normal; a missed beat would make it two. Allow most of an interval for a loaded machine.
    let beats: Vec<Instant> = before
        .last()
        .into_iter()
        .chain(after.iter())
        .copied()
        .collect();
    let gap = beats
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or(Duration::MAX);
    println!(
        "heartbeats: {} in 3 s before, {} in 5 s after the kill; largest pause {:?}",
        before.len(),
        after.len(),
        gap
    );
    assert!(
        after.len() >= 3,
        "heartbeats after the kill: {}",
        after.len()
    );
    assert!(
        gap < INTERVAL + Duration::from_millis(900),
        "a heartbeat was missed: pause of {gap:?} (interval {INTERVAL:?})"
    );
    assert!(
        after
            .first()
            .is_some_and(|t| *t - killed < INTERVAL + Duration::from_millis(900)),
        "first heartbeat after the kill came late"
    );

    // Still registered on the survivor, renewed by our heartbeats.
    let instance = get_instance(&second.url(), &app, &id, false).expect("still on the survivor");
    assert_eq!(instance["status"], "UP");
    let renewed = instance["leaseInfo"]["lastRenewalTimestamp"]
        .as_i64()
        .unwrap();
    let later = eventually(Duration::from_secs(5), || {
        get_instance(&second.url(), &app, &id, false)
            .and_then(|i| i["leaseInfo"]["lastRenewalTimestamp"].as_i64())
            .filter(|r| *r > renewed)
    });
    assert!(later.is_some(), "the survivor's lease is renewed");

    // Deregistration reaches the survivor too.
    client.stop(0).unwrap();
    assert_eq!(get_instance(&second.url(), &app, &id, false), None);
}
