//! Request paths: for every app name and instance id the configuration accepts, the resource
//! the server sees (the URL re-read by a standard URL parser, then as Tomcat and Jersey read
//! it: matrix parameters cut, percent-decoding, dot segments) is `{base}/apps/{APP}/{ID}`,
//! the heartbeat's query says the intended status and timestamp, and the heartbeat's PUT,
//! the deregistration's DELETE and the registration's POST address the same instance.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use registrar::config::{Config, HostDefaults, Settings};
use registrar::eureka::paths;
use registrar::instance::InstanceStatus;
use registrar_fuzz::server_view;

#[derive(Arbitrary, Debug)]
struct Input {
    app: String,
    instance_id: Option<String>,
    hostname: String,
    base_path: Vec<String>,
    status: u8,
    last_dirty_timestamp: u64,
}

fn host() -> HostDefaults {
    HostDefaults {
        hostname: || Some("fuzz-host".into()),
        ip_address: || Some("10.0.0.1".into()),
    }
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fuzz_target!(|input: Input| {
    let mut url = String::from("http://127.0.0.1:8761");
    for segment in &input.base_path {
        url += "/";
        url += &encode(segment);
    }
    let mut settings = Settings::new();
    settings.set("REGISTRY_URL", &url).unwrap();
    settings.set("REGISTRY_APP_NAME", &input.app).unwrap();
    settings.set("REGISTRY_HOSTNAME", &input.hostname).unwrap();
    if let Some(id) = &input.instance_id {
        settings.set("REGISTRY_INSTANCE_ID", id).unwrap();
    }
    // Only names the configuration accepts are sent; the default instance id is built from
    // the host name, app and port.
    let Ok(config) = Config::from_settings_with(&settings, &host()) else {
        return;
    };
    let base = url::Url::parse(&config.service_urls[0].base()).unwrap();
    // A base path the server itself cannot read (an encoded '/' the user wrote) proves nothing.
    let Ok((mut want, _)) = server_view(base.as_str()) else {
        return;
    };
    assert_eq!(want.pop().as_deref(), Some(""), "the base ends in /");
    want.extend(["apps".to_string(), config.app_name.clone()]);

    let status = [
        InstanceStatus::Up,
        InstanceStatus::Down,
        InstanceStatus::Starting,
        InstanceStatus::OutOfService,
    ][input.status as usize % 4];
    let (app, id) = (&config.app_name, &config.instance_id);
    let post = paths::join(&base, &paths::app(app));
    let put = paths::join(
        &base,
        &paths::heartbeat(app, id, status, input.last_dirty_timestamp),
    );
    let delete = paths::join(&base, &paths::instance(app, id));

    let (segments, query) =
        server_view(post.as_str()).unwrap_or_else(|why| panic!("POST {post}: {why}"));
    assert_eq!(segments, want, "POST {post} names another app");
    assert!(query.is_empty());

    want.push(id.clone());
    let (segments, query) =
        server_view(put.as_str()).unwrap_or_else(|why| panic!("PUT {put}: {why}"));
    assert_eq!(
        segments, want,
        "PUT {put} names another instance than {app}/{id}"
    );
    let expected_query = [
        ("status".to_string(), status.as_str().to_string()),
        (
            "lastDirtyTimestamp".to_string(),
            input.last_dirty_timestamp.to_string(),
        ),
    ];
    assert_eq!(query, expected_query, "PUT {put}: wrong query");
    let (segments, query) =
        server_view(delete.as_str()).unwrap_or_else(|why| panic!("DELETE {delete}: {why}"));
    assert_eq!(
        segments, want,
        "DELETE {delete} names another instance than {app}/{id}"
    );
    assert!(query.is_empty());
    // The PUT and the DELETE address one resource, byte for byte.
    assert_eq!(put.path(), delete.path());
});
