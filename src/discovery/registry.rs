//! An immutable copy of the registry with its lookup indexes, and instance selection.
//!
//! A [`Registry`] is built once per change (full fetch, or a delta that changed something) and
//! then only read: queries take no lock beyond the atomic reference count of the `Arc` that
//! holds it, and return slices of shared `Arc<Instance>`s (no copying). Memory: each instance
//! is stored once; the indexes hold pointers to it.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::eureka::read::{reconcile_hashcode, ActionType, Applications, Instance, Text};
use crate::instance::InstanceStatus;

/// What a query looks up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// An application name, case-insensitive.
    App,
    /// A VIP address, exact; an instance registered with `a,b` is found under `a` and `b`.
    Vip,
    /// A secure VIP address, exact, split like `Vip`.
    SecureVip,
}

/// How [`Registry::choose`] picks one of the UP instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// In turn, each UP instance once before any twice (per app / VIP, across refreshes).
    RoundRobin,
    /// Uniformly at random.
    Random,
}

/// The instances under one name (an app, a VIP or a secure VIP).
struct Group {
    /// Sorted by instance id (then app).
    all: Vec<Arc<Instance>>,
    /// The UP ones, same order.
    up: Vec<Arc<Instance>>,
    /// Round-robin position; carried over from the previous registry on every rebuild.
    cursor: AtomicUsize,
}

impl Group {
    fn new(mut all: Vec<Arc<Instance>>, cursor: usize) -> Group {
        all.sort_unstable_by(|a, b| by_id_then_app(a, b));
        let up = all
            .iter()
            .filter(|i| i.status == InstanceStatus::Up)
            .cloned()
            .collect();
        Group {
            all,
            up,
            cursor: AtomicUsize::new(cursor),
        }
    }
}

/// The registry as of one fetch, indexed by app, VIP, secure VIP and instance id.
pub struct Registry {
    apps: HashMap<Text, Group>,
    vips: HashMap<Text, Group>,
    secure_vips: HashMap<Text, Group>,
    /// Every instance, sorted by (instance id, app).
    by_id: Vec<Arc<Instance>>,
    /// Instance id -> position of its first instance in `by_id`.
    id_index: HashMap<IdKey, u32>,
    hashcode: String,
}

/// A key that hashes and compares as the instance id it points to (so the indexes need no
/// copy of the ids).
struct IdKey(Arc<Instance>);

impl std::hash::Hash for IdKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.instance_id.as_str().hash(state)
    }
}

impl PartialEq for IdKey {
    fn eq(&self, other: &IdKey) -> bool {
        self.0.instance_id == other.0.instance_id
    }
}

impl Eq for IdKey {}

impl std::borrow::Borrow<str> for IdKey {
    fn borrow(&self) -> &str {
        self.0.instance_id.as_str()
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("apps", &self.apps.len())
            .field("instances", &self.by_id.len())
            .field("hashcode", &self.hashcode)
            .finish()
    }
}

const EMPTY: &[Arc<Instance>] = &[];

impl Registry {
    /// An empty registry.
    pub fn empty() -> Registry {
        Registry::build(HashMap::new(), None)
    }

    /// Indexes the instances of a full fetch (`actionType` is ignored). `previous` lends its
    /// round-robin positions so a refresh does not restart every rotation.
    pub fn from_applications(apps: Applications, previous: Option<&Registry>) -> Registry {
        let mut by_app: HashMap<Text, Vec<Arc<Instance>>> = HashMap::new();
        for (_, instance) in apps.instances {
            by_app
                .entry(instance.app.clone())
                .or_default()
                .push(Arc::new(instance));
        }
        for list in by_app.values_mut() {
            // The same id twice in one app: keep the last, as a map keyed by id would.
            list.sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
            list.reverse();
            list.dedup_by(|later, earlier| later.instance_id == earlier.instance_id);
            list.reverse();
        }
        Registry::build(by_app, previous)
    }

    /// Parses and indexes a `GET apps` body (what a full fetch does).
    pub fn parse(body: &[u8]) -> Result<Registry, String> {
        Ok(Registry::from_applications(
            Applications::parse(body)?,
            None,
        ))
    }

