//! Property tests: convergence, determinism, containment; an incomplete source never prunes
//! or adds files; invalid rules hold back everything they could select.
//!
//! Cases are a few ConfigMaps and Deployments, each in Git, live or both, with random labels,
//! annotations and spec (scalars, maps, arrays), random rules (directions, filters, priorities,
//! selectors) and, for half of the live objects, `managedFields` splitting ownership between
//! git-controller (server-side apply) and another manager. Plans are carried out the way the
//! API server would: a simplified server-side apply where ownership is tracked, a merge
//! elsewhere.

mod common;

use std::collections::BTreeSet;

use common::*;
use gitcontroller_sync::*;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

// --- generators ------------------------------------------------------------------------------

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        (0i64..3).prop_map(Value::from),
        prop::sample::select(vec!["1", "a", "b"]).prop_map(Value::from),
        any::<bool>().prop_map(Value::from),
    ]
}

fn small_object() -> impl Strategy<Value = Value> {
    prop::collection::btree_map(prop::sample::select(vec!["p", "q"]), scalar(), 0..3)
        .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()))
}

fn field() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => scalar(),
        2 => small_object(),
        1 => prop::collection::vec(scalar(), 0..3).prop_map(Value::Array),
        1 => prop::collection::vec(small_object(), 0..3).prop_map(Value::Array),
    ]
}

fn string_map(keys: Vec<&'static str>) -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map(
        prop::sample::select(keys),
        prop::sample::select(vec!["1", "2"]),
        0..3,
    )
    .prop_map(|m| {
        m.into_iter()
            .map(|(k, v)| (k.to_owned(), Value::from(v)))
            .collect()
    })
}

/// Labels, maybe annotations, spec.
type Parts = (
    Map<String, Value>,
    Option<Map<String, Value>>,
    Map<String, Value>,
);

/// Body of an object: labels, maybe annotations, spec.
fn body() -> impl Strategy<Value = Parts> {
    (
        string_map(vec!["a", "b"]),
        prop::option::of(string_map(vec!["n", "m"])),
        prop::collection::btree_map(prop::sample::select(vec!["x", "y", "z"]), field(), 0..4)
            .prop_map(|m| m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()),
    )
}

fn object(kind: &str, name: &str, tier: &str, parts: Parts) -> Value {
    let (mut labels, annotations, spec) = parts;
    // `tier` is what selectors look at; it is the same on both sides, so acting on an object
    // never changes which rules select it.
    labels.insert("tier".into(), Value::from(tier));
    let api_version = if kind == "Deployment" {
        "apps/v1"
    } else {
        "v1"
    };
    let mut meta = json!({"name": name, "namespace": "default", "labels": labels});
    if let Some(a) = annotations {
        meta["annotations"] = Value::Object(a);
    }
    json!({"apiVersion": api_version, "kind": kind, "metadata": meta, "spec": spec})
}

const FILTERS: &[&str] = &[
    "/spec",
    "/spec/x",
    "/spec/y",
    "/spec/y/p",
    "/spec/x/0",
    "/spec/z/q",
    "/metadata/labels",
    "/metadata/labels/a",
    "/metadata/annotations",
];

fn rules() -> impl Strategy<Value = Vec<Rule>> {
    let one = (
        prop::sample::select(vec![SyncTo::Kubernetes, SyncTo::Git, SyncTo::Ignore]),
        prop::collection::vec(prop::sample::select(FILTERS.to_vec()), 0..3),
        0i32..2,
        prop::sample::select(vec![None, Some("tier=front"), Some("tier!=front")]),
        prop::sample::select(vec![vec![], vec!["ConfigMap"], vec!["Deployment"]]),
    );
    prop::collection::vec(one, 1..5).prop_map(|rs| {
        rs.into_iter()
            .enumerate()
            .map(|(i, (sync_to, filters, priority, selector, kinds))| {
                let mut r = rule(&format!("r{i}"), sync_to, &filters);
                r.priority = priority;
                r.label_selector = selector.map(|s| LabelSelector::parse(s).unwrap());
                r.kinds = kinds.into_iter().map(String::from).collect();
                r
            })
            .collect()
    })
}

