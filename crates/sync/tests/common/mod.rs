//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::collections::BTreeSet;

use gitcontroller_sync::*;
use serde_json::{Value, json};

pub fn types() -> Vec<ResourceType> {
    vec![
        ResourceType::new("", "v1", "ConfigMap", "configmaps", true),
        ResourceType::new("", "v1", "Secret", "secrets", true),
        ResourceType::new("", "v1", "Namespace", "namespaces", false),
        ResourceType::new("", "v1", "ServiceAccount", "serviceaccounts", true),
        ResourceType::new("apps", "v1", "Deployment", "deployments", true),
        ResourceType::new(
            "snapshot.storage.k8s.io",
            "v1",
            "VolumeSnapshot",
            "volumesnapshots",
            true,
        ),
        ResourceType::new(
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRole",
            "clusterroles",
            false,
        ),
        ResourceType::new("rbac.authorization.k8s.io", "v1", "Role", "roles", true),
        ResourceType::new(
            "rbac.authorization.k8s.io",
            "v1",
            "RoleBinding",
            "rolebindings",
            true,
        ),
        // A custom resource: its names need not be DNS names.
        ResourceType::new("example.org", "v1", "Gadget", "gadgets", true),
    ]
}

/// The text of a fixture file.
pub fn fixture_text(name: &str) -> String {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap()
}

pub fn fixture(name: &str) -> Value {
    serde_json::from_str(&fixture_text(name)).unwrap()
}

/// A manifest for `object` in `file`, its identity resolved like `parse_manifests` does.
pub fn manifest(file: &str, doc_index: usize, object: Value) -> Manifest {
    manifest_of(file, doc_index, object, &types())
}

/// [`manifest`], its identity resolved against `types`.
pub fn manifest_of(
    file: &str,
    doc_index: usize,
    object: Value,
    types: &[ResourceType],
) -> Manifest {
    let text = serde_json::to_string(&object).unwrap();
    let (mut ms, diags) = parse_manifests(&[SourceFile::new("x.json", text)], types);
    assert!(diags.is_empty(), "{diags:?}");
    let mut m = ms.remove(0);
    m.file = file.to_owned();
    m.doc_index = doc_index;
    m
}

pub fn rule(name: &str, sync_to: SyncTo, filters: &[&str]) -> Rule {
    let mut r = Rule::new(name, sync_to);
    r.filters = filters.iter().map(|f| Pointer::parse(f).unwrap()).collect();
    r
}

pub fn ptr(s: &str) -> Pointer {
    Pointer::parse(s).unwrap()
}

pub fn configmap(name: &str, data: Value) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default"},
        "data": data
    })
}

pub fn cm_id(name: &str) -> ObjectId {
    ObjectId::new("", "ConfigMap", Some("default"), name)
}

/// Everything a plan needs, owned, with defaults.
#[derive(Clone, Debug, Default)]
pub struct Case {
    pub manifests: Vec<Manifest>,
    pub live: Vec<Value>,
    pub rules: Vec<Rule>,
    pub inventory: BTreeSet<ObjectId>,
    pub skipped: Vec<SkippedInput>,
    pub invalid_rules: Vec<InvalidRule>,
    pub options: PlanOptions,
}

impl Case {
    pub fn new(rules: Vec<Rule>) -> Self {
        Case {
            rules,
            ..Case::default()
        }
    }

    pub fn git(mut self, file: &str, object: Value) -> Self {
        let doc = self.manifests.iter().filter(|m| m.file == file).count();
        self.manifests.push(manifest(file, doc, object));
        self
    }

    pub fn live(mut self, object: Value) -> Self {
        self.live.push(object);
        self
    }

    pub fn plan(&self) -> Plan {
        plan_with(self, &types())
    }
}

/// The only cluster action of a plan, as (body, create, paths).
pub fn single_apply(plan: &Plan) -> (&Value, bool, Vec<String>) {
    match plan.to_cluster.as_slice() {
        [
            ClusterAction::Apply {
                object,
                create,
                paths,
                ..
            },
        ] => (
            object,
            *create,
            paths.iter().map(ToString::to_string).collect(),
        ),
        other => panic!("expected one apply, got {other:#?}\n{plan:#?}"),
    }
}

/// The only Git action of a plan, if it is a write: (file, doc_index, object, paths).
pub fn single_write(plan: &Plan) -> (&str, Option<usize>, &Value, Vec<String>) {
    match plan.to_git.as_slice() {
        [
            GitAction::Write {
                file,
                doc_index,
                object,
                paths,
                ..
            },
        ] => (
            file.as_str(),
            *doc_index,
            object,
            paths.iter().map(ToString::to_string).collect(),
        ),
        other => panic!("expected one write, got {other:#?}\n{plan:#?}"),
    }
}

/// The types of an OpenAPI v3 fixture (`tests/fixtures/openapi/<file>`), parsed.
pub fn openapi(file: &str) -> std::collections::BTreeMap<GroupVersionKind, TypeSchema> {
    parse_openapi_v3(&fixture(&format!("openapi/{file}"))).unwrap()
}

/// `types()` and a few more built-in types, each with its schema from the OpenAPI fixtures of
/// Kubernetes 1.36.
pub fn schema_types() -> Vec<ResourceType> {
    let mut schemas = openapi("api__v1.json");
    for file in [
        "apis__apps__v1.json",
        "apis__batch__v1.json",
        "apis__networking.k8s.io__v1.json",
    ] {
        schemas.extend(openapi(file));
    }
    let mut all = types();
    all.extend([
        ResourceType::new("", "v1", "Service", "services", true),
        ResourceType::new("", "v1", "Pod", "pods", true),
        ResourceType::new("apps", "v1", "StatefulSet", "statefulsets", true),
        ResourceType::new("batch", "v1", "CronJob", "cronjobs", true),
        ResourceType::new(
            "networking.k8s.io",
            "v1",
            "NetworkPolicy",
            "networkpolicies",
            true,
        ),
    ]);
    all.into_iter()
        .map(|t| {
            let gvk = GroupVersionKind::new(&t.group, &t.version, &t.kind);
            let schema = schemas.get(&gvk).cloned();
            t.with_schema(schema)
        })
        .collect()
}

/// Plans `case` with `types` instead of `types()`.
pub fn plan_with(case: &Case, types: &[ResourceType]) -> Plan {
    plan(&PlanInput {
        manifests: &case.manifests,
        live: &case.live,
        rules: &case.rules,
        types,
        inventory: &case.inventory,
        skipped: &case.skipped,
        invalid_rules: &case.invalid_rules,
        options: &case.options,
    })
}
