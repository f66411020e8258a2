//! The one background thread of the process and what every task on it shares.
//!
//! Every handle that talks to a registry (a registration [`crate::agent::Agent`], a discovery
//! [`crate::discovery::Discovery`]) is a *task* on one process-wide thread, `registrar-agent`,
//! which runs a current-thread Tokio runtime: the runtime reqwest's async client needs, and no
//! other thread. Tasks keep their own state; their requests run concurrently on that thread, so
//! a registry that hangs for one handle never delays another handle's heartbeat.
//!
//! ```text
//! first handle starts ──► lease(): spawn `registrar-agent` (runtime + block_on(shutdown))
//! each handle         ──► Task::spawn(job): loop { job.cycle() } with panic containment
//! stop                ──► Signal::request_stop(deadline): every request in flight or to
//!                         come races the deadline; the host waits on Task::wait, then
//!                         aborts the task
//! last handle gone    ──► the thread ends (joined, unless that happens on the thread itself)
//! fork() child        ──► the parent's thread does not exist here: forgotten, never joined;
//!                         the child's first handle starts a thread of its own
//! ```
//!
//! Host names are resolved by reqwest's resolver on the runtime's blocking pool: threads made
//! on demand (at most [`MAX_DNS_THREADS`], so one slow lookup delays no other), which exit after
//! [`DNS_THREAD_KEEP_ALIVE`] idle. IP-literal URLs never need one. A process that talks only to
//! addresses, or whose connections stay alive, therefore runs exactly one extra thread.
//!
//! Also here, because both kinds of task need them: [`Backoff`] (with jitter), [`Signal`]
//! (wake-ups and the stop deadline every request carries), [`Hook`] (host callbacks that can
//! neither take the thread down nor run after stop or free) and the timers a task arms ahead of
//! its next request ([`arm_ahead`], [`request_timer`]: why, below).

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, RwLock};
use tokio::sync::{oneshot, Notify};
use tokio::time::Sleep;

use crate::error::{Error, Result};

/// At most this many host-name lookups run at once (each on a short-lived helper thread).
pub const MAX_DNS_THREADS: usize = 4;
/// A lookup thread ends after this long without work.
pub const DNS_THREAD_KEEP_ALIVE: Duration = Duration::from_secs(2);
/// The name of the one background thread (visible in `top -H`, debuggers, /proc).
pub const THREAD_NAME: &str = "registrar-agent";

// ---------------------------------------------------------------------------------------------
// The thread

/// The running agent thread of this process.
struct AgentThread {
    /// The process that started it: in a fork() child this thread does not exist.
    pid: u32,
    runtime: tokio::runtime::Handle,
    /// Handles (leases) that need the thread; it ends when this drops to 0.
    users: usize,
    /// Dropping it ends the thread's `block_on`.
    shutdown: oneshot::Sender<()>,
    thread: JoinHandle<()>,
}

static AGENT: Mutex<Option<AgentThread>> = parking_lot::const_mutex(None);

