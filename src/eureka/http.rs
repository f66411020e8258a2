//! HTTP to the Eureka servers: reqwest's async client, driven on the agent thread
//! (`src/worker.rs`), with failover across the service URLs.
//!
//! Failover works like Eureka's own `RetryableEurekaHttpClient`: a connection error, a
//! timeout, a 5xx or a 429 moves the *same* request on to the next server (within the request's
//! deadline) and puts the failing server in quarantine: later requests skip it, until every
//! server is quarantined, when the quarantine is lifted and all are tried again. The server
//! that answered last stays preferred. Any other answer is final: a 4xx is a configuration
//! problem another server would repeat, and a 3xx is refused (a redirect would have turned a
//! POST into a GET of another page that "succeeds"). Every body is read under a size cap,
//! counted after gzip decompression (`body.rs`), so no answer can exhaust the host's memory.
//!
//! One `reqwest::Client` (one pool of kept-alive connections) per distinct [`Tls`] on the
//! thread that makes the requests, which is the one agent thread: every handle of the process
//! with the same transport settings shares it, so a thousand registrations against one registry
//! need a few connections, not a thousand. Timeouts and credentials are set per request.
//!
//! At most [`MAX_REQUESTS_PER_SERVER`] requests are in flight to one server (scheme, host and
//! port) at a time; the others wait for a turn, in order, within their own timeout. Without
//! that limit a thousand handles starting at once open a thousand connections (each a socket,
//! TLS state and buffers on our side, a handshake and a thread hand-off on the server's), which
//! costs more memory and server CPU than reusing a pool-sized set of connections.

use std::cell::RefCell;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use reqwest::header::{
    HeaderValue, ACCEPT, ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_TYPE, LOCATION,
};
use reqwest::{Client, Method, Response};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;

use super::body::{BodyDecoder, BodyError, Encoding};
use super::{paths, tls, Heartbeat, Tls};
use crate::config::{Connection, ServiceUrl};
use crate::error::{Error, Result};
use crate::instance::InstanceStatus;
use crate::worker;

/// Longest server reason quoted in an error message.
const MAX_REASON_CHARS: usize = 300;

/// Idle connections kept per server: enough for bursts of many handles' requests at once,
/// few enough to cost little memory.
const IDLE_CONNECTIONS_PER_SERVER: usize = 32;

/// Requests in flight to one server at once, over all handles of the process: as many as the
/// pool keeps connections, so a burst reuses them instead of opening one per request.
pub(crate) const MAX_REQUESTS_PER_SERVER: usize = IDLE_CONNECTIONS_PER_SERVER;

/// The largest answer to a registration, heartbeat or deregistration (Eureka sends none), and
/// the most of an error answer read for its reason.
pub(crate) const SMALL_ANSWER_BYTES: usize = 64 * 1024;

pub struct EurekaHttp {
    servers: Vec<ServiceUrl>,
    /// Each server's origin (`scheme://host:port`), the key of its request limit.
    origins: Vec<String>,
    /// The transport settings that need a client of their own (see `client_for`).
    tls: Tls,
    failover: Mutex<Failover>,
    timeout: Duration,
    /// Cap of a registry fetch's body (REGISTRY_MAX_RESPONSE_BYTES).
    max_response_bytes: usize,
    /// The heartbeat's path and the last URL built, kept because they are the same request
    /// after request (see `heartbeat_path`, `url`): building them each time (formatting,
    /// percent-encoding, parsing the URL again) was a tenth of a heartbeat's instructions.
    reuse: Mutex<Reuse>,
}

#[derive(Default)]
struct Reuse {
    /// The heartbeat path for (status, lastDirtyTimestamp), which change rarely.
    heartbeat: Option<(InstanceStatus, u64, String)>,
    /// The URL of the last request: server index, path, URL.
    url: Option<(usize, String, reqwest::Url)>,
}

/// Which server to ask first, and which to skip.
struct Failover {
    /// The server that answered last: requests start there (sticky failover).
    preferred: usize,
    /// Servers that failed (connection, timeout, 5xx, 429) since the quarantine was last lifted.
    quarantined: Vec<bool>,
}

