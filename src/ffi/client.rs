//! `registrar_client`: one registered instance and its background thread.

use std::ffi::{c_char, c_void};
use std::sync::Arc;
use std::time::Duration;

use super::strings::{input, optional_input, write_string};
use super::{guard, out_ptr, reference, registrar_config, registrar_status, FfiError};
use crate::agent::{Agent, Phase};
use crate::config::{quote, Config};
use crate::error::Error;
use crate::instance::InstanceStatus;

/// A registration with a Eureka registry, kept alive by registrar's background thread.
///
/// Threads: one per process, `registrar-agent`, shared by every client and discovery handle
/// (each is a task on it). It starts with the first `registrar_client_start` /
/// `registrar_discovery_start` and ends when the last handle is stopped and freed. Host names
/// are resolved on short-lived helper threads (IP addresses need none).
///
/// Thread-safety: every function may be called on the same client from any number of threads
/// at once, except `registrar_client_free`, which must not race any other call on it.
///
/// fork(): a client belongs to the process that created it. In a child process every call
/// returns REGISTRAR_ERR_FORKED and `registrar_client_free` only releases memory (the parent's
/// thread and connections are not touched). Create clients after forking: the first one
/// started in the child starts the child's own background thread.
pub struct registrar_client {
    agent: Agent,
    /// The process that created the client (see fork above).
    pid: u32,
}

/// The status of an instance in the registry.
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum registrar_instance_status {
    REGISTRAR_INSTANCE_UNKNOWN = 0,
    /// Ready to receive traffic.
    REGISTRAR_INSTANCE_UP = 1,
    /// Not able to serve (set on shutdown).
    REGISTRAR_INSTANCE_DOWN = 2,
    /// Starting up; the status a client registers with until told otherwise.
    REGISTRAR_INSTANCE_STARTING = 3,
    /// Taken out of traffic on purpose.
    REGISTRAR_INSTANCE_OUT_OF_SERVICE = 4,
}

/// Where a client is in its lifecycle.
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum registrar_client_state {
    /// Created; `registrar_client_start` not called yet.
    REGISTRAR_STATE_NOT_STARTED = 0,
    /// Started; the registry has not (or no longer) accepted the registration. Retrying.
    REGISTRAR_STATE_REGISTERING = 1,
    /// The registry holds the instance; heartbeats are running.
    REGISTRAR_STATE_REGISTERED = 2,
    /// Stopped: deregistered (or gave up within the stop timeout); nothing more is sent.
    REGISTRAR_STATE_STOPPED = 3,
}

/// Severity of a log message.
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum registrar_log_level {
    REGISTRAR_LOG_ERROR = 0,
    REGISTRAR_LOG_WARN = 1,
    REGISTRAR_LOG_INFO = 2,
    REGISTRAR_LOG_DEBUG = 3,
}

/// A snapshot of a client, filled by `registrar_client_get_info`.
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy)]
pub struct registrar_client_info {
    pub state: registrar_client_state,
    /// The status this process wants the registry to show: DOWN while the health check fails
    /// or the instance drains on stop, otherwise the one set by `registrar_client_set_status`.
    pub status: registrar_instance_status,
    /// The status code of the background thread's most recent failure, REGISTRAR_OK if the
    /// last request succeeded. Its message: `registrar_client_last_error`.
    pub last_error: registrar_status,
    /// Registrations (POST) the registry accepted.
    pub registrations: u64,
    /// Heartbeats (PUT) the registry accepted.
    pub heartbeats: u64,
    /// Requests that failed (unreachable, timeout, rejected).
    pub failed_requests: u64,
}

