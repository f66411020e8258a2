//! `registrar_discovery`: a cache of the registry kept fresh by a background thread, and
//! `registrar_instance_list`: query results owned by the caller.
//!
//! Results are plain structs (`registrar_instance`) read through a list handle: no callback is
//! needed to use discovery, so ctypes and cgo wrap it directly. A list pins the instances it
//! shows (shared with the cache, not copied), so its strings stay valid until
//! `registrar_instance_list_free`, whatever the cache does meanwhile.

use std::ffi::{c_char, c_void};
use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Once};
use std::time::Duration;

use super::strings::{copy_out_pieces, input, write_string};
use super::{
    guard, out_ptr, reference, registrar_config, registrar_free_callback,
    registrar_instance_status, registrar_log_callback, registrar_status, FfiError,
};
use crate::config::quote;
use crate::discovery::{
    Choice, Discovery, DiscoveryConfig, DiscoveryPhase, Instance, Lookup, Registry,
};
use crate::error::Error;
use crate::instance::InstanceStatus;

/// `lookup` of the query functions: an application name (case-insensitive).
pub const REGISTRAR_LOOKUP_APP: i32 = 0;
/// `lookup`: a VIP address (exact; an instance registered with "a,b" is found under "a" and "b").
pub const REGISTRAR_LOOKUP_VIP: i32 = 1;
/// `lookup`: a secure VIP address (exact, split like VIPs).
pub const REGISTRAR_LOOKUP_SECURE_VIP: i32 = 2;

/// `choice` of `registrar_discovery_choose*`: each UP instance in turn.
pub const REGISTRAR_CHOICE_ROUND_ROBIN: i32 = 0;
/// `choice`: an UP instance picked uniformly at random.
pub const REGISTRAR_CHOICE_RANDOM: i32 = 1;

/// `flags` of the query functions: include instances of every status (default: UP only).
pub const REGISTRAR_QUERY_ALL_STATUSES: u32 = 1;

/// `url_flags`: `https://host:securePort` when the instance's secure port is enabled
/// (otherwise, and by default, `http://host:port`).
pub const REGISTRAR_URL_SECURE: u32 = 1;
/// `url_flags`: the IP address in place of the host name.
pub const REGISTRAR_URL_USE_IP: u32 = 2;

/// A registry cache, kept fresh by a task on registrar's one background thread (shared with
/// every client; see `registrar_client`). Nothing runs and nothing is sent before
/// `registrar_discovery_start`.
/// Queries are answered from memory, never from the network.
///
/// Thread-safety: every function may be called on the same handle from any number of
/// threads at once, except `registrar_discovery_free`, which must not race any other call.
///
/// fork(): a handle belongs to the process that created it. In a child every call returns
/// REGISTRAR_ERR_FORKED and `registrar_discovery_free` only releases memory.
pub struct registrar_discovery {
    discovery: Discovery,
    /// The creating process, and the fork count when it was created (see `discovery_ref`).
    pid: u32,
    forks: u64,
}

/// Where a discovery cache is in its life.
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum registrar_discovery_state {
    /// Created; `registrar_discovery_start` not called yet.
    REGISTRAR_DISCOVERY_NOT_STARTED = 0,
    /// The background thread keeps the cache fresh.
    REGISTRAR_DISCOVERY_RUNNING = 1,
    /// Stopped: nothing more is fetched; queries fail with REGISTRAR_ERR_SHUT_DOWN.
    REGISTRAR_DISCOVERY_STOPPED = 2,
}

/// A snapshot of a discovery cache, filled by `registrar_discovery_get_info`.
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy)]
pub struct registrar_discovery_info {
    pub state: registrar_discovery_state,
    /// 1 once a registry has been fetched (queries have data), else 0.
    pub ready: i32,
    /// Bumped on every change of the cached registry; 0 before the first fetch.
    pub version: u64,
    /// Applications and instances (every status) in the cache.
    pub apps: u64,
    pub instances: u64,
    /// Milliseconds since the server last confirmed the cache (a successful refresh); grows
    /// while the server is unreachable (the cache keeps the last good registry). -1 before
    /// the first successful fetch.
    pub age_ms: i64,
    /// The status of the last refresh: REGISTRAR_OK, or why it failed (message:
    /// `registrar_discovery_last_error`).
    pub last_error: registrar_status,
    /// Successful full fetches (GET apps) and delta fetches (GET apps/delta).
    pub full_fetches: u64,
    pub delta_fetches: u64,
    /// Deltas whose recomputed apps__hashcode differed from the server's (each was followed
    /// by a full fetch).
    pub hash_mismatches: u64,
    /// Refreshes that failed.
    pub failed_refreshes: u64,
}

/// One metadata entry of an instance. Both strings are UTF-8, NUL-terminated.
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy)]
pub struct registrar_metadata_entry {
    pub key: *const c_char,
    pub value: *const c_char,
}