impl Failover {
    /// The servers to try, in order: the preferred one first, quarantined ones left out, unless
    /// that would leave none: then the quarantine is lifted and every server is tried.
    fn candidates(&mut self) -> Vec<usize> {
        let n = self.quarantined.len();
        let order = (0..n).map(|offset| (self.preferred + offset) % n);
        let open: Vec<usize> = order.clone().filter(|&i| !self.quarantined[i]).collect();
        if !open.is_empty() {
            return open;
        }
        self.quarantined.iter_mut().for_each(|q| *q = false);
        order.collect()
    }

    fn failed(&mut self, index: usize) {
        self.quarantined[index] = true;
    }

    fn answered(&mut self, index: usize) {
        self.preferred = index;
        self.quarantined[index] = false;
    }
}

/// The outcome of asking one server.
enum Attempt {
    /// An answer to keep (success or a final error): no other server is asked.
    Final(Result<Vec<u8>>),
    /// This server failed in a way another may not: quarantine it, try the next.
    Failover(Error),
}

/// The one place where an HTTP client is configured. Settings that differ between handles are
/// either per request (timeouts, credentials) or part of [`Tls`] (one client each).
fn build_client(tls: &Tls) -> Result<Client> {
    Client::builder()
        .use_preconfigured_tls(tls.client_config())
        .user_agent(concat!("registrar/", env!("CARGO_PKG_VERSION")))
        .pool_max_idle_per_host(IDLE_CONNECTIONS_PER_SERVER)
        .tcp_nodelay(true)
        // Never followed: a redirected POST becomes a GET that "succeeds" (see send_once).
        .redirect(reqwest::redirect::Policy::none())
        // reqwest retries only HTTP/2 and HTTP/3 protocol refusals, which an HTTP/1 client
        // never gets (failover is ours, above); yet its retry layer copies every request
        // (headers, URI, extensions) in case it must resend it. With no retries allowed it
        // copies nothing.
        .retry(reqwest::retry::never().max_retries_per_request(0))
        // Eureka traffic goes straight to the configured servers, as with the Java client;
        // a process-wide HTTP_PROXY meant for outbound web traffic must not capture it.
        .no_proxy()
        .build()
        .map_err(|e| Error::Transport(format!("cannot create the HTTP client: {e}")))
}

thread_local! {
    /// The clients of this thread, by TLS settings. On the agent thread (where every request
    /// runs) that makes one pool per process, created there and gone with the thread.
    static CLIENTS: RefCell<Vec<(Tls, Client)>> = const { RefCell::new(Vec::new()) };
}

thread_local! {
    /// The request limit of each server origin this thread talks to (see
    /// [`MAX_REQUESTS_PER_SERVER`]); one entry per distinct origin, a few bytes each.
    static LIMITS: RefCell<Vec<(String, Arc<Semaphore>)>> = const { RefCell::new(Vec::new()) };
}

/// The request limit shared by every request to `origin` on this thread.
fn limit_for(origin: &str) -> Arc<Semaphore> {
    LIMITS.with(|limits| {
        if let Some((_, limit)) = limits.borrow().iter().find(|(o, _)| o == origin) {
            return limit.clone();
        }
        let limit = Arc::new(Semaphore::new(MAX_REQUESTS_PER_SERVER));
        limits
            .borrow_mut()
            .push((origin.to_string(), limit.clone()));
        limit
    })
}

/// The shared client for these TLS settings (a cheap handle to it), built on first use.
fn client_for(tls: &Tls) -> Result<Client> {
    CLIENTS.with(|clients| {
        if let Some((_, client)) = clients.borrow().iter().find(|(t, _)| t == tls) {
            return Ok(client.clone());
        }
        let client = build_client(tls)?;
        clients.borrow_mut().push((tls.clone(), client.clone()));
        Ok(client)
    })
}