thread_local! {
    static ON_AGENT_THREAD: Cell<bool> = const { Cell::new(false) };
    /// Set while this thread runs a host callback (see [`Hook`]).
    static IN_CALLBACK: Cell<bool> = const { Cell::new(false) };
    /// The hooks whose callback this thread is running now (their addresses; callbacks can
    /// nest: a listener's call into the library may produce a log message).
    static HOOKS_RUNNING_HERE: std::cell::RefCell<Vec<usize>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// True on the agent thread itself (inside a task or a host callback it runs), and inside a
/// host callback on any thread (a handle's last event may be delivered by the thread calling
/// stop): there a host call must never wait for the thread or the callback, which would wait
/// for itself.
pub fn on_agent_thread() -> bool {
    ON_AGENT_THREAD.with(Cell::get) || IN_CALLBACK.with(Cell::get)
}

/// Runs a host callback: a panic in it is caught (it must not take the thread down), and
/// [`on_agent_thread`] is true meanwhile.
fn run_callback(call: impl FnOnce()) {
    let outer = IN_CALLBACK.with(|c| c.replace(true));
    let _ = catch_unwind(AssertUnwindSafe(call));
    IN_CALLBACK.with(|c| c.set(outer));
}

/// A handle's claim on the agent thread: the first one starts it, the last one ends it.
pub(crate) struct Lease {
    pid: u32,
    /// Forgotten, not dropped, in a fork() child, where the runtime behind it does not exist.
    runtime: Option<tokio::runtime::Handle>,
}

impl Lease {
    pub(crate) fn acquire() -> Result<Lease> {
        let pid = std::process::id();
        let mut agent = AGENT.lock();
        if agent.as_ref().is_some_and(|a| a.pid != pid) {
            // A fork() child: the parent's thread was not copied. Dropping or joining what
            // describes it would hang or free memory the parent's runtime still points into.
            std::mem::forget(agent.take());
        }
        if agent.is_none() {
            *agent = Some(start_thread(pid)?);
        }
        let Some(running) = agent.as_mut() else {
            unreachable!("started above")
        };
        running.users += 1;
        Ok(Lease {
            pid,
            runtime: Some(running.runtime.clone()),
        })
    }

    fn runtime(&self) -> Option<&tokio::runtime::Handle> {
        self.runtime.as_ref()
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if self.pid != std::process::id() {
            // A parent's lease in a fork() child: see Lease::acquire.
            std::mem::forget(self.runtime.take());
            return;
        }
        let ending = {
            let mut agent = AGENT.lock();
            match agent.as_mut() {
                Some(running) if running.pid == self.pid => {
                    running.users -= 1;
                    if running.users == 0 {
                        agent.take()
                    } else {
                        None
                    }
                }
                _ => None,
            }
        };
        if let Some(ending) = ending {
            drop(ending.shutdown);
            // From a host callback on the thread itself, joining would wait forever: the
            // thread ends on its own as soon as the callback returns.
            if !on_agent_thread() {
                let _ = ending.thread.join();
            }
        }
    }
}

fn start_thread(pid: u32) -> Result<AgentThread> {
    let cannot = |e: std::io::Error| {
        Error::Transport(format!(
            "cannot start the background thread {THREAD_NAME}: {e}"
        ))
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .max_blocking_threads(MAX_DNS_THREADS)
        .thread_keep_alive(DNS_THREAD_KEEP_ALIVE)
        .thread_name("registrar-dns")
        .build()
        .map_err(cannot)?;
    let handle = runtime.handle().clone();
    let (shutdown, ended) = oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name(THREAD_NAME.into())
        .spawn(move || {
            ON_AGENT_THREAD.with(|on| on.set(true));
            // Runs every task until the last lease drops the sender.
            runtime.block_on(async {
                let _ = ended.await;
            });
            // Tasks still there (a stop that timed out) are dropped; a lookup stuck in the OS
            // resolver is not waited for.
            runtime.shutdown_background();
        })
        .map_err(cannot)?;
    Ok(AgentThread {
        pid,
        runtime: handle,
        users: 0,
        shutdown,
        thread,
    })
}

// ---------------------------------------------------------------------------------------------
// Tasks

/// What a handle runs on the agent thread: cycle after cycle until it says it is finished.
pub(crate) trait Job: Send + Sync + 'static {
    /// Waits for the next piece of work and does it. `false`: finished for good.
    fn cycle(self: Arc<Self>) -> impl Future<Output = bool> + Send;
    /// A cycle panicked (a bug): record it. The task goes on with the next cycle.
    fn panicked(&self, message: String);
}

/// The host's side of a running task.
pub(crate) struct Task {
    finished: Arc<Finished>,
    abort: tokio::task::AbortHandle,
    // Last: the thread may end only after the task has been aborted.
    _lease: Lease,
}

#[derive(Default)]
struct Finished {
    done: Mutex<bool>,
    changed: Condvar,
}

/// Marks the task finished when its future ends or is dropped (aborted, runtime shut down).
struct FinishedOnDrop(Arc<Finished>);

impl Drop for FinishedOnDrop {
    fn drop(&mut self) {
        *self.0.done.lock() = true;
        self.0.changed.notify_all();
    }
}

impl Task {
    /// Starts `job` on the agent thread (starting the thread if this is its first task).
    pub(crate) fn spawn<J: Job>(job: Arc<J>) -> Result<Task> {
        let lease = Lease::acquire()?;
        let finished = Arc::new(Finished::default());
        let on_drop = FinishedOnDrop(finished.clone());
        let runtime = lease.runtime().ok_or(Error::Forked)?;
        // The task's timers armed ahead (see `arm_ahead`) live in the task itself, so they
        // are dropped on the agent thread with it (and never touched in a fork() child).
        let task = runtime.spawn(TIMERS.scope(RefCell::new(Timers::default()), async move {
            let _on_drop = on_drop;
            loop {
                // One bad cycle (a panic anywhere in it) must never end the task, the thread,
                // or any other handle's task.
                match (CatchUnwind(pin!(job.clone().cycle()))).await {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(message) => {
                        job.panicked(message);
                        // Avoid a hot loop if the panic repeats.
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        }));
        Ok(Task {
            finished,
            abort: task.abort_handle(),
            _lease: lease,
        })
    }

    /// Waits until the task has finished, at most until `deadline`. True if it has.
    /// Never call it on the agent thread (see [`on_agent_thread`]).
    pub(crate) fn wait(&self, deadline: Instant) -> bool {
        let mut done = self.finished.done.lock();
        while !*done {
            if self
                .finished
                .changed
                .wait_until(&mut done, deadline)
                .timed_out()
            {
                return *done;
            }
        }
        true
    }

    /// Drops the task's future at its next turn on the thread: whatever it has in flight is
    /// cancelled (connections closed), nothing more of it runs.
    pub(crate) fn abort(&self) {
        self.abort.abort();
    }
}

impl Drop for Task {
    fn drop(&mut self) {
        self.abort();
    }
}

/// Runs one cycle, turning a panic inside it into an error message.
struct CatchUnwind<'a, F>(Pin<&'a mut F>);

impl<F: Future> Future for CatchUnwind<'_, F> {
    type Output = std::result::Result<F::Output, String>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = &mut self.get_mut().0;
        match catch_unwind(AssertUnwindSafe(|| inner.as_mut().poll(cx))) {
            Ok(Poll::Ready(value)) => Poll::Ready(Ok(value)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(panic) => Poll::Ready(Err(panic_message(&panic))),
        }
    }
}

pub(crate) fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}

// ---------------------------------------------------------------------------------------------
// Signals between the host and a task

/// Wakes a task when the host changed something, and carries the stop deadline to every
/// request the task makes.
#[derive(Default)]
pub(crate) struct Signal {
    /// One waiter at a time (the task); a wake-up sent while it is busy is kept for later.
    wake: Notify,
    stop_at: Mutex<Option<Instant>>,
}

impl Signal {
    /// Something changed: the task looks at its state again.
    pub(crate) fn wake(&self) {
        self.wake.notify_one();
    }

    /// Sleeps until `at`, or until woken.
    pub(crate) async fn sleep_until(&self, at: Instant) {
        let _ = tokio::time::timeout_at(at.into(), self.wake.notified()).await;
    }

    /// Asks the task to stop, finishing its final requests by `deadline` (an earlier
    /// deadline than one already set wins).
    pub(crate) fn request_stop(&self, deadline: Instant) {
        {
            let mut at = self.stop_at.lock();
            *at = Some(at.map_or(deadline, |d| d.min(deadline)));
        }
        self.wake();
    }

    pub(crate) fn stop_deadline(&self) -> Option<Instant> {
        *self.stop_at.lock()
    }

    /// Runs a piece of work that may be dropped half-done (a registry fetch), abandoning it the
    /// moment stop is requested: `None` then. Whatever it had in flight, on any URL, is
    /// cancelled with it.
    pub(crate) async fn unless_stopped<F: Future>(&self, work: F) -> Option<F::Output> {
        Race(pin!(work), pin!(self.stop_reached(false))).await
    }

    /// Runs a request that must not be dropped half-done when stop comes (a registration, a
    /// heartbeat, the final DELETE or DOWN), abandoning it only at the stop deadline: `None`
    /// then. Whatever it had in flight, on any URL, is cancelled with it.
    pub(crate) async fn by_stop_deadline<F: Future>(&self, work: F) -> Option<F::Output> {
        Race(pin!(work), pin!(self.stop_reached(true))).await
    }

    /// Completes when stop has been requested (`until_deadline`: once its deadline passed).
    async fn stop_reached(&self, until_deadline: bool) {
        loop {
            let woken = self.wake.notified();
            let at = *self.stop_at.lock();
            match at {
                Some(deadline) if !until_deadline || Instant::now() >= deadline => return,
                Some(deadline) => {
                    let _ = tokio::time::timeout_at(deadline.into(), woken).await;
                }
                None => woken.await,
            }
        }
    }
}

/// Runs `work` until `until` completes (a deadline's [`Sleep`]): `Some` output of the work,
/// `None` if `until` came first.
pub(crate) async fn unless<W: Future, S: Future<Output = ()>>(
    work: W,
    until: Pin<&mut S>,
) -> Option<W::Output> {
    Race(pin!(work), until).await
}

/// The first of two futures to finish: `Some` output of the work, `None` if the other won.
struct Race<'a, W, S>(Pin<&'a mut W>, Pin<&'a mut S>);

impl<W: Future, S: Future<Output = ()>> Future for Race<'_, W, S> {
    type Output = Option<W::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let Poll::Ready(value) = this.0.as_mut().poll(cx) {
            return Poll::Ready(Some(value));
        }
        match this.1.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Timers armed ahead
//
// Why: Tokio's time driver (tokio 1.x, `runtime/time/mod.rs`) notes, each time the thread
// parks or wakes, the earliest deadline in its timer wheel (`next_wake`). Registering a timer
// that is due *before* that noted deadline, or any timer while the wheel is empty, makes it
// "unpark" itself (`reregister`): a write to the runtime's eventfd and one more `epoll_wait`
// round, even on the runtime's own thread, because the thread may be about to sleep for too
// long. A client heartbeating with reqwest's per-request timeout paid that twice a heartbeat,
// 4 of its 8 system calls: (1) the sleep until the heartbeat fires, the wheel is empty, the
// request registers its timeout; (2) the answer arrives, the wheel still holds that timeout,
// and the sleep until the next heartbeat (sooner than the timeout) is registered.
//
// A timer due *at or after* one that was pending when the thread woke is free to register:
// only the wheel is touched. So a task that knows when its next request will be arms the timers
// that request needs right after the previous answer, when they are the later ones:
//
// ```text
// answer n, at a      arm  the timeout of request n+1  at a + interval + REGISTRY_TIMEOUT
//                          a guard                     at a + 2 × interval
//                     then the sleep until n+1         at a + interval
//                     all later than the guard armed at answer n-1 (due one interval after
//                     request n was sent, so still pending) or, with an interval longer than
//                     REGISTRY_TIMEOUT, than request n's own timeout: no unpark
// request n+1 sent    its armed timeout is set to the exact deadline, microseconds later than
//                     armed: Tokio only records the later deadline (`extend_expiration`)
// ```
//
// The guard is needed only while the interval is shorter than REGISTRY_TIMEOUT; nothing waits
// on it, and it fires only if an answer takes longer than the interval (a wake-up, no harm).
// Deadlines stay exact: a request's timer is set to its own deadline when it starts, whatever
// was armed; arming ahead only makes setting it cheap. A request that finds no timer armed
// (discovery, retries, the first registration) makes its own, as with any Tokio timer.

tokio::task_local! {
    /// The timers the current task armed ahead (see above).
    static TIMERS: RefCell<Timers>;
}

#[derive(Default)]
struct Timers {
    /// The timeout of the task's next request.
    request: Option<Pin<Box<Sleep>>>,
    /// Keeps a timer pending when the next answer arrives (see above).
    guard: Option<Pin<Box<Sleep>>>,
}

/// The current task will send its next request at `at` (with REGISTRY_TIMEOUT `timeout`) and,
/// once answered, wait about `interval` before the one after: arms the timers for it now,
/// replacing those armed before. Call it right after an answer. No-op outside a task.
pub(crate) fn arm_ahead(at: Instant, timeout: Duration, interval: Duration) {
    let _ = TIMERS.try_with(|timers| {
        let mut timers = timers.borrow_mut();
        timers.request = Some(registered(at + timeout));
        timers.guard = (interval < timeout).then(|| registered(at + interval));
    });
}

/// The timer of a request that must end by `deadline`: the one the task armed ahead, if any,
/// set to `deadline`; otherwise a new one.
pub(crate) fn request_timer(deadline: Instant) -> Pin<Box<Sleep>> {
    let armed = TIMERS
        .try_with(|timers| timers.borrow_mut().request.take())
        .ok()
        .flatten();
    match armed {
        Some(mut timer) => {
            timer.as_mut().reset(deadline.into());
            timer
        }
        None => Box::pin(tokio::time::sleep_until(deadline.into())),
    }
}

/// A timer in the wheel now, due at `deadline`. (A `Sleep` joins the wheel when first polled
/// or reset; `reset` does it here, while it is free.)
fn registered(deadline: Instant) -> Pin<Box<Sleep>> {
    let mut timer = Box::pin(tokio::time::sleep_until(deadline.into()));
    timer.as_mut().reset(deadline.into());
    timer
}

// ---------------------------------------------------------------------------------------------
// Host callbacks

/// Severity of a log message handed to the host's log function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Error = 0,
    Warn = 1,
    Info = 2,
    Debug = 3,
}

