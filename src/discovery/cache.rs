//! The discovery cache: a task on the agent thread (`src/worker.rs`) that keeps a local copy
//! of the registry fresh.
//!
//! ```text
//! start ──► full fetch (GET apps) ──► every fetch interval: GET apps/delta
//!              ▲                          │ apply ADDED / MODIFIED / DELETED (idempotent)
//!              │                          │ recompute apps__hashcode, compare with the server's
//!              └── mismatch, delta error, ◄┘
//!                  or last sync too old
//! any error: keep the last good registry, report its age, retry with backoff
//! ```
//!
//! Queries never touch the network: they read the current [`Registry`], an immutable value
//! swapped atomically when a fetch changes something. Each change bumps a version number;
//! hosts can wait for it ([`Discovery::wait_change`]) or be called back ([`Discovery::set_listener`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, RwLock};

use super::config::DiscoveryConfig;
use super::registry::Registry;
use crate::error::{Error, Result};
use crate::eureka::read::{fetch_applications, fetch_delta};
use crate::eureka::EurekaHttp;
use crate::events::{Event, EventFn, EventKind, Listener as EventListener};
use crate::metrics::{DiscoveryMetrics, FetchKind};
use crate::worker::{on_agent_thread, Backoff, Hook, Job, LogFn, LogLevel, Logger, Signal, Task};

/// The server keeps changes in its delta queue for about 3 minutes (Eureka's default
/// `retentionTimeInMSInDeltaQueue`); a delta taken longer than this after the last good sync
/// could miss changes, so the cache fetches everything instead.
pub const MAX_DELTA_GAP: Duration = Duration::from_secs(150);

/// Called on the cache's thread with the new version after every change of the registry.
pub type Listener = dyn Fn(u64) + Send + Sync;

/// Where the cache is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiscoveryPhase {
    NotStarted,
    Running,
    Stopped,
}

/// What the cache has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiscoveryCounters {
    /// Successful `GET apps`.
    pub full_fetches: u64,
    /// Successful `GET apps/delta`.
    pub delta_fetches: u64,
    /// Deltas after which the recomputed hash code differed from the server's (each one was
    /// followed by a full fetch).
    pub hash_mismatches: u64,
    /// Refresh cycles that failed (the registry was kept as it was).
    pub failed_refreshes: u64,
}

/// A snapshot of the cache's state.
#[derive(Debug, Clone)]
pub struct DiscoveryInfo {
    pub phase: DiscoveryPhase,
    /// Bumped on every change of the registry; 0 until the first successful fetch.
    pub version: u64,
    /// Number of applications and instances (every status) in the cached registry.
    pub apps: usize,
    pub instances: usize,
    /// Time since the cached registry was last confirmed by the server (a successful
    /// refresh); `None` before the first one.
    pub age: Option<Duration>,
    /// The error of the last refresh, `None` if it succeeded.
    pub last_error: Option<Error>,
    pub counters: DiscoveryCounters,
}

struct State {
    phase: DiscoveryPhase,
    version: u64,
    last_success: Option<Instant>,
    last_error: Option<Error>,
    failed_refreshes: u64,
    next_fetch: Instant,
    /// Refresh requests (tickets) made and answered.
    refresh_requested: u64,
    refresh_served: u64,
    backoff: Backoff,
    /// In a streak of failed refreshes (FetchFailing was emitted, FetchRecovered not yet).
    failing: bool,
}

struct Shared {
    config: DiscoveryConfig,
    http: EurekaHttp,
    /// The cached registry and its version, swapped together.
    registry: RwLock<Option<(Arc<Registry>, u64)>>,
    /// Mirrors `state.phase == Stopped` for the lock-free query path.
    stopped: AtomicBool,
    state: Mutex<State>,
    /// Signalled on every state change, for host threads waiting.
    changed: Condvar,
    /// Wakes the task (refresh, stop) and abandons its fetch in flight on stop.
    signal: Signal,
    /// Counted where results are recorded below; rendered by `crate::metrics`.
    metrics: Arc<DiscoveryMetrics>,
    listener: Hook<Arc<Listener>>,
    /// The host's event listener (see `crate::events`).
    events: EventListener,
    log: Logger,
}

