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

/// [`copy_out`] of a UTF-8 text given as pieces (`pieces` hands each to its argument, in order):
/// the same result as copying their concatenation, without building it first.
pub(crate) fn copy_out_pieces(
    pieces: impl FnOnce(&mut dyn FnMut(&[u8])),
    buf: *mut c_char,
    buf_len: usize,
) -> usize {
    let room = if buf.is_null() {
        0
    } else {
        buf_len.saturating_sub(1)
    };
    let mut full = 0;
    let mut written = 0;
    pieces(&mut |piece: &[u8]| {
        let n = piece.len().min(room - written);
        // SAFETY: the caller promises `buf` has room for `buf_len` bytes; written + n <= room
        // < buf_len (n is 0 when buf is NULL or buf_len is 0).
        if n > 0 {
            unsafe {
                std::ptr::copy_nonoverlapping(piece.as_ptr(), buf.cast::<u8>().add(written), n)
            };
        }
        written += n;
        full += piece.len();
    });
    if !buf.is_null() && buf_len > 0 {
        // SAFETY: written <= buf_len - 1.
        unsafe { *buf.add(written) = 0 };
    }
    full
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_are_copied_like_their_concatenation() {
        let pieces =
            |write: &mut dyn FnMut(&[u8])| [&b"http://"[..], b"host", b":", b"8080"].map(write);
        for buf_len in 0..20 {
            let mut by_pieces = [b'x' as c_char; 20];
            let mut whole = [b'x' as c_char; 20];
            let full = copy_out_pieces(
                |w| {
                    pieces(w);
                },
                by_pieces.as_mut_ptr(),
                buf_len,
            );
            assert_eq!(
                full,
                copy_out("http://host:8080", whole.as_mut_ptr(), buf_len)
            );
            assert_eq!(by_pieces, whole, "buf_len {buf_len}");
        }
        assert_eq!(
            copy_out_pieces(
                |w| {
                    pieces(w);
                },
                std::ptr::null_mut(),
                5
            ),
            16
        );
    }
}