pub type LogFn = dyn Fn(LogLevel, &str) + Send + Sync;

/// A host callback (a logger, a listener) as a task calls it: a panic in it is caught, and once
/// [`Hook::silence`] has returned it is never called again.
pub(crate) struct Hook<T: Clone> {
    callback: RwLock<Option<T>>,
    /// Held while the callback runs, so `silence` can wait for a call in progress.
    calling: Mutex<()>,
    silenced: AtomicBool,
}

impl<T: Clone> Default for Hook<T> {
    fn default() -> Self {
        Hook {
            callback: RwLock::new(None),
            calling: Mutex::new(()),
            silenced: AtomicBool::new(false),
        }
    }
}

impl<T: Clone> Hook<T> {
    /// Installs (`Some`) or removes (`None`) the callback. When it returns, the replaced
    /// callback is not running any more and has been dropped here, on the caller's thread (a C
    /// callback's `free_user_data` runs here): a host that removes its callback before tearing
    /// itself down (Python at exit) is never called back afterwards, not even to free. Called
    /// from a callback (on the agent thread or inside any hook) it does not wait: the call in
    /// progress may be the caller's own, and the old callback is then dropped after it.
    pub(crate) fn set(&self, callback: Option<T>) {
        let old = std::mem::replace(&mut *self.callback.write(), callback);
        if !on_agent_thread() {
            // A call in progress holds `calling` and its clone of the old callback, and drops
            // the clone before releasing it (see `call`).
            drop(self.calling.lock());
        }
        drop(old);
    }

