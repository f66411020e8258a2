//! The lifecycle of one registered instance and the background thread that drives it.
//!
//! The host changes *local* state (status, metadata) and never waits for the network; the
//! worker thread makes the registry agree with it:
//!
//! ```text
//! start ──► registering ──POST 204──► registered ──PUT 200 every interval──┐
//!              ▲   │ error: retry with backoff     │  ▲                     │
//!              │   └───────────────────────────────┘  └─────────────────────┘
//!              └── heartbeat 404 (server restarted / evicted us)
//! any local change (status, metadata) ──► POST again with a newer lastDirtyTimestamp
//! stop ──► POST status DOWN ──► DELETE ──► stopped (no request after this)
//! ```

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::thread::{JoinHandle, ThreadId};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, RwLock};

use crate::config::{check_metadata_key, Config};
use crate::error::{Error, Result};
use crate::eureka::{EurekaHttp, Heartbeat};
use crate::instance::{next_dirty_timestamp, registration_body, InstanceStatus};
use crate::metrics::{ClientMetrics, HeartbeatResult};

/// Where the instance is in its lifecycle, as seen from this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Created, `start` not called yet.
    NotStarted,
    /// Started; the registry has not (or no longer) accepted a registration.
    Registering,
    /// The registry holds the instance (the last registration or heartbeat succeeded).
    Registered,
    /// `stop` was called; nothing is sent any more (or only the final DOWN and DELETE).
    Stopped,
}

/// Severity of a log message handed to the host's log function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Error = 0,
    Warn = 1,
    Info = 2,
    Debug = 3,
}

pub type LogFn = dyn Fn(LogLevel, &str) + Send + Sync;

/// Counters for observability and benchmarks (derived from the client's [`ClientMetrics`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub registrations: u64,
    pub heartbeats: u64,
    pub failed_requests: u64,
}

/// A snapshot of the agent's state.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub phase: Phase,
    pub status: InstanceStatus,
    pub counters: Counters,
    /// The error of the most recent failed request; cleared by the next success.
    pub last_error: Option<Error>,
}

/// Our knowledge of the registry's copy of the instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ServerView {
    /// Never registered by this process: a lease from an earlier process may exist.
    Unknown,
    /// The registry holds no lease (it answered 404, or we deleted it).
    Absent,
    /// The registry accepted our registration with this status.
    Holds(InstanceStatus),
}

struct State {
    phase: Phase,
    /// The status the host wants the registry to show.
    status: InstanceStatus,
    metadata: BTreeMap<String, String>,
    /// Version of the local state (status + metadata), as Eureka's lastDirtyTimestamp.
    dirty_timestamp: u64,
    /// The lastDirtyTimestamp of the last registration the server accepted (0: none).
    accepted_timestamp: u64,
    /// What the registry holds for this instance, as far as we know.
    server: ServerView,
    /// A registration was sent at least once (so the server may hold the instance).
    register_attempted: bool,
    /// Earliest time of the next registration attempt (backoff after failures).
    register_not_before: Instant,
    next_heartbeat: Instant,
    stop_deadline: Option<Instant>,
    /// The worker has finished for good (after its final DELETE).
    worker_done: bool,
    last_error: Option<Error>,
    /// The last message logged for a failure, to log each distinct problem once, not per retry.
    last_logged_failure: Option<String>,
    backoff: Backoff,
}

/// Exponential backoff between retries: 100 ms doubling up to a cap (the heartbeat interval,
/// at most 30 s), so an unreachable registry costs a few requests a minute.
struct Backoff {
    next: Duration,
    cap: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(100);

    fn new(interval: Duration) -> Backoff {
        Backoff {
            next: Self::FIRST,
            cap: interval.min(Duration::from_secs(30)).max(Self::FIRST),
        }
    }

    fn step(&mut self) -> Duration {
        let now = self.next;
        self.next = (self.next * 2).min(self.cap);
        now
    }

    fn reset(&mut self) {
        self.next = Self::FIRST;
    }
}