    fn build(by_app: HashMap<Text, Vec<Arc<Instance>>>, previous: Option<&Registry>) -> Registry {
        let cursor = |map: Option<&HashMap<Text, Group>>, key: &str| {
            map.and_then(|m| m.get(key))
                .map_or(0, |g| g.cursor.load(Ordering::Relaxed))
        };
        let mut vips: HashMap<Text, Vec<Arc<Instance>>> = HashMap::new();
        let mut secure_vips: HashMap<Text, Vec<Arc<Instance>>> = HashMap::new();
        let mut by_id = Vec::with_capacity(by_app.values().map(Vec::len).sum());
        let mut apps = HashMap::with_capacity(by_app.len());
        for (name, list) in by_app {
            if list.is_empty() {
                continue;
            }
            for instance in &list {
                by_id.push(instance.clone());
                add_to_vips(&mut vips, instance.vips(), instance);
                add_to_vips(&mut secure_vips, instance.secure_vips(), instance);
            }
            let position = cursor(previous.map(|p| &p.apps), &name);
            apps.insert(name, Group::new(list, position));
        }
        by_id.sort_unstable_by(|a, b| by_id_then_app(a, b));
        let mut id_index = HashMap::with_capacity(by_id.len());
        for (position, instance) in by_id.iter().enumerate() {
            id_index
                .entry(IdKey(instance.clone()))
                .or_insert(position as u32);
        }
        let hashcode = reconcile_hashcode(by_id.iter().map(|i| i.status_name()));
        let index = |lists: HashMap<Text, Vec<Arc<Instance>>>,
                     old: Option<&HashMap<Text, Group>>| {
            lists
                .into_iter()
                .map(|(name, list)| {
                    let position = cursor(old, &name);
                    (name, Group::new(list, position))
                })
                .collect()
        };
        Registry {
            vips: index(vips, previous.map(|p| &p.vips)),
            secure_vips: index(secure_vips, previous.map(|p| &p.secure_vips)),
            apps,
            by_id,
            id_index,
            hashcode,
        }
    }

    /// Applies a delta: ADDED and MODIFIED replace (or add) the instance, DELETED removes it.
    /// Idempotent: applying the same delta twice changes nothing the second time. Returns
    /// `None` when nothing changed, else the new registry.
    pub fn apply_delta(&self, delta: Applications) -> Option<Registry> {
        // Work on the affected apps only, each as a map from instance id (an app's list holds
        // one instance per id): every action costs a map operation. (Inserting into and
        // removing from the sorted list itself made a large delta quadratic: found while
        // profiling the fuzz targets, see tests/fuzz_regressions.rs.)
        let mut touched: HashMap<Text, HashSet<IdKey>> = HashMap::new();
        let mut changed = false;
        for (action, instance) in delta.instances {
            let by_id = touched.entry(instance.app.clone()).or_insert_with(|| {
                self.apps
                    .get(instance.app.as_str())
                    .map_or_else(HashSet::new, |g| {
                        g.all.iter().map(|i| IdKey(i.clone())).collect()
                    })
            });
            match action {
                ActionType::Deleted => changed |= by_id.remove(instance.instance_id.as_str()),
                ActionType::Added | ActionType::Modified => {
                    let known = by_id.get(instance.instance_id.as_str());
                    if known.map(|k| &*k.0) != Some(&instance) {
                        by_id.replace(IdKey(Arc::new(instance)));
                        changed = true;
                    }
                }
            }
        }
        if !changed {
            return None;
        }
        let mut by_app: HashMap<Text, Vec<Arc<Instance>>> = self
            .apps
            .iter()
            .filter(|(name, _)| !touched.contains_key(*name))
            .map(|(name, group)| (name.clone(), group.all.clone()))
            .collect();
        // Group::new sorts each list by id.
        by_app.extend(
            touched
                .into_iter()
                .map(|(name, by_id)| (name, by_id.into_iter().map(|k| k.0).collect())),
        );
        Some(Registry::build(by_app, Some(self)))
    }

    /// The reconcile hash code of this registry (see [`reconcile_hashcode`]).
    pub fn hashcode(&self) -> &str {
        &self.hashcode
    }

    /// Number of instances (every status).
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Every instance of every status, sorted by (instance id, app).
    pub fn all(&self) -> &[Arc<Instance>] {
        &self.by_id
    }