    /// Calls the callback, if any, with `call` (never while a lock of the caller is held).
    ///
    /// What the callback itself causes (a stop called from the log callback logs "draining")
    /// is not delivered to it: this thread holds `calling` already, so waiting for it would
    /// hang the thread, and calling the host's function again from inside itself could
    /// deadlock the host's own code.
    pub(crate) fn call(&self, call: impl FnOnce(&T)) {
        if self.silenced.load(Ordering::Acquire)
            || self.running_here()
            || self.callback.read().is_none()
        {
            return;
        }
        let calling = self.calling.lock();
        if self.silenced.load(Ordering::Acquire) {
            return;
        }
        // Read under `calling`: a `set` that has returned is never followed by a call of the
        // callback it replaced.
        let Some(callback) = self.callback.read().clone() else {
            return;
        };
        self.run(|| call(&callback));
        // Our clone goes before `calling` is released, so a `set` waiting for this call drops
        // the last reference itself.
        drop(callback);
        drop(calling);
    }

    fn address(&self) -> usize {
        self as *const Self as *const () as usize
    }

    /// True while this thread runs this hook's callback.
    fn running_here(&self) -> bool {
        HOOKS_RUNNING_HERE.with(|hooks| hooks.borrow().contains(&self.address()))
    }

    /// Runs the callback as [`run_callback`] does, marked as running on this thread.
    fn run(&self, call: impl FnOnce()) {
        HOOKS_RUNNING_HERE.with(|hooks| hooks.borrow_mut().push(self.address()));
        run_callback(call);
        HOOKS_RUNNING_HERE.with(|hooks| {
            let mut hooks = hooks.borrow_mut();
            if let Some(at) = hooks.iter().rposition(|&a| a == self.address()) {
                hooks.remove(at);
            }
        });
    }

