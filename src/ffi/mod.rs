//! The C boundary: the only module with `extern "C"`, raw pointers and `unsafe`.
//!
//! Every exported function goes through [`guard`]: it clears the thread-local last error,
//! catches panics (so none crosses into C), and turns errors into a status code plus a message.
//! Pointer arguments are checked by [`reference`] / [`strings::input`], never ad hoc.
//!
//! C names keep the `registrar_` prefix in Rust too, so grep, backtraces and docs agree.
#![allow(non_camel_case_types)]
// Exported functions take raw pointers from C, which cannot see a Rust `unsafe`; their
// contracts (non-NULL or NULL-checked, live handles) are documented in the header instead.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

mod client;
mod config;
mod discovery;
mod events;
mod health;
mod last_error;
mod logger;
mod metrics;
mod settings;
mod status;
mod strings;
mod version;

use std::panic::{catch_unwind, AssertUnwindSafe};

pub use client::*;
pub use config::*;
pub use discovery::*;
pub use events::*;
pub use health::{registrar_health_check, registrar_health_check_set_reason};
pub use last_error::registrar_last_error_message;
pub use metrics::registrar_metrics_text;
pub use settings::*;
pub use status::{registrar_status, registrar_status_str};
pub use version::*;

use crate::error::Error;
use crate::worker::panic_message;

/// Why a call failed before or inside the core.
pub(crate) enum FfiError {
    Null(&'static str),
    Utf8(&'static str),
    Core(Error),
}

impl From<Error> for FfiError {
    fn from(error: Error) -> Self {
        FfiError::Core(error)
    }
}

/// Runs the body of an exported function: clears the last error, catches panics, maps errors.
pub(crate) fn guard(
    function: &'static str,
    body: impl FnOnce() -> Result<(), FfiError>,
) -> registrar_status {
    last_error::clear();
    let (status, message) = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => return registrar_status::REGISTRAR_OK,
        Ok(Err(FfiError::Null(name))) => (
            registrar_status::REGISTRAR_ERR_NULL_ARGUMENT,
            format!("{function}: argument '{name}' is NULL"),
        ),
        Ok(Err(FfiError::Utf8(name))) => (
            registrar_status::REGISTRAR_ERR_INVALID_UTF8,
            format!("{function}: argument '{name}' is not valid UTF-8"),
        ),
        Ok(Err(FfiError::Core(error))) => (registrar_status::from(&error), error.to_string()),
        Err(panic) => (
            registrar_status::REGISTRAR_ERR_PANIC,
            format!(
                "{function}: internal error (please report): {}",
                panic_message(&panic)
            ),
        ),
    };
    last_error::set(message);
    status
}

/// Frees a handle made with `Box::into_raw`, as every `registrar_*_free` does: NULL is a no-op,
/// panics stay inside, and in a fork() child (`created_by` is another process) the memory is
/// leaked instead, because the parent's threads and connections do not exist here and joining
/// or dropping them would hang.
///
/// # Safety
/// `ptr` must be NULL or come from `Box::into_raw` and not have been freed.
pub(crate) unsafe fn free_handle<T>(ptr: *mut T, created_by: impl Fn(&T) -> u32) {
    if ptr.is_null() {
        return;
    }
    let _ = catch_unwind(AssertUnwindSafe(|| {
        let handle = Box::from_raw(ptr);
        if created_by(&handle) != std::process::id() {
            std::mem::forget(handle);
        }
    }));
}

/// Borrows a handle argument, checking NULL.
///
/// # Safety
/// `ptr` must be NULL or point to a live `T` created by registrar and not freed.
pub(crate) unsafe fn reference<'a, T>(
    ptr: *const T,
    name: &'static str,
) -> Result<&'a T, FfiError> {
    ptr.as_ref().ok_or(FfiError::Null(name))
}

/// Checks an output pointer argument for NULL.
pub(crate) fn out_ptr<T>(ptr: *mut T, name: &'static str) -> Result<*mut T, FfiError> {
    if ptr.is_null() {
        Err(FfiError::Null(name))
    } else {
        Ok(ptr)
    }
}