struct Shared {
    config: Config,
    http: EurekaHttp,
    state: Mutex<State>,
    /// Signalled on every state change: wakes the worker (new work, stop) and waiters.
    changed: Condvar,
    log: RwLock<Option<(LogLevel, Arc<LogFn>)>>,
    /// Counted where results are recorded below; rendered by `crate::metrics`.
    metrics: Arc<ClientMetrics>,
}

/// One instance's registration, driven by a background thread once started.
/// All methods take `&self` and may be called from any thread at once.
pub struct Agent {
    shared: Arc<Shared>,
    worker: Mutex<Option<JoinHandle<()>>>,
    worker_id: Mutex<Option<ThreadId>>,
}

/// What the worker does next, decided under the lock and carried out without it.
enum Action {
    Register {
        status: InstanceStatus,
        metadata: BTreeMap<String, String>,
        dirty_timestamp: u64,
        /// A status to register first, one timestamp earlier: see `interim_status`.
        interim: Option<InstanceStatus>,
    },
    Heartbeat {
        status: InstanceStatus,
        dirty_timestamp: u64,
    },
    Deregister {
        deadline: Option<Instant>,
        registered: bool,
        metadata: BTreeMap<String, String>,
        dirty_timestamp: u64,
    },
}

impl Agent {
    /// Creates the agent and its HTTP client. Nothing is sent before [`Agent::start`].
    pub fn new(config: Config) -> Result<Agent> {
        let http = EurekaHttp::new(&config)?;
        let now = Instant::now();
        let state = State {
            phase: Phase::NotStarted,
            status: InstanceStatus::Starting,
            metadata: config.metadata.clone(),
            dirty_timestamp: next_dirty_timestamp(0),
            accepted_timestamp: 0,
            server: ServerView::Unknown,
            register_attempted: false,
            register_not_before: now,
            next_heartbeat: now,
            stop_deadline: None,
            worker_done: false,
            last_error: None,
            last_logged_failure: None,
            backoff: Backoff::new(config.heartbeat_interval),
        };
        let metrics = ClientMetrics::register(&config.app_name, &config.instance_id);
        Ok(Agent {
            shared: Arc::new(Shared {
                config,
                http,
                metrics,
                state: Mutex::new(state),
                changed: Condvar::new(),
                log: RwLock::new(None),
            }),
            worker: Mutex::new(None),
            worker_id: Mutex::new(None),
        })
    }

    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// Installs (or removes) the function that receives log messages at `max_level` or more
    /// severe. It is called on the worker thread, never while a lock is held.
    pub fn set_logger(&self, logger: Option<(LogLevel, Arc<LogFn>)>) {
        *self.shared.log.write() = logger;
    }

    /// Starts the background thread, which registers (retrying while the registry is
    /// unreachable) and then heartbeats. Returns at once. Idempotent while running.
    pub fn start(&self) -> Result<()> {
        let mut worker = self.worker.lock();
        {
            let mut state = self.shared.state.lock();
            match state.phase {
                Phase::Stopped => return Err(Error::ShutDown),
                Phase::Registering | Phase::Registered => return Ok(()),
                Phase::NotStarted => state.phase = Phase::Registering,
            }
        }
        let shared = Arc::clone(&self.shared);
        let handle = std::thread::Builder::new()
            .name("registrar-agent".into())
            .spawn(move || run_worker(&shared))
            .map_err(|e| {
                self.shared.state.lock().phase = Phase::NotStarted;
                Error::Transport(format!("cannot start the background thread: {e}"))
            })?;
        *self.worker_id.lock() = Some(handle.thread().id());
        *worker = Some(handle);
        Ok(())
    }

    /// Sets the status the registry should show (UP when ready, DOWN, OUT_OF_SERVICE...).
    /// Travels by re-registration, as the protocol requires; returns without waiting.
    pub fn set_status(&self, status: InstanceStatus) -> Result<()> {
        if status == InstanceStatus::Unknown {
            return Err(Error::InvalidArgument(
                "status UNKNOWN cannot be registered (Eureka would answer every heartbeat with 404)".into(),
            ));
        }
        self.change(|state| {
            let changed = state.status != status;
            state.status = status;
            changed
        })
    }

