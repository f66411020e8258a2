//! C health checks: the glue behind `registrar_client_set_health_check`, and the reason a
//! failing check can give (`registrar_health_check_set_reason`).
//!
//! A reason travels through a thread-local, not through the check's signature (which stays
//! `int32_t (*)(void *)`): `HostCheck::call` opens a slot on the thread it calls the host's
//! function on, the function fills it during the call, and the slot is closed right after.
//! This holds whichever thread registrar runs checks on, since the call itself is synchronous.

use std::cell::RefCell;
use std::ffi::{c_char, c_void};
use std::sync::Arc;

use parking_lot::Mutex;

use super::status::registrar_status;
use super::strings::input;
use super::{guard, registrar_free_callback};
use crate::config::shorten;
use crate::error::Error;
use crate::health_watch::HealthCheckFn;

/// How every reason a host's check gives starts, so that such failures stay recognisable in
/// logs, events and snapshots (and distinct from registrar's own, e.g. a check that timed out).
const HOST_REASON_PREFIX: &str = "the health check failed: ";

/// The failure reason of a check that returned 0 without giving one.
const NO_REASON: &str = "the health check returned 0 (unhealthy)";

/// Longest reason kept, in characters; the rest is elided. A reason is logged, put in an event
/// and kept in the snapshot: a check that hands over a whole page must not multiply it.
const MAX_REASON_CHARS: usize = 512;

thread_local! {
    /// `Some` while this thread runs a host's check: the reason it gave so far (`None`: none).
    static GIVEN_REASON: RefCell<Option<Option<String>>> = const { RefCell::new(None) };
}

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
///
/// To say why it fails, it calls `registrar_health_check_set_reason` before returning 0; the
/// reason is then what registrar logs, sends as the REGISTRAR_EVENT_STATUS_CHANGED reason and
/// shows as `health.last_failure` in the snapshot ("the health check failed: <reason>";
/// without one, "the health check returned 0 (unhealthy)").
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
        // The slot for this call's reason; whatever was there before (nothing, unless a check
        // ever runs inside another one's call) is put back after.
        let outer = GIVEN_REASON.with(|given| given.replace(Some(None)));
        // SAFETY: a valid function and user_data from the host (set_health_check's contract).
        let healthy = unsafe { (self.check)(self.user_data) };
        let reason = GIVEN_REASON.with(|given| given.replace(outer)).flatten();
        match (healthy, reason) {
            (0, Some(reason)) => Err(format!("{HOST_REASON_PREFIX}{reason}")),
            (0, None) => Err(NO_REASON.to_string()),
            // Healthy after all: a reason given on the way is not a failure's.
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

/// Gives the reason of the failure a health check is about to report: called by a
/// `registrar_health_check` during its call (on the thread registrar calls it on) before it
/// returns 0. The reason becomes "the health check failed: <reason>" in registrar's log, the
/// REGISTRAR_EVENT_STATUS_CHANGED event (cause REGISTRAR_CAUSE_HEALTH_CHECK) and the snapshot's
/// `health.last_failure`. The last reason given in a call counts; an empty one takes an
/// earlier one back. It is discarded if the check returns nonzero. Leading and trailing
/// whitespace is dropped, control characters are escaped and at most 512 characters are kept
/// (the rest is elided). `reason` is copied: it may be freed once this returns. It is shown
/// as given (only the snapshot hides credentials in URLs): keep secrets out of it.
/// Errors: REGISTRAR_ERR_NULL_ARGUMENT, REGISTRAR_ERR_INVALID_UTF8, REGISTRAR_ERR_INVALID_ARGUMENT
/// (called outside a health check's call, or on another thread than the one running it).
#[no_mangle]
pub extern "C" fn registrar_health_check_set_reason(reason: *const c_char) -> registrar_status {
    guard("registrar_health_check_set_reason", || {
        // SAFETY: NULL or a string valid for the call.
        let reason = unsafe { input(reason, "reason") }?;
        let reason = reason.trim();
        let kept = (!reason.is_empty()).then(|| match shorten(reason, MAX_REASON_CHARS) {
            (shown, false) => shown,
            (shown, true) => format!("{shown}... ({} bytes)", reason.len()),
        });
        GIVEN_REASON.with(|given| match given.borrow_mut().as_mut() {
            Some(slot) => {
                *slot = kept;
                Ok(())
            }
            None => Err(Error::InvalidArgument(
                "registrar_health_check_set_reason: not called from a health check (only a \
                 registrar_health_check may call it, during its call, on the thread registrar \
                 calls it on)"
                    .into(),
            )
            .into()),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CString;

    unsafe extern "C" fn gives_reason(user_data: *mut c_void) -> i32 {
        let (healthy, reasons) = &*(user_data as *const (i32, Vec<CString>));
        for reason in reasons {
            assert_eq!(
                registrar_health_check_set_reason(reason.as_ptr()),
                registrar_status::REGISTRAR_OK
            );
        }
        *healthy
    }

    fn run(healthy: i32, reasons: &[&str]) -> Result<(), String> {
        let data = (
            healthy,
            reasons
                .iter()
                .map(|r| CString::new(*r).unwrap())
                .collect::<Vec<_>>(),
        );
        let check =
            c_health_check(Some(gives_reason), &data as *const _ as *mut c_void, None).unwrap();
        (check.check)()
    }

    #[test]
    fn a_failing_check_reports_the_last_reason_it_gave() {
        assert_eq!(
            run(0, &["first", "  db unreachable\n"]),
            Err("the health check failed: db unreachable".into())
        );
        assert_eq!(run(0, &[]), Err(NO_REASON.into()));
        assert_eq!(run(0, &["taken back", ""]), Err(NO_REASON.into()));
        assert_eq!(run(1, &["not a failure"]), Ok(()));
        // The slot closes with the call: nothing leaks into the next one, or outside.
        assert_eq!(run(0, &[]), Err(NO_REASON.into()));
        let late = CString::new("late").unwrap();
        assert_eq!(
            registrar_health_check_set_reason(late.as_ptr()),
            registrar_status::REGISTRAR_ERR_INVALID_ARGUMENT
        );
    }

    unsafe extern "C" fn gives_reason_from_another_thread(user_data: *mut c_void) -> i32 {
        let status = &*(user_data as *const Mutex<Option<registrar_status>>);
        let other = std::thread::spawn(|| {
            let reason = CString::new("from elsewhere").unwrap();
            registrar_health_check_set_reason(reason.as_ptr())
        });
        *status.lock() = other.join().ok();
        0
    }

    #[test]
    fn only_the_thread_running_the_check_can_give_its_reason() {
        let status = Mutex::new(None);
        let check = c_health_check(
            Some(gives_reason_from_another_thread),
            &status as *const _ as *mut c_void,
            None,
        )
        .unwrap();
        assert_eq!((check.check)(), Err(NO_REASON.into()));
        assert_eq!(
            *status.lock(),
            Some(registrar_status::REGISTRAR_ERR_INVALID_ARGUMENT)
        );
    }

    #[test]
    fn long_reasons_are_cut_and_control_characters_escaped() {
        let long = "é".repeat(600);
        let why = run(0, &[&long]).unwrap_err();
        let kept = why
            .strip_prefix(HOST_REASON_PREFIX)
            .and_then(|r| r.strip_suffix("... (1200 bytes)"))
            .unwrap_or_else(|| panic!("{why}"));
        assert_eq!(kept.chars().count(), MAX_REASON_CHARS);
        assert_eq!(
            run(0, &["line 1\nline 2\ttab"]).unwrap_err(),
            "the health check failed: line 1\\nline 2\\ttab"
        );
    }
}
