//! Library and ABI versions.

use std::ffi::c_char;

/// Bumped on every incompatible change of the C interface (signatures, struct layouts, codes).
/// Wrappers compare it with the number they were written for when they load the library.
pub const REGISTRAR_ABI_VERSION: u32 = 1;
pub const REGISTRAR_VERSION_MAJOR: u32 = 0;
pub const REGISTRAR_VERSION_MINOR: u32 = 1;
pub const REGISTRAR_VERSION_PATCH: u32 = 0;

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

#[cfg(test)]
mod tests {
    #[test]
    fn version_constants_match_cargo() {
        let expected = format!(
            "{}.{}.{}",
            super::REGISTRAR_VERSION_MAJOR,
            super::REGISTRAR_VERSION_MINOR,
            super::REGISTRAR_VERSION_PATCH
        );
        assert_eq!(expected, env!("CARGO_PKG_VERSION"));
    }
}
