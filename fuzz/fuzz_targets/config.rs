//! The configuration parser on every setting at once: `REGISTRY_URL` lists (built from parts,
//! with user-info, or raw), metadata, numbers, names, for the agent and for discovery.
//!
//! Properties beyond "no crash": an accepted configuration is usable as promised (base URLs
//! that parse, end in `/`, carry no user-info, query or `apps/`; the credentials the user
//! meant; names that travel as one path segment each; numbers in range); a refusal names the
//! setting at fault; a value set is the value read back.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use registrar::config::{check_metadata_key, Config, HostDefaults, Settings, SETTINGS};
use registrar::discovery::DiscoveryConfig;
use registrar::eureka::paths;
use registrar::instance::InstanceStatus;
use registrar_fuzz::server_view;

#[derive(Arbitrary, Debug)]
struct Input {
    urls: Vec<UrlParts>,
    raw_url: Option<String>,
    /// Values for the other settings, by index into `SETTINGS` (some left unset).
    values: Vec<(u8, Value)>,
}

#[derive(Arbitrary, Debug)]
struct UrlParts {
    https: bool,
    user_info: Option<(String, Option<String>)>,
    host: Host,
    port: Option<u16>,
    path: Vec<String>,
    seed_form: bool,
    trailing_slash: bool,
}

#[derive(Arbitrary, Debug)]
enum Host {
    Loopback,
    Name(String),
    V6,
}

#[derive(Arbitrary, Debug)]
enum Value {
    Text(String),
    Number(f64),
    Integer(i64),
    /// A metadata list `k=v,...` from pairs.
    Pairs(Vec<(String, String)>),
}

/// Percent-encodes everything but unreserved characters (what a careful user writes).
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

impl UrlParts {
    fn render(&self) -> String {
        let mut s = String::from(if self.https { "https://" } else { "http://" });
        if let Some((user, password)) = &self.user_info {
            s += &encode(user);
            if let Some(p) = password {
                s += ":";
                s += &encode(p);
            }
            s += "@";
        }
        match &self.host {
            Host::Loopback => s += "127.0.0.1",
            Host::Name(n) => s += n,
            Host::V6 => s += "[::1]",
        }
        if let Some(p) = self.port {
            s += &format!(":{p}");
        }
        for segment in &self.path {
            s += "/";
            s += &encode(segment);
        }
        if self.seed_form {
            s += "/apps";
        }
        if self.trailing_slash {
            s += "/";
        }
        s
    }
}

fn host() -> HostDefaults {
    HostDefaults {
        hostname: || Some("fuzz-host".into()),
        ip_address: || Some("10.0.0.1".into()),
    }
}