/// One instance of a query result. Every pointer is valid until the list it came from is
/// freed; strings are UTF-8, NUL-terminated, never NULL ("" when the registry has none).
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy)]
pub struct registrar_instance {
    pub instance_id: *const c_char,
    /// Upper-case.
    pub app: *const c_char,
    pub host_name: *const c_char,
    pub ip_addr: *const c_char,
    pub port: u16,
    pub secure_port: u16,
    /// 1 when the port is enabled, else 0.
    pub port_enabled: i32,
    pub secure_port_enabled: i32,
    /// The status the registry serves (with any operator override applied).
    pub status: registrar_instance_status,
    /// The operator override; REGISTRAR_INSTANCE_UNKNOWN when there is none.
    pub overridden_status: registrar_instance_status,
    /// As registered: possibly a comma-separated list.
    pub vip_address: *const c_char,
    pub secure_vip_address: *const c_char,
    pub home_page_url: *const c_char,
    pub status_page_url: *const c_char,
    pub health_check_url: *const c_char,
    /// `metadata_len` entries sorted by key (NULL when there are none).
    pub metadata: *const registrar_metadata_entry,
    pub metadata_len: usize,
    /// Epoch milliseconds; 0 when the registry did not say.
    pub last_updated_timestamp: u64,
    pub last_dirty_timestamp: u64,
}

/// The result of a query: `registrar_instance_list_len` instances, read with
/// `registrar_instance_list_get`, freed with `registrar_instance_list_free`. Immutable:
/// any number of threads may read one list at once; it does not change when the cache does.
pub struct registrar_instance_list {
    entries: Entries,
    /// Every instance's metadata entries, back to back (the views point into it).
    _metadata: Vec<registrar_metadata_entry>,
    version: u64,
}

/// One instance of a list and its C view; the instance keeps every string the view points to
/// alive.
struct Entry {
    instance: Arc<Instance>,
    view: registrar_instance,
}

/// A list's entries. A chosen instance (the per-request case) needs no vector of its own: its
/// list is a single allocation.
enum Entries {
    One(Entry),
    Many(Vec<Entry>),
}

impl Entries {
    fn as_slice(&self) -> &[Entry] {
        match self {
            Entries::One(entry) => std::slice::from_ref(entry),
            Entries::Many(entries) => entries,
        }
    }
}

/// Called on registrar's background thread after every change of the cached registry with the
/// new version. It must return quickly (every handle of the process waits meanwhile) and must
/// not call `registrar_discovery_free`; it may call any query and `registrar_discovery_stop`
/// (which then only requests the stop). `registrar_discovery_wait_ready`,
/// `registrar_discovery_refresh` and `registrar_discovery_wait_change` called from it fail at
/// once with REGISTRAR_ERR_INVALID_ARGUMENT: the thread that answers them is the one running
/// the listener.
pub type registrar_discovery_listener =
    Option<unsafe extern "C" fn(user_data: *mut c_void, version: u64)>;

pub(crate) fn instance_status(status: InstanceStatus) -> registrar_instance_status {
    use registrar_instance_status::*;
    match status {
        InstanceStatus::Up => REGISTRAR_INSTANCE_UP,
        InstanceStatus::Down => REGISTRAR_INSTANCE_DOWN,
        InstanceStatus::Starting => REGISTRAR_INSTANCE_STARTING,
        InstanceStatus::OutOfService => REGISTRAR_INSTANCE_OUT_OF_SERVICE,
        InstanceStatus::Unknown => REGISTRAR_INSTANCE_UNKNOWN,
    }
}

impl registrar_instance_list {
    fn new(instances: Vec<Arc<Instance>>, version: u64) -> Box<registrar_instance_list> {
        // One buffer for every metadata entry of the list, filled before any pointer into it is
        // taken (it never reallocates afterwards).
        let metadata = metadata_entries(&instances);
        let mut offset = 0;
        let entries = instances
            .into_iter()
            .map(|instance| {
                let view = view_of(&instance, &metadata, offset);
                offset += instance.metadata.len();
                Entry { instance, view }
            })
            .collect();
        Box::new(registrar_instance_list {
            entries: Entries::Many(entries),
            _metadata: metadata,
            version,
        })
    }

    fn one(instance: Arc<Instance>, version: u64) -> Box<registrar_instance_list> {
        let metadata = metadata_entries(std::slice::from_ref(&instance));
        let view = view_of(&instance, &metadata, 0);
        Box::new(registrar_instance_list {
            entries: Entries::One(Entry { instance, view }),
            _metadata: metadata,
            version,
        })
    }

    fn entries(&self) -> &[Entry] {
        self.entries.as_slice()
    }
}

/// The metadata entries of `instances`, back to back (no allocation when there are none).
fn metadata_entries(instances: &[Arc<Instance>]) -> Vec<registrar_metadata_entry> {
    let total = instances.iter().map(|i| i.metadata.len()).sum();
    let mut entries = Vec::with_capacity(total);
    for instance in instances {
        entries.extend(
            instance
                .metadata
                .iter()
                .map(|(k, v)| registrar_metadata_entry {
                    key: k.as_c_ptr(),
                    value: v.as_c_ptr(),
                }),
        );
    }
    entries
}

/// The C view of `instance`, whose metadata entries start at `offset` in `metadata`.
fn view_of(
    instance: &Instance,
    metadata: &[registrar_metadata_entry],
    offset: usize,
) -> registrar_instance {
    let len = instance.metadata.len();
    registrar_instance {
        instance_id: instance.instance_id.as_c_ptr(),
        app: instance.app.as_c_ptr(),
        host_name: instance.host_name.as_c_ptr(),
        ip_addr: instance.ip_addr.as_c_ptr(),
        port: instance.port,
        secure_port: instance.secure_port,
        port_enabled: instance.port_enabled.into(),
        secure_port_enabled: instance.secure_port_enabled.into(),
        status: instance_status(instance.status),
        overridden_status: instance_status(instance.overridden_status),
        vip_address: instance.vip_address.as_c_ptr(),
        secure_vip_address: instance.secure_vip_address.as_c_ptr(),
        home_page_url: instance.home_page_url.as_c_ptr(),
        status_page_url: instance.status_page_url.as_c_ptr(),
        health_check_url: instance.health_check_url.as_c_ptr(),
        // In bounds: offset + len <= metadata.len(), counted by metadata_entries.
        metadata: if len == 0 {
            ptr::null()
        } else {
            metadata[offset..offset + len].as_ptr()
        },
        metadata_len: len,
        last_updated_timestamp: instance.last_updated_timestamp,
        last_dirty_timestamp: instance.last_dirty_timestamp,
    }
}

