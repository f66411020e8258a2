//! The health watcher of one client: runs its health check every interval and reports each
//! change of the verdict, so the agent registers DOWN while the service is unhealthy.
//!
//! ```text
//! every REGISTRY_HEALTH_INTERVAL (a task on the agent thread, next to the client's own):
//!   previous check still running? ──yes──► a failure ("has not returned"), nothing started
//!   otherwise ──► the check runs on the runner thread `registrar-health` (one per client,
//!                 started on first use); the task waits at most REGISTRY_TIMEOUT for it
//!                 ──► its result, or a failure (the call is left to finish on its own)
//!   result ──► HealthTracker ──verdict changed──► the agent (status DOWN / the host's status)
//! ```
//!
//! The check is the host's function ([`HealthCheckFn`]: a C function pointer, a Python
//! callable, a Go func) or, without one, a GET of REGISTRY_HEALTH_URL. Host code and blocking
//! probes never run on the agent thread: heartbeats never wait for a check. A check that hangs
//! occupies the runner and no more: while it has not returned no other check starts (no
//! threads pile up), and every interval it misses counts as a failure. A panic in the check is
//! caught and counts as a failure.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Instant;

use parking_lot::{Condvar, Mutex};
use tokio::sync::{oneshot, Notify};

use crate::health::{HealthConfig, HealthTracker};
use crate::metrics::ClientMetrics;
use crate::worker::panic_message;

/// A health check: `Ok` when the service is healthy, `Err` saying why not. Called on the
/// runner thread, never twice at once for one client.
pub type HealthCheckFn = dyn Fn() -> std::result::Result<(), String> + Send + Sync;

thread_local! {
    /// True on a runner thread: a check that stops its own client must not wait for itself.
    static ON_RUNNER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The outcome of one check.
pub type CheckResult = std::result::Result<(), String>;

/// What the health of a client looks like now (for snapshots).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthState {
    /// A check is configured (the host's function or REGISTRY_HEALTH_URL).
    pub configured: bool,
    /// The verdict: false while the instance is held DOWN by failing checks.
    pub healthy: bool,
    /// Why the last failed check failed (kept until a check passes).
    pub last_failure: Option<String>,
    pub checks_passed: u64,
    pub checks_failed: u64,
}

pub(crate) struct HealthWatch {
    config: HealthConfig,
    /// REGISTRY_HEALTH_URL as a check, used while the host has set none.
    url_check: Option<Arc<HealthCheckFn>>,
    inner: Mutex<Inner>,
    /// A check was set or removed: the schedule starts over.
    changed: Notify,
    runner: Arc<Runner>,
    /// The client's metrics: checks by result and the verdict.
    metrics: Arc<ClientMetrics>,
}

struct Inner {
    host_check: Option<Arc<HealthCheckFn>>,
    tracker: HealthTracker,
    last_failure: Option<String>,
    /// The answer of a check that did not return within the timeout.
    outstanding: Option<oneshot::Receiver<CheckResult>>,
    /// The thread that runs checks, once started.
    requests: Option<mpsc::Sender<Request>>,
}

struct Request {
    check: Arc<HealthCheckFn>,
    reply: oneshot::Sender<CheckResult>,
}

/// The part of the runner thread the host side waits on.
#[derive(Default)]
struct Runner {
    /// (a check is running, closed: no check may start any more)
    busy: Mutex<(bool, bool)>,
    idle: Condvar,
}

impl HealthWatch {
    pub(crate) fn new(config: HealthConfig, metrics: Arc<ClientMetrics>) -> HealthWatch {
        let url_check = config.url.clone().map(|url| {
            let timeout = config.timeout;
            Arc::new(move || {
                url.check(timeout)
                    .map(|_| ())
                    .map_err(|why| format!("{url}: {why}"))
            }) as Arc<HealthCheckFn>
        });
        metrics.set_healthy(url_check.as_ref().map(|_| true));
        HealthWatch {
            inner: Mutex::new(Inner {
                host_check: None,
                tracker: HealthTracker::new(config.threshold),
                last_failure: None,
                outstanding: None,
                requests: None,
            }),
            config,
            url_check,
            changed: Notify::new(),
            runner: Arc::default(),
            metrics,
        }
    }

    /// Sets (`Some`) or removes (`None`) the host's check; without one REGISTRY_HEALTH_URL (if
    /// set) is checked. The verdict starts over as healthy. The old check is dropped here,
    /// or by the runner thread after its call in progress.
    pub(crate) fn set_check(&self, check: Option<Arc<HealthCheckFn>>) {
        let old = {
            let mut inner = self.inner.lock();
            inner.tracker = HealthTracker::new(self.config.threshold);
            inner.last_failure = None;
            let configured = check.is_some() || self.url_check.is_some();
            self.metrics.set_healthy(configured.then_some(true));
            std::mem::replace(&mut inner.host_check, check)
        };
        drop(old);
        self.changed.notify_one();
    }

    /// A check is configured: the host's or REGISTRY_HEALTH_URL.
    pub(crate) fn configured(&self) -> bool {
        self.url_check.is_some() || self.inner.lock().host_check.is_some()
    }

    fn current_check(&self) -> Option<Arc<HealthCheckFn>> {
        self.inner
            .lock()
            .host_check
            .clone()
            .or_else(|| self.url_check.clone())
    }