/// Where an object is: 0 only Git, 1 only live, 2 both (different), 3 both (same). Live
/// objects get `managedFields` half of the time.
fn objects() -> impl Strategy<Value = Vec<(String, u8, bool, Value, Value)>> {
    let one = (
        prop::sample::select(vec!["ConfigMap", "Deployment"]),
        0u8..4,
        prop::sample::select(vec!["front", "back"]),
        body(),
        body(),
        any::<bool>(),
        prop::option::of(any::<u64>()),
    );
    prop::collection::vec(one, 1..5).prop_map(|objs| {
        objs.into_iter()
            .enumerate()
            .map(
                |(i, (kind, place, tier, git, live, in_inventory, ownership))| {
                    let name = format!("o{i}");
                    let git = object(kind, &name, tier, git);
                    let mut live = if place == 3 {
                        git.clone()
                    } else {
                        object(kind, &name, tier, live)
                    };
                    if let Some(bits) = ownership {
                        give_ownership(&mut live, bits);
                    }
                    (name, place, in_inventory, git, live)
                },
            )
            .collect()
    })
}

/// Splits the fields of `live` between git-controller (server-side apply) and another
/// manager (update), by `bits`, and records that in `managedFields`.
fn give_ownership(live: &mut Value, bits: u64) {
    let (mut ours, mut theirs) = (live.clone(), live.clone());
    let mut bit = 0;
    for path in [
        &["metadata", "labels"][..],
        &["metadata", "annotations"],
        &["spec"],
    ] {
        let keys: Vec<String> = value_at_str(live, path)
            .and_then(Value::as_object)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        for key in keys {
            let mine = bits >> (bit % 64) & 1 == 1;
            bit += 1;
            let drop_from = if mine { &mut theirs } else { &mut ours };
            if let Some(map) = value_at_str_mut(drop_from, path).and_then(Value::as_object_mut) {
                map.remove(&key);
            }
        }
        // An emptied map would claim the whole map.
        for side in [&mut ours, &mut theirs] {
            let emptied = value_at_str(side, path)
                .and_then(Value::as_object)
                .is_some_and(|m| m.is_empty())
                && value_at_str(live, path)
                    .and_then(Value::as_object)
                    .is_some_and(|m| !m.is_empty());
            if emptied {
                let (last, parent) = path.split_last().unwrap();
                if let Some(map) = value_at_str_mut(side, parent).and_then(Value::as_object_mut) {
                    map.remove(*last);
                }
            }
        }
    }
    // The API server keeps no entries with empty sets.
    let entries: Vec<Value> = [("git-controller", "Apply", ours), ("someone", "Update", theirs)]
        .into_iter()
        .map(|(manager, operation, part)| (manager, operation, fields_of(&part, 0)))
        .filter(|(_, _, set)| set.as_object().is_some_and(|m| !m.is_empty()))
        .map(|(manager, operation, set)| {
            json!({"manager": manager, "operation": operation, "fieldsType": "FieldsV1", "fieldsV1": set})
        })
        .collect();
    live["metadata"]["managedFields"] = Value::Array(entries);
}

fn value_at_str<'v>(v: &'v Value, path: &[&str]) -> Option<&'v Value> {
    path.iter().try_fold(v, |cur, k| cur.as_object()?.get(*k))
}

fn value_at_str_mut<'v>(v: &'v mut Value, path: &[&str]) -> Option<&'v mut Value> {
    path.iter()
        .try_fold(v, |cur, k| cur.as_object_mut()?.get_mut(*k))
}

/// The `fieldsV1` set owning every field of `v` (arrays and scalars as a whole), leaving out
/// identity and server fields as the API server does.
fn fields_of(v: &Value, depth: usize) -> Value {
    let Some(map) = v.as_object() else {
        return json!({});
    };
    if map.is_empty() && depth > 0 {
        return json!({});
    }
    let mut out = Map::new();
    for (k, child) in map {
        if depth == 0 && matches!(k.as_str(), "apiVersion" | "kind" | "status") {
            continue;
        }
        let child_set = if depth == 0 && k == "metadata" {
            let mut meta = Map::new();
            for (mk, mv) in child.as_object().into_iter().flatten() {
                if !matches!(mk.as_str(), "name" | "namespace" | "managedFields") {
                    meta.insert(format!("f:{mk}"), fields_of(mv, 2));
                }
            }
            if meta.is_empty() {
                continue; // the API server lists no empty containers
            }
            Value::Object(meta)
        } else {
            fields_of(child, depth + 1)
        };
        out.insert(format!("f:{k}"), child_set);
    }
    Value::Object(out)
}