/// Borrows a discovery handle, refusing NULL and handles inherited through fork().
///
/// # Safety
/// `discovery` must be NULL or a live handle from `registrar_discovery_new`.
unsafe fn discovery_ref<'a>(
    discovery: *const registrar_discovery,
) -> Result<&'a registrar_discovery, FfiError> {
    let handle = reference(discovery, "discovery")?;
    // getpid() is a system call (about 250 ns here), four times the cost of a lookup: ask it
    // only when a fork() has happened since the handle was made.
    if FORKS.load(Ordering::Relaxed) != handle.forks && handle.pid != std::process::id() {
        return Err(Error::Forked.into());
    }
    Ok(handle)
}

/// Number of fork() calls this process has seen (as the child), counted from the first
/// discovery handle on. Only a counter: the handler does nothing else.
static FORKS: AtomicU64 = AtomicU64::new(0);

extern "C" fn count_fork_in_child() {
    FORKS.fetch_add(1, Ordering::Relaxed);
}

fn watch_forks() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: registers a plain function that only increments an atomic (async-signal-safe).
        // glibc unregisters it if this library is ever unloaded (dlclose).
        unsafe { libc::pthread_atfork(None, None, Some(count_fork_in_child)) };
    });
}

/// The registry to answer a query from, with its version: `None` before the first fetch;
/// an error once stopped.
fn current(handle: &registrar_discovery) -> Result<(Option<Arc<Registry>>, u64), FfiError> {
    if handle.discovery.is_stopped() {
        return Err(Error::ShutDown.into());
    }
    Ok(match handle.discovery.current() {
        Some((registry, version)) => (Some(registry), version),
        None => (None, 0),
    })
}

fn lookup_kind(lookup: i32) -> Result<Lookup, FfiError> {
    match lookup {
        REGISTRAR_LOOKUP_APP => Ok(Lookup::App),
        REGISTRAR_LOOKUP_VIP => Ok(Lookup::Vip),
        REGISTRAR_LOOKUP_SECURE_VIP => Ok(Lookup::SecureVip),
        other => Err(Error::InvalidArgument(format!(
            "lookup {other} is not one of REGISTRAR_LOOKUP_APP, _VIP, _SECURE_VIP"
        ))
        .into()),
    }
}

fn choice_kind(choice: i32) -> Result<Choice, FfiError> {
    match choice {
        REGISTRAR_CHOICE_ROUND_ROBIN => Ok(Choice::RoundRobin),
        REGISTRAR_CHOICE_RANDOM => Ok(Choice::Random),
        other => Err(Error::InvalidArgument(format!(
            "choice {other} is not REGISTRAR_CHOICE_ROUND_ROBIN or REGISTRAR_CHOICE_RANDOM"
        ))
        .into()),
    }
}

fn check_flags(flags: u32, known: u32, what: &str) -> Result<(), FfiError> {
    if flags & !known != 0 {
        return Err(
            Error::InvalidArgument(format!("unknown {what} bits 0x{:x}", flags & !known)).into(),
        );
    }
    Ok(())
}

fn write_list(
    out: *mut *mut registrar_instance_list,
    instances: Vec<Arc<Instance>>,
    version: u64,
) -> Result<(), FfiError> {
    let list = registrar_instance_list::new(instances, version);
    // SAFETY: out was checked non-null by the caller of this helper.
    unsafe { *out = Box::into_raw(list) };
    Ok(())
}

fn millis(ms: u32) -> Duration {
    Duration::from_millis(ms.into())
}

/// Creates a discovery cache from a config: only REGISTRY_URL (and REGISTRY_USER /
/// REGISTRY_PASSWORD), the TLS settings (REGISTRY_CA_FILE, REGISTRY_CLIENT_CERT,
/// REGISTRY_CLIENT_KEY; their files are read and checked here), REGISTRY_TIMEOUT and
/// REGISTRY_FETCH_INTERVAL are read, so a process
/// that only discovers needs no REGISTRY_APP_NAME. Starts no thread and fetches nothing (see
/// `registrar_discovery_start`). Writes `*out` only on success; free it with
/// `registrar_discovery_free`. The config is only read during the call.
/// Errors: REGISTRAR_ERR_NULL_ARGUMENT, REGISTRAR_ERR_INVALID_CONFIG (the message names the
/// setting; passwords never appear).
#[no_mangle]
pub extern "C" fn registrar_discovery_new(
    config: *const registrar_config,
    out: *mut *mut registrar_discovery,
) -> registrar_status {
    guard("registrar_discovery_new", || {
        // SAFETY: NULL or a live config, per the documented contract.
        let config = unsafe { reference(config, "config") }?;
        let out = out_ptr(out, "out")?;
        let discovery = Discovery::new(DiscoveryConfig::from_settings(&config.settings)?)?;
        watch_forks();
        let handle = Box::new(registrar_discovery {
            discovery,
            pid: std::process::id(),
            forks: FORKS.load(Ordering::Relaxed),
        });
        // SAFETY: out was checked non-null.
        unsafe { *out = Box::into_raw(handle) };
        Ok(())
    })
}

