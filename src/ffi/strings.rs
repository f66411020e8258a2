//! Strings across the boundary: borrowed UTF-8 inputs, snprintf-style outputs.

use std::ffi::{c_char, CStr};

use super::{out_ptr, FfiError};

/// Borrows a C string argument for the duration of the call, checking NULL and UTF-8.
///
/// # Safety
/// `ptr` must be NULL or point to a NUL-terminated string valid for the call.
pub(crate) unsafe fn input<'a>(
    ptr: *const c_char,
    name: &'static str,
) -> Result<&'a str, FfiError> {
    if ptr.is_null() {
        return Err(FfiError::Null(name));
    }
    CStr::from_ptr(ptr)
        .to_str()
        .map_err(|_| FfiError::Utf8(name))
}

/// Like [`input`], but NULL is allowed and means "none".
///
/// # Safety
/// As for [`input`].
pub(crate) unsafe fn optional_input<'a>(
    ptr: *const c_char,
    name: &'static str,
) -> Result<Option<&'a str>, FfiError> {
    if ptr.is_null() {
        Ok(None)
    } else {
        input(ptr, name).map(Some)
    }
}

/// snprintf-style copy into a caller buffer: writes at most `buf_len - 1` bytes and a NUL,
/// returns the full length of `text`. Nothing is written when `buf` is NULL or `buf_len` is 0.
pub(crate) fn copy_out(text: &str, buf: *mut c_char, buf_len: usize) -> usize {
    if !buf.is_null() && buf_len > 0 {
        let n = text.len().min(buf_len - 1);
        // SAFETY: the caller promises `buf` has room for `buf_len` bytes; we write n + 1 <= buf_len.
        unsafe {
            std::ptr::copy_nonoverlapping(text.as_ptr(), buf.cast::<u8>(), n);
            *buf.add(n) = 0;
        }
    }
    text.len()
}

/// [`copy_out`] for the functions that also report the full length through `*out_len`
/// (checked for NULL).
pub(crate) fn write_string(
    text: &str,
    buf: *mut c_char,
    buf_len: usize,
    out_len: *mut usize,
) -> Result<(), FfiError> {
    let out_len = out_ptr(out_len, "out_len")?;
    let full = copy_out(text, buf, buf_len);
    // SAFETY: out_len was checked non-null.
    unsafe { *out_len = full };
    Ok(())
}