/// Receives log messages: `user_data` as given, a `registrar_log_level`, and a NUL-terminated
/// UTF-8 message valid only during the call. Called on registrar's background thread (never
/// after `registrar_client_stop` returns). It must return quickly (every handle of the process
/// waits meanwhile) and must not call `registrar_client_free`; it may call
/// `registrar_client_stop`, which then only requests the stop and returns at once. Calls that
/// wait (`registrar_client_wait_registered`, discovery waits) fail at once from a callback.
pub type registrar_log_callback =
    Option<unsafe extern "C" fn(user_data: *mut c_void, level: i32, message: *const c_char)>;

/// Releases `user_data`; called exactly once, after the last call of the log callback.
pub type registrar_free_callback = Option<unsafe extern "C" fn(user_data: *mut c_void)>;

/// Borrows a client, refusing NULL and handles inherited through fork().
///
/// # Safety
/// `client` must be NULL or a live client from `registrar_client_new`.
unsafe fn client_ref<'a>(
    client: *const registrar_client,
) -> Result<&'a registrar_client, FfiError> {
    let client = reference(client, "client")?;
    if client.pid != std::process::id() {
        return Err(Error::Forked.into());
    }
    Ok(client)
}

/// Validates the config and creates a client (and its HTTP client) without sending anything.
/// Writes `*out` only on success; free it with `registrar_client_free`. The config is only
/// read during the call.
/// The TLS files (REGISTRY_CA_FILE, REGISTRY_CLIENT_CERT, REGISTRY_CLIENT_KEY, and for https
/// registries the OS trust store or SSL_CERT_FILE / SSL_CERT_DIR) are read and checked here.
/// Errors: REGISTRAR_ERR_NULL_ARGUMENT, REGISTRAR_ERR_INVALID_CONFIG (the message names the
/// setting and what is wrong; passwords never appear), REGISTRAR_ERR_TRANSPORT (the HTTP
/// client could not be created).
#[no_mangle]
pub extern "C" fn registrar_client_new(
    config: *const registrar_config,
    out: *mut *mut registrar_client,
) -> registrar_status {
    guard("registrar_client_new", || {
        // SAFETY: NULL or a live config, per the documented contract.
        let config = unsafe { reference(config, "config") }?;
        let out = out_ptr(out, "out")?;
        let agent = Agent::new(Config::from_settings(&config.settings)?)?;
        let client = Box::new(registrar_client {
            agent,
            pid: std::process::id(),
        });
        // SAFETY: out was checked non-null.
        unsafe { *out = Box::into_raw(client) };
        Ok(())
    })
}

/// Sends the client's log messages of `max_level` or more severe to `callback` (NULL removes
/// the current one). Replacing or removing waits for a call of the old callback in progress
/// and calls its `free_user_data` on this thread before returning (called from a callback it
/// does not wait), so do not call it while holding a lock the callback takes. The library logs
/// nothing unless asked. Failures are logged once per distinct problem, not once per retry. On error the
/// callback is not installed and `free_user_data` is not called.
/// Errors: REGISTRAR_ERR_NULL_ARGUMENT, REGISTRAR_ERR_INVALID_ARGUMENT (bad level), REGISTRAR_ERR_FORKED.
#[no_mangle]
pub extern "C" fn registrar_client_set_logger(
    client: *const registrar_client,
    callback: registrar_log_callback,
    user_data: *mut c_void,
    free_user_data: registrar_free_callback,
    max_level: i32,
) -> registrar_status {
    guard("registrar_client_set_logger", || {
        // SAFETY: NULL or a live client.
        let client = unsafe { client_ref(client) }?;
        client.agent.set_logger(super::logger::c_logger(
            callback,
            user_data,
            free_user_data,
            max_level,
        )?);
        Ok(())
    })
}

