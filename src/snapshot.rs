//! A JSON state snapshot of one handle, for debugging: where it is in its life, its counters,
//! its last error (credentials redacted), the server in use and when things last happened.
//!
//! The shape is meant for people and log files, not for programs to depend on field by field;
//! fields may be added. Times are milliseconds since the Unix epoch (`null`: not yet).

use serde_json::{json, Value};

use crate::agent::{Agent, Phase};
use crate::config::redact_userinfo;
use crate::discovery::{Discovery, DiscoveryPhase};
use crate::error::Error;

/// Names an error for the snapshot (the C layer passes its status names, e.g.
/// `REGISTRAR_ERR_TRANSPORT`, so the snapshot speaks the same language as the API).
pub type ErrorName = fn(&Error) -> &'static str;

fn error_json(error: Option<&Error>, name: ErrorName) -> Value {
    match error {
        None => Value::Null,
        Some(e) => json!({
            "code": name(e),
            // Messages are written without credentials; redact again in case a URL slipped in.
            "message": redact_userinfo(&e.to_string()),
        }),
    }
}

/// The state of a client as JSON.
pub fn client_json(agent: &Agent, name: ErrorName) -> String {
    let snapshot = agent.snapshot();
    let counts = agent.metrics().counts();
    let config = agent.config();
    let phase = match snapshot.phase {
        Phase::NotStarted => "not_started",
        Phase::Registering => "registering",
        Phase::Registered => "registered",
        Phase::Stopped => "stopped",
    };
    json!({
        "type": "client",
        "app": config.app_name,
        "instance_id": config.instance_id,
        "phase": phase,
        "status": snapshot.status.as_str(),
        "host_status": snapshot.host_status.as_str(),
        "draining": snapshot.draining,
        "health": health_json(&snapshot.health),
        "server": agent.server_in_use(),
        "heartbeat_interval_ms": config.heartbeat_interval.as_millis() as u64,
        "counters": {
            "registrations": {
                "success": counts.registrations_success,
                "error": counts.registrations_error,
            },
            "heartbeats": {
                "success": counts.heartbeats_success,
                "not_found": counts.heartbeats_not_found,
                "error": counts.heartbeats_error,
            },
        },
        "last_error": error_json(snapshot.last_error.as_ref(), name),
        "created_unix_ms": counts.created_unix_ms,
        "last_success_unix_ms": counts.last_success_unix_ms,
        "last_failure_unix_ms": counts.last_failure_unix_ms,
    })
    .to_string()
}

/// The health check's state; `null` when the client has none.
fn health_json(health: &crate::health_watch::HealthState) -> Value {
    if !health.configured {
        return Value::Null;
    }
    json!({
        "healthy": health.healthy,
        "last_failure": health.last_failure.as_deref().map(redact_userinfo),
        "checks": { "passed": health.checks_passed, "failed": health.checks_failed },
    })
}

/// The state of a discovery cache as JSON.
pub fn discovery_json(discovery: &Discovery, name: ErrorName) -> String {
    let info = discovery.info();
    let counts = discovery.metrics().counts();
    let phase = match info.phase {
        DiscoveryPhase::NotStarted => "not_started",
        DiscoveryPhase::Running => "running",
        DiscoveryPhase::Stopped => "stopped",
    };
    json!({
        "type": "discovery",
        "cache": counts.id,
        "phase": phase,
        "server": discovery.server_in_use(),
        "version": info.version,
        "applications": info.apps,
        "instances": info.instances,
        "age_ms": info.age.map(|a| a.as_millis() as u64),
        "counters": {
            "full_fetches": { "success": counts.full_success, "error": counts.full_error },
            "delta_fetches": { "success": counts.delta_success, "error": counts.delta_error },
            "hash_mismatches": counts.hash_mismatches,
            "failed_refreshes": info.counters.failed_refreshes,
        },
        "last_error": error_json(info.last_error.as_ref(), name),
        "created_unix_ms": counts.created_unix_ms,
        "last_success_unix_ms": counts.last_success_unix_ms,
        "last_failure_unix_ms": counts.last_failure_unix_ms,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, Settings};
    use crate::discovery::DiscoveryConfig;

    fn name(_: &Error) -> &'static str {
        "TEST_CODE"
    }

    #[test]
    fn a_new_client_snapshot_has_no_credentials() {
        let mut settings = Settings::new();
        settings
            .set("url", "http://user:s3cret@127.0.0.1:1/eureka/")
            .unwrap();
        settings.set("app_name", "snap").unwrap();
        let config = Config::from_settings(&settings).unwrap();
        let agent = Agent::new(config).unwrap();
        let text = client_json(&agent, name);
        assert!(!text.contains("s3cret"), "{text}");
        assert!(!text.contains("user:"), "{text}");
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["phase"], "not_started");
        assert_eq!(value["app"], "SNAP");
        assert_eq!(value["status"], "STARTING");
        assert_eq!(value["server"], "http://127.0.0.1:1/eureka/");
        assert_eq!(value["counters"]["heartbeats"]["success"], 0);
        assert!(value["last_error"].is_null());
        assert!(value["last_success_unix_ms"].is_null());
        assert!(value["created_unix_ms"].as_u64().unwrap() > 1_600_000_000_000);
    }

    #[test]
    fn a_new_discovery_snapshot_is_valid_json() {
        let mut settings = Settings::new();
        settings.set("url", "http://127.0.0.1:1/eureka/").unwrap();
        let config = DiscoveryConfig::from_settings(&settings).unwrap();
        let discovery = Discovery::new(config).unwrap();
        let value: Value = serde_json::from_str(&discovery_json(&discovery, name)).unwrap();
        assert_eq!(value["phase"], "not_started");
        assert!(value["server"].is_null());
        assert_eq!(value["instances"], 0);
    }
}
