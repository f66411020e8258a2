//! HTTP to the Eureka servers: reqwest's async client, driven on the agent thread
//! (`src/worker.rs`), with failover across the service URLs.
//!
//! One `reqwest::Client` (one pool of kept-alive connections) per distinct [`Tls`] on the
//! thread that makes the requests, which is the one agent thread: every handle of the process
//! with the same transport settings shares it, so a thousand registrations against one registry
//! need a few connections, not a thousand. Timeouts and credentials are set per request.

use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::header::{HeaderValue, ACCEPT, CONTENT_TYPE};
use reqwest::{Client, Method};

use super::{paths, tls, Heartbeat, Tls};
use crate::config::{Connection, ServiceUrl};
use crate::error::{Error, Result};
use crate::instance::InstanceStatus;

/// Longest server reason quoted in an error message.
const MAX_REASON_CHARS: usize = 300;

/// Idle connections kept per server: enough for bursts of many handles' requests at once,
/// few enough to cost little memory.
const IDLE_CONNECTIONS_PER_SERVER: usize = 32;

pub struct EurekaHttp {
    servers: Vec<ServiceUrl>,
    /// The transport settings that need a client of their own (see `client_for`).
    tls: Tls,
    /// Index of the server that answered last; requests start there (sticky failover).
    preferred: AtomicUsize,
    timeout: Duration,
}

/// The one place where an HTTP client is configured. Settings that differ between handles are
/// either per request (timeouts, credentials) or part of [`Tls`] (one client each).
fn build_client(tls: &Tls) -> Result<Client> {
    Client::builder()
        .use_preconfigured_tls(tls.client_config())
        .user_agent(concat!("registrar/", env!("CARGO_PKG_VERSION")))
        .pool_max_idle_per_host(IDLE_CONNECTIONS_PER_SERVER)
        .tcp_nodelay(true)
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
            servers: connection.service_urls,
            tls: connection.tls,
            preferred: AtomicUsize::new(0),
            timeout: connection.timeout,
        }
    }

    /// The service URL requests go to first (the one that answered last), credentials removed.
    pub fn server_in_use(&self) -> String {
        let index = self.preferred.load(Ordering::Relaxed) % self.servers.len();
        crate::config::redact_userinfo(self.servers[index].base())
    }

    /// `GET {path}` (relative to the service URL, e.g. `apps/delta`): the body of a 2xx answer.
    pub async fn get(&self, path: &str, deadline: Option<Instant>) -> Result<Vec<u8>> {
        self.send(Method::GET, path, None, deadline).await
    }

    /// `POST apps/{APP}` with the instance JSON. Eureka answers 204.
    pub async fn register(&self, app: &str, body: &[u8], deadline: Option<Instant>) -> Result<()> {
        self.send(Method::POST, &paths::app(app), Some(body), deadline)
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
        let path = paths::heartbeat(app, instance_id, status, last_dirty_timestamp);
        match self.send(Method::PUT, &path, None, deadline).await {
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
        match self.send(Method::DELETE, &path, None, deadline).await {
            Ok(_) | Err(Error::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The full URL of `path` (relative, with an optional query) on server `index`.
    fn url(&self, index: usize, path: &str) -> reqwest::Url {
        paths::join(&self.servers[index].url, path)
    }

    /// Sends one request, trying each server once starting with the last one that answered.
    /// Transport errors and timeouts move on to the next server; an HTTP answer is final.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&[u8]>,
        deadline: Option<Instant>,
    ) -> Result<Vec<u8>> {
        let client = client_for(&self.tls)?;
        let first = self.preferred.load(Ordering::Relaxed) % self.servers.len();
        let mut last_error = None;
        for offset in 0..self.servers.len() {
            let index = (first + offset) % self.servers.len();
            let server = &self.servers[index];
            let timeout = match deadline {
                None => self.timeout,
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(last_error.unwrap_or_else(|| {
                            Error::Timeout(format!(
                                "{method} {}{path}: no time left before the deadline",
                                server.base()
                            ))
                        }));
                    }
                    left.min(self.timeout)
                }
            };
            let target = self.url(index, path);
            let url = target.as_str().to_string();
            let mut request = client
                .request(method.clone(), target)
                .timeout(timeout)
                .header(ACCEPT, HeaderValue::from_static("application/json"));
            if let Some(creds) = &server.credentials {
                request = request.basic_auth(&creds.user, Some(&creds.password));
            }
            if let Some(body) = body {
                request = request
                    .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
                    .body(body.to_vec());
            }
            match request.send().await {
                Ok(response) => {
                    self.preferred.store(index, Ordering::Relaxed);
                    let status = response.status().as_u16();
                    // Read the whole body so the connection goes back to the pool for reuse.
                    let bytes = response
                        .bytes()
                        .await
                        .map(|b| b.to_vec())
                        .unwrap_or_default();
                    return classify(&method, &url, status, bytes, server.credentials.is_some());
                }
                Err(e) => {
                    last_error = Some(transport_error(
                        &method,
                        &url,
                        &e,
                        self.tls.has_client_cert(),
                    ))
                }
            }
        }
        Err(last_error.expect("at least one service URL is configured"))
    }
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