impl EurekaHttp {
    /// Prepares requests to the registry `connection` describes. Cheap: no client and no
    /// connection exist before the first request.
    pub fn new(connection: Connection) -> EurekaHttp {
        EurekaHttp {
            failover: Mutex::new(Failover {
                preferred: 0,
                quarantined: vec![false; connection.service_urls.len()],
            }),
            origins: connection
                .service_urls
                .iter()
                .map(|s| s.url.origin().ascii_serialization())
                .collect(),
            servers: connection.service_urls,
            tls: connection.tls,
            timeout: connection.timeout,
            max_response_bytes: connection.max_response_bytes,
            reuse: Mutex::new(Reuse::default()),
        }
    }

    /// The service URL requests go to first (the one that answered last), credentials removed.
    pub fn server_in_use(&self) -> String {
        let index = self.failover.lock().preferred;
        crate::config::redact_userinfo(self.servers[index].base())
    }

    /// `GET {path}` (relative to the service URL, e.g. `apps/delta`): the body of a 2xx answer.
    /// The body is read up to REGISTRY_MAX_RESPONSE_BYTES.
    pub async fn get(&self, path: &str, deadline: Option<Instant>) -> Result<Vec<u8>> {
        let cap = Cap {
            bytes: self.max_response_bytes,
            setting: Some("REGISTRY_MAX_RESPONSE_BYTES"),
        };
        self.send(Method::GET, path, None, deadline, cap).await
    }

    /// `POST apps/{APP}` with the instance JSON. Eureka answers 204.
    pub async fn register(&self, app: &str, body: &[u8], deadline: Option<Instant>) -> Result<()> {
        self.send(
            Method::POST,
            &paths::app(app),
            Some(body),
            deadline,
            Cap::SMALL,
        )
        .await
        .map(|_| ())
    }

    /// `PUT apps/{APP}/{ID}?status=..&lastDirtyTimestamp=..`. 200 renews, 404 asks us to register.
    pub async fn heartbeat(
        &self,
        app: &str,
        instance_id: &str,
        status: InstanceStatus,
        last_dirty_timestamp: u64,
        deadline: Option<Instant>,
    ) -> Result<Heartbeat> {
        let path = self.heartbeat_path(app, instance_id, status, last_dirty_timestamp);
        match self
            .send(Method::PUT, &path, None, deadline, Cap::SMALL)
            .await
        {
            Ok(_) => Ok(Heartbeat::Renewed),
            Err(Error::NotFound(_)) => Ok(Heartbeat::NotRegistered),
            Err(e) => Err(e),
        }
    }

    /// `DELETE apps/{APP}/{ID}`. 200; 404 means it is already gone, which is what we want.
    pub async fn deregister(
        &self,
        app: &str,
        instance_id: &str,
        deadline: Option<Instant>,
    ) -> Result<()> {
        let path = paths::instance(app, instance_id);
        match self
            .send(Method::DELETE, &path, None, deadline, Cap::SMALL)
            .await
        {
            Ok(_) | Err(Error::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// `paths::heartbeat`, built again only when the status or lastDirtyTimestamp changed.
    fn heartbeat_path(
        &self,
        app: &str,
        instance_id: &str,
        status: InstanceStatus,
        last_dirty_timestamp: u64,
    ) -> String {
        let mut reuse = self.reuse.lock();
        match &reuse.heartbeat {
            Some((s, t, path)) if *s == status && *t == last_dirty_timestamp => path.clone(),
            _ => {
                let path = paths::heartbeat(app, instance_id, status, last_dirty_timestamp);
                reuse.heartbeat = Some((status, last_dirty_timestamp, path.clone()));
                path
            }
        }
    }

    /// The full URL of `path` (relative, with an optional query) on server `index`; the last
    /// one is kept, since a task sends the same request again and again (heartbeats, fetches).
    fn url(&self, index: usize, path: &str) -> reqwest::Url {
        let mut reuse = self.reuse.lock();
        match &reuse.url {
            Some((i, p, url)) if *i == index && p == path => url.clone(),
            _ => {
                let url = paths::join(&self.servers[index].url, path);
                reuse.url = Some((index, path.to_string(), url.clone()));
                url
            }
        }
    }

    /// Sends one request: to the preferred server first, on to the next (skipping quarantined
    /// ones) after a failure another server may not have, all within `deadline` (each attempt
    /// also within REGISTRY_TIMEOUT). The last failure is returned if every server failed.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&[u8]>,
        deadline: Option<Instant>,
        cap: Cap,
    ) -> Result<Vec<u8>> {
        let client = client_for(&self.tls)?;
        let candidates = self.failover.lock().candidates();
        let mut last_error = None;
        for index in candidates {
            let timeout = match deadline {
                None => self.timeout,
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(last_error.unwrap_or_else(|| {
                            Error::Timeout(format!(
                                "{method} {}{path}: no time left before the deadline",
                                self.servers[index].base()
                            ))
                        }));
                    }
                    left.min(self.timeout)
                }
            };
            let attempt = self
                .send_once(&client, index, &method, path, body, timeout, cap)
                .await;
            match attempt {
                Attempt::Final(result) => {
                    self.failover.lock().answered(index);
                    return result;
                }
                Attempt::Failover(error) => {
                    self.failover.lock().failed(index);
                    last_error = Some(error);
                }
            }
        }
        Err(last_error.expect("at least one service URL is configured"))
    }

