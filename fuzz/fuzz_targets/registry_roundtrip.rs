//! A random registry, serialised the way Eureka servers do (with every tolerated variation:
//! single objects for one-element lists, numbers as strings, ports as objects or bare numbers,
//! `overriddenStatus` or the legacy `overriddenstatus`, `@class` in metadata, gzip), must
//! parse back into exactly the instances it was made of; and the hash code computed locally
//! must equal the one the server computes over the same registry (Eureka's algorithm,
//! re-implemented in `registrar_fuzz::eureka_reconcile_hashcode`).

#![no_main]

use std::collections::BTreeMap;
use std::io::Write;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use registrar::discovery::{ActionType, Applications, Instance, Registry, Text};
use registrar::eureka::body::{self, Encoding};
use registrar::instance::InstanceStatus;
use registrar_fuzz::{as_c_text, eureka_reconcile_hashcode, MAX_BODY};
use serde_json::{json, Map, Value};

#[derive(Arbitrary, Debug)]
struct Model {
    apps: Vec<App>,
    versions_delta: Option<(u32, bool)>,
    /// Gzip the body when this is 15 mod 16 (compressor state costs more than the rest of a
    /// run; `read_registry` fuzzes the gzip path on arbitrary bytes).
    gzip: u8,
}

#[derive(Arbitrary, Debug)]
struct App {
    name: String,
    instances: Vec<Inst>,
    /// Serialise a one-element list as the element itself (as XML-derived JSON does).
    single_as_object: bool,
}

#[derive(Arbitrary, Debug)]
struct Inst {
    instance_id: String,
    host_name: String,
    /// How the `app` field is sent: 0 the application's name, 1 absent, 2 lower-case.
    app_form: u8,
    ip_addr: String,
    status: StatusName,
    overridden: Option<(StatusName, bool)>,
    port: Port,
    secure_port: Port,
    metadata: Vec<(String, String)>,
    class_in_metadata: bool,
    vip_address: String,
    secure_vip_address: String,
    home_page_url: String,
    status_page_url: String,
    health_check_url: String,
    last_updated: Option<(u64, bool)>,
    last_dirty: Option<(u64, bool)>,
    action: Option<u8>,
}

#[derive(Arbitrary, Debug)]
enum StatusName {
    /// One of Eureka's five, in the case given by the mask (servers send upper case).
    Known(u8, u8),
    /// Anything else a server may hold.
    Other(String),
}

const KNOWN: [InstanceStatus; 5] = [
    InstanceStatus::Up,
    InstanceStatus::Down,
    InstanceStatus::Starting,
    InstanceStatus::OutOfService,
    InstanceStatus::Unknown,
];