/// Server-side apply of `body` by git-controller, simplified (no conflicts, nobody else
/// keeps a removed field): fields it owned before and no longer sends are removed, the body
/// is merged in, and it then owns what it sent.
fn server_side_apply(live: &mut Value, body: &Value) {
    let new_set = fields_of(body, 0);
    let entries = live["metadata"]["managedFields"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let old_set = entries
        .iter()
        .find(|e| e["manager"] == "git-controller")
        .map(|e| e["fieldsV1"].clone());
    if let Some(old) = old_set {
        // Fields it owned before and no longer sends go (exact paths, like structured merge).
        let (mut old_paths, mut new_paths) = (Vec::new(), Vec::new());
        members(&old, &mut Vec::new(), &mut old_paths);
        members(&new_set, &mut Vec::new(), &mut new_paths);
        for p in old_paths.iter().filter(|p| !new_paths.contains(p)) {
            if let Some((last, parent)) = p.split_last() {
                let parent: Vec<&str> = parent.iter().map(String::as_str).collect();
                if let Some(map) = value_at_str_mut(live, &parent).and_then(Value::as_object_mut) {
                    map.remove(last);
                }
            }
        }
    }
    merge(live, body);
    let mut entries: Vec<Value> = entries
        .into_iter()
        .filter(|e| e["manager"] != "git-controller")
        .collect();
    entries.push(json!({"manager": "git-controller", "operation": "Apply", "fieldsType": "FieldsV1", "fieldsV1": new_set}));
    live["metadata"]["managedFields"] = Value::Array(entries);
}

/// The member paths of a `fieldsV1` set: nodes without members of their own.
fn members(set: &Value, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    let children: Vec<(&str, &Value)> = set
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.strip_prefix("f:")?, v)))
        .collect();
    if children.is_empty() {
        out.push(path.clone());
    }
    for (k, child) in children {
        path.push(k.to_owned());
        members(child, path, out);
        path.pop();
    }
}

fn case() -> impl Strategy<Value = Case> {
    (rules(), objects(), any::<bool>()).prop_map(|(rules, objects, prune)| {
        let mut case = Case::new(rules);
        case.options.prune = prune;
        for (name, place, in_inventory, git, live) in objects {
            if place != 1 {
                case = case.git(&format!("{name}.yaml"), git.clone());
            }
            if place != 0 {
                case = case.live(live);
            }
            if in_inventory {
                let kind = git["kind"].as_str().unwrap();
                let group = if kind == "Deployment" { "apps" } else { "" };
                case.inventory
                    .insert(ObjectId::new(group, kind, Some("default"), &name));
            }
        }
        case
    })
}

/// Inputs that were not read: at least one.
fn skipped() -> impl Strategy<Value = Vec<SkippedInput>> {
    let one = (
        prop::sample::select(vec!["broken.yaml", "latin1.yaml", "o0.yaml"]),
        prop::sample::select(vec![
            SkipReason::ParseError,
            SkipReason::NotUtf8,
            SkipReason::TooLarge,
            SkipReason::Symlink,
            SkipReason::BudgetExceeded,
            SkipReason::GenerateName,
            SkipReason::IncompleteObject,
        ]),
    );
    prop::collection::vec(one, 1..3).prop_map(|skipped| {
        skipped
            .into_iter()
            .map(|(path, reason)| SkippedInput::new(path, reason))
            .collect()
    })
}

/// Rules that did not parse, with the scope they could still select: at least one.
fn invalid_rules() -> impl Strategy<Value = Vec<InvalidRule>> {
    let one = (
        prop::sample::select(vec![vec![], vec!["ConfigMap"], vec!["Deployment"]]),
        prop::sample::select(vec![vec![], vec!["default"], vec!["elsewhere"]]),
        prop::sample::select(vec![None, Some("tier=front"), Some("tier!=front")]),
    );
    prop::collection::vec(one, 1..3).prop_map(|rules| {
        rules
            .into_iter()
            .enumerate()
            .map(|(i, (kinds, namespaces, selector))| {
                let mut r = Rule::new(format!("broken{i}"), SyncTo::Ignore);
                r.kinds = kinds.into_iter().map(String::from).collect();
                r.namespaces = namespaces.into_iter().map(String::from).collect();
                r.label_selector = selector.map(|s| LabelSelector::parse(s).unwrap());
                InvalidRule::new(r, "filters: not a JSON pointer")
            })
            .collect()
    })
}

/// Whether one of `invalid` could select the object `id` of `case`.
fn in_invalid_scope(case: &Case, invalid: &[InvalidRule], id: &ObjectId) -> bool {
    let types = types();
    let ty = types.iter().find(|t| t.kind == id.kind).unwrap();
    let (manifest, live) = sides(case, id);
    let labels_from = live.or(manifest).unwrap();
    invalid.iter().any(|r| r.rule.selects(id, ty, labels_from))
}