    /// Asks server `index` once and reads its whole answer (under the cap).
    #[allow(clippy::too_many_arguments)]
    async fn send_once(
        &self,
        client: &Client,
        index: usize,
        method: &Method,
        path: &str,
        body: Option<&[u8]>,
        timeout: Duration,
        cap: Cap,
    ) -> Attempt {
        let server = &self.servers[index];
        let target = self.url(index, path);
        let url = target.as_str().to_string();
        // The attempt's deadline, for the wait for a turn, the answer and its body alike. Our
        // own timer rather than reqwest's per-request timeout, so a task can arm it ahead of
        // time and Tokio need not wake itself to register it (see `worker::arm_ahead`).
        let mut deadline = worker::request_timer(Instant::now() + timeout);
        // Wait for a turn to this server within the attempt's time; the rest of it is the
        // request's. Held until the answer has been read: the connection is then free again.
        let limit = limit_for(&self.origins[index]);
        let _permit: OwnedSemaphorePermit =
            match worker::unless(limit.acquire_owned(), deadline.as_mut()).await {
                Some(Ok(permit)) => permit,
                _ => {
                    return Attempt::Failover(Error::Timeout(format!(
                        "{method} {url}: no answer within the timeout ({MAX_REQUESTS_PER_SERVER} \
                         requests to this server were in flight and none finished in time)"
                    )))
                }
            };
        let mut request = client
            .request(method.clone(), target)
            .header(ACCEPT, HeaderValue::from_static("application/json"))
            // Registry answers are large and compress ~20:1; `read_body` decodes them.
            .header(ACCEPT_ENCODING, HeaderValue::from_static("gzip"));
        if let Some(creds) = &server.credentials {
            request = request.basic_auth(&creds.user, Some(&creds.password));
        }
        if let Some(body) = body {
            request = request
                .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
                .body(body.to_vec());
        }
        let response = match worker::unless(request.send(), deadline.as_mut()).await {
            Some(Ok(response)) => response,
            Some(Err(e)) => {
                let error = transport_error(method, &url, &e, self.tls.has_client_cert());
                return Attempt::Failover(error);
            }
            None => {
                return Attempt::Failover(Error::Timeout(format!(
                    "{method} {url}: no answer within the timeout"
                )))
            }
        };
        let status = response.status().as_u16();
        if (300..400).contains(&status) {
            let location = response
                .headers()
                .get(LOCATION)
                .and_then(|l| l.to_str().ok())
                .map(crate::config::redact_userinfo)
                .unwrap_or_else(|| "(none)".into());
            return Attempt::Final(Err(Error::Rejected {
                status,
                message: format!(
                    "{method} {url}: redirected to {location}; registrar does not follow \
                     redirects: set REGISTRY_URL to the registry's own address"
                ),
            }));
        }
        if status >= 500 || status == 429 {
            // The reason is worth reading, but a failing server gets no more of our time.
            let body = read_body(response, Cap::SMALL, method, &url, true, deadline.as_mut())
                .await
                .unwrap_or_default();
            let error = classify(method, &url, status, body, server.credentials.is_some());
            return Attempt::Failover(
                error
                    .err()
                    .unwrap_or(Error::Internal("a 5xx classified as success".into())),
            );
        }
        // Error answers are only quoted: read a little of them, never fail on their size.
        let (cap, truncate) = if (200..300).contains(&status) {
            (cap, false)
        } else {
            (Cap::SMALL, true)
        };
        match read_body(response, cap, method, &url, truncate, deadline.as_mut()).await {
            Ok(body) => Attempt::Final(classify(
                method,
                &url,
                status,
                body,
                server.credentials.is_some(),
            )),
            Err(error @ Error::Rejected { .. }) => Attempt::Final(Err(error)),
            // The answer broke off or stopped arriving: another server may do better.
            Err(error) => Attempt::Failover(error),
        }
    }
}

