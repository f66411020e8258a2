//! Shared helpers for the integration tests: a safe wrapper over the C functions (the tests
//! exercise the real C boundary), the real Eureka server harness, and an in-process stub.
#![allow(dead_code)]

pub mod proxy;
pub mod stub;
pub mod tls_stub;

use std::ffi::{CStr, CString};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::ptr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use once_cell::sync::Lazy;
use registrar::ffi::*;

pub const PASSWORD: &str = "s3cret-pw";

pub fn password() -> String {
    std::env::var("REGISTRAR_TEST_PASSWORD").unwrap_or_else(|_| PASSWORD.to_string())
}

/// A unique app name per test, so tests can share one registry.
pub fn unique_app(prefix: &str) -> String {
    static COUNTER: Lazy<Mutex<u32>> = Lazy::new(|| Mutex::new(0));
    let mut n = COUNTER.lock().unwrap();
    *n += 1;
    format!("{prefix}-{}-{}", std::process::id(), *n)
}

pub fn last_error_message() -> String {
    let mut buf = vec![0u8; 1024];
    let n = registrar_last_error_message(buf.as_mut_ptr().cast(), buf.len());
    buf.truncate(n.min(1023));
    String::from_utf8(buf).unwrap()
}

/// A status plus the thread's last error message, as C callers see them.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub status: registrar_status,
    pub message: String,
}

pub fn check(status: registrar_status) -> Result<(), Failure> {
    if status == registrar_status::REGISTRAR_OK {
        Ok(())
    } else {
        Err(Failure {
            status,
            message: last_error_message(),
        })
    }
}

/// An owned `registrar_config` + `registrar_client` pair driven through the C API.
pub struct Client {
    pub ptr: *mut registrar_client,
}

unsafe impl Send for Client {}
unsafe impl Sync for Client {}

pub fn config(settings: &[(&str, &str)]) -> *mut registrar_config {
    let mut cfg = ptr::null_mut();
    check(registrar_config_new(&mut cfg)).unwrap();
    for (k, v) in settings {
        let k = CString::new(*k).unwrap();
        let v = CString::new(*v).unwrap();
        check(registrar_config_set(cfg, k.as_ptr(), v.as_ptr())).unwrap();
    }
    cfg
}

impl Client {
    /// Creates a client with fast test settings plus `settings` (which win).
    pub fn new(url: &str, app: &str, settings: &[(&str, &str)]) -> Result<Client, Failure> {
        let mut all: Vec<(&str, &str)> = vec![
            ("url", url),
            ("app_name", app),
            ("hostname", "127.0.0.1"),
            ("ip_address", "127.0.0.1"),
            ("heartbeat_interval", "0.2"),
            ("lease_duration", "2"),
            ("timeout", "2"),
        ];
        all.extend_from_slice(settings);
        let cfg = config(&all);
        let mut client = ptr::null_mut();
        let result = check(registrar_client_new(cfg, &mut client));
        registrar_config_free(cfg);
        result.map(|()| Client { ptr: client })
    }

    pub fn start(&self) -> Result<(), Failure> {
        check(registrar_client_start(self.ptr))
    }
    pub fn set_status(&self, status: registrar_instance_status) -> Result<(), Failure> {
        check(registrar_client_set_status(self.ptr, status as i32))
    }
    pub fn set_metadata(&self, key: &str, value: Option<&str>) -> Result<(), Failure> {
        let k = CString::new(key).unwrap();
        let v = value.map(|v| CString::new(v).unwrap());
        check(registrar_client_set_metadata(
            self.ptr,
            k.as_ptr(),
            v.as_ref().map_or(ptr::null(), |v| v.as_ptr()),
        ))
    }
    pub fn wait_registered(&self, ms: u32) -> Result<(), Failure> {
        check(registrar_client_wait_registered(self.ptr, ms))
    }
    pub fn stop(&self, ms: u32) -> Result<(), Failure> {
        check(registrar_client_stop(self.ptr, ms))
    }
    pub fn info(&self) -> registrar_client_info {
        let mut info = std::mem::MaybeUninit::uninit();
        check(registrar_client_get_info(self.ptr, info.as_mut_ptr())).unwrap();
        unsafe { info.assume_init() }
    }
    pub fn last_error(&self) -> String {
        self.string(registrar_client_last_error)
    }
    pub fn instance_id(&self) -> String {
        self.string(registrar_client_instance_id)
    }
    pub fn app_name(&self) -> String {
        self.string(registrar_client_app_name)
    }
    /// The client's JSON state snapshot (`registrar_client_snapshot_json`).
    pub fn snapshot(&self) -> serde_json::Value {
        let mut buf = vec![0u8; 8192];
        let mut len = 0usize;
        check(registrar_client_snapshot_json(
            self.ptr,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut len,
        ))
        .unwrap();
        serde_json::from_slice(&buf[..len]).unwrap()
    }
    fn string(
        &self,
        f: extern "C" fn(
            *const registrar_client,
            *mut std::ffi::c_char,
            usize,
            *mut usize,
        ) -> registrar_status,
    ) -> String {
        let mut buf = vec![0u8; 2048];
        let mut len = 0usize;
        check(f(self.ptr, buf.as_mut_ptr().cast(), buf.len(), &mut len)).unwrap();
        CStr::from_bytes_until_nul(&buf)
            .unwrap()
            .to_str()
            .unwrap()
            .to_string()
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        registrar_client_free(self.ptr);
    }
}

