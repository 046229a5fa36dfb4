//! Incremental planning: `plan_incremental` gives exactly the plan `plan` gives, however the
//! inputs changed since the plan it builds on, as long as manifests with equal revisions are
//! equal and live objects change their `resourceVersion` with every change; and it does skip
//! what it may.
//!
//! Cases are ConfigMaps and Deployments in Git, live or both, most of them in sync, planned
//! several times in a row; between two plans random objects change (manifests with or without
//! a new revision, live objects with a new `resourceVersion`, objects added and removed,
//! duplicates) and so, now and then, do rules, invalid rules, options and types.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use common::*;
use gitcontroller_sync::*;
use proptest::prelude::*;
use serde_json::{Value, json};

/// A small deterministic random source, so that one proptest seed drives a whole history.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// The inputs of a plan, and counters that hand out fresh revisions and resource versions.
#[derive(Clone)]
struct World {
    manifests: Vec<Manifest>,
    live: Vec<Value>,
    rules: Vec<Rule>,
    invalid_rules: Vec<InvalidRule>,
    types: Vec<ResourceType>,
    inventory: BTreeSet<ObjectId>,
    options: PlanOptions,
    versions: u64,
}

impl World {
    fn input(&self) -> PlanInput<'_> {
        self.input_with(&self.live)
    }

    /// The world's input with `live` (the same objects, held another way) as the live objects.
    fn input_with<'a, L>(&'a self, live: &'a [L]) -> PlanInput<'a, L> {
        PlanInput {
            manifests: &self.manifests,
            live,
            rules: &self.rules,
            invalid_rules: &self.invalid_rules,
            types: &self.types,
            inventory: &self.inventory,
            skipped: &[],
            options: &self.options,
        }
    }

    fn fresh(&mut self) -> String {
        self.versions += 1;
        self.versions.to_string()
    }

    /// A manifest of `object` in `<name>.yaml`, with a new revision.
    fn manifest(&mut self, object: Value) -> Manifest {
        let name = object["metadata"]["name"].as_str().unwrap().to_owned();
        let mut m = manifest(&format!("{name}.yaml"), 0, object);
        m.revision = Some(Arc::from(self.fresh()));
        m
    }

    /// `object` as the API server serves it, with a new `resourceVersion`.
    fn live_of(&mut self, object: &Value, owned: bool) -> Value {
        let mut live = object.clone();
        let name = live["metadata"]["name"].as_str().unwrap().to_owned();
        live["metadata"]["uid"] = json!(format!("uid-{name}"));
        live["metadata"]["resourceVersion"] = json!(self.fresh());
        if owned {
            let api_version = live["apiVersion"].clone();
            live["metadata"]["managedFields"] = json!([{
                "manager": DEFAULT_FIELD_MANAGER, "operation": "Apply", "apiVersion": api_version,
                "fieldsType": "FieldsV1",
                "fieldsV1": {"f:data": {"f:level": {}}, "f:spec": {"f:replicas": {}},
                             "f:metadata": {"f:labels": {"f:tier": {}}}}
            }]);
        }
        live
    }

    fn bump(&mut self, live_index: usize) {
        let version = self.fresh();
        self.live[live_index]["metadata"]["resourceVersion"] = json!(version);
    }
}

fn object(rng: &mut Rng, name: &str) -> Value {
    let tier = ["front", "back"][rng.below(2)];
    if rng.chance(50) {
        let level = ["info", "debug"][rng.below(2)];
        let note = ["a", "b"][rng.below(2)];
        json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "default", "labels": {"tier": tier}},
            "data": {"level": level, "note": note}
        })
    } else {
        let (replicas, paused) = (rng.below(3), rng.chance(50));
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": "default", "labels": {"tier": tier}},
            "spec": {"replicas": replicas, "paused": paused}
        })
    }
}

