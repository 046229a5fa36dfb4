//! The controller's errors. Each has a short fixed `category()`, used as the `category` label of
//! `gitcontroller_reconcile_errors_total` and as the reason of the `Ready` condition.

/// An error that stopped (part of) a reconcile.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Kubernetes API refused or failed a request.
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// A Git operation failed.
    #[error("Git: {0}")]
    Git(#[from] gitcontroller_git::Error),
    /// The GitRepository or one of its references is unusable as written.
    #[error("{0}")]
    InvalidSpec(String),
    /// The credentials Secret is missing or unusable.
    #[error("credentials: {0}")]
    Credentials(String),
    /// A Git step did not finish in time, or an earlier one of the same repository still runs.
    #[error("Git: no answer from the remote within {0:?}")]
    GitTimeout(std::time::Duration),
    /// An earlier Git step of the same repository has not returned yet.
    #[error("Git: an earlier operation on this repository is still running")]
    GitBusy,
    /// A blocking task panicked or was cancelled.
    #[error("internal: {0}")]
    Internal(String),
}

impl Error {
    /// A short fixed word for metrics and conditions: `kube`, `invalid-spec`, `credentials`,
    /// `internal`, or the Git layer's own category (`auth`, `network`, `not-found`, ...).
    pub fn category(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kube",
            Error::Git(e) => e.category(),
            Error::GitTimeout(_) | Error::GitBusy => "network",
            Error::InvalidSpec(_) => "invalid-spec",
            Error::Credentials(_) => "credentials",
            Error::Internal(_) => "internal",
        }
    }

    /// Whether retrying without a change from the user is pointless (the `Stalled` condition).
    pub fn is_stalled(&self) -> bool {
        matches!(
            self.category(),
            "auth" | "invalid-spec" | "credentials" | "invalid-path"
        )
    }

    /// The CamelCase reason used on the `Ready` condition and on Events.
    pub fn reason(&self) -> &'static str {
        match self.category() {
            "auth" => "AuthenticationFailed",
            "network" => "GitUnreachable",
            "not-found" => "GitNotFound",
            "rejected" | "conflict" => "PushRejected",
            "invalid-path" => "InvalidPath",
            "parse" => "ManifestError",
            "kube" => "KubernetesError",
            "invalid-spec" => "InvalidSpec",
            "credentials" => "CredentialsError",
            _ => "InternalError",
        }
    }
}

/// Result with the controller's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
