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

impl Error {
    /// The same kind of error (so the same C status code), its message put after `context`.
    pub fn with_context(self, context: &str) -> Error {
        let join = |m: String| format!("{context}: {m}");
        match self {
            Error::InvalidConfig(m) => Error::InvalidConfig(join(m)),
            Error::InvalidArgument(m) => Error::InvalidArgument(join(m)),
            Error::Transport(m) => Error::Transport(join(m)),
            Error::Timeout(m) => Error::Timeout(join(m)),
            Error::Unauthorized(m) => Error::Unauthorized(join(m)),
            Error::NotFound(m) => Error::NotFound(join(m)),
            Error::Rejected { status, message } => Error::Rejected {
                status,
                message: join(message),
            },
            Error::Internal(m) => Error::Internal(join(m)),
            other @ (Error::ShutDown | Error::Forked) => {
                Error::Internal(format!("{context}: {other}"))
            }
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;
