//! The lifecycle of one registered instance, driven by its task on the agent thread.
//!
//! The host changes *local* state (status, metadata) and never waits for the network; the
//! task (`src/worker.rs`) makes the registry agree with it:
//!
//! ```text
//! start ──► registering ──POST 204──► registered ──PUT 200 every interval──┐
//!              ▲   │ error: retry with backoff     │  ▲                     │
//!              │   └───────────────────────────────┘  └─────────────────────┘
//!              └── heartbeat 404 (server restarted / evicted us)
//! any local change (status, metadata) ──► POST again with a newer lastDirtyTimestamp
//! health verdict changes (src/health_watch.rs) ──► the same: DOWN while unhealthy
//! stop, no drain ──► DELETE ──200/404──► stopped
//!                      └─ fails ──► POST status DOWN ──► DELETE again until the deadline
//! stop, drain ──► POST status DOWN ──► heartbeats as DOWN ──► DELETE ──► stopped
//! ```
//!
//! The status sent is the *effective* status ([`State::effective_status`]): DOWN while the
//! health check fails or once stop was called, otherwise the status the host set. Every change
//! of it goes through [`Shared::status_changed`], with its [`StatusCause`].

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::config::{check_metadata_key, Config};
use crate::error::{Error, Result};
use crate::eureka::{EurekaHttp, Heartbeat};
use crate::events::{Cause, Event, EventFn, EventKind, Listener};
use crate::health_watch::{CheckResult, HealthCheckFn, HealthState, HealthWatch};
use crate::instance::{next_dirty_timestamp, registration_body, InstanceStatus};
use crate::metrics::{ClientMetrics, HeartbeatResult};
use crate::worker::{self, on_agent_thread, Backoff, Job, Logger, Signal, Task};
pub use crate::worker::{LogFn, LogLevel};

/// Where the instance is in its lifecycle, as seen from this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Created, `start` not called yet.
    NotStarted,
    /// Started; the registry has not (or no longer) accepted a registration.
    Registering,
    /// The registry holds the instance (the last registration or heartbeat succeeded).
    Registered,
    /// `stop` was called; nothing is sent any more but the deregistration (after a drain, or
    /// a DOWN registration when the DELETE fails).
    Stopped,
}

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
    /// The status the registry is meant to show: DOWN while the health check fails or once
    /// stop was called, otherwise `host_status`.
    pub status: InstanceStatus,
    /// The status the host set.
    pub host_status: InstanceStatus,
    pub health: HealthState,
    /// stop is keeping the instance registered as DOWN until callers' caches have dropped it.
    pub draining: bool,
    pub counters: Counters,
    /// The error of the most recent failed request; cleared by the next success.
    pub last_error: Option<Error>,
}

/// Why the effective status changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusCause {
    /// The host called set_status.
    Host,
    /// The health check's verdict changed (the message: why it fails; `None`: it passes again).
    HealthCheck(Option<String>),
    /// stop marked the instance DOWN for the drain.
    Stop,
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
    /// The status the host wants the registry to show (see `effective_status`).
    status: InstanceStatus,
    /// Why the health check fails, while its verdict is "unhealthy".
    health_failure: Option<String>,
    /// While stop drains: when the DELETE is due.
    drain_until: Option<Instant>,
    metadata: BTreeMap<String, String>,
    /// Version of the local state (status + metadata), as Eureka's lastDirtyTimestamp.
    dirty_timestamp: u64,
    /// The lastDirtyTimestamp of the last registration the server accepted (0: none).
    accepted_timestamp: u64,
    /// What the registry holds for this instance, as far as we know.
    server: ServerView,
    /// A registration got no answer in time (see `may_have_taken_effect`): the registry may
    /// hold the instance without our knowing, so stop must deregister it.
    unconfirmed_registration: bool,
    /// What stop achieved, once the task has finished (or the stop timed out).
    stop_outcome: Option<Result<()>>,
    /// Earliest time of the next registration attempt (backoff after failures).
    register_not_before: Instant,
    next_heartbeat: Instant,
    last_error: Option<Error>,
    /// The last message logged for a failure, to log each distinct problem once, not per retry.
    last_logged_failure: Option<String>,
    backoff: Backoff,
    /// Who made the latest change of the effective status (carried by the StatusChanged event
    /// once the registry accepts it).
    status_cause: StatusCause,
    /// Facts behind the events (see `crate::events`): the registry accepted a registration
    /// of this process at least once; the registration was lost and not yet regained; the
    /// status the last Registered/Reregistered/StatusChanged event announced; the last time
    /// the registry accepted a registration or heartbeat.
    ever_registered: bool,
    lost: bool,
    announced_status: Option<InstanceStatus>,
    last_renewal: Option<Instant>,
}