/// How much of a body to read: `bytes`, and the setting that raises it (for the message).
#[derive(Clone, Copy)]
struct Cap {
    bytes: usize,
    setting: Option<&'static str>,
}

impl Cap {
    const SMALL: Cap = Cap {
        bytes: SMALL_ANSWER_BYTES,
        setting: None,
    };
}

/// Reads the body chunk by chunk, decoding gzip as it arrives (see `body.rs`), up to `cap`
/// decoded bytes. Over the cap: an error that says so, or with `truncate` the first `cap`
/// bytes. A body that stops arriving before `deadline` is a timeout that says so; one that
/// breaks off or is not the gzip it claims, a transport error (another server may do better).
async fn read_body(
    mut response: Response,
    cap: Cap,
    method: &Method,
    url: &str,
    truncate: bool,
    mut deadline: Pin<&mut Sleep>,
) -> Result<Vec<u8>> {
    let status = response.status().as_u16();
    let too_large = || {
        let raise = cap
            .setting
            .map_or(String::new(), |s| format!(" (raise it with {s})"));
        Error::Rejected {
            status,
            message: format!(
                "{method} {url}: the answer is larger than {} bytes, the limit{raise}",
                cap.bytes
            ),
        }
    };
    let encoding = match Encoding::from_header(
        response
            .headers()
            .get(CONTENT_ENCODING)
            .map(|v| v.as_bytes()),
    ) {
        Ok(encoding) => encoding,
        // An error answer is only quoted: what it says matters less than its status.
        Err(_) if truncate => return Ok(Vec::new()),
        Err(why) => {
            return Err(Error::Rejected {
                status,
                message: format!("{method} {url}: {why}"),
            })
        }
    };
    // A plain body announced as too large is refused before it is read. (A compressed one
    // can only be judged by what it decodes to.)
    if !truncate
        && encoding == Encoding::Identity
        && response
            .content_length()
            .is_some_and(|n| n > cap.bytes as u64)
    {
        return Err(too_large());
    }
    let mut body = BodyDecoder::new(encoding, cap.bytes);
    let mut received = 0usize;
    loop {
        let chunk = match worker::unless(response.chunk(), deadline.as_mut()).await {
            Some(Ok(Some(chunk))) => chunk,
            Some(Ok(None)) => break,
            None => {
                return Err(Error::Timeout(format!(
                    "{method} {url}: the answer stopped arriving ({received} bytes received, \
                     the rest not within the timeout)"
                )))
            }
            Some(Err(e)) => {
                return Err(Error::Transport(format!(
                    "{method} {url}: the answer broke off after {received} bytes: {}",
                    innermost(&e)
                )))
            }
        };
        received += chunk.len();
        match body.push(&chunk) {
            Ok(()) => {}
            Err(_) if truncate => return Ok(body.decoded()),
            Err(BodyError::TooLarge) => return Err(too_large()),
            Err(BodyError::Corrupt(why)) => return Err(corrupt(method, url, received, &why)),
        }
    }
    match body.finish() {
        Ok(()) => Ok(body.decoded()),
        // Error answers are only quoted: whatever decoded is enough.
        Err(_) if truncate => Ok(body.decoded()),
        Err(BodyError::TooLarge) => Err(too_large()),
        Err(BodyError::Corrupt(why)) => Err(corrupt(method, url, received, &why)),
    }
}

