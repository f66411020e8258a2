//! The Eureka REST protocol: paths, verbs, expected status codes, auth, timeouts, failover.
//!
//! Everything that knows what a Eureka server says lives here; the agent only sees
//! `register`, `heartbeat` and `deregister` and the typed outcome of each.

mod http;
pub mod read;

pub use http::EurekaHttp;

/// What a heartbeat told us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heartbeat {
    /// 200: the lease was renewed.
    Renewed,
    /// 404: the server does not know this instance (restart, eviction, or newer local data):
    /// the Eureka protocol's request to register again now.
    NotRegistered,
}

/// Percent-encodes one URL path segment (app names and instance ids such as `host:app:8080`).
pub(crate) fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        let keep = byte.is_ascii_alphanumeric()
            || matches!(
                byte,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b':'
                    | b'@'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
            );
        if keep {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_keep_eureka_ids_readable() {
        assert_eq!(encode_segment("host:my_app:8080"), "host:my_app:8080");
        assert_eq!(encode_segment("a%b é"), "a%25b%20%C3%A9");
    }
}