/// Starts the cache (its task on the background thread, starting that thread if it is the
/// process's first) and returns at once: it fetches the whole registry (GET
/// apps), then every REGISTRY_FETCH_INTERVAL the changes (GET apps/delta), checking them
/// against the server's hash code and fetching everything again on any mismatch or error.
/// On errors the last good registry is kept. Calling it again while running does nothing.
/// Errors: REGISTRAR_ERR_NULL_ARGUMENT, REGISTRAR_ERR_SHUT_DOWN (stopped), REGISTRAR_ERR_FORKED,
/// REGISTRAR_ERR_TRANSPORT (the background thread could not be created).
#[no_mangle]
pub extern "C" fn registrar_discovery_start(
    discovery: *const registrar_discovery,
) -> registrar_status {
    guard("registrar_discovery_start", || {
        // SAFETY: NULL or a live handle.
        unsafe { discovery_ref(discovery) }?.discovery.start()?;
        Ok(())
    })
}

/// Blocks until the first fetch has succeeded (returns at once if it has), at most
/// `timeout_ms`. Errors: REGISTRAR_ERR_TIMEOUT (the message gives the last error, e.g. the
/// registry is unreachable or refused the credentials, or says the cache was not started),
/// REGISTRAR_ERR_SHUT_DOWN, REGISTRAR_ERR_NULL_ARGUMENT, REGISTRAR_ERR_FORKED.
#[no_mangle]
pub extern "C" fn registrar_discovery_wait_ready(
    discovery: *const registrar_discovery,
    timeout_ms: u32,
) -> registrar_status {
    guard("registrar_discovery_wait_ready", || {
        // SAFETY: NULL or a live handle.
        unsafe { discovery_ref(discovery) }?
            .discovery
            .wait_ready(millis(timeout_ms))?;
        Ok(())
    })
}

/// Refreshes the cache now (as a scheduled refresh would) and waits for the outcome, at most
/// `timeout_ms`. Use it when the caller must see a change it knows about (e.g. right after
/// registering). Errors: the refresh's own error (REGISTRAR_ERR_TRANSPORT,
/// REGISTRAR_ERR_UNAUTHORIZED, ...; the last good registry is kept), REGISTRAR_ERR_TIMEOUT,
/// REGISTRAR_ERR_INVALID_ARGUMENT (not started), REGISTRAR_ERR_SHUT_DOWN,
/// REGISTRAR_ERR_NULL_ARGUMENT, REGISTRAR_ERR_FORKED.
#[no_mangle]
pub extern "C" fn registrar_discovery_refresh(
    discovery: *const registrar_discovery,
    timeout_ms: u32,
) -> registrar_status {
    guard("registrar_discovery_refresh", || {
        // SAFETY: NULL or a live handle.
        unsafe { discovery_ref(discovery) }?
            .discovery
            .refresh(millis(timeout_ms))?;
        Ok(())
    })
}

/// Blocks until the cached registry's version is greater than `since_version` (at once if it
/// already is), at most `timeout_ms`, and writes the version to `*out_version`. Pass the
/// version of the last change you handled (0 at first). Wrappers use it to deliver change
/// notifications from a thread of their own.
/// Errors: REGISTRAR_ERR_TIMEOUT (no change), REGISTRAR_ERR_SHUT_DOWN,
/// REGISTRAR_ERR_NULL_ARGUMENT, REGISTRAR_ERR_FORKED.
#[no_mangle]
pub extern "C" fn registrar_discovery_wait_change(
    discovery: *const registrar_discovery,
    since_version: u64,
    timeout_ms: u32,
    out_version: *mut u64,
) -> registrar_status {
    guard("registrar_discovery_wait_change", || {
        // SAFETY: NULL or a live handle.
        let handle = unsafe { discovery_ref(discovery) }?;
        let out_version = out_ptr(out_version, "out_version")?;
        let version = handle
            .discovery
            .wait_change(since_version, millis(timeout_ms))?;
        // SAFETY: out_version was checked non-null.
        unsafe { *out_version = version };
        Ok(())
    })
}

/// Calls `listener(user_data, version)` on the background thread after every change of the
/// cached registry (NULL removes the current one; replacing or removing waits for its call in
/// progress and calls its `free_user_data` before returning, as `registrar_client_set_logger`
/// does). Never called after `registrar_discovery_stop` returns. On error nothing is
/// installed and `free_user_data` is not called.
/// Errors: REGISTRAR_ERR_NULL_ARGUMENT, REGISTRAR_ERR_FORKED.
#[no_mangle]
pub extern "C" fn registrar_discovery_set_listener(
    discovery: *const registrar_discovery,
    listener: registrar_discovery_listener,
    user_data: *mut c_void,
    free_user_data: registrar_free_callback,
) -> registrar_status {
    guard("registrar_discovery_set_listener", || {
        // SAFETY: NULL or a live handle.
        let handle = unsafe { discovery_ref(discovery) }?;
        let Some(callback) = listener else {
            handle.discovery.set_listener(None);
            return Ok(());
        };
        let sink = ListenerSink {
            callback,
            user_data,
            free_user_data,
        };
        handle
            .discovery
            .set_listener(Some(Arc::new(move |version: u64| sink.call(version))));
        Ok(())
    })
}

