//! The thread-local message of the last failed call on this thread.

use std::cell::RefCell;
use std::ffi::c_char;

use super::strings::copy_out;

thread_local! {
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

pub(crate) fn set(message: String) {
    LAST_ERROR.with(|m| *m.borrow_mut() = message);
}

pub(crate) fn clear() {
    LAST_ERROR.with(|m| m.borrow_mut().clear());
}

/// Copies the message of the last failed registrar call **on the calling thread** into `buf`
/// (at most `buf_len` bytes including the terminating NUL; truncated if needed, always
/// NUL-terminated when `buf_len > 0`). Returns the full length of the message without NUL,
/// so a return value `>= buf_len` means it was truncated. Returns 0 if the last call
/// succeeded. With `buf` NULL or `buf_len` 0 nothing is written (a way to ask for the length).
/// Every fallible call clears the message first. Messages never contain credentials.
#[no_mangle]
pub extern "C" fn registrar_last_error_message(buf: *mut c_char, buf_len: usize) -> usize {
    LAST_ERROR.with(|m| copy_out(&m.borrow(), buf, buf_len))
}