impl StatusName {
    /// The name as sent, and what it must read as: (status, odd name counted in the hash).
    fn render(&self) -> (String, InstanceStatus, Option<String>) {
        match self {
            StatusName::Known(which, case) => {
                let status = KNOWN[*which as usize % KNOWN.len()];
                let sent: String = status
                    .as_str()
                    .chars()
                    .enumerate()
                    .map(|(n, c)| {
                        if case >> (n % 8) & 1 == 1 {
                            c.to_ascii_lowercase()
                        } else {
                            c
                        }
                    })
                    .collect();
                (sent, status, None)
            }
            StatusName::Other(name) => {
                let name = as_c_text(name).trim();
                let known = KNOWN.iter().find(|k| k.as_str().eq_ignore_ascii_case(name));
                match known {
                    Some(k) => (name.to_string(), *k, None),
                    None if name.is_empty() => (String::new(), InstanceStatus::Unknown, None),
                    None => (
                        name.to_string(),
                        InstanceStatus::Unknown,
                        Some(name.to_string()),
                    ),
                }
            }
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Port {
    Absent,
    /// `{"$": n, "@enabled": "true"}`: the number as a string or not, the flag as a string or not.
    Object(u16, bool, bool, bool),
    Bare(u16, bool),
}

impl Port {
    /// The JSON, and what it must read as, given the field's defaults.
    fn render(&self, default: (u16, bool)) -> (Option<Value>, (u16, bool)) {
        match *self {
            Port::Absent => (None, default),
            Port::Object(n, enabled, n_as_text, flag_as_text) => {
                let number = if n_as_text {
                    json!(n.to_string())
                } else {
                    json!(n)
                };
                let flag = if flag_as_text {
                    json!(enabled.to_string())
                } else {
                    json!(enabled)
                };
                (Some(json!({"$": number, "@enabled": flag})), (n, enabled))
            }
            Port::Bare(n, as_text) => {
                let v = if as_text {
                    json!(n.to_string())
                } else {
                    json!(n)
                };
                (Some(v), (n, default.1))
            }
        }
    }
}

fn number(value: Option<(u64, bool)>) -> (Option<Value>, u64) {
    match value {
        None => (None, 0),
        Some((n, true)) => (Some(json!(n.to_string())), n),
        Some((n, false)) => (Some(json!(n)), n),
    }
}

/// One instance's JSON and the instance it must parse into (None: dropped, no id).
fn render(inst: &Inst, app_name: &str) -> (Value, Option<(ActionType, Instance)>) {
    let mut o = Map::new();
    o.insert("instanceId".into(), json!(inst.instance_id));
    o.insert("hostName".into(), json!(inst.host_name));
    let upper = app_name.to_uppercase();
    let app_sent = match inst.app_form % 3 {
        0 => Some(upper.clone()),
        1 => None,
        _ => Some(upper.to_lowercase()),
    };
    if let Some(a) = &app_sent {
        o.insert("app".into(), json!(a));
    }
    o.insert("ipAddr".into(), json!(inst.ip_addr));
    let (status_sent, status, odd) = inst.status.render();
    o.insert("status".into(), json!(status_sent));
    let overridden = match &inst.overridden {
        None => InstanceStatus::Unknown,
        Some((name, legacy)) => {
            let (sent, status, _) = name.render();
            let key = if *legacy {
                "overriddenstatus"
            } else {
                "overriddenStatus"
            };
            o.insert(key.into(), json!(sent));
            status
        }
    };
    let (port_json, port) = inst.port.render((7001, true));
    if let Some(p) = port_json {
        o.insert("port".into(), p);
    }
    let (secure_json, secure) = inst.secure_port.render((7002, false));
    if let Some(p) = secure_json {
        o.insert("securePort".into(), p);
    }
    let mut meta = Map::new();
    let mut expected_meta: BTreeMap<String, String> = BTreeMap::new();
    if inst.class_in_metadata {
        meta.insert("@class".into(), json!("java.util.Collections$EmptyMap"));
    }
    for (k, v) in &inst.metadata {
        if k == "@class" || as_c_text(k) == "@class" {
            continue;
        }
        meta.insert(k.clone(), json!(v));
    }
    // A JSON object has one value per key; the model reads the keys as C text (cut at NUL).
    for (k, v) in &meta {
        if k != "@class" {
            expected_meta.insert(
                as_c_text(k).to_string(),
                as_c_text(v.as_str().unwrap()).into(),
            );
        }
    }
    o.insert("metadata".into(), Value::Object(meta));
    for (key, value) in [
        ("vipAddress", &inst.vip_address),
        ("secureVipAddress", &inst.secure_vip_address),
        ("homePageUrl", &inst.home_page_url),
        ("statusPageUrl", &inst.status_page_url),
        ("healthCheckUrl", &inst.health_check_url),
    ] {
        o.insert(key.into(), json!(value));
    }
    let (updated_json, updated) = number(inst.last_updated);
    if let Some(v) = updated_json {
        o.insert("lastUpdatedTimestamp".into(), v);
    }
    let (dirty_json, dirty) = number(inst.last_dirty);
    if let Some(v) = dirty_json {
        o.insert("lastDirtyTimestamp".into(), v);
    }
    let action = match inst.action {
        None => ActionType::Added,
        Some(n) => {
            let (name, action) = [
                ("ADDED", ActionType::Added),
                ("MODIFIED", ActionType::Modified),
                ("DELETED", ActionType::Deleted),
            ][n as usize % 3];
            o.insert("actionType".into(), json!(name));
            action
        }
    };

    // The instance as the library must report it (strings are C text: cut at a NUL).
    let id = match as_c_text(&inst.instance_id) {
        "" => as_c_text(&inst.host_name),
        id => id,
    };
    let expected = (!id.is_empty()).then(|| {
        let app = match app_sent.as_deref().map(as_c_text) {
            None | Some("") => upper.clone(),
            Some(a) if a.chars().any(char::is_lowercase) => a.to_uppercase(),
            Some(a) => a.to_string(),
        };
        let t = |s: &str| Text::new(as_c_text(s));
        (
            action,
            Instance {
                instance_id: t(id),
                app: t(&app),
                host_name: t(&inst.host_name),
                ip_addr: t(&inst.ip_addr),
                port: port.0,
                port_enabled: port.1,
                secure_port: secure.0,
                secure_port_enabled: secure.1,
                status,
                unknown_status: odd.as_deref().map(Text::new),
                overridden_status: overridden,
                vip_address: t(&inst.vip_address),
                secure_vip_address: t(&inst.secure_vip_address),
                home_page_url: t(&inst.home_page_url),
                status_page_url: t(&inst.status_page_url),
                health_check_url: t(&inst.health_check_url),
                metadata: expected_meta.iter().map(|(k, v)| (t(k), t(v))).collect(),
                last_updated_timestamp: updated,
                last_dirty_timestamp: dirty,
            },
        )
    });
    (Value::Object(o), expected)
}

fn list(items: Vec<Value>, single_as_object: bool) -> Value {
    if single_as_object && items.len() == 1 {
        items.into_iter().next().unwrap()
    } else {
        Value::Array(items)
    }
}

fuzz_target!(|model: Model| {
    let mut expected = Vec::new();
    let mut applications = Vec::new();
    for app in &model.apps {
        let mut instances = Vec::new();
        for inst in &app.instances {
            let (json, parsed) = render(inst, as_c_text(&app.name));
            instances.push(json);
            expected.extend(parsed);
        }
        applications.push(json!({
            "name": app.name,
            "instance": list(instances, app.single_as_object),
        }));
    }
    // The server's hash: its registry holds one instance per (app, id), the last one written.
    let mut server: BTreeMap<(String, String), String> = BTreeMap::new();
    for (_, i) in &expected {
        server.insert(
            (i.app.to_string(), i.instance_id.to_string()),
            i.status_name().to_string(),
        );
    }
    let server_hash = eureka_reconcile_hashcode(server.values().map(String::as_str));

    let mut root = Map::new();
    root.insert("apps__hashcode".into(), json!(server_hash));
    if let Some((n, as_text)) = model.versions_delta {
        let v = if as_text {
            json!(n.to_string())
        } else {
            json!(n)
        };
        root.insert("versions__delta".into(), v);
    }
    root.insert("application".into(), list(applications, true));
    let body = serde_json::to_vec(&json!({ "applications": root })).unwrap();
    let body = if model.gzip % 16 == 15 {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&body).unwrap();
        // Decoded as the HTTP layer decodes a gzip answer.
        body::decode(Encoding::Gzip, &gz.finish().unwrap(), MAX_BODY).expect("our own gzip decodes")
    } else {
        body
    };

    let apps = Applications::parse(&body).expect("a well-formed registry parses");
    assert_eq!(
        apps.versions_delta,
        model.versions_delta.map_or(-1, |(n, _)| n as i64)
    );
    assert_eq!(apps.apps_hashcode, server_hash);
    assert_eq!(apps.instances.len(), expected.len());
    for (got, want) in apps.instances.iter().zip(&expected) {
        assert_eq!(got, want, "instance changed in the round trip");
    }
    let registry = Registry::from_applications(apps, None);
    assert_eq!(registry.len(), server.len());
    assert_eq!(
        registry.hashcode(),
        server_hash,
        "local hash code differs from the server's"
    );
});
