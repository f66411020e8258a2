//! Health of the local service: the settings, the probes, and the threshold logic that turns a
//! series of check results into "healthy" or "unhealthy".
//!
//! Pure building blocks, no thread of their own: every client's health watcher
//! (`crate::health_watch`) drives them on its schedule, and so does the `registrar` command
//! from its own loop (it needs readiness first and holds signals back during its drain).
//!
//! - [`HealthConfig`]: `REGISTRY_HEALTH_URL`, `REGISTRY_HEALTH_INTERVAL`,
//!   `REGISTRY_HEALTH_THRESHOLD` (and [`drain_duration`] for `REGISTRY_DRAIN_SECONDS`)
//! - [`HealthUrl::check`]: one HTTP GET bounded by a timeout; 2xx means healthy
//! - [`port_accepts`]: one TCP connect bounded by a timeout (readiness of a port)
//! - [`HealthTracker`]: consecutive failures turn unhealthy, as many successes turn healthy again

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use crate::config::{parse_seconds, quote, Settings};
use crate::error::{Error, Result};

const DEFAULT_INTERVAL_SECS: f64 = 10.0;
const DEFAULT_THRESHOLD: u32 = 3;
const DEFAULT_TIMEOUT_SECS: f64 = 5.0;

/// The health settings, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthConfig {
    /// REGISTRY_HEALTH_URL: the local URL to poll; `None` means no health check.
    pub url: Option<HealthUrl>,
    /// REGISTRY_HEALTH_INTERVAL: time between two checks.
    pub interval: Duration,
    /// REGISTRY_HEALTH_THRESHOLD: consecutive results needed to change the verdict.
    pub threshold: u32,
    /// REGISTRY_TIMEOUT: bound of each check.
    pub timeout: Duration,
}

impl HealthConfig {
    /// Reads REGISTRY_HEALTH_URL, REGISTRY_HEALTH_INTERVAL, REGISTRY_HEALTH_THRESHOLD and
    /// REGISTRY_TIMEOUT; every other setting is ignored.
    pub fn from_settings(settings: &Settings) -> Result<HealthConfig> {
        let url = settings
            .value("REGISTRY_HEALTH_URL")
            .map(HealthUrl::parse)
            .transpose()?;
        let interval = match settings.value("REGISTRY_HEALTH_INTERVAL") {
            Some(v) => parse_seconds("REGISTRY_HEALTH_INTERVAL", v)?,
            None => Duration::from_secs_f64(DEFAULT_INTERVAL_SECS),
        };
        let threshold = match settings.value("REGISTRY_HEALTH_THRESHOLD") {
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=1000).contains(n))
                .ok_or_else(|| {
                    Error::InvalidConfig(format!(
                        "REGISTRY_HEALTH_THRESHOLD {} is not a count of checks (1-1000)",
                        quote(v)
                    ))
                })?,
            None => DEFAULT_THRESHOLD,
        };
        let timeout = match settings.value("REGISTRY_TIMEOUT") {
            Some(v) => parse_seconds("REGISTRY_TIMEOUT", v)?,
            None => Duration::from_secs_f64(DEFAULT_TIMEOUT_SECS),
        };
        Ok(HealthConfig {
            url,
            interval,
            threshold,
            timeout,
        })
    }
}

/// REGISTRY_DRAIN_SECONDS: how long a stopping instance stays registered as DOWN (so callers'
/// caches drop it) before it is deleted. 0 (the default) deletes at once.
pub fn drain_duration(settings: &Settings) -> Result<Duration> {
    match settings.value("REGISTRY_DRAIN_SECONDS") {
        None => Ok(Duration::ZERO),
        Some(v) => match v.parse::<f64>() {
            Ok(secs) if (0.0..=3600.0).contains(&secs) => Ok(Duration::from_secs_f64(secs)),
            _ => Err(Error::InvalidConfig(format!(
                "REGISTRY_DRAIN_SECONDS {} is not a number of seconds (0 to 3600)",
                quote(v)
            ))),
        },
    }
}

