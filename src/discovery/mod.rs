//! Discovery: finding the instances of other services, from a local copy of the registry that
//! a background thread keeps fresh.
//!
//! - [`DiscoveryConfig`]: the settings it needs (REGISTRY_URL, credentials, REGISTRY_TIMEOUT,
//!   REGISTRY_FETCH_INTERVAL); no REGISTRY_APP_NAME, a process may discover without registering
//! - [`Discovery`]: the cache and its thread: full fetch, then deltas checked against the
//!   server's `apps__hashcode`; the last good registry survives every error
//! - [`Registry`]: one immutable, indexed copy of the registry; lookups by app
//!   (case-insensitive), VIP, secure VIP (exact) and instance id, UP-only by default, and
//!   round-robin / random choice
//!
//! A process that only registers never creates a [`Discovery`] and pays nothing for it.

mod cache;
mod config;
mod registry;

pub use cache::{
    Discovery, DiscoveryCounters, DiscoveryInfo, DiscoveryPhase, Listener, MAX_DELTA_GAP,
};
pub use config::DiscoveryConfig;
pub use registry::{Choice, Lookup, Registry};

pub use crate::eureka::read::{ActionType, Applications, Instance, Text};
