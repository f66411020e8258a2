//! The threads that run host health checks (src/health_watch.rs), against a REAL Eureka server
//! (scripts/test-eureka.sh): they are shared by every client of the process, so many clients
//! with checks cost about one thread, not one each; a check that hangs never makes another
//! client's check wait; removing a check waits for its call in progress and frees its user data
//! on the caller's thread; and the threads end with the last client.
//! One test function, because it counts the threads of this test process.

mod common;

use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use common::*;
use parking_lot::Mutex;
use registrar::ffi::registrar_instance_status::*;
use registrar::ffi::*;

/// How many threads of this process have `name` (as the kernel keeps it: 15 bytes at most).
fn threads_named(name: &str) -> usize {
    let name = &name[..name.len().min(15)];
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|entry| std::fs::read_to_string(entry.unwrap().path().join("comm")).ok())
        .filter(|comm| comm.trim() == name)
        .count()
}

/// What one client's C health check reads and records.
#[derive(Default)]
struct Health {
    /// While set, a call blocks until it is cleared (at most 20 s).
    hang: AtomicBool,
    /// Each call takes this long (ms).
    slow_ms: AtomicU64,
    calls: AtomicU32,
    running: AtomicU32,
    freed: AtomicU32,
    freed_on: Mutex<Option<ThreadId>>,
}

impl Health {
    /// Waits (up to 5 s) until a call of this check is running.
    fn comes_to_run(&self) -> bool {
        eventually(Duration::from_secs(5), || {
            (self.running.load(Ordering::SeqCst) == 1).then_some(())
        })
        .is_some()
    }
}

unsafe extern "C" fn check_health(user_data: *mut c_void) -> i32 {
    let health = &*(user_data as *const Health);
    health.calls.fetch_add(1, Ordering::SeqCst);
    health.running.fetch_add(1, Ordering::SeqCst);
    let until = Instant::now() + Duration::from_secs(20);
    while health.hang.load(Ordering::SeqCst) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(health.slow_ms.load(Ordering::SeqCst)));
    health.running.fetch_sub(1, Ordering::SeqCst);
    1
}

unsafe extern "C" fn free_health(user_data: *mut c_void) {
    let health = &*(user_data as *const Health);
    health.freed.fetch_add(1, Ordering::SeqCst);
    *health.freed_on.lock() = Some(std::thread::current().id());
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

fn checks_failed(client: &Client) -> u64 {
    client.snapshot()["health"]["checks"]["failed"]
        .as_u64()
        .unwrap()
}

#[test]
fn health_checks_share_a_few_threads_and_never_wait_for_each_other() {
    const CLIENTS: usize = 30;
    let url = shared_url();
    assert_eq!(threads_named("registrar-health"), 0);

    let clients: Vec<(Client, Arc<Health>)> = (0..CLIENTS)
        .map(|i| {
            let app = unique_app(&format!("health-runners-{i}"));
            let client = Client::new(
                &url,
                &app,
                &[
                    ("health_interval", "0.1"),
                    ("health_threshold", "2"),
                    ("timeout", "1"),
                ],
            )
            .unwrap();
            let health = Arc::new(Health::default());
            install(&client, &health);
            client.set_status(REGISTRAR_INSTANCE_UP).unwrap();
            (client, health)
        })
        .collect();
    for (client, _) in &clients {
        client.start().unwrap();
    }
    for (client, _) in &clients {
        client.wait_registered(10_000).unwrap();
    }
    let every_check_ran = |times: u32| {
        eventually(Duration::from_secs(10), || {
            clients
                .iter()
                .all(|(_, h)| h.calls.load(Ordering::SeqCst) >= times)
                .then_some(())
        })
        .is_some()
    };
    assert!(every_check_ran(5), "every client's check runs");
    // 30 clients checking every 0.1 s, each check returning at once: one runner. (A busy
    // machine that leaves a call unanswered for a while gets one more, which ends again as
    // soon as it finds the other idle: so the count is checked once it settles.) One thread
    // per client before.
    let settles_to = |wanted: usize| {
        eventually(Duration::from_secs(5), || {
            let runners = threads_named("registrar-health");
            (runners == wanted).then_some(())
        })
        .is_some()
    };
    assert!(
        settles_to(1),
        "{} health check threads for {CLIENTS} clients",
        threads_named("registrar-health")
    );

    // One client's check hangs: the others' checks go on, none of them waiting for it.
    let (hung_client, hung) = &clients[0];
    hung.hang.store(true, Ordering::SeqCst);
    assert!(hung.comes_to_run(), "its check runs");
    let calls_before: Vec<u32> = clients
        .iter()
        .map(|(_, h)| h.calls.load(Ordering::SeqCst))
        .collect();
    let failed_before: Vec<u64> = clients.iter().map(|(c, _)| checks_failed(c)).collect();
    // Longer than REGISTRY_TIMEOUT (1 s), so a check queued behind the hung one would have
    // failed by now.
    std::thread::sleep(Duration::from_millis(2500));
    for (i, (client, health)) in clients.iter().enumerate().skip(1) {
        assert!(
            health.calls.load(Ordering::SeqCst) >= calls_before[i] + 5,
            "client {i}'s check kept running while another one hangs"
        );
        assert_eq!(
            checks_failed(client),
            failed_before[i],
            "client {i}'s check never waited for the hung one"
        );
    }
    assert!(
        checks_failed(hung_client) > failed_before[0],
        "the hung check counts as failing"
    );
    assert_eq!(
        hung.calls.load(Ordering::SeqCst),
        calls_before[0],
        "never two at once"
    );
    // The hung check's runner and one more.
    assert!(
        settles_to(2),
        "{} health check threads with one check hung",
        threads_named("registrar-health")
    );

    // Removing a check while it runs waits for that call, then frees its user data here.
    let (slow_client, slow) = &clients[1];
    slow.slow_ms.store(300, Ordering::SeqCst);
    assert!(slow.comes_to_run(), "its check runs");
    check(registrar_client_set_health_check(
        slow_client.ptr,
        None,
        std::ptr::null_mut(),
        None,
    ))
    .unwrap();
    assert_eq!(
        slow.running.load(Ordering::SeqCst),
        0,
        "the call in progress returned first"
    );
    assert_eq!(slow.freed.load(Ordering::SeqCst), 1);
    assert_eq!(*slow.freed_on.lock(), Some(std::thread::current().id()));
    let calls = slow.calls.load(Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        slow.calls.load(Ordering::SeqCst),
        calls,
        "no call after removal"
    );

    // The last client gone, every runner ends (the hung one when its call returns).
    hung.hang.store(false, Ordering::SeqCst);
    for (client, _) in &clients {
        client.stop(5000).unwrap();
    }
    drop(clients);
    assert!(
        eventually(Duration::from_secs(5), || (threads_named(
            "registrar-health"
        ) == 0
            && threads_named("registrar-agent") == 0)
            .then_some(()))
        .is_some(),
        "health threads left: {}",
        threads_named("registrar-health")
    );
}