    /// The application names (upper-case), sorted.
    pub fn app_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.apps.keys().map(|k| k.as_str()).collect();
        names.sort_unstable();
        names
    }

    fn group(&self, lookup: Lookup, name: &str) -> Option<&Group> {
        match lookup {
            Lookup::App => {
                // Byte checks, not char::is_lowercase: this runs on every lookup. Non-ASCII
                // names take the Unicode path (upper-casing a name without lower-case letters
                // changes nothing).
                if name
                    .bytes()
                    .any(|b| b.is_ascii_lowercase() || !b.is_ascii())
                {
                    self.apps.get(name.to_uppercase().as_str())
                } else {
                    self.apps.get(name)
                }
            }
            Lookup::Vip => self.vips.get(name.trim()),
            Lookup::SecureVip => self.secure_vips.get(name.trim()),
        }
    }

    /// The instances under an app / VIP / secure VIP name: the UP ones only, or every status
    /// when `all_statuses`. Sorted by instance id. Empty for an unknown name.
    pub fn instances(&self, lookup: Lookup, name: &str, all_statuses: bool) -> &[Arc<Instance>] {
        match self.group(lookup, name) {
            Some(g) if all_statuses => &g.all,
            Some(g) => &g.up,
            None => EMPTY,
        }
    }

    /// The instances with this instance id, whatever their status (normally one; ids are
    /// unique per app, so two apps could share one).
    pub fn instance(&self, instance_id: &str) -> &[Arc<Instance>] {
        let Some(&start) = self.id_index.get(instance_id) else {
            return EMPTY;
        };
        let start = start as usize;
        let same = self.by_id[start + 1..]
            .iter()
            .take_while(|i| i.instance_id.as_str() == instance_id)
            .count();
        &self.by_id[start..start + 1 + same]
    }

    /// One UP instance under an app / VIP / secure VIP name, or `None` if there is none.
    pub fn choose(&self, lookup: Lookup, name: &str, choice: Choice) -> Option<&Arc<Instance>> {
        let group = self.group(lookup, name)?;
        if group.up.is_empty() {
            return None;
        }
        let index = match choice {
            Choice::RoundRobin => group.cursor.fetch_add(1, Ordering::Relaxed),
            Choice::Random => random_below(group.up.len()),
        };
        Some(&group.up[index % group.up.len()])
    }

    /// True when both hold the same instances with the same data.
    pub fn same_instances(&self, other: &Registry) -> bool {
        self.by_id.len() == other.by_id.len()
            && self
                .by_id
                .iter()
                .zip(&other.by_id)
                .all(|(a, b)| Arc::ptr_eq(a, b) || a == b)
    }
}

fn by_id_then_app(a: &Instance, b: &Instance) -> std::cmp::Ordering {
    a.instance_id
        .as_str()
        .cmp(b.instance_id.as_str())
        .then_with(|| a.app.as_str().cmp(b.app.as_str()))
}

fn add_to_vips<'a>(
    index: &mut HashMap<Text, Vec<Arc<Instance>>>,
    names: impl Iterator<Item = &'a str>,
    instance: &Arc<Instance>,
) {
    let mut names: Vec<&str> = names.collect();
    // The same VIP twice in one instance's list must not list the instance twice.
    names.sort_unstable();
    names.dedup();
    for name in names {
        match index.get_mut(name) {
            Some(list) => list.push(instance.clone()),
            None => {
                index.insert(Text::new(name), vec![instance.clone()]);
            }
        }
    }
}

