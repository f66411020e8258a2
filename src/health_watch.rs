//! The health watcher of one client: runs its health check every interval and reports each
//! change of the verdict, so the agent registers DOWN while the service is unhealthy.
//!
//! ```text
//! every REGISTRY_HEALTH_INTERVAL (a task on the agent thread, next to the client's own):
//!   previous check still running? ──yes──► a failure ("has not returned"), nothing started
//!   otherwise ──► the check runs on a runner thread `registrar-health` (shared by every
//!                 client of the process, see below); the task waits at most
//!                 REGISTRY_TIMEOUT for it ──► its result, or a failure (the call is left to
//!                 finish on its own)
//!   result ──► HealthTracker ──verdict changed──► the agent (status DOWN / the host's status)
//! ```
//!
//! The check is the host's function ([`HealthCheckFn`]: a C function pointer, a Python
//! callable, a Go func) or, without one, a GET of REGISTRY_HEALTH_URL. Host code and blocking
//! probes never run on the agent thread: heartbeats never wait for a check. A check that hangs
//! occupies one runner thread and no more: while it has not returned no other check of that
//! client starts (no threads pile up), and every interval it misses counts as a failure. A
//! panic in the check is caught and counts as a failure.
//!
//! Runner threads are process-wide, like the agent thread: checks are short and rare (one per
//! client per interval), so one thread runs them all, one after the other, and 1,000 clients
//! with checks cost one thread, not 1,000. A call waits behind another client's only briefly:
//! one not answered within [`NUDGE_AFTER`] while every runner is busy (a slow or hung check)
//! starts another runner, so one client's hung check cannot make another's time out. A spare
//! runner that finds another one idle ends; the last one ends when no client with a check is
//! left. So the process has 1 runner, plus about one per check still running.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;
// What threads wait on here (an idle runner, a host waiting for a call to end) is std's, not
// parking_lot's: parking_lot keeps its waiters in one process-wide table, and a runner waiting
// when the host forks stays listed there in the child, where glibc reuses that thread's stack
// for the child's next threads and the table's links become garbage (a crash seen in the
// Python fork tests). A std condition variable keeps no state outside itself.
use std::sync::{Condvar as WaitCondvar, Mutex as WaitMutex, MutexGuard as WaitGuard};
use tokio::sync::{oneshot, Notify};

use crate::health::{HealthConfig, HealthTracker};
use crate::metrics::ClientMetrics;
use crate::worker::panic_message;

/// A health check: `Ok` when the service is healthy, `Err` saying why not. Called on a runner
/// thread, never twice at once for one client.
pub type HealthCheckFn = dyn Fn() -> std::result::Result<(), String> + Send + Sync;

thread_local! {
    /// True on a runner thread: a check that stops or replaces its own client's check must
    /// not wait for itself.
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
    inner: Mutex<Inner>,
    /// A check was set or removed: the schedule starts over.
    changed: Notify,
    /// What the runner threads need of this client: its check, and whether it may run.
    slot: Arc<Slot>,
    /// The client's metrics: checks by result and the verdict.
    metrics: Arc<ClientMetrics>,
}

struct Inner {
    tracker: HealthTracker,
    last_failure: Option<String>,
    /// When the next check is due, kept while the agent applies a changed verdict.
    next_due: Option<Instant>,
    /// The answer of a check that did not return within the timeout.
    outstanding: Option<oneshot::Receiver<Option<CheckResult>>>,
    /// The runner threads this client uses (it counts as their user), from its first check.
    runners: Option<Arc<Runners>>,
}

/// The part of a client the runner threads share: the check to call and whether a call runs.
/// The check is taken from here when a call starts (not when it is asked for), under the same
/// lock that marks the call as running, so a check replaced or removed is never called after
/// `set_check` returned, and `set_check` can wait for the last call of the old one.
struct Slot {
    /// REGISTRY_HEALTH_URL as a check, used while the host has set none.
    url_check: Option<Arc<HealthCheckFn>>,
    /// REGISTRY_TIMEOUT: the bound of one call.
    timeout: std::time::Duration,
    state: WaitMutex<SlotState>,
    idle: WaitCondvar,
}

#[derive(Default)]
struct SlotState {
    host_check: Option<Arc<HealthCheckFn>>,
    /// Bumped by each set_check: a call asked for before then is not made.
    generation: u64,
    /// A call of this client's check is running now.
    running: bool,
    /// When it started: it is waited for at most REGISTRY_TIMEOUT from then.
    started: Option<Instant>,
    /// No call may start any more (the client stopped).
    closed: bool,
}

impl Slot {
    fn current_check(&self, state: &SlotState) -> Option<Arc<HealthCheckFn>> {
        state.host_check.clone().or_else(|| self.url_check.clone())
    }

