// kube-derive takes repeated `printcolumn(type_ = ...)` keys, which this lint misreads.
#![allow(clippy::duplicated_attributes)]

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::Condition;

/// Chooses, for the objects and fields it selects, which side wins: Git or the cluster.
///
/// An object is selected when every non-empty selector matches. Within a selected object, each
/// changed field is governed by the rule whose filter names it most specifically; ties go to the
/// higher `priority`, then to the rule whose name sorts first.
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "gitcontroller.io",
    version = "v1alpha1",
    kind = "SyncRule",
    doc = "Chooses, for the objects and fields it selects, which side wins: Git or the cluster.",
    plural = "syncrules",
    shortname = "sr",
    category = "gitcontroller",
    namespaced,
    status = "SyncRuleStatus",
    printcolumn(
        name = "Repository",
        type_ = "string",
        json_path = ".spec.repositoryRef.name"
    ),
    printcolumn(name = "SyncTo", type_ = "string", json_path = ".spec.syncTo"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct SyncRuleSpec {
    /// The GitRepository, in the same namespace, that this rule belongs to.
    pub repository_ref: RepositoryReference,

    /// API groups to select. Empty selects every group; `""` is the core group.
    #[serde(default)]
    #[schemars(length(max = 64), inner(length(max = 253)))]
    pub api_groups: Vec<String>,

    /// Resource types to select, by plural name (`deployments`, `volumesnapshots`).
    /// Empty selects every resource type.
    #[serde(default)]
    #[schemars(length(max = 64), inner(length(max = 253)))]
    pub resources: Vec<String>,

    /// Kinds to select (`Deployment`, `VolumeSnapshot`). Empty selects every kind.
    #[serde(default)]
    #[schemars(length(max = 64), inner(length(max = 253)))]
    pub kinds: Vec<String>,

    /// Namespaces to select. Empty selects every namespace and cluster-scoped objects.
    #[serde(default)]
    #[schemars(length(max = 256), inner(length(max = 63)))]
    pub namespaces: Vec<String>,

    /// Names of the objects to select, as glob patterns matched against the whole
    /// `metadata.name`: `*` matches any run of characters (none too), `?` exactly one
    /// character, anything else itself. `web-*` selects `web-1` and `web-`, not `my-web-1`.
    /// Empty selects every name.
    ///
    /// Objects the cluster makes for itself are never exported to Git or pruned unless Git
    /// holds a manifest for them or an entry here names them literally (without `*` or `?`):
    /// the `kube-root-ca.crt` ConfigMap, service-account token Secrets, the `default`
    /// ServiceAccount, objects owned by a controller (`ownerReferences` with
    /// `controller: true`: Pods, ReplicaSets, Jobs of CronJobs, ...), Events, Leases,
    /// Endpoints and managed EndpointSlices, the `default/kubernetes` Service, the system
    /// Namespaces, bootstrap RBAC, dynamically provisioned PersistentVolumes, Nodes and Helm
    /// release Secrets. For example `names: [kube-root-ca.crt]` exports the root-CA ConfigMap.
    #[serde(default)]
    #[schemars(
        length(max = 64),
        inner(length(min = 1, max = 253), pattern(r"^[^/]+$"))
    )]
    pub names: Vec<String>,

    /// Names of the objects never to select, as glob patterns like in `names`
    /// (`["*-tmp", "cache-?"]`). An object whose name matches one is not selected, even when
    /// `names` lists it.
    #[serde(default)]
    #[schemars(
        length(max = 64),
        inner(length(min = 1, max = 253), pattern(r"^[^/]+$"))
    )]
    pub exclude_names: Vec<String>,

    /// Label selector in kubectl syntax, e.g. `app=web,tier in (frontend,backend),!legacy`.
    /// Evaluated on the live object when it exists, otherwise on the Git manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 4096))]
    pub label_selector: Option<String>,

    /// JSON pointers (RFC 6901) to the parts of each object this rule governs, such as
    /// `/spec/template/spec/containers` or `/metadata/annotations`. No filters, or the root
    /// pointer `""` (the empty string), govern the whole object. Every other pointer starts
    /// with `/`; write `~1` for a `/` and `~0` for a `~` inside a key.
    #[serde(default)]
    #[schemars(
        length(max = 64),
        inner(length(max = 1024), pattern(r"^(/([^~/]|~[01])*)*$"))
    )]
    pub filters: Vec<String>,

    /// Which side wins for the governed fields: `kubernetes` (the Git manifest is applied to
    /// the cluster), `git` (the live value is written to Git), or `ignore` (neither).
    pub sync_to: SyncDirection,

    /// Breaks ties between rules whose filters are equally specific; higher wins.
    #[serde(default)]
    #[schemars(range(min = -1000000, max = 1000000))]
    pub priority: i32,
}

/// The GitRepository a SyncRule belongs to.
#[derive(KubeSchema, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepositoryReference {
    /// Name of a GitRepository in the same namespace as the SyncRule.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// Which side wins for the fields a rule governs.
#[derive(schemars::JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncDirection {
    /// The Git manifest is applied to the cluster.
    Kubernetes,
    /// The live object is written to Git.
    Git,
    /// Neither side is changed.
    Ignore,
}

/// What the controller last concluded about a SyncRule.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncRuleStatus {
    /// `Ready` is `True` when the rule is valid and its resource types were found.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// The `metadata.generation` of the spec the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The resource types the rule resolved to, as `plural.group` (`deployments.apps`) or
    /// `plural` for the core group.
    #[serde(default)]
    pub matched_resources: Vec<String>,
}