/// Sends the cache's events to `listener` (NULL removes the current one; replacing or removing
/// waits for its call in progress and calls its `free_user_data` before returning, as
/// `registrar_client_set_logger` does): REGISTRAR_EVENT_DISCOVERY_READY (first fetch),
/// _CHANGED (a new version), _FETCH_FAILING (once per failure streak, with the error) and
/// _RECOVERED. See `registrar_event_callback` for the thread and what it may call. Never called
/// after `registrar_discovery_stop` returns. Works beside `registrar_discovery_set_listener`
/// (each has its own slot). On error nothing is installed and `free_user_data` is not called.
/// Errors: REGISTRAR_ERR_NULL_ARGUMENT, REGISTRAR_ERR_FORKED.
#[no_mangle]
pub extern "C" fn registrar_discovery_set_event_listener(
    discovery: *const registrar_discovery,
    listener: super::registrar_event_callback,
    user_data: *mut c_void,
    free_user_data: registrar_free_callback,
) -> registrar_status {
    guard("registrar_discovery_set_event_listener", || {
        // SAFETY: NULL or a live handle.
        let handle = unsafe { discovery_ref(discovery) }?;
        handle
            .discovery
            .set_event_listener(super::events::c_event_listener(
                listener,
                user_data,
                free_user_data,
            ));
        Ok(())
    })
}

/// Sends the cache's log messages of `max_level` or more severe (a `registrar_log_level`) to
/// `callback`, exactly as `registrar_client_set_logger` does for a client: on the background
/// thread, never after `registrar_discovery_stop` returns, `free_user_data` called once after
/// the last call (NULL `callback` removes the current one). Messages: the first fetch (INFO),
/// a failing refresh (WARN, once per distinct problem, not per retry) and the recovery (INFO),
/// a hash mismatch after a delta (WARN), every change applied (DEBUG). Nothing is logged unless
/// asked. On error nothing is installed and `free_user_data` is not called.
/// Errors: REGISTRAR_ERR_NULL_ARGUMENT, REGISTRAR_ERR_INVALID_ARGUMENT (bad level),
/// REGISTRAR_ERR_FORKED.
#[no_mangle]
pub extern "C" fn registrar_discovery_set_logger(
    discovery: *const registrar_discovery,
    callback: registrar_log_callback,
    user_data: *mut c_void,
    free_user_data: registrar_free_callback,
    max_level: i32,
) -> registrar_status {
    guard("registrar_discovery_set_logger", || {
        // SAFETY: NULL or a live handle.
        let handle = unsafe { discovery_ref(discovery) }?;
        handle.discovery.set_logger(super::logger::c_logger(
            callback,
            user_data,
            free_user_data,
            max_level,
        )?);
        Ok(())
    })
}

/// A C listener with its user data; frees the user data when dropped (once, after the last
/// call: the cache drops its last reference only then).
struct ListenerSink {
    callback: unsafe extern "C" fn(*mut c_void, u64),
    user_data: *mut c_void,
    free_user_data: registrar_free_callback,
}

// SAFETY: the documented contract of registrar_discovery_set_listener is that the listener and
// its user_data may be used from the discovery thread.
unsafe impl Send for ListenerSink {}
unsafe impl Sync for ListenerSink {}

impl ListenerSink {
    fn call(&self, version: u64) {
        // SAFETY: a valid callback and user_data from the host.
        unsafe { (self.callback)(self.user_data, version) };
    }
}

impl Drop for ListenerSink {
    fn drop(&mut self) {
        if let Some(free) = self.free_user_data {
            // SAFETY: called once, as promised to the host.
            unsafe { free(self.user_data) };
        }
    }
}

/// Fills `*out` with the cache's state, version, size, age and counters.
/// Errors: REGISTRAR_ERR_NULL_ARGUMENT, REGISTRAR_ERR_FORKED.
#[no_mangle]
pub extern "C" fn registrar_discovery_get_info(
    discovery: *const registrar_discovery,
    out: *mut registrar_discovery_info,
) -> registrar_status {
    guard("registrar_discovery_get_info", || {
        // SAFETY: NULL or a live handle.
        let handle = unsafe { discovery_ref(discovery) }?;
        let out = out_ptr(out, "out")?;
        let info = handle.discovery.info();
        let c = registrar_discovery_info {
            state: match info.phase {
                DiscoveryPhase::NotStarted => {
                    registrar_discovery_state::REGISTRAR_DISCOVERY_NOT_STARTED
                }
                DiscoveryPhase::Running => registrar_discovery_state::REGISTRAR_DISCOVERY_RUNNING,
                DiscoveryPhase::Stopped => registrar_discovery_state::REGISTRAR_DISCOVERY_STOPPED,
            },
            ready: i32::from(info.version > 0),
            version: info.version,
            apps: info.apps as u64,
            instances: info.instances as u64,
            age_ms: info
                .age
                .map_or(-1, |a| i64::try_from(a.as_millis()).unwrap_or(i64::MAX)),
            last_error: info
                .last_error
                .as_ref()
                .map_or(registrar_status::REGISTRAR_OK, registrar_status::from),
            full_fetches: info.counters.full_fetches,
            delta_fetches: info.counters.delta_fetches,
            hash_mismatches: info.counters.hash_mismatches,
            failed_refreshes: info.counters.failed_refreshes,
        };
        // SAFETY: out was checked non-null and points to caller-owned memory.
        unsafe { out.write(c) };
        Ok(())
    })
}

