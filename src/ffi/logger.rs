//! C log callbacks: the glue shared by `registrar_client_set_logger` and
//! `registrar_discovery_set_logger`.

use std::ffi::{c_char, c_void, CString};
use std::sync::Arc;

use super::{registrar_free_callback, registrar_log_callback, FfiError};
use crate::error::Error;
use crate::worker::{LogFn, LogLevel};

/// Turns a C callback, its user data and a `registrar_log_level` into the logger a background
/// thread calls; `None` when `callback` is NULL (remove the logger).
pub(crate) fn c_logger(
    callback: registrar_log_callback,
    user_data: *mut c_void,
    free_user_data: registrar_free_callback,
    max_level: i32,
) -> Result<Option<(LogLevel, Arc<LogFn>)>, FfiError> {
    let level = match max_level {
        0 => LogLevel::Error,
        1 => LogLevel::Warn,
        2 => LogLevel::Info,
        3 => LogLevel::Debug,
        other => {
            return Err(Error::InvalidArgument(format!(
                "log level {other} is not a registrar_log_level"
            ))
            .into())
        }
    };
    let Some(callback) = callback else {
        return Ok(None);
    };
    let sink = CallbackSink {
        callback,
        user_data,
        free_user_data,
    };
    Ok(Some((
        level,
        Arc::new(move |level: LogLevel, message: &str| sink.call(level, message)),
    )))
}

/// A C log callback with its user data; frees the user data when dropped (exactly once,
/// after the last call, because the background thread drops its last reference only then).
struct CallbackSink {
    callback: unsafe extern "C" fn(*mut c_void, i32, *const c_char),
    user_data: *mut c_void,
    free_user_data: registrar_free_callback,
}

// SAFETY: the documented contract of the set_logger functions is that the callback and its
// user_data may be used from the handle's background thread.
unsafe impl Send for CallbackSink {}
unsafe impl Sync for CallbackSink {}

impl CallbackSink {
    fn call(&self, level: LogLevel, message: &str) {
        let message = CString::new(message.replace('\0', " ")).unwrap_or_default();
        // SAFETY: a valid callback and user_data from the host; the string lives for the call.
        unsafe { (self.callback)(self.user_data, level as i32, message.as_ptr()) };
    }
}

impl Drop for CallbackSink {
    fn drop(&mut self) {
        if let Some(free) = self.free_user_data {
            // SAFETY: called once, as promised to the host.
            unsafe { free(self.user_data) };
        }
    }
}