struct Shared {
    config: Config,
    http: EurekaHttp,
    state: Mutex<State>,
    /// Signalled on every state change, for host threads waiting (wait_registered).
    changed: Condvar,
    /// Wakes the task (new work, stop) and carries the stop deadline to its requests.
    signal: Signal,
    log: Logger,
    /// The host's event listener (see `crate::events`).
    events: Listener,
    /// Counted where results are recorded below; rendered by `crate::metrics`.
    metrics: Arc<ClientMetrics>,
    health: HealthWatch,
}

/// One instance's registration, driven by a task on the agent thread once started.
/// All methods take `&self` and may be called from any thread at once.
pub struct Agent {
    shared: Arc<Shared>,
    /// The running task, from start on.
    task: Mutex<Option<Arc<Task>>>,
    /// The health watcher's task, from start on (idle while no check is configured).
    health_task: Mutex<Option<Task>>,
}

/// The health watcher's task: applies each change of the verdict to the agent.
struct HealthJob(Arc<Shared>);

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
        registered: bool,
        /// The registry already holds the instance as DOWN (after a drain).
        down_held: bool,
        metadata: BTreeMap<String, String>,
        dirty_timestamp: u64,
    },
}

impl Agent {
    /// Creates the agent. Nothing is sent, and no thread is needed, before [`Agent::start`].
    pub fn new(config: Config) -> Result<Agent> {
        let http = EurekaHttp::new(config.connection());
        let now = Instant::now();
        let state = State {
            phase: Phase::NotStarted,
            status: InstanceStatus::Starting,
            health_failure: None,
            drain_until: None,
            metadata: config.metadata.clone(),
            dirty_timestamp: next_dirty_timestamp(0),
            accepted_timestamp: 0,
            server: ServerView::Unknown,
            unconfirmed_registration: false,
            stop_outcome: None,
            register_not_before: now,
            next_heartbeat: now,
            last_error: None,
            last_logged_failure: None,
            // The retry interval grows up to the heartbeat interval, at most 30 s.
            backoff: Backoff::new(config.heartbeat_interval.min(Duration::from_secs(30))),
            status_cause: StatusCause::Host,
            ever_registered: false,
            lost: false,
            announced_status: None,
            last_renewal: None,
        };
        let metrics = ClientMetrics::register(&config.app_name, &config.instance_id);
        let health = HealthWatch::new(config.health.clone(), Arc::clone(&metrics));
        Ok(Agent {
            shared: Arc::new(Shared {
                health,
                config,
                http,
                metrics,
                state: Mutex::new(state),
                changed: Condvar::new(),
                signal: Signal::default(),
                log: Logger::default(),
                events: Listener::default(),
            }),
            task: Mutex::new(None),
            health_task: Mutex::new(None),
        })
    }

    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// Installs (or removes) the function that receives log messages at `max_level` or more
    /// severe. It is called on the agent thread, never while a lock is held, never after stop
    /// has returned.
    pub fn set_logger(&self, logger: Option<(LogLevel, Arc<LogFn>)>) {
        self.shared.log.set(logger);
    }

    /// Installs (or removes) the function that receives this client's events (see
    /// `crate::events`): on the agent thread, in order, never while a lock is held, never after
    /// stop has returned.
    pub fn set_event_listener(&self, listener: Option<Arc<EventFn>>) {
        self.shared.events.set(listener);
    }

    /// Starts the task on the agent thread (starting the thread if it is the process's first
    /// task), which registers (retrying while the registry is unreachable) and then heartbeats.
    /// Returns at once. Idempotent while running.
    pub fn start(&self) -> Result<()> {
        let mut task = self.task.lock();
        {
            let mut state = self.shared.state.lock();
            match state.phase {
                Phase::Stopped => return Err(Error::ShutDown),
                Phase::Registering | Phase::Registered => return Ok(()),
                Phase::NotStarted => state.phase = Phase::Registering,
            }
        }
        // The health watcher only for a client with a check (idle clients stay small); one
        // set later starts it then (set_health_check).
        let spawned = Task::spawn(Arc::clone(&self.shared)).and_then(|spawned| {
            let health = match self.shared.health.configured() {
                true => Some(self.spawn_health_watcher()?),
                false => None,
            };
            Ok((spawned, health))
        });
        match spawned {
            Ok((spawned, health)) => {
                *task = Some(Arc::new(spawned));
                *self.health_task.lock() = health;
                Ok(())
            }
            Err(e) => {
                self.shared.state.lock().phase = Phase::NotStarted;
                Err(e)
            }
        }
    }