fn corrupt(method: &Method, url: &str, received: usize, why: &str) -> Error {
    Error::Transport(format!(
        "{method} {url}: the answer is not valid gzip ({why}; {received} bytes received)"
    ))
}

/// The innermost cause ("Connection refused (os error 111)"): what a person needs.
fn innermost(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

fn classify(
    method: &Method,
    url: &str,
    status: u16,
    body: Vec<u8>,
    sent_credentials: bool,
) -> Result<Vec<u8>> {
    match status {
        200..=299 => Ok(body),
        401 | 403 if sent_credentials => Err(Error::Unauthorized(format!(
            "{method} {url}: the registry refused the credentials of REGISTRY_USER/REGISTRY_PASSWORD (HTTP {status})"
        ))),
        401 | 403 => Err(Error::Unauthorized(format!(
            "{method} {url}: the registry requires credentials (HTTP {status}); set REGISTRY_USER and REGISTRY_PASSWORD"
        ))),
        404 => Err(Error::NotFound(format!("{method} {url}: HTTP 404"))),
        _ => Err(Error::Rejected { status, message: format!("{method} {url}: {}", reason(&body)) }),
    }
}

/// The server's reason as plain text: error bodies are never JSON-parsed (400s are plain text,
/// proxies send HTML), only trimmed and shortened.
fn reason(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.is_empty() {
        return "(empty body)".to_string();
    }
    match text.char_indices().nth(MAX_REASON_CHARS) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text,
    }
}

fn transport_error(
    method: &Method,
    url: &str,
    error: &reqwest::Error,
    has_client_cert: bool,
) -> Error {
    // A failed handshake says which certificate problem it was; it fails over like any other
    // connection failure.
    if let Some(problem) = tls::describe_failure(error, has_client_cert) {
        return Error::Transport(format!("{method} {url}: TLS: {problem}"));
    }
    // The innermost cause ("Connection refused (os error 111)") is what a person needs.
    let mut cause: &dyn std::error::Error = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    if error.is_timeout() {
        Error::Timeout(format!("{method} {url}: no answer within the timeout"))
    } else {
        Error::Transport(format!("{method} {url}: {cause}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_are_quoted_as_text() {
        assert_eq!(reason(b""), "(empty body)");
        assert_eq!(reason(b"  bad\n request  "), "bad request");
        let long = vec![b'x'; 1000];
        assert_eq!(reason(&long).len(), MAX_REASON_CHARS + 3);
    }

    #[test]
    fn status_codes_map_to_errors() {
        let m = Method::PUT;
        assert!(classify(&m, "u", 200, vec![], false).is_ok());
        assert!(classify(&m, "u", 204, vec![], false).is_ok());
        assert!(matches!(
            classify(&m, "u", 404, vec![], false),
            Err(Error::NotFound(_))
        ));
        let e = classify(&m, "u", 401, vec![], true).unwrap_err();
        assert!(
            matches!(e, Error::Unauthorized(_))
                && e.to_string().contains("refused the credentials")
        );
        let e = classify(&m, "u", 401, vec![], false).unwrap_err();
        assert!(e.to_string().contains("set REGISTRY_USER"));
        let e = classify(&m, "u", 400, b"cannot parse".to_vec(), false).unwrap_err();
        assert_eq!(
            e,
            Error::Rejected {
                status: 400,
                message: "PUT u: cannot parse".into()
            }
        );
    }
}
