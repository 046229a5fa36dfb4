//! Property tests of comparing as the server stores objects, on a kind with a schema that
//! has every rule the planner knows: a quantity, an int-or-string, a boolean the server omits
//! when false, an atomic map, an atomic list and a list-map whose elements hold a quantity
//! and an omitted boolean.
//!
//! Plans are carried out against a simulated API server that behaves like the real one for
//! these rules: it stores quantities in the form it serves them, leaves out `false` and empty
//! lists and maps, and merges server-side applies by ownership (atomic values replaced whole,
//! list-map elements by key, fields the applier owned and no longer sends removed; a forced
//! apply takes fields over from their other owner). Someone else's changes are recorded as an
//! `Update` that takes over what it changed.

mod common;

use std::collections::BTreeSet;

use common::*;
use gitcontroller_sync::quantity::served;
use gitcontroller_sync::*;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

const QUANTITY: &str = "io.k8s.apimachinery.pkg.api.resource.Quantity";
const INT_OR_STRING: &str = "io.k8s.apimachinery.pkg.util.intstr.IntOrString";
const SCALARS: &[&str] = &["cpu", "port", "flag", "selector", "args"];

fn widget_types() -> Vec<ResourceType> {
    let r = |name: &str| json!({"allOf": [{"$ref": format!("#/components/schemas/{name}")}]});
    let doc = json!({"openapi": "3.0.0", "components": {"schemas": {
        QUANTITY: {"oneOf": [{"type": "string"}, {"type": "number"}]},
        INT_OR_STRING: {"type": "string", "format": "int-or-string"},
        "example.Port": {"type": "object", "properties": {
            "name": {"type": "string", "default": ""},
            "value": r(QUANTITY),
            "enabled": {"type": "boolean"}
        }},
        "example.Widget": {
            "type": "object",
            "x-kubernetes-group-version-kind": [{"group": "example.com", "version": "v1", "kind": "Widget"}],
            "properties": {
                "apiVersion": {"type": "string"},
                "kind": {"type": "string"},
                "metadata": {"type": "object", "properties": {
                    "name": {"type": "string"}, "namespace": {"type": "string"},
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}}
                }},
                "spec": {"type": "object", "properties": {
                    "cpu": r(QUANTITY),
                    "port": r(INT_OR_STRING),
                    "flag": {"type": "boolean"},
                    "selector": {"type": "object", "additionalProperties": {"type": "string"}, "x-kubernetes-map-type": "atomic"},
                    "args": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "atomic"},
                    "ports": {"type": "array", "items": {"$ref": "#/components/schemas/example.Port"},
                              "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]}
                }}
            }
        }
    }}});
    let schema = parse_openapi_v3(&doc)
        .unwrap()
        .remove(&GroupVersionKind::new("example.com", "v1", "Widget"));
    vec![ResourceType::new("example.com", "v1", "Widget", "widgets", true).with_schema(schema)]
}

// --- generators ------------------------------------------------------------------------------

fn quantity() -> impl Strategy<Value = Value> {
    let spelled = (
        prop::option::of("-?"),
        0u32..2100,
        prop::option::of((0u32..1000, 1usize..4)),
        prop::sample::select(vec!["", "m", "k", "M", "Ki", "Mi", "Gi", "e3", "E-3", "n"]),
    )
        .prop_map(|(sign, whole, fraction, suffix)| {
            let sign = if sign.is_some_and(|s| s == "-") {
                "-"
            } else {
                ""
            };
            let fraction = fraction
                .map(|(f, width)| format!(".{:0width$}", f % 10u32.pow(width as u32)))
                .unwrap_or_default();
            Value::from(format!("{sign}{whole}{fraction}{suffix}"))
        });
    prop_oneof![
        4 => spelled,
        1 => prop::sample::select(vec![json!(0.5), json!(2), json!(1024), json!(1.5)]),
    ]
}

