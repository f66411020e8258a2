//! `registrar_metrics_text`: the process's metrics in the Prometheus text format.

use std::ffi::c_char;

use super::strings::write_string;
use super::{guard, registrar_status};

/// Copies the metrics of every live client and discovery cache of this process (and of the
/// process itself) into `buf` in the Prometheus text exposition format (version 0.0.4,
/// `Content-Type: text/plain; version=0.0.4`), snprintf-style; `*out_len` receives its full
/// length. Serve it from the host's /metrics endpoint. Safe to call from any thread; handles
/// inherited through fork() are left out.
/// Errors: REGISTRAR_ERR_NULL_ARGUMENT (`out_len`).
#[no_mangle]
pub extern "C" fn registrar_metrics_text(
    buf: *mut c_char,
    buf_len: usize,
    out_len: *mut usize,
) -> registrar_status {
    guard("registrar_metrics_text", || {
        write_string(&crate::metrics::render(), buf, buf_len, out_len)
    })
}