/// Sets the client's health check (NULL removes it). Replacing or removing a check waits for a
/// call of the old one in progress (at most REGISTRY_TIMEOUT; from inside a check or another
/// registrar callback it does not wait) and then calls its `free_user_data` on this thread
/// before returning, so do not call it while holding a lock the check takes; no call of the
/// old check starts after it returns. Once started, the client runs it every REGISTRY_HEALTH_INTERVAL seconds
/// (see `registrar_health_check` for the thread and the bounds): after REGISTRY_HEALTH_THRESHOLD
/// failures in a row the instance is registered DOWN; after as many passes, with the status
/// set by `registrar_client_set_status` again (which keeps working meanwhile: it is the status
/// shown while the check passes). It replaces REGISTRY_HEALTH_URL while set. The verdict starts
/// over as healthy. On error the check is not installed and `free_user_data` is not called.
/// Errors: REGISTRAR_ERR_NULL_ARGUMENT, REGISTRAR_ERR_SHUT_DOWN, REGISTRAR_ERR_FORKED.
#[no_mangle]
pub extern "C" fn registrar_client_set_health_check(
    client: *const registrar_client,
    check: super::registrar_health_check,
    user_data: *mut c_void,
    free_user_data: registrar_free_callback,
) -> registrar_status {
    guard("registrar_client_set_health_check", || {
        // SAFETY: NULL or a live client.
        let client = unsafe { client_ref(client) }?;
        // Built only once the client is known good: dropping it would free the user data.
        let check = super::health::c_health_check(check, user_data, free_user_data);
        let installed = client
            .agent
            .set_health_check(check.as_ref().map(|c| Arc::clone(&c.check)));
        if let (Err(_), Some(check)) = (&installed, check) {
            check.disarm();
        }
        installed?;
        Ok(())
    })
}

/// Sends the client's events to `listener` (NULL removes the current one; replacing or removing
/// waits for its call in progress and calls its `free_user_data` before returning, as
/// `registrar_client_set_logger` does): REGISTRAR_EVENT_REGISTERED, _REGISTRATION_LOST (with
/// the reason), _REREGISTERED, _STATUS_CHANGED (with the cause: host or health check) and,
/// last, _STOPPED. See `registrar_event_callback` for the thread and what it may call. Never
/// called after `registrar_client_stop` returns. Install it before `registrar_client_start` to
/// see every event. On error nothing is installed and `free_user_data` is not called.
/// Errors: REGISTRAR_ERR_NULL_ARGUMENT, REGISTRAR_ERR_FORKED.
#[no_mangle]
pub extern "C" fn registrar_client_set_event_listener(
    client: *const registrar_client,
    listener: super::registrar_event_callback,
    user_data: *mut c_void,
    free_user_data: registrar_free_callback,
) -> registrar_status {
    guard("registrar_client_set_event_listener", || {
        // SAFETY: NULL or a live client.
        let client = unsafe { client_ref(client) }?;
        client
            .agent
            .set_event_listener(super::events::c_event_listener(
                listener,
                user_data,
                free_user_data,
            ));
        Ok(())
    })
}

/// Starts the client (its task on the background thread, starting that thread if it is the
/// process's first) and returns at once: it registers (status STARTING unless
/// set otherwise), retrying with backoff while the registry is unreachable, then heartbeats.
/// Calling it again while running does nothing.
/// Errors: REGISTRAR_ERR_NULL_ARGUMENT, REGISTRAR_ERR_SHUT_DOWN (already stopped),
/// REGISTRAR_ERR_FORKED.
#[no_mangle]
pub extern "C" fn registrar_client_start(client: *const registrar_client) -> registrar_status {
    guard("registrar_client_start", || {
        // SAFETY: NULL or a live client.
        unsafe { client_ref(client) }?.agent.start()?;
        Ok(())
    })
}

/// Blocks until the registry has accepted a registration carrying the client's latest status
/// and metadata, or `timeout_ms` passes. Use it after start, and after a status change when
/// the caller must know the registry shows it.
/// Errors: REGISTRAR_ERR_TIMEOUT (the message says why: not started, or the background
/// thread's last error, e.g. unreachable or wrong credentials), REGISTRAR_ERR_SHUT_DOWN,
/// REGISTRAR_ERR_NULL_ARGUMENT, REGISTRAR_ERR_FORKED.
#[no_mangle]
pub extern "C" fn registrar_client_wait_registered(
    client: *const registrar_client,
    timeout_ms: u32,
) -> registrar_status {
    guard("registrar_client_wait_registered", || {
        // SAFETY: NULL or a live client.
        unsafe { client_ref(client) }?
            .agent
            .wait_registered(Duration::from_millis(timeout_ms.into()))?;
        Ok(())
    })
}