fn port_element() -> impl Strategy<Value = (&'static str, Value)> {
    (
        prop::sample::select(vec!["p", "q", "r"]),
        prop::option::of(quantity()),
        prop::option::of(any::<bool>()),
    )
        .prop_map(|(name, value, enabled)| {
            let mut e = json!({"name": name});
            if let Some(v) = value {
                e["value"] = v;
            }
            if let Some(b) = enabled {
                e["enabled"] = json!(b);
            }
            (name, e)
        })
}

fn spec() -> impl Strategy<Value = Value> {
    (
        prop::option::of(quantity()),
        prop::option::of(prop::sample::select(vec![
            json!(80),
            json!("80"),
            json!("http"),
        ])),
        prop::option::of(any::<bool>()),
        prop::option::of(prop::collection::btree_map(
            prop::sample::select(vec!["app", "tier"]),
            prop::sample::select(vec!["a", "b"]),
            0..3,
        )),
        prop::option::of(prop::collection::vec(
            prop::sample::select(vec!["x", "y"]),
            0..3,
        )),
        prop::option::of(prop::collection::vec(port_element(), 0..4)),
    )
        .prop_map(|(cpu, port, flag, selector, args, ports)| {
            let mut spec = Map::new();
            let mut set = |k: &str, v: Option<Value>| {
                if let Some(v) = v {
                    spec.insert(k.to_owned(), v);
                }
            };
            set("cpu", cpu);
            set("port", port);
            set("flag", flag.map(Value::from));
            set("selector", selector.map(|m| json!(m)));
            set("args", args.map(|a| json!(a)));
            set(
                "ports",
                ports.map(|elements| {
                    let mut seen = BTreeSet::new();
                    Value::Array(
                        elements
                            .into_iter()
                            .filter(|(name, _)| seen.insert(*name))
                            .map(|(_, e)| e)
                            .collect(),
                    )
                }),
            );
            Value::Object(spec)
        })
}

/// Changes someone else makes to a live object.
#[derive(Clone, Debug)]
enum Change {
    SelectorGainsKey,
    Cpu(Value),
    FlagOn,
    AddsPort,
    Args,
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        Just(Change::SelectorGainsKey),
        quantity().prop_map(Change::Cpu),
        Just(Change::FlagOn),
        Just(Change::AddsPort),
        Just(Change::Args),
    ]
}

#[derive(Clone, Copy, Debug)]
enum Rules {
    Apply,
    ApplyButCpuFromCluster,
    ApplyButPortsFromCluster,
    Export,
}

fn rules_of(rules: Rules) -> Vec<Rule> {
    let from_git = rule("from-git", SyncTo::Kubernetes, &[]);
    match rules {
        Rules::Apply => vec![from_git],
        Rules::ApplyButCpuFromCluster => vec![from_git, rule("cpu", SyncTo::Git, &["/spec/cpu"])],
        Rules::ApplyButPortsFromCluster => {
            vec![from_git, rule("ports", SyncTo::Git, &["/spec/ports"])]
        }
        Rules::Export => vec![rule("to-git", SyncTo::Git, &[])],
    }
}

fn widget(spec: Value) -> Value {
    json!({"apiVersion": "example.com/v1", "kind": "Widget",
           "metadata": {"name": "w", "namespace": "default"}, "spec": spec})
}

// --- the simulated API server ----------------------------------------------------------------

/// What the server stores for a written spec: quantities as served, `false` and empty lists
/// and maps left out (`omitempty`), int-or-string as written.
fn store(spec: &Value) -> Value {
    let quantity = |v: &Value| match v {
        Value::String(s) => served(s).map(Value::from).unwrap_or_else(|_| v.clone()),
        Value::Number(n) => served(&n.to_string())
            .map(Value::from)
            .unwrap_or_else(|_| v.clone()),
        _ => v.clone(),
    };
    let mut out = Map::new();
    for (k, v) in spec.as_object().into_iter().flatten() {
        let stored = match k.as_str() {
            "cpu" => quantity(v),
            "ports" => Value::Array(
                v.as_array()
                    .into_iter()
                    .flatten()
                    .map(|e| {
                        let mut e = e.clone();
                        if let Some(q) = e.get("value").map(quantity) {
                            e["value"] = q;
                        }
                        if e.get("enabled") == Some(&json!(false)) {
                            e.as_object_mut().unwrap().remove("enabled");
                        }
                        e
                    })
                    .collect(),
            ),
            _ => v.clone(),
        };
        let omitted = stored == json!(false)
            || stored.as_array().is_some_and(Vec::is_empty)
            || stored.as_object().is_some_and(Map::is_empty)
            || stored.is_null();
        if !omitted {
            out.insert(k.clone(), stored);
        }
    }
    Value::Object(out)
}

