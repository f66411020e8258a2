//! Events: what a client or a discovery cache tells its one listener about its state changes.
//!
//! ```text
//! client:     registered ─► (status changed)* ─► registration lost ─► re-registered ─► … ─► stopped
//! discovery:  ready ─► (changed)* ─► fetch failing ─► recovered ─► (changed)* …
//! ```
//!
//! Each event is emitted from the single place in `src/agent.rs` or `src/discovery/cache.rs`
//! where that state changes, so an event means the state really changed (no storms):
//!
//! | event               | emitted when                                                                   |
//! |---------------------|--------------------------------------------------------------------------------|
//! | `Registered`        | the registry accepted this process's first registration                        |
//! | `RegistrationLost`  | a heartbeat got 404 (the registry forgot us), or heartbeats failed for longer   |
//! |                     | than the lease (the registry will evict us); once per loss                     |
//! | `Reregistered`      | the first success (registration or heartbeat) after a loss                     |
//! | `StatusChanged`     | the registry accepted a registration with a status other than the last one     |
//! |                     | announced; `cause` says who changed it (the host, the health check, stop's     |
//! |                     | drain)                                                                         |
//! | `Stopped`           | stop finished; `error` says why the registry was not told (None: it was)       |
//! | `DiscoveryReady`    | the first successful fetch                                                     |
//! | `DiscoveryChanged`  | a fetch changed the cached registry (a new version)                            |
//! | `FetchFailing`      | the first failed refresh of a failure streak (not one per retry)               |
//! | `FetchRecovered`    | the first successful refresh after a failure streak                            |
//!
//! `FetchFailing` is also emitted when the very first fetch fails (a registry down at start), and
//! `FetchRecovered` then precedes `DiscoveryReady`: a host that starts against an unreachable
//! registry wants to know that as much as one that loses it later.
//!
//! Delivery ([`Listener`]): on the agent thread, in the order the states changed, never while a
//! lock of the handle is held (the listener may call any function of the handle). After stop
//! returns none is delivered: stop silences the slot the way it silences the logger (waiting for
//! a call in progress). A listener that calls stop only requests it (it runs on the thread that
//! would carry the stop out); the task then finishes and delivers `Stopped` as usual. `Stopped`
//! is always the last event of a started client, delivered exactly once: by the task when it
//! finishes the deregistration, or, if stop gave up waiting for the task (its timeout), by stop
//! itself on the calling thread just before it returns.

use std::sync::Arc;

use crate::error::Error;
use crate::instance::InstanceStatus;
use crate::worker::Hook;

/// What happened. The numbers are the C enum's (`registrar_event_kind`), stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    Registered = 1,
    RegistrationLost = 2,
    Reregistered = 3,
    StatusChanged = 4,
    Stopped = 5,
    DiscoveryReady = 6,
    DiscoveryChanged = 7,
    FetchFailing = 8,
    FetchRecovered = 9,
}

/// Why it happened, where more than one reason is possible. Stable numbers (`registrar_event_cause`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Cause {
    /// No particular cause (or the event has only one).
    #[default]
    None = 0,
    /// A status change made by the host (`set_status`).
    Host = 1,
    /// A status change made by the health check (DOWN when failing, back when healthy).
    HealthCheck = 2,
    /// Registration lost: a heartbeat got 404 (the registry restarted, evicted or deleted us).
    NotFound = 3,
    /// Registration lost: heartbeats failed for longer than the lease duration, so the
    /// registry evicts the instance (or already did).
    LeaseExpired = 4,
    /// A status change made by stop: DOWN for the drain before removal.
    Stop = 5,
}

/// One state change of a handle.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub kind: EventKind,
    /// Client events: the status the registry holds (`Registered`, `Reregistered`,
    /// `StatusChanged`), or the last one it held (`RegistrationLost`); DOWN for `Stopped`.
    /// `Unknown` for discovery events.
    pub status: InstanceStatus,
    pub cause: Cause,
    /// The failure behind `RegistrationLost`, `FetchFailing`, or a `Stopped` that could not
    /// tell the registry; `None` otherwise.
    pub error: Option<Error>,
    /// A sentence for people: the error's message, or what happened. `None` if nothing to add.
    pub reason: Option<String>,
    /// Discovery events: the registry version after the event (0 before the first fetch).
    pub version: u64,
}