fuzz_target!(|input: Input| {
    registrar_fuzz::small_trust_store();
    let mut settings = Settings::new();
    let url = match &input.raw_url {
        Some(raw) => raw.clone(),
        None => input
            .urls
            .iter()
            .map(UrlParts::render)
            .collect::<Vec<_>>()
            .join(","),
    };
    let mut expected: Vec<(&'static str, String)> = Vec::new();
    settings.set("REGISTRY_URL", &url).unwrap();
    expected.push(("REGISTRY_URL", url.clone()));
    for (index, value) in &input.values {
        let key = SETTINGS[*index as usize % SETTINGS.len()].0;
        if registrar_fuzz::FILE_SETTINGS.contains(&key) {
            continue;
        }
        let text = match value {
            Value::Text(t) => t.clone(),
            Value::Number(n) => n.to_string(),
            Value::Integer(n) => n.to_string(),
            Value::Pairs(pairs) => pairs
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(","),
        };
        // Keys are case-insensitive, with or without the prefix.
        let spelled = if text.len() % 2 == 0 {
            key.to_string()
        } else {
            key[9..].to_lowercase()
        };
        settings
            .set(&spelled, &text)
            .expect("a known key is accepted");
        expected.retain(|(k, _)| *k != key);
        expected.push((key, text));
    }
    // What was set is what is read back (the password never is).
    for (key, value) in &expected {
        let read = settings.get(key).unwrap();
        if *key == "REGISTRY_PASSWORD" {
            assert_eq!(read, None);
        } else if value.is_empty() {
            assert_eq!(read, None);
        } else {
            assert_eq!(read, Some(value.as_str()));
        }
    }

    match Config::from_settings_with(&settings, &host()) {
        Ok(config) => {
            check_service_urls(&config.service_urls, &settings);
            assert!(!config.app_name.is_empty());
            assert_eq!(config.app_name, config.app_name.to_ascii_uppercase());
            assert!(config.port != 0 && config.secure_port != Some(0));
            for key in config.metadata.keys() {
                assert!(
                    check_metadata_key(key).is_ok(),
                    "bad metadata key {key:?} accepted"
                );
            }
            for d in [
                config.heartbeat_interval,
                config.timeout,
                config.fetch_interval,
            ] {
                assert!(
                    d.as_secs_f64() >= 0.009 && d.as_secs_f64() <= 86_400.0,
                    "{d:?}"
                );
            }
            assert!(u64::from(config.lease_duration_secs) > config.heartbeat_interval.as_secs());
            // Names travel as one path segment each: the server must see exactly them.
            let base = url::Url::parse(&config.service_urls[0].base()).unwrap();
            // A base the server itself cannot read (the user's own %2F, say) proves nothing.
            let Ok((mut base_segments, _)) = server_view(base.as_str()) else {
                return;
            };
            assert_eq!(base_segments.pop().as_deref(), Some(""), "base ends in /");
            let target =
                paths::heartbeat(&config.app_name, &config.instance_id, InstanceStatus::Up, 1);
            let sent = paths::join(&base, &target);
            let (segments, _) = server_view(sent.as_str())
                .unwrap_or_else(|why| panic!("{sent}: {why} ({:?})", config.instance_id));
            let mut want = base_segments;
            want.extend([
                "apps".to_string(),
                config.app_name.clone(),
                config.instance_id.clone(),
            ]);
            assert_eq!(
                segments, want,
                "the server sees another resource than {target}"
            );
        }
        Err(e) => {
            let message = e.to_string();
            assert!(message.starts_with("invalid configuration: "), "{message}");
            assert!(
                message.contains("REGISTRY_"),
                "the setting is not named: {message}"
            );
        }
    }
    match DiscoveryConfig::from_settings(&settings) {
        Ok(discovery) => check_service_urls(&discovery.service_urls, &settings),
        Err(e) => assert!(e.to_string().contains("REGISTRY_"), "{e}"),
    }
});

fn check_service_urls(urls: &[registrar::config::ServiceUrl], settings: &Settings) {
    assert!(!urls.is_empty());
    let user_set = settings.get("REGISTRY_USER").unwrap().is_some();
    for service in urls {
        let base = url::Url::parse(&service.base())
            .unwrap_or_else(|e| panic!("base {:?} does not parse: {e}", service.base()));
        assert_eq!(base.as_str(), service.base(), "base not in normal form");
        assert!(matches!(base.scheme(), "http" | "https"));
        assert!(base.host_str().is_some_and(|h| !h.is_empty()));
        assert!(
            base.username().is_empty() && base.password().is_none(),
            "user-info kept"
        );
        assert!(base.query().is_none() && base.fragment().is_none());
        assert!(
            base.path().ends_with('/'),
            "base {} does not end in /",
            service.base()
        );
        assert!(
            !base.path().ends_with("/apps/"),
            "seed form kept: {}",
            service.base()
        );
        if user_set {
            let creds = service.credentials.as_ref().expect("REGISTRY_USER given");
            assert_eq!(
                Some(creds.user.as_str()),
                settings.get("REGISTRY_USER").unwrap()
            );
        }
        if let Some(creds) = &service.credentials {
            assert!(!creds.user.is_empty());
        }
    }
}