/// Sets the status the registry should show: a `registrar_instance_status` other than
/// UNKNOWN (UP when ready for traffic). Returns without waiting; the background thread
/// re-registers at once (the Eureka protocol carries status changes by registration).
/// Before start it sets the status of the first registration.
/// Errors: REGISTRAR_ERR_INVALID_ARGUMENT, REGISTRAR_ERR_SHUT_DOWN, REGISTRAR_ERR_NULL_ARGUMENT,
/// REGISTRAR_ERR_FORKED.
#[no_mangle]
pub extern "C" fn registrar_client_set_status(
    client: *const registrar_client,
    status: i32,
) -> registrar_status {
    guard("registrar_client_set_status", || {
        // SAFETY: NULL or a live client.
        let client = unsafe { client_ref(client) }?;
        let status = match status {
            1 => InstanceStatus::Up,
            2 => InstanceStatus::Down,
            3 => InstanceStatus::Starting,
            4 => InstanceStatus::OutOfService,
            0 => InstanceStatus::Unknown,
            other => {
                return Err(Error::InvalidArgument(format!(
                    "{other} is not a registrar_instance_status"
                ))
                .into())
            }
        };
        client.agent.set_status(status)?;
        Ok(())
    })
}

/// Sets metadata `key` to `value`, or removes it when `value` is NULL. Reaches the registry
/// by re-registration, without waiting. Keys: letters, digits, '_', '-', '.', starting with
/// a letter or '_'.
/// Errors: REGISTRAR_ERR_INVALID_ARGUMENT (bad key), REGISTRAR_ERR_INVALID_UTF8,
/// REGISTRAR_ERR_SHUT_DOWN, REGISTRAR_ERR_NULL_ARGUMENT, REGISTRAR_ERR_FORKED.
#[no_mangle]
pub extern "C" fn registrar_client_set_metadata(
    client: *const registrar_client,
    key: *const c_char,
    value: *const c_char,
) -> registrar_status {
    guard("registrar_client_set_metadata", || {
        // SAFETY: NULL or a live client; strings valid for the call.
        let client = unsafe { client_ref(client) }?;
        let key = unsafe { input(key, "key") }?;
        let value = unsafe { optional_input(value, "value") }?;
        client.agent.set_metadata(key, value)?;
        Ok(())
    })
}

/// Copies the value of metadata `key` (as this process holds it) into `buf`, snprintf-style;
/// `*out_len` receives its full length. Errors: REGISTRAR_ERR_NOT_FOUND (no such key),
/// REGISTRAR_ERR_NULL_ARGUMENT, REGISTRAR_ERR_INVALID_UTF8, REGISTRAR_ERR_FORKED.
#[no_mangle]
pub extern "C" fn registrar_client_get_metadata(
    client: *const registrar_client,
    key: *const c_char,
    buf: *mut c_char,
    buf_len: usize,
    out_len: *mut usize,
) -> registrar_status {
    guard("registrar_client_get_metadata", || {
        // SAFETY: NULL or a live client; key valid for the call.
        let client = unsafe { client_ref(client) }?;
        let key = unsafe { input(key, "key") }?;
        let value = client
            .agent
            .metadata()
            .remove(key)
            .ok_or_else(|| Error::NotFound(format!("no metadata key {}", quote(key))))?;
        write_string(&value, buf, buf_len, out_len)
    })
}

