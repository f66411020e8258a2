//! registrar: a native Netflix Eureka client with a C ABI.
//!
//! A service registers its instance, keeps it alive with heartbeats from a background thread,
//! and deregisters on shutdown. Data flows one way:
//!
//! - [`config`]: `REGISTRY_*` settings, defaults and validation
//! - [`instance`]: the instance model and its registration JSON
//! - [`eureka`]: the Eureka REST protocol (paths, verbs, status codes, auth, failover)
//! - [`health`]: health settings, bounded HTTP/port probes, the failure/success threshold
//! - [`health_watch`]: runs a client's health check on schedule, bounded, off the agent thread
//! - [`agent`]: the lifecycle state machine of one registration
//! - [`events`]: the state changes a client or discovery cache reports to its listener
//! - [`discovery`]: the registry cache (full fetch, deltas, hash check) and instance selection
//! - [`worker`]: the one background thread of the process, on which every registration and
//!   discovery cache is a task; backoff, stop deadlines, callbacks
//! - [`host`]: the OS facts behind the instance defaults (host name, first IPv4)
//! - [`metrics`]: counters of every live handle, rendered in the Prometheus text format
//! - [`snapshot`]: a JSON state snapshot of one handle, for debugging
//! - [`ffi`]: the C boundary (`registrar_*` functions, raw pointers; nothing else may use them)
//!
//! The C header `include/registrar.h` is generated from [`ffi`] by `build.rs`.

pub mod agent;
pub mod config;
pub mod discovery;
pub mod error;
pub mod eureka;
pub mod events;
pub mod ffi;
pub mod health;
pub mod health_watch;
pub mod host;
pub mod instance;
pub mod metrics;
pub mod snapshot;
pub mod worker;

pub use error::{Error, Result};
