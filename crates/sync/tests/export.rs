//! The clean export on objects as the API server really serves them.

mod common;

use common::fixture;
use gitcontroller_sync::export::{clean, clean_against};
use serde_json::json;

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
