// kube-derive takes repeated `printcolumn(type_ = ...)` keys, which this lint misreads.
#![allow(clippy::duplicated_attributes)]

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::Condition;

/// A Git repository that git-controller keeps in sync with the cluster.
///
/// The controller fetches `branch` of `url`, reads every manifest under `path`, and moves each
/// difference between those manifests and the live objects toward the side that the matching
/// SyncRules choose.
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "gitcontroller.io",
    version = "v1alpha1",
    kind = "GitRepository",
    doc = "A Git repository that git-controller keeps in sync with the cluster, in both directions.",
    plural = "gitrepositories",
    shortname = "gitrepo",
    category = "gitcontroller",
    namespaced,
    status = "GitRepositoryStatus",
    printcolumn(name = "URL", type_ = "string", json_path = ".spec.url"),
    printcolumn(name = "Branch", type_ = "string", json_path = ".spec.branch"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Commit",
        type_ = "string",
        json_path = ".status.lastSyncedCommitShort"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct GitRepositorySpec {
    /// Address of the remote repository. Schemes: `ssh://`, `https://`, `http://`, `git://`,
    /// or the scp-like SSH form `user@host:path`; `file://` only when the controller runs with
    /// `--allow-local-urls` (a path on the controller's own disk).
    #[x_kube(validation = Rule::new(
        "self.matches('^(ssh|https|http|git|file)://.+') || self.matches('^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:.+')"
    ).message("url must use one of the schemes ssh, https, http, git, file (or user@host:path)"))]
    #[schemars(length(min = 1, max = 2048))]
    pub url: String,

    /// Branch to read manifests from and to push changes to.
    #[serde(default = "default_branch")]
    #[schemars(length(min = 1, max = 255))]
    pub branch: String,

    /// Directory inside the repository that holds the manifests, relative to the repository
    /// root. Empty means the root. Must not be absolute or contain `..`.
    #[serde(default)]
    #[x_kube(validation = Rule::new(
        "!self.startsWith('/') && !self.matches('(^|/)[.][.]($|/)')"
    ).message("path must be relative to the repository root and must not contain '..'"))]
    #[schemars(length(max = 1024))]
    pub path: String,

    /// How often to fetch the remote and re-check every object, as a duration such as `30s`,
    /// `1m` or `1h30m`. Changes to tracked objects trigger a sync sooner, against the commit
    /// fetched last; push webhooks and changes to this spec fetch at once.
    #[serde(default = "default_interval")]
    #[x_kube(validation = Rule::new("self.matches('^([0-9]+(ms|s|m|h))+$')")
        .message("interval must be a duration such as 30s, 1m or 1h30m"))]
    #[schemars(length(max = 64))]
    pub interval: String,

    /// Secret in the same namespace with the credentials for the remote, using Flux's key names:
    /// `identity` (+ optional `passphrase`) and `known_hosts` for SSH; `username` and
    /// `password`, or `bearerToken`, for HTTPS; `ca.crt` for a private certificate authority.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalObjectReference>,

    /// ServiceAccount in the same namespace that every read and write of synced objects is
    /// made as (impersonation): applies, deletes, and the reads behind plans and exports.
    /// Objects it may not `list` are neither planned nor exported; manifests it may not list
    /// or apply are refused and reported per object (reason `Forbidden`). Empty: the
    /// controller's `--default-service-account` when it has one; otherwise the repository is
    /// confined to its own namespace (no other namespace and no cluster-scoped object, in
    /// either direction) unless the controller trusts its namespace
    /// (`--cluster-scope-namespaces`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 253),
        pattern(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    )]
    pub service_account_name: Option<String>,

    /// Author and committer of the commits the controller makes.
    #[serde(default)]
    pub author: Author,

    /// Text that starts the message of every commit the controller makes; the rest of the
    /// message names the objects changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 4096))]
    pub commit_message: Option<String>,

    /// Create `branch` with the first write-back when the remote has other branches but not
    /// this one. Off by default: a branch that does not exist (a typo, or deleted) stops the
    /// repository with reason `BranchNotFound` instead of being silently re-created, and
    /// nothing is pruned or exported meanwhile. An empty remote (no branch at all) is always
    /// written to.
    #[serde(default)]
    pub create_branch: bool,

    /// Stop all writes in both directions while true. Status still reports drift.
    #[serde(default)]
    pub suspend: bool,

    /// Delete objects from the cluster when their manifest is removed from Git. Only objects
    /// this repository applied (listed in `status.inventory`) are ever deleted.
    #[serde(default)]
    pub prune: bool,

    /// The most objects one sync may delete from the cluster (prune): a count such as `10`,
    /// or a percentage of the objects in `status.inventory` such as `"50%"` (rounded up).
    /// A sync that would delete more deletes nothing at all, and says so in the `Ready`
    /// condition (`PruneLimitExceeded`) and a Warning Event; everything else still syncs.
    /// Whatever the limit, objects are never pruned because Git holds no manifest, unless
    /// `path` exists and was emptied in a commit newer than the last one synced (so a wrong
    /// path, branch or an emptied remote never prunes the cluster). To delete everything on
    /// purpose, empty `path` in a new commit and set `pruneLimit: "100%"`.
    #[serde(
        default = "default_prune_limit",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(schema_with = "int_or_percent_schema")]
    pub prune_limit: Option<IntOrString>,

    /// Allow Secrets to be written to Git in plain text when a SyncRule sends them there.
    /// Off by default: such a sync is refused and reported. Also needs the controller's
    /// `--allow-plaintext-secrets`; without it a true value is refused with the condition
    /// reason `PlaintextSecretsNotAllowed`.
    #[serde(default)]
    pub allow_plaintext_secrets: bool,

    /// Secret in the same namespace whose key `token` authenticates push webhooks sent to
    /// `/hooks/<namespace>/<name>` (GitHub `X-Hub-Signature-256` HMAC or GitLab `X-Gitlab-Token`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_secret_ref: Option<LocalObjectReference>,
}

