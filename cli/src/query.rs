//! One-shot queries: `discover`, `apps`, `instance`. One full fetch of the registry through the
//! core's discovery cache, printed as a table for people or as JSON for scripts.

use std::sync::Arc;
use std::time::{Duration, Instant};

use registrar::discovery::{Discovery, DiscoveryConfig, Instance, Lookup, Registry};
use registrar::instance::InstanceStatus;
use serde_json::{json, Value};

use crate::args::Args;
use crate::exit::{self, Failure};

/// Fetches the registry once. Fails fast on the first failed fetch (no retrying for minutes).
fn fetch(args: &Args) -> Result<Arc<Registry>, Failure> {
    let config = DiscoveryConfig::from_settings(&args.settings)
        .map_err(|e| Failure::from_error(args, &e))?;
    // One full fetch may try every service URL in turn, each bounded by REGISTRY_TIMEOUT.
    let budget = config.timeout * config.service_urls.len() as u32 + Duration::from_secs(1);
    let discovery = Discovery::new(config).map_err(|e| Failure::from_error(args, &e))?;
    discovery
        .start()
        .map_err(|e| Failure::from_error(args, &e))?;
    let deadline = Instant::now() + budget;
    let outcome = loop {
        if discovery.wait_ready(Duration::from_millis(50)).is_ok() {
            break Ok(());
        }
        let info = discovery.info();
        if let Some(e) = info
            .last_error
            .filter(|_| info.counters.failed_refreshes > 0)
        {
            break Err(Failure::from_error(args, &e));
        }
        if Instant::now() >= deadline {
            break Err(Failure::new(
                exit::UNREACHABLE,
                format!(
                    "no answer from the registry within {} ms",
                    budget.as_millis()
                ),
            ));
        }
    };
    let registry = discovery.registry();
    let _ = discovery.stop(Duration::from_millis(200));
    outcome?;
    registry.ok_or_else(|| Failure::new(exit::FAILURE, "no registry was fetched".into()))
}

pub fn discover(args: &Args) -> Result<(), Failure> {
    let registry = fetch(args)?;
    let app = &args.positional[0];
    let instances = registry.instances(Lookup::App, app, args.all);
    if args.json {
        let list: Vec<Value> = instances.iter().map(|i| instance_json(i)).collect();
        println!("{}", Value::Array(list));
    } else {
        let mut rows = vec![row(&["INSTANCE ID", "STATUS", "HOST", "IP", "PORT", "URL"])];
        for i in instances {
            rows.push(vec![
                i.instance_id.to_string(),
                i.status_name().to_string(),
                i.host_name.to_string(),
                i.ip_addr.to_string(),
                ports(i),
                i.base_url(false, false),
            ]);
        }
        print_table(&rows);
    }
    Ok(())
}

pub fn apps(args: &Args) -> Result<(), Failure> {
    let registry = fetch(args)?;
    let counts: Vec<(&str, usize, usize)> = registry
        .app_names()
        .into_iter()
        .map(|name| {
            let up = registry.instances(Lookup::App, name, false).len();
            let all = registry.instances(Lookup::App, name, true).len();
            (name, up, all)
        })
        .collect();
    if args.json {
        let list: Vec<Value> = counts
            .iter()
            .map(|(name, up, all)| json!({"app": name, "up": up, "instances": all}))
            .collect();
        println!("{}", Value::Array(list));
    } else {
        let mut rows = vec![row(&["APP", "UP", "INSTANCES"])];
        for (name, up, all) in counts {
            rows.push(vec![name.to_string(), up.to_string(), all.to_string()]);
        }
        print_table(&rows);
    }
    Ok(())
}

pub fn instance(args: &Args) -> Result<(), Failure> {
    let registry = fetch(args)?;
    let (app, id) = (&args.positional[0], &args.positional[1]);
    let found = registry
        .instance(id)
        .iter()
        .find(|i| i.app.as_str().eq_ignore_ascii_case(app))
        .ok_or_else(|| {
            Failure::new(
                exit::NOT_FOUND,
                format!("no instance '{id}' of application '{app}' in the registry"),
            )
        })?;
    let value = instance_json(found);
    if args.json {
        println!("{value}");
    } else if let Value::Object(fields) = value {
        let width = fields.keys().map(String::len).max().unwrap_or(0);
        for (key, field) in fields {
            let shown = match field {
                Value::String(s) => s,
                Value::Object(map) => map
                    .iter()
                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                    .collect::<Vec<_>>()
                    .join(","),
                other => other.to_string(),
            };
            println!("{key:<width$}  {shown}");
        }
    }
    Ok(())
}

fn ports(i: &Instance) -> String {
    match (i.port_enabled, i.secure_port_enabled) {
        (true, true) => format!("{},{}s", i.port, i.secure_port),
        (false, true) => format!("{}s", i.secure_port),
        _ => i.port.to_string(),
    }
}

/// The instance with Eureka's field names (a script that knows Eureka's JSON knows these).
fn instance_json(i: &Instance) -> Value {
    let metadata: serde_json::Map<String, Value> = i
        .metadata
        .iter()
        .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
        .collect();
    let overridden = match i.overridden_status {
        InstanceStatus::Unknown => Value::Null,
        s => Value::String(s.as_str().into()),
    };
    json!({
        "instanceId": i.instance_id.as_str(),
        "app": i.app.as_str(),
        "status": i.status_name(),
        "overriddenStatus": overridden,
        "hostName": i.host_name.as_str(),
        "ipAddr": i.ip_addr.as_str(),
        "port": if i.port_enabled { Value::from(i.port) } else { Value::Null },
        "securePort": if i.secure_port_enabled { Value::from(i.secure_port) } else { Value::Null },
        "url": i.base_url(false, false),
        "vipAddress": i.vip_address.as_str(),
        "secureVipAddress": i.secure_vip_address.as_str(),
        "homePageUrl": i.home_page_url.as_str(),
        "statusPageUrl": i.status_page_url.as_str(),
        "healthCheckUrl": i.health_check_url.as_str(),
        "metadata": metadata,
        "lastUpdatedTimestamp": i.last_updated_timestamp,
        "lastDirtyTimestamp": i.last_dirty_timestamp,
    })
}

fn row(cells: &[&str]) -> Vec<String> {
    cells.iter().map(|c| c.to_string()).collect()
}

fn print_table(rows: &[Vec<String>]) {
    let columns = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    for r in rows {
        let mut line = String::new();
        for (c, cell) in r.iter().enumerate() {
            if c + 1 == columns {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  ", w = widths[c]));
            }
        }
        println!("{}", line.trim_end());
    }
}
