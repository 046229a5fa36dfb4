//! Objects the cluster makes for itself, which nobody wants exported to Git.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ObjectId;
use crate::id::IdRef;

/// A kind of object that Kubernetes (its API server, controllers or kubelets) or Helm creates
/// and maintains by itself. A rule does not select such an object while Git has no manifest
/// for it, unless the rule's `names` lists the object's name literally; see
/// [`Rule::adopts`](crate::Rule::adopts). With a manifest in Git it is synced like any object.
///
/// Each variant documents how it is recognised; `docs/sync-semantics.md` has the same list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum SystemObject {
    /// The `kube-root-ca.crt` ConfigMap the root-CA publisher puts in every namespace.
    RootCaConfigMap,
    /// A Secret of type `kubernetes.io/service-account-token`, filled in by the token
    /// controller.
    ServiceAccountToken,
    /// The `default` ServiceAccount the service-account controller puts in every namespace.
    DefaultServiceAccount,
    /// Anything with an owner reference marked `controller: true`: Pods of ReplicaSets,
    /// ReplicaSets of Deployments, Jobs of CronJobs, ControllerRevisions, EndpointSlices of
    /// Services, PVCs of StatefulSets and whatever an operator makes for its resources.
    ControlledByOwner,
    /// A core or `events.k8s.io` Event: a record, not configuration.
    Event,
    /// A `coordination.k8s.io` Lease: node heartbeats and leader elections.
    Lease,
    /// A core Endpoints object: the endpoints controller writes one per Service.
    Endpoints,
    /// An EndpointSlice labelled `endpointslice.kubernetes.io/managed-by` with one of
    /// Kubernetes' own controllers (`endpointslice-controller.k8s.io`,
    /// `endpointslicemirroring-controller.k8s.io`).
    ManagedEndpointSlice,
    /// The `kubernetes` Service in the `default` namespace, kept by the API server.
    KubernetesService,
    /// The Namespaces the API server creates: `default`, `kube-system`, `kube-public`,
    /// `kube-node-lease`.
    SystemNamespace,
    /// The ConfigMaps the API server publishes in `kube-system`:
    /// `extension-apiserver-authentication` and
    /// `kube-apiserver-legacy-service-account-token-tracking`.
    ApiServerConfigMap,
    /// RBAC roles and bindings the API server bootstraps (label
    /// `kubernetes.io/bootstrapping: rbac-defaults`).
    BootstrapRbac,
    /// APIServices the aggregator registers for built-in groups (label
    /// `kube-aggregator.kubernetes.io/automanaged`).
    AutomanagedApiService,
    /// The `system-cluster-critical` and `system-node-critical` PriorityClasses (the `system-`
    /// prefix is reserved).
    SystemPriorityClass,
    /// API priority-and-fairness configuration the API server keeps up to date (annotation
    /// `apf.kubernetes.io/autoupdate-spec: "true"`).
    AutoUpdatedFlowControl,
    /// A PersistentVolume a provisioner made for a claim (annotation
    /// `pv.kubernetes.io/provisioned-by`); Git holds the claim.
    ProvisionedPersistentVolume,
    /// Nodes and CSINodes, registered by kubelets.
    Node,
    /// VolumeAttachments, made by the attach/detach controller.
    VolumeAttachment,
    /// Helm's release records: Secrets of type `helm.sh/release.v1`.
    HelmRelease,
}

impl SystemObject {
    /// Every variant, in declaration order.
    pub const ALL: &'static [SystemObject] = &[
        SystemObject::RootCaConfigMap,
        SystemObject::ServiceAccountToken,
        SystemObject::DefaultServiceAccount,
        SystemObject::ControlledByOwner,
        SystemObject::Event,
        SystemObject::Lease,
        SystemObject::Endpoints,
        SystemObject::ManagedEndpointSlice,
        SystemObject::KubernetesService,
        SystemObject::SystemNamespace,
        SystemObject::ApiServerConfigMap,
        SystemObject::BootstrapRbac,
        SystemObject::AutomanagedApiService,
        SystemObject::SystemPriorityClass,
        SystemObject::AutoUpdatedFlowControl,
        SystemObject::ProvisionedPersistentVolume,
        SystemObject::Node,
        SystemObject::VolumeAttachment,
        SystemObject::HelmRelease,
    ];
}

impl fmt::Display for SystemObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// What system object `live` (with identity `id`) is, if it is one; see [`SystemObject`].
pub fn system_object(id: &ObjectId, live: &Value) -> Option<SystemObject> {
    of(IdRef::of(id), live)
}