    /// Calls the callback a last time (unless the hook is silenced already) and silences it,
    /// atomically with respect to other calls: whatever comes after is never delivered. Used
    /// for a handle's final event, which may come from the task or from stop (see
    /// `crate::events`).
    pub(crate) fn call_then_silence(&self, call: impl FnOnce(&T)) {
        if self.running_here() {
            // Caused by the callback itself (see `call`): silence only.
            self.silenced.store(true, Ordering::Release);
            return;
        }
        let calling = self.calling.lock();
        if self.silenced.swap(true, Ordering::AcqRel) {
            return;
        }
        let callback = self.callback.read().clone();
        if let Some(callback) = callback {
            self.run(|| call(&callback));
            drop(callback); // before `calling` is released (see `call`)
        }
        drop(calling);
    }

    /// From now on the callback is never called; when this returns (off the agent thread) no
    /// call is in progress either. The callback itself is kept until [`Hook::release`].
    pub(crate) fn silence(&self) {
        self.silenced.store(true, Ordering::Release);
        if !on_agent_thread() {
            drop(self.calling.lock());
        }
    }

    /// Silences the hook and drops the callback now, on the calling thread (a C callback's
    /// `free_user_data` runs here, during the handle's free, not later on the agent thread).
    pub(crate) fn release(&self) {
        self.silence();
        self.set(None);
    }
}