impl Event {
    /// A client event with a status.
    pub fn client(kind: EventKind, status: InstanceStatus, cause: Cause) -> Event {
        Event {
            kind,
            status,
            cause,
            error: None,
            reason: None,
            version: 0,
        }
    }

    /// A discovery event at `version`.
    pub fn discovery(kind: EventKind, version: u64) -> Event {
        Event {
            kind,
            status: InstanceStatus::Unknown,
            cause: Cause::None,
            error: None,
            reason: None,
            version,
        }
    }

    /// The same event carrying `error` (its message becomes the reason).
    pub fn with_error(mut self, error: Error) -> Event {
        self.reason = Some(error.to_string());
        self.error = Some(error);
        self
    }

    pub fn with_reason(mut self, reason: impl Into<String>) -> Event {
        self.reason = Some(reason.into());
        self
    }
}

/// The host's listener.
pub type EventFn = dyn Fn(&Event) + Send + Sync;

/// The per-handle listener slot. The handle's task emits into it (never holding a lock); the
/// host sets it, and stop silences it.
#[derive(Default)]
pub(crate) struct Listener {
    hook: Hook<Arc<EventFn>>,
}

impl Listener {
    /// Installs (`Some`) or removes (`None`) the listener.
    pub(crate) fn set(&self, listener: Option<Arc<EventFn>>) {
        self.hook.set(listener);
    }

    /// Delivers `event` (call it with no lock of the handle held).
    pub(crate) fn emit(&self, event: &Event) {
        self.hook.call(|listener| listener(event));
    }

    /// Delivers each event, in order.
    pub(crate) fn emit_all(&self, events: &[Event]) {
        for event in events {
            self.emit(event);
        }
    }

    /// Delivers the last event of the handle (`Stopped`) unless it was delivered already, and
    /// silences the slot: nothing after it.
    pub(crate) fn emit_last(&self, event: &Event) {
        self.hook.call_then_silence(|listener| listener(event));
    }

    /// From now on nothing is delivered; off the agent thread it also waits for a delivery in
    /// progress (see [`Hook::silence`]).
    pub(crate) fn silence(&self) {
        self.hook.silence();
    }

    /// Silences the slot and drops the listener now (a C listener's `free_user_data` runs on
    /// the thread freeing the handle).
    pub(crate) fn release(&self) {
        self.hook.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parking_lot::Mutex;

    fn recorder() -> (Arc<Mutex<Vec<EventKind>>>, Arc<EventFn>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        (seen, Arc::new(move |e: &Event| sink.lock().push(e.kind)))
    }

    #[test]
    fn nothing_is_delivered_after_the_last_event_or_silence() {
        let (seen, f) = recorder();
        let slot = Listener::default();
        slot.set(Some(f));
        let registered = Event::client(EventKind::Registered, InstanceStatus::Up, Cause::None);
        let stopped = Event::client(EventKind::Stopped, InstanceStatus::Down, Cause::None);
        slot.emit(&registered);
        slot.emit_last(&stopped);
        slot.emit_last(&stopped);
        slot.emit(&registered);
        assert_eq!(
            *seen.lock(),
            vec![EventKind::Registered, EventKind::Stopped]
        );

        let (seen, f) = recorder();
        let slot = Listener::default();
        slot.set(Some(f));
        slot.silence();
        slot.emit(&registered);
        slot.emit_last(&stopped);
        assert!(seen.lock().is_empty());
    }

    #[test]
    fn a_panicking_listener_is_contained() {
        let slot = Listener::default();
        slot.set(Some(Arc::new(|_: &Event| panic!("listener bug"))));
        slot.emit(&Event::discovery(EventKind::DiscoveryReady, 1));
    }

    #[test]
    fn an_error_becomes_the_reason() {
        let e = Event::discovery(EventKind::FetchFailing, 3)
            .with_error(Error::Transport("connection refused".into()));
        assert_eq!(
            e.reason.as_deref(),
            Some("registry unreachable: connection refused")
        );
    }
}