/// The manifest and the live object of `id` in `case`.
fn sides<'c>(case: &'c Case, id: &ObjectId) -> (Option<&'c Value>, Option<&'c Value>) {
    let manifest = case
        .manifests
        .iter()
        .find(|m| &m.id == id)
        .map(|m| &*m.object);
    (manifest, live_index(case, id).map(|i| &case.live[i]))
}

/// Whether the plan reports an action on `id` as held back for `cause`.
fn reported_held(plan: &Plan, id: &ObjectId, cause: HoldCause) -> bool {
    plan.diagnostics
        .iter()
        .any(|d| d.reason == DiagnosticReason::HeldBack(cause) && d.object.as_ref() == Some(id))
}

// --- carrying out a plan ---------------------------------------------------------------------

fn live_index(case: &Case, id: &ObjectId) -> Option<usize> {
    case.live
        .iter()
        .position(|l| l["kind"] == id.kind.as_str() && l["metadata"]["name"] == id.name.as_str())
}

fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                merge(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (t, p) => *t = p.clone(),
    }
}

/// Applies like the API server would: server-side apply where ownership is tracked, a plain
/// merge where the object has no `managedFields`.
fn apply(live: &mut Value, body: &Value) {
    if live["metadata"].get("managedFields").is_some() {
        server_side_apply(live, body);
    } else {
        merge(live, body);
    }
}

fn carry_out(case: &mut Case, plan: &Plan) {
    for action in &plan.to_git {
        match action {
            GitAction::Write {
                id,
                file,
                doc_index: Some(_),
                object,
                ..
            } => {
                let m = case.manifests.iter_mut().find(|m| &m.id == id).unwrap();
                assert_eq!(&m.file, file);
                m.object = object.clone().into();
            }
            GitAction::Write {
                file,
                doc_index: None,
                object,
                ..
            } => {
                *case = std::mem::take(case).git(file, object.clone());
            }
            GitAction::Remove { id, .. } => case.manifests.retain(|m| &m.id != id),
        }
    }
    for action in &plan.to_cluster {
        match action {
            ClusterAction::Apply {
                id, object, create, ..
            } => match live_index(case, id) {
                Some(i) => {
                    assert!(!create);
                    apply(&mut case.live[i], object);
                }
                None => {
                    assert!(create);
                    case.live.push(object.clone());
                }
            },
            ClusterAction::Delete { id } => {
                let i = live_index(case, id).unwrap();
                case.live.remove(i);
            }
        }
    }
}

// --- containment oracle ----------------------------------------------------------------------

/// Leaf paths where two values differ (objects are entered, everything else is a leaf). An
/// object on one side only is entered too: creating (or emptying) a map to hold a governed
/// member is a change of that member, not of the map.
fn diff_paths(
    a: Option<&Value>,
    b: Option<&Value>,
    path: &mut Vec<String>,
    out: &mut Vec<Vec<String>>,
) {
    fn as_map<'v>(
        v: Option<&'v Value>,
        empty: &'v Map<String, Value>,
    ) -> Option<&'v Map<String, Value>> {
        v.map_or(Some(empty), Value::as_object)
    }
    let empty = Map::new();
    match (as_map(a, &empty), as_map(b, &empty)) {
        (Some(x), Some(y)) if a.is_some() || b.is_some() => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                path.push(k.clone());
                diff_paths(x.get(k), y.get(k), path, out);
                path.pop();
            }
        }
        _ if a != b => out.push(path.clone()),
        _ => {}
    }
}

fn value_at<'v>(v: &'v Value, path: &[String]) -> Option<&'v Value> {
    path.iter().try_fold(v, |cur, k| cur.as_object()?.get(k))
}

/// The direction governing `path`, computed straight from the written rules.
fn governing(selected: &[&Rule], path: &[String], is_array: bool) -> Option<SyncTo> {
    let mut best: Option<(usize, i32, std::cmp::Reverse<&str>, u8, SyncTo)> = None;
    for r in selected {
        let root = [Pointer::root()];
        let filters: &[Pointer] = if r.filters.is_empty() {
            &root
        } else {
            &r.filters
        };
        for f in filters {
            let t = f.tokens();
            let spec = if path.starts_with(t) {
                t.len()
            } else if t.starts_with(path) && is_array {
                path.len()
            } else {
                continue;
            };
            let conservative = match r.sync_to {
                SyncTo::Ignore => 2,
                SyncTo::Git => 1,
                SyncTo::Kubernetes => 0,
            };
            let key = (
                spec,
                r.priority,
                std::cmp::Reverse(r.name.as_str()),
                conservative,
                r.sync_to,
            );
            if best.as_ref().is_none_or(|b| key > *b) {
                best = Some(key);
            }
        }
    }
    best.map(|b| b.4)
}