/// Copies the message of the last refresh's failure ("" if it succeeded) into `buf`,
/// snprintf-style; `*out_len` receives its full length.
/// Errors: REGISTRAR_ERR_NULL_ARGUMENT, REGISTRAR_ERR_FORKED.
#[no_mangle]
pub extern "C" fn registrar_discovery_last_error(
    discovery: *const registrar_discovery,
    buf: *mut c_char,
    buf_len: usize,
    out_len: *mut usize,
) -> registrar_status {
    guard("registrar_discovery_last_error", || {
        // SAFETY: NULL or a live handle.
        let handle = unsafe { discovery_ref(discovery) }?;
        let message = handle
            .discovery
            .info()
            .last_error
            .map(|e| e.to_string())
            .unwrap_or_default();
        write_string(&message, buf, buf_len, out_len)
    })
}

/// Copies a JSON snapshot of the cache's state into `buf`, snprintf-style; `*out_len`
/// receives its full length. For debugging: phase, version, size, counters, the last error
/// (code and message, without credentials), the server in use, and times (ms since the Unix
/// epoch). Fields may be added in later versions.
/// Errors: REGISTRAR_ERR_NULL_ARGUMENT, REGISTRAR_ERR_FORKED.
#[no_mangle]
pub extern "C" fn registrar_discovery_snapshot_json(
    discovery: *const registrar_discovery,
    buf: *mut c_char,
    buf_len: usize,
    out_len: *mut usize,
) -> registrar_status {
    guard("registrar_discovery_snapshot_json", || {
        // SAFETY: NULL or a live handle.
        let handle = unsafe { discovery_ref(discovery) }?;
        let json = crate::snapshot::discovery_json(&handle.discovery, super::status::error_name);
        write_string(&json, buf, buf_len, out_len)
    })
}

/// The instances under an application name (`REGISTRAR_LOOKUP_APP`, case-insensitive), a VIP
/// (`REGISTRAR_LOOKUP_VIP`) or a secure VIP (`REGISTRAR_LOOKUP_SECURE_VIP`, both exact), sorted
/// by instance id. UP instances only, unless `flags` has `REGISTRAR_QUERY_ALL_STATUSES`.
/// An unknown name, or a cache that has not fetched yet, gives an empty list
/// (`registrar_discovery_get_info` tells which). Writes `*out` only on success; free it with
/// `registrar_instance_list_free`.
/// Errors: REGISTRAR_ERR_NULL_ARGUMENT, REGISTRAR_ERR_INVALID_UTF8,
/// REGISTRAR_ERR_INVALID_ARGUMENT (lookup or flags), REGISTRAR_ERR_SHUT_DOWN, REGISTRAR_ERR_FORKED.
#[no_mangle]
pub extern "C" fn registrar_discovery_instances(
    discovery: *const registrar_discovery,
    lookup: i32,
    name: *const c_char,
    flags: u32,
    out: *mut *mut registrar_instance_list,
) -> registrar_status {
    guard("registrar_discovery_instances", || {
        // SAFETY: NULL or a live handle; name valid for the call.
        let handle = unsafe { discovery_ref(discovery) }?;
        let name = unsafe { input(name, "name") }?;
        let out = out_ptr(out, "out")?;
        let lookup = lookup_kind(lookup)?;
        check_flags(flags, REGISTRAR_QUERY_ALL_STATUSES, "flags")?;
        let (registry, version) = current(handle)?;
        let all = flags & REGISTRAR_QUERY_ALL_STATUSES != 0;
        let found = registry
            .as_deref()
            .map_or_else(Vec::new, |r| r.instances(lookup, name, all).to_vec());
        write_list(out, found, version)
    })
}

/// Every cached instance (UP only unless `flags` has `REGISTRAR_QUERY_ALL_STATUSES`), sorted
/// by instance id. Free the list with `registrar_instance_list_free`.
/// Errors: REGISTRAR_ERR_NULL_ARGUMENT, REGISTRAR_ERR_INVALID_ARGUMENT (flags),
/// REGISTRAR_ERR_SHUT_DOWN, REGISTRAR_ERR_FORKED.
#[no_mangle]
pub extern "C" fn registrar_discovery_all(
    discovery: *const registrar_discovery,
    flags: u32,
    out: *mut *mut registrar_instance_list,
) -> registrar_status {
    guard("registrar_discovery_all", || {
        // SAFETY: NULL or a live handle.
        let handle = unsafe { discovery_ref(discovery) }?;
        let out = out_ptr(out, "out")?;
        check_flags(flags, REGISTRAR_QUERY_ALL_STATUSES, "flags")?;
        let (registry, version) = current(handle)?;
        let all = flags & REGISTRAR_QUERY_ALL_STATUSES != 0;
        let found = registry.as_deref().map_or_else(Vec::new, |r| {
            r.all()
                .iter()
                .filter(|i| all || i.status == InstanceStatus::Up)
                .cloned()
                .collect()
        });
        write_list(out, found, version)
    })
}

