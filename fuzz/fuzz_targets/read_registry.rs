//! The registry response reader on arbitrary bytes: `GET apps` and `GET apps/delta` bodies,
//! plain JSON or gzip (first input byte: bit 0 set = the rest is gzip; bit 1 set = also
//! applied as a delta; bit 2 set = a 1 KiB cap; the upper bits = the network's chunk size).
//!
//! Gzip goes through the decoder the HTTP layer reads every answer with
//! (`registrar::eureka::body::BodyDecoder`), pushed in chunks as the network delivers them,
//! under a cap: the decoded body never exceeds the cap, the outcome does not depend on the
//! chunking, and it agrees with flate2's own reader (one gzip member, nothing after it).
//!
//! Properties beyond "no crash": what parses is well-formed (ids present, app names
//! upper-case, metadata sorted without `@class`); a full fetch and a delta applied to a
//! registry both give exactly what a plain map keyed by (app, id) gives; applying a delta
//! twice changes nothing more; the hash code equals Eureka's, computed independently.

#![no_main]

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use once_cell_free::base_registry;
use registrar::discovery::{ActionType, Applications, Instance, Registry};
use registrar::eureka::body::{self, BodyDecoder, BodyError, Encoding};
use registrar::instance::InstanceStatus;
use registrar_fuzz::{eureka_reconcile_hashcode, MAX_BODY};

/// A small registry the delta is applied to (built once).
mod once_cell_free {
    use registrar::discovery::Applications;
    use std::sync::OnceLock;

    const BASE: &str = r#"{"applications":{"apps__hashcode":"DOWN_1_UP_2_","application":[
        {"name":"A","instance":[
            {"instanceId":"a1","hostName":"h1","app":"A","status":"UP"},
            {"instanceId":"a2","hostName":"h2","app":"A","status":"DOWN"}]},
        {"name":"B","instance":{"instanceId":"b1","hostName":"h3","app":"B","status":"UP"}}]}}"#;

    pub fn base_registry() -> &'static Applications {
        static BASE_APPS: OnceLock<Applications> = OnceLock::new();
        BASE_APPS.get_or_init(|| Applications::parse(BASE.as_bytes()).unwrap())
    }
}

type Key = (String, String);

fn key(i: &Instance) -> Key {
    (
        i.instance_id.as_str().to_string(),
        i.app.as_str().to_string(),
    )
}

/// The registry's instances as a map, to compare with the model.
fn contents(r: &Registry) -> BTreeMap<Key, Instance> {
    let all: &[Arc<Instance>] = r.all();
    let map: BTreeMap<Key, Instance> = all.iter().map(|i| (key(i), (**i).clone())).collect();
    assert_eq!(map.len(), all.len(), "one entry per (id, app)");
    map
}

fn check_hash(r: &Registry) {
    let reference = eureka_reconcile_hashcode(r.all().iter().map(|i| i.status_name()));
    assert_eq!(
        r.hashcode(),
        reference,
        "local hash code differs from Eureka's"
    );
}

fn check_well_formed(apps: &Applications) {
    for (_, i) in &apps.instances {
        assert!(!i.instance_id.is_empty(), "an instance without id was kept");
        assert!(
            !i.app.chars().any(char::is_lowercase),
            "app not upper-case: {:?}",
            i.app
        );
        assert!(
            i.metadata.windows(2).all(|w| w[0].0 < w[1].0),
            "metadata keys not sorted and unique"
        );
        assert!(i.metadata.iter().all(|(k, _)| k.as_str() != "@class"));
        if let Some(odd) = &i.unknown_status {
            assert_eq!(i.status, InstanceStatus::Unknown);
            assert!(!odd.is_empty());
        }
        // Every accessor works on whatever came in.
        let _ = (i.base_url(true, false), i.base_url(false, true));
        let _ = (i.vips().count(), i.secure_vips().count());
    }
}

