//! Comparing as the API server stores objects: manifests against live objects captured from a
//! Kubernetes 1.36 API server (`tests/fixtures/server`), with the types' OpenAPI schemas.
//! Each case also shows what the planner concluded without a schema, where that differs.

mod common;

use common::*;
use gitcontroller_sync::*;
use serde_json::{Value, json};

/// The text of a fixture file.
fn text(name: &str) -> String {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(path).unwrap()
}

/// The single manifest of a YAML fixture.
fn yaml(name: &str) -> Value {
    serde_saphyr::from_str(&text(name)).unwrap()
}

fn case(manifest: Value, live: Value, types: &[ResourceType]) -> Case {
    let mut case = Case::new(vec![rule("all-from-git", SyncTo::Kubernetes, &[])]);
    case.manifests
        .push(manifest_of("app.yaml", 0, manifest, types));
    case.live(live)
}

/// The schema types with the given kinds' schemas taken away.
fn without_schema(kinds: &[&str]) -> Vec<ResourceType> {
    schema_types()
        .into_iter()
        .map(|t| {
            if kinds.contains(&t.kind.as_str()) {
                t.with_schema(None)
            } else {
                t
            }
        })
        .collect()
}

fn managed_fields(live: &mut Value) -> &mut Vec<Value> {
    live["metadata"]["managedFields"].as_array_mut().unwrap()
}

#[test]
fn drift_inside_an_atomic_map_is_corrected() {
    // Applied by git-controller, then `kubectl patch` added `tier: x` to the selector; the
    // patch took the selector over (its managedFields entry owns `f:selector`).
    let live = fixture("server/service-selector-patched.json");
    assert_eq!(live["spec"]["selector"], json!({"app": "web", "tier": "x"}));
    let types = schema_types();
    let c = case(yaml("server/service-selector.yaml"), live, &types);

    let plan = plan_with(&c, &types);
    let (body, create, paths) = single_apply(&plan);
    assert!(!create);
    assert_eq!(paths, ["/spec"]);
    // Server-side apply replaces an atomic map whole: this body removes `tier`.
    assert_eq!(body["spec"]["selector"], json!({"app": "web"}));

    // Without the schema a key only the live map has looked like a server default.
    let plan = plan_with(&c, &without_schema(&["Service"]));
    assert!(plan.is_noop(), "{plan:#?}");
}

#[test]
fn a_key_removed_from_an_atomic_map_in_git_is_applied() {
    // The selector as git-controller applied it earlier, still owned by git-controller.
    let mut live = fixture("server/service-selector-patched.json");
    managed_fields(&mut live).retain(|e| e["manager"] == "git-controller");
    managed_fields(&mut live)[0]["fieldsV1"]["f:spec"]["f:selector"] = json!({});
    let types = schema_types();
    let mut manifest = yaml("server/service-selector.yaml");
    manifest["spec"]["selector"] = json!({"app": "web", "tier": "x"});
    let same = case(manifest, live.clone(), &types);
    assert!(plan_with(&same, &types).is_noop());

    let fewer = case(yaml("server/service-selector.yaml"), live, &types);
    let plan = plan_with(&fewer, &types);
    let (body, _, paths) = single_apply(&plan);
    assert_eq!(paths, ["/spec"]);
    assert_eq!(body["spec"]["selector"], json!({"app": "web"}));
}

