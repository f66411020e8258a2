//! The Eureka REST protocol: paths, verbs, expected status codes, auth, timeouts, failover.
//!
//! Everything that knows what a Eureka server says lives here; the agent only sees
//! `register`, `heartbeat` and `deregister` and the typed outcome of each.

// Public (hidden) only so the fuzz target `read_registry` decodes bodies through it.
#[doc(hidden)]
pub mod body;
mod http;
// Public (hidden) only so the fuzz targets in `fuzz/` can check the paths without a network.
#[doc(hidden)]
pub mod paths;
pub mod read;
mod tls;

pub use http::EurekaHttp;
pub use tls::Tls;

/// What a heartbeat told us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heartbeat {
    /// 200: the lease was renewed.
    Renewed,
    /// 404: the server does not know this instance (restart, eviction, or newer local data):
    /// the Eureka protocol's request to register again now.
    NotRegistered,
}
