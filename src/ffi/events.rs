//! C event listeners: the struct a listener receives and the glue shared by
//! `registrar_client_set_event_listener` and `registrar_discovery_set_event_listener`.

use std::ffi::{c_char, c_void, CString};
use std::sync::Arc;

use super::discovery::instance_status;
use super::{registrar_free_callback, registrar_instance_status, registrar_status};
use crate::events::{Cause, Event, EventFn, EventKind};

/// What happened to a client or a discovery cache (`registrar_event.kind`). Stable numbers.
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum registrar_event_kind {
    /// Client: the registry accepted the first registration. `status`: the status registered.
    REGISTRAR_EVENT_REGISTERED = 1,
    /// Client: the registry no longer holds the instance: a heartbeat got 404 (cause
    /// REGISTRAR_CAUSE_NOT_FOUND: the registry restarted, evicted or deleted it), or nothing
    /// was accepted for the lease duration (REGISTRAR_CAUSE_LEASE_EXPIRED). `error` and
    /// `reason` say why. The client keeps re-registering; once per loss.
    REGISTRAR_EVENT_REGISTRATION_LOST = 2,
    /// Client: the registry holds the instance again after a loss. `status`: its status.
    REGISTRAR_EVENT_REREGISTERED = 3,
    /// Client: the registry accepted a new status (`status`); `cause` says who changed it
    /// (REGISTRAR_CAUSE_HOST, REGISTRAR_CAUSE_HEALTH_CHECK, or REGISTRAR_CAUSE_STOP for the
    /// drain); `reason` says why for the health check (its failure) and the drain.
    REGISTRAR_EVENT_STATUS_CHANGED = 4,
    /// Client: stop finished; the last event. `error` is REGISTRAR_OK when the registry was
    /// told (or had nothing to be told), else why not (`reason` names what failed).
    REGISTRAR_EVENT_STOPPED = 5,
    /// Discovery: the first fetch succeeded. `version`: 1.
    REGISTRAR_EVENT_DISCOVERY_READY = 6,
    /// Discovery: a refresh changed the cached registry. `version`: the new version.
    REGISTRAR_EVENT_DISCOVERY_CHANGED = 7,
    /// Discovery: a refresh failed after success (or the first fetch failed); once per
    /// failure streak, not per retry. `error`/`reason`: the failure. The last good registry
    /// is kept.
    REGISTRAR_EVENT_DISCOVERY_FETCH_FAILING = 8,
    /// Discovery: a refresh succeeded after a failure streak.
    REGISTRAR_EVENT_DISCOVERY_RECOVERED = 9,
}

/// Why an event happened (`registrar_event.cause`), where it can have several causes.
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum registrar_event_cause {
    REGISTRAR_CAUSE_NONE = 0,
    /// A status change made by the host (`registrar_client_set_status`).
    REGISTRAR_CAUSE_HOST = 1,
    /// A status change made by the health check.
    REGISTRAR_CAUSE_HEALTH_CHECK = 2,
    /// Registration lost: a heartbeat got 404.
    REGISTRAR_CAUSE_NOT_FOUND = 3,
    /// Registration lost: no registration or heartbeat accepted for the lease duration.
    REGISTRAR_CAUSE_LEASE_EXPIRED = 4,
    /// A status change made by stop: DOWN for the drain (REGISTRY_DRAIN_SECONDS).
    REGISTRAR_CAUSE_STOP = 5,
}

/// One event, passed to a `registrar_event_callback`. The struct and `reason` are valid only
/// during the call: copy what you keep. Fields may be appended in later versions (the library
/// always allocates the struct; never allocate or copy it by value into a fixed-size ABI).
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy)]
pub struct registrar_event {
    pub kind: registrar_event_kind,
    /// Client events: the status the registry holds (for REGISTRATION_LOST: the last one it
    /// held; for STOPPED: DOWN). Discovery events: REGISTRAR_INSTANCE_UNKNOWN.
    pub status: registrar_instance_status,
    pub cause: registrar_event_cause,
    /// REGISTRAR_OK, or the code of the failure behind REGISTRATION_LOST, FETCH_FAILING or a
    /// STOPPED that could not tell the registry.
    pub error: registrar_status,
    /// A NUL-terminated UTF-8 sentence (the failure's message, without credentials), or NULL.
    pub reason: *const c_char,
    /// Discovery events: the registry version after the event. 0 for client events.
    pub version: u64,
}

