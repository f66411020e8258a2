//! The few settings a discovery cache needs. A process that only discovers other services has
//! no instance of its own, so nothing about one (REGISTRY_APP_NAME, ports...) is required.

use std::time::Duration;

use crate::config::{
    check_type, checked, connection_settings, fetch_interval_setting, max_response_bytes_setting,
    timeout_setting, tls_settings, Connection, Problems, ServiceUrl, Settings,
};
use crate::error::Result;
use crate::eureka::Tls;

/// A validated discovery configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct DiscoveryConfig {
    /// REGISTRY_URL (with REGISTRY_USER / REGISTRY_PASSWORD); failover in order.
    pub service_urls: Vec<ServiceUrl>,
    /// REGISTRY_CA_FILE, REGISTRY_CLIENT_CERT, REGISTRY_CLIENT_KEY, loaded and checked.
    pub tls: Tls,
    /// REGISTRY_TIMEOUT: per HTTP request.
    pub timeout: Duration,
    /// REGISTRY_FETCH_INTERVAL: time between two refreshes of the cache.
    pub fetch_interval: Duration,
    /// REGISTRY_MAX_RESPONSE_BYTES: the largest registry answer read.
    pub max_response_bytes: usize,
}

impl DiscoveryConfig {
    /// How to reach the registry: the same [`Connection`] a registration uses.
    pub fn connection(&self) -> Connection {
        Connection {
            service_urls: self.service_urls.clone(),
            timeout: self.timeout,
            tls: self.tls.clone(),
            max_response_bytes: self.max_response_bytes,
        }
    }

    /// Reads REGISTRY_TYPE, REGISTRY_URL, REGISTRY_USER, REGISTRY_PASSWORD, the TLS settings,
    /// REGISTRY_TIMEOUT, REGISTRY_FETCH_INTERVAL and REGISTRY_MAX_RESPONSE_BYTES; every other
    /// setting is ignored. Every mistake is reported at once.
    pub fn from_settings(settings: &Settings) -> Result<DiscoveryConfig> {
        let mut problems = Problems::default();
        check_type(settings, &mut problems);
        let service_urls = connection_settings(settings, &mut problems);
        let tls = tls_settings(settings, &service_urls, &mut problems);
        let timeout = timeout_setting(settings, &mut problems);
        let fetch_interval = fetch_interval_setting(settings, &mut problems);
        let max_response_bytes = max_response_bytes_setting(settings, &mut problems);
        problems.into_result()?;
        Ok(DiscoveryConfig {
            service_urls,
            tls: checked(tls, "TLS settings")?,
            timeout,
            fetch_interval,
            max_response_bytes,
        })
    }

    /// From the `REGISTRY_*` environment alone.
    pub fn from_env() -> Result<DiscoveryConfig> {
        DiscoveryConfig::from_settings(&Settings::from_env())
    }

    /// A configuration for one service URL with the default timeout and fetch interval.
    pub fn for_url(url: &str) -> Result<DiscoveryConfig> {
        let mut settings = Settings::new();
        settings.set("REGISTRY_URL", url)?;
        DiscoveryConfig::from_settings(&settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needs_only_the_url() {
        let c = DiscoveryConfig::for_url("http://u:p@127.0.0.1:8761/eureka/apps/").unwrap();
        assert_eq!(c.service_urls[0].base(), "http://127.0.0.1:8761/eureka/");
        assert_eq!(c.service_urls[0].credentials.as_ref().unwrap().user, "u");
        assert_eq!(c.timeout, Duration::from_secs(5));
        assert_eq!(c.fetch_interval, Duration::from_secs(30));
        let mut s = Settings::new();
        s.set("url", "http://h/eureka/").unwrap();
        s.set("fetch_interval", "0.5").unwrap();
        s.set("timeout", "2").unwrap();
        let c = DiscoveryConfig::from_settings(&s).unwrap();
        assert_eq!(c.fetch_interval, Duration::from_millis(500));
        assert_eq!(c.timeout, Duration::from_secs(2));
        s.set("fetch_interval", "0").unwrap();
        let e = DiscoveryConfig::from_settings(&s).unwrap_err();
        assert!(e.to_string().contains("REGISTRY_FETCH_INTERVAL '0'"), "{e}");
    }

    #[test]
    fn mistakes_name_the_setting() {
        let e = DiscoveryConfig::from_settings(&Settings::new()).unwrap_err();
        assert!(e.to_string().contains("REGISTRY_URL is not set"), "{e}");
        let mut s = Settings::new();
        s.set("url", "http://h/eureka/").unwrap();
        s.set("timeout", "never").unwrap();
        let e = DiscoveryConfig::from_settings(&s).unwrap_err();
        assert!(e.to_string().contains("REGISTRY_TIMEOUT 'never'"), "{e}");
        s.set("timeout", "").unwrap();
        s.set("type", "consul").unwrap();
        let e = DiscoveryConfig::from_settings(&s).unwrap_err();
        assert!(e.to_string().contains("REGISTRY_TYPE 'consul'"), "{e}");
    }
}