fn check_containment(case: &Case, plan: &Plan) -> Result<(), TestCaseError> {
    let types = types();
    for id in plan
        .to_cluster
        .iter()
        .map(ClusterAction::id)
        .chain(plan.to_git.iter().map(GitAction::id))
    {
        let ty = types.iter().find(|t| t.kind == id.kind).unwrap();
        let (manifest, live) = sides(case, id);
        let labels_from = live.or(manifest).unwrap();
        let selected: Vec<&Rule> = case
            .rules
            .iter()
            .filter(|r| r.selects(id, ty, labels_from))
            .collect();
        let is_array = |p: &[String]| {
            [manifest, live]
                .into_iter()
                .flatten()
                .any(|v| value_at(v, p).is_some_and(Value::is_array))
        };
        let must_be = |old: &Value, new: &Value, dir: SyncTo| -> Result<(), TestCaseError> {
            let mut paths = Vec::new();
            diff_paths(Some(old), Some(new), &mut Vec::new(), &mut paths);
            for p in paths {
                let got = governing(&selected, &p, is_array(&p));
                prop_assert_eq!(
                    got,
                    Some(dir),
                    "{} changed at /{} governed by {:?}",
                    id,
                    p.join("/"),
                    got
                );
            }
            Ok(())
        };
        let root = governing(&selected, &[], false);
        for action in plan.to_cluster.iter().filter(|a| a.id() == id) {
            match action {
                ClusterAction::Apply {
                    object,
                    create: false,
                    ..
                } => {
                    let live = live.unwrap();
                    let mut merged = live.clone();
                    apply(&mut merged, object);
                    let mut before = live.clone();
                    for v in [&mut before, &mut merged] {
                        if let Some(meta) = v["metadata"].as_object_mut() {
                            meta.remove("managedFields");
                        }
                    }
                    must_be(&before, &merged, SyncTo::Kubernetes)?;
                }
                ClusterAction::Apply { create: true, .. } | ClusterAction::Delete { .. } => {
                    prop_assert_eq!(root, Some(SyncTo::Kubernetes));
                }
            }
        }
        for action in plan.to_git.iter().filter(|a| a.id() == id) {
            match action {
                GitAction::Write {
                    doc_index: Some(_),
                    object,
                    ..
                } => {
                    must_be(manifest.unwrap(), object, SyncTo::Git)?;
                }
                GitAction::Write {
                    doc_index: None, ..
                }
                | GitAction::Remove { .. } => {
                    prop_assert_eq!(root, Some(SyncTo::Git));
                }
            }
        }
    }
    Ok(())
}

// --- the properties --------------------------------------------------------------------------

fn shuffle<T>(items: &mut [T], mut seed: u64) {
    for i in (1..items.len()).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        items.swap(i, (seed % (i as u64 + 1)) as usize);
    }
}