fn default_branch() -> String {
    "main".into()
}

fn default_interval() -> String {
    "1m".into()
}

fn default_prune_limit() -> Option<IntOrString> {
    Some(IntOrString::String(DEFAULT_PRUNE_LIMIT.into()))
}

/// `spec.pruneLimit` when it is not set (or null).
pub const DEFAULT_PRUNE_LIMIT: &str = "50%";

/// Annotation of a GitRepository that asks the leader to fetch and sync it at once when its
/// value changes (an RFC 3339 timestamp by convention), like a push webhook. Standby replicas
/// set it for the webhooks they receive; people set it with `kubectl annotate … --overwrite`.
pub const REQUESTED_AT_ANNOTATION: &str = "gitcontroller.io/requested-at";

/// A non-negative integer or a percentage from `0%` to `100%`, like a Deployment's
/// `maxUnavailable`.
fn int_or_percent_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "x-kubernetes-int-or-string": true,
        "default": DEFAULT_PRUNE_LIMIT,
        "x-kubernetes-validations": [{
            "rule": "type(self) == int ? self >= 0 : self.matches('^(100|[1-9]?[0-9])%$')",
            "message": "pruneLimit must be a count (10) or a percentage from 0% to 100% (\"50%\")"
        }]
    })
}

/// A reference to an object in the same namespace.
#[derive(KubeSchema, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalObjectReference {
    /// Name of the object.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// Identity recorded on commits.
#[derive(KubeSchema, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Author {
    /// Name of the commit author and committer.
    #[serde(default = "default_author_name")]
    pub name: String,
    /// Email of the commit author and committer.
    #[serde(default = "default_author_email")]
    pub email: String,
}

impl Default for Author {
    fn default() -> Self {
        Self {
            name: default_author_name(),
            email: default_author_email(),
        }
    }
}

fn default_author_name() -> String {
    "git-controller".into()
}

fn default_author_email() -> String {
    "git-controller@localhost".into()
}

/// What the controller last observed and did for a GitRepository.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GitRepositoryStatus {
    /// `Ready` (last sync succeeded), `Reconciling` (a sync is under way) and `Stalled`
    /// (the controller cannot make progress without a change from you).
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// The `metadata.generation` of the spec the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The commit of the remote branch that the last successful sync was based on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_synced_commit: Option<String>,
    /// The first 8 characters of `lastSyncedCommit`, for `kubectl get`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_synced_commit_short: Option<String>,
    /// When the last successful sync (Ready=True) that changed something, or moved to a new
    /// commit, finished (RFC 3339). It does not move while Ready is False or writes are
    /// paused, nor for a sync that found everything in sync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_time: Option<String>,
    /// How many objects each direction governs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objects: Option<ObjectCounts>,
    /// Objects this repository applied to the cluster. Only these are ever pruned.
    #[serde(default)]
    pub inventory: InventoryList,
}

/// `status.inventory`, kept as the JSON text it was read as (or written to): a repository's
/// inventory may list thousands of objects, every status write comes back through the watch,
/// and most syncs leave it as it was. Its entries are parsed when read
/// ([`InventoryList::entries`]), and it is written back as it came.
#[derive(Clone, Default)]
pub struct InventoryList {
    /// A JSON array of [`InventoryEntry`]; `None` for none.
    json: Option<std::sync::Arc<serde_json::value::RawValue>>,
}

impl InventoryList {
    /// The list of `entries`.
    pub fn new(entries: &[InventoryEntry]) -> Self {
        if entries.is_empty() {
            return Self::default();
        }
        let json =
            serde_json::value::to_raw_value(entries).expect("inventory entries serialize to JSON");
        Self {
            json: Some(json.into()),
        }
    }