    /// Sets (`Some`) or removes (`None`) one metadata entry; reaches the registry by re-registration.
    pub fn set_metadata(&self, key: &str, value: Option<&str>) -> Result<()> {
        check_metadata_key(key).map_err(|why| Error::InvalidArgument(format!("metadata {why}")))?;
        self.change(|state| match value {
            Some(v) => {
                state
                    .metadata
                    .insert(key.to_string(), v.to_string())
                    .as_deref()
                    != Some(v)
            }
            None => state.metadata.remove(key).is_some(),
        })
    }

    fn change(&self, apply: impl FnOnce(&mut State) -> bool) -> Result<()> {
        let mut state = self.shared.state.lock();
        if state.phase == Phase::Stopped {
            return Err(Error::ShutDown);
        }
        if apply(&mut state) {
            state.dirty_timestamp = next_dirty_timestamp(state.dirty_timestamp);
            // A local change is news for the registry: send it now, not after the backoff.
            state.register_not_before = Instant::now();
            self.shared.changed.notify_all();
        }
        Ok(())
    }

    /// The metadata as this process holds it (and the registry will, once synced).
    pub fn metadata(&self) -> BTreeMap<String, String> {
        self.shared.state.lock().metadata.clone()
    }

    pub fn snapshot(&self) -> Snapshot {
        let state = self.shared.state.lock();
        let counts = self.shared.metrics.counts();
        Snapshot {
            phase: state.phase,
            status: state.status,
            counters: Counters {
                registrations: counts.registrations_success,
                heartbeats: counts.heartbeats_success,
                failed_requests: counts.registrations_error + counts.heartbeats_error,
            },
            last_error: state.last_error.clone(),
        }
    }

    /// This client's counters (also listed in the process-wide metrics while it lives).
    pub fn metrics(&self) -> &Arc<ClientMetrics> {
        &self.shared.metrics
    }

    /// The service URL requests go to first (the one that answered last), without credentials.
    pub fn server_in_use(&self) -> String {
        self.shared.http.server_in_use()
    }

    /// Waits until the registry has accepted a registration carrying the latest local state
    /// (status and metadata). `Timeout` says why it has not, `ShutDown` if stopped.
    pub fn wait_registered(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let mut state = self.shared.state.lock();
        loop {
            if state.phase == Phase::Stopped {
                return Err(Error::ShutDown);
            }
            if state.registered() && state.accepted_timestamp == state.dirty_timestamp {
                return Ok(());
            }
            if self
                .shared
                .changed
                .wait_until(&mut state, deadline)
                .timed_out()
            {
                let why = match (&state.last_error, state.phase) {
                    (_, Phase::NotStarted) => "the client has not been started".to_string(),
                    (Some(e), _) => format!("last error: {e}"),
                    (None, _) => "no answer from the registry yet".to_string(),
                };
                return Err(Error::Timeout(format!(
                    "not registered within {} ms; {why}",
                    timeout.as_millis()
                )));
            }
        }
    }

