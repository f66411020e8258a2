//! Where each Eureka request goes: the relative request targets (`apps/{APP}/{ID}?...`) and
//! their join onto a server's base URL.
//!
//! Pure string and URL work, kept apart from the HTTP transport so that every verb builds its
//! path in one place (a heartbeat's PUT and a deregistration's DELETE must name the very same
//! resource) and so the fuzz targets in `fuzz/` can check these functions without a network.

use crate::instance::InstanceStatus;

/// `apps/{APP}`: where an instance registers (`POST`).
pub fn app(app: &str) -> String {
    format!("apps/{}", encode_segment(app))
}

/// `apps/{APP}/{ID}`: one instance (`DELETE` deregisters; the heartbeat `PUT`s here too).
pub fn instance(app: &str, instance_id: &str) -> String {
    format!(
        "apps/{}/{}",
        encode_segment(app),
        encode_segment(instance_id)
    )
}

/// `apps/{APP}/{ID}?status=..&lastDirtyTimestamp=..`: the heartbeat (`PUT`).
pub fn heartbeat(
    app: &str,
    instance_id: &str,
    status: InstanceStatus,
    last_dirty_timestamp: u64,
) -> String {
    format!(
        "{}?status={}&lastDirtyTimestamp={last_dirty_timestamp}",
        instance(app, instance_id),
        status.as_str()
    )
}

/// The full URL of `target` (a relative path with an optional query, as built above) on the
/// server whose base URL is `base` (which ends in `/`, see `config::ServiceUrl`).
pub fn join(base: &reqwest::Url, target: &str) -> reqwest::Url {
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    let mut url = base.clone();
    url.set_path(&format!("{}{path}", base.path()));
    url.set_query(query);
    url
}

/// Percent-encodes one URL path segment (app names and instance ids such as `host:app:8080`).
/// `;` is encoded too: Tomcat and JAX-RS read `;...` in a segment as matrix parameters and
/// would cut `host;1` to `host` (found by the `paths` fuzz target).
pub fn encode_segment(segment: &str) -> String {
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

    #[test]
    fn semicolons_are_not_matrix_parameters() {
        // Fuzz finding: `apps/APP/h;1` reached the server as instance `h`.
        assert_eq!(instance("A;B", "h;1"), "apps/A%3BB/h%3B1");
    }

    #[test]
    fn heartbeat_and_deregistration_name_the_same_instance() {
        let put = heartbeat("APP", "h:app:1", InstanceStatus::Up, 7);
        assert_eq!(put, "apps/APP/h:app:1?status=UP&lastDirtyTimestamp=7");
        assert_eq!(put.split_once('?').unwrap().0, instance("APP", "h:app:1"));
    }

    #[test]
    fn targets_join_below_the_base_path() {
        let base = reqwest::Url::parse("http://h:8761/eureka/").unwrap();
        let url = join(&base, &heartbeat("A", "i d", InstanceStatus::Down, 1));
        assert_eq!(
            url.as_str(),
            "http://h:8761/eureka/apps/A/i%20d?status=DOWN&lastDirtyTimestamp=1"
        );
        assert_eq!(
            join(&base, "apps/delta").as_str(),
            "http://h:8761/eureka/apps/delta"
        );
    }
}