/// A plain-HTTP URL of the local service's health endpoint. Only `http://`: the endpoint is
/// local, and a probe without TLS costs no thread and almost no memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthUrl {
    /// `host:port` to connect to.
    authority: String,
    /// The Host header.
    host_header: String,
    /// Path and query, at least `/`.
    target: String,
    /// As given (for messages).
    shown: String,
}

impl HealthUrl {
    pub fn parse(raw: &str) -> Result<HealthUrl> {
        let shown = crate::config::redact_userinfo(raw.trim());
        let quoted = quote(&shown);
        let url = reqwest::Url::parse(raw.trim()).map_err(|e| {
            Error::InvalidConfig(format!(
                "REGISTRY_HEALTH_URL {quoted} is not a valid URL: {e}"
            ))
        })?;
        if url.scheme() != "http" {
            return Err(Error::InvalidConfig(format!(
                "REGISTRY_HEALTH_URL {quoted} must start with http:// (a local, plain-HTTP endpoint)"
            )));
        }
        // host_str brackets IPv6 literals, as an authority needs.
        let host = match url.host_str() {
            Some(h) if !h.is_empty() => h.to_string(),
            _ => {
                return Err(Error::InvalidConfig(format!(
                    "REGISTRY_HEALTH_URL {quoted} has no host"
                )))
            }
        };
        // Credentials in the URL would be dropped without a word (the probe sends no
        // Authorization header) and the check would fail with a 401 that names no cause.
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Error::InvalidConfig(format!(
                "REGISTRY_HEALTH_URL {quoted} holds credentials, which the health check does \
                 not send; give it an endpoint that needs none"
            )));
        }
        let port = url.port_or_known_default().unwrap_or(80);
        if port == 0 {
            return Err(Error::InvalidConfig(format!(
                "REGISTRY_HEALTH_URL {quoted} has port 0, which nothing can listen on"
            )));
        }
        let mut target = url.path().to_string();
        if let Some(q) = url.query() {
            target.push('?');
            target.push_str(q);
        }
        Ok(HealthUrl {
            authority: format!("{host}:{port}"),
            host_header: match url.port() {
                Some(p) => format!("{host}:{p}"),
                None => host,
            },
            target,
            shown,
        })
    }

    /// The URL as configured (credentials hidden).
    pub fn as_str(&self) -> &str {
        &self.shown
    }

    /// One check: `GET` the URL, all of it (resolve, connect, send, read the status line)
    /// within `timeout`. `Ok` for a 2xx answer; `Err` says what went wrong otherwise.
    pub fn check(&self, timeout: Duration) -> std::result::Result<u16, String> {
        let started = Instant::now();
        let deadline = started + timeout;
        let addrs: Vec<SocketAddr> = self
            .authority
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {}: {e}", self.authority))?
            .collect();
        let mut stream = connect_any(&addrs, deadline)?;
        let request = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: registrar-health\r\nAccept: */*\r\nConnection: close\r\n\r\n",
            self.target, self.host_header
        );
        set_timeouts(&stream, deadline)?;
        stream
            .write_all(request.as_bytes())
            .map_err(|e| format!("sending the request failed: {e}"))?;
        // Read only as far as the status line; the body does not matter.
        let mut head = Vec::with_capacity(64);
        let mut buf = [0u8; 64];
        while !head.contains(&b'\n') && head.len() < 1024 {
            set_timeouts(&stream, deadline)?;
            match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => head.extend_from_slice(&buf[..n]),
                Err(e) if is_timeout(&e) => return Err("no answer within the timeout".into()),
                Err(e) => return Err(format!("reading the answer failed: {e}")),
            }
        }
        let line = String::from_utf8_lossy(&head);
        let status = line
            .lines()
            .next()
            .filter(|l| l.starts_with("HTTP/"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|code| code.parse::<u16>().ok())
            .ok_or_else(|| "the answer is not HTTP".to_string())?;
        // The drain ends well before the check's deadline: the watcher waiting for this check
        // has the same bound, and a drain must never turn a 2xx into a timed-out check.
        let until = (started + timeout.mul_f64(0.8)).min(Instant::now() + DRAIN_TIME);
        drain(&mut stream, status, head, until);
        if (200..300).contains(&status) {
            Ok(status)
        } else {
            Err(format!("answered HTTP {status}"))
        }
    }
}

impl std::fmt::Display for HealthUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

/// The longest a check waits for the end of an answer whose length the head does not give.
const DRAIN_TIME: Duration = Duration::from_secs(1);

/// Reads the rest of the answer before the stream is dropped. Closing with unread bytes, or
/// before the body arrives, makes the kernel answer with a reset, so the service's server
/// sees "connection reset by peer" on every check (Python's http.server prints a traceback
/// each time). Reads up to the end of the body when the head says where it is
/// (`Content-Length`, or a status without a body), so a server that keeps the connection open
/// despite `Connection: close` costs no wait; else up to the server's close. Bounded by
/// `DRAIN_BYTES` and `until` (at most `DRAIN_TIME`); the verdict is already known, so an
/// error changes nothing.
/// `head` holds what was read so far (the status line, maybe more).
fn drain(stream: &mut TcpStream, status: u16, mut head: Vec<u8>, until: Instant) {
    const DRAIN_BYTES: usize = 64 * 1024;
    let mut buf = [0u8; 4096];
    let mut body_start = None;
    while head.len() < DRAIN_BYTES {
        if body_start.is_none() {
            body_start = head
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .map(|i| i + 4);
        }
        if let Some(start) = body_start {
            if let Some(length) = body_length(status, &head[..start]) {
                if head.len() >= start.saturating_add(length) {
                    return;
                }
            }
        }
        if Instant::now() >= until || set_timeouts(stream, until).is_err() {
            return;
        }
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
}

/// The length of the body an answer's head announces: 0 for the statuses that have none
/// (1xx, 204, 304), `Content-Length` otherwise; `None` when only the close ends it (chunked or
/// no length).
fn body_length(status: u16, head: &[u8]) -> Option<usize> {
    if status < 200 || status == 204 || status == 304 {
        return Some(0);
    }
    let head = String::from_utf8_lossy(head);
    let mut length = None;
    for line in head.split("\r\n").skip(1) {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if name.trim().eq_ignore_ascii_case("transfer-encoding") {
            return None;
        }
        if name.trim().eq_ignore_ascii_case("content-length") {
            length = value.trim().parse::<usize>().ok();
        }
    }
    length
}

/// True when something accepts TCP connections at `addr` within `timeout`.
pub fn port_accepts(addr: SocketAddr, timeout: Duration) -> bool {
    TcpStream::connect_timeout(&addr, timeout.max(Duration::from_millis(1))).is_ok()
}

fn connect_any(addrs: &[SocketAddr], deadline: Instant) -> std::result::Result<TcpStream, String> {
    let mut last = "no address to connect to".to_string();
    for addr in addrs {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err("no answer within the timeout".into());
        }
        match TcpStream::connect_timeout(addr, left) {
            Ok(s) => return Ok(s),
            Err(e) => last = format!("cannot connect to {addr}: {e}"),
        }
    }
    Err(last)
}

fn set_timeouts(stream: &TcpStream, deadline: Instant) -> std::result::Result<(), String> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err("no answer within the timeout".into());
    }
    stream
        .set_read_timeout(Some(left))
        .and_then(|_| stream.set_write_timeout(Some(left)))
        .map_err(|e| format!("socket error: {e}"))
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

/// Turns check results into a verdict with hysteresis: `threshold` consecutive failures make a
/// healthy service unhealthy, as many consecutive successes make it healthy again. Starts
/// healthy (the host's own status applies until checks say otherwise).
#[derive(Debug, Clone)]
pub struct HealthTracker {
    threshold: u32,
    healthy: bool,
    /// Consecutive results that disagree with the current verdict.
    streak: u32,
}

impl HealthTracker {
    pub fn new(threshold: u32) -> HealthTracker {
        HealthTracker {
            threshold: threshold.max(1),
            healthy: true,
            streak: 0,
        }
    }

    pub fn is_healthy(&self) -> bool {
        self.healthy
    }

    /// Records one result; returns the new verdict when it changed.
    pub fn record(&mut self, ok: bool) -> Option<bool> {
        if ok == self.healthy {
            self.streak = 0;
            return None;
        }
        self.streak += 1;
        if self.streak >= self.threshold {
            self.healthy = ok;
            self.streak = 0;
            Some(ok)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn settings(pairs: &[(&str, &str)]) -> Settings {
        let mut s = Settings::new();
        for (k, v) in pairs {
            s.set(k, v).unwrap();
        }
        s
    }

    #[test]
    fn tracker_needs_threshold_results_in_a_row() {
        let mut t = HealthTracker::new(2);
        assert!(t.is_healthy());
        assert_eq!(t.record(false), None);
        assert_eq!(t.record(true), None, "a success resets the failure streak");
        assert_eq!(t.record(false), None);
        assert_eq!(t.record(false), Some(false));
        assert_eq!(t.record(false), None);
        assert_eq!(t.record(true), None);
        assert_eq!(t.record(true), Some(true));
        let mut one = HealthTracker::new(1);
        assert_eq!(one.record(false), Some(false));
        assert_eq!(one.record(true), Some(true));
    }

    #[test]
    fn settings_defaults_and_messages() {
        let c = HealthConfig::from_settings(&Settings::new()).unwrap();
        assert_eq!(c.url, None);
        assert_eq!(c.interval, Duration::from_secs(10));
        assert_eq!(c.threshold, 3);
        let c = HealthConfig::from_settings(&settings(&[
            ("health_url", "http://127.0.0.1:9/health?deep=1"),
            ("health_interval", "0.5"),
            ("health_threshold", "1"),
        ]))
        .unwrap();
        let url = c.url.unwrap();
        assert_eq!(url.authority, "127.0.0.1:9");
        assert_eq!(url.target, "/health?deep=1");
        assert_eq!(c.interval, Duration::from_millis(500));
        assert_eq!(c.threshold, 1);
        for (key, value, expected) in [
            (
                "health_url",
                "localhost:8080",
                "REGISTRY_HEALTH_URL 'localhost:8080'",
            ),
            ("health_url", "https://h/x", "must start with http://"),
            (
                "health_interval",
                "often",
                "REGISTRY_HEALTH_INTERVAL 'often'",
            ),
            ("health_threshold", "0", "REGISTRY_HEALTH_THRESHOLD '0'"),
            (
                "health_url",
                "http://u:secret@127.0.0.1:8080/health",
                "REGISTRY_HEALTH_URL 'http://***@127.0.0.1:8080/health' holds credentials",
            ),
            (
                "health_url",
                "http://127.0.0.1:0/health",
                "REGISTRY_HEALTH_URL 'http://127.0.0.1:0/health' has port 0",
            ),
        ] {
            let e = HealthConfig::from_settings(&settings(&[(key, value)])).unwrap_err();
            assert!(e.to_string().contains(expected), "{e}");
        }
        assert_eq!(drain_duration(&Settings::new()).unwrap(), Duration::ZERO);
        let d = drain_duration(&settings(&[("drain_seconds", "1.5")])).unwrap();
        assert_eq!(d, Duration::from_millis(1500));
        let e = drain_duration(&settings(&[("drain_seconds", "-1")])).unwrap_err();
        assert!(e.to_string().contains("REGISTRY_DRAIN_SECONDS '-1'"), "{e}");
    }

    /// A one-shot HTTP server on loopback answering `reply` to the first request.
    fn serve_once(reply: &'static str) -> (String, std::thread::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/health", listener.local_addr().unwrap());
        let handle = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 512];
            let _ = s.read(&mut buf);
            let _ = s.write_all(reply.as_bytes());
        });
        (url, handle)
    }

    #[test]
    fn check_reads_the_status_line() {
        let (url, h) = serve_once("HTTP/1.1 204 No Content\r\n\r\n");
        assert_eq!(
            HealthUrl::parse(&url)
                .unwrap()
                .check(Duration::from_secs(2)),
            Ok(204)
        );
        h.join().unwrap();
        let (url, h) = serve_once("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n");
        let e = HealthUrl::parse(&url)
            .unwrap()
            .check(Duration::from_secs(2));
        assert_eq!(e, Err("answered HTTP 503".into()));
        h.join().unwrap();
        let (url, h) = serve_once("garbage\r\n");
        let e = HealthUrl::parse(&url)
            .unwrap()
            .check(Duration::from_secs(2));
        assert_eq!(e, Err("the answer is not HTTP".into()));
        h.join().unwrap();
    }

    /// The service's server sees the probe close cleanly, not a reset: the probe reads the
    /// whole answer (headers longer than one read, then the body) before closing.
    #[test]
    fn check_reads_the_answer_to_its_end_before_closing() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/health", listener.local_addr().unwrap());
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 512];
            let _ = s.read(&mut buf);
            let body = "x".repeat(3000);
            let head = format!(
                "HTTP/1.0 200 OK\r\nServer: BaseHTTP/0.6 Python/3.11.7\r\n\
                 Content-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            s.write_all(head.as_bytes()).unwrap();
            s.write_all(body.as_bytes()).unwrap();
            s.shutdown(std::net::Shutdown::Write).unwrap();
            // Ok(0) when the probe closed after reading everything; a reset otherwise.
            s.read(&mut buf).map_err(|e| e.kind())
        });
        let answer = HealthUrl::parse(&url)
            .unwrap()
            .check(Duration::from_secs(5));
        assert_eq!(answer, Ok(200));
        assert_eq!(server.join().unwrap(), Ok(0));
    }

    /// A server that keeps the connection open after its answer (ignoring `Connection:
    /// close`) still sees a clean close: the probe stops reading at the announced length.
    #[test]
    fn check_stops_at_the_announced_end_of_the_answer() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/health", listener.local_addr().unwrap());
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 512];
            let _ = s.read(&mut buf);
            let reply = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2000\r\n\r\n{}",
                "y".repeat(2000)
            );
            s.write_all(reply.as_bytes()).unwrap();
            s.read(&mut buf).map_err(|e| e.kind())
        });
        let answer = HealthUrl::parse(&url)
            .unwrap()
            .check(Duration::from_secs(30));
        assert_eq!(answer, Ok(200));
        assert_eq!(server.join().unwrap(), Ok(0));
    }

    #[test]
    fn body_length_from_the_head() {
        let head = |extra: &str| format!("HTTP/1.1 200 OK\r\n{extra}\r\n").into_bytes();
        assert_eq!(body_length(200, &head("Content-Length: 12\r\n")), Some(12));
        assert_eq!(body_length(200, &head("content-length:0\r\n")), Some(0));
        assert_eq!(body_length(204, &head("")), Some(0));
        assert_eq!(body_length(304, &head("Content-Length: 5\r\n")), Some(0));
        assert_eq!(body_length(200, &head("")), None);
        assert_eq!(
            body_length(200, &head("Transfer-Encoding: chunked\r\n")),
            None
        );
        assert_eq!(body_length(503, &head("Content-Length: x\r\n")), None);
    }

    #[test]
    fn check_is_bounded_by_the_timeout() {
        // Accepts but never answers.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let started = Instant::now();
        let e = HealthUrl::parse(&url)
            .unwrap()
            .check(Duration::from_millis(300));
        assert!(e.is_err());
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        drop(listener);
        // Nothing listens: refused at once.
        let e = HealthUrl::parse(&url)
            .unwrap()
            .check(Duration::from_secs(1));
        assert!(e.unwrap_err().contains("cannot connect"));
        assert!(!port_accepts(
            url[7..url.len() - 1].parse().unwrap(),
            Duration::from_millis(200)
        ));
    }
}
