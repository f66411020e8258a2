//! What the fuzz targets share: independent reference implementations the library is checked
//! against (Eureka's reconcile hash code, a server's view of a request URL), and small
//! helpers (base64 for PEM, C text).
//!
//! Nothing here calls into the library's own implementation of the same thing: a property is
//! only worth something when the two sides were written apart.

/// Largest decompressed body a target accepts (the fuzzer's own memory limit is far above it).
pub const MAX_BODY: usize = 4 << 20;

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

/// Settings that name files (read from disk, not parsed from the string): never given random
/// paths (which would read the machine's files); the `config` target writes their content.
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

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (to wrap DER in PEM).
pub fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().fold(0u32, |n, b| n << 8 | u32::from(*b)) << (8 * (3 - chunk.len()));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(BASE64[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Standard base64 back to bytes (to take the DER out of a PEM fixture); skips `=`.
pub fn base64_decode(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in text.bytes().filter(|&c| c != b'=') {
        let Some(v) = BASE64.iter().position(|&b| b == c) else {
            continue;
        };
        acc = acc << 6 | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
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
    fn base64_round_trips() {
        for n in 0..10 {
            let bytes: Vec<u8> = (0..n).map(|i| (i * 37) as u8).collect();
            assert_eq!(base64_decode(&base64_encode(&bytes)), bytes);
        }
        assert_eq!(base64_encode(b"any"), "YW55");
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