/// A logger: the host's function and the most verbose level it wants.
pub(crate) type Logger = Hook<(LogLevel, Arc<LogFn>)>;

impl Logger {
    pub(crate) fn log(&self, level: LogLevel, message: &str) {
        self.call(|(max_level, log)| {
            if level <= *max_level {
                log(level, message)
            }
        });
    }
}

// ---------------------------------------------------------------------------------------------
// Backoff

/// Exponential backoff between retries: from 100 ms doubling up to a cap, so an unreachable
/// registry costs a few requests a minute; each wait jittered (see [`jitter`]).
pub(crate) struct Backoff {
    next: Duration,
    cap: Duration,
}

impl Backoff {
    pub(crate) const FIRST: Duration = Duration::from_millis(100);

    pub(crate) fn new(cap: Duration) -> Backoff {
        Backoff {
            next: Self::FIRST,
            cap: cap.max(Self::FIRST),
        }
    }

    /// The wait before the next retry: the current step, jittered.
    pub(crate) fn step(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(self.cap);
        jitter(base)
    }

    pub(crate) fn reset(&mut self) {
        self.next = Self::FIRST;
    }
}

/// Between half and all of `wait`, uniformly at random ("equal jitter"): a thousand instances
/// that lost the registry together spread their retries over that window instead of coming
/// back in lockstep, and none waits less than half its step.
pub(crate) fn jitter(wait: Duration) -> Duration {
    let half = wait / 2;
    half + half.mul_f64(random_fraction())
}

