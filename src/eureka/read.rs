//! Reading the registry: `GET apps` and `GET apps/delta`, and the tolerant parser of what
//! real servers and clients put in them.
//!
//! Real registries differ (GUIDE section 4): `application` and `instance` may be an array, a
//! single object, or missing; numbers may come as strings and booleans as `"true"`/`"false"`;
//! the overridden status is spelled `overriddenStatus` or `overriddenstatus`; metadata may hold
//! an `@class` key (dropped); statuses we do not know become UNKNOWN; unknown fields are
//! ignored. Scalars that cannot be read fall back to a default instead of failing the whole
//! document: one odd instance must never cost the caller the rest of the registry.
//!
//! The parser goes straight from bytes to the final [`Instance`] values (no intermediate JSON
//! tree), which is what makes a full fetch of a large registry cheap.

use std::borrow::Borrow;
use std::ffi::c_char;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;
use std::time::Instant;

use serde::de::{self, DeserializeOwned, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::EurekaHttp;
use crate::error::{Error, Result};
use crate::instance::InstanceStatus;

/// An immutable string stored with a terminating NUL, so the C boundary can lend it out as a
/// `const char *` without copying. A NUL inside the source text ends the string there (C could
/// not see past it anyway). Derefs to `str` (without the NUL).
#[derive(Clone)]
pub struct Text(Box<str>);

impl Text {
    pub fn new(s: &str) -> Text {
        // `contains` on bytes is a memchr: cheap on the parser's hot path.
        let s = if s.as_bytes().contains(&0) {
            &s[..s.find('\0').unwrap_or(s.len())]
        } else {
            s
        };
        let mut buf = String::with_capacity(s.len() + 1);
        buf.push_str(s);
        buf.push('\0');
        Text(buf.into_boxed_str())
    }

    pub fn as_str(&self) -> &str {
        &self.0[..self.0.len() - 1]
    }

    /// The NUL-terminated bytes, valid as long as this `Text` lives.
    pub fn as_c_ptr(&self) -> *const c_char {
        self.0.as_ptr().cast()
    }
}

impl Default for Text {
    fn default() -> Text {
        Text::new("")
    }
}

impl std::ops::Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for Text {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for Text {
    fn eq(&self, other: &Text) -> bool {
        self.0 == other.0
    }
}

impl Eq for Text {}

impl PartialEq<str> for Text {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Text {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Hash for Text {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

impl PartialOrd for Text {
    fn partial_cmp(&self, other: &Text) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Text {
    fn cmp(&self, other: &Text) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An instance's base URL in pieces: see [`Instance::base_url_parts`].
pub struct BaseUrl<'a> {
    /// `http://` or `https://`.
    scheme: &'static str,
    host: &'a str,
    /// An IPv6 literal, written in brackets.
    bracketed: bool,
    port: u16,
}

impl BaseUrl<'_> {
    /// Hands each piece of the URL (UTF-8), in order, to `write`.
    pub fn pieces(&self, mut write: impl FnMut(&[u8])) {
        write(self.scheme.as_bytes());
        if self.bracketed {
            write(b"[");
            write(self.host.as_bytes());
            write(b"]");
        } else {
            write(self.host.as_bytes());
        }
        write(b":");
        // A u16 has at most 5 digits: written without the formatting machinery.
        let mut digits = [0u8; 5];
        let mut start = digits.len();
        let mut port = self.port;
        loop {
            start -= 1;
            digits[start] = b'0' + (port % 10) as u8;
            port /= 10;
            if port == 0 {
                break;
            }
        }
        write(&digits[start..]);
    }
}

/// One instance as the registry lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// `instanceId`, or the host name when the registrant sent none (as the Java client does).
    pub instance_id: Text,
    /// The application name, upper-case (from the instance, else from its application).
    pub app: Text,
    pub host_name: Text,
    pub ip_addr: Text,
    pub port: u16,
    pub port_enabled: bool,
    pub secure_port: u16,
    pub secure_port_enabled: bool,
    /// The status the registry serves (an operator override already applied by the server).
    pub status: InstanceStatus,
    /// The status as the registry spelled it when it is none of the five known ones (then
    /// `status` is UNKNOWN). The hash code counts it under this name, as the server does, so an
    /// odd status does not turn every delta into a mismatch.
    pub unknown_status: Option<Text>,
    /// The operator override, UNKNOWN when there is none.
    pub overridden_status: InstanceStatus,
    /// As registered; may be a comma-separated list of VIPs.
    pub vip_address: Text,
    pub secure_vip_address: Text,
    pub home_page_url: Text,
    pub status_page_url: Text,
    pub health_check_url: Text,
    /// Sorted by key; an `@class` entry is dropped.
    pub metadata: Box<[(Text, Text)]>,
    /// Epoch milliseconds (0 when absent).
    pub last_updated_timestamp: u64,
    pub last_dirty_timestamp: u64,
}

impl Instance {
    /// `http://host:port`, or `https://host:securePort` when `secure` is asked for and the
    /// secure port is enabled. `use_ip` puts the IP address in place of the host name.
    /// IPv6 literals are bracketed.
    pub fn base_url(&self, secure: bool, use_ip: bool) -> String {
        let url = self.base_url_parts(secure, use_ip);
        let mut text = Vec::with_capacity(url.host.len() + 16);
        url.pieces(|piece| text.extend_from_slice(piece));
        // Always UTF-8: the pieces are the host (a string) and ASCII.
        String::from_utf8_lossy(&text).into_owned()
    }

    /// [`Instance::base_url`] as its pieces, for writing it somewhere without a `String` (the
    /// C API copies it straight into the caller's buffer).
    pub fn base_url_parts(&self, secure: bool, use_ip: bool) -> BaseUrl<'_> {
        let host = if use_ip || self.host_name.is_empty() {
            self.ip_addr.as_str()
        } else {
            self.host_name.as_str()
        };
        let (scheme, port) = if secure && self.secure_port_enabled {
            ("https://", self.secure_port)
        } else {
            ("http://", self.port)
        };
        BaseUrl {
            scheme,
            host,
            bracketed: host.contains(':') && !host.starts_with('['),
            port,
        }
    }

    /// The status name the server counts in `apps__hashcode` ("UP", or an unknown one as sent).
    pub fn status_name(&self) -> &str {
        match &self.unknown_status {
            Some(name) => name.as_str(),
            None => self.status.as_str(),
        }
    }

    /// The value of a metadata key.
    pub fn metadata_value(&self, key: &str) -> Option<&str> {
        self.metadata
            .binary_search_by(|(k, _)| k.as_str().cmp(key))
            .ok()
            .map(|i| self.metadata[i].1.as_str())
    }

    /// The entries of the comma-separated `vipAddress`, trimmed, empty ones left out.
    pub fn vips(&self) -> impl Iterator<Item = &str> {
        split_vips(&self.vip_address)
    }

    /// The entries of the comma-separated `secureVipAddress`.
    pub fn secure_vips(&self) -> impl Iterator<Item = &str> {
        split_vips(&self.secure_vip_address)
    }
}

fn split_vips(list: &str) -> impl Iterator<Item = &str> {
    list.split(',').map(str::trim).filter(|v| !v.is_empty())
}

/// What a delta says happened to an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionType {
    Added,
    Modified,
    Deleted,
}

/// A parsed `GET apps` or `GET apps/delta` answer.
#[derive(Debug, Clone, Default)]
pub struct Applications {
    /// `apps__hashcode`: the server's status counts over its whole registry.
    pub apps_hashcode: String,
    /// `versions__delta` (informational; -1 when absent).
    pub versions_delta: i64,
    /// Every instance with its `actionType` (ADDED when absent; only deltas mean it).
    pub instances: Vec<(ActionType, Instance)>,
}

impl Applications {
    /// Parses the JSON body of `GET apps` or `GET apps/delta`.
    pub fn parse(body: &[u8]) -> std::result::Result<Applications, String> {
        let root: Root = serde_json::from_slice(body).map_err(|e| e.to_string())?;
        let raw = root
            .applications
            .ok_or_else(|| "no \"applications\" object".to_string())?;
        let mut instances = Vec::new();
        for application in raw.application.0 {
            let fallback_app = application.name.as_str().to_uppercase();
            for raw_instance in application.instance.0 {
                if let Some(pair) = raw_instance.finish(&fallback_app) {
                    instances.push(pair);
                }
            }
        }
        Ok(Applications {
            apps_hashcode: raw.apps_hashcode.as_str().to_string(),
            versions_delta: raw.versions_delta.map_or(-1, |n| n.0 as i64),
            instances,
        })
    }
}

/// `apps__hashcode` of a set of instances, from their status names
/// ([`Instance::status_name`]): `STATUS_count_` for each status present, sorted by status
/// name, e.g. `DOWN_1_UP_2_` (Eureka's reconcile hash code).
pub fn reconcile_hashcode<'a>(status_names: impl IntoIterator<Item = &'a str>) -> String {
    let mut counts: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for name in status_names {
        *counts.entry(name).or_insert(0) += 1;
    }
    // The server sorts with Java's String.compareTo, by UTF-16 code units: for an odd status
    // name beyond the BMP that differs from UTF-8 byte order (found by the fuzz targets'
    // reference). For ASCII names the map's order already is the server's.
    let mut counts: Vec<(&str, usize)> = counts.into_iter().collect();
    if counts.iter().any(|(name, _)| !name.is_ascii()) {
        counts.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
    }
    let mut out = String::new();
    for (name, count) in counts {
        out.push_str(name);
        out.push('_');
        out.push_str(&count.to_string());
        out.push('_');
    }
    out
}

/// `GET apps`: the whole registry.
pub async fn fetch_applications(
    http: &EurekaHttp,
    deadline: Option<Instant>,
) -> Result<Applications> {
    fetch(http, "apps", deadline).await
}

/// `GET apps/delta`: the instances that changed recently (about 3 minutes by default) and
/// the hash code of the whole registry.
pub async fn fetch_delta(http: &EurekaHttp, deadline: Option<Instant>) -> Result<Applications> {
    fetch(http, "apps/delta", deadline).await
}

async fn fetch(http: &EurekaHttp, path: &str, deadline: Option<Instant>) -> Result<Applications> {
    let body = http.get(path, deadline).await?;
    Applications::parse(&body).map_err(|why| Error::Rejected {
        status: 200,
        message: format!("GET {path}: the answer is not a readable Eureka registry: {why}"),
    })
}

// ---------------------------------------------------------------------------------------------
// The tolerant parser. Each wrapper type below accepts every shape real servers send.

#[derive(Deserialize)]
struct Root {
    #[serde(default)]
    applications: Option<RawApplications>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawApplications {
    #[serde(rename = "versions__delta")]
    versions_delta: Option<Num>,
    #[serde(rename = "apps__hashcode")]
    apps_hashcode: Text,
    application: OneOrMany<RawApplication>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawApplication {
    name: Text,
    instance: OneOrMany<RawInstance>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct RawInstance {
    instance_id: Text,
    host_name: Text,
    app: Text,
    ip_addr: Text,
    status: Status,
    overridden_status: Option<Status>,
    #[serde(rename = "overriddenstatus")]
    overridden_status_legacy: Option<Status>,
    port: Port<true>,
    secure_port: Port<false>,
    metadata: Metadata,
    vip_address: Text,
    secure_vip_address: Text,
    home_page_url: Text,
    status_page_url: Text,
    health_check_url: Text,
    last_updated_timestamp: Num,
    last_dirty_timestamp: Num,
    action_type: Action,
}

impl RawInstance {
    fn finish(self, fallback_app: &str) -> Option<(ActionType, Instance)> {
        let instance_id = if self.instance_id.is_empty() {
            self.host_name.clone()
        } else {
            self.instance_id
        };
        if instance_id.is_empty() {
            return None;
        }
        let app = if self.app.is_empty() {
            Text::new(fallback_app)
        } else if self.app.chars().any(char::is_lowercase) {
            Text::new(&self.app.to_uppercase())
        } else {
            self.app
        };
        let overridden = self
            .overridden_status
            .or(self.overridden_status_legacy)
            .map_or(InstanceStatus::Unknown, |s: Status| s.0);
        Some((
            self.action_type.0,
            Instance {
                instance_id,
                app,
                host_name: self.host_name,
                ip_addr: self.ip_addr,
                port: self.port.number,
                port_enabled: self.port.enabled,
                secure_port: self.secure_port.number,
                secure_port_enabled: self.secure_port.enabled,
                status: self.status.0,
                unknown_status: self.status.1,
                overridden_status: overridden,
                vip_address: self.vip_address,
                secure_vip_address: self.secure_vip_address,
                home_page_url: self.home_page_url,
                status_page_url: self.status_page_url,
                health_check_url: self.health_check_url,
                metadata: self.metadata.0,
                last_updated_timestamp: self.last_updated_timestamp.0,
                last_dirty_timestamp: self.last_dirty_timestamp.0,
            },
        ))
    }
}

/// An array, a single object, or null/missing (empty).
struct OneOrMany<T>(Vec<T>);

impl<T> Default for OneOrMany<T> {
    fn default() -> Self {
        OneOrMany(Vec::new())
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for OneOrMany<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: DeserializeOwned> Visitor<'de> for V<T> {
            type Value = OneOrMany<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object, an array of objects, or null")
            }
            fn visit_seq<A: SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
                while let Some(item) = seq.next_element::<T>()? {
                    out.push(item);
                }
                Ok(OneOrMany(out))
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                map: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                let one = T::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(OneOrMany(vec![one]))
            }
            fn visit_unit<E: de::Error>(self) -> std::result::Result<Self::Value, E> {
                Ok(OneOrMany(Vec::new()))
            }
            fn visit_none<E: de::Error>(self) -> std::result::Result<Self::Value, E> {
                Ok(OneOrMany(Vec::new()))
            }
            // An empty string where a list belongs (seen from some XML-to-JSON bridges).
            fn visit_str<E: de::Error>(self, _: &str) -> std::result::Result<Self::Value, E> {
                Ok(OneOrMany(Vec::new()))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// A string that also accepts numbers, booleans and null; objects and arrays read as "".
impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Text, E> {
                Ok(Text::new(v))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> std::result::Result<Text, E> {
                Ok(Text::new(if v { "true" } else { "false" }))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<Text, E> {
                Ok(Text::new(&v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<Text, E> {
                Ok(Text::new(&v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> std::result::Result<Text, E> {
                Ok(Text::new(&v.to_string()))
            }
            fn visit_unit<E: de::Error>(self) -> std::result::Result<Text, E> {
                Ok(Text::default())
            }
            fn visit_none<E: de::Error>(self) -> std::result::Result<Text, E> {
                Ok(Text::default())
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Text, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Text::default())
            }
            fn visit_seq<A: SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<Text, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Text::default())
            }
        }
        d.deserialize_any(V)
    }
}

/// A non-negative integer from a number or a numeric string; anything else reads as 0.
#[derive(Default, Clone, Copy)]
struct Num(u64);

impl<'de> Deserialize<'de> for Num {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Num;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<Num, E> {
                Ok(Num(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<Num, E> {
                Ok(Num(v.max(0) as u64))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> std::result::Result<Num, E> {
                Ok(Num(if v.is_finite() && v > 0.0 {
                    v as u64
                } else {
                    0
                }))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Num, E> {
                let v = v.trim();
                Ok(Num(v
                    .parse::<u64>()
                    .ok()
                    .or_else(|| {
                        v.parse::<f64>()
                            .ok()
                            .filter(|f| f.is_finite() && *f > 0.0)
                            .map(|f| f as u64)
                    })
                    .unwrap_or(0)))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> std::result::Result<Num, E> {
                Ok(Num(0))
            }
            fn visit_unit<E: de::Error>(self) -> std::result::Result<Num, E> {
                Ok(Num(0))
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Num, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Num(0))
            }
            fn visit_seq<A: SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<Num, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Num(0))
            }
        }
        d.deserialize_any(V)
    }
}

/// A boolean from true/false, "true"/"false" (any case), or a number (non-zero is true).
struct Flag(Option<bool>);

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Flag;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a boolean")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> std::result::Result<Flag, E> {
                Ok(Flag(Some(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Flag, E> {
                let v = v.trim();
                Ok(Flag(if v.eq_ignore_ascii_case("true") || v == "1" {
                    Some(true)
                } else if v.eq_ignore_ascii_case("false") || v == "0" {
                    Some(false)
                } else {
                    None
                }))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<Flag, E> {
                Ok(Flag(Some(v != 0)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<Flag, E> {
                Ok(Flag(Some(v != 0)))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> std::result::Result<Flag, E> {
                Ok(Flag(Some(v != 0.0)))
            }
            fn visit_unit<E: de::Error>(self) -> std::result::Result<Flag, E> {
                Ok(Flag(None))
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Flag, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Flag(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<Flag, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Flag(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// `{"$": 8080, "@enabled": "true"}`, or a bare number / numeric string. Defaults as in the
/// Java client: port 7001 enabled, secure port 7002 disabled (`ENABLED` tells which).
struct Port<const ENABLED: bool> {
    number: u16,
    enabled: bool,
}

impl<const ENABLED: bool> Default for Port<ENABLED> {
    fn default() -> Self {
        Port {
            number: if ENABLED { 7001 } else { 7002 },
            enabled: ENABLED,
        }
    }
}

fn port_number(n: u64) -> u16 {
    u16::try_from(n).unwrap_or(0)
}

impl<'de, const ENABLED: bool> Deserialize<'de> for Port<ENABLED> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V<const ENABLED: bool>;
        impl<'de, const ENABLED: bool> Visitor<'de> for V<ENABLED> {
            type Value = Port<ENABLED>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a port object {\"$\": n, \"@enabled\": \"true\"} or a number")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                let mut port = Port::<ENABLED>::default();
                while let Some(key) = map.next_key::<PortKey>()? {
                    match key {
                        PortKey::Number => port.number = port_number(map.next_value::<Num>()?.0),
                        PortKey::Enabled => {
                            if let Some(enabled) = map.next_value::<Flag>()?.0 {
                                port.enabled = enabled;
                            }
                        }
                        PortKey::Other => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(port)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<Self::Value, E> {
                Ok(Port {
                    number: port_number(v),
                    enabled: ENABLED,
                })
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<Self::Value, E> {
                self.visit_u64(v.max(0) as u64)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> std::result::Result<Self::Value, E> {
                self.visit_u64(if v.is_finite() && v > 0.0 {
                    v as u64
                } else {
                    0
                })
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Self::Value, E> {
                match v.trim().parse::<u64>() {
                    Ok(n) => self.visit_u64(n),
                    Err(_) => Ok(Port::default()),
                }
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> std::result::Result<Self::Value, E> {
                Ok(Port::default())
            }
            fn visit_unit<E: de::Error>(self) -> std::result::Result<Self::Value, E> {
                Ok(Port::default())
            }
            fn visit_seq<A: SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Port::default())
            }
        }
        d.deserialize_any(V::<ENABLED>)
    }
}

/// A key of a port object: only `$` and `@enabled` matter (no allocation for either).
enum PortKey {
    Number,
    Enabled,
    Other,
}

impl<'de> Deserialize<'de> for PortKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = PortKey;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<PortKey, E> {
                Ok(match v {
                    "$" => PortKey::Number,
                    "@enabled" => PortKey::Enabled,
                    _ => PortKey::Other,
                })
            }
        }
        d.deserialize_str(V)
    }
}

/// Metadata: a string map whose values may be any scalar; `@class` is dropped, keys sorted.
#[derive(Default)]
struct Metadata(Box<[(Text, Text)]>);

impl<'de> Deserialize<'de> for Metadata {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Metadata;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a metadata object")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Metadata, A::Error> {
                let mut entries: Vec<(Text, Text)> = Vec::new();
                while let Some(key) = map.next_key::<Text>()? {
                    if key.as_str() == "@class" {
                        map.next_value::<IgnoredAny>()?;
                        continue;
                    }
                    let value = map.next_value::<Text>()?;
                    entries.push((key, value));
                }
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                // A repeated key keeps its last value.
                entries.reverse();
                entries.dedup_by(|later, earlier| later.0 == earlier.0);
                entries.reverse();
                Ok(Metadata(entries.into_boxed_slice()))
            }
            fn visit_unit<E: de::Error>(self) -> std::result::Result<Metadata, E> {
                Ok(Metadata::default())
            }
            fn visit_str<E: de::Error>(self, _: &str) -> std::result::Result<Metadata, E> {
                Ok(Metadata::default())
            }
            fn visit_seq<A: SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<Metadata, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Metadata::default())
            }
        }
        d.deserialize_any(V)
    }
}

/// An instance status; anything unknown (or not a string) reads as UNKNOWN, with the name as
/// sent kept aside when there was one.
struct Status(InstanceStatus, Option<Text>);

impl Default for Status {
    fn default() -> Self {
        Status(InstanceStatus::Unknown, None)
    }
}

impl<'de> Deserialize<'de> for Status {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = Text::deserialize(d)?;
        let name = text.trim();
        let status = parse_status(name);
        let unknown = (status == InstanceStatus::Unknown
            && !name.is_empty()
            && !name.eq_ignore_ascii_case("UNKNOWN"))
        .then(|| Text::new(name));
        Ok(Status(status, unknown))
    }
}

fn parse_status(s: &str) -> InstanceStatus {
    let s = s.trim();
    for status in [
        InstanceStatus::Up,
        InstanceStatus::Down,
        InstanceStatus::Starting,
        InstanceStatus::OutOfService,
    ] {
        if s.eq_ignore_ascii_case(status.as_str()) {
            return status;
        }
    }
    InstanceStatus::Unknown
}

/// `actionType`; ADDED when absent or unknown.
struct Action(ActionType);

impl Default for Action {
    fn default() -> Self {
        Action(ActionType::Added)
    }
}

impl<'de> Deserialize<'de> for Action {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = Text::deserialize(d)?;
        let s = text.trim();
        Ok(Action(if s.eq_ignore_ascii_case("DELETED") {
            ActionType::Deleted
        } else if s.eq_ignore_ascii_case("MODIFIED") {
            ActionType::Modified
        } else {
            ActionType::Added
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Verbatim from the test server (Spring Cloud Eureka 2025.1): one instance registered with
    /// the Java client's JSON, one with a pure-Python client's (`overriddenstatus`, empty metadata).
    const REAL: &str = r#"{"applications":{"versions__delta":"1","apps__hashcode":"STARTING_1_UP_1_","application":[{"name":"JAVA_APP","instance":[{"instanceId":"h1:java_app:8080","hostName":"h1","app":"JAVA_APP","ipAddr":"10.0.0.1","status":"UP","overriddenStatus":"UNKNOWN","port":{"$":8080,"@enabled":"true"},"securePort":{"$":8443,"@enabled":"true"},"countryId":1,"dataCenterInfo":{"@class":"com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo","name":"MyOwn"},"leaseInfo":{"renewalIntervalInSecs":30,"durationInSecs":90,"registrationTimestamp":1795949239116,"lastRenewalTimestamp":1795949239116,"evictionTimestamp":0,"serviceUpTimestamp":1795949239117},"metadata":{"zone":"a","management.port":"8080"},"homePageUrl":"http://h1:8080/","statusPageUrl":"http://h1:8080/actuator/info","healthCheckUrl":"http://h1:8080/actuator/health","vipAddress":"java-app,java-app-alias","secureVipAddress":"java-app-secure","isCoordinatingDiscoveryServer":"false","lastUpdatedTimestamp":"1795949239118","lastDirtyTimestamp":"1700000000000","actionType":"ADDED"}]},{"name":"PY_APP","instance":[{"instanceId":"p1","hostName":"p1","app":"PY_APP","ipAddr":"10.0.0.2","status":"STARTING","overriddenStatus":"UNKNOWN","port":{"$":9000,"@enabled":"true"},"securePort":{"$":443,"@enabled":"false"},"countryId":1,"dataCenterInfo":{"@class":"com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo","name":"MyOwn"},"leaseInfo":{"renewalIntervalInSecs":30,"durationInSecs":90,"registrationTimestamp":1795949239210,"lastRenewalTimestamp":1795949239210,"evictionTimestamp":0,"serviceUpTimestamp":0},"metadata":{"@class":"java.util.Collections$EmptyMap"},"homePageUrl":"","vipAddress":"py-app","secureVipAddress":"py-app","isCoordinatingDiscoveryServer":"false","lastUpdatedTimestamp":"1795949239211","lastDirtyTimestamp":"1700000000001","actionType":"ADDED"}]}]}}"#;

    #[test]
    fn parses_the_real_servers_shape() {
        let apps = Applications::parse(REAL.as_bytes()).unwrap();
        assert_eq!(apps.apps_hashcode, "STARTING_1_UP_1_");
        assert_eq!(apps.versions_delta, 1);
        assert_eq!(apps.instances.len(), 2);
        let (action, java) = &apps.instances[0];
        assert_eq!(*action, ActionType::Added);
        assert_eq!(java.instance_id, "h1:java_app:8080");
        assert_eq!(java.app, "JAVA_APP");
        assert_eq!(java.host_name, "h1");
        assert_eq!(java.ip_addr, "10.0.0.1");
        assert_eq!((java.port, java.port_enabled), (8080, true));
        assert_eq!((java.secure_port, java.secure_port_enabled), (8443, true));
        assert_eq!(java.status, InstanceStatus::Up);
        assert_eq!(java.overridden_status, InstanceStatus::Unknown);
        assert_eq!(
            java.vips().collect::<Vec<_>>(),
            ["java-app", "java-app-alias"]
        );
        assert_eq!(java.secure_vips().collect::<Vec<_>>(), ["java-app-secure"]);
        assert_eq!(java.health_check_url, "http://h1:8080/actuator/health");
        assert_eq!(java.metadata_value("management.port"), Some("8080"));
        assert_eq!(java.metadata.len(), 2);
        assert_eq!(java.last_dirty_timestamp, 1_700_000_000_000);
        assert_eq!(java.last_updated_timestamp, 1_795_949_239_118);
        let py = &apps.instances[1].1;
        assert_eq!(py.status, InstanceStatus::Starting);
        assert!(py.metadata.is_empty(), "@class is dropped");
        assert_eq!((py.secure_port, py.secure_port_enabled), (443, false));
        assert_eq!(
            reconcile_hashcode(apps.instances.iter().map(|(_, i)| i.status_name())),
            apps.apps_hashcode
        );
    }

    #[test]
    fn tolerates_single_objects_strings_and_missing_lists() {
        let body = r#"{"applications": {"apps__hashcode": "UP_1_", "versions__delta": 7,
            "application": {"name": "lower_app", "instance": {
                "hostName": "h", "ipAddr": "::1", "status": "up",
                "overriddenstatus": "OUT_OF_SERVICE",
                "port": {"$": "8081", "@enabled": true},
                "securePort": {"$": 8443, "@enabled": "TRUE"},
                "metadata": {"@class": "java.util.Collections$EmptyMap", "n": 5, "b": false, "z": null},
                "lastDirtyTimestamp": 17, "actionType": "MODIFIED", "unknownNested": {"a": [1, 2]}
            }}}}"#;
        let apps = Applications::parse(body.as_bytes()).unwrap();
        assert_eq!(apps.versions_delta, 7);
        let (action, i) = &apps.instances[0];
        assert_eq!(*action, ActionType::Modified);
        assert_eq!(
            i.instance_id, "h",
            "host name stands in for a missing instanceId"
        );
        assert_eq!(
            i.app, "LOWER_APP",
            "app from the application name, upper-case"
        );
        assert_eq!(i.status, InstanceStatus::Up);
        assert_eq!(i.overridden_status, InstanceStatus::OutOfService);
        assert_eq!((i.port, i.port_enabled), (8081, true));
        assert_eq!((i.secure_port, i.secure_port_enabled), (8443, true));
        assert_eq!(i.metadata_value("n"), Some("5"));
        assert_eq!(i.metadata_value("b"), Some("false"));
        assert_eq!(i.metadata_value("z"), Some(""));
        assert_eq!(i.metadata_value("@class"), None);
        assert_eq!(i.last_dirty_timestamp, 17);
        assert_eq!(i.base_url(true, false), "https://h:8443");
        assert_eq!(i.base_url(false, true), "http://[::1]:8081");
        assert_eq!(i.base_url(false, false), "http://h:8081");
        // Port digits are written by hand: the extremes.
        for (port, text) in [
            (0, "http://h:0"),
            (9, "http://h:9"),
            (65535, "http://h:65535"),
        ] {
            let with_port = Instance { port, ..i.clone() };
            assert_eq!(with_port.base_url(false, false), text);
        }

        for empty in [
            r#"{"applications": {}}"#,
            r#"{"applications": {"application": null}}"#,
            r#"{"applications": {"application": []}}"#,
            r#"{"applications": {"application": [{"name": "A"}]}}"#,
            r#"{"applications": {"application": {"name": "A", "instance": []}}}"#,
        ] {
            let apps = Applications::parse(empty.as_bytes()).unwrap();
            assert!(apps.instances.is_empty(), "{empty}");
            assert_eq!(apps.apps_hashcode, "");
        }
    }

    #[test]
    fn odd_scalars_fall_back_to_defaults() {
        let body = r#"{"applications": {"application": [{"name": "A", "instance": [
            {"instanceId": "x", "status": "RESTARTING", "port": "oops", "securePort": 99999,
             "lastDirtyTimestamp": "soon", "metadata": "none"},
            {"instanceId": "y", "status": 5, "port": 80}
        ]}]}}"#;
        let apps = Applications::parse(body.as_bytes()).unwrap();
        let x = &apps.instances[0].1;
        assert_eq!(x.status, InstanceStatus::Unknown);
        assert_eq!(
            x.status_name(),
            "RESTARTING",
            "counted as sent in the hash code"
        );
        assert_eq!(apps.instances[1].1.status_name(), "5");
        assert_eq!((x.port, x.port_enabled), (7001, true));
        assert_eq!((x.secure_port, x.secure_port_enabled), (0, false));
        assert_eq!(x.last_dirty_timestamp, 0);
        let y = &apps.instances[1].1;
        assert_eq!((y.port, y.port_enabled), (80, true));
    }

    #[test]
    fn garbage_is_an_error_not_an_empty_registry() {
        assert!(Applications::parse(b"<html>proxy error</html>").is_err());
        assert!(Applications::parse(b"{}").is_err());
        assert!(Applications::parse(b"").is_err());
    }

    #[test]
    fn hashcode_is_sorted_status_counts() {
        assert_eq!(reconcile_hashcode(["UP", "DOWN", "UP"]), "DOWN_1_UP_2_");
        assert_eq!(
            reconcile_hashcode(["UP", "STARTING", "OUT_OF_SERVICE", "UNKNOWN", "DOWN"]),
            "DOWN_1_OUT_OF_SERVICE_1_STARTING_1_UNKNOWN_1_UP_1_"
        );
        assert_eq!(reconcile_hashcode([]), "");
    }

    #[test]
    fn hashcode_orders_names_as_java_does() {
        // Java's TreeMap<String> orders by UTF-16 units: U+1F600 (a surrogate pair, 0xD83D..)
        // comes before U+FFFF, the reverse of their UTF-8 byte order.
        assert_eq!(
            reconcile_hashcode(["\u{FFFF}", "\u{1F600}", "UP"]),
            "UP_1_\u{1F600}_1_\u{FFFF}_1_"
        );
    }

    #[test]
    fn text_is_nul_terminated_and_compares_as_str() {
        let t = Text::new("abc");
        assert_eq!(t.as_str(), "abc");
        assert_eq!(t.0.as_bytes(), b"abc\0");
        assert_eq!(Text::new("a\0b").as_str(), "a");
        assert!(Text::new("ab") < Text::new("abc"));
        let mut map = std::collections::HashMap::new();
        map.insert(Text::new("k"), 1);
        assert_eq!(map.get("k"), Some(&1));
    }
}