    /// Sets the status the registry should show (UP when ready, DOWN, OUT_OF_SERVICE...).
    /// Travels by re-registration, as the protocol requires; returns without waiting.
    pub fn set_status(&self, status: InstanceStatus) -> Result<()> {
        if status == InstanceStatus::Unknown {
            return Err(Error::InvalidArgument(
                "status UNKNOWN cannot be registered (Eureka would answer every heartbeat with 404)".into(),
            ));
        }
        let mut transition = None;
        self.change(|state| {
            let before = state.effective_status();
            let changed = state.status != status;
            state.status = status;
            let after = state.effective_status();
            if before != after {
                state.status_cause = StatusCause::Host;
                transition = Some((before, after));
            }
            changed
        })?;
        if let Some((before, after)) = transition {
            self.shared.status_changed(before, after, StatusCause::Host);
        }
        Ok(())
    }

    /// Sets (`Some`) or removes (`None`) the host's health check, run every
    /// REGISTRY_HEALTH_INTERVAL once started (see `crate::health_watch`): the instance is
    /// registered DOWN after REGISTRY_HEALTH_THRESHOLD failures in a row, with the host's
    /// status again after as many passes. It replaces REGISTRY_HEALTH_URL while set. The
    /// verdict starts over as healthy.
    pub fn set_health_check(&self, check: Option<Arc<HealthCheckFn>>) -> Result<()> {
        // Serialised with start, so the watcher task is spawned once.
        let _task = self.task.lock();
        let running = match self.shared.state.lock().phase {
            Phase::Stopped => return Err(Error::ShutDown),
            Phase::NotStarted => false,
            Phase::Registering | Phase::Registered => true,
        };
        let mut watcher = self.health_task.lock();
        if running && check.is_some() && watcher.is_none() {
            *watcher = Some(self.spawn_health_watcher()?);
        }
        self.shared.health.set_check(check);
        self.shared.apply_health(Ok(()));
        Ok(())
    }