/// A registry cache, kept fresh by a task on the agent thread. All methods take `&self` and
/// may be called from any thread at once.
pub struct Discovery {
    shared: Arc<Shared>,
    /// The running task, from start on.
    task: Mutex<Option<Arc<Task>>>,
}

/// Retries of failed refreshes wait from 100 ms doubling up to this (or the fetch interval).
const MAX_BACKOFF: Duration = Duration::from_secs(30);

impl Discovery {
    /// Creates the cache. No thread and no connection are needed before [`Discovery::start`].
    pub fn new(config: DiscoveryConfig) -> Result<Discovery> {
        let http = EurekaHttp::new(config.connection());
        let backoff = Backoff::new(config.fetch_interval.min(MAX_BACKOFF));
        Ok(Discovery {
            shared: Arc::new(Shared {
                config,
                http,
                registry: RwLock::new(None),
                stopped: AtomicBool::new(false),
                state: Mutex::new(State {
                    phase: DiscoveryPhase::NotStarted,
                    version: 0,
                    last_success: None,
                    last_error: None,
                    failed_refreshes: 0,
                    next_fetch: Instant::now(),
                    refresh_requested: 0,
                    refresh_served: 0,
                    backoff,
                    failing: false,
                }),
                changed: Condvar::new(),
                signal: Signal::default(),
                metrics: DiscoveryMetrics::register(),
                listener: Hook::default(),
                events: EventListener::default(),
                log: Logger::default(),
            }),
            task: Mutex::new(None),
        })
    }

    pub fn config(&self) -> &DiscoveryConfig {
        &self.shared.config
    }

    /// Starts the cache's task on the agent thread (starting the thread if it is the
    /// process's first task), which fetches the whole registry at once. Returns without
    /// waiting (see [`Discovery::wait_ready`]). Calling it again does nothing; after stop it
    /// fails with `ShutDown`.
    pub fn start(&self) -> Result<()> {
        let mut task = self.task.lock();
        let mut state = self.shared.state.lock();
        match state.phase {
            DiscoveryPhase::Running => return Ok(()),
            DiscoveryPhase::Stopped => return Err(Error::ShutDown),
            DiscoveryPhase::NotStarted => {}
        }
        state.phase = DiscoveryPhase::Running;
        state.next_fetch = Instant::now();
        drop(state);
        match Task::spawn(self.shared.clone()) {
            Ok(spawned) => *task = Some(Arc::new(spawned)),
            Err(e) => {
                self.shared.state.lock().phase = DiscoveryPhase::NotStarted;
                return Err(e);
            }
        }
        self.shared.changed.notify_all();
        Ok(())
    }

    /// The cached registry, `None` before the first successful fetch. Stays the last good
    /// one while the server is unreachable, and after stop.
    pub fn registry(&self) -> Option<Arc<Registry>> {
        self.shared.registry.read().as_ref().map(|(r, _)| r.clone())
    }

    /// The cached registry with its version, read together (one lock, no waiting on the
    /// background thread): what queries use.
    pub fn current(&self) -> Option<(Arc<Registry>, u64)> {
        self.shared.registry.read().clone()
    }

    /// Runs `read` on the cached registry and its version without taking a reference to it
    /// (the cache cannot swap it meanwhile): the cheapest way to answer one query, for the
    /// C API's per-request lookups. `read` must be quick: the next refresh waits for it.
    pub fn read_current<R>(&self, read: impl FnOnce(Option<(&Registry, u64)>) -> R) -> R {
        let current = self.shared.registry.read();
        read(
            current
                .as_ref()
                .map(|(registry, version)| (&**registry, *version)),
        )
    }

    /// True once stop has been called.
    pub fn is_stopped(&self) -> bool {
        self.shared.stopped.load(Ordering::Acquire)
    }

    /// Waits until the first fetch has succeeded (at once if it has). `Timeout` says why not.
    pub fn wait_ready(&self, timeout: Duration) -> Result<()> {
        crate::agent::refuse_to_wait_on_the_agent_thread("wait_ready")?;
        let deadline = Instant::now() + timeout;
        let mut state = self.shared.state.lock();
        loop {
            if state.version > 0 {
                return Ok(());
            }
            if state.phase == DiscoveryPhase::Stopped {
                return Err(Error::ShutDown);
            }
            if self
                .shared
                .changed
                .wait_until(&mut state, deadline)
                .timed_out()
            {
                if state.version > 0 {
                    return Ok(());
                }
                return Err(Error::Timeout(format!(
                    "no registry fetched within {} ms; {}",
                    timeout.as_millis(),
                    why_not(&state)
                )));
            }
        }
    }