/// Fills `*out` with the client's state, status, counters and last error code.
/// Errors: REGISTRAR_ERR_NULL_ARGUMENT, REGISTRAR_ERR_FORKED.
#[no_mangle]
pub extern "C" fn registrar_client_get_info(
    client: *const registrar_client,
    out: *mut registrar_client_info,
) -> registrar_status {
    guard("registrar_client_get_info", || {
        // SAFETY: NULL or a live client.
        let client = unsafe { client_ref(client) }?;
        let out = out_ptr(out, "out")?;
        let snapshot = client.agent.snapshot();
        let info = registrar_client_info {
            state: match snapshot.phase {
                Phase::NotStarted => registrar_client_state::REGISTRAR_STATE_NOT_STARTED,
                Phase::Registering => registrar_client_state::REGISTRAR_STATE_REGISTERING,
                Phase::Registered => registrar_client_state::REGISTRAR_STATE_REGISTERED,
                Phase::Stopped => registrar_client_state::REGISTRAR_STATE_STOPPED,
            },
            status: match snapshot.status {
                InstanceStatus::Up => registrar_instance_status::REGISTRAR_INSTANCE_UP,
                InstanceStatus::Down => registrar_instance_status::REGISTRAR_INSTANCE_DOWN,
                InstanceStatus::Starting => registrar_instance_status::REGISTRAR_INSTANCE_STARTING,
                InstanceStatus::OutOfService => {
                    registrar_instance_status::REGISTRAR_INSTANCE_OUT_OF_SERVICE
                }
                InstanceStatus::Unknown => registrar_instance_status::REGISTRAR_INSTANCE_UNKNOWN,
            },
            last_error: snapshot
                .last_error
                .as_ref()
                .map_or(registrar_status::REGISTRAR_OK, registrar_status::from),
            registrations: snapshot.counters.registrations,
            heartbeats: snapshot.counters.heartbeats,
            failed_requests: snapshot.counters.failed_requests,
        };
        // SAFETY: out was checked non-null and points to caller-owned memory.
        unsafe { out.write(info) };
        Ok(())
    })
}

/// Copies the message of the background thread's most recent failure ("" if the last request
/// succeeded) into `buf`, snprintf-style; `*out_len` receives its full length.
/// Errors: REGISTRAR_ERR_NULL_ARGUMENT, REGISTRAR_ERR_FORKED.
#[no_mangle]
pub extern "C" fn registrar_client_last_error(
    client: *const registrar_client,
    buf: *mut c_char,
    buf_len: usize,
    out_len: *mut usize,
) -> registrar_status {
    guard("registrar_client_last_error", || {
        // SAFETY: NULL or a live client.
        let client = unsafe { client_ref(client) }?;
        let message = client
            .agent
            .snapshot()
            .last_error
            .map(|e| e.to_string())
            .unwrap_or_default();
        write_string(&message, buf, buf_len, out_len)
    })
}

/// Copies a JSON snapshot of the client's state into `buf`, snprintf-style; `*out_len`
/// receives its full length. For debugging: phase, status, counters, the last error (code and
/// message, without credentials), the server in use, and times (ms since the Unix epoch).
/// Fields may be added in later versions.
/// Errors: REGISTRAR_ERR_NULL_ARGUMENT, REGISTRAR_ERR_FORKED.
#[no_mangle]
pub extern "C" fn registrar_client_snapshot_json(
    client: *const registrar_client,
    buf: *mut c_char,
    buf_len: usize,
    out_len: *mut usize,
) -> registrar_status {
    guard("registrar_client_snapshot_json", || {
        // SAFETY: NULL or a live client.
        let client = unsafe { client_ref(client) }?;
        let json = crate::snapshot::client_json(&client.agent, super::status::error_name);
        write_string(&json, buf, buf_len, out_len)
    })
}