    fn spawn_health_watcher(&self) -> Result<Task> {
        Task::spawn(Arc::new(HealthJob(Arc::clone(&self.shared))))
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
            self.shared.local_change(&mut state);
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
            status: state.effective_status(),
            host_status: state.status,
            health: self.shared.health.state(),
            draining: state.drain_until.is_some(),
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
        refuse_to_wait_on_the_agent_thread("wait_registered")?;
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

    /// Marks the instance DOWN locally, deregisters it (DELETE) and ends the task, all within
    /// `timeout` (see [`Config::default_stop_timeout`] for a sensible one). Without a drain
    /// the DELETE is the only request; if it fails, the instance is registered as DOWN (so
    /// traffic stops anyway) and the DELETE retried until the deadline. With a drain
    /// (REGISTRY_DRAIN_SECONDS), the instance is registered DOWN at once and kept registered,
    /// heartbeating, for the drain, so callers' caches drop it before it is deleted; a
    /// `timeout` shorter than drain + REGISTRY_TIMEOUT cuts the drain short, leaving the DELETE
    /// REGISTRY_TIMEOUT (at most half the timeout).
    /// Returns an error naming what failed when the registry was not told (the DELETE
    /// failed or did not fit in `timeout`); calling it again returns the same outcome. After it
    /// returns no request for this instance leaves the process, the logger is not called
    /// any more and no health check starts. Called on the agent thread itself (from a log
    /// callback), it only requests the stop, which the task performs when the callback returns.
    pub fn stop(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let mut drain_started = None;
        {
            let mut state = self.shared.state.lock();
            if state.phase == Phase::NotStarted {
                state.phase = Phase::Stopped;
                self.shared.changed.notify_all();
                return Ok(());
            }
            if state.phase != Phase::Stopped {
                let before = state.effective_status();
                state.phase = Phase::Stopped;
                let drain = self.drain_within(timeout);
                let held = state.registered() || state.unconfirmed_registration;
                if !drain.is_zero() && held {
                    // DOWN at once, through the usual registration path.
                    state.drain_until = Some(Instant::now() + drain);
                    state.status_cause = StatusCause::Stop;
                    state.dirty_timestamp = next_dirty_timestamp(state.dirty_timestamp);
                    state.register_not_before = Instant::now();
                    drain_started = Some((before, drain));
                }
                // Without a drain the instance is DOWN locally all the same (see
                // `effective_status`), but the registry is only told by the DELETE (or by DOWN
                // if that fails), whose outcome the task logs.
                self.shared.changed.notify_all();
            } else if let Some(until) = state.drain_until {
                // A second stop during the drain (a second signal, an impatient caller) with
                // an earlier deadline: the drain ends in time for the DELETE to fit in it,
                // rather than the task being abandoned at that deadline with the instance
                // still listed as DOWN.
                let cut = Instant::now() + self.drain_within(timeout);
                if cut < until {
                    state.drain_until = Some(cut);
                    self.shared.changed.notify_all();
                }
            }
        }
        // No health check starts any more; the verdict no longer matters.
        if let Some(health) = self.health_task.lock().as_ref() {
            health.abort();
        }
        if let Some((before, drain)) = drain_started {
            if before != InstanceStatus::Down {
                self.shared
                    .status_changed(before, InstanceStatus::Down, StatusCause::Stop);
            }
            self.shared.log(
                LogLevel::Info,
                &format!(
                    "draining: registered as DOWN for {:.1} s before deregistering",
                    drain.as_secs_f64()
                ),
            );
        }
        let Some(task) = self.task.lock().clone() else {
            self.shared.health.close(deadline);
            return Ok(());
        };
        self.shared.signal.request_stop(deadline);
        if on_agent_thread() {
            self.shared.health.close(deadline);
            return Ok(());
        }
        let finished = task.wait(deadline);
        // Whatever happened, nothing of this handle runs from here on.
        task.abort();
        self.shared.health.close(deadline);
        self.shared.log.silence();
        let outcome = {
            let mut state = self.shared.state.lock();
            if !finished && state.stop_outcome.is_none() {
                state.stop_outcome = Some(Err(Error::Timeout(format!(
                    "stop did not finish within {} ms (a request to the registry was still \
                     outstanding and has been abandoned); the instance may stay registered \
                     until its lease expires",
                    timeout.as_millis()
                ))));
            }
            state.stop_outcome.clone().unwrap_or(Ok(()))
        };
        // The task delivers Stopped when it finishes; if it did not in time, it is delivered
        // here (the slot delivers it once, and nothing after it).
        self.shared.events.emit_last(&stopped_event(&outcome));
        outcome
    }
}

impl Agent {
    /// The part of a stop `timeout` given to the drain: REGISTRY_DRAIN_SECONDS, cut short so
    /// the DELETE keeps REGISTRY_TIMEOUT (or half the timeout, if that is less).
    fn drain_within(&self, timeout: Duration) -> Duration {
        let config = &self.shared.config;
        let reserve = config.timeout.min(timeout / 2);
        config.drain.min(timeout.saturating_sub(reserve))
    }
}

/// Host calls that wait for the task must not run on the agent thread (from a callback):
/// they would wait for the very thread they block.
pub(crate) fn refuse_to_wait_on_the_agent_thread(call: &str) -> Result<()> {
    if on_agent_thread() {
        return Err(Error::InvalidArgument(format!(
            "{call} cannot wait when called from a callback (on registrar's own thread)"
        )));
    }
    Ok(())
}

impl Drop for Agent {
    /// Dropping a running agent stops it first (bounded by the HTTP timeout); then its logger
    /// is dropped, on this thread.
    fn drop(&mut self) {
        // If stop was already requested (and perhaps timed out), do not wait a second time.
        if self.shared.state.lock().phase != Phase::Stopped {
            let _ = self.stop(self.shared.config.default_stop_timeout());
        }
        if let Some(task) = self.task.lock().take() {
            task.abort();
        }
        if let Some(task) = self.health_task.lock().take() {
            task.abort();
        }
        // The host's check is dropped here, on this thread (unless a call of it is still
        // running: then by the runner thread when it returns).
        self.shared.health.set_check(None);
        self.shared.log.release();
        self.shared.events.release();
    }
}

impl Job for Shared {
    async fn cycle(self: Arc<Self>) -> bool {
        cycle(&self).await
    }

    fn panicked(&self, message: String) {
        self.state.lock().last_error = Some(Error::Internal(format!(
            "in the background thread: {message}"
        )));
        self.log(
            LogLevel::Error,
            &format!("internal error in the background thread: {message}"),
        );
    }
}

impl Job for HealthJob {
    async fn cycle(self: Arc<Self>) -> bool {
        let shared = &self.0;
        let verdict = shared.health.next_change().await;
        if shared.state.lock().phase == Phase::Stopped {
            return false;
        }
        shared.apply_health(verdict);
        true
    }

