//! Credentials never appear in any output: error messages (Display and Debug), the Debug and
//! the description of settings, the Debug of configurations (agent and discovery), and the
//! core's redaction of a `REGISTRY_URL` value itself.
//!
//! The password is given as user-info in `REGISTRY_URL` (percent-encoded as it should be, or
//! raw, which may break the URL's structure: `/`, `?`, `#`, `,`, `@` inside it) and/or as
//! `REGISTRY_PASSWORD`. It always contains a marker character that no other input contains,
//! so any trace of it in any output (raw or percent-encoded) is a leak, whatever the rest of
//! the password looks like.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use registrar::config::{Config, HostDefaults, Settings, SETTINGS};
use registrar::discovery::DiscoveryConfig;

/// Private-use character: in no message text, removed from every non-secret input.
const MARK: char = '\u{E000}';

#[derive(Arbitrary, Debug)]
struct Input {
    /// The password around the marker.
    before: String,
    after: String,
    user: String,
    /// 0: encoded user-info, 1: raw user-info, 2: REGISTRY_PASSWORD only, 3: both.
    mode: u8,
    url_before: String,
    host: String,
    url_after: String,
    /// More URLs in the list, before and after the one with the password.
    others: (Option<String>, Option<String>),
    explicit_user: Option<String>,
    values: Vec<(u8, String)>,
}

/// A non-secret input: without the marker in any form `leaked` looks for (the fuzzer also
/// writes `%EE%80%80` or `\u{e000}` itself).
fn clean(s: &str) -> String {
    let mut out = s.replace(MARK, "");
    loop {
        let lower = out.to_ascii_lowercase();
        let Some(at) = ["%ee%80%80", "\\u{e000}"]
            .iter()
            .find_map(|form| lower.find(form).map(|at| (at, form.len())))
        else {
            return out;
        };
        out.replace_range(at.0..at.0 + at.1, "");
    }
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn host() -> HostDefaults {
    HostDefaults {
        hostname: || Some("fuzz-host".into()),
        ip_address: || Some("10.0.0.1".into()),
    }
}

fn leaked(output: &str) -> bool {
    // The marker raw, percent-encoded (any case), or as a Debug escape.
    let lower = output.to_ascii_lowercase();
    output.contains(MARK) || lower.contains("%ee%80%80") || lower.contains("\\u{e000}")
}

fuzz_target!(|input: Input| {
    registrar_fuzz::small_trust_store();
    let mode = input.mode % 4;
    let mut password = format!("{}{MARK}{}", clean(&input.before), clean(&input.after));
    if mode == 1 {
        // Raw in a list: a ',' starts the next URL, so the part after it is no password.
        password = password.replace(',', "");
    }
    let user = clean(&input.user);
    let user_info = |password: &str| match mode {
        0 => format!("{}:{}@", encode(&user), encode(password)),
        1 => format!("{user}:{password}@"),
        _ => String::new(),
    };
    let scheme = clean(&input.url_before);
    let scheme = if scheme.is_empty() {
        "http://".to_string()
    } else {
        scheme
    };
    if mode <= 1 && !scheme.ends_with("//") {
        // Raw user-info after something that is not `scheme://` can read as the scheme itself
        // (`http:` + `secret@host`): then it is a user name, not a password.
        return;
    }
    let rest = format!("{}{}", clean(&input.host), clean(&input.url_after));
    let list = |password: &str| {
        let mut list: Vec<String> = Vec::new();
        list.extend(input.others.0.as_deref().map(clean));
        list.push(format!("{scheme}{}{rest}", user_info(password)));
        list.extend(input.others.1.as_deref().map(clean));
        list.join(",")
    };

    // The fuzzer learns the marker's spellings from the checks below and may write them
    // itself, also split across two inputs that end up side by side: such inputs say nothing.
    // (What is checked is every input exactly as given, with the password left out.)
    let values: Vec<String> = input.values.iter().map(|(_, v)| clean(v)).collect();
    if leaked(&format!("{} {}", list(""), values.join(" "))) {
        return;
    }
    let list = list(&password);

    let mut settings = Settings::new();
    for (index, value) in &input.values {
        let key = SETTINGS[*index as usize % SETTINGS.len()].0;
        if key != "REGISTRY_PASSWORD" && !registrar_fuzz::FILE_SETTINGS.contains(&key) {
            settings.set(key, &clean(value)).unwrap();
        }
    }
    settings.set("REGISTRY_URL", &list).unwrap();
    if mode >= 2 {
        settings.set("REGISTRY_PASSWORD", &password).unwrap();
        if let Some(u) = &input.explicit_user {
            settings.set("REGISTRY_USER", &clean(u)).unwrap();
        }
    }

    // (`Settings::get` is not an output: it hands a caller back the value it set.)
    let mut outputs = vec![
        format!("{settings:?}"),
        settings.describe(),
        registrar::config::redact_userinfo(&list),
    ];
    match Config::from_settings_with(&settings, &host()) {
        Ok(config) => outputs.push(format!("{config:?} {:#?}", config.service_urls)),
        Err(e) => outputs.push(format!("{e} {e:?}")),
    }
    match DiscoveryConfig::from_settings(&settings) {
        Ok(config) => outputs.push(format!("{config:?}")),
        Err(e) => outputs.push(format!("{e} {e:?}")),
    }
    for output in &outputs {
        assert!(
            !leaked(output),
            "the password leaks in: {output} (REGISTRY_URL {list:?}, mode {mode})"
        );
    }
});
