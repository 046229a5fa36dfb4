use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Whether a condition holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ConditionStatus {
    /// The condition holds.
    True,
    /// The condition does not hold.
    False,
    /// It is not known yet whether the condition holds.
    #[default]
    Unknown,
}

/// One aspect of an object's current state, in the shape of a Kubernetes `metav1.Condition`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// The aspect: `Ready`, `Reconciling` or `Stalled`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: ConditionStatus,
    /// A short CamelCase word saying why the condition has this status, e.g. `Synced`,
    /// `AuthenticationFailed`, `InvalidSelector`.
    pub reason: String,
    /// What happened, in words a user can act on.
    #[serde(default)]
    pub message: String,
    /// When the status last changed (RFC 3339).
    pub last_transition_time: String,
    /// The `metadata.generation` this condition was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// The condition types the controller writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConditionType {
    /// The last sync succeeded and nothing needs attention.
    Ready,
    /// A sync is under way or scheduled.
    Reconciling,
    /// The controller cannot make progress without a change from the user.
    Stalled,
}

impl ConditionType {
    /// The type as written in `status.conditions[].type`.
    pub fn as_str(self) -> &'static str {
        match self {
            ConditionType::Ready => "Ready",
            ConditionType::Reconciling => "Reconciling",
            ConditionType::Stalled => "Stalled",
        }
    }
}

/// Every `reason` the controller writes on a condition (and on the Warning Events of the same
/// problems). Users and alerts match on these words: they are a public contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reason {
    // GitRepository, after a sync that ran.
    /// Everything is in sync.
    Synced,
    /// Writes are paused (`spec.suspend`, or this replica is not the leader).
    Suspended,
    /// A SyncRule of the repository cannot be used.
    InvalidRule,
    /// A Secret would have been written to Git in plain text.
    SecretExportRefused,
    /// Two manifests describe the same object.
    DuplicateManifest,
    /// A manifest's kind is not served by the cluster.
    UnknownKind,
    /// A manifest could not be read.
    ManifestError,
    /// An input under `spec.path` was skipped (a file that does not parse, is not UTF-8, is
    /// too large or a symlink, an input over the budget, a `generateName` document, an object
    /// that cannot be applied): until it is read, nothing is pruned and no new file is written.
    SourceIncomplete,
    /// A live object's name (or namespace) cannot become a file path; it is not exported,
    /// everything else is.
    UnsafePath,
    /// The sync would delete more objects than `spec.pruneLimit` allows, or would prune
    /// because Git holds no manifest without the path having been emptied on purpose; it
    /// deleted nothing.
    PruneLimitExceeded,
    /// A write to the cluster failed.
    ApplyFailed,
    /// An object is out of the repository's reach: another namespace or a cluster-scoped
    /// object for a repository confined to its namespace, or what its ServiceAccount may not
    /// do (`docs/security.md`).
    Forbidden,
    /// An object is held by another GitRepository (or was created outside any): left alone
    /// until it is handed over with the `gitcontroller.io/adopt` annotation.
    Conflict,
    /// `allowPlaintextSecrets` is true, but the controller runs without
    /// `--allow-plaintext-secrets`.
    PlaintextSecretsNotAllowed,
    /// Reconciling: waiting for the next change.
    Idle,
    /// Stalled=False: progress is possible.
    Progressing,
    /// Reconciling: a failed sync will be retried.
    RetryScheduled,
    // GitRepository, after a sync that failed (one per error category).
    /// The remote refused the credentials (or its host key or certificate is not trusted).
    AuthenticationFailed,
    /// The remote could not be reached, or did not answer in time.
    GitUnreachable,
    /// The remote repository does not exist.
    GitNotFound,
    /// The remote has no branch `spec.branch` (a typo, or it was deleted), and
    /// `spec.createBranch` is off.
    BranchNotFound,
    /// `spec.path` does not exist at the head of the branch.
    PathNotFound,
    /// The remote refused a push.
    PushRejected,
    /// `spec.path` or a file path is not allowed.
    InvalidPath,
    /// The Kubernetes API failed a request.
    KubernetesError,
    /// The GitRepository is unusable as written.
    InvalidSpec,
    /// The credentials Secret is missing or unusable.
    CredentialsError,
    /// Anything else.
    InternalError,
    // SyncRule.
    /// The rule is valid and selects served resource types.
    Resolved,
    /// No served resource type matches the rule (yet).
    NoMatchingResources,
    /// `labelSelector` does not parse.
    InvalidSelector,
    /// A filter is not a valid JSON pointer.
    InvalidFilter,
    /// `repositoryRef` names no GitRepository.
    RepositoryNotFound,
}

impl Reason {
    /// The CamelCase word written in `reason`.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Synced => "Synced",
            Reason::Suspended => "Suspended",
            Reason::InvalidRule => "InvalidRule",
            Reason::SecretExportRefused => "SecretExportRefused",
            Reason::DuplicateManifest => "DuplicateManifest",
            Reason::UnknownKind => "UnknownKind",
            Reason::ManifestError => "ManifestError",
            Reason::SourceIncomplete => "SourceIncomplete",
            Reason::UnsafePath => "UnsafePath",
            Reason::PruneLimitExceeded => "PruneLimitExceeded",
            Reason::ApplyFailed => "ApplyFailed",
            Reason::Forbidden => "Forbidden",
            Reason::Conflict => "Conflict",
            Reason::PlaintextSecretsNotAllowed => "PlaintextSecretsNotAllowed",
            Reason::Idle => "Idle",
            Reason::Progressing => "Progressing",
            Reason::RetryScheduled => "RetryScheduled",
            Reason::AuthenticationFailed => "AuthenticationFailed",
            Reason::GitUnreachable => "GitUnreachable",
            Reason::GitNotFound => "GitNotFound",
            Reason::BranchNotFound => "BranchNotFound",
            Reason::PathNotFound => "PathNotFound",
            Reason::PushRejected => "PushRejected",
            Reason::InvalidPath => "InvalidPath",
            Reason::KubernetesError => "KubernetesError",
            Reason::InvalidSpec => "InvalidSpec",
            Reason::CredentialsError => "CredentialsError",
            Reason::InternalError => "InternalError",
            Reason::Resolved => "Resolved",
            Reason::NoMatchingResources => "NoMatchingResources",
            Reason::InvalidSelector => "InvalidSelector",
            Reason::InvalidFilter => "InvalidFilter",
            Reason::RepositoryNotFound => "RepositoryNotFound",
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