/// Receives a handle's events: `user_data` as given and the event, valid only during the
/// call. Called on registrar's background thread, in the order the states changed, never
/// after the handle's stop returns (except: when a stop gave up waiting for the background
/// thread, the client's STOPPED is delivered on the thread calling stop, before it returns).
/// It must return quickly (every handle of the process waits meanwhile) and must not free the
/// handle; it may call the handle's other functions, and stop, which then only requests the
/// stop (STOPPED follows when it is done). Calls that wait fail at once from a listener.
pub type registrar_event_callback =
    Option<unsafe extern "C" fn(user_data: *mut c_void, event: *const registrar_event)>;

impl From<EventKind> for registrar_event_kind {
    fn from(kind: EventKind) -> Self {
        use registrar_event_kind::*;
        match kind {
            EventKind::Registered => REGISTRAR_EVENT_REGISTERED,
            EventKind::RegistrationLost => REGISTRAR_EVENT_REGISTRATION_LOST,
            EventKind::Reregistered => REGISTRAR_EVENT_REREGISTERED,
            EventKind::StatusChanged => REGISTRAR_EVENT_STATUS_CHANGED,
            EventKind::Stopped => REGISTRAR_EVENT_STOPPED,
            EventKind::DiscoveryReady => REGISTRAR_EVENT_DISCOVERY_READY,
            EventKind::DiscoveryChanged => REGISTRAR_EVENT_DISCOVERY_CHANGED,
            EventKind::FetchFailing => REGISTRAR_EVENT_DISCOVERY_FETCH_FAILING,
            EventKind::FetchRecovered => REGISTRAR_EVENT_DISCOVERY_RECOVERED,
        }
    }
}

impl From<Cause> for registrar_event_cause {
    fn from(cause: Cause) -> Self {
        use registrar_event_cause::*;
        match cause {
            Cause::None => REGISTRAR_CAUSE_NONE,
            Cause::Host => REGISTRAR_CAUSE_HOST,
            Cause::HealthCheck => REGISTRAR_CAUSE_HEALTH_CHECK,
            Cause::NotFound => REGISTRAR_CAUSE_NOT_FOUND,
            Cause::LeaseExpired => REGISTRAR_CAUSE_LEASE_EXPIRED,
            Cause::Stop => REGISTRAR_CAUSE_STOP,
        }
    }
}

/// Turns a C listener and its user data into the function the core calls; `None` when
/// `callback` is NULL (remove the listener).
pub(crate) fn c_event_listener(
    callback: registrar_event_callback,
    user_data: *mut c_void,
    free_user_data: registrar_free_callback,
) -> Option<Arc<EventFn>> {
    let callback = callback?;
    let sink = EventSink {
        callback,
        user_data,
        free_user_data,
    };
    Some(Arc::new(move |event: &Event| sink.call(event)))
}

/// A C listener with its user data; frees the user data when dropped (exactly once, after the
/// last call: the handle drops its last reference only then).
struct EventSink {
    callback: unsafe extern "C" fn(*mut c_void, *const registrar_event),
    user_data: *mut c_void,
    free_user_data: registrar_free_callback,
}

// SAFETY: the documented contract of the set_event_listener functions is that the listener and
// its user_data may be used from the background thread (and the thread calling stop).
unsafe impl Send for EventSink {}
unsafe impl Sync for EventSink {}

impl EventSink {
    fn call(&self, event: &Event) {
        let reason = event
            .reason
            .as_ref()
            .map(|r| CString::new(r.replace('\0', " ")).unwrap_or_default());
        let c_event = registrar_event {
            kind: event.kind.into(),
            status: instance_status(event.status),
            cause: event.cause.into(),
            error: event
                .error
                .as_ref()
                .map_or(registrar_status::REGISTRAR_OK, registrar_status::from),
            reason: reason.as_ref().map_or(std::ptr::null(), |r| r.as_ptr()),
            version: event.version,
        };
        // SAFETY: a valid callback and user_data from the host; the event and its string live
        // for the call.
        unsafe { (self.callback)(self.user_data, &c_event) };
    }
}

impl Drop for EventSink {
    fn drop(&mut self) {
        if let Some(free) = self.free_user_data {
            // SAFETY: called once, as promised to the host.
            unsafe { free(self.user_data) };
        }
    }
}