#[test]
fn quantities_zero_values_and_empty_lists_as_stored() {
    // `cpu: 2000m` served as "2", `cpu: 0.5` as "500m", `readOnly: false` and `env: []` not
    // stored at all.
    let live = fixture("server/deployment-zero-values-applied.json");
    let container = &live["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["resources"]["limits"]["cpu"], "2");
    assert_eq!(container["resources"]["requests"]["cpu"], "500m");
    assert_eq!(container["volumeMounts"][0].get("readOnly"), None);
    assert_eq!(container.get("env"), None);
    let manifest = yaml("server/deployment-zero-values.yaml");
    let types = schema_types();
    let c = case(manifest.clone(), live.clone(), &types);
    let plan = plan_with(&c, &types);
    assert!(plan.is_noop() && plan.to_confirm.is_empty(), "{plan:#?}");
    assert_eq!(plan.noops.len(), 1);

    // Without the schema every one of them was drift, applied on every sync.
    let plan = plan_with(&c, &without_schema(&["Deployment"]));
    assert_eq!(single_apply(&plan).2, ["/spec"]);

    // A real change of a quantity still is one.
    let mut changed = manifest;
    changed["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"] =
        json!("2500m");
    let plan = plan_with(&case(changed, live, &types), &types);
    assert_eq!(single_apply(&plan).2, ["/spec"]);
}

#[test]
fn zero_values_nobody_applied_are_applied_once() {
    // Made by `kubectl create`: the server dropped `readOnly: false` before recording
    // ownership, so nothing says it was ever set. One apply makes it ours (and then it
    // compares equal, as the previous test shows).
    let live = fixture("server/deployment-zero-values-created.json");
    let mut manifest = yaml("server/deployment-zero-values.yaml");
    manifest["metadata"]["name"] = json!("probe2");
    let types = schema_types();
    let plan = plan_with(&case(manifest.clone(), live.clone(), &types), &types);
    let (body, _, paths) = single_apply(&plan);
    assert_eq!(paths, ["/spec"]);
    assert_eq!(
        body["spec"]["template"]["spec"]["containers"][0]["volumeMounts"][0]["readOnly"],
        json!(false)
    );

    // Only the zero value made it differ.
    manifest["spec"]["template"]["spec"]["containers"][0]["volumeMounts"][0]
        .as_object_mut()
        .unwrap()
        .remove("readOnly");
    let plan = plan_with(&case(manifest, live, &types), &types);
    assert!(plan.is_noop(), "{plan:#?}");
}

#[test]
fn string_data_is_compared_with_data() {
    let live = fixture("server/secret-string-data.json");
    assert_eq!(live["data"]["password"], "aHVudGVyMg==");
    assert_eq!(live.get("stringData"), None);
    let manifest = yaml("server/secret-string-data.yaml");
    let types = schema_types();
    let plan = plan_with(&case(manifest.clone(), live.clone(), &types), &types);
    assert!(plan.is_noop(), "{plan:#?}");

    let mut changed = manifest;
    changed["stringData"]["password"] = json!("hunter3");
    let plan = plan_with(&case(changed, live, &types), &types);
    let (body, _, paths) = single_apply(&plan);
    assert_eq!(paths, ["/data"]);
    assert_eq!(
        body["data"],
        json!({"user": "YWRtaW4=", "password": "aHVudGVyMw=="})
    );
}

#[test]
fn bytes_compare_decoded() {
    let live = fixture("server/secret-string-data.json");
    let manifest = json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "s1", "namespace": "default"},
        "data": {"user": "YWRt\naW4=", "password": "aHVudGVyMg=="}
    });
    let types = schema_types();
    let plan = plan_with(&case(manifest.clone(), live.clone(), &types), &types);
    assert!(plan.is_noop(), "{plan:#?}");
    let plan = plan_with(&case(manifest, live, &types), &without_schema(&["Secret"]));
    assert_eq!(single_apply(&plan).2, ["/data"]);
}

#[test]
fn int_or_string_keeps_its_json_type() {
    let live = fixture("server/service-selector-patched.json");
    assert_eq!(live["spec"]["ports"][0]["targetPort"], json!(8080));
    let mut manifest = yaml("server/service-selector.yaml");
    manifest["spec"]["selector"] = json!({"app": "web", "tier": "x"});
    let types = schema_types();
    // The port number 8080 and the port named "8080" are different values.
    manifest["spec"]["ports"][0]["targetPort"] = json!("8080");
    let plan = plan_with(&case(manifest.clone(), live.clone(), &types), &types);
    assert_eq!(single_apply(&plan).2, ["/spec"]);
    manifest["spec"]["ports"][0]["targetPort"] = json!(8080);
    let plan = plan_with(&case(manifest, live, &types), &types);
    assert!(plan.is_noop(), "{plan:#?}");
}

fn podinfo() -> (Value, Value) {
    let mut manifest = yaml("podinfo/deployment.yaml");
    manifest["metadata"]["namespace"] = json!("podinfo");
    (manifest, fixture("server/podinfo-deployment.json"))
}