/// The instance(s) with this instance id, whatever their status (normally one; ids are unique
/// per application). Free the list with `registrar_instance_list_free`.
/// Errors: REGISTRAR_ERR_NOT_FOUND (no such instance in the cache), REGISTRAR_ERR_NULL_ARGUMENT,
/// REGISTRAR_ERR_INVALID_UTF8, REGISTRAR_ERR_SHUT_DOWN, REGISTRAR_ERR_FORKED.
#[no_mangle]
pub extern "C" fn registrar_discovery_instance(
    discovery: *const registrar_discovery,
    instance_id: *const c_char,
    out: *mut *mut registrar_instance_list,
) -> registrar_status {
    guard("registrar_discovery_instance", || {
        // SAFETY: NULL or a live handle; instance_id valid for the call.
        let handle = unsafe { discovery_ref(discovery) }?;
        let id = unsafe { input(instance_id, "instance_id") }?;
        let out = out_ptr(out, "out")?;
        let (registry, version) = current(handle)?;
        let found = registry
            .as_deref()
            .map_or_else(Vec::new, |r| r.instance(id).to_vec());
        if found.is_empty() {
            return Err(not_found(
                handle,
                registry.is_some(),
                &format!("instance {}", quote(id)),
            ));
        }
        write_list(out, found, version)
    })
}

fn not_found(handle: &registrar_discovery, ready: bool, what: &str) -> FfiError {
    if ready {
        Error::NotFound(format!("no {what} in the cached registry")).into()
    } else {
        let why = match handle.discovery.info().last_error {
            Some(e) => format!("last error: {e}"),
            None => "call registrar_discovery_start, then registrar_discovery_wait_ready".into(),
        };
        Error::NotFound(format!(
            "no {what}: the registry has not been fetched yet ({why})"
        ))
        .into()
    }
}

/// Chooses one UP instance and hands it, with the registry's version, to `use_it`, which runs
/// while the registry is read: no reference to the registry is taken, so a lookup costs one
/// read lock, the round-robin counter and whatever `use_it` does.
fn choose<R>(
    handle: &registrar_discovery,
    lookup: i32,
    name: &str,
    choice: i32,
    use_it: impl FnOnce(&Arc<Instance>, u64) -> R,
) -> Result<R, FfiError> {
    let lookup = lookup_kind(lookup)?;
    let choice = choice_kind(choice)?;
    if handle.discovery.is_stopped() {
        return Err(Error::ShutDown.into());
    }
    // Err(whether a registry has been fetched) when there is nothing to choose.
    let chosen = handle.discovery.read_current(|current| match current {
        Some((registry, version)) => match registry.choose(lookup, name, choice) {
            Some(instance) => Ok(use_it(instance, version)),
            None => Err(true),
        },
        None => Err(false),
    });
    chosen.map_err(|fetched| {
        let what = match lookup {
            Lookup::App => format!("UP instance of application {}", quote(name)),
            Lookup::Vip => format!("UP instance with VIP {}", quote(name)),
            Lookup::SecureVip => format!("UP instance with secure VIP {}", quote(name)),
        };
        not_found(handle, fetched, &what)
    })
}

/// Chooses one UP instance under an application name / VIP / secure VIP (`lookup` as for
/// `registrar_discovery_instances`): `REGISTRAR_CHOICE_ROUND_ROBIN` (each UP instance in turn,
/// evenly, across refreshes) or `REGISTRAR_CHOICE_RANDOM`. Writes a list of one instance;
/// free it with `registrar_instance_list_free`.
/// Errors: REGISTRAR_ERR_NOT_FOUND (no UP instance, or nothing fetched yet: the message says
/// which), REGISTRAR_ERR_INVALID_ARGUMENT, REGISTRAR_ERR_NULL_ARGUMENT,
/// REGISTRAR_ERR_INVALID_UTF8, REGISTRAR_ERR_SHUT_DOWN, REGISTRAR_ERR_FORKED.
#[no_mangle]
pub extern "C" fn registrar_discovery_choose(
    discovery: *const registrar_discovery,
    lookup: i32,
    name: *const c_char,
    choice: i32,
    out: *mut *mut registrar_instance_list,
) -> registrar_status {
    guard("registrar_discovery_choose", || {
        // SAFETY: NULL or a live handle; name valid for the call.
        let handle = unsafe { discovery_ref(discovery) }?;
        let name = unsafe { input(name, "name") }?;
        let out = out_ptr(out, "out")?;
        let list = choose(handle, lookup, name, choice, |instance, version| {
            registrar_instance_list::one(instance.clone(), version)
        })?;
        // SAFETY: out was checked non-null.
        unsafe { *out = Box::into_raw(list) };
        Ok(())
    })
}

/// Chooses one UP instance like `registrar_discovery_choose` and copies its base URL into
/// `buf`, snprintf-style (`*out_len` receives the full length): `http://host:port`, or with
/// `REGISTRAR_URL_SECURE` in `url_flags` `https://host:securePort` when the instance's secure
/// port is enabled; `REGISTRAR_URL_USE_IP` uses the IP address in place of the host name.
/// If `*out_len >= buf_len` the URL was truncated: call again with a bigger buffer (that call
/// chooses again). 512 bytes is plenty for real host names.
/// Errors: as `registrar_discovery_choose`.
#[no_mangle]
pub extern "C" fn registrar_discovery_choose_url(
    discovery: *const registrar_discovery,
    lookup: i32,
    name: *const c_char,
    choice: i32,
    url_flags: u32,
    buf: *mut c_char,
    buf_len: usize,
    out_len: *mut usize,
) -> registrar_status {
    guard("registrar_discovery_choose_url", || {
        // SAFETY: NULL or a live handle; name valid for the call.
        let handle = unsafe { discovery_ref(discovery) }?;
        let name = unsafe { input(name, "name") }?;
        out_ptr(out_len, "out_len")?;
        check_flags(
            url_flags,
            REGISTRAR_URL_SECURE | REGISTRAR_URL_USE_IP,
            "url_flags",
        )?;
        let full = choose(handle, lookup, name, choice, |instance, _| {
            let url = instance.base_url_parts(
                url_flags & REGISTRAR_URL_SECURE != 0,
                url_flags & REGISTRAR_URL_USE_IP != 0,
            );
            copy_out_pieces(|piece| url.pieces(piece), buf, buf_len)
        })?;
        // SAFETY: out_len was checked non-null above.
        unsafe { *out_len = full };
        Ok(())
    })
}

