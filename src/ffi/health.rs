//! C health checks: the glue behind `registrar_client_set_health_check`.

use std::ffi::c_void;
use std::sync::Arc;

use parking_lot::Mutex;

use super::registrar_free_callback;
use crate::health_watch::HealthCheckFn;

/// A host's health check: returns nonzero when the service is healthy, 0 when it is not.
///
/// Called with `user_data` as given, every REGISTRY_HEALTH_INTERVAL seconds, on a thread of
/// registrar's (`registrar-health`, shared by the clients of the process; never the thread
/// that sends heartbeats), never twice at once for one client. registrar waits for it at most
/// REGISTRY_TIMEOUT: a call that takes longer counts as a failure and is left to return on its
/// own; no other call starts before it has, and every interval missed meanwhile counts as a
/// failure too. It must not call `registrar_client_free`. No call starts after
/// `registrar_client_stop` returns (a call still running then is abandoned: its result is
/// ignored).
pub type registrar_health_check = Option<unsafe extern "C" fn(user_data: *mut c_void) -> i32>;

/// A C health check as the health watcher runs it, and the handle that can take back the
/// promise to free its user data (when it is not installed after all).
pub(crate) struct CHealthCheck {
    pub(crate) check: Arc<HealthCheckFn>,
    host: Arc<HostCheck>,
}

impl CHealthCheck {
    /// Not installed: the host keeps its user data, so it must not be freed here.
    pub(crate) fn disarm(self) {
        *self.host.free_user_data.lock() = None;
    }
}

/// Turns a C health check and its user data into the check the health watcher runs; `None`
/// when `check` is NULL (remove the check).
pub(crate) fn c_health_check(
    check: registrar_health_check,
    user_data: *mut c_void,
    free_user_data: registrar_free_callback,
) -> Option<CHealthCheck> {
    let check = check?;
    let host = Arc::new(HostCheck {
        check,
        user_data,
        free_user_data: Mutex::new(free_user_data),
    });
    let called = Arc::clone(&host);
    Some(CHealthCheck {
        check: Arc::new(move || called.call()),
        host,
    })
}

/// A C health check with its user data; frees the user data when dropped (exactly once, after
/// the last call: the runner thread drops its reference only after the call returned).
struct HostCheck {
    check: unsafe extern "C" fn(*mut c_void) -> i32,
    user_data: *mut c_void,
    free_user_data: Mutex<registrar_free_callback>,
}

// SAFETY: the documented contract of registrar_client_set_health_check is that the function
// and its user_data may be used from registrar's health check thread.
unsafe impl Send for HostCheck {}
unsafe impl Sync for HostCheck {}

impl HostCheck {
    fn call(&self) -> Result<(), String> {
        // SAFETY: a valid function and user_data from the host (set_health_check's contract).
        match unsafe { (self.check)(self.user_data) } {
            0 => Err("the health check returned 0 (unhealthy)".to_string()),
            _ => Ok(()),
        }
    }
}

impl Drop for HostCheck {
    fn drop(&mut self) {
        if let Some(free) = self.free_user_data.lock().take() {
            // SAFETY: called once, as promised to the host.
            unsafe { free(self.user_data) };
        }
    }
}