fn containers(v: &mut Value) -> &mut Vec<Value> {
    v["spec"]["template"]["spec"]["containers"]
        .as_array_mut()
        .unwrap()
}

#[test]
fn list_map_elements_another_manager_added_are_not_drift() {
    let (manifest, mut live) = podinfo();
    // A sidecar injected by someone else.
    containers(&mut live).push(json!({"name": "proxy", "image": "envoy"}));
    managed_fields(&mut live).push(json!({
        "manager": "injector", "operation": "Update", "apiVersion": "apps/v1", "fieldsType": "FieldsV1",
        "fieldsV1": {"f:spec": {"f:template": {"f:spec": {"f:containers": {
            "k:{\"name\":\"proxy\"}": {".": {}, "f:name": {}, "f:image": {}}
        }}}}}
    }));
    let types = schema_types();
    let c = case(manifest, live, &types);
    assert!(plan_with(&c, &types).is_noop());
    // Without the schema the array had to match in length: applied on every sync.
    let plan = plan_with(&c, &without_schema(&["Deployment"]));
    assert_eq!(single_apply(&plan).2, ["/spec"]);
}

#[test]
fn list_map_elements_removed_from_git_or_reordered_are_drift() {
    let types = schema_types();
    let (manifest, mut live) = podinfo();
    // A second container git-controller applied earlier.
    containers(&mut live).push(json!({"name": "old", "image": "old"}));
    managed_fields(&mut live)[0]["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"old\"}"] =
        json!({".": {}, "f:name": {}, "f:image": {}});
    let plan = plan_with(&case(manifest.clone(), live.clone(), &types), &types);
    assert_eq!(single_apply(&plan).2, ["/spec"]);

    // Git has both, in the other order: applying reorders them.
    let mut both = manifest;
    containers(&mut both).insert(0, json!({"name": "old", "image": "old"}));
    let plan = plan_with(&case(both.clone(), live.clone(), &types), &types);
    assert_eq!(single_apply(&plan).2, ["/spec"]);
    containers(&mut both).rotate_left(1);
    let plan = plan_with(&case(both, live, &types), &types);
    assert!(plan.is_noop(), "{plan:#?}");
}

/// A StatefulSet with a volume claim template as a full kube-apiserver returns it: the
/// template gained `apiVersion`, `kind`, `volumeMode` and a `status`, which the schema does
/// not publish as defaults but the export's table of server defaults knows. `template_owner`
/// owns `volumeClaimTemplates` (an atomic list); `storage_class`, if any, is in the live
/// template but not in Git.
fn statefulset(template_owner: &str, storage_class: Option<&str>) -> (Value, Value) {
    let manifest = json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "db", "namespace": "default"},
        "spec": {
            "serviceName": "db",
            "selector": {"matchLabels": {"app": "db"}},
            "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "db", "image": "postgres"}]}},
            "volumeClaimTemplates": [{
                "metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
            }]
        }
    });
    let mut live = manifest.clone();
    live["spec"]["volumeClaimTemplates"][0] = json!({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}, "volumeMode": "Filesystem"},
        "status": {"phase": "Pending"}
    });
    if let Some(class) = storage_class {
        live["spec"]["volumeClaimTemplates"][0]["spec"]["storageClassName"] = json!(class);
    }
    let mut spec_fields = json!({
        "f:serviceName": {}, "f:selector": {},
        "f:template": {"f:metadata": {"f:labels": {"f:app": {}}}, "f:spec": {"f:containers": {
            "k:{\"name\":\"db\"}": {".": {}, "f:name": {}, "f:image": {}}}}}
    });
    let mut entries = vec![];
    if template_owner == "git-controller" {
        spec_fields["f:volumeClaimTemplates"] = json!({});
    } else {
        entries.push(
            json!({"manager": template_owner, "operation": "Update", "apiVersion": "apps/v1",
            "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:volumeClaimTemplates": {}}}}),
        );
    }
    entries.push(
        json!({"manager": "git-controller", "operation": "Apply", "apiVersion": "apps/v1",
        "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": spec_fields}}),
    );
    live["metadata"]["managedFields"] = Value::Array(entries);
    (manifest, live)
}