/// Changes one field of `object`, maybe to the value it had.
fn edit(rng: &mut Rng, object: &mut Value) {
    match (rng.below(3), object["kind"] == "ConfigMap") {
        (0, _) => object["metadata"]["labels"]["tier"] = json!(["front", "back"][rng.below(2)]),
        (1, true) => object["data"]["level"] = json!(["info", "debug"][rng.below(2)]),
        (2, true) => object["data"]["note"] = json!(["a", "b"][rng.below(2)]),
        (1, false) => object["spec"]["replicas"] = json!(rng.below(3)),
        _ => object["spec"]["paused"] = json!(rng.chance(50)),
    }
}

fn rules(rng: &mut Rng) -> Vec<Rule> {
    let mut all = Vec::new();
    for i in 0..1 + rng.below(3) {
        let sync_to = [SyncTo::Kubernetes, SyncTo::Git, SyncTo::Ignore][rng.below(3)];
        let filters: &[&str] = [
            &[][..],
            &["/data/note"],
            &["/spec/paused"],
            &["/metadata/labels"],
        ][rng.below(4)];
        let mut r = rule(&format!("r{i}"), sync_to, filters);
        r.priority = rng.below(2) as i32;
        r.label_selector = [None, Some("tier=front"), Some("tier!=front")][rng.below(3)]
            .map(|s| LabelSelector::parse(s).unwrap());
        r.kinds = [vec![], vec!["ConfigMap".to_owned()]][rng.below(2)].clone();
        all.push(r);
    }
    all
}

fn invalid_rules(rng: &mut Rng) -> Vec<InvalidRule> {
    if rng.chance(80) {
        return Vec::new();
    }
    let mut r = Rule::new("broken", SyncTo::Ignore);
    r.label_selector = Some(LabelSelector::parse("tier=back").unwrap());
    vec![InvalidRule::new(r, "filters do not parse")]
}

fn types(rng: &mut Rng) -> Vec<ResourceType> {
    let mut all = common::types();
    if rng.chance(10) {
        all.reverse();
    }
    all
}

fn world(rng: &mut Rng) -> World {
    let mut w = World {
        manifests: Vec::new(),
        live: Vec::new(),
        rules: rules(rng),
        invalid_rules: invalid_rules(rng),
        types: types(rng),
        inventory: BTreeSet::new(),
        options: PlanOptions {
            prune: rng.chance(50),
            ..PlanOptions::default()
        },
        versions: 0,
    };
    for i in 0..2 + rng.below(6) {
        add(rng, &mut w, &format!("o{i}"));
    }
    w
}

/// A new object: in Git, live or (mostly) both, mostly alike.
fn add(rng: &mut Rng, w: &mut World, name: &str) {
    let git = object(rng, name);
    let place = rng.below(10);
    if place != 0 {
        let m = w.manifest(git.clone());
        w.manifests.push(m);
    }
    if place != 1 {
        let mut live = git.clone();
        if rng.chance(30) {
            edit(rng, &mut live);
        }
        let live = w.live_of(&live, rng.chance(50));
        w.live.push(live);
    }
    if rng.chance(70) {
        let kind = git["kind"].as_str().unwrap();
        let group = if kind == "Deployment" { "apps" } else { "" };
        w.inventory
            .insert(ObjectId::new(group, kind, Some("default"), name));
    }
}

/// One random change between two plans; each keeps the promise the incremental planner
/// relies on (new content, new version).
fn mutate(rng: &mut Rng, w: &mut World, step: usize) {
    let choice = rng.below(14);
    mutate_as(rng, w, step, choice);
}