/// A gzip body read as the HTTP layer reads it; `None` when it is refused.
fn gunzip(body: &[u8], mode: u8) -> Option<Vec<u8>> {
    let cap = if mode & 4 == 0 { MAX_BODY } else { 1024 };
    let chunk = 1 + (mode >> 3) as usize * 97;
    let mut decoder = BodyDecoder::new(Encoding::Gzip, cap);
    let outcome = body
        .chunks(chunk)
        .try_for_each(|piece| decoder.push(piece))
        .and_then(|()| decoder.finish());
    let decoded = decoder.decoded();
    assert!(
        decoded.len() <= cap,
        "{} bytes kept over a cap of {cap}",
        decoded.len()
    );

    // In one piece: the same body, or an error too (which error may depend on where the
    // chunks ended: a stream both over the cap and broken is reported as either).
    let whole = body::decode(Encoding::Gzip, body, cap);
    match (&outcome, &whole) {
        (Ok(()), Ok(all)) => assert_eq!(&decoded, all, "chunking changed the body"),
        (Err(_), Err(_)) => {}
        _ => panic!("chunks of {chunk}: {outcome:?}, in one piece: {whole:?}"),
    }

    // flate2's reader on the same bytes: one member, then nothing.
    if !body.is_empty() {
        let mut reference = flate2::bufread::GzDecoder::new(body);
        let mut plain = Vec::new();
        let read = (&mut reference)
            .take(cap as u64 + 1)
            .read_to_end(&mut plain);
        let complete = read.is_ok() && reference.into_inner().is_empty();
        match &outcome {
            Ok(()) => {
                assert!(complete, "decoded what flate2 refuses: {read:?}");
                assert_eq!(decoded, plain, "decoded otherwise than flate2");
            }
            Err(BodyError::Corrupt(why)) => assert!(
                !complete || plain.len() > cap,
                "refused ({why}) what flate2 decodes"
            ),
            Err(BodyError::TooLarge) => {
                assert!(
                    !complete || plain.len() > cap,
                    "over the cap, says flate2 not"
                )
            }
        }
        if complete && plain.len() > cap {
            assert_eq!(outcome, Err(BodyError::TooLarge));
        }
    }
    outcome.ok().map(|()| decoded)
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let decoded;
    let body = if mode & 1 == 1 {
        match gunzip(body, mode) {
            Some(plain) => {
                decoded = plain;
                &decoded[..]
            }
            None => return,
        }
    } else {
        body
    };
    let Ok(apps) = Applications::parse(body) else {
        return;
    };
    check_well_formed(&apps);

    // A full fetch: the last instance of each (app, id) wins, as in the server's own map.
    let full = Registry::from_applications(apps.clone(), None);
    let mut model: BTreeMap<Key, Instance> = BTreeMap::new();
    for (_, i) in &apps.instances {
        model.insert(key(i), i.clone());
    }
    assert_eq!(contents(&full), model, "full fetch differs from the model");
    check_hash(&full);

    // The same body as a delta on a small registry: each action applied in order (for half of
    // the inputs, chosen by bit 1 of the first byte: building three registries per run halves
    // the runs per second).
    if mode & 2 == 0 {
        return;
    }
    let base = Registry::from_applications(base_registry().clone(), None);
    let mut model = contents(&base);
    for (action, i) in &apps.instances {
        match action {
            ActionType::Deleted => {
                model.remove(&key(i));
            }
            ActionType::Added | ActionType::Modified => {
                model.insert(key(i), i.clone());
            }
        }
    }
    let after = base.apply_delta(apps.clone());
    let after_ref = after.as_ref().unwrap_or(&base);
    assert_eq!(contents(after_ref), model, "delta differs from the model");
    check_hash(after_ref);
    // Idempotent: the second application leaves the same instances.
    if let Some(again) = after_ref.apply_delta(apps) {
        assert_eq!(
            contents(&again),
            model,
            "a delta applied twice changed more"
        );
    }
});
