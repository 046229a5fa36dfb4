//! The clean export on objects as the API server really serves them.

mod common;

use common::fixture;
use gitcontroller_sync::export::clean;
use serde_json::json;

#[test]
fn object_made_by_kubectl_create_keeps_attributed_defaults() {
    // `create` is an Update: the API server attributes the defaulted fields to kubectl-create,
    // so they are owned and stay. Status, server metadata and the unowned
    // `template.metadata.creationTimestamp: null` go.
    let export = clean(&fixture("deployment-kubectl-create.json"));
    assert_eq!(
        export,
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": "web",
                "namespace": "default",
                "labels": {"app": "web"},
                "annotations": {"deployment.kubernetes.io/revision": "1"}
            },
            "spec": {
                "progressDeadlineSeconds": 600,
                "replicas": 2,
                "revisionHistoryLimit": 10,
                "selector": {"matchLabels": {"app": "web"}},
                "strategy": {
                    "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
                    "type": "RollingUpdate"
                },
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {
                        "containers": [{
                            "image": "nginx:1.27",
                            "imagePullPolicy": "IfNotPresent",
                            "name": "web",
                            "ports": [{"containerPort": 80, "protocol": "TCP"}],
                            "resources": {},
                            "terminationMessagePath": "/dev/termination-log",
                            "terminationMessagePolicy": "File"
                        }],
                        "dnsPolicy": "ClusterFirst",
                        "restartPolicy": "Always",
                        "schedulerName": "default-scheduler",
                        "securityContext": {},
                        "terminationGracePeriodSeconds": 30
                    }
                }
            }
        })
    );
}

#[test]
fn object_made_by_server_side_apply_drops_unowned_defaults() {
    // Apply owns only what was sent; kubectl-set owns the image it changed;
    // kube-controller-manager owns its annotation. Server defaults are owned by nobody.
    let export = clean(&fixture("deployment-server-side-apply.json"));
    assert_eq!(
        export,
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": "web",
                "namespace": "default",
                "labels": {"app": "web"},
                "annotations": {"deployment.kubernetes.io/revision": "2"}
            },
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{
                        "image": "nginx:1.28",
                        "name": "web",
                        "ports": [{"containerPort": 80}]
                    }]}
                }
            }
        })
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
fn without_managed_fields_everything_but_server_fields_stays() {
    let mut live = fixture("deployment-server-side-apply.json");
    live["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("managedFields");
    let export = clean(&live);
    assert_eq!(
        export["spec"], live["spec"],
        "ownership unknown: defaults stay"
    );
    assert!(export.get("status").is_none());
    assert!(export["metadata"].get("uid").is_none());
    assert!(export["metadata"].get("resourceVersion").is_none());
    assert!(export["metadata"].get("creationTimestamp").is_none());
    assert!(export["metadata"].get("generation").is_none());
}