    /// Waits (at most until `deadline`, and no longer than REGISTRY_TIMEOUT from the call's
    /// start: a hung check holds up no stop beyond its own bound, and one already past it not
    /// at all) while a call of this client's check runs, unless this thread must not wait: the
    /// agent thread (heartbeats), a host callback, or a runner thread (a check waiting for
    /// itself). True when no call runs.
    fn wait_idle<'a>(
        &self,
        mut state: WaitGuard<'a, SlotState>,
        deadline: Instant,
    ) -> (WaitGuard<'a, SlotState>, bool) {
        if crate::worker::on_agent_thread() || ON_RUNNER.with(|on| on.get()) {
            let idle = !state.running;
            return (state, idle);
        }
        while state.running {
            let deadline = match state.started {
                Some(started) => deadline.min(started + self.timeout),
                None => deadline,
            };
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return (state, false);
            }
            state = self
                .idle
                .wait_timeout(state, left)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
        (state, true)
    }

    fn lock(&self) -> WaitGuard<'_, SlotState> {
        wait_lock(&self.state)
    }
}

/// Locks a std mutex; a panic while it was held (none is expected: host code runs outside
/// it, under catch_unwind) leaves the data as consistent as any other update.
fn wait_lock<T>(mutex: &WaitMutex<T>) -> WaitGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One call asked of the runner threads.
struct Call {
    slot: Arc<Slot>,
    /// The slot's generation when the call was asked for: stale calls are not made.
    generation: u64,
    /// `None`: not made (the check was replaced or the client stopped meanwhile).
    reply: oneshot::Sender<Option<CheckResult>>,
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
        let slot = Arc::new(Slot {
            url_check,
            timeout: config.timeout,
            state: WaitMutex::default(),
            idle: WaitCondvar::new(),
        });
        HealthWatch {
            inner: Mutex::new(Inner {
                tracker: HealthTracker::new(config.threshold),
                last_failure: None,
                next_due: None,
                outstanding: None,
                runners: None,
            }),
            config,
            changed: Notify::new(),
            slot,
            metrics,
        }
    }

    /// Sets (`Some`) or removes (`None`) the host's check; without one REGISTRY_HEALTH_URL (if
    /// set) is checked. The verdict starts over as healthy. No call of the old check starts
    /// from now on; one in progress is waited for (at most REGISTRY_TIMEOUT, and not on
    /// registrar's own threads), so that the old check is released on this thread: a host
    /// tearing down (Python at exit) must not have its check called or freed later. Only a
    /// call still running after that wait releases it, when it returns.
    pub(crate) fn set_check(&self, check: Option<Arc<HealthCheckFn>>) {
        {
            let mut inner = self.inner.lock();
            inner.tracker = HealthTracker::new(self.config.threshold);
            inner.last_failure = None;
            inner.next_due = None;
        }
        let configured = check.is_some() || self.slot.url_check.is_some();
        self.metrics.set_healthy(configured.then_some(true));
        let old = {
            let mut state = self.slot.lock();
            state.generation += 1;
            let old = std::mem::replace(&mut state.host_check, check);
            if old.is_some() {
                let _ = self
                    .slot
                    .wait_idle(state, Instant::now() + self.config.timeout);
            }
            old
        };
        drop(old);
        self.changed.notify_one();
    }

    /// A check is configured: the host's or REGISTRY_HEALTH_URL.
    pub(crate) fn configured(&self) -> bool {
        let state = self.slot.lock();
        self.slot.current_check(&state).is_some()
    }

    pub(crate) fn state(&self) -> HealthState {
        let configured = self.configured();
        let inner = self.inner.lock();
        let (checks_passed, checks_failed) = self.metrics.health_checks();
        HealthState {
            configured,
            healthy: inner.tracker.is_healthy(),
            last_failure: inner.last_failure.clone(),
            checks_passed,
            checks_failed,
        }
    }

    /// Runs checks on schedule until the verdict changes; returns the new verdict (`Err` with
    /// the last failure when it turned unhealthy). Waits for ever while no check is configured.
    pub(crate) async fn next_change(&self) -> CheckResult {
        // The schedule goes on from the last call (not from now: a verdict that just changed
        // is not checked again at once).
        let mut due = self
            .inner
            .lock()
            .next_due
            .take()
            .unwrap_or_else(Instant::now);
        loop {
            let changed = self.changed.notified();
            if !self.configured() {
                changed.await;
                due = Instant::now();
                continue;
            }
            if tokio::time::timeout_at(due.into(), changed).await.is_ok() {
                // A new check: start its schedule now.
                due = Instant::now();
                continue;
            }
            let result = self.run().await;
            // The next check one interval after this one was due; after a long wait (a check
            // that timed out), one interval from now rather than a burst of catching up.
            due = (due + self.config.interval).max(Instant::now());
            // Not made (the check was just replaced): the new one's schedule starts over.
            let Some(result) = result else { continue };
            if let Some(verdict) = self.record(result) {
                self.inner.lock().next_due = Some(due);
                return verdict;
            }
        }
    }

    /// One check, bounded by REGISTRY_TIMEOUT; `None` if it was not made (replaced or stopped
    /// meanwhile).
    async fn run(&self) -> Option<CheckResult> {
        let answer = {
            let mut inner = self.inner.lock();
            if let Some(outstanding) = inner.outstanding.as_mut() {
                match outstanding.try_recv() {
                    Err(oneshot::error::TryRecvError::Empty) => {
                        return Some(Err(format!(
                            "the previous check has not returned after more than {} ms",
                            self.config.timeout.as_millis()
                        )));
                    }
                    // Its late answer is stale by now.
                    _ => inner.outstanding = None,
                }
            }
            let runners = inner.runners.get_or_insert_with(|| {
                let runners = runners();
                runners.join();
                runners
            });
            let runners = Arc::clone(runners);
            let (reply, answer) = oneshot::channel();
            let generation = self.slot.lock().generation;
            let call = Call {
                slot: Arc::clone(&self.slot),
                generation,
                reply,
            };
            if let Err(why) = runners.submit(call) {
                return Some(Err(why));
            }
            (answer, runners)
        };
        let (mut answer, runners) = answer;
        // A call not answered soon may be queued behind another client's slow or hung check:
        // then one more runner is started (see `Runners::nudge`).
        let nudge_after = NUDGE_AFTER.min(self.config.timeout / 4);
        let answered = match tokio::time::timeout(nudge_after, &mut answer).await {
            Ok(answered) => Ok(answered),
            Err(_) => {
                runners.nudge();
                tokio::time::timeout(self.config.timeout - nudge_after, &mut answer).await
            }
        };
        match answered {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Some(Err("the health check thread ended".into())),
            Err(_) => {
                self.inner.lock().outstanding = Some(answer);
                Some(Err(format!(
                    "no answer within {} ms (REGISTRY_TIMEOUT)",
                    self.config.timeout.as_millis()
                )))
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

    /// No check starts from now on. Waits (off registrar's threads, at most until `deadline`)
    /// for a check in progress to return; false if one is still running.
    pub(crate) fn close(&self, deadline: Instant) -> bool {
        {
            let mut inner = self.inner.lock();
            inner.outstanding = None;
            if let Some(runners) = inner.runners.take() {
                runners.leave();
            }
        }
        let mut state = self.slot.lock();
        state.closed = true;
        self.slot.wait_idle(state, deadline).1
    }
}

impl Drop for HealthWatch {
    fn drop(&mut self) {
        if let Some(runners) = self.inner.get_mut().runners.take() {
            runners.leave();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The runner threads, shared by every client of the process

/// A call not answered after this long may be queued behind a slow or hung check: another
/// runner is started if none is idle. (Long enough for a busy machine to schedule a runner that
/// only has quick checks to make; short next to REGISTRY_TIMEOUT, after which a waiting call
/// would count as a failure.)
const NUDGE_AFTER: std::time::Duration = std::time::Duration::from_millis(200);

/// The runner threads of this process. A fork() child gets new ones: the parent's threads do
/// not exist there, and the parent's condition variable may still list them as waiters (a
/// notification would go to a thread that is not there), so nothing of it is used again.
static RUNNERS: WaitMutex<Option<Arc<Runners>>> = WaitMutex::new(None);

fn runners() -> Arc<Runners> {
    let pid = std::process::id();
    let mut current = wait_lock(&RUNNERS);
    if let Some(runners) = current.as_ref().filter(|r| r.pid == pid) {
        return Arc::clone(runners);
    }
    // Forgotten, never dropped: the parent's queued calls hold its clients' checks, and
    // dropping them here would run host code (free_user_data) for checks the child never owned.
    std::mem::forget(current.take());
    let runners = Arc::new(Runners {
        pid,
        pool: WaitMutex::new(Pool::default()),
        work: WaitCondvar::new(),
    });
    *current = Some(Arc::clone(&runners));
    runners
}

struct Runners {
    /// The process these runners belong to.
    pid: u32,
    pool: WaitMutex<Pool>,
    /// A call was queued, or the last user left.
    work: WaitCondvar,
}

#[derive(Default)]
struct Pool {
    /// Calls not taken by a runner yet.
    calls: VecDeque<Call>,
    /// Runners waiting for a call.
    waiting: usize,
    /// Runners alive (starting, waiting or running a call).
    threads: usize,
    /// Runners started that have not looked at the queue yet (they take calls first thing).
    starting: usize,
    /// Clients that have asked for a check and not closed: runners live while there are any.
    users: usize,
}

impl Runners {
    fn join(&self) {
        wait_lock(&self.pool).users += 1;
    }

    /// A client with a check closed; `self` is dropped here, or forgotten in a fork() child
    /// (see [`runners`]).
    fn leave(self: Arc<Self>) {
        if self.pid != std::process::id() {
            std::mem::forget(self);
            return;
        }
        let mut pool = wait_lock(&self.pool);
        pool.users = pool.users.saturating_sub(1);
        if pool.users == 0 {
            // The idle runner ends.
            self.work.notify_all();
        }
    }

    /// Queues a call for a runner: an idle one takes it; if none is idle it waits for the
    /// busy one (checks are usually quick), and the client's task nudges if it waits long.
    fn submit(self: &Arc<Self>, call: Call) -> std::result::Result<(), String> {
        let mut pool = wait_lock(&self.pool);
        pool.calls.push_back(call);
        if pool.calls.len() <= pool.waiting + pool.starting {
            // (A runner starting takes the queued calls first thing.)
            self.work.notify_one();
            return Ok(());
        }
        if pool.threads > 0 {
            return Ok(());
        }
        self.start_runner(&mut pool).map_err(|e| {
            pool.calls.pop_back();
            e
        })
    }

    /// A call has waited [`NUDGE_AFTER`]: if calls are still queued with no idle runner to
    /// take them (every runner is busy with a slow or hung check), one more runner starts,
    /// so a check is never held up by another client's for long.
    fn nudge(self: &Arc<Self>) {
        let mut pool = wait_lock(&self.pool);
        if pool.calls.len() > pool.waiting + pool.starting {
            // If it cannot start, the call is answered by the runner that is busy now, or
            // counts as a failure at its timeout.
            let _ = self.start_runner(&mut pool);
        }
    }

    fn start_runner(self: &Arc<Self>, pool: &mut Pool) -> std::result::Result<(), String> {
        let runners = Arc::clone(self);
        std::thread::Builder::new()
            .name("registrar-health".into())
            // Host code runs here (a Python interpreter, a Go callback): a normal stack.
            .stack_size(2 * 1024 * 1024)
            .spawn(move || runners.serve())
            .map_err(|e| format!("cannot start a health check thread: {e}"))?;
        pool.threads += 1;
        pool.starting += 1;
        Ok(())
    }

    /// A runner thread: takes calls until no client with a check is left, or it finds itself
    /// a spare (another runner is idle).
    fn serve(&self) {
        ON_RUNNER.with(|on| on.set(true));
        wait_lock(&self.pool).starting -= 1;
        while let Some(call) = self.next_call() {
            make(call);
        }
    }

    /// The next call for this runner; `None` when it is to end (counted out of the pool
    /// under the same lock, so a call is never queued for a runner that is leaving).
    fn next_call(&self) -> Option<Call> {
        let mut pool = wait_lock(&self.pool);
        loop {
            if let Some(call) = pool.calls.pop_front() {
                return Some(call);
            }
            // One idle runner is enough: a spare (started by a nudge while the others were
            // busy) ends as soon as it finds another one waiting.
            if pool.users == 0 || pool.waiting > 0 {
                break;
            }
            pool.waiting += 1;
            pool = self
                .work
                .wait(pool)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            pool.waiting -= 1;
        }
        pool.threads -= 1;
        None
    }
}

/// Makes one call on this runner thread, unless the check was replaced, the client stopped or
/// its previous call still runs.
fn make(call: Call) {
    let Call {
        slot,
        generation,
        reply,
    } = call;
    let check = {
        let mut state = slot.lock();
        if state.closed || state.generation != generation {
            drop(state);
            let _ = reply.send(None);
            return;
        }
        if state.running {
            drop(state);
            let _ = reply.send(Some(Err("the previous check has not returned yet".into())));
            return;
        }
        let Some(check) = slot.current_check(&state) else {
            drop(state);
            let _ = reply.send(None);
            return;
        };
        state.running = true;
        state.started = Some(Instant::now());
        check
    };
    let result = catch_unwind(AssertUnwindSafe(|| check())).unwrap_or_else(|panic| {
        Err(format!(
            "the health check panicked: {}",
            panic_message(&panic)
        ))
    });
    // This runner's reference to the check goes before the client is told the call is over,
    // so that whoever waits for that (set_check, stop) holds the last one.
    drop(check);
    {
        let mut state = slot.lock();
        state.running = false;
        state.started = None;
        slot.idle.notify_all();
    }
    let _ = reply.send(Some(result));
}