#[test]
fn known_server_defaults_inside_atomic_values_are_not_drift() {
    let types = schema_types();
    for owner in ["git-controller", "kubectl-edit"] {
        let (manifest, live) = statefulset(owner, None);
        let plan = plan_with(&case(manifest, live, &types), &types);
        assert!(
            plan.is_noop() && plan.to_confirm.is_empty(),
            "{owner}: {plan:#?}"
        );
    }
}

#[test]
fn other_members_inside_atomic_values_we_own_need_the_server_to_tell() {
    // A storage class in the live template we own: applied from an earlier Git version (then
    // applying removes it) or added by the server (then it stays) — only the server knows.
    let types = schema_types();
    let (manifest, live) = statefulset("git-controller", Some("fast"));
    let plan = plan_with(&case(manifest, live, &types), &types);
    // Not applied on every sync, not called in sync either: left to a server-side dry-run.
    assert!(plan.is_noop() && plan.noops.is_empty(), "{plan:#?}");
    match plan.to_confirm.as_slice() {
        [
            ClusterAction::Apply {
                object,
                create: false,
                paths,
                ..
            },
        ] => {
            assert_eq!(paths, &[ptr("/spec")]);
            assert_eq!(
                object["spec"]["volumeClaimTemplates"][0]["metadata"]["name"],
                "data"
            );
            assert_eq!(
                object["spec"]["volumeClaimTemplates"][0]["spec"].get("storageClassName"),
                None
            );
        }
        other => panic!("expected one apply to confirm, got {other:#?}"),
    }
}

#[test]
fn atomic_values_someone_else_changed_are_drift() {
    let types = schema_types();
    let (manifest, live) = statefulset("kubectl-edit", Some("fast"));
    let plan = plan_with(&case(manifest, live, &types), &types);
    assert_eq!(single_apply(&plan).2, ["/spec"]);
    assert!(plan.to_confirm.is_empty());
}

#[test]
fn secret_write_back_keeps_string_data_that_still_holds() {
    // A git rule on `data`. The server owns `stringData.password` to git-controller but
    // stores `data.password`: the export must not lose it.
    let live = fixture("server/secret-string-data.json");
    let mut c = case(
        yaml("server/secret-string-data.yaml"),
        live.clone(),
        &schema_types(),
    );
    c.rules.push(rule("data-to-git", SyncTo::Git, &["/data"]));
    c.options.allow_plaintext_secrets = true;
    let plan = plan_with(&c, &schema_types());
    assert!(plan.is_noop(), "{plan:#?}");

    // Live `user` changed, `password` did not.
    let mut live = live;
    live["data"]["user"] = json!("cm9vdA=="); // root
    c.live = vec![live];
    let plan = plan_with(&c, &schema_types());
    assert!(plan.to_cluster.is_empty(), "{plan:#?}");
    let (_, _, object, paths) = single_write(&plan);
    assert_eq!(paths, ["/data"]);
    assert_eq!(object["data"], json!({"user": "cm9vdA=="}));
    assert_eq!(object["stringData"], json!({"password": "hunter2"}));

    // The live password changed too: it leaves stringData.
    let mut live = fixture("server/secret-string-data.json");
    live["data"]["password"] = json!("bmV3");
    c.live = vec![live];
    let plan = plan_with(&c, &schema_types());
    let (_, _, object, _) = single_write(&plan);
    assert_eq!(
        object["data"],
        json!({"user": "YWRtaW4=", "password": "bmV3"})
    );
    assert_eq!(object.get("stringData"), None);
}

#[test]
fn applies_to_confirm_are_held_back_by_invalid_rules_too() {
    let types = schema_types();
    let (manifest, live) = statefulset("git-controller", Some("fast"));
    let mut c = case(manifest, live, &types);
    let mut broken = rule("protect", SyncTo::Ignore, &[]);
    broken.kinds = vec!["StatefulSet".into()];
    c.invalid_rules = vec![InvalidRule::new(
        broken,
        "labelSelector: unclosed parenthesis",
    )];
    let plan = plan_with(&c, &types);
    assert!(
        plan.to_confirm.is_empty() && plan.noops.is_empty(),
        "{plan:#?}"
    );
    assert!(
        plan.diagnostics
            .iter()
            .any(|d| d.reason == DiagnosticReason::HeldBack(HoldCause::InvalidRule)),
        "{:#?}",
        plan.diagnostics
    );
}