    fn panicked(&self, message: String) {
        self.0.panicked(format!("in the health watcher: {message}"));
    }
}

/// Waits for the next thing to do, does it, records the result. Returns false when finished.
async fn cycle(shared: &Shared) -> bool {
    let action = next_action(shared).await;
    // Boxed: the requests' state (a few KiB of HTTP futures) exists only while they run, not
    // in every idle task of a process with a thousand clients waiting for their next heartbeat.
    Box::pin(carry_out(shared, action)).await
}

/// Does `action` and records the result. Returns false when finished.
async fn carry_out(shared: &Shared, action: Action) -> bool {
    let config = &shared.config;
    match action {
        Action::Register {
            status,
            metadata,
            dirty_timestamp,
            interim,
        } => {
            let first = !shared.state.lock().registered();
            let mut result = Ok(());
            if let Some(interim) = interim {
                let body = registration_body(config, interim, &metadata, dirty_timestamp - 1);
                result = shared
                    .work(shared.http.register(&config.app_name, &body, None))
                    .await;
                if result.is_ok() {
                    shared.state.lock().server = ServerView::Holds(interim);
                }
            }
            if result.is_ok() {
                let body = registration_body(config, status, &metadata, dirty_timestamp);
                result = shared
                    .work(shared.http.register(&config.app_name, &body, None))
                    .await;
            }
            let mut state = shared.state.lock();
            match &result {
                Ok(()) => state.server = ServerView::Holds(status),
                Err(e) if may_have_taken_effect(e) => state.unconfirmed_registration = true,
                Err(_) => {}
            }
            if state.phase == Phase::Stopped && state.drain_until.is_none() {
                // Finished or abandoned as stop came; the deregistration comes next.
                return true;
            }
            match result {
                Ok(()) => {
                    shared.metrics.registration(true);
                    state.accepted_timestamp = dirty_timestamp;
                    state.server = ServerView::Holds(status);
                    if state.phase == Phase::Registering {
                        state.phase = Phase::Registered;
                    }
                    state.next_heartbeat = Instant::now() + config.heartbeat_interval;
                    let next = state.next_heartbeat;
                    let recovered = state.last_logged_failure.take();
                    shared.succeeded(&mut state);
                    let events = state.registration_accepted(status);
                    shared.changed.notify_all();
                    drop(state);
                    shared.arm_ahead(next);
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
                    shared.events.emit_all(&events);
                }
                Err(e) => {
                    shared.metrics.registration(false);
                    let wait = state.backoff.step();
                    state.register_not_before = Instant::now() + wait;
                    let lost = state.lease_lost(config, &e);
                    shared.failed(state, "registration failed", e);
                    shared.events.emit_all(&lost);
                }
            }
            true
        }
        Action::Heartbeat {
            status,
            dirty_timestamp,
        } => {
            let result = shared
                .work(shared.http.heartbeat(
                    &config.app_name,
                    &config.instance_id,
                    status,
                    dirty_timestamp,
                    None,
                ))
                .await;
            let mut state = shared.state.lock();
            if state.phase == Phase::Stopped && state.drain_until.is_none() {
                return true;
            }
            match result {
                Ok(Heartbeat::Renewed) => {
                    shared.metrics.heartbeat(HeartbeatResult::Success);
                    state.next_heartbeat = Instant::now() + config.heartbeat_interval;
                    let next = state.next_heartbeat;
                    let recovered = state.last_logged_failure.take();
                    shared.succeeded(&mut state);
                    let events = state.heartbeat_accepted();
                    drop(state);
                    shared.arm_ahead(next);
                    if let Some(failure) = recovered {
                        shared.log(
                            LogLevel::Info,
                            &format!("the registry answers again (after: {failure})"),
                        );
                    }
                    shared.events.emit_all(&events);
                }
                Ok(Heartbeat::NotRegistered) => {
                    shared.metrics.heartbeat(HeartbeatResult::NotFound);
                    // The server restarted or evicted us: register again right away.
                    state.server = ServerView::Absent;
                    state.accepted_timestamp = 0;
                    if state.phase == Phase::Registered {
                        state.phase = Phase::Registering;
                    }
                    if state.drain_until.is_some() {
                        // Gone already: nothing left to drain.
                        state.drain_until = Some(Instant::now());
                    }
                    state.register_not_before = Instant::now();
                    let events = state.forgotten_by_registry();
                    shared.changed.notify_all();
                    drop(state);
                    shared.log(LogLevel::Warn, FORGOTTEN);
                    shared.events.emit_all(&events);
                }
                Err(e) => {
                    shared.metrics.heartbeat(HeartbeatResult::Error);
                    let wait = state.backoff.step();
                    state.next_heartbeat = Instant::now() + wait.min(config.heartbeat_interval);
                    let lost = state.lease_lost(config, &e);
                    shared.failed(state, "heartbeat failed", e);
                    shared.events.emit_all(&lost);
                }
            }
            true
        }
        Action::Deregister {
            registered,
            down_held,
            metadata,
            dirty_timestamp,
        } => {
            let outcome =
                deregister(shared, registered, down_held, &metadata, dirty_timestamp).await;
            let outcome = shared
                .state
                .lock()
                .stop_outcome
                .get_or_insert(outcome)
                .clone();
            // The last event: stop (waiting for this task) returns after it.
            shared.events.emit_last(&stopped_event(&outcome));
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

/// The action due now, or the time at which one will be (if nothing changes meanwhile).
fn decide(state: &mut State) -> std::result::Result<Action, Instant> {
    let now = Instant::now();
    let draining = state.drain_until.is_some_and(|until| now < until);
    if state.phase == Phase::Stopped && !draining {
        let down_held = state.drain_until.is_some()
            && state.server == ServerView::Holds(InstanceStatus::Down)
            && state.accepted_timestamp == state.dirty_timestamp;
        state.drain_until = None;
        let dirty = next_dirty_timestamp(state.dirty_timestamp);
        state.dirty_timestamp = dirty;
        return Ok(Action::Deregister {
            registered: state.registered() || state.unconfirmed_registration,
            down_held,
            metadata: state.metadata.clone(),
            dirty_timestamp: dirty,
        });
    }
    // Running, or draining: keep the registry's copy current (DOWN while draining) and alive.
    let drain_end = state.drain_until.unwrap_or(far_future(now));
    let status = state.effective_status();
    let needs_registration =
        !state.registered() || state.accepted_timestamp != state.dirty_timestamp;
    if needs_registration {
        if now >= state.register_not_before {
            return Ok(Action::Register {
                status,
                metadata: state.metadata.clone(),
                dirty_timestamp: state.dirty_timestamp,
                interim: interim_status(state.server, status),
            });
        }
        Err(state.register_not_before.min(drain_end))
    } else {
        if now >= state.next_heartbeat {
            return Ok(Action::Heartbeat {
                status,
                dirty_timestamp: state.dirty_timestamp,
            });
        }
        Err(state.next_heartbeat.min(drain_end))
    }
}

/// A time that never comes (a year from now), for "no deadline" in comparisons.
fn far_future(now: Instant) -> Instant {
    now + Duration::from_secs(365 * 24 * 3600)
}

async fn next_action(shared: &Shared) -> Action {
    loop {
        let wake_at = match decide(&mut shared.state.lock()) {
            Ok(action) => return action,
            Err(wake_at) => wake_at,
        };
        shared.signal.sleep_until(wake_at).await;
    }
}

/// The end of the lifecycle. Without a drain: DELETE at once, the one request a stop needs
/// (as the Netflix Java client's shutdown sends only its cancel). Only if the DELETE fails is
/// the instance registered as DOWN, so caches that still list it route no traffic to it,
/// and the DELETE tried again while the stop deadline allows. After a drain (`down_held`: the
/// registry already shows DOWN) only the DELETE. Nothing is sent after the stop deadline.
/// The outcome is what stop reports: an error when the registry was not told (no DELETE
/// succeeded in time), naming what failed.
async fn deregister(
    shared: &Shared,
    registered: bool,
    down_held: bool,
    metadata: &BTreeMap<String, String>,
    dirty_timestamp: u64,
) -> Result<()> {
    if !registered {
        return Ok(());
    }
    let config = &shared.config;
    let deadline = shared
        .signal
        .stop_deadline()
        .unwrap_or_else(|| Instant::now() + config.timeout);
    let window_open = || Instant::now() < shared.signal.stop_deadline().unwrap_or(deadline);
    // Half the remaining window, so a hanging server still leaves time for what follows.
    let half_left = || Instant::now() + deadline.saturating_duration_since(Instant::now()) / 2;
    let delete_by = |by: Instant| async move {
        if !window_open() {
            return Err(past_deadline("DELETE"));
        }
        shared
            .signal
            .by_stop_deadline(shared.http.deregister(
                &config.app_name,
                &config.instance_id,
                Some(by),
            ))
            .await
            .unwrap_or_else(|| Err(past_deadline("DELETE")))
    };
    let mut delete = delete_by(if down_held { deadline } else { half_left() }).await;
    // The fallback DOWN registration's result, if it was sent.
    let mut down_tried = None;
    if delete.is_err() && !down_held && window_open() {
        // The registry may keep listing the instance: make it DOWN there at least, then keep
        // trying the DELETE (which also removes a lease this DOWN created, should the failed
        // DELETE have gone through after all).
        let e = delete
            .as_ref()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        shared.log(
            LogLevel::Warn,
            &format!("deregistration failed ({e}); registering the instance as DOWN meanwhile"),
        );
        let body = registration_body(config, InstanceStatus::Down, metadata, dirty_timestamp);
        let down = shared
            .signal
            .by_stop_deadline(
                shared
                    .http
                    .register(&config.app_name, &body, Some(half_left())),
            )
            .await
            .unwrap_or_else(|| Err(past_deadline("POST status DOWN")));
        if let Err(e) = &down {
            shared.log(
                LogLevel::Warn,
                &format!("marking the instance DOWN failed: {e}"),
            );
        }
        down_tried = Some(down);
        let mut backoff = Backoff::new(config.timeout);
        while window_open() {
            delete = delete_by(deadline).await;
            if delete.is_ok() {
                break;
            }
            let pause = Instant::now() + backoff.step();
            if pause >= deadline {
                break;
            }
            let _ = shared
                .signal
                .by_stop_deadline(tokio::time::sleep_until(pause.into()))
                .await;
        }
    }
    shared.state.lock().server = ServerView::Absent;
    match delete {
        Ok(()) => {
            shared.log(
                LogLevel::Info,
                &format!("deregistered: {}/{}", config.app_name, config.instance_id),
            );
            Ok(())
        }
        Err(e) => {
            let listing = match down_tried {
                Some(Ok(())) => "it lists the instance as DOWN until its lease expires".to_string(),
                Some(Err(d)) => format!(
                    "marking it DOWN failed too ({d}), so it may keep listing the instance \
                     until its lease expires"
                ),
                None => "so it may keep listing the instance until its lease expires".to_string(),
            };
            let error = e.with_context(&format!(
                "the registry was not told: deregistration failed; {listing}"
            ));
            shared.state.lock().last_error = Some(error.clone());
            shared.log(LogLevel::Warn, &error.to_string());
            Err(error)
        }
    }
}

/// Whether a failed registration may still have been carried out by the server: it got no
/// answer in time (or was abandoned at the stop deadline), or a success answer too large to
/// read. Not after an error status, nor when no connection could be made at all.
fn may_have_taken_effect(error: &Error) -> bool {
    match error {
        Error::Timeout(_) | Error::ShutDown => true,
        Error::Rejected { status, .. } => *status < 300,
        _ => false,
    }
}

fn past_deadline(what: &str) -> Error {
    Error::Timeout(format!("{what}: abandoned at the stop deadline"))
}

const FORGOTTEN: &str =
    "the registry does not know this instance (restarted, evicted or deleted it); registering again";

/// The `Stopped` event for stop's outcome: with the error if the registry was not told.
fn stopped_event(outcome: &Result<()>) -> Event {
    let event = Event::client(EventKind::Stopped, InstanceStatus::Down, Cause::None);
    match outcome {
        Ok(()) => event,
        Err(e) => event.with_error(e.clone()),
    }
}

impl State {
    fn registered(&self) -> bool {
        matches!(self.server, ServerView::Holds(_))
    }

    /// The status to register: DOWN while the health check fails or once stop was called
    /// (draining or deregistering), otherwise the host's.
    fn effective_status(&self) -> InstanceStatus {
        if self.health_failure.is_some()
            || self.drain_until.is_some()
            || self.phase == Phase::Stopped
        {
            InstanceStatus::Down
        } else {
            self.status
        }
    }

    /// The registry accepted a registration with `status`: Registered (the first time),
    /// Reregistered (after a loss), StatusChanged (a status other than the last announced).
    fn registration_accepted(&mut self, status: InstanceStatus) -> Vec<Event> {
        let mut events = Vec::new();
        self.last_renewal = Some(Instant::now());
        if !self.ever_registered {
            self.ever_registered = true;
            events.push(Event::client(EventKind::Registered, status, Cause::None));
        } else if self.lost {
            events.push(Event::client(EventKind::Reregistered, status, Cause::None));
        }
        self.lost = false;
        match self.announced_status.replace(status) {
            Some(previous) if previous != status => {
                let (cause, reason) = match &self.status_cause {
                    StatusCause::Host => (Cause::Host, None),
                    StatusCause::HealthCheck(Some(failure)) => (
                        Cause::HealthCheck,
                        Some(format!("health check failing: {failure}")),
                    ),
                    StatusCause::HealthCheck(None) => (
                        Cause::HealthCheck,
                        Some("health check passes again".to_string()),
                    ),
                    StatusCause::Stop => (Cause::Stop, Some("draining before removal".into())),
                };
                let event = Event::client(EventKind::StatusChanged, status, cause);
                events.push(match reason {
                    Some(reason) => event.with_reason(reason),
                    None => event,
                });
            }
            _ => {}
        }
        events
    }

    /// The registry renewed the lease: Reregistered if it had been given up for lost.
    fn heartbeat_accepted(&mut self) -> Vec<Event> {
        self.last_renewal = Some(Instant::now());
        if !std::mem::replace(&mut self.lost, false) {
            return Vec::new();
        }
        let status = self.announced_status.unwrap_or(self.status);
        vec![Event::client(EventKind::Reregistered, status, Cause::None)]
    }

    /// A heartbeat got 404: RegistrationLost, unless the loss is known already.
    fn forgotten_by_registry(&mut self) -> Vec<Event> {
        if !self.ever_registered || std::mem::replace(&mut self.lost, true) {
            return Vec::new();
        }
        let status = self.announced_status.unwrap_or(self.status);
        vec![
            Event::client(EventKind::RegistrationLost, status, Cause::NotFound)
                .with_error(Error::NotFound(FORGOTTEN.into()))
                .with_reason(FORGOTTEN),
        ]
    }

    /// A request failed: RegistrationLost once no registration or heartbeat has been accepted
    /// for the lease duration (the registry evicts the instance after it, if it can).
    fn lease_lost(&mut self, config: &Config, error: &Error) -> Vec<Event> {
        let lease = Duration::from_secs(config.lease_duration_secs.into());
        let expired = self.last_renewal.is_some_and(|t| t.elapsed() >= lease);
        if !self.ever_registered || self.lost || !expired {
            return Vec::new();
        }
        self.lost = true;
        let status = self.announced_status.unwrap_or(self.status);
        vec![
            Event::client(EventKind::RegistrationLost, status, Cause::LeaseExpired)
                .with_error(error.clone())
                .with_reason(format!(
                    "no registration or heartbeat accepted for {} s, the lease duration: the \
                     registry evicts the instance; last error: {error}",
                    lease.as_secs()
                )),
        ]
    }
}

impl Shared {
    fn log(&self, level: LogLevel, message: &str) {
        self.log.log(level, message);
    }

    /// Applies a health verdict: DOWN while it fails, the host's status again when it passes.
    fn apply_health(&self, verdict: CheckResult) {
        let (before, after) = {
            let mut state = self.state.lock();
            if state.phase == Phase::Stopped {
                return;
            }
            let before = state.effective_status();
            state.health_failure = verdict.clone().err();
            let after = state.effective_status();
            if before != after {
                state.status_cause = StatusCause::HealthCheck(verdict.clone().err());
                self.local_change(&mut state);
            }
            (before, after)
        };
        if before != after {
            self.status_changed(before, after, StatusCause::HealthCheck(verdict.err()));
        } else if let Err(why) = verdict {
            // Unhealthy, but the status already says DOWN (the host set it): worth a line still.
            self.log(LogLevel::Warn, &format!("health check failing: {why}"));
        }
    }

    /// A local change (status, metadata, the health verdict) is news for the registry: a
    /// newer lastDirtyTimestamp, registered now rather than after the backoff.
    fn local_change(&self, state: &mut State) {
        state.dirty_timestamp = next_dirty_timestamp(state.dirty_timestamp);
        state.register_not_before = Instant::now();
        self.changed.notify_all();
        self.signal.wake();
    }

    /// The one place where a change of the effective status is announced (called without the
    /// state lock held, after the state changed; the registration follows on the task).
    fn status_changed(&self, from: InstanceStatus, to: InstanceStatus, cause: StatusCause) {
        let why = match &cause {
            StatusCause::Host => "set by the host".to_string(),
            StatusCause::HealthCheck(Some(failure)) => format!("health check failing: {failure}"),
            StatusCause::HealthCheck(None) => "health check passes again".to_string(),
            StatusCause::Stop => "stopping".to_string(),
        };
        let level = match cause {
            StatusCause::HealthCheck(Some(_)) => LogLevel::Warn,
            StatusCause::Host => LogLevel::Debug,
            _ => LogLevel::Info,
        };
        self.log(
            level,
            &format!("status {} -> {} ({why})", from.as_str(), to.as_str()),
        );
    }

    /// Runs a registration or heartbeat. One in flight when stop comes is let finish, so that
    /// the server has handled it before our DELETE (abandoned, it could still be carried out
    /// after the DELETE and leave the instance registered), but only until the stop deadline.
    async fn work<T>(&self, request: impl Future<Output = Result<T>>) -> Result<T> {
        self.signal
            .by_stop_deadline(request)
            .await
            .unwrap_or(Err(Error::ShutDown))
    }

    /// The next heartbeat is due at `next`: its timers are armed now, while that costs no
    /// system call (see `worker::arm_ahead`).
    fn arm_ahead(&self, next: Instant) {
        worker::arm_ahead(next, self.config.timeout, self.config.heartbeat_interval);
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
}