/// A random change that keeps every object in its place: content, versions, revisions and
/// the inventory change, objects are neither added, removed nor duplicated.
fn mutate_in_place(rng: &mut Rng, w: &mut World, step: usize) {
    if rng.chance(20) {
        // Now in the inventory, or no longer: decides whether a live object is pruned.
        if !w.live.is_empty() {
            let live = &w.live[rng.below(w.live.len())];
            let kind = live["kind"].as_str().unwrap();
            let group = if kind == "Deployment" { "apps" } else { "" };
            let name = live["metadata"]["name"].as_str().unwrap();
            let id = ObjectId::new(group, kind, Some("default"), name);
            if !w.inventory.remove(&id) {
                w.inventory.insert(id);
            }
        }
        return;
    }
    let choice = [0, 1, 2, 3, 4, 5, 6, 13][rng.below(8)];
    mutate_as(rng, w, step, choice);
}

fn mutate_as(rng: &mut Rng, w: &mut World, step: usize, choice: usize) {
    match choice {
        0 | 1 if !w.manifests.is_empty() => {
            let i = rng.below(w.manifests.len());
            let mut object = Value::clone(&w.manifests[i].object);
            edit(rng, &mut object);
            let revision = w.fresh();
            let m = &mut w.manifests[i];
            let file = m.file.clone();
            *m = manifest(&file, m.doc_index, object);
            m.revision = Some(Arc::from(revision));
        }
        2 if !w.manifests.is_empty() => {
            // Same content, new revision (a commit that touched another document).
            let revision = w.fresh();
            let i = rng.below(w.manifests.len());
            w.manifests[i].revision = Some(Arc::from(revision));
        }
        3 if !w.manifests.is_empty() => {
            // Without a revision, a manifest is never trusted to be unchanged.
            let i = rng.below(w.manifests.len());
            w.manifests[i].revision = None;
        }
        4 | 5 if !w.live.is_empty() => {
            let i = rng.below(w.live.len());
            edit(rng, &mut w.live[i]);
            w.bump(i);
        }
        6 if !w.live.is_empty() => {
            // A change the planner ignores (status, another manager) still bumps the version.
            let i = rng.below(w.live.len());
            w.live[i]["status"] = json!({"observed": rng.below(5)});
            w.bump(i);
        }
        7 if !w.live.is_empty() => {
            let i = rng.below(w.live.len());
            w.live.remove(i);
        }
        8 if !w.manifests.is_empty() => {
            let i = rng.below(w.manifests.len());
            w.manifests.remove(i);
        }
        9 => add(rng, w, &format!("n{step}")),
        10 if !w.manifests.is_empty() => {
            // A second definition in another file.
            let i = rng.below(w.manifests.len());
            let mut copy = w.manifests[i].clone();
            copy.file = format!("copy-{step}.yaml");
            w.manifests.push(copy);
        }
        11 => w.rules = rules(rng),
        12 => match rng.below(3) {
            0 => w.invalid_rules = invalid_rules(rng),
            1 => w.options.prune = !w.options.prune,
            _ => w.types = types(rng),
        },
        _ => {
            // The live object's content moved to the manifest (a sync carried out): both change.
            if let (false, false) = (w.manifests.is_empty(), w.live.is_empty()) {
                let i = rng.below(w.live.len());
                let name = w.live[i]["metadata"]["name"].clone();
                if let Some(m) = w
                    .manifests
                    .iter()
                    .position(|m| m.object["metadata"]["name"] == name)
                {
                    let mut object = w.live[i].clone();
                    let meta = object["metadata"].as_object_mut().unwrap();
                    for key in ["uid", "resourceVersion", "managedFields"] {
                        meta.remove(key);
                    }
                    if let Some(o) = object.as_object_mut() {
                        o.remove("status");
                    }
                    let file = w.manifests[m].file.clone();
                    let revision = w.fresh();
                    w.manifests[m] = manifest(&file, 0, object);
                    w.manifests[m].revision = Some(Arc::from(revision));
                }
            }
        }
    }
}