    pub(crate) fn state(&self) -> HealthState {
        let inner = self.inner.lock();
        let (checks_passed, checks_failed) = self.metrics.health_checks();
        HealthState {
            configured: inner.host_check.is_some() || self.url_check.is_some(),
            healthy: inner.tracker.is_healthy(),
            last_failure: inner.last_failure.clone(),
            checks_passed,
            checks_failed,
        }
    }

    /// Runs checks on schedule until the verdict changes; returns the new verdict (`Err` with
    /// the last failure when it turned unhealthy). Waits for ever while no check is configured.
    pub(crate) async fn next_change(&self) -> CheckResult {
        let mut due = Instant::now();
        loop {
            let changed = self.changed.notified();
            let Some(check) = self.current_check() else {
                changed.await;
                due = Instant::now();
                continue;
            };
            if tokio::time::timeout_at(due.into(), changed).await.is_ok() {
                // A new check: start its schedule now.
                due = Instant::now();
                continue;
            }
            let result = self.run(check).await;
            // The next check one interval after this one was due; after a long wait (a check
            // that timed out), one interval from now rather than a burst of catching up.
            due = (due + self.config.interval).max(Instant::now());
            if let Some(verdict) = self.record(result) {
                return verdict;
            }
        }
    }

    /// One check, bounded by REGISTRY_TIMEOUT.
    async fn run(&self, check: Arc<HealthCheckFn>) -> CheckResult {
        let answer = {
            let mut inner = self.inner.lock();
            if let Some(outstanding) = inner.outstanding.as_mut() {
                match outstanding.try_recv() {
                    Err(oneshot::error::TryRecvError::Empty) => {
                        return Err(format!(
                            "the previous check has not returned after more than {} ms",
                            self.config.timeout.as_millis()
                        ));
                    }
                    // Its late answer is stale by now.
                    _ => inner.outstanding = None,
                }
            }
            let (reply, answer) = oneshot::channel();
            let request = Request { check, reply };
            let sent = match &inner.requests {
                Some(requests) => requests.send(request).map_err(|e| e.0),
                None => Err(request),
            };
            if let Err(request) = sent {
                let requests = self.start_runner()?;
                requests
                    .send(request)
                    .map_err(|_| "the health check thread ended".to_string())?;
                inner.requests = Some(requests);
            }
            answer
        };
        let mut answer = answer;
        match tokio::time::timeout(self.config.timeout, &mut answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err("the health check thread ended".into()),
            Err(_) => {
                self.inner.lock().outstanding = Some(answer);
                Err(format!(
                    "no answer within {} ms (REGISTRY_TIMEOUT)",
                    self.config.timeout.as_millis()
                ))
            }
        }
    }

    /// Records one result; the new verdict when it changed.
    fn record(&self, result: CheckResult) -> Option<CheckResult> {
        let mut inner = self.inner.lock();
        let ok = result.is_ok();
        self.metrics.health_check(ok);
        let flipped = inner.tracker.record(ok);
        if let Some(healthy) = flipped {
            self.metrics.set_healthy(Some(healthy));
        }
        match result {
            Ok(()) if flipped.is_some() => {
                inner.last_failure = None;
                Some(Ok(()))
            }
            Ok(()) => None,
            Err(why) => {
                inner.last_failure = Some(why.clone());
                flipped.map(|_| Err(why))
            }
        }
    }

    fn start_runner(&self) -> std::result::Result<mpsc::Sender<Request>, String> {
        let (requests, inbox) = mpsc::channel::<Request>();
        let runner = Arc::clone(&self.runner);
        std::thread::Builder::new()
            .name("registrar-health".into())
            // Host code runs here (a Python interpreter, a Go callback): a normal stack.
            .stack_size(2 * 1024 * 1024)
            .spawn(move || runner.serve(inbox))
            .map_err(|e| format!("cannot start the health check thread: {e}"))?;
        Ok(requests)
    }

    /// No check starts from now on. Waits (off the agent thread, at most until `deadline`) for
    /// a check in progress to return; false if one is still running.
    pub(crate) fn close(&self, deadline: Instant) -> bool {
        {
            let mut inner = self.inner.lock();
            // The runner thread ends once it has nothing left to do.
            inner.requests = None;
            inner.outstanding = None;
        }
        let mut busy = self.runner.busy.lock();
        busy.1 = true;
        if crate::worker::on_agent_thread() || ON_RUNNER.with(|on| on.get()) {
            return !busy.0;
        }
        while busy.0 {
            if self.runner.idle.wait_until(&mut busy, deadline).timed_out() {
                return !busy.0;
            }
        }
        true
    }
}

impl Runner {
    /// The runner thread: one check after the other until the watch is closed or dropped.
    fn serve(&self, inbox: mpsc::Receiver<Request>) {
        ON_RUNNER.with(|on| on.set(true));
        while let Ok(request) = inbox.recv() {
            {
                let mut busy = self.busy.lock();
                if busy.1 {
                    return;
                }
                busy.0 = true;
            }
            let result =
                catch_unwind(AssertUnwindSafe(|| (request.check)())).unwrap_or_else(|panic| {
                    Err(format!(
                        "the health check panicked: {}",
                        panic_message(&panic)
                    ))
                });
            // The check (and whatever it holds) is released before the host is told it is idle.
            let Request { check, reply } = request;
            drop(check);
            {
                let mut busy = self.busy.lock();
                busy.0 = false;
                self.idle.notify_all();
            }
            let _ = reply.send(result);
        }
    }
}
