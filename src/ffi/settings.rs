//! The list of settings, as static C strings: the one list of names every wrapper and the
//! docs derive theirs from (`crate::config::SETTINGS` is its only source), so a setting
//! added to the core reaches Python, Go and the README check without editing them.

use std::ffi::{c_char, CString};

use once_cell::sync::Lazy;

use crate::config::SETTINGS;

/// (name, description) of every setting, NUL-terminated, built once and never freed, so
/// the pointers handed out stay valid for the life of the process.
static C_SETTINGS: Lazy<Vec<(CString, CString)>> = Lazy::new(|| {
    SETTINGS
        .iter()
        .map(|(name, description)| (c_string(name), c_string(description)))
        .collect()
});

/// The names and descriptions are compile-time text; a NUL inside one would be a bug, but
/// it must not panic across the boundary: the text is cut at the NUL instead.
fn c_string(text: &str) -> CString {
    let text = text.split('\0').next().unwrap_or_default();
    CString::new(text).unwrap_or_default()
}

fn entry(index: usize) -> Option<&'static (CString, CString)> {
    std::panic::catch_unwind(|| C_SETTINGS.get(index))
        .ok()
        .flatten()
}

/// The number of settings `registrar_config_set` accepts (and the environment is read for).
/// Index them from 0 with `registrar_setting_name` / `registrar_setting_description`.
#[no_mangle]
pub extern "C" fn registrar_setting_count() -> usize {
    SETTINGS.len()
}

/// The name of setting `index` (0-based), e.g. "REGISTRY_URL": the environment variable and
/// the key of `registrar_config_set`. NULL when `index` is out of range. Static: never free it.
#[no_mangle]
pub extern "C" fn registrar_setting_name(index: usize) -> *const c_char {
    entry(index).map_or(std::ptr::null(), |(name, _)| name.as_ptr())
}

/// A one-line description of setting `index` (0-based), with its default when it has one,
/// e.g. "HTTP port; default 8080". NULL when `index` is out of range. Static: never free it.
#[no_mangle]
pub extern "C" fn registrar_setting_description(index: usize) -> *const c_char {
    entry(index).map_or(std::ptr::null(), |(_, description)| description.as_ptr())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    #[test]
    fn every_setting_is_listed_in_order_and_out_of_range_is_null() {
        assert_eq!(registrar_setting_count(), SETTINGS.len());
        for (i, (name, description)) in SETTINGS.iter().enumerate() {
            // SAFETY: non-NULL pointers to static NUL-terminated strings (checked by unwrap).
            let got = unsafe { CStr::from_ptr(registrar_setting_name(i)) };
            assert_eq!(got.to_str().unwrap(), *name);
            let got = unsafe { CStr::from_ptr(registrar_setting_description(i)) };
            assert_eq!(got.to_str().unwrap(), *description);
        }
        assert!(registrar_setting_name(SETTINGS.len()).is_null());
        assert!(registrar_setting_description(usize::MAX).is_null());
    }

    #[test]
    fn the_same_pointer_every_time() {
        assert_eq!(registrar_setting_name(0), registrar_setting_name(0));
    }
}
