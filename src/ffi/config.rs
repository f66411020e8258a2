//! `registrar_config`: the settings a client is created from.

use std::ffi::c_char;

use super::strings::{input, optional_input, write_string};
use super::{guard, out_ptr, registrar_status, FfiError};
use crate::config::{Config, Settings};

/// Settings for a client: built-in defaults, optionally the `REGISTRY_*` environment, and
/// values set with `registrar_config_set` (highest precedence).
///
/// Thread-safety: a config may be read by several threads at once (`registrar_client_new`),
/// but `registrar_config_set` and `registrar_config_free` must not race other calls on it.
/// A client copies what it needs: the config can be freed right after `registrar_client_new`.
pub struct registrar_config {
    pub(crate) settings: Settings,
}

/// Creates an empty config that ignores the environment: only defaults and explicit settings.
/// Writes `*out` only on success; free it with `registrar_config_free`.
/// Errors: REGISTRAR_ERR_NULL_ARGUMENT.
#[no_mangle]
pub extern "C" fn registrar_config_new(out: *mut *mut registrar_config) -> registrar_status {
    new_config("registrar_config_new", out, Settings::new)
}

/// Creates a config from the `REGISTRY_*` environment variables (read now; later changes to
/// the environment are not seen). Values set with `registrar_config_set` override them.
/// Nothing is validated yet: `registrar_client_new` and `registrar_config_validate` do that.
/// Writes `*out` only on success; free it with `registrar_config_free`.
/// Errors: REGISTRAR_ERR_NULL_ARGUMENT.
#[no_mangle]
pub extern "C" fn registrar_config_from_env(out: *mut *mut registrar_config) -> registrar_status {
    new_config("registrar_config_from_env", out, Settings::from_env)
}

fn new_config(
    function: &'static str,
    out: *mut *mut registrar_config,
    settings: fn() -> Settings,
) -> registrar_status {
    guard(function, || {
        let out = out_ptr(out, "out")?;
        let config = Box::new(registrar_config {
            settings: settings(),
        });
        // SAFETY: out was checked non-null; the caller provides a writable pointer slot.
        unsafe { *out = Box::into_raw(config) };
        Ok(())
    })
}

/// Sets one setting. `key` is a setting name such as "REGISTRY_URL"; case does not matter and
/// the "REGISTRY_" prefix may be left out ("url", "app_name"). `value` NULL or "" removes the
/// explicit value (the environment or default applies again). Values are checked when the
/// client is created; `key` is checked now. Strings are borrowed for the call only.
/// Errors: REGISTRAR_ERR_NULL_ARGUMENT, REGISTRAR_ERR_INVALID_UTF8, REGISTRAR_ERR_INVALID_CONFIG
/// (unknown key).
#[no_mangle]
pub extern "C" fn registrar_config_set(
    config: *mut registrar_config,
    key: *const c_char,
    value: *const c_char,
) -> registrar_status {
    guard("registrar_config_set", || {
        // SAFETY: a live config from registrar_config_new/from_env, not used concurrently (documented).
        let config = unsafe { config.as_mut() }.ok_or(FfiError::Null("config"))?;
        // SAFETY: NUL-terminated strings valid for the call, per the documented contract.
        let key = unsafe { input(key, "key") }?;
        let value = unsafe { optional_input(value, "value") }?.unwrap_or("");
        config.settings.set(key, value)?;
        Ok(())
    })
}

/// Validates the settings exactly as `registrar_client_new` would, without creating a client.
/// Errors: REGISTRAR_ERR_NULL_ARGUMENT, REGISTRAR_ERR_INVALID_CONFIG (the message names the
/// setting and the problem).
#[no_mangle]
pub extern "C" fn registrar_config_validate(config: *const registrar_config) -> registrar_status {
    guard("registrar_config_validate", || {
        // SAFETY: NULL or a live config, per the documented contract.
        let config = unsafe { super::reference(config, "config") }?;
        Config::from_settings(&config.settings)?;
        Ok(())
    })
}

/// Copies a description of the settings that are set (from the environment and explicit)
/// into `buf`, snprintf-style; `*out_len` receives its full length. Shape:
/// `REGISTRY_APP_NAME='orders', REGISTRY_PASSWORD='<hidden>', REGISTRY_URL='http://<hidden>@host/eureka/'`
/// (shown here with `<hidden>` for the three stars the library writes). Credentials never
/// appear, whatever was given: the password and the user-info of every URL setting are
/// replaced, even when the URL is malformed. Long values are cut. The
/// Python and Go wrappers show this text; use it for logs.
/// Errors: REGISTRAR_ERR_NULL_ARGUMENT.
#[no_mangle]
pub extern "C" fn registrar_config_describe(
    config: *const registrar_config,
    buf: *mut c_char,
    buf_len: usize,
    out_len: *mut usize,
) -> registrar_status {
    guard("registrar_config_describe", || {
        // SAFETY: NULL or a live config, per the documented contract.
        let config = unsafe { super::reference(config, "config") }?;
        write_string(&config.settings.describe(), buf, buf_len, out_len)
    })
}

/// Frees a config. NULL is a no-op.
#[no_mangle]
pub extern "C" fn registrar_config_free(config: *mut registrar_config) {
    if !config.is_null() {
        let _ = std::panic::catch_unwind(|| {
            // SAFETY: config came from Box::into_raw in new_config and is freed once (caller contract).
            drop(unsafe { Box::from_raw(config) });
        });
    }
}