    /// Refreshes now (a delta, or a full fetch when needed) and waits for the outcome, at most
    /// `timeout`. Returns the refresh's error if it failed (the last good registry is kept).
    pub fn refresh(&self, timeout: Duration) -> Result<()> {
        crate::agent::refuse_to_wait_on_the_agent_thread("refresh")?;
        let deadline = Instant::now() + timeout;
        let mut state = self.shared.state.lock();
        match state.phase {
            DiscoveryPhase::NotStarted => {
                return Err(Error::InvalidArgument(
                    "the discovery cache has not been started".into(),
                ))
            }
            DiscoveryPhase::Stopped => return Err(Error::ShutDown),
            DiscoveryPhase::Running => {}
        }
        state.refresh_requested += 1;
        let ticket = state.refresh_requested;
        self.shared.signal.wake();
        while state.refresh_served < ticket {
            if state.phase == DiscoveryPhase::Stopped {
                return Err(Error::ShutDown);
            }
            if self
                .shared
                .changed
                .wait_until(&mut state, deadline)
                .timed_out()
                && state.refresh_served < ticket
            {
                return Err(Error::Timeout(format!(
                    "the refresh did not finish within {} ms",
                    timeout.as_millis()
                )));
            }
        }
        match &state.last_error {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    /// Waits until the version is greater than `since` and returns it. `Timeout` if it does
    /// not change within `timeout`, `ShutDown` once stopped.
    pub fn wait_change(&self, since: u64, timeout: Duration) -> Result<u64> {
        crate::agent::refuse_to_wait_on_the_agent_thread("wait_change")?;
        let deadline = Instant::now() + timeout;
        let mut state = self.shared.state.lock();
        loop {
            if state.version > since {
                return Ok(state.version);
            }
            if state.phase == DiscoveryPhase::Stopped {
                return Err(Error::ShutDown);
            }
            if self
                .shared
                .changed
                .wait_until(&mut state, deadline)
                .timed_out()
            {
                if state.version > since {
                    return Ok(state.version);
                }
                return Err(Error::Timeout(format!(
                    "the registry did not change within {} ms",
                    timeout.as_millis()
                )));
            }
        }
    }

    /// The version of the cached registry (0 before the first fetch).
    pub fn version(&self) -> u64 {
        self.shared.state.lock().version
    }

    pub fn info(&self) -> DiscoveryInfo {
        let state = self.shared.state.lock();
        let registry = self.registry();
        let counts = self.shared.metrics.counts();
        DiscoveryInfo {
            phase: state.phase,
            version: state.version,
            apps: registry.as_ref().map_or(0, |r| r.app_names().len()),
            instances: registry.as_ref().map_or(0, |r| r.len()),
            age: state.last_success.map(|t| t.elapsed()),
            last_error: state.last_error.clone(),
            counters: DiscoveryCounters {
                full_fetches: counts.full_success,
                delta_fetches: counts.delta_success,
                hash_mismatches: counts.hash_mismatches,
                failed_refreshes: state.failed_refreshes,
            },
        }
    }

    /// This cache's counters (also listed in the process-wide metrics while it lives).
    pub fn metrics(&self) -> &Arc<DiscoveryMetrics> {
        &self.shared.metrics
    }

    /// The service URL requests go to first (the one that answered last), without
    /// credentials; `None` before start.
    pub fn server_in_use(&self) -> Option<String> {
        let started = self.shared.state.lock().phase != DiscoveryPhase::NotStarted;
        started.then(|| self.shared.http.server_in_use())
    }

    /// Installs (or removes) the function called after every change with the new version.
    /// It runs on the agent thread, never while a lock is held, never after stop returns;
    /// it must return quickly (it holds up every handle's task meanwhile). A panic in it is
    /// caught.
    pub fn set_listener(&self, listener: Option<Arc<Listener>>) {
        self.shared.listener.set(listener);
    }

    /// Installs (or removes) the function that receives the cache's events (ready, changed,
    /// fetch failing, recovered; see `crate::events`): on the agent thread, in order, never
    /// while a lock is held, never after stop returns.
    pub fn set_event_listener(&self, listener: Option<Arc<EventFn>>) {
        self.shared.events.set(listener);
    }

    /// Installs (or removes) the function that receives log messages at `max_level` or more
    /// severe: the first fetch, failures (once per distinct problem, not per retry), recovery,
    /// hash mismatches (warnings), and each change applied (debug). It is called on the agent
    /// thread, never while a lock is held, never after stop returns. Nothing is logged unless
    /// asked.
    pub fn set_logger(&self, logger: Option<(LogLevel, Arc<LogFn>)>) {
        self.shared.log.set(logger);
    }

    /// Ends the cache's task; a fetch in flight is abandoned. Waits at most `timeout`.
    /// Idempotent. After it returns the listener and logger are not called any more. Called
    /// from the listener (on the agent thread) it only requests the stop.
    pub fn stop(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        {
            let mut state = self.shared.state.lock();
            state.phase = DiscoveryPhase::Stopped;
            self.shared.stopped.store(true, Ordering::Release);
            self.shared.changed.notify_all();
        }
        let Some(task) = self.task.lock().clone() else {
            return Ok(());
        };
        self.shared.signal.request_stop(deadline);
        if on_agent_thread() {
            return Ok(());
        }
        let finished = task.wait(deadline);
        task.abort();
        self.shared.listener.silence();
        self.shared.events.silence();
        self.shared.log.silence();
        if finished {
            Ok(())
        } else {
            Err(Error::Timeout(format!(
                "the discovery task did not stop within {} ms",
                timeout.as_millis()
            )))
        }
    }
}

impl Drop for Discovery {
    /// Dropping a running cache stops it first; its listener and logger are dropped here.
    fn drop(&mut self) {
        let stopped = self.shared.state.lock().phase == DiscoveryPhase::Stopped;
        if !stopped {
            let _ = self.stop(self.shared.config.timeout + Duration::from_millis(500));
        }
        if let Some(task) = self.task.lock().take() {
            task.abort();
        }
        self.shared.listener.release();
        self.shared.events.release();
        self.shared.log.release();
    }
}

fn why_not(state: &State) -> String {
    match (&state.last_error, state.phase) {
        (_, DiscoveryPhase::NotStarted) => "the discovery cache has not been started".into(),
        (Some(e), _) => format!("last error: {e}"),
        (None, _) => "no answer from the registry yet".into(),
    }
}

impl Job for Shared {
    async fn cycle(self: Arc<Self>) -> bool {
        cycle(&self).await
    }

    fn panicked(&self, message: String) {
        let mut state = self.state.lock();
        state.last_error = Some(Error::Internal(format!("in the discovery task: {message}")));
        state.failed_refreshes += 1;
        state.refresh_served = state.refresh_requested;
        state.next_fetch = Instant::now() + self.config.fetch_interval;
        self.changed.notify_all();
    }
}

/// Waits for the next refresh, does it, publishes the result. Returns false when stopped.
async fn cycle(shared: &Shared) -> bool {
    let (current, full, ticket) = loop {
        let wake = {
            let state = shared.state.lock();
            if state.phase == DiscoveryPhase::Stopped {
                return false;
            }
            if state.refresh_requested > state.refresh_served || Instant::now() >= state.next_fetch
            {
                let current = shared.registry.read().as_ref().map(|(r, _)| r.clone());
                let stale = state
                    .last_success
                    .map_or(true, |t| t.elapsed() > MAX_DELTA_GAP);
                break (current, stale, state.refresh_requested);
            }
            state.next_fetch
        };
        shared.signal.sleep_until(wake).await;
    };

    let result = shared
        .signal
        .unless_stopped(refresh(shared, current.as_deref(), full))
        .await
        .unwrap_or(Err(Error::ShutDown));

    let mut state = shared.state.lock();
    if state.phase == DiscoveryPhase::Stopped {
        state.refresh_served = state.refresh_served.max(ticket);
        // Stop has been asked for: publish nothing, call nobody.
        shared.changed.notify_all();
        return false;
    }
    let now = Instant::now();
    let mut new_version = None;
    let mut messages: Vec<(LogLevel, String)> = Vec::new();
    let mut events: Vec<Event> = Vec::new();
    match result {
        Ok(next) => {
            shared.metrics.refreshed(true);
            if std::mem::replace(&mut state.failing, false) {
                events.push(Event::discovery(EventKind::FetchRecovered, state.version));
            }
            if let Some(previous) = &state.last_error {
                messages.push((
                    LogLevel::Info,
                    format!("the registry answers again (after: {previous})"),
                ));
            }
            state.last_success = Some(now);
            state.last_error = None;
            state.backoff.reset();
            state.next_fetch = now + shared.config.fetch_interval;
            if let Some(next) = next {
                state.version += 1;
                let (level, what) = if state.version == 1 {
                    (LogLevel::Info, "registry fetched")
                } else {
                    (LogLevel::Debug, "registry changed")
                };
                messages.push((
                    level,
                    format!(
                        "{what}: {} instances in {} apps (version {})",
                        next.len(),
                        next.app_names().len(),
                        state.version
                    ),
                ));
                shared.metrics.cached(next.app_names().len(), next.len());
                *shared.registry.write() = Some((Arc::new(next), state.version));
                new_version = Some(state.version);
                let kind = if state.version == 1 {
                    EventKind::DiscoveryReady
                } else {
                    EventKind::DiscoveryChanged
                };
                events.push(Event::discovery(kind, state.version));
            }
        }
        Err(e) => {
            shared.metrics.refreshed(false);
            state.failed_refreshes += 1;
            if state.last_error.as_ref() != Some(&e) {
                let kept = match &current {
                    Some(_) => "; keeping the last good registry",
                    None => "",
                };
                messages.push((LogLevel::Warn, format!("refresh failed: {e}{kept}")));
            }
            // Once per failure streak, not per retry.
            if !std::mem::replace(&mut state.failing, true) {
                events.push(
                    Event::discovery(EventKind::FetchFailing, state.version).with_error(e.clone()),
                );
            }
            state.last_error = Some(e);
            // Retry sooner than the interval while failing, but never hammer the server.
            let wait = state.backoff.step();
            state.next_fetch = now + wait;
        }
    }
    shared.changed.notify_all();
    drop(state);
    for (level, message) in messages {
        shared.log(level, &message);
    }
    if let Some(version) = new_version {
        shared.listener.call(|listener| listener(version));
    }
    for event in &events {
        // A listener that called stop (which only requests it, from this thread) hears no more.
        if shared.stopped.load(Ordering::Acquire) {
            break;
        }
        shared.events.emit(event);
    }
    // A refresh counts as served only now, so whoever waited for it (registrar_discovery_refresh)
    // returns after its log lines and listener call, not racing them.
    let mut state = shared.state.lock();
    state.refresh_served = state.refresh_served.max(ticket);
    shared.changed.notify_all();
    true
}

/// One refresh: a delta when possible, else (or on mismatch or error) a full fetch.
/// `Ok(None)`: the registry did not change.
async fn refresh(
    shared: &Shared,
    current: Option<&Registry>,
    full: bool,
) -> Result<Option<Registry>> {
    let metrics = &shared.metrics;
    let http = &shared.http;
    if let (false, Some(current)) = (full, current) {
        let delta = fetch_delta(http, None).await;
        metrics.fetch(FetchKind::Delta, delta.is_ok());
        if let Ok(delta) = delta {
            let server_hash = delta.apps_hashcode.clone();
            let next = current.apply_delta(delta);
            let ours = next.as_ref().map_or(current.hashcode(), |n| n.hashcode());
            if ours == server_hash {
                return Ok(next);
            }
            metrics.hash_mismatch();
            shared.log(
                LogLevel::Warn,
                &format!(
                    "the registry's hash code after a delta is {ours:?}, the server's is \
                     {server_hash:?}: fetching the whole registry"
                ),
            );
        }
        // A failed or inconsistent delta: fall back to the whole registry.
    }
    let apps = fetch_applications(http, None).await;
    metrics.fetch(FetchKind::Full, apps.is_ok());
    let apps = apps?;
    let next = Registry::from_applications(apps, current);
    match current {
        Some(current) if current.same_instances(&next) => Ok(None),
        _ => Ok(Some(next)),
    }
}

impl Shared {
    fn log(&self, level: LogLevel, message: &str) {
        self.log.log(level, message);
    }
}
