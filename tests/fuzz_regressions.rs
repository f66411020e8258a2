//! Every failure the fuzz targets (fuzz/, scripts/fuzz.sh) found, as a plain test: the input
//! they reduced it to and the property it broke. Each one failed before its fix.

use registrar::config::{Config, HostDefaults, Settings};
use std::time::{Duration, Instant};

use registrar::discovery::{Applications, Registry, Text};
use registrar::eureka::paths;
use registrar::instance::InstanceStatus;

fn host() -> HostDefaults {
    HostDefaults {
        hostname: || Some("fuzz-host".into()),
        ip_address: || Some("10.0.0.1".into()),
    }
}

fn config(pairs: &[(&str, &str)]) -> Result<Config, String> {
    let mut settings = Settings::new();
    settings
        .set("REGISTRY_URL", "http://127.0.0.1:8761/eureka/")
        .unwrap();
    for (k, v) in pairs {
        settings.set(k, v).unwrap();
    }
    Config::from_settings_with(&settings, &host()).map_err(|e| e.to_string())
}

/// `paths`/`config`: an app name or instance id with `;` reached the server cut at the `;`
/// (Tomcat/JAX-RS matrix parameters): the heartbeat and the DELETE named another instance.
/// Now `;` is encoded, and refused in names by the configuration.
#[test]
fn semicolons_never_cut_a_name_on_the_server() {
    assert_eq!(
        paths::heartbeat("0.", ";A", InstanceStatus::Up, 0),
        "apps/0./%3BA?status=UP&lastDirtyTimestamp=0"
    );
    let e = config(&[("REGISTRY_APP_NAME", "CIX_EURE;A%=40")]).unwrap_err();
    assert!(e.contains("REGISTRY_APP_NAME"), "{e}");
}

/// `paths`/`config`: an app name or instance id `.` or `..` is dropped from the URL by every
/// URL parser (`apps/./x` is `apps/x`). The configuration refuses them.
#[test]
fn dot_segment_names_are_refused() {
    for dot in [".", ".."] {
        let e = config(&[("REGISTRY_APP_NAME", dot)]).unwrap_err();
        assert!(e.contains("REGISTRY_APP_NAME"), "{e}");
        let e = config(&[("REGISTRY_APP_NAME", "a"), ("REGISTRY_INSTANCE_ID", dot)]).unwrap_err();
        assert!(e.contains("REGISTRY_INSTANCE_ID"), "{e}");
    }
}

/// `redaction`: user-info in a REGISTRY_URL value without `scheme://` was shown as given in
/// the settings' Debug (the password after the `:`).
#[test]
fn user_info_without_a_scheme_is_redacted() {
    let mut settings = Settings::new();
    settings
        .set("REGISTRY_URL", "\u{11}\u{4}3:pass\u{E000}word@")
        .unwrap();
    settings.set("REGISTRY_APP_NAME", "a").unwrap();
    let error = Config::from_settings_with(&settings, &host()).unwrap_err();
    for output in [
        format!("{settings:?}"),
        settings.describe(),
        format!("{error} {error:?}"),
    ] {
        assert!(!output.contains("pass"), "{output}");
        assert!(
            !output.contains('\u{E000}') && !output.contains("e000"),
            "{output}"
        );
    }
}

/// `read_registry`: Eureka sorts status names as Java strings (UTF-16 units); the local hash
/// code sorted UTF-8 bytes and never matched for names beyond the BMP.
#[test]
fn hash_code_sorts_status_names_as_java_does() {
    let body = r#"{"applications":{"application":[{"name":"A","instance":[
        {"instanceId":"x","status":"\ud83d\ude00"},{"instanceId":"y","status":"\uffff"}]}]}}"#;
    let registry = Registry::parse(body.as_bytes()).unwrap();
    assert_eq!(registry.hashcode(), "\u{1F600}_1_\u{FFFF}_1_");
}

/// `redaction`: a raw password holding `/` can make a valid URL that keeps it in the path
/// (`http://u:12/pass@h/`: host `u`, port 12); the configuration's Debug showed that base.
#[test]
fn a_password_that_became_a_path_is_not_shown() {
    let mut settings = Settings::new();
    settings
        .set("REGISTRY_URL", "http://u:12/pass\u{E000}word@h/")
        .unwrap();
    settings.set("REGISTRY_APP_NAME", "a").unwrap();
    let config = Config::from_settings_with(&settings, &host()).unwrap();
    let shown = format!("{config:?} {settings:?} {}", settings.describe());
    assert!(
        !shown.contains("pass") && !shown.contains("%EE%80%80"),
        "{shown}"
    );
}

/// A delta of `n` instances of one app, in descending id order (the worst order for a sorted
/// list: each one lands at its front). Built from one parsed instance (parsing n would cost
/// more than what is tested).
fn big_delta(n: usize, action: &str) -> Applications {
    let one = format!(
        r#"{{"applications":{{"application":{{"name":"A","instance":
            {{"instanceId":"x","hostName":"h","status":"UP","actionType":"{action}"}}}}}}}}"#
    );
    let mut apps = Applications::parse(one.as_bytes()).unwrap();
    let (action, template) = apps.instances.pop().unwrap();
    apps.instances = (0..n)
        .rev()
        .map(|i| {
            let mut instance = template.clone();
            instance.instance_id = Text::new(&format!("i{i:07}"));
            (action, instance)
        })
        .collect();
    apps
}

/// CPU time this thread has used (from /proc; wall time where there is none): the bound
/// below is about work done, which other processes on a busy machine do not inflate.
fn thread_cpu_time(wall: Instant) -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    let fields: Vec<u64> = stat
        .rsplit_once(')')
        .map(|(_, rest)| {
            rest.split_whitespace()
                .map(|f| f.parse().unwrap_or(0))
                .collect()
        })
        .unwrap_or_default();
    match (fields.get(11), fields.get(12)) {
        // utime and stime, in clock ticks (100 per second on Linux).
        (Some(user), Some(system)) => Duration::from_millis((user + system) * 10),
        _ => wall.elapsed(),
    }
}

/// Profiling the fuzz targets: a delta was applied by inserting each instance into (and
/// removing it from) the app's sorted list, a quadratic cost a server could trigger with one
/// large `apps/delta` answer (64 MiB, the default cap, holds over a million instances: hours
/// of the agent thread). Measured on the 2-core CI machine (debug build, busy): 400,000
/// instances took the old code 47 s of CPU time (128 s of wall time), this one 6.6 s (20 s);
/// the 500,000 below would take the old code about 75 s of CPU time. CPU time, because other
/// processes on a busy machine inflate wall time. The bound tells quadratic from linear, not
/// fast from slow.
#[test]
fn a_large_delta_costs_linear_time() {
    let n = 500_000;
    let wall = Instant::now();
    let added = big_delta(n, "ADDED");
    let start = thread_cpu_time(wall);
    let full = Registry::empty().apply_delta(added).unwrap();
    let mut took = thread_cpu_time(wall) - start;
    assert_eq!(full.len(), n);
    // Deleted in ascending order: each one from the front of the list.
    let mut deleted = big_delta(n, "DELETED");
    deleted.instances.reverse();
    let start = thread_cpu_time(wall);
    let empty = full.apply_delta(deleted).unwrap();
    took += thread_cpu_time(wall) - start;
    assert_eq!(empty.len(), 0);
    assert!(
        took < Duration::from_secs(30),
        "applying and removing {n} instances took {took:?} of CPU time"
    );
}