/// A random number in [0, 1): std's per-instance randomised hasher keys, hashed (no shared
/// state, no dependency; plenty for spreading retries).
fn random_fraction() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let bits = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_jittered_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(500));
        for base in [100, 200, 400, 500, 500] {
            let wait = b.step().as_millis();
            assert!(
                (base / 2..=base).contains(&wait),
                "{wait} ms for a {base} ms step"
            );
        }
        b.reset();
        assert!(b.step() <= Duration::from_millis(100));
    }

    /// A thousand instances failing together: their fourth retry (an 800 ms step) spreads over
    /// 400-800 ms instead of landing on one instant.
    #[test]
    fn jitter_spreads_simultaneous_retries() {
        let waits: Vec<u128> = (0..1000)
            .map(|_| {
                let mut b = Backoff::new(Duration::from_secs(30));
                (0..3).for_each(|_| {
                    b.step();
                });
                b.step().as_micros()
            })
            .collect();
        let (min, max) = (waits.iter().min().unwrap(), waits.iter().max().unwrap());
        assert!(*min >= 400_000 && *max <= 800_000, "{min}..{max} us");
        assert!(max - min > 300_000, "spread only {min}..{max} us");
        // In 10 ms slots, no slot holds more than a few percent of the instances.
        let mut slots = std::collections::HashMap::new();
        for w in &waits {
            *slots.entry(w / 10_000).or_insert(0) += 1;
        }
        let busiest = slots.values().max().unwrap();
        assert!(
            slots.len() >= 35 && *busiest <= 60,
            "{} slots, busiest {busiest}",
            slots.len()
        );
    }

    /// Dropped callback state that records the thread it was dropped on (a C callback's
    /// `free_user_data` runs where the last reference goes).
    struct DropsOn(Arc<Mutex<Option<std::thread::ThreadId>>>);

    impl Drop for DropsOn {
        fn drop(&mut self) {
            *self.0.lock() = Some(std::thread::current().id());
        }
    }

    /// Removing a callback while another thread is inside it returns only after that call, and
    /// the callback is freed on the remover's thread: Python removes its callbacks at exit and
    /// then tears itself down; a callback or free run after that aborted the process ("FATAL:
    /// exception not rethrown", seen in test_exit_hooks.py).
    #[test]
    fn removing_a_callback_waits_for_its_call_and_frees_it_on_the_removing_thread() {
        let hook: Arc<Hook<Arc<DropsOn>>> = Arc::default();
        let dropped_on = Arc::new(Mutex::new(None));
        hook.set(Some(Arc::new(DropsOn(dropped_on.clone()))));
        let (entered_tx, entered_rx) = std::sync::mpsc::channel();
        let (finish_tx, finish_rx) = std::sync::mpsc::channel::<()>();
        let caller = {
            let hook = hook.clone();
            std::thread::spawn(move || {
                hook.call(|_| {
                    entered_tx.send(()).unwrap();
                    finish_rx.recv().unwrap();
                })
            })
        };
        entered_rx.recv().unwrap();
        let (removed_tx, removed_rx) = std::sync::mpsc::channel();
        let remover = {
            let hook = hook.clone();
            std::thread::spawn(move || {
                hook.set(None);
                removed_tx.send(std::thread::current().id()).unwrap();
            })
        };
        // While the call runs, the removal waits (a bounded wait: it must not return).
        assert!(removed_rx.recv_timeout(Duration::from_millis(200)).is_err());
        finish_tx.send(()).unwrap();
        let remover_id = removed_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        caller.join().unwrap();
        remover.join().unwrap();
        assert_eq!(*dropped_on.lock(), Some(remover_id));
        // And nothing is called after the removal returned.
        let called = AtomicBool::new(false);
        hook.call(|_| called.store(true, Ordering::Relaxed));
        assert!(!called.load(Ordering::Relaxed));
    }
}
