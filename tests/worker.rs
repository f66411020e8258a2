//! The one agent thread of the process (src/worker.rs): every client and discovery cache is a
//! task on it; it starts with the first handle that needs it and ends with the last; a handle
//! whose registry hangs never delays another's heartbeats.
//! One test function, run in sequence, because it counts the threads of this test process.

mod common;

use std::ptr;
use std::time::{Duration, Instant};

use common::stub::{healthy, Reply, Stub};
use common::*;
use registrar::ffi::registrar_instance_status::*;
use registrar::ffi::*;

/// The names of this process's threads that registrar started.
fn registrar_threads() -> Vec<String> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir("/proc/self/task").unwrap() {
        let path = entry.unwrap().path().join("comm");
        if let Ok(name) = std::fs::read_to_string(path) {
            let name = name.trim().to_string();
            if name.starts_with("registrar") {
                names.push(name);
            }
        }
    }
    names.sort();
    names
}

/// The agent thread ends once the last handle is freed. Joined by that free, but the kernel
/// wakes the joiner (the thread's tid cleared) a moment before it takes the thread out of
/// /proc/self/task: under load the name can still be listed right after (seen once).
fn assert_thread_ends() {
    assert!(
        eventually(Duration::from_secs(2), || registrar_threads()
            .is_empty()
            .then_some(()))
        .is_some(),
        "{:?}",
        registrar_threads()
    );
}

fn discovery(url: &str) -> *mut registrar_discovery {
    let cfg = config(&[("url", url), ("fetch_interval", "0.2"), ("timeout", "2")]);
    let mut d = ptr::null_mut();
    check(registrar_discovery_new(cfg, &mut d)).unwrap();
    registrar_config_free(cfg);
    d
}

#[test]
fn one_agent_thread_for_every_handle() {
    let healthy_stub = Stub::start(healthy);
    assert!(
        registrar_threads().is_empty(),
        "no thread before a handle needs one"
    );

    // Creating handles needs no thread; starting the first one starts exactly one.
    let clients: Vec<Client> = (0..50)
        .map(|i| {
            Client::new(
                &healthy_stub.url(),
                &format!("many-{i}"),
                &[("heartbeat_interval", "0.1"), ("lease_duration", "2")],
            )
            .unwrap()
        })
        .collect();
    let caches: Vec<*mut registrar_discovery> =
        (0..3).map(|_| discovery(&healthy_stub.url())).collect();
    assert!(registrar_threads().is_empty(), "{:?}", registrar_threads());
    for client in &clients {
        client.set_status(REGISTRAR_INSTANCE_UP).unwrap();
        client.start().unwrap();
    }
    for d in &caches {
        check(registrar_discovery_start(*d)).unwrap();
    }
    for client in &clients {
        client.wait_registered(5000).unwrap();
    }
    assert_eq!(registrar_threads(), ["registrar-agent"]);

    // A registry that hangs for one client delays no other client's heartbeats.
    let hanging = Stub::start(|_| Reply::Hang(Duration::from_secs(5)));
    let stuck = Client::new(&hanging.url(), "stuck", &[("timeout", "3")]).unwrap();
    stuck.start().unwrap();
    assert!(
        eventually(Duration::from_secs(2), || (!hanging.requests().is_empty())
            .then_some(()))
        .is_some()
    );
    let before: u64 = clients.iter().map(|c| c.info().heartbeats).sum();
    std::thread::sleep(Duration::from_millis(1000));
    let after: u64 = clients.iter().map(|c| c.info().heartbeats).sum();
    // 50 clients every 100 ms for a second: about 500; half is plenty to show nobody waited.
    assert!(
        after - before >= 250,
        "{} heartbeats in 1 s while one registry hangs",
        after - before
    );
    assert_eq!(stuck.info().heartbeats, 0);

    // Stop is bounded by its own deadline even with a request in flight, and frees nothing
    // of the others.
    let started = Instant::now();
    let _ = stuck.stop(300);
    assert!(
        started.elapsed() < Duration::from_millis(800),
        "{:?}",
        started.elapsed()
    );
    drop(stuck);

    // The last handle gone, the thread ends; the next handle starts a new one.
    drop(clients);
    assert_eq!(registrar_threads(), ["registrar-agent"], "caches still run");
    for d in caches {
        registrar_discovery_free(d);
    }
    assert_thread_ends();
    let again = Client::new(&healthy_stub.url(), "again", &[]).unwrap();
    again.start().unwrap();
    again.wait_registered(3000).unwrap();
    assert_eq!(registrar_threads(), ["registrar-agent"]);
    drop(again);
    assert_thread_ends();
}