// ---------------------------------------------------------------------------------------
// The real Eureka server.

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run_dir() -> PathBuf {
    let dir = match std::env::var("REGISTRAR_TEST_RUN_DIR") {
        Ok(d) => PathBuf::from(d),
        Err(_) => std::env::temp_dir().join(format!("registrar-rust-tests-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A real Eureka server this test owns; stopped on drop (and by scripts/test.sh's trap).
pub struct Registry {
    pub dir: PathBuf,
    pub port: u16,
    pub auth: bool,
    /// Further `scripts/test-eureka.sh start` options (e.g. `--peer URL`), kept for restart.
    pub extra: Vec<String>,
}

impl Registry {
    /// Starts a new server (on `port`, or a free one).
    pub fn start(name: &str, auth: bool, port: Option<u16>) -> Registry {
        let dir = run_dir().join(format!("{name}-{}", std::process::id()));
        let port = start_server(&dir, auth, port, &[]);
        Registry {
            dir,
            port,
            auth,
            extra: Vec::new(),
        }
    }

    /// Two servers replicating to each other (GUIDE.md section 5: each has its own URL as
    /// `eureka.server.my-url` and the other's in `defaultZone`), started side by side.
    pub fn start_peers(name: &str) -> (Registry, Registry) {
        let ports = [Registry::free_port(), Registry::free_port()];
        let url = |port: u16| format!("http://127.0.0.1:{port}/eureka/");
        let starts: Vec<_> = [(0, 1), (1, 0)]
            .into_iter()
            .map(|(me, other)| {
                let dir = run_dir().join(format!("{name}-{me}-{}", std::process::id()));
                let extra = vec!["--peer".to_string(), url(ports[other])];
                let port = ports[me];
                std::thread::spawn(move || {
                    start_server(&dir, false, Some(port), &extra);
                    Registry {
                        dir,
                        port,
                        auth: false,
                        extra,
                    }
                })
            })
            .collect();
        let mut started = starts.into_iter().map(|t| t.join().unwrap());
        (started.next().unwrap(), started.next().unwrap())
    }

    /// Kills the server at once (SIGKILL: no graceful shutdown, connections reset).
    pub fn kill(&self) {
        if let Ok(pid) = std::fs::read_to_string(self.dir.join("pid")) {
            let _ = Command::new("kill").arg("-KILL").arg(pid.trim()).status();
        }
    }

    /// A port nothing listens on yet (for "registry down at start").
    pub fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/eureka/", self.port)
    }

    pub fn stop(&self) {
        let _ = Command::new(repo_root().join("scripts/test-eureka.sh"))
            .arg("stop")
            .arg(&self.dir)
            .status();
    }

    /// Stops the server and starts a fresh, empty one on the same port.
    pub fn restart(&mut self) {
        self.stop();
        start_server(&self.dir, self.auth, Some(self.port), &self.extra);
    }
}

fn start_server(dir: &Path, auth: bool, port: Option<u16>, extra: &[String]) -> u16 {
    let mut cmd = Command::new(repo_root().join("scripts/test-eureka.sh"));
    cmd.arg("start").arg(dir).args(extra);
    if auth {
        cmd.arg("--auth");
    }
    if let Some(p) = port {
        cmd.arg("--port").arg(p.to_string());
    }
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .expect("run scripts/test-eureka.sh");
    assert!(out.status.success(), "the test Eureka server did not start");
    std::fs::read_to_string(dir.join("port"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The shared plain registry: `REGISTRAR_TEST_EUREKA_URL` from scripts/test.sh, or one started
/// for this test binary and stopped when the binary exits (a watchdog reads our stdin pipe).
pub fn shared_url() -> String {
    shared("REGISTRAR_TEST_EUREKA_URL", &[])
}

/// The shared registry requiring basic auth (user `registrar`, password [`password()`]).
pub fn shared_auth_url() -> String {
    shared("REGISTRAR_TEST_EUREKA_AUTH_URL", &["--auth"])
}

/// The test certificates (scripts/test-certs.sh): `REGISTRAR_TEST_TLS_CERTS` from
/// scripts/test.sh, or made once for this test binary.
pub fn tls_certs() -> PathBuf {
    static DIR: Lazy<PathBuf> = Lazy::new(|| {
        if let Some(dir) = std::env::var_os("REGISTRAR_TEST_TLS_CERTS") {
            return PathBuf::from(dir);
        }
        let dir = run_dir().join(format!("certs-{}", std::process::id()));
        let ok = Command::new(repo_root().join("scripts/test-certs.sh"))
            .arg(&dir)
            .stdout(Stdio::null())
            .status()
            .expect("run scripts/test-certs.sh");
        assert!(ok.success(), "scripts/test-certs.sh failed");
        dir
    });
    DIR.clone()
}

/// A file of the test certificates, as a string path.
pub fn cert(name: &str) -> String {
    tls_certs().join(name).display().to_string()
}

/// The shared https registry (server certificate signed by `ca.pem`).
pub fn shared_tls_url() -> String {
    let certs = tls_certs().display().to_string();
    shared("REGISTRAR_TEST_EUREKA_TLS_URL", &["--tls", &certs])
}

/// The shared https registry that requires a client certificate signed by `client-ca.pem`.
pub fn shared_mtls_url() -> String {
    let certs = tls_certs().display().to_string();
    shared(
        "REGISTRAR_TEST_EUREKA_MTLS_URL",
        &["--tls", &certs, "--mtls"],
    )
}

fn shared(var: &str, args: &[&str]) -> String {
    static STARTED: Lazy<Mutex<Vec<(String, String, Child)>>> =
        Lazy::new(|| Mutex::new(Vec::new()));
    if let Ok(url) = std::env::var(var) {
        return url;
    }
    let mut started = STARTED.lock().unwrap();
    if let Some((_, url, _)) = started.iter().find(|(v, _, _)| v == var) {
        return url.clone();
    }
    let dir = run_dir().join(format!(
        "shared-{}-{}",
        var.to_lowercase(),
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    // The child stops the server when our end of its stdin closes, i.e. when this test
    // process exits, however it exits.
    let script = format!(
        "'{}' start '{}' {} > '{}/started' || exit 1; read -r _; '{}' stop '{}'",
        repo_root().join("scripts/test-eureka.sh").display(),
        dir.display(),
        args.iter()
            .map(|a| format!("'{a}'"))
            .collect::<Vec<_>>()
            .join(" "),
        dir.display(),
        repo_root().join("scripts/test-eureka.sh").display(),
        dir.display()
    );
    let child = Command::new("bash")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let started_file = dir.join("started");
    let deadline = Instant::now() + Duration::from_secs(120);
    let url = loop {
        if let Ok(s) = std::fs::read_to_string(&started_file) {
            if s.ends_with('\n') {
                break s.trim().to_string();
            }
        }
        assert!(
            Instant::now() < deadline,
            "the shared test Eureka server did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    started.push((var.to_string(), url.clone(), child));
    url
}

// ---------------------------------------------------------------------------------------
// Looking at the registry directly.

pub fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(5))
        .no_proxy()
        .build()
        .unwrap()
}

/// `GET apps/{APP}/{ID}` (never cached by the server): the instance JSON, or None on 404.
pub fn get_instance(url: &str, app: &str, id: &str, auth: bool) -> Option<serde_json::Value> {
    let mut req = http()
        .get(format!("{url}apps/{}/{id}", app.to_uppercase()))
        .header("Accept", "application/json");
    if auth {
        req = req.basic_auth("registrar", Some(password()));
    }
    let resp = req.send().unwrap();
    match resp.status().as_u16() {
        200 => Some(
            serde_json::from_slice::<serde_json::Value>(&resp.bytes().unwrap()).unwrap()
                ["instance"]
                .clone(),
        ),
        404 => None,
        other => panic!("GET instance answered {other}"),
    }
}

pub fn status_of(url: &str, app: &str, id: &str) -> Option<String> {
    get_instance(url, app, id, false).map(|i| i["status"].as_str().unwrap().to_string())
}

/// Polls `f` every 20 ms until it returns Some or `limit` passes.
pub fn eventually<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Collects log lines from a client's log callback.
pub struct LogSink {
    pub lines: Mutex<Vec<String>>,
}

pub unsafe extern "C" fn collect_log(
    user_data: *mut std::ffi::c_void,
    level: i32,
    message: *const std::ffi::c_char,
) {
    let sink = &*(user_data as *const LogSink);
    let text = CStr::from_ptr(message).to_string_lossy();
    sink.lines.lock().unwrap().push(format!("{level} {text}"));
}

pub fn install_log(client: &Client, sink: &'static LogSink) {
    check(registrar_client_set_logger(
        client.ptr,
        Some(collect_log),
        sink as *const LogSink as *mut _,
        None,
        3,
    ))
    .unwrap();
}

pub fn flush() {
    let _ = std::io::stdout().flush();
}
