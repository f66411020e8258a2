//! The discovery benchmark (method and figures in README.md next to this file).
//!
//! Built as an ignored test of tests/discovery_bench.rs, so it uses the release profile of the
//! library (LTO, opt-level 3) without a second build of the dependency tree:
//!
//!     bench/discovery/run.sh
//!     # or: cargo test --release --test discovery_bench -- --ignored --nocapture
//!     # DISCOVERY_BENCH_VERBOSE=1 also prints every parse+index run
//!
//! 1. Generates a registry of 10,000 instances in 500 apps, in the exact JSON shape of the
//!    real server's `GET apps` (and its XML twin for py-eureka-client, which reads XML).
//! 2. Parse + index with registrar (`Registry::parse`): time, peak heap, retained heap.
//! 3. The same document parsed by py-eureka-client, in the same run (py_parse.py).
//! 4. Lookups: one UP instance of an app, a million calls, through the Rust core and the C API.

use std::alloc::{GlobalAlloc, Layout, System};
use std::ffi::CString;
use std::hint::black_box;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use registrar::discovery::{Applications, Choice, Lookup, Registry};
use registrar::ffi::*;

const APPS: usize = 500;
const PER_APP: usize = 20;
const PARSE_RUNS: usize = 20;
const PY_RUNS: usize = 5;
const LOOKUPS: usize = 1_000_000;

// ---------------------------------------------------------------------------------------------
// Heap accounting: a counting wrapper around the system allocator.

pub struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            let now = CURRENT.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        System.dealloc(p, layout);
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let q = System.realloc(p, layout, new_size);
        if !q.is_null() {
            if new_size > layout.size() {
                let now = CURRENT.fetch_add(new_size - layout.size(), Ordering::Relaxed)
                    + (new_size - layout.size());
                PEAK.fetch_max(now, Ordering::Relaxed);
            } else {
                CURRENT.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        q
    }
}

/// Runs `f` and returns its result with the peak and retained heap growth it caused.
fn measure<T>(f: impl FnOnce() -> T) -> (T, usize, usize) {
    let base = CURRENT.load(Ordering::SeqCst);
    PEAK.store(base, Ordering::SeqCst);
    let value = f();
    let peak = PEAK.load(Ordering::SeqCst) - base;
    let retained = CURRENT.load(Ordering::SeqCst).saturating_sub(base);
    (value, peak, retained)
}

// ---------------------------------------------------------------------------------------------
// The registry document, in the real server's shape (captured from the test server:
// Spring Cloud Netflix Eureka 2025.1, one Java-client instance, GET apps as JSON and as XML).

struct Inst {
    app: String,
    id: String,
    host: String,
    ip: String,
    port: u16,
    status: &'static str,
    vip: String,
    zone: String,
    ts: u64,
}

fn instances() -> Vec<Inst> {
    let mut out = Vec::with_capacity(APPS * PER_APP);
    for a in 0..APPS {
        for j in 0..PER_APP {
            let port = 8000 + (j as u16);
            let host = format!("ip-10-{}-{}-{}.ec2.internal", a / 250, a % 250, j);
            out.push(Inst {
                app: format!("SERVICE-{a:03}"),
                id: format!("{host}:service-{a:03}:{port}"),
                ip: format!("10.{}.{}.{}", a / 250, a % 250, j + 10),
                host,
                port,
                // 90 % UP, 5 % DOWN, 5 % STARTING.
                status: match j {
                    18 => "DOWN",
                    19 => "STARTING",
                    _ => "UP",
                },
                vip: format!("service-{a:03}"),
                zone: format!("zone-{}", j % 3),
                ts: 1_795_949_239_000 + (a * PER_APP + j) as u64,
            });
        }
    }
    out
}

fn hashcode(all: &[Inst]) -> String {
    let count = |s: &str| all.iter().filter(|i| i.status == s).count();
    format!(
        "DOWN_{}_STARTING_{}_UP_{}_",
        count("DOWN"),
        count("STARTING"),
        count("UP")
    )
}