/// The live objects of the noops that a `kubernetes` rule applies, as positions in `w.live`,
/// the way the controller computed them before the planner reported them.
fn applied_live(w: &World, noops: &[ObjectId]) -> Vec<usize> {
    noops
        .iter()
        .filter_map(|id| {
            w.manifests.iter().find(|m| m.id == *id)?;
            let ty = w
                .types
                .iter()
                .find(|t| t.group == id.group && t.kind == id.kind)
                .unwrap();
            let position = w.live.iter().position(|l| {
                l["kind"] == id.kind.as_str() && l["metadata"]["name"] == id.name.as_str()
            })?;
            w.rules
                .iter()
                .any(|r| r.sync_to == SyncTo::Kubernetes && r.selects(id, ty, &w.live[position]))
                .then_some(position)
        })
        .collect()
}

/// What changed from `before` to `after`, as a caller that keeps its objects knows it: the
/// positions of the manifests and live objects that changed and whether the inventory is the
/// same; `None` when an object was added, removed or moved, or changed its identity.
fn changes_between(before: &World, after: &World) -> Option<(Vec<usize>, Vec<usize>, bool)> {
    if before.manifests.len() != after.manifests.len() || before.live.len() != after.live.len() {
        return None;
    }
    let mut manifests = Vec::new();
    for (at, (b, a)) in before.manifests.iter().zip(&after.manifests).enumerate() {
        if (&b.id, &b.file, b.doc_index, b.item_index)
            != (&a.id, &a.file, a.doc_index, a.item_index)
        {
            return None;
        }
        if b != a {
            manifests.push(at);
        }
    }
    let mut live = Vec::new();
    for (at, (b, a)) in before.live.iter().zip(&after.live).enumerate() {
        let (bi, ai) = (LiveIdentity::of(b), LiveIdentity::of(a));
        if (bi.api_version, bi.kind, bi.namespace, bi.name)
            != (ai.api_version, ai.kind, ai.namespace, ai.name)
        {
            return None;
        }
        if b != a {
            live.push(at);
        }
    }
    Some((manifests, live, before.inventory == after.inventory))
}

/// A live object that keeps its identity apart, as a caller keeping objects across plans does.
struct Kept {
    object: Value,
    parts: [Option<String>; 6],
}

impl Kept {
    fn new(object: &Value) -> Self {
        let id = LiveIdentity::of(object);
        let own = |p: Option<&str>| p.map(str::to_owned);
        Kept {
            object: object.clone(),
            parts: [
                own(id.api_version),
                own(id.kind),
                own(id.namespace),
                own(id.name),
                own(id.uid),
                own(id.resource_version),
            ],
        }
    }
}

impl LiveInput for Kept {
    fn object(&self) -> &Value {
        &self.object
    }

    fn identity(&self) -> LiveIdentity<'_> {
        let [api_version, kind, namespace, name, uid, resource_version] =
            self.parts.each_ref().map(Option::as_deref);
        LiveIdentity {
            api_version,
            kind,
            namespace,
            name,
            uid,
            resource_version,
        }
    }
}