    /// Marks the instance DOWN, deregisters it (DELETE) and ends the background thread, all
    /// within `timeout`. Idempotent. After it returns no request for this instance leaves the
    /// process. Called from the worker thread itself (a log callback), it only requests the
    /// stop, which the worker performs as soon as the callback returns.
    pub fn stop(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        {
            let mut state = self.shared.state.lock();
            match state.phase {
                Phase::NotStarted => {
                    state.phase = Phase::Stopped;
                    state.worker_done = true;
                    self.shared.changed.notify_all();
                    return Ok(());
                }
                Phase::Stopped if state.worker_done => return Ok(()),
                _ => {}
            }
            if state.phase != Phase::Stopped {
                state.phase = Phase::Stopped;
                state.stop_deadline = Some(deadline);
                self.shared.changed.notify_all();
            }
        }
        if Some(std::thread::current().id()) == *self.worker_id.lock() {
            return Ok(());
        }
        let mut state = self.shared.state.lock();
        while !state.worker_done {
            if self
                .shared
                .changed
                .wait_until(&mut state, deadline)
                .timed_out()
                && !state.worker_done
            {
                // Tell the worker the window has closed: it must send nothing more.
                state.stop_deadline = Some(Instant::now());
                return Err(Error::Timeout(format!(
                    "stop did not finish within {} ms (a request to the registry is still \
                     outstanding); the instance may stay registered until its lease expires",
                    timeout.as_millis()
                )));
            }
        }
        drop(state);
        if let Some(handle) = self.worker.lock().take() {
            let _ = handle.join();
        }
        Ok(())
    }
}

impl Drop for Agent {
    /// Dropping a running agent stops it first (bounded by the HTTP timeout).
    fn drop(&mut self) {
        // If stop was already requested (and perhaps timed out), do not wait a second time.
        if self.shared.state.lock().phase != Phase::Stopped {
            let _ = self.stop(self.shared.config.timeout);
        }
    }
}