fn json_document(all: &[Inst]) -> String {
    let mut out = String::with_capacity(all.len() * 1200);
    out.push_str(&format!(
        r#"{{"applications":{{"versions__delta":"1","apps__hashcode":"{}","application":["#,
        hashcode(all)
    ));
    for (n, chunk) in all.chunks(PER_APP).enumerate() {
        if n > 0 {
            out.push(',');
        }
        out.push_str(&format!(r#"{{"name":"{}","instance":["#, chunk[0].app));
        for (k, i) in chunk.iter().enumerate() {
            if k > 0 {
                out.push(',');
            }
            out.push_str(&format!(
                concat!(
                    r#"{{"instanceId":"{id}","hostName":"{host}","app":"{app}","ipAddr":"{ip}","status":"{status}","#,
                    r#""overriddenStatus":"UNKNOWN","port":{{"$":{port},"@enabled":"true"}},"securePort":{{"$":443,"@enabled":"false"}},"#,
                    r#""countryId":1,"dataCenterInfo":{{"@class":"com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo","name":"MyOwn"}},"#,
                    r#""leaseInfo":{{"renewalIntervalInSecs":30,"durationInSecs":90,"registrationTimestamp":{ts},"lastRenewalTimestamp":{ts},"evictionTimestamp":0,"serviceUpTimestamp":{ts}}},"#,
                    r#""metadata":{{"management.port":"{port}","zone":"{zone}"}},"homePageUrl":"http://{host}:{port}/","#,
                    r#""statusPageUrl":"http://{host}:{port}/actuator/info","healthCheckUrl":"http://{host}:{port}/actuator/health","#,
                    r#""vipAddress":"{vip}","secureVipAddress":"{vip}","isCoordinatingDiscoveryServer":"false","#,
                    r#""lastUpdatedTimestamp":"{ts}","lastDirtyTimestamp":"{ts}","actionType":"ADDED"}}"#
                ),
                id = i.id, host = i.host, app = i.app, ip = i.ip, status = i.status, port = i.port,
                ts = i.ts, zone = i.zone, vip = i.vip
            ));
        }
        out.push_str("]}");
    }
    out.push_str("]}}");
    out
}

fn xml_document(all: &[Inst]) -> String {
    let mut out = String::with_capacity(all.len() * 1800);
    out.push_str(&format!(
        "<applications>\n  <versions__delta>1</versions__delta>\n  <apps__hashcode>{}</apps__hashcode>\n",
        hashcode(all)
    ));
    for chunk in all.chunks(PER_APP) {
        out.push_str(&format!(
            "  <application>\n    <name>{}</name>\n",
            chunk[0].app
        ));
        for i in chunk {
            out.push_str(&format!(
                concat!(
                    "    <instance>\n      <instanceId>{id}</instanceId>\n      <hostName>{host}</hostName>\n",
                    "      <app>{app}</app>\n      <ipAddr>{ip}</ipAddr>\n      <status>{status}</status>\n",
                    "      <overriddenstatus>UNKNOWN</overriddenstatus>\n      <port enabled=\"true\">{port}</port>\n",
                    "      <securePort enabled=\"false\">443</securePort>\n      <countryId>1</countryId>\n",
                    "      <dataCenterInfo class=\"com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo\">\n        <name>MyOwn</name>\n      </dataCenterInfo>\n",
                    "      <leaseInfo>\n        <renewalIntervalInSecs>30</renewalIntervalInSecs>\n        <durationInSecs>90</durationInSecs>\n",
                    "        <registrationTimestamp>{ts}</registrationTimestamp>\n        <lastRenewalTimestamp>{ts}</lastRenewalTimestamp>\n",
                    "        <evictionTimestamp>0</evictionTimestamp>\n        <serviceUpTimestamp>{ts}</serviceUpTimestamp>\n      </leaseInfo>\n",
                    "      <metadata>\n        <management.port>{port}</management.port>\n        <zone>{zone}</zone>\n      </metadata>\n",
                    "      <homePageUrl>http://{host}:{port}/</homePageUrl>\n      <statusPageUrl>http://{host}:{port}/actuator/info</statusPageUrl>\n",
                    "      <healthCheckUrl>http://{host}:{port}/actuator/health</healthCheckUrl>\n      <vipAddress>{vip}</vipAddress>\n",
                    "      <secureVipAddress>{vip}</secureVipAddress>\n      <isCoordinatingDiscoveryServer>false</isCoordinatingDiscoveryServer>\n",
                    "      <lastUpdatedTimestamp>{ts}</lastUpdatedTimestamp>\n      <lastDirtyTimestamp>{ts}</lastDirtyTimestamp>\n",
                    "      <actionType>ADDED</actionType>\n    </instance>\n"
                ),
                id = i.id, host = i.host, app = i.app, ip = i.ip, status = i.status, port = i.port,
                ts = i.ts, zone = i.zone, vip = i.vip
            ));
        }
        out.push_str("  </application>\n");
    }
    out.push_str("</applications>\n");
    out
}

// ---------------------------------------------------------------------------------------------

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn min_median(mut times: Vec<Duration>) -> (Duration, Duration) {
    times.sort();
    (times[0], times[times.len() / 2])
}

/// Time per call, in ns, of `f` called `n` times.
fn per_call(n: usize, mut f: impl FnMut(usize)) -> f64 {
    // A short warm-up, then the measured loop.
    for i in 0..n / 100 {
        f(i);
    }
    let start = Instant::now();
    for i in 0..n {
        f(i);
    }
    start.elapsed().as_nanos() as f64 / n as f64
}

fn python() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("DISCOVERY_BENCH_PYTHON") {
        return Some(PathBuf::from(p)).filter(|p| p.exists());
    }
    let default = Path::new("/tmp/registrar-bench-venv/bin/python");
    default.exists().then(|| default.to_path_buf())
}

/// A one-page HTTP server for the C API part: answers every request with the registry.
fn serve_registry(body: Arc<String>) -> (String, Arc<AtomicBool>, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}/eureka/", listener.local_addr().unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let thread = std::thread::spawn(move || {
        while !flag.load(Ordering::Relaxed) {
            let Ok((mut stream, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            };
            stream.set_nonblocking(false).unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(body.as_bytes());
        }
    });
    (url, stop, thread)
}