    /// The entries. The API server validated them against the schema when they were
    /// written; a list that still does not read (never written by the API server) is
    /// empty.
    pub fn entries(&self) -> Vec<InventoryEntry> {
        self.json
            .as_ref()
            .and_then(|json| serde_json::from_str(json.get()).ok())
            .unwrap_or_default()
    }

    /// The list as JSON text (`[]` for none).
    pub fn json(&self) -> &str {
        self.json.as_ref().map_or("[]", |json| json.get())
    }

    /// Whether this is the very list `other` is (a clone of it), which says it is equal
    /// without reading either.
    pub fn is(&self, other: &InventoryList) -> bool {
        match (&self.json, &other.json) {
            (Some(a), Some(b)) => std::sync::Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        }
    }
}

impl PartialEq for InventoryList {
    /// Equal entries, however written.
    fn eq(&self, other: &Self) -> bool {
        self.is(other) || self.json() == other.json() || self.entries() == other.entries()
    }
}

impl std::fmt::Debug for InventoryList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.entries()).finish()
    }
}

impl Serialize for InventoryList {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.json {
            Some(json) => json.serialize(serializer),
            None => serializer.collect_seq(std::iter::empty::<InventoryEntry>()),
        }
    }
}

impl<'de> Deserialize<'de> for InventoryList {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let json = Box::<serde_json::value::RawValue>::deserialize(deserializer)?;
        match json.get().trim() {
            "null" | "[]" => Ok(Self::default()),
            text if text.starts_with('[') => Ok(Self {
                json: Some(json.into()),
            }),
            _ => Err(serde::de::Error::custom(
                "status.inventory is not a list of objects",
            )),
        }
    }
}

impl schemars::JsonSchema for InventoryList {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        <Vec<InventoryEntry>>::schema_name()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        <Vec<InventoryEntry>>::json_schema(generator)
    }

    fn inline_schema() -> bool {
        true
    }
}

/// Object counts by the direction that governs them.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectCounts {
    /// Objects whose Git manifest is applied to the cluster.
    pub to_kubernetes: i64,
    /// Objects whose live state is written to Git.
    pub to_git: i64,
    /// Objects matched only by `ignore` rules.
    pub ignored: i64,
}

/// An object that this repository applied to the cluster.
#[derive(KubeSchema, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct InventoryEntry {
    /// API group; empty for the core group.
    #[serde(default)]
    pub group: String,
    /// Kind of the object.
    pub kind: String,
    /// Namespace; absent for cluster-scoped objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Name of the object.
    pub name: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(name: &str) -> InventoryEntry {
        InventoryEntry {
            group: String::new(),
            kind: "ConfigMap".into(),
            namespace: Some("team-a".into()),
            name: name.into(),
        }
    }

    /// The inventory reads and writes like the list of entries it is, from text and from a
    /// JSON tree alike, and is written back as the text it was read as.
    #[test]
    fn the_inventory_reads_and_writes_as_its_entries() {
        let as_served = r#"{"conditions":[],"inventory":[{"group":"","kind":"ConfigMap","name":"a","namespace":"team-a"},{"group":"","kind":"ConfigMap","name":"b","namespace":"team-a"}]}"#;
        let status: GitRepositoryStatus = serde_json::from_str(as_served).unwrap();
        assert_eq!(status.inventory.entries(), [entry("a"), entry("b")]);
        assert_eq!(
            status.inventory,
            InventoryList::new(&[entry("a"), entry("b")])
        );
        assert_ne!(status.inventory, InventoryList::new(&[entry("a")]));
        assert_eq!(
            serde_json::to_string(&status).unwrap(),
            as_served,
            "as it came"
        );

        let tree: GitRepositoryStatus =
            serde_json::from_value(serde_json::from_str(as_served).unwrap()).unwrap();
        assert_eq!(tree.inventory, status.inventory);
        assert_eq!(
            serde_json::to_value(&tree).unwrap()["inventory"][1],
            json!({"group": "", "kind": "ConfigMap", "namespace": "team-a", "name": "b"})
        );
        assert_eq!(
            format!("{:?}", status.inventory),
            format!("{:?}", [entry("a"), entry("b")])
        );

        for none in [r#"{}"#, r#"{"inventory":[]}"#, r#"{"inventory":null}"#] {
            let status: GitRepositoryStatus = serde_json::from_str(none).unwrap();
            assert!(status.inventory.entries().is_empty(), "{none}");
            assert_eq!(status.inventory, InventoryList::default());
        }
        assert!(serde_json::from_str::<GitRepositoryStatus>(r#"{"inventory":{"a":1}}"#).is_err());
    }
}