fn port_key(name: &str) -> String {
    format!("k:{}", json!({"name": name}))
}

/// The `fieldsV1` of what an applied spec sets (as sent: zero values included).
fn spec_fields(spec: &Value) -> Value {
    let mut set = Map::new();
    for (k, v) in spec.as_object().into_iter().flatten() {
        if v.is_null() {
            continue;
        }
        if k == "ports" {
            let mut elements = Map::new();
            for e in v.as_array().into_iter().flatten() {
                let mut fields = json!({".": {}});
                for f in e.as_object().into_iter().flatten().map(|(f, _)| f) {
                    fields[format!("f:{f}")] = json!({});
                }
                elements.insert(port_key(e["name"].as_str().unwrap()), fields);
            }
            set.insert("f:ports".into(), Value::Object(elements));
        } else {
            set.insert(format!("f:{k}"), json!({}));
        }
    }
    json!({"f:spec": set})
}

fn entry<'v>(live: &'v mut Value, manager: &str) -> Option<&'v mut Value> {
    live["metadata"]["managedFields"]
        .as_array_mut()?
        .iter_mut()
        .find(|e| e["manager"] == manager)
}

fn owned_spec(live: &Value, manager: &str) -> Map<String, Value> {
    live["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["manager"] == manager)
        .and_then(|e| e["fieldsV1"]["f:spec"].as_object().cloned())
        .unwrap_or_default()
}

/// Server-side apply of `body` by git-controller, with force.
fn apply(live: Option<&Value>, body: &Value) -> Value {
    let empty = json!({"metadata": {"managedFields": []}, "spec": {}});
    let mut out = live.cloned().unwrap_or(empty);
    let before = owned_spec(&out, "git-controller");
    let theirs = owned_spec(&out, "someone");
    let sent = body["spec"].as_object().cloned().unwrap_or_default();
    let mut spec = out["spec"].as_object().cloned().unwrap_or_default();
    for k in SCALARS {
        match sent.get(*k).filter(|v| !v.is_null()) {
            Some(v) => {
                spec.insert((*k).to_owned(), v.clone());
            }
            None if before.contains_key(&format!("f:{k}"))
                && !theirs.contains_key(&format!("f:{k}")) =>
            {
                spec.remove(*k);
            }
            None => {}
        }
    }
    // The list-map: applied elements in the applied order, then the others still owned by
    // someone else.
    let live_ports = spec
        .get("ports")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let applied: Vec<Value> = sent
        .get("ports")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let name = |e: &Value| e["name"].as_str().unwrap_or_default().to_owned();
    let theirs_ports = theirs.get("f:ports").cloned().unwrap_or(json!({}));
    let mut ports = applied.clone();
    for e in &live_ports {
        let key = port_key(&name(e));
        if !applied.iter().any(|a| name(a) == name(e)) && theirs_ports.get(&key).is_some() {
            ports.push(e.clone());
        }
    }
    spec.insert("ports".into(), Value::Array(ports));
    out["spec"] = store(&Value::Object(spec));
    for k in ["apiVersion", "kind"] {
        out[k] = body[k].clone();
    }
    out["metadata"]["name"] = body["metadata"]["name"].clone();
    out["metadata"]["namespace"] = body["metadata"]["namespace"].clone();
    // git-controller now owns exactly what it sent; someone else loses those fields.
    let ours = spec_fields(&Value::Object(sent));
    if let Some(e) = entry(&mut out, "someone") {
        let set = e["fieldsV1"]["f:spec"].as_object_mut().unwrap();
        for (k, v) in ours["f:spec"].as_object().unwrap() {
            if k == "f:ports" {
                if let Some(p) = set.get_mut("f:ports").and_then(Value::as_object_mut) {
                    p.retain(|key, _| v.get(key).is_none());
                }
            } else {
                set.remove(k);
            }
        }
    }
    let mut entries: Vec<Value> = out["metadata"]["managedFields"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e["manager"] != "git-controller")
        .collect();
    entries.push(
        json!({"manager": "git-controller", "operation": "Apply", "apiVersion": "example.com/v1",
        "fieldsType": "FieldsV1", "fieldsV1": ours}),
    );
    out["metadata"]["managedFields"] = Value::Array(entries);
    out
}

/// Someone else changes the live object with an update, taking over what it changed.
fn update(live: &mut Value, change: &Change) {
    let spec = live["spec"].as_object_mut().unwrap();
    let taken = match change {
        Change::SelectorGainsKey => {
            let mut selector = spec.get("selector").cloned().unwrap_or(json!({}));
            selector["extra"] = json!("x");
            spec.insert("selector".into(), selector);
            ("f:selector", json!({}))
        }
        Change::Cpu(q) => {
            spec.insert("cpu".into(), q.clone());
            ("f:cpu", json!({}))
        }
        Change::FlagOn => {
            spec.insert("flag".into(), json!(true));
            ("f:flag", json!({}))
        }
        Change::Args => {
            spec.insert("args".into(), json!(["edited"]));
            ("f:args", json!({}))
        }
        Change::AddsPort => {
            let mut ports = spec.get("ports").cloned().unwrap_or(json!([]));
            if ports
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["name"] == "side")
            {
                return;
            }
            ports
                .as_array_mut()
                .unwrap()
                .push(json!({"name": "side", "value": "1"}));
            spec.insert("ports".into(), ports);
            let key = port_key("side");
            (
                "f:ports",
                json!({key: {".": {}, "f:name": {}, "f:value": {}}}),
            )
        }
    };
    let stored = store(&live["spec"]);
    live["spec"] = stored;
    let (field, set) = taken;
    if let Some(e) = entry(live, "git-controller") {
        let ours = e["fieldsV1"]["f:spec"].as_object_mut().unwrap();
        if field != "f:ports" {
            ours.remove(field);
        }
    }
    if entry(live, "someone").is_none() {
        live["metadata"]["managedFields"]
            .as_array_mut()
            .unwrap()
            .push(
                json!({"manager": "someone", "operation": "Update", "apiVersion": "example.com/v1",
                "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {}}}),
            );
    }
    let theirs = entry(live, "someone").unwrap()["fieldsV1"]["f:spec"]
        .as_object_mut()
        .unwrap();
    match (theirs.get_mut(field), set) {
        (Some(Value::Object(have)), Value::Object(more)) => have.extend(more),
        (_, set) => {
            theirs.insert(field.to_owned(), set);
        }
    }
}

/// A spec with its list-map in key order (where server-side apply puts elements only
/// someone else owns is not what is compared).
fn sorted_ports(spec: &Value) -> Value {
    let mut spec = spec.clone();
    if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
        ports.sort_by_key(|e| e["name"].as_str().unwrap_or_default().to_owned());
    }
    spec
}

// --- the properties --------------------------------------------------------------------------

fn plan_of(manifest: &Value, live: &Value, rules: &[Rule], types: &[ResourceType]) -> Plan {
    let manifests = [manifest_of("w.yaml", 0, manifest.clone(), types)];
    plan(&PlanInput {
        manifests: &manifests,
        live: std::slice::from_ref(live),
        rules,
        types,
        inventory: &BTreeSet::new(),
        skipped: &[],
        invalid_rules: &[],
        options: &PlanOptions::default(),
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(512)
    ))]

    /// What git-controller applied, as the server stored it, is in sync with the manifest.
    #[test]
    fn an_applied_manifest_is_in_sync(spec in spec()) {
        let types = widget_types();
        let manifest = widget(spec);
        let live = apply(None, &manifest);
        let plan = plan_of(&manifest, &live, &rules_of(Rules::Apply), &types);
        prop_assert!(plan.is_noop() && plan.to_confirm.is_empty(), "live {:#}\n{:#?}", live, plan);
    }

    /// Carrying out a plan and planning again yields no action, whatever was applied before,
    /// whatever someone else changed since and whatever Git says now.
    #[test]
    fn carrying_out_a_plan_converges(
        before in spec(),
        now in spec(),
        unchanged_in_git in any::<bool>(),
        changes in prop::collection::vec(change(), 0..3),
        rules in prop::sample::select(vec![
            Rules::Apply, Rules::ApplyButCpuFromCluster, Rules::ApplyButPortsFromCluster, Rules::Export,
        ]),
    ) {
        let types = widget_types();
        let rules_name = rules;
        let rules = rules_of(rules);
        let mut live = apply(None, &widget(before.clone()));
        for c in &changes {
            update(&mut live, c);
        }
        let mut manifest = widget(if unchanged_in_git { before } else { now });
        let first = plan_of(&manifest, &live, &rules, &types);
        for action in &first.to_cluster {
            if let ClusterAction::Apply { object, .. } = action {
                live = apply(Some(&live), object);
            }
        }
        for action in &first.to_git {
            if let GitAction::Write { object, .. } = action {
                manifest = object.clone();
            }
        }
        let again = plan_of(&manifest, &live, &rules, &types);
        prop_assert!(
            again.is_noop() && again.to_confirm.is_empty(),
            "first {:#?}\nlive {:#}\nmanifest {:#}\nthen {:#?}", first, live, manifest, again
        );
        // In sync means what the server says: applying Git now would change nothing.
        if matches!(rules_name, Rules::Apply) {
            let reapplied = apply(Some(&live), &manifest);
            prop_assert_eq!(
                sorted_ports(&reapplied["spec"]), sorted_ports(&live["spec"]),
                "manifest {:#}", manifest
            );
        }
    }

    /// Normalizing is idempotent, and equality as stored is symmetric and agrees with
    /// comparing normalized values.
    #[test]
    fn normalization_is_idempotent_and_symmetric(a in spec(), b in spec()) {
        let types = widget_types();
        let at = types[0].schema.as_ref().unwrap().at(&["spec"]);
        let (na, nb) = (normalize(&a, at), normalize(&b, at));
        prop_assert_eq!(&normalize(&na, at), &na);
        prop_assert_eq!(stored_equal(&a, &b, at), stored_equal(&b, &a, at));
        prop_assert_eq!(stored_equal(&a, &b, at), na == nb, "{:#} {:#}", na, nb);
        prop_assert!(stored_equal(&a, &na, at), "{:#} {:#}", a, na);
        prop_assert!(stored_equal(&store(&a), &a, at) || a.get("flag") == Some(&json!(false))
            || a["ports"].as_array().is_some_and(|p| p.iter().any(|e| e.get("enabled") == Some(&json!(false)))),
            "{:#} stored as {:#}", a, store(&a));
    }
}

#[test]
fn the_simulation_drops_what_the_server_drops() {
    let live = apply(
        None,
        &widget(
            json!({"cpu": "2000m", "flag": false, "args": [], "ports": [{"name": "p", "value": 0.5, "enabled": false}]}),
        ),
    );
    assert_eq!(
        live["spec"],
        json!({"cpu": "2", "ports": [{"name": "p", "value": "500m"}]})
    );
    let ours = owned_spec(&live, "git-controller");
    assert!(
        ours.contains_key("f:flag"),
        "ownership of the omitted false is recorded"
    );
}