proptest! {
    // PROPTEST_CASES=20000 for a deeper search.
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(512)
    ))]

    #[test]
    fn incremental_plans_equal_full_plans(seed in 1u64.., steps in 1usize..6) {
        let mut rng = Rng(seed);
        let mut w = world(&mut rng);
        let (first, mut settled) = plan_incremental(&w.input(), None);
        prop_assert_eq!(&first, &plan(&w.input()));
        // The same history planned without listing the noops: the same plan but for them.
        let unlisted = PlanOptions { list_noops: false, ..w.options.clone() };
        let without_noops = |mut plan: Plan| {
            plan.noops.clear();
            plan
        };
        let (first_unlisted, mut settled_unlisted) =
            plan_incremental(&PlanInput { options: &unlisted, ..w.input() }, None);
        prop_assert_eq!(&first_unlisted, &without_noops(first));
        for step in 0..steps {
            for _ in 0..1 + rng.below(3) {
                mutate(&mut rng, &mut w, step);
            }
            let full = plan(&w.input());
            let (incremental, next) = plan_incremental(&w.input(), Some(&settled));
            prop_assert_eq!(&incremental, &full, "step {}", step);
            prop_assert_eq!(&full.applied_live, &applied_live(&w, &full.noops));
            settled = next;
            // (A step may change the options.)
            let unlisted = PlanOptions { list_noops: false, ..w.options.clone() };
            let (unlisted_plan, next) = plan_incremental(
                &PlanInput { options: &unlisted, ..w.input() },
                Some(&settled_unlisted),
            );
            prop_assert_eq!(&unlisted_plan, &without_noops(full), "step {} unlisted", step);
            settled_unlisted = next;
        }
    }

    /// Plans of only what changed equal full plans, whatever changed: objects in place
    /// (mostly), or added, removed and duplicated, or rules, options and types (then the
    /// caller has no account of the changes, or the planner finds it cannot use it).
    #[test]
    fn plans_of_what_changed_equal_full_plans(seed in 1u64.., steps in 1usize..8) {
        let mut rng = Rng(seed);
        let mut w = world(&mut rng);
        let (_, mut settled) = plan_incremental(&w.input(), None);
        for step in 0..steps {
            let before = w.clone();
            for _ in 0..1 + rng.below(2) {
                if rng.chance(75) {
                    mutate_in_place(&mut rng, &mut w, step);
                } else {
                    mutate(&mut rng, &mut w, step);
                }
            }
            let full = plan(&w.input());
            let tracked = changes_between(&before, &w);
            let (manifests, mut live, inventory_unchanged) = tracked.clone().unwrap_or_default();
            // Listing a position that did not change is allowed.
            if rng.chance(20) && !w.live.is_empty() {
                live.push(rng.below(w.live.len()));
            }
            let changes = InputChanges { manifests: &manifests, live: &live, inventory_unchanged };
            let (planned, next) =
                plan_changed(&w.input(), Some(&settled), tracked.is_some().then_some(&changes));
            prop_assert_eq!(&planned, &full, "step {} {:?}", step, tracked);
            settled = next;
        }
    }

    /// Plans of live objects that bring their identity equal plans of the objects alone, from
    /// scratch and incrementally.
    #[test]
    fn identities_kept_apart_plan_like_the_objects(seed in 1u64.., steps in 1usize..5) {
        let mut rng = Rng(seed);
        let mut w = world(&mut rng);
        let mut settled: Option<Settled> = None;
        for step in 0..steps {
            let kept: Vec<Kept> = w.live.iter().map(Kept::new).collect();
            let input = w.input();
            let with_kept = w.input_with(&kept);
            prop_assert_eq!(&plan(&with_kept), &plan(&input), "step {}", step);
            let (incremental, next) = plan_incremental(&with_kept, settled.as_ref());
            prop_assert_eq!(&incremental, &plan(&input), "step {} incremental", step);
            settled = Some(next);
            for _ in 0..1 + rng.below(3) {
                mutate(&mut rng, &mut w, step);
            }
        }
    }
}

/// A history of plans without changes skips every object in sync, and only those.
#[test]
fn unchanged_objects_in_sync_are_all_remembered() {
    let mut remembered = 0;
    for seed in 1..200 {
        let mut rng = Rng(seed);
        let w = world(&mut rng);
        let (full, settled) = plan_incremental(&w.input(), None);
        let (again, settled_again) = plan_incremental(&w.input(), Some(&settled));
        assert_eq!(again, full);
        assert_eq!(settled_again.len(), settled.len());
        // Only objects with one manifest and one live object can be remembered.
        let both = full
            .noops
            .iter()
            .filter(|id| {
                w.manifests.iter().any(|m| m.id == **id)
                    && w.live
                        .iter()
                        .any(|l| l["metadata"]["name"] == id.name.as_str())
            })
            .count();
        assert_eq!(settled.len(), both, "seed {seed}: {full:#?}");
        remembered += settled.len();
    }
    assert!(
        remembered > 100,
        "too few objects in sync to test: {remembered}"
    );
}

