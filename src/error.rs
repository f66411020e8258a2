//! The one error type of the core. The C boundary maps each variant to a status code
//! (`src/ffi/status.rs`); messages are written for people and never contain credentials.

use std::fmt;

/// Everything that can go wrong in registrar's core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// A setting is missing or malformed. The message names the setting and the problem.
    InvalidConfig(String),
    /// An argument of an API call is not acceptable (e.g. status UNKNOWN).
    InvalidArgument(String),
    /// The registry could not be reached (connection refused, DNS, TLS, reset...).
    Transport(String),
    /// The registry did not answer within the configured timeout.
    Timeout(String),
    /// The registry answered 401 or 403: credentials missing or wrong.
    Unauthorized(String),
    /// The registry does not know the instance (404).
    NotFound(String),
    /// The registry answered with another unexpected status (400 with its reason, 5xx...).
    Rejected { status: u16, message: String },
    /// The client was stopped; the call can no longer do anything.
    ShutDown,
    /// The handle was created in another process (we are a fork() child).
    Forked,
    /// A bug inside registrar, caught (a panic on a background thread).
    Internal(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidConfig(m) => write!(f, "invalid configuration: {m}"),
            Error::InvalidArgument(m) => write!(f, "invalid argument: {m}"),
            Error::Transport(m) => write!(f, "registry unreachable: {m}"),
            Error::Timeout(m) => write!(f, "timed out: {m}"),
            Error::Unauthorized(m) => write!(f, "unauthorized: {m}"),
            Error::NotFound(m) => write!(f, "not found: {m}"),
            Error::Rejected { status, message } => {
                write!(f, "registry answered HTTP {status}: {message}")
            }
            Error::ShutDown => write!(f, "the client has been stopped"),
            Error::Internal(m) => write!(f, "internal error (please report): {m}"),
            Error::Forked => write!(
                f,
                "the client was created in another process (fork); create a new one in this process"
            ),
        }
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;
