//! What the fuzz targets share: independent reference implementations the library is checked
//! against (Eureka's reconcile hash code, a server's view of a request URL), and the bounded
//! gzip decoding of a response body.
//!
//! Nothing here calls into the library's own implementation of the same thing: a property is
//! only worth something when the two sides were written apart.

use std::io::Read;

/// Largest decompressed body a target accepts (the fuzzer's own memory limit is far above it).
pub const MAX_BODY: u64 = 4 << 20;

/// Eureka's `Applications.getReconcileHashCode()`, written from its definition: a
/// `java.util.TreeMap<String, AtomicInteger>` from status name to count, iterated in key order
/// (Java's `String.compareTo`, i.e. UTF-16 code units), each entry appended as
/// `name + "_" + count + "_"`.
pub fn eureka_reconcile_hashcode<'a>(status_names: impl IntoIterator<Item = &'a str>) -> String {
    let mut names: Vec<(Vec<u16>, &str)> = status_names
        .into_iter()
        .map(|name| (name.encode_utf16().collect(), name))
        .collect();
    names.sort();
    let mut out = String::new();
    let mut i = 0;
    while i < names.len() {
        let run = names[i..].iter().take_while(|n| n.0 == names[i].0).count();
        out += &format!("{}_{}_", names[i].1, run);
        i += run;
    }
    out
}

/// The body of a gzip-encoded response, decompressed with a cap (as every body is read under
/// one); `None` when it is not gzip or is larger than [`MAX_BODY`].
pub fn gunzip_bounded(body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(body)
        .take(MAX_BODY + 1)
        .read_to_end(&mut out)
        .ok()?;
    (out.len() as u64 <= MAX_BODY).then_some(out)
}

/// How the server (Tomcat + Jersey under Spring Cloud's Eureka server) reads a request URL:
/// the decoded path segments its resources are matched against, and the decoded query pairs.
/// `Err` says why the server would not see a plain list of segments at all.
pub fn server_view(url: &str) -> Result<(Vec<String>, Vec<(String, String)>), String> {
    // What went over the wire is re-read by a standard URL parser (it normalises dot
    // segments, including their percent-encoded forms).
    let parsed = url::Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
    let raw_segments = parsed.path_segments().ok_or("cannot-be-a-base URL")?;
    let mut segments = Vec::new();
    for raw in raw_segments {
        // JAX-RS (and Tomcat's path parameters): `;...` in a segment are matrix parameters,
        // not part of the value a @PathParam receives.
        let value = raw.split(';').next().unwrap_or("");
        let decoded =
            percent_decode(value).ok_or_else(|| format!("segment {raw:?} is not UTF-8"))?;
        // Tomcat rejects an encoded '/' or '\' (400) and normalises '.' and '..' after
        // decoding: either way the resource is not the one named.
        if decoded.contains('/') || decoded.contains('\\') {
            return Err(format!("segment {raw:?} decodes to a path separator"));
        }
        if decoded == "." || decoded == ".." {
            return Err(format!("segment {raw:?} is a dot segment after decoding"));
        }
        segments.push(decoded);
    }
    let query = parsed
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    Ok((segments, query))
}

/// RFC 3986 percent-decoding of a path segment (`+` stays `+` in a path).
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(byte) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// Settings that name files (read from disk, not parsed from the string): left out of the
/// configuration targets, which fuzz what strings say, not what the file system holds.
pub const FILE_SETTINGS: &[&str] = &[
    "REGISTRY_CA_FILE",
    "REGISTRY_CLIENT_CERT",
    "REGISTRY_CLIENT_KEY",
];

/// Points the OS trust store at one small CA certificate: an https configuration reads the
/// store, and the machine's full bundle (hundreds of certificates) would cost ~50 ms a run.
pub fn small_trust_store() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let pem = concat!(env!("CARGO_MANIFEST_DIR"), "/tls/one-ca.pem");
        std::env::set_var("SSL_CERT_FILE", pem);
        std::env::remove_var("SSL_CERT_DIR");
    });
}

/// What the library makes of a string it stores for C (`Text`): cut at the first NUL.
pub fn as_c_text(s: &str) -> &str {
    s.split('\0').next().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_hash_matches_eurekas_examples() {
        assert_eq!(
            eureka_reconcile_hashcode(["UP", "DOWN", "UP"]),
            "DOWN_1_UP_2_"
        );
        assert_eq!(eureka_reconcile_hashcode([]), "");
        // Java orders by UTF-16 units: a supplementary character sorts before U+FFFD.
        assert_eq!(
            eureka_reconcile_hashcode(["\u{FFFD}", "\u{1F600}"]),
            "\u{1F600}_1_\u{FFFD}_1_"
        );
    }

    #[test]
    fn server_view_decodes_and_refuses_dot_segments() {
        let (segs, q) = server_view("http://h/eureka/apps/A/x%20y;v=1?status=UP").unwrap();
        assert_eq!(segs, ["eureka", "apps", "A", "x y"]);
        assert_eq!(q, [("status".to_string(), "UP".to_string())]);
        assert!(server_view("http://h/eureka/apps/%2E%2E/x").is_ok_and(|(s, _)| s.len() == 3));
        assert!(server_view("http://h/a%2Fb").is_err());
    }
}
