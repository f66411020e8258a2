//! The instance as Eureka sees it: status values and the registration payload.
//!
//! Only fields the server knows are sent (unknown nested objects break its parser); ports are
//! `{"$": n, "@enabled": "true"}` objects, `dataCenterInfo` is `MyOwn`.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::config::Config;

/// The status of an instance, as Eureka spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InstanceStatus {
    Up,
    Down,
    Starting,
    OutOfService,
    Unknown,
}

impl InstanceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            InstanceStatus::Up => "UP",
            InstanceStatus::Down => "DOWN",
            InstanceStatus::Starting => "STARTING",
            InstanceStatus::OutOfService => "OUT_OF_SERVICE",
            InstanceStatus::Unknown => "UNKNOWN",
        }
    }

    /// Tolerant parse: anything unrecognised is UNKNOWN (what the Java client does).
    pub fn parse(s: &str) -> InstanceStatus {
        match s.trim().to_ascii_uppercase().as_str() {
            "UP" => InstanceStatus::Up,
            "DOWN" => InstanceStatus::Down,
            "STARTING" => InstanceStatus::Starting,
            "OUT_OF_SERVICE" => InstanceStatus::OutOfService,
            _ => InstanceStatus::Unknown,
        }
    }
}

/// Milliseconds since the epoch, strictly increasing for one instance: Eureka keeps whichever
/// copy has the newer `lastDirtyTimestamp`, so two changes in the same millisecond must differ.
pub fn next_dirty_timestamp(previous: u64) -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    now.max(previous + 1)
}

#[derive(Serialize)]
struct Port {
    #[serde(rename = "$")]
    number: u16,
    #[serde(rename = "@enabled")]
    enabled: &'static str,
}

#[derive(Serialize)]
struct DataCenterInfo {
    #[serde(rename = "@class")]
    class: &'static str,
    name: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LeaseInfo {
    renewal_interval_in_secs: u64,
    duration_in_secs: u32,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct InstancePayload<'a> {
    instance_id: &'a str,
    host_name: &'a str,
    app: &'a str,
    ip_addr: &'a str,
    status: &'static str,
    port: Port,
    secure_port: Port,
    data_center_info: DataCenterInfo,
    lease_info: LeaseInfo,
    metadata: &'a BTreeMap<String, String>,
    home_page_url: &'a str,
    status_page_url: &'a str,
    health_check_url: &'a str,
    vip_address: &'a str,
    secure_vip_address: &'a str,
    /// A string, as the Java client and current servers write it.
    last_dirty_timestamp: String,
}

#[derive(Serialize)]
struct Envelope<'a> {
    instance: InstancePayload<'a>,
}

/// The JSON body of `POST apps/{APP}` for this configuration, status, metadata and timestamp.
pub fn registration_body(
    config: &Config,
    status: InstanceStatus,
    metadata: &BTreeMap<String, String>,
    last_dirty_timestamp: u64,
) -> Vec<u8> {
    let secs = config.heartbeat_interval.as_secs_f64().ceil().max(1.0) as u64;
    let body = Envelope {
        instance: InstancePayload {
            instance_id: &config.instance_id,
            host_name: &config.hostname,
            app: &config.app_name,
            ip_addr: &config.ip_address,
            status: status.as_str(),
            port: Port {
                number: config.port,
                enabled: "true",
            },
            secure_port: match config.secure_port {
                Some(p) => Port {
                    number: p,
                    enabled: "true",
                },
                None => Port {
                    number: 443,
                    enabled: "false",
                },
            },
            data_center_info: DataCenterInfo {
                class: "com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo",
                name: "MyOwn",
            },
            lease_info: LeaseInfo {
                renewal_interval_in_secs: secs,
                duration_in_secs: config.lease_duration_secs,
            },
            metadata,
            home_page_url: &config.home_page_url,
            status_page_url: &config.status_page_url,
            health_check_url: &config.health_check_url,
            vip_address: &config.vip_address,
            secure_vip_address: &config.secure_vip_address,
            last_dirty_timestamp: last_dirty_timestamp.to_string(),
        },
    };
    // Serialising plain strings and numbers into a Vec cannot fail.
    serde_json::to_vec(&body).expect("instance payload serialises")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{HostDefaults, Settings};

    fn config() -> Config {
        let mut s = Settings::new();
        s.set("url", "http://127.0.0.1:8761/eureka/").unwrap();
        s.set("app_name", "my_awsome_go_ms").unwrap();
        s.set("secure_port", "8443").unwrap();
        s.set("metadata", "zone=a").unwrap();
        let host = HostDefaults {
            hostname: || Some("h".into()),
            ip_address: || Some("10.0.0.10".into()),
        };
        Config::from_settings_with(&s, &host).unwrap()
    }

    #[test]
    fn payload_has_the_shape_eureka_requires() {
        let c = config();
        let body = registration_body(&c, InstanceStatus::Starting, &c.metadata, 1234);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let i = &v["instance"];
        assert_eq!(i["app"], "MY_AWSOME_GO_MS");
        assert_eq!(i["hostName"], "h");
        assert_eq!(i["ipAddr"], "10.0.0.10");
        assert_eq!(i["status"], "STARTING");
        assert_eq!(
            i["port"],
            serde_json::json!({"$": 8080, "@enabled": "true"})
        );
        assert_eq!(
            i["securePort"],
            serde_json::json!({"$": 8443, "@enabled": "true"})
        );
        assert_eq!(
            i["dataCenterInfo"]["@class"],
            "com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo"
        );
        assert_eq!(i["dataCenterInfo"]["name"], "MyOwn");
        assert_eq!(
            i["leaseInfo"],
            serde_json::json!({"renewalIntervalInSecs": 30, "durationInSecs": 90})
        );
        assert_eq!(i["metadata"], serde_json::json!({"zone": "a"}));
        assert_eq!(i["lastDirtyTimestamp"], "1234");
        assert_eq!(i["instanceId"], "h:my_awsome_go_ms:8080");
        assert!(
            i.get("overriddenStatus").is_none(),
            "never send an override"
        );
    }

    #[test]
    fn dirty_timestamps_strictly_increase() {
        let a = next_dirty_timestamp(0);
        let b = next_dirty_timestamp(a);
        let c = next_dirty_timestamp(u64::MAX / 2);
        assert!(b > a && c > b);
    }

    #[test]
    fn status_parsing_is_tolerant() {
        assert_eq!(InstanceStatus::parse("up"), InstanceStatus::Up);
        assert_eq!(
            InstanceStatus::parse("OUT_OF_SERVICE"),
            InstanceStatus::OutOfService
        );
        assert_eq!(InstanceStatus::parse("weird"), InstanceStatus::Unknown);
    }
}
