//! Library and ABI versions.

use std::ffi::c_char;

/// Bumped on every incompatible change of the C interface (signatures, struct layouts, codes).
/// Wrappers compare it with the number they were written for when they load the library.
pub const REGISTRAR_ABI_VERSION: u32 = 1;
// REGISTRAR_VERSION and REGISTRAR_VERSION_MAJOR/MINOR/PATCH are written into the header by
// build.rs from Cargo.toml's version (the only place the version is written).

/// The library version, e.g. "0.1.0". Static: never free it.
#[no_mangle]
pub extern "C" fn registrar_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// The ABI number of the loaded library (see `REGISTRAR_ABI_VERSION`).
#[no_mangle]
pub extern "C" fn registrar_abi_version() -> u32 {
    REGISTRAR_ABI_VERSION
}