proptest! {
    // PROPTEST_CASES=20000 for a deeper search.
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(512)
    ))]

    #[test]
    fn carrying_out_a_plan_converges(case in case()) {
        let mut case = case;
        let plan = case.plan();
        carry_out(&mut case, &plan);
        let again = case.plan();
        prop_assert!(again.is_noop(), "first {:#?}\nthen {:#?}", plan, again);
    }

    #[test]
    fn input_order_does_not_matter(case in case(), seed in 1u64..) {
        let plan = case.plan();
        let mut shuffled = case.clone();
        shuffle(&mut shuffled.manifests, seed);
        shuffle(&mut shuffled.live, seed.rotate_left(7));
        shuffle(&mut shuffled.rules, seed.rotate_left(13));
        // `applied_live` holds positions in the input: the same objects, elsewhere.
        let objects = |case: &Case, mut plan: Plan| {
            let applied: Vec<Value> =
                plan.applied_live.iter().map(|&at| case.live[at].clone()).collect();
            plan.applied_live.clear();
            (plan, applied)
        };
        prop_assert_eq!(objects(&case, plan), objects(&shuffled, shuffled.plan()));
    }

    /// A store may keep each `fieldsV1` set as its JSON text (the controller's do): the plan
    /// is the same.
    #[test]
    fn ownership_sets_kept_as_text_plan_the_same(case in case()) {
        let plan = case.plan();
        let mut as_text = case.clone();
        let mut sets = 0;
        for live in &mut as_text.live {
            let entries = live
                .pointer_mut("/metadata/managedFields")
                .and_then(Value::as_array_mut);
            for entry in entries.into_iter().flatten() {
                if let Some(set) = entry.get_mut("fieldsV1") {
                    *set = Value::String(set.to_string());
                    sets += 1;
                }
            }
        }
        prop_assume!(sets > 0);
        prop_assert_eq!(plan, as_text.plan());
    }

    #[test]
    fn actions_touch_only_paths_their_rule_governs(case in case()) {
        let plan = case.plan();
        check_containment(&case, &plan)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(512)
    ))]

    /// The missing manifests may be in what was not read: nothing is deleted and no new file
    /// written, and each action left out is reported; everything else is planned as usual.
    #[test]
    fn an_incomplete_source_never_prunes_or_adds_files(case in case(), skipped in skipped()) {
        let complete = case.plan();
        let mut case = case;
        case.skipped = skipped;
        let plan = case.plan();
        for action in &plan.to_cluster {
            prop_assert!(!matches!(action, ClusterAction::Delete { .. }), "{:#?}", plan);
        }
        for action in &plan.to_git {
            prop_assert!(
                !matches!(action, GitAction::Write { doc_index: None, .. }),
                "{:#?}",
                plan
            );
        }
        for action in &complete.to_cluster {
            match action {
                ClusterAction::Delete { id } => {
                    prop_assert!(reported_held(&plan, id, HoldCause::IncompleteSource));
                }
                other => prop_assert!(plan.to_cluster.contains(other)),
            }
        }
        for action in &complete.to_git {
            match action {
                GitAction::Write { id, doc_index: None, .. } => {
                    prop_assert!(reported_held(&plan, id, HoldCause::IncompleteSource));
                }
                other => prop_assert!(plan.to_git.contains(other)),
            }
        }
    }

    /// Rules fail closed: no action touches an object an invalid rule could select, each
    /// action left out is reported, and objects outside its scope are planned as if it did
    /// not exist. The order of invalid rules and skipped inputs does not matter.
    #[test]
    fn invalid_rules_hold_back_everything_they_could_select(
        case in case(),
        invalid in invalid_rules(),
        seed in 1u64..,
    ) {
        let without = case.plan();
        let mut case = case;
        case.invalid_rules = invalid.clone();
        let plan = case.plan();
        let ids = plan.to_cluster.iter().map(ClusterAction::id)
            .chain(plan.to_git.iter().map(GitAction::id));
        for id in ids {
            prop_assert!(!in_invalid_scope(&case, &invalid, id), "{} acted on: {:#?}", id, plan);
        }
        for action in &without.to_cluster {
            if in_invalid_scope(&case, &invalid, action.id()) {
                prop_assert!(reported_held(&plan, action.id(), HoldCause::InvalidRule));
            } else {
                prop_assert!(plan.to_cluster.contains(action));
            }
        }
        for action in &without.to_git {
            if in_invalid_scope(&case, &invalid, action.id()) {
                prop_assert!(reported_held(&plan, action.id(), HoldCause::InvalidRule));
            } else {
                prop_assert!(plan.to_git.contains(action));
            }
        }
        prop_assert!(plan.noops.iter().all(|id| !in_invalid_scope(&case, &invalid, id)));

        let mut shuffled = case.clone();
        shuffled.invalid_rules.reverse();
        shuffle(&mut shuffled.invalid_rules, seed);
        shuffled.skipped = vec![
            SkippedInput::new("b.yaml", SkipReason::Symlink),
            SkippedInput::new("a.yaml", SkipReason::NotUtf8),
        ];
        case.skipped = shuffled.skipped.iter().rev().cloned().collect();
        prop_assert_eq!(case.plan(), shuffled.plan());
    }
}

#[test]
fn types_order_does_not_matter() {
    let case = Case::new(vec![rule("all", SyncTo::Git, &[])]).live(configmap("a", json!({})));
    let mut types = types();
    types.push(ResourceType::new("", "v2", "ConfigMap", "configmaps", true));
    let forward = plan_with(&case, &types);
    types.reverse();
    assert_eq!(forward, plan_with(&case, &types));
}
