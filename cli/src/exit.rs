//! Exit codes and the one error type of the command: a code plus a message for stderr.

use registrar::Error;

use crate::args::Args;

pub const SUCCESS: i32 = 0;
pub const FAILURE: i32 = 1;
/// Usage or configuration (the message names the option or variable).
pub const CONFIG: i32 = 2;
/// The registry could not be reached (connection, timeout, 5xx).
pub const UNREACHABLE: i32 = 3;
/// `instance`: no such instance.
pub const NOT_FOUND: i32 = 4;
/// `run`: CMD could not be executed / was not found (the shells' convention).
pub const CANNOT_EXECUTE: i32 = 126;
pub const COMMAND_NOT_FOUND: i32 = 127;

#[derive(Debug)]
pub struct Failure {
    pub code: i32,
    pub message: String,
}

impl Failure {
    pub fn new(code: i32, message: String) -> Failure {
        Failure { code, message }
    }

    /// Classifies a core error; configuration messages learn which option set the value.
    pub fn from_error(args: &Args, error: &Error) -> Failure {
        let code = match error {
            Error::InvalidConfig(_) | Error::InvalidArgument(_) | Error::Unauthorized(_) => CONFIG,
            Error::Transport(_) | Error::Timeout(_) => UNREACHABLE,
            Error::Rejected { status, .. } if *status >= 500 || *status == 429 => UNREACHABLE,
            _ => FAILURE,
        };
        let message = match error {
            Error::Unauthorized(_) => format!(
                "{error} (check REGISTRY_USER / REGISTRY_PASSWORD or the user-info in REGISTRY_URL)"
            ),
            _ if code == UNREACHABLE => format!("{error} (check REGISTRY_URL)"),
            _ => error.to_string(),
        };
        Failure::new(code, args.explain(&message))
    }
}
