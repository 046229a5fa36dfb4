//! Which live objects a plan adopts from the cluster: `names`, `excludeNames` and the system
//! objects nobody wants in Git (docs/sync-semantics.md, "Selection").

mod common;

use std::collections::BTreeSet;

use common::*;
use gitcontroller_sync::*;
use serde_json::{Value, json};

fn written_files(plan: &Plan) -> Vec<&str> {
    plan.to_git
        .iter()
        .filter_map(|a| match a {
            GitAction::Write { file, .. } => Some(file.as_str()),
            GitAction::Remove { .. } => None,
        })
        .collect()
}

fn root_ca() -> Value {
    let mut cm = configmap(
        "kube-root-ca.crt",
        json!({"ca.crt": "-----BEGIN CERTIFICATE-----"}),
    );
    cm["metadata"]["annotations"] = json!({
        "kubernetes.io/description": "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters."
    });
    cm
}

fn token_secret() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "builder-token", "namespace": "default",
                     "annotations": {"kubernetes.io/service-account.name": "builder"}},
        "type": "kubernetes.io/service-account-token",
        "data": {"token": "ZXlK"}
    })
}

#[test]
fn system_objects_are_not_exported_while_others_are() {
    let mut case = Case::new(vec![rule("backup", SyncTo::Git, &[])])
        .live(root_ca())
        .live(token_secret())
        .live(configmap("settings", json!({"level": "info"})));
    case.options.allow_plaintext_secrets = true;
    let plan = case.plan();
    assert_eq!(written_files(&plan), ["default/configmaps/settings.yaml"]);
    assert!(plan.diagnostics.is_empty(), "{:?}", plan.diagnostics);
    assert_eq!(
        plan.counts.to_git, 1,
        "system objects are not counted either"
    );
}

#[test]
fn a_literal_name_opts_a_system_object_in() {
    let mut r = rule("ca", SyncTo::Git, &[]);
    r.names = vec!["kube-root-ca.crt".into()];
    let plan = Case::new(vec![r])
        .live(root_ca())
        .live(configmap("settings", json!({})))
        .plan();
    assert_eq!(
        written_files(&plan),
        ["default/configmaps/kube-root-ca.crt.yaml"]
    );
}

#[test]
fn exclude_names_keeps_matching_objects_out() {
    let mut r = rule("backup", SyncTo::Git, &[]);
    r.exclude_names = vec!["cache-*".into(), "tmp?".into()];
    let plan = Case::new(vec![r])
        .live(configmap("cache-web", json!({})))
        .live(configmap("tmp1", json!({})))
        .live(configmap("tmp10", json!({})))
        .plan();
    assert_eq!(written_files(&plan), ["default/configmaps/tmp10.yaml"]);
}

#[test]
fn a_system_object_with_a_manifest_is_synced_as_usual() {
    // Someone keeps the default ServiceAccount in Git to give it an image pull secret.
    let manifest = json!({
        "apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": "default", "namespace": "default"},
        "imagePullSecrets": [{"name": "registry"}]
    });
    let live = json!({
        "apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": "default", "namespace": "default"}
    });
    let plan = Case::new(vec![rule("from-git", SyncTo::Kubernetes, &[])])
        .git("default/sa.yaml", manifest)
        .live(live)
        .plan();
    let (body, create, _) = single_apply(&plan);
    assert!(!create);
    assert_eq!(body["imagePullSecrets"], json!([{"name": "registry"}]));
}

#[test]
fn a_system_object_without_a_manifest_is_never_pruned() {
    // It was applied from Git once (so it is in the inventory) and its manifest is gone:
    // the cluster's own object stays.
    let mut case = Case::new(vec![rule("from-git", SyncTo::Kubernetes, &[])]).live(root_ca());
    case.inventory = BTreeSet::from([cm_id("kube-root-ca.crt")]);
    case.options.prune = true;
    assert!(case.plan().to_cluster.is_empty());
    // An ordinary object in the same situation is pruned.
    let mut case = Case::new(vec![rule("from-git", SyncTo::Kubernetes, &[])])
        .live(configmap("old", json!({})));
    case.inventory = BTreeSet::from([cm_id("old")]);
    case.options.prune = true;
    assert!(matches!(
        case.plan().to_cluster.as_slice(),
        [ClusterAction::Delete { .. }]
    ));
}

#[test]
fn objects_a_controller_owns_are_not_exported() {
    let mut owned = configmap("web-5d4f-config", json!({}));
    owned["metadata"]["ownerReferences"] = json!([{
        "apiVersion": "example.com/v1", "kind": "App", "name": "web", "uid": "7c1e", "controller": true
    }]);
    let plan = Case::new(vec![rule("backup", SyncTo::Git, &[])])
        .live(owned)
        .live(configmap("settings", json!({})))
        .plan();
    assert_eq!(written_files(&plan), ["default/configmaps/settings.yaml"]);
}