/// A small per-thread xorshift generator, seeded from the OS-randomised hasher keys.
fn random_below(n: usize) -> usize {
    use std::cell::Cell;
    use std::hash::{BuildHasher, Hasher};
    thread_local! {
        static STATE: Cell<u64> = Cell::new({
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_usize(&h as *const _ as usize);
            h.finish() | 1
        });
    }
    STATE.with(|s| {
        let mut x = s.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        // Multiply-shift maps 64 random bits onto 0..n without the bias of a modulo.
        ((u128::from(x) * n as u128) >> 64) as usize
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(app: &str, id: &str, status: &str, vip: &str) -> String {
        format!(
            r#"{{"instanceId":"{id}","hostName":"{id}.local","app":"{app}","ipAddr":"10.0.0.1",
            "status":"{status}","port":{{"$":8080,"@enabled":"true"}},
            "securePort":{{"$":8443,"@enabled":"true"}},"vipAddress":"{vip}",
            "secureVipAddress":"s-{vip}","lastDirtyTimestamp":"1","actionType":"ADDED"}}"#
        )
    }

    fn doc(instances: &[String], hash: &str) -> Applications {
        let body = format!(
            r#"{{"applications":{{"apps__hashcode":"{hash}","application":[{{"name":"X","instance":[{}]}}]}}}}"#,
            instances.join(",")
        );
        Applications::parse(body.as_bytes()).unwrap()
    }

    fn sample() -> Registry {
        Registry::from_applications(
            doc(
                &[
                    instance("A", "a1", "UP", "va,shared"),
                    instance("A", "a2", "DOWN", "va"),
                    instance("A", "a3", "UP", "va"),
                    instance("B", "b1", "STARTING", "vb,shared, vb"),
                    instance("B", "b2", "UP", "vb"),
                    instance("B", "b3", "OUT_OF_SERVICE", "vb"),
                ],
                "",
            ),
            None,
        )
    }

    fn ids(list: &[Arc<Instance>]) -> Vec<&str> {
        list.iter().map(|i| i.instance_id.as_str()).collect()
    }

    #[test]
    fn queries_by_app_vip_secure_vip_and_id() {
        let r = sample();
        assert_eq!(r.len(), 6);
        assert_eq!(r.hashcode(), "DOWN_1_OUT_OF_SERVICE_1_STARTING_1_UP_3_");
        assert_eq!(ids(r.instances(Lookup::App, "a", false)), ["a1", "a3"]);
        assert_eq!(ids(r.instances(Lookup::App, "A", true)), ["a1", "a2", "a3"]);
        assert_eq!(ids(r.instances(Lookup::Vip, "shared", true)), ["a1", "b1"]);
        assert_eq!(ids(r.instances(Lookup::Vip, "shared", false)), ["a1"]);
        assert_eq!(
            ids(r.instances(Lookup::Vip, "vb", true)),
            ["b1", "b2", "b3"]
        );
        assert_eq!(
            ids(r.instances(Lookup::Vip, "VB", true)),
            Vec::<&str>::new()
        );
        assert_eq!(ids(r.instances(Lookup::SecureVip, "s-vb", false)), ["b2"]);
        assert_eq!(ids(r.instance("b3")), ["b3"]);
        assert!(r.instance("zz").is_empty());
        let twice = Registry::from_applications(
            doc(
                &[
                    instance("A", "same", "UP", "v"),
                    instance("B", "same", "DOWN", "v"),
                ],
                "",
            ),
            None,
        );
        let both: Vec<&str> = twice
            .instance("same")
            .iter()
            .map(|i| i.app.as_str())
            .collect();
        assert_eq!(both, ["A", "B"]);
        assert!(r.instances(Lookup::App, "nope", true).is_empty());
        assert_eq!(r.app_names(), ["A", "B"]);
    }

    #[test]
    fn round_robin_visits_every_up_instance_evenly() {
        let r = sample();
        let mut counts = HashMap::new();
        for _ in 0..100 {
            let i = r.choose(Lookup::App, "a", Choice::RoundRobin).unwrap();
            *counts.entry(i.instance_id.to_string()).or_insert(0) += 1;
        }
        assert_eq!(counts.len(), 2);
        assert!(counts.values().all(|c| *c == 50), "{counts:?}");
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            seen.insert(
                r.choose(Lookup::Vip, "va", Choice::Random)
                    .unwrap()
                    .instance_id
                    .clone(),
            );
        }
        assert_eq!(seen.len(), 2);
        assert!(r.choose(Lookup::App, "nope", Choice::Random).is_none());
    }

    #[test]
    fn deltas_apply_idempotently() {
        let r = sample();
        let delta = || {
            let mut d = doc(
                &[
                    instance("A", "a2", "UP", "va"),
                    instance("C", "c1", "UP", "vc"),
                    instance("B", "b3", "UP", "vb"),
                ],
                "",
            );
            d.instances[0].0 = ActionType::Modified;
            d.instances[2].0 = ActionType::Deleted;
            d
        };
        let next = r.apply_delta(delta()).expect("changed");
        assert_eq!(
            ids(r.instances(Lookup::App, "a", false)),
            ["a1", "a3"],
            "old copy untouched"
        );
        assert_eq!(
            ids(next.instances(Lookup::App, "a", false)),
            ["a1", "a2", "a3"]
        );
        assert_eq!(ids(next.instances(Lookup::App, "c", false)), ["c1"]);
        assert_eq!(ids(next.instances(Lookup::App, "b", true)), ["b1", "b2"]);
        assert_eq!(next.hashcode(), "STARTING_1_UP_5_");
        assert!(
            next.apply_delta(delta()).is_none(),
            "second application changes nothing"
        );
        // Deleting every instance of an app removes the app.
        let mut gone = doc(&[instance("C", "c1", "UP", "vc")], "");
        gone.instances[0].0 = ActionType::Deleted;
        let last = next.apply_delta(gone).unwrap();
        assert!(last.instances(Lookup::App, "c", true).is_empty());
        assert!(!last.app_names().contains(&"C"));
        assert!(last.instances(Lookup::Vip, "vc", true).is_empty());
    }

    #[test]
    fn rebuilds_keep_the_round_robin_position() {
        let r = sample();
        let first = r
            .choose(Lookup::App, "A", Choice::RoundRobin)
            .unwrap()
            .clone();
        let mut d = doc(&[instance("B", "b9", "UP", "vb")], "");
        d.instances[0].0 = ActionType::Added;
        let next = r.apply_delta(d).unwrap();
        let second = next.choose(Lookup::App, "A", Choice::RoundRobin).unwrap();
        assert_ne!(first.instance_id, second.instance_id);
    }

    #[test]
    fn random_stays_in_range() {
        for n in 1..50 {
            for _ in 0..20 {
                assert!(random_below(n) < n);
            }
        }
    }
}
