//! The clean export on objects as the API server really serves them.

mod common;

use std::collections::BTreeSet;

use common::fixture;
use gitcontroller_sync::export::{LAST_APPLIED_ANNOTATION, clean, clean_against};
use gitcontroller_sync::*;
use serde_json::{Value, json};

/// What a person writes for the Deployment of these fixtures; `image` differs.
fn web_deployment(image: &str) -> serde_json::Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{
                    "image": image,
                    "name": "web",
                    "ports": [{"containerPort": 80}]
                }]}
            }
        }
    })
}

#[test]
fn object_made_by_kubectl_create_loses_its_defaults_by_the_table() {
    // `create` is an Update: the API server attributes the defaulted fields to kubectl-create,
    // so ownership keeps them; the defaults table removes them (and the Deployment
    // controller's revision annotation). Status, server metadata and the unowned
    // `template.metadata.creationTimestamp: null` go too.
    let export = clean(&fixture("deployment-kubectl-create.json"));
    assert_eq!(export, web_deployment("nginx:1.27"));
}

#[test]
fn object_made_by_server_side_apply_drops_unowned_defaults() {
    // Apply owns only what was sent; kubectl-set owns the image it changed;
    // kube-controller-manager owns its annotation, which the table removes. Server defaults
    // are owned by nobody.
    let export = clean(&fixture("deployment-server-side-apply.json"));
    assert_eq!(export, web_deployment("nginx:1.28"));
}

#[test]
fn defaults_git_spells_out_stay() {
    // A human wrote some defaults; exporting against that manifest keeps exactly those.
    let mut manifest = web_deployment("nginx:1.27");
    manifest["spec"]["revisionHistoryLimit"] = json!(10);
    manifest["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] =
        json!("IfNotPresent");
    let live = fixture("deployment-kubectl-create.json");
    assert_eq!(clean_against(&live, &manifest), manifest);
    // A value Git spells differently from the live default is not kept: the live side wins.
    manifest["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = json!("Always");
    assert!(
        clean_against(&live, &manifest)["spec"]["template"]["spec"]["containers"][0]
            .get("imagePullPolicy")
            .is_none()
    );
}

#[test]
fn object_changed_by_update_keeps_every_writers_fields() {
    // Created by client-side apply, then edited: both writers' fields stay, the
    // last-applied annotation goes and takes the emptied annotations map with it.
    let export = clean(&fixture("configmap-updated.json"));
    assert_eq!(
        export,
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "settings", "namespace": "default", "labels": {"team": "payments"}},
            "data": {"level": "info", "timeout": "30s"}
        })
    );
}

#[test]
fn set_lists_keep_owned_values() {
    let export = clean(&fixture("volumesnapshot.json"));
    assert_eq!(
        export["metadata"]["finalizers"],
        json!([
            "snapshot.storage.kubernetes.io/volumesnapshot-as-source-protection",
            "snapshot.storage.kubernetes.io/volumesnapshot-bound-protection"
        ])
    );
    assert!(export.get("status").is_none());
    let mut unowned = fixture("volumesnapshot.json");
    unowned["metadata"]["finalizers"]
        .as_array_mut()
        .unwrap()
        .push(json!("nobody-owns-this"));
    assert_eq!(
        clean(&unowned)["metadata"]["finalizers"],
        export["metadata"]["finalizers"]
    );
}