/// Stops the cache's task (a fetch in flight is abandoned), waiting at most `timeout_ms`
/// (0: REGISTRY_TIMEOUT). Idempotent. After it returns nothing more is fetched, the listener is
/// not called again and queries fail with REGISTRAR_ERR_SHUT_DOWN (lists already returned stay
/// valid). Called from the listener it only requests the stop.
/// Errors: REGISTRAR_ERR_TIMEOUT, REGISTRAR_ERR_NULL_ARGUMENT, REGISTRAR_ERR_FORKED.
#[no_mangle]
pub extern "C" fn registrar_discovery_stop(
    discovery: *const registrar_discovery,
    timeout_ms: u32,
) -> registrar_status {
    guard("registrar_discovery_stop", || {
        // SAFETY: NULL or a live handle.
        let handle = unsafe { discovery_ref(discovery) }?;
        let timeout = match timeout_ms {
            0 => handle.discovery.config().timeout,
            ms => millis(ms),
        };
        handle.discovery.stop(timeout)?;
        Ok(())
    })
}

/// Frees a discovery handle, stopping it first if it runs (bounded by REGISTRY_TIMEOUT).
/// NULL is a no-op. Lists obtained from it stay valid until freed themselves. In a fork()
/// child it only releases memory. Must not race other calls on the handle and must not be
/// called from its listener.
#[no_mangle]
pub extern "C" fn registrar_discovery_free(discovery: *mut registrar_discovery) {
    // SAFETY: NULL or from Box::into_raw in registrar_discovery_new, freed once (caller contract).
    unsafe { super::free_handle(discovery, |d| d.pid) };
}

/// The number of instances in a list (0 for NULL).
#[no_mangle]
pub extern "C" fn registrar_instance_list_len(list: *const registrar_instance_list) -> usize {
    // SAFETY: NULL or a live list, per the documented contract.
    unsafe { list.as_ref() }.map_or(0, |l| l.entries().len())
}

/// The instance at `index` (0-based), valid until the list is freed; NULL when `list` is NULL
/// or `index` is out of range.
#[no_mangle]
pub extern "C" fn registrar_instance_list_get(
    list: *const registrar_instance_list,
    index: usize,
) -> *const registrar_instance {
    // SAFETY: NULL or a live list, per the documented contract.
    unsafe { list.as_ref() }
        .and_then(|l| l.entries().get(index))
        .map_or(ptr::null(), |e| &e.view as *const registrar_instance)
}

/// The version of the cached registry the list was taken from (compare with
/// `registrar_discovery_info.version`); 0 for NULL or a list taken before the first fetch.
#[no_mangle]
pub extern "C" fn registrar_instance_list_version(list: *const registrar_instance_list) -> u64 {
    // SAFETY: NULL or a live list, per the documented contract.
    unsafe { list.as_ref() }.map_or(0, |l| l.version)
}

/// Copies the base URL of the instance at `index` into `buf`, snprintf-style (`*out_len`
/// receives the full length); `url_flags` as for `registrar_discovery_choose_url`.
/// Errors: REGISTRAR_ERR_NULL_ARGUMENT, REGISTRAR_ERR_INVALID_ARGUMENT (index out of range,
/// unknown flags).
#[no_mangle]
pub extern "C" fn registrar_instance_list_url(
    list: *const registrar_instance_list,
    index: usize,
    url_flags: u32,
    buf: *mut c_char,
    buf_len: usize,
    out_len: *mut usize,
) -> registrar_status {
    guard("registrar_instance_list_url", || {
        // SAFETY: NULL or a live list.
        let list = unsafe { reference(list, "list") }?;
        check_flags(
            url_flags,
            REGISTRAR_URL_SECURE | REGISTRAR_URL_USE_IP,
            "url_flags",
        )?;
        let entries = list.entries();
        let instance = &entries
            .get(index)
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "index {index} is out of range (the list has {} instances)",
                    entries.len()
                ))
            })?
            .instance;
        let url = instance.base_url(
            url_flags & REGISTRAR_URL_SECURE != 0,
            url_flags & REGISTRAR_URL_USE_IP != 0,
        );
        write_string(&url, buf, buf_len, out_len)
    })
}

/// Frees a list. NULL is a no-op. Every pointer read from it becomes invalid.
#[no_mangle]
pub extern "C" fn registrar_instance_list_free(list: *mut registrar_instance_list) {
    if !list.is_null() {
        let _ = std::panic::catch_unwind(|| {
            // SAFETY: list came from Box::into_raw in write_list and is freed once.
            drop(unsafe { Box::from_raw(list) });
        });
    }
}

/// The name of a `registrar_instance_status`, e.g. "UP", "OUT_OF_SERVICE"; "UNKNOWN" for any
/// other number. Static: never free it.
#[no_mangle]
pub extern "C" fn registrar_instance_status_str(status: i32) -> *const c_char {
    let name: &'static [u8] = match status {
        1 => b"UP\0",
        2 => b"DOWN\0",
        3 => b"STARTING\0",
        4 => b"OUT_OF_SERVICE\0",
        _ => b"UNKNOWN\0",
    };
    name.as_ptr().cast()
}