pub(crate) fn of(id: IdRef<'_>, live: &Value) -> Option<SystemObject> {
    use SystemObject as S;
    let meta = &live["metadata"];
    let label = |key: &str| meta["labels"][key].as_str();
    let annotation = |key: &str| meta["annotations"][key].as_str();
    let by_type = match (id.group, id.kind) {
        ("", "ConfigMap") if id.name == "kube-root-ca.crt" => Some(S::RootCaConfigMap),
        ("", "ConfigMap")
            if id.namespace == Some("kube-system")
                && matches!(
                    id.name,
                    "extension-apiserver-authentication"
                        | "kube-apiserver-legacy-service-account-token-tracking"
                ) =>
        {
            Some(S::ApiServerConfigMap)
        }
        ("", "Secret") => match live["type"].as_str() {
            Some("kubernetes.io/service-account-token") => Some(S::ServiceAccountToken),
            Some("helm.sh/release.v1") => Some(S::HelmRelease),
            _ => None,
        },
        ("", "ServiceAccount") if id.name == "default" => Some(S::DefaultServiceAccount),
        ("", "Event") | ("events.k8s.io", "Event") => Some(S::Event),
        ("coordination.k8s.io", "Lease") => Some(S::Lease),
        ("", "Endpoints") => Some(S::Endpoints),
        ("discovery.k8s.io", "EndpointSlice")
            if matches!(
                label("endpointslice.kubernetes.io/managed-by"),
                Some("endpointslice-controller.k8s.io")
                    | Some("endpointslicemirroring-controller.k8s.io")
            ) =>
        {
            Some(S::ManagedEndpointSlice)
        }
        ("", "Service") if id.namespace == Some("default") && id.name == "kubernetes" => {
            Some(S::KubernetesService)
        }
        ("", "Namespace")
            if matches!(
                id.name,
                "default" | "kube-system" | "kube-public" | "kube-node-lease"
            ) =>
        {
            Some(S::SystemNamespace)
        }
        ("rbac.authorization.k8s.io", _)
            if label("kubernetes.io/bootstrapping") == Some("rbac-defaults") =>
        {
            Some(S::BootstrapRbac)
        }
        ("apiregistration.k8s.io", "APIService")
            if label("kube-aggregator.kubernetes.io/automanaged").is_some() =>
        {
            Some(S::AutomanagedApiService)
        }
        ("scheduling.k8s.io", "PriorityClass") if id.name.starts_with("system-") => {
            Some(S::SystemPriorityClass)
        }
        ("flowcontrol.apiserver.k8s.io", _)
            if annotation("apf.kubernetes.io/autoupdate-spec") == Some("true") =>
        {
            Some(S::AutoUpdatedFlowControl)
        }
        ("", "PersistentVolume") if annotation("pv.kubernetes.io/provisioned-by").is_some() => {
            Some(S::ProvisionedPersistentVolume)
        }
        ("", "Node") | ("storage.k8s.io", "CSINode") => Some(S::Node),
        ("storage.k8s.io", "VolumeAttachment") => Some(S::VolumeAttachment),
        _ => None,
    };
    by_type.or_else(|| {
        let controlled = meta["ownerReferences"]
            .as_array()
            .is_some_and(|refs| refs.iter().any(|r| r["controller"] == true));
        controlled.then_some(S::ControlledByOwner)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(
        group: &str,
        kind: &str,
        ns: Option<&str>,
        name: &str,
        live: Value,
    ) -> Option<SystemObject> {
        system_object(&ObjectId::new(group, kind, ns, name), &live)
    }

    #[test]
    fn every_variant_is_recognised_and_look_alikes_are_not() {
        use SystemObject as S;
        let labelled = |k: &str, v: &str| json!({"metadata": {"labels": {k: v}}});
        let annotated = |k: &str, v: &str| json!({"metadata": {"annotations": {k: v}}});
        let owned = json!({"metadata": {"ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-5d4f", "uid": "u", "controller": true}
        ]}});
        let cases: Vec<(Option<S>, Option<SystemObject>)> = vec![
            (
                Some(S::RootCaConfigMap),
                check("", "ConfigMap", Some("team"), "kube-root-ca.crt", json!({})),
            ),
            (
                None,
                check("", "ConfigMap", Some("team"), "root-ca", json!({})),
            ),
            (
                Some(S::ServiceAccountToken),
                check(
                    "",
                    "Secret",
                    Some("team"),
                    "build-token",
                    json!({"type": "kubernetes.io/service-account-token"}),
                ),
            ),
            (
                None,
                check(
                    "",
                    "Secret",
                    Some("team"),
                    "build-token",
                    json!({"type": "Opaque"}),
                ),
            ),
            (
                Some(S::HelmRelease),
                check(
                    "",
                    "Secret",
                    Some("team"),
                    "sh.helm.release.v1.web.v3",
                    json!({"type": "helm.sh/release.v1"}),
                ),
            ),
            (
                Some(S::DefaultServiceAccount),
                check("", "ServiceAccount", Some("team"), "default", json!({})),
            ),
            (
                None,
                check("", "ServiceAccount", Some("team"), "builder", json!({})),
            ),
            (
                Some(S::ControlledByOwner),
                check("", "Pod", Some("team"), "web-5d4f-x2x", owned.clone()),
            ),
            (
                None,
                check(
                    "",
                    "Pod",
                    Some("team"),
                    "debug",
                    json!({"metadata": {"ownerReferences": [
                        {"apiVersion": "v1", "kind": "ConfigMap", "name": "c", "uid": "u"}
                    ]}}),
                ),
            ),
            (
                Some(S::Event),
                check("", "Event", Some("team"), "web.17f", json!({})),
            ),
            (
                Some(S::Event),
                check("events.k8s.io", "Event", Some("team"), "web.17f", json!({})),
            ),
            (
                Some(S::Lease),
                check(
                    "coordination.k8s.io",
                    "Lease",
                    Some("kube-node-lease"),
                    "node-1",
                    json!({}),
                ),
            ),
            (
                Some(S::Endpoints),
                check("", "Endpoints", Some("team"), "web", json!({})),
            ),
            (
                Some(S::ManagedEndpointSlice),
                check(
                    "discovery.k8s.io",
                    "EndpointSlice",
                    Some("team"),
                    "web-abc",
                    labelled(
                        "endpointslice.kubernetes.io/managed-by",
                        "endpointslice-controller.k8s.io",
                    ),
                ),
            ),
            (
                None,
                check(
                    "discovery.k8s.io",
                    "EndpointSlice",
                    Some("team"),
                    "external",
                    json!({}),
                ),
            ),
            (
                Some(S::KubernetesService),
                check("", "Service", Some("default"), "kubernetes", json!({})),
            ),
            (
                None,
                check("", "Service", Some("team"), "kubernetes", json!({})),
            ),
            (
                Some(S::SystemNamespace),
                check("", "Namespace", None, "kube-system", json!({})),
            ),
            (None, check("", "Namespace", None, "team", json!({}))),
            (
                Some(S::ApiServerConfigMap),
                check(
                    "",
                    "ConfigMap",
                    Some("kube-system"),
                    "extension-apiserver-authentication",
                    json!({}),
                ),
            ),
            (
                None,
                check(
                    "",
                    "ConfigMap",
                    Some("team"),
                    "extension-apiserver-authentication",
                    json!({}),
                ),
            ),
            (
                Some(S::BootstrapRbac),
                check(
                    "rbac.authorization.k8s.io",
                    "ClusterRole",
                    None,
                    "view",
                    labelled("kubernetes.io/bootstrapping", "rbac-defaults"),
                ),
            ),
            (
                None,
                check(
                    "rbac.authorization.k8s.io",
                    "ClusterRole",
                    None,
                    "team-view",
                    json!({}),
                ),
            ),
            (
                Some(S::AutomanagedApiService),
                check(
                    "apiregistration.k8s.io",
                    "APIService",
                    None,
                    "v1.apps",
                    labelled("kube-aggregator.kubernetes.io/automanaged", "onstart"),
                ),
            ),
            (
                None,
                check(
                    "apiregistration.k8s.io",
                    "APIService",
                    None,
                    "v1beta1.metrics.k8s.io",
                    json!({}),
                ),
            ),
            (
                Some(S::SystemPriorityClass),
                check(
                    "scheduling.k8s.io",
                    "PriorityClass",
                    None,
                    "system-node-critical",
                    json!({}),
                ),
            ),
            (
                None,
                check(
                    "scheduling.k8s.io",
                    "PriorityClass",
                    None,
                    "batch-low",
                    json!({}),
                ),
            ),
            (
                Some(S::AutoUpdatedFlowControl),
                check(
                    "flowcontrol.apiserver.k8s.io",
                    "FlowSchema",
                    None,
                    "exempt",
                    annotated("apf.kubernetes.io/autoupdate-spec", "true"),
                ),
            ),
            (
                None,
                check(
                    "flowcontrol.apiserver.k8s.io",
                    "FlowSchema",
                    None,
                    "mine",
                    annotated("apf.kubernetes.io/autoupdate-spec", "false"),
                ),
            ),
            (
                Some(S::ProvisionedPersistentVolume),
                check(
                    "",
                    "PersistentVolume",
                    None,
                    "pvc-54fa",
                    annotated("pv.kubernetes.io/provisioned-by", "ebs.csi.aws.com"),
                ),
            ),
            (
                None,
                check("", "PersistentVolume", None, "nfs-share", json!({})),
            ),
            (Some(S::Node), check("", "Node", None, "node-1", json!({}))),
            (
                Some(S::Node),
                check("storage.k8s.io", "CSINode", None, "node-1", json!({})),
            ),
            (
                Some(S::VolumeAttachment),
                check(
                    "storage.k8s.io",
                    "VolumeAttachment",
                    None,
                    "csi-1f2e",
                    json!({}),
                ),
            ),
        ];
        for (i, (want, got)) in cases.iter().enumerate() {
            assert_eq!(want, got, "case {i}");
        }
        let seen: Vec<SystemObject> = cases.iter().filter_map(|(w, _)| *w).collect();
        for variant in SystemObject::ALL {
            assert!(seen.contains(variant), "{variant} has no test case");
        }
    }

    #[test]
    fn the_list_is_documented() {
        let docs = include_str!("../../../docs/sync-semantics.md");
        for variant in SystemObject::ALL {
            assert!(
                docs.contains(&format!("`{variant}`")),
                "docs/sync-semantics.md lacks `{variant}`"
            );
        }
    }
}