fn run_worker(shared: &Shared) {
    loop {
        // One bad cycle (a panic anywhere below) must never end the heartbeat for good.
        let outcome = catch_unwind(AssertUnwindSafe(|| cycle(shared)));
        match outcome {
            Ok(true) => continue,
            Ok(false) => break,
            Err(panic) => {
                let message = panic_message(&panic);
                shared.state.lock().last_error = Some(Error::Internal(format!(
                    "in the background thread: {message}"
                )));
                shared.log(
                    LogLevel::Error,
                    &format!("internal error in the background thread: {message}"),
                );
                // Avoid a hot loop if the panic repeats.
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
    let mut state = shared.state.lock();
    state.worker_done = true;
    shared.changed.notify_all();
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

/// Waits for the next thing to do, does it, records the result. Returns false when finished.
fn cycle(shared: &Shared) -> bool {
    let action = next_action(shared);
    let config = &shared.config;
    match action {
        Action::Register {
            status,
            metadata,
            dirty_timestamp,
            interim,
        } => {
            let first = {
                let mut state = shared.state.lock();
                state.register_attempted = true;
                !state.registered()
            };
            let mut result = Ok(());
            if let Some(interim) = interim {
                let body = registration_body(config, interim, &metadata, dirty_timestamp - 1);
                result = shared.http.register(&config.app_name, &body, None);
                if result.is_ok() {
                    shared.state.lock().server = ServerView::Holds(interim);
                }
            }
            if result.is_ok() {
                let body = registration_body(config, status, &metadata, dirty_timestamp);
                result = shared.http.register(&config.app_name, &body, None);
            }
            let mut state = shared.state.lock();
            match result {
                Ok(()) => {
                    shared.metrics.registration(true);
                    state.accepted_timestamp = dirty_timestamp;
                    state.server = ServerView::Holds(status);
                    if state.phase == Phase::Registering {
                        state.phase = Phase::Registered;
                    }
                    state.next_heartbeat = Instant::now() + config.heartbeat_interval;
                    let recovered = state.last_logged_failure.take();
                    shared.succeeded(&mut state);
                    shared.changed.notify_all();
                    drop(state);
                    let what = if first {
                        "registered"
                    } else {
                        "registration updated"
                    };
                    let after = recovered.map_or(String::new(), |f| format!(" (after: {f})"));
                    shared.log(
                        LogLevel::Info,
                        &format!(
                            "{what}: {}/{} status {}{after}",
                            config.app_name,
                            config.instance_id,
                            status.as_str()
                        ),
                    );
                }
                Err(e) => {
                    shared.metrics.registration(false);
                    let wait = state.backoff.step();
                    state.register_not_before = Instant::now() + wait;
                    shared.failed(state, "registration failed", e);
                }
            }
            true
        }
        Action::Heartbeat {
            status,
            dirty_timestamp,
        } => {
            let result = shared.http.heartbeat(
                &config.app_name,
                &config.instance_id,
                status,
                dirty_timestamp,
                None,
            );
            let mut state = shared.state.lock();
            match result {
                Ok(Heartbeat::Renewed) => {
                    shared.metrics.heartbeat(HeartbeatResult::Success);
                    state.next_heartbeat = Instant::now() + config.heartbeat_interval;
                    let recovered = state.last_logged_failure.take();
                    shared.succeeded(&mut state);
                    drop(state);
                    if let Some(failure) = recovered {
                        shared.log(
                            LogLevel::Info,
                            &format!("the registry answers again (after: {failure})"),
                        );
                    }
                }
                Ok(Heartbeat::NotRegistered) => {
                    shared.metrics.heartbeat(HeartbeatResult::NotFound);
                    // The server restarted or evicted us: register again right away.
                    state.server = ServerView::Absent;
                    state.accepted_timestamp = 0;
                    if state.phase == Phase::Registered {
                        state.phase = Phase::Registering;
                    }
                    state.register_not_before = Instant::now();
                    shared.changed.notify_all();
                    drop(state);
                    shared.log(LogLevel::Warn, "the registry does not know this instance (restarted or evicted it); registering again");
                }
                Err(e) => {
                    shared.metrics.heartbeat(HeartbeatResult::Error);
                    let wait = state.backoff.step();
                    state.next_heartbeat = Instant::now() + wait.min(config.heartbeat_interval);
                    shared.failed(state, "heartbeat failed", e);
                }
            }
            true
        }
        Action::Deregister {
            deadline,
            registered,
            metadata,
            dirty_timestamp,
        } => {
            deregister(shared, deadline, registered, &metadata, dirty_timestamp);
            false
        }
    }
}

fn is_up_or_oos(status: InstanceStatus) -> bool {
    matches!(status, InstanceStatus::Up | InstanceStatus::OutOfService)
}

/// Eureka keeps a lease's UP or OUT_OF_SERVICE over a registration carrying the other one (its
/// LeaseExistsRule) but always accepts DOWN and STARTING. So a move between UP and
/// OUT_OF_SERVICE is registered as DOWN first; and the first UP/OUT_OF_SERVICE registration of
/// this process, when a lease left by an earlier process with the same id may hold the other
/// one, as STARTING first (which is true: the instance is just starting).
fn interim_status(server: ServerView, wanted: InstanceStatus) -> Option<InstanceStatus> {
    if !is_up_or_oos(wanted) {
        return None;
    }
    match server {
        ServerView::Holds(held) if is_up_or_oos(held) && held != wanted => {
            Some(InstanceStatus::Down)
        }
        ServerView::Unknown => Some(InstanceStatus::Starting),
        ServerView::Holds(_) | ServerView::Absent => None,
    }
}

fn next_action(shared: &Shared) -> Action {
    let mut state = shared.state.lock();
    loop {
        let now = Instant::now();
        if state.phase == Phase::Stopped {
            let dirty = next_dirty_timestamp(state.dirty_timestamp);
            state.dirty_timestamp = dirty;
            return Action::Deregister {
                deadline: state.stop_deadline,
                registered: state.registered() || state.register_attempted,
                metadata: state.metadata.clone(),
                dirty_timestamp: dirty,
            };
        }
        let needs_registration =
            !state.registered() || state.accepted_timestamp != state.dirty_timestamp;
        let wake_at = if needs_registration {
            if now >= state.register_not_before {
                return Action::Register {
                    status: state.status,
                    metadata: state.metadata.clone(),
                    dirty_timestamp: state.dirty_timestamp,
                    interim: interim_status(state.server, state.status),
                };
            }
            state.register_not_before
        } else {
            if now >= state.next_heartbeat {
                return Action::Heartbeat {
                    status: state.status,
                    dirty_timestamp: state.dirty_timestamp,
                };
            }
            state.next_heartbeat
        };
        shared.changed.wait_until(&mut state, wake_at);
    }
}

/// The end of the lifecycle: POST status DOWN (so caches that still list the instance route
/// no traffic to it), then DELETE. Both share the stop deadline; nothing is sent after it.
fn deregister(
    shared: &Shared,
    deadline: Option<Instant>,
    registered: bool,
    metadata: &BTreeMap<String, String>,
    dirty_timestamp: u64,
) {
    if !registered {
        return;
    }
    let config = &shared.config;
    let deadline = deadline.unwrap_or_else(|| Instant::now() + config.timeout);
    let window_open = || {
        let current = shared.state.lock().stop_deadline.unwrap_or(deadline);
        Instant::now() < current.min(deadline)
    };
    if window_open() {
        // Give DOWN at most half the window, so a hanging server still leaves time for DELETE.
        let half = Instant::now() + deadline.saturating_duration_since(Instant::now()) / 2;
        let body = registration_body(config, InstanceStatus::Down, metadata, dirty_timestamp);
        if let Err(e) = shared.http.register(&config.app_name, &body, Some(half)) {
            shared.log(
                LogLevel::Warn,
                &format!("marking the instance DOWN failed: {e}"),
            );
        }
    }
    if window_open() {
        match shared
            .http
            .deregister(&config.app_name, &config.instance_id, Some(deadline))
        {
            Ok(()) => shared.log(
                LogLevel::Info,
                &format!("deregistered: {}/{}", config.app_name, config.instance_id),
            ),
            Err(e) => {
                shared.state.lock().last_error = Some(e.clone());
                shared.log(LogLevel::Warn, &format!("deregistration failed: {e}"));
            }
        }
    }
    shared.state.lock().server = ServerView::Absent;
}

impl State {
    fn registered(&self) -> bool {
        matches!(self.server, ServerView::Holds(_))
    }
}

impl Shared {
    fn log(&self, level: LogLevel, message: &str) {
        let logger = self.log.read().clone();
        if let Some((max_level, log)) = logger {
            if level <= max_level {
                // A host callback must not take the worker down with it.
                let _ = catch_unwind(AssertUnwindSafe(|| log(level, message)));
            }
        }
    }

    fn succeeded(&self, state: &mut State) {
        state.backoff.reset();
        state.last_error = None;
        state.last_logged_failure = None;
    }

    /// Records a failure; logs it only when it differs from the previous one (no flooding).
    fn failed(&self, mut state: parking_lot::MutexGuard<'_, State>, what: &str, error: Error) {
        let message = format!("{what}: {error}");
        let is_new = state.last_logged_failure.as_deref() != Some(message.as_str());
        state.last_error = Some(error);
        if is_new {
            state.last_logged_failure = Some(message.clone());
        }
        self.changed.notify_all();
        drop(state);
        if is_new {
            self.log(LogLevel::Warn, &message);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use InstanceStatus::*;

    #[test]
    fn interim_registrations_work_around_the_lease_exists_rule() {
        assert_eq!(
            interim_status(ServerView::Holds(Up), OutOfService),
            Some(Down)
        );
        assert_eq!(
            interim_status(ServerView::Holds(OutOfService), Up),
            Some(Down)
        );
        assert_eq!(interim_status(ServerView::Unknown, Up), Some(Starting));
        assert_eq!(interim_status(ServerView::Unknown, Starting), None);
        assert_eq!(interim_status(ServerView::Absent, Up), None);
        assert_eq!(interim_status(ServerView::Holds(Starting), Up), None);
        assert_eq!(interim_status(ServerView::Holds(Down), OutOfService), None);
        assert_eq!(interim_status(ServerView::Holds(Up), Down), None);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(500));
        let steps: Vec<u128> = (0..5).map(|_| b.step().as_millis()).collect();
        assert_eq!(steps, vec![100, 200, 400, 500, 500]);
        b.reset();
        assert_eq!(b.step(), Duration::from_millis(100));
    }
}