/// Copies the instance id (e.g. "host:app:8080") into `buf`, snprintf-style; `*out_len`
/// receives its full length. Errors: REGISTRAR_ERR_NULL_ARGUMENT, REGISTRAR_ERR_FORKED.
#[no_mangle]
pub extern "C" fn registrar_client_instance_id(
    client: *const registrar_client,
    buf: *mut c_char,
    buf_len: usize,
    out_len: *mut usize,
) -> registrar_status {
    guard("registrar_client_instance_id", || {
        // SAFETY: NULL or a live client.
        let client = unsafe { client_ref(client) }?;
        write_string(&client.agent.config().instance_id, buf, buf_len, out_len)
    })
}

/// Copies the application name as registered (upper-case) into `buf`, snprintf-style;
/// `*out_len` receives its full length. Errors: REGISTRAR_ERR_NULL_ARGUMENT, REGISTRAR_ERR_FORKED.
#[no_mangle]
pub extern "C" fn registrar_client_app_name(
    client: *const registrar_client,
    buf: *mut c_char,
    buf_len: usize,
    out_len: *mut usize,
) -> registrar_status {
    guard("registrar_client_app_name", || {
        // SAFETY: NULL or a live client.
        let client = unsafe { client_ref(client) }?;
        write_string(&client.agent.config().app_name, buf, buf_len, out_len)
    })
}

/// Stops the client: marks the instance DOWN locally, deregisters it (DELETE) and ends its
/// task, all within `timeout_ms` (0: REGISTRY_DRAIN_SECONDS + REGISTRY_TIMEOUT). A client never
/// started just becomes stopped. Without a drain the DELETE is the only request; if it fails,
/// the instance is registered DOWN (so traffic stops) and the DELETE retried until the deadline. With REGISTRY_DRAIN_SECONDS, the instance is registered DOWN at once
/// and stays registered, heartbeating, for the drain, so callers' caches drop it before the
/// DELETE; a `timeout_ms` shorter than drain + REGISTRY_TIMEOUT cuts the drain short, keeping
/// REGISTRY_TIMEOUT (at most half of `timeout_ms`) for the DELETE. No health check starts after
/// it returns. After it returns, no request for this instance leaves the process (a
/// request in flight, on any URL, is abandoned at the deadline) and the log callback is not
/// called any more. Called from the log callback it only requests the stop.
/// It returns REGISTRAR_OK only when the registry was told (the DELETE succeeded, or the
/// instance was never registered); otherwise the error of the DELETE, its message naming what
/// failed (the DELETE and the server's answer, and whether the instance is listed as DOWN): the instance
/// may stay listed until its lease expires. Calling it again returns the same outcome.
/// Errors: REGISTRAR_ERR_TIMEOUT (no answer in time), REGISTRAR_ERR_REJECTED (the registry
/// answered an error status), REGISTRAR_ERR_TRANSPORT (unreachable),
/// REGISTRAR_ERR_UNAUTHORIZED, REGISTRAR_ERR_NULL_ARGUMENT, REGISTRAR_ERR_FORKED.
#[no_mangle]
pub extern "C" fn registrar_client_stop(
    client: *const registrar_client,
    timeout_ms: u32,
) -> registrar_status {
    guard("registrar_client_stop", || {
        // SAFETY: NULL or a live client.
        let client = unsafe { client_ref(client) }?;
        let timeout = match timeout_ms {
            0 => client.agent.config().default_stop_timeout(),
            ms => Duration::from_millis(ms.into()),
        };
        client.agent.stop(timeout)?;
        Ok(())
    })
}

/// Frees a client, stopping it first if it is running (bounded as `registrar_client_stop` with
/// timeout 0: the drain plus REGISTRY_TIMEOUT). NULL is
/// a no-op. In a fork() child it only releases memory. Must not race other calls on the client
/// and must not be called from its log callback.
#[no_mangle]
pub extern "C" fn registrar_client_free(client: *mut registrar_client) {
    // SAFETY: NULL or from Box::into_raw in registrar_client_new, freed once (caller contract).
    unsafe { super::free_handle(client, |c| c.pid) };
}