pub fn run() {
    let all = instances();
    let json = json_document(&all);
    let xml = xml_document(&all);
    drop(all);
    let out_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/discovery-bench");
    std::fs::create_dir_all(&out_dir).unwrap();
    let (json_path, xml_path) = (out_dir.join("registry.json"), out_dir.join("registry.xml"));
    std::fs::write(&json_path, &json).unwrap();
    std::fs::write(&xml_path, &xml).unwrap();
    let n = APPS * PER_APP;
    println!(
        "registry: {n} instances in {APPS} apps; JSON {:.1} MiB, XML {:.1} MiB ({})",
        mib(json.len()),
        mib(xml.len()),
        out_dir.display()
    );

    // --- Parse + index (registrar) ------------------------------------------------------------
    let bytes = json.as_bytes();
    for _ in 0..5 {
        black_box(Registry::parse(bytes).unwrap());
    }
    let mut times = Vec::new();
    for _ in 0..PARSE_RUNS {
        let start = Instant::now();
        let registry = Registry::parse(black_box(bytes)).unwrap();
        times.push(start.elapsed());
        assert_eq!(registry.len(), n);
        drop(registry);
    }
    if std::env::var_os("DISCOVERY_BENCH_VERBOSE").is_some() {
        let all: Vec<String> = times.iter().map(|t| format!("{:.1}", ms(*t))).collect();
        println!("registrar parse+index runs (ms): {}", all.join(" "));
    }
    let (full_min, full_median) = min_median(times);
    let (mut parse_times, mut index_times) = (Vec::new(), Vec::new());
    for _ in 0..PARSE_RUNS {
        let start = Instant::now();
        let apps = Applications::parse(black_box(bytes)).unwrap();
        parse_times.push(start.elapsed());
        let start = Instant::now();
        let registry = Registry::from_applications(apps, None);
        index_times.push(start.elapsed());
        drop(registry);
    }
    let (parse_min, parse_median) = min_median(parse_times);
    let (index_min, index_median) = min_median(index_times);
    let (registry, peak, retained) = measure(|| Registry::parse(bytes).unwrap());
    assert_eq!(registry.len(), n);
    assert_eq!(registry.hashcode(), hashcode(&instances()));

    println!();
    println!("parse + index of the full registry ({PARSE_RUNS} runs for registrar):");
    println!(
        "  {:<44} {:>9} {:>9} {:>10} {:>10}",
        "", "min ms", "median ms", "peak MiB", "kept MiB"
    );
    println!(
        "  {:<44} {:>9.1} {:>9.1} {:>10.1} {:>10.1}",
        "registrar Registry::parse (JSON, parse+index)",
        ms(full_min),
        ms(full_median),
        mib(peak),
        mib(retained)
    );
    println!(
        "  {:<44} {:>9.1} {:>9.1}",
        "  of which Applications::parse (parse)",
        ms(parse_min),
        ms(parse_median)
    );
    println!(
        "  {:<44} {:>9.1} {:>9.1}",
        "  and Registry::from_applications (index)",
        ms(index_min),
        ms(index_median)
    );

    let mut py_xml_median = None;
    match python() {
        None => println!(
            "  (py-eureka-client skipped: run bench/discovery/run.sh, or set DISCOVERY_BENCH_PYTHON)"
        ),
        Some(py) => {
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/discovery/py_parse.py");
            let output = Command::new(&py)
                .arg(script)
                .arg(&json_path)
                .arg(&xml_path)
                .arg(PY_RUNS.to_string())
                .arg(LOOKUPS.to_string())
                .output()
                .expect("python runs");
            assert!(
                output.status.success(),
                "py_parse.py failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            let v: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
            let row = |name: &str, key: &str| {
                let r = &v[key];
                println!(
                    "  {:<44} {:>9.1} {:>9.1} {:>10.1} {:>10.1}",
                    name,
                    r["min_ms"].as_f64().unwrap(),
                    r["median_ms"].as_f64().unwrap(),
                    mib(r["peak_bytes"].as_u64().unwrap() as usize),
                    mib(r["retained_bytes"].as_u64().unwrap() as usize),
                );
            };
            row(
                &format!("py-eureka-client (XML, Python {})", v["python"].as_str().unwrap()),
                "py_eureka_client_xml",
            );
            row("  Python json.loads alone (JSON, no objects)", "json_loads");
            assert_eq!(v["py_eureka_client_xml"]["instances"].as_u64(), Some(n as u64));
            let py = v["py_eureka_client_xml"]["median_ms"].as_f64().unwrap();
            py_xml_median = Some((py, v["py_eureka_client_lookup_ns"].as_f64().unwrap()));
            println!(
                "  => registrar is {:.0}x faster than py-eureka-client (medians), {:.0}x faster than json.loads alone",
                py / ms(full_median),
                v["json_loads"]["median_ms"].as_f64().unwrap() / ms(full_median)
            );
        }
    }
    println!(
        "  memory per cached instance (registrar, kept heap / instances): {:.0} bytes",
        retained as f64 / n as f64
    );

    // --- Lookups (Rust core) -------------------------------------------------------------------
    let names: Vec<String> = registry.app_names().iter().map(|s| s.to_string()).collect();
    let lower: Vec<String> = names.iter().map(|s| s.to_lowercase()).collect();
    let ids: Vec<String> = registry
        .all()
        .iter()
        .step_by(7)
        .map(|i| i.instance_id.to_string())
        .collect();
    // Two access patterns: names cycling over all 500 apps (instance data mostly out of the
    // CPU caches: the worst case), and one app asked for again and again (the usual case).
    let modes = [APPS, 1];
    println!();
    println!("lookups, ns per call ({LOOKUPS} calls each):");
    println!("  {:<62} {:>9} {:>9}", "", "500 apps", "one app");
    let row = |name: &str, f: &mut dyn FnMut(usize, usize)| {
        let t: Vec<f64> = modes
            .iter()
            .map(|&m| per_call(LOOKUPS, |i| f(i, m)))
            .collect();
        println!("  {:<62} {:>9.1} {:>9.1}", name, t[0], t[1]);
        t
    };
    let rr = row("Registry::choose(App, round robin)", &mut |i, m| {
        black_box(registry.choose(Lookup::App, &names[i % m], Choice::RoundRobin));
    });
    row(
        "Registry::choose(App, round robin) + read host and port",
        &mut |i, m| {
            let chosen = registry
                .choose(Lookup::App, &names[i % m], Choice::RoundRobin)
                .unwrap();
            black_box((chosen.host_name.as_bytes()[0], chosen.port));
        },
    );
    row(
        "Registry::choose(App, round robin), lower-case name",
        &mut |i, m| {
            black_box(registry.choose(Lookup::App, &lower[i % m], Choice::RoundRobin));
        },
    );
    row("Registry::choose(VIP, random)", &mut |i, m| {
        black_box(registry.choose(Lookup::Vip, &lower[i % m], Choice::Random));
    });
    row("Registry::instances(App, UP only)", &mut |i, m| {
        black_box(registry.instances(Lookup::App, &names[i % m], false).len());
    });
    row("Registry::instance(id)", &mut |i, m| {
        let k = if m == 1 { 0 } else { i % ids.len() };
        black_box(registry.instance(&ids[k]).len());
    });

    // --- Lookups (C API, through a live discovery handle) --------------------------------------
    let body = Arc::new(json);
    let (url, stop, server) = serve_registry(body);
    let mut config = std::ptr::null_mut();
    assert_eq!(
        registrar_config_new(&mut config),
        registrar_status::REGISTRAR_OK
    );
    let (k, v) = (CString::new("url").unwrap(), CString::new(url).unwrap());
    registrar_config_set(config, k.as_ptr(), v.as_ptr());
    let mut d = std::ptr::null_mut();
    assert_eq!(
        registrar_discovery_new(config, &mut d),
        registrar_status::REGISTRAR_OK
    );
    registrar_config_free(config);
    assert_eq!(registrar_discovery_start(d), registrar_status::REGISTRAR_OK);
    assert_eq!(
        registrar_discovery_wait_ready(d, 30_000),
        registrar_status::REGISTRAR_OK
    );
    let c_names: Vec<CString> = names
        .iter()
        .map(|n| CString::new(n.as_str()).unwrap())
        .collect();
    let c_choose = row(
        "C: registrar_discovery_choose + read host, port + list_free",
        &mut |i, m| {
            let mut list = std::ptr::null_mut();
            let status = registrar_discovery_choose(
                d,
                REGISTRAR_LOOKUP_APP,
                c_names[i % m].as_ptr(),
                REGISTRAR_CHOICE_ROUND_ROBIN,
                &mut list,
            );
            debug_assert_eq!(status, registrar_status::REGISTRAR_OK);
            // SAFETY: a list of one instance from the call above.
            let chosen = unsafe { &*registrar_instance_list_get(list, 0) };
            black_box((unsafe { *chosen.host_name }, chosen.port));
            registrar_instance_list_free(list);
        },
    );
    let mut buf = [0u8; 256];
    row(
        "C: registrar_discovery_choose_url (into a caller buffer)",
        &mut |i, m| {
            let mut len = 0;
            registrar_discovery_choose_url(
                d,
                REGISTRAR_LOOKUP_APP,
                c_names[i % m].as_ptr(),
                REGISTRAR_CHOICE_ROUND_ROBIN,
                0,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut len,
            );
            black_box(len);
        },
    );
    let _ = (rr, c_choose);
    registrar_discovery_free(d);
    stop.store(true, Ordering::Relaxed);
    server.join().unwrap();
    if let Some((_, py_lookup)) = py_xml_median {
        println!(
            "  {:<62} {:>9.1} {:>9}",
            "py-eureka-client get_application(app).up_instances[i]", py_lookup, "-"
        );
    }
}