fn in_sync_configmap(w: &mut World) {
    w.rules = vec![Rule::new("all", SyncTo::Kubernetes)];
    let object = configmap("app", json!({"level": "info"}));
    let m = w.manifest(object.clone());
    w.manifests = vec![m];
    w.live = vec![w.live_of(&object, true)];
}

fn empty_world() -> World {
    World {
        manifests: Vec::new(),
        live: Vec::new(),
        rules: Vec::new(),
        invalid_rules: Vec::new(),
        types: common::types(),
        inventory: BTreeSet::new(),
        options: PlanOptions::default(),
        versions: 0,
    }
}

/// The versions are trusted: a live object changed without a new `resourceVersion` is not
/// looked at again (which shows the object is skipped), until something global changes.
#[test]
fn the_versions_decide_what_is_looked_at_again() {
    let mut w = empty_world();
    in_sync_configmap(&mut w);
    let (first, settled) = plan_incremental(&w.input(), None);
    assert_eq!(first.noops, vec![cm_id("app")]);
    assert_eq!(
        first.applied_live,
        vec![0],
        "the live object, first of the input"
    );
    assert_eq!(settled.len(), 1);

    w.live[0]["data"]["level"] = json!("debug"); // no new resourceVersion: a broken promise
    let (skipped, settled) = plan_incremental(&w.input(), Some(&settled));
    assert_eq!(skipped, first);
    assert_eq!(plan(&w.input()).to_cluster.len(), 1);

    // Anything global differs: everything is planned.
    let mut options = w.options.clone();
    options.field_manager = "someone-else".into();
    w.options = options;
    let (replanned, _) = plan_incremental(&w.input(), Some(&settled));
    assert_eq!(replanned, plan(&w.input()));
    assert_eq!(replanned.to_cluster.len(), 1);
}

/// A plan of what changed reads what the caller says changed, and nothing else: a change it
/// is not told about is not seen (which shows the object is not read).
#[test]
fn a_plan_of_what_changed_reads_only_what_it_is_told_changed() {
    let mut w = empty_world();
    in_sync_configmap(&mut w);
    let (first, settled) = plan_incremental(&w.input(), None);
    w.live[0]["data"]["level"] = json!("debug");
    w.bump(0);
    let untold = InputChanges {
        manifests: &[],
        live: &[],
        inventory_unchanged: true,
    };
    let (skipped, _) = plan_changed(&w.input(), Some(&settled), Some(&untold));
    assert_eq!(skipped, first, "not told, not read");
    let told = InputChanges {
        live: &[0],
        ..untold
    };
    let (planned, next) = plan_changed(&w.input(), Some(&settled), Some(&told));
    assert_eq!(planned, plan(&w.input()));
    assert_eq!(planned.to_cluster.len(), 1);

    // Another number of objects: planned in full, whatever the caller says.
    let extra = configmap("other", json!({"level": "info"}));
    let live = w.live_of(&extra, false);
    w.live.push(live);
    let (replanned, _) = plan_changed(&w.input(), Some(&next), Some(&untold));
    assert_eq!(replanned, plan(&w.input()));
    // A position out of range: likewise.
    let beyond = InputChanges {
        live: &[7],
        ..untold
    };
    let (replanned, _) = plan_changed(&w.input(), Some(&next), Some(&beyond));
    assert_eq!(replanned, plan(&w.input()));
}

#[test]
fn objects_without_versions_are_never_skipped() {
    let mut w = empty_world();
    in_sync_configmap(&mut w);
    w.manifests[0].revision = None;
    let (_, settled) = plan_incremental(&w.input(), None);
    assert!(settled.is_empty());

    in_sync_configmap(&mut w);
    w.live[0]["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("resourceVersion");
    let (_, settled) = plan_incremental(&w.input(), None);
    assert!(settled.is_empty());
}
