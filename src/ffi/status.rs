//! Status codes returned by every fallible C function, and their names.

use std::ffi::c_char;

use crate::error::Error;

/// The result of every fallible registrar function. Numbers are stable and never reused.
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum registrar_status {
    /// Success.
    REGISTRAR_OK = 0,
    /// A required pointer argument was NULL.
    REGISTRAR_ERR_NULL_ARGUMENT = 1,
    /// A string argument was not valid UTF-8.
    REGISTRAR_ERR_INVALID_UTF8 = 2,
    /// A setting is missing or malformed; the message names it.
    REGISTRAR_ERR_INVALID_CONFIG = 3,
    /// Another argument was not acceptable (e.g. an unknown status value).
    REGISTRAR_ERR_INVALID_ARGUMENT = 4,
    /// The registry could not be reached (connection refused, DNS, TLS...).
    REGISTRAR_ERR_TRANSPORT = 5,
    /// Something did not happen in time (a request, a wait, a stop).
    REGISTRAR_ERR_TIMEOUT = 6,
    /// The registry refused the credentials (HTTP 401/403).
    REGISTRAR_ERR_UNAUTHORIZED = 7,
    /// The registry does not know the instance (HTTP 404).
    REGISTRAR_ERR_NOT_FOUND = 8,
    /// The registry answered with another error status (400, 5xx); the message quotes it.
    REGISTRAR_ERR_REJECTED = 9,
    /// The client was stopped; it can do nothing more.
    REGISTRAR_ERR_SHUT_DOWN = 10,
    /// The handle was created in the parent process and is used in a fork() child.
    REGISTRAR_ERR_FORKED = 11,
    /// A bug inside registrar was caught at the boundary; the message has details.
    REGISTRAR_ERR_PANIC = 12,
}

use registrar_status::*;

impl registrar_status {
    /// Every status, in numeric order (wrappers and tests enumerate this).
    pub(crate) const ALL: [registrar_status; 13] = [
        REGISTRAR_OK,
        REGISTRAR_ERR_NULL_ARGUMENT,
        REGISTRAR_ERR_INVALID_UTF8,
        REGISTRAR_ERR_INVALID_CONFIG,
        REGISTRAR_ERR_INVALID_ARGUMENT,
        REGISTRAR_ERR_TRANSPORT,
        REGISTRAR_ERR_TIMEOUT,
        REGISTRAR_ERR_UNAUTHORIZED,
        REGISTRAR_ERR_NOT_FOUND,
        REGISTRAR_ERR_REJECTED,
        REGISTRAR_ERR_SHUT_DOWN,
        REGISTRAR_ERR_FORKED,
        REGISTRAR_ERR_PANIC,
    ];

    /// The NUL-terminated name, e.g. "REGISTRAR_ERR_TIMEOUT".
    pub fn name(self) -> &'static [u8] {
        match self {
            REGISTRAR_OK => b"REGISTRAR_OK\0",
            REGISTRAR_ERR_NULL_ARGUMENT => b"REGISTRAR_ERR_NULL_ARGUMENT\0",
            REGISTRAR_ERR_INVALID_UTF8 => b"REGISTRAR_ERR_INVALID_UTF8\0",
            REGISTRAR_ERR_INVALID_CONFIG => b"REGISTRAR_ERR_INVALID_CONFIG\0",
            REGISTRAR_ERR_INVALID_ARGUMENT => b"REGISTRAR_ERR_INVALID_ARGUMENT\0",
            REGISTRAR_ERR_TRANSPORT => b"REGISTRAR_ERR_TRANSPORT\0",
            REGISTRAR_ERR_TIMEOUT => b"REGISTRAR_ERR_TIMEOUT\0",
            REGISTRAR_ERR_UNAUTHORIZED => b"REGISTRAR_ERR_UNAUTHORIZED\0",
            REGISTRAR_ERR_NOT_FOUND => b"REGISTRAR_ERR_NOT_FOUND\0",
            REGISTRAR_ERR_REJECTED => b"REGISTRAR_ERR_REJECTED\0",
            REGISTRAR_ERR_SHUT_DOWN => b"REGISTRAR_ERR_SHUT_DOWN\0",
            REGISTRAR_ERR_FORKED => b"REGISTRAR_ERR_FORKED\0",
            REGISTRAR_ERR_PANIC => b"REGISTRAR_ERR_PANIC\0",
        }
    }
}

/// The status name of an error (e.g. "REGISTRAR_ERR_TRANSPORT"), for the JSON snapshots.
pub(crate) fn error_name(error: &Error) -> &'static str {
    let name = registrar_status::from(error).name();
    std::str::from_utf8(&name[..name.len() - 1]).unwrap_or("REGISTRAR_ERR_PANIC")
}

impl From<&Error> for registrar_status {
    fn from(error: &Error) -> Self {
        match error {
            Error::InvalidConfig(_) => REGISTRAR_ERR_INVALID_CONFIG,
            Error::InvalidArgument(_) => REGISTRAR_ERR_INVALID_ARGUMENT,
            Error::Transport(_) => REGISTRAR_ERR_TRANSPORT,
            Error::Timeout(_) => REGISTRAR_ERR_TIMEOUT,
            Error::Unauthorized(_) => REGISTRAR_ERR_UNAUTHORIZED,
            Error::NotFound(_) => REGISTRAR_ERR_NOT_FOUND,
            Error::Rejected { .. } => REGISTRAR_ERR_REJECTED,
            Error::ShutDown => REGISTRAR_ERR_SHUT_DOWN,
            Error::Forked => REGISTRAR_ERR_FORKED,
            Error::Internal(_) => REGISTRAR_ERR_PANIC,
        }
    }
}

/// The name of a status code, e.g. "REGISTRAR_ERR_TIMEOUT"; "REGISTRAR_UNKNOWN_STATUS" for a
/// number that is not one. Static: never free it. Takes an int so any value is safe to pass.
#[no_mangle]
pub extern "C" fn registrar_status_str(status: i32) -> *const c_char {
    let name: &'static [u8] = registrar_status::ALL
        .iter()
        .find(|s| **s as i32 == status)
        .map_or(b"REGISTRAR_UNKNOWN_STATUS\0", |s| s.name());
    name.as_ptr().cast()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_maps_to_a_distinct_code() {
        let errors = [
            Error::InvalidConfig(String::new()),
            Error::InvalidArgument(String::new()),
            Error::Transport(String::new()),
            Error::Timeout(String::new()),
            Error::Unauthorized(String::new()),
            Error::NotFound(String::new()),
            Error::Rejected {
                status: 500,
                message: String::new(),
            },
            Error::ShutDown,
            Error::Forked,
            Error::Internal(String::new()),
        ];
        let mut codes: Vec<i32> = errors
            .iter()
            .map(|e| registrar_status::from(e) as i32)
            .collect();
        codes.dedup();
        assert_eq!(codes.len(), errors.len());
        assert!(!codes.contains(&0));
        for (i, s) in registrar_status::ALL.iter().enumerate() {
            assert_eq!(*s as i32, i as i32, "codes are dense and stable");
        }
    }
}