#[test]
fn without_managed_fields_only_server_fields_and_the_table_go() {
    let mut live = fixture("deployment-server-side-apply.json");
    live["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("managedFields");
    live["spec"]["minReadySeconds"] = json!(5);
    let export = clean(&live);
    // Ownership is unknown: what is not a default stays, the defaults go by the table alone.
    let mut expected = web_deployment("nginx:1.28");
    expected["spec"]["minReadySeconds"] = json!(5);
    assert_eq!(export, expected);
}

// --- Objects as real API servers return them (tests/fixtures/clusters, see its README) -------

fn cluster_fixture(file: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/clusters/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The clean export of `<name>.live.*` equals `<name>.golden.yaml`.
fn assert_golden(name: &str, live_ext: &str) {
    let live = cluster_fixture(&format!("{name}.live.{live_ext}"));
    let golden = cluster_fixture(&format!("{name}.golden.yaml"));
    let export = clean(&live);
    assert_eq!(
        export,
        golden,
        "{name}: the export differs from the golden file; the export is\n{}",
        serde_saphyr::to_string(&export).unwrap()
    );
}

/// The manifest that was applied: `kubectl.kubernetes.io/last-applied-configuration`, with the
/// empty `annotations` kubectl adds to it itself.
fn applied(live: &Value) -> Value {
    let text = live["metadata"]["annotations"][LAST_APPLIED_ANNOTATION]
        .as_str()
        .expect("a last-applied annotation");
    let mut manifest: Value = serde_json::from_str(text).unwrap();
    let meta = manifest["metadata"].as_object_mut().unwrap();
    if meta.get("annotations") == Some(&json!({})) {
        meta.remove("annotations");
    }
    manifest
}

#[test]
fn deployment_exports_as_written() {
    // Created by client-side apply, then changed live (VAR2): the user's
    // revisionHistoryLimit: 3 stays, replicas: 1 and every other default goes.
    assert_golden("deployment-guestbook", "json");
    // Created by server-side apply: ownership drops most defaults already, the table the
    // controller's revision annotation; the user's imagePullPolicy: Never stays.
    assert_golden("deployment-server-side-apply", "yaml");
}

#[test]
fn statefulset_exports_as_written() {
    // Claim templates come back with apiVersion, kind, status and volumeMode; the template's
    // serviceAccount copy of serviceAccountName and the probes' defaults go too.
    assert_golden("statefulset-redis", "yaml");
}

#[test]
fn service_exports_as_written() {
    // The allocated clusterIP goes, a headless clusterIP: None stays; targetPort equal to port
    // and protocol TCP go.
    assert_golden("service-clusterip", "yaml");
    assert_golden("service-headless", "json");
}

#[test]
fn ingress_exports_as_written() {
    assert_golden("ingress-minimal", "yaml");
}

#[test]
fn cronjob_exports_as_written() {
    assert_golden("cronjob-hello", "yaml");
}

#[test]
fn persistent_volume_claim_exports_as_written() {
    // The volume the controller bound, its annotations and the protection finalizer go.
    assert_golden("pvc-bound", "yaml");
}

#[test]
fn job_exports_as_written() {
    // The generated selector and the controller-uid/job-name labels go; backoffLimit: 0 stays.
    assert_golden("job-succeeded", "yaml");
}

#[test]
fn aggregated_cluster_role_exports_without_the_aggregated_rules() {
    assert_golden("clusterrole-aggregated", "json");
}

#[test]
fn exporting_against_the_applied_manifest_gives_it_back() {
    // Git holds what the person applied (defaults spelled out and all): the export into that
    // file is that file, so a write-back rewrites nothing. Only apiVersion comes from the
    // live object (the planner keeps the manifest's).
    for file in [
        "statefulset-redis.live.yaml",
        "service-clusterip.live.yaml",
        "cronjob-hello.live.yaml",
        "ingress-minimal.live.yaml",
    ] {
        let live = cluster_fixture(file);
        let mut expected = applied(&live);
        expected["apiVersion"] = live["apiVersion"].clone();
        assert_eq!(clean_against(&live, &applied(&live)), expected, "{file}");
    }
    // The admission plugin's storageClassName is the one thing Git did not say.
    let live = cluster_fixture("pvc-bound.live.yaml");
    let mut expected = applied(&live);
    expected["spec"]["storageClassName"] = json!("hostpath");
    assert_eq!(clean_against(&live, &applied(&live)), expected);
}

#[test]
fn a_git_rule_over_the_applied_manifests_writes_nothing() {
    let types = [
        ResourceType::new("apps", "v1", "StatefulSet", "statefulsets", true),
        ResourceType::new("", "v1", "Service", "services", true),
        ResourceType::new("batch", "v1", "CronJob", "cronjobs", true),
        ResourceType::new("networking.k8s.io", "v1", "Ingress", "ingresses", true),
    ];
    let files = [
        "statefulset-redis.live.yaml",
        "service-clusterip.live.yaml",
        "cronjob-hello.live.yaml",
        "ingress-minimal.live.yaml",
    ];
    let live: Vec<Value> = files.iter().map(|f| cluster_fixture(f)).collect();
    let sources: Vec<SourceFile> = live
        .iter()
        .zip(files)
        .map(|(l, f)| {
            SourceFile::new(
                f.replace(".live", ""),
                serde_json::to_string(&applied(l)).unwrap(),
            )
        })
        .collect();
    let (manifests, diagnostics) = parse_manifests(&sources, &types);
    assert!(diagnostics.is_empty(), "{diagnostics:?}");
    let plan = plan(&PlanInput {
        manifests: &manifests,
        live: &live,
        rules: &[Rule::new("from-the-cluster", SyncTo::Git)],
        types: &types,
        inventory: &BTreeSet::new(),
        skipped: &[],
        invalid_rules: &[],
        options: &PlanOptions::default(),
    });
    assert!(plan.to_git.is_empty(), "{:#?}", plan.to_git);
    assert_eq!(plan.noops.len(), 4);
}

#[test]
fn a_provisioned_volume_is_a_system_object() {
    let live = cluster_fixture("pv-provisioned.live.json");
    let id = ObjectId::new(
        "",
        "PersistentVolume",
        None,
        live["metadata"]["name"].as_str().unwrap(),
    );
    assert_eq!(
        system_object(&id, &live),
        Some(SystemObject::ProvisionedPersistentVolume)
    );
    // Were it exported anyway (by name), the binding's uid and resourceVersion, the
    // protection finalizer and the empty hostPath type would go.
    let export = clean(&live);
    assert_eq!(
        export["spec"]["claimRef"],
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
               "name": "prom-prometheus-alertmanager", "namespace": "default"})
    );
    assert!(export["metadata"].get("finalizers").is_none());
    assert_eq!(
        export["spec"]["hostPath"],
        json!({"path": "/tmp/hostpath-provisioner/pvc-54fad2fe-4d7b-11e9-9172-0800271788ca"})
    );
}
