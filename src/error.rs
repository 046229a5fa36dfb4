//! The controller's errors. Each has a fixed [`Category`]: its word is the `category` label of
//! `gitcontroller_reconcile_errors_total`, and it decides the `Ready` condition's [`Reason`] and
//! whether the repository is `Stalled`.

use crate::api::Reason;

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
    /// A Git step (fetch, or commit and push with its retries) did not finish in time.
    #[error("Git: no answer from the remote within {0:?}")]
    GitTimeout(std::time::Duration),
    /// An earlier Git step of the same repository (one that timed out) has not returned yet.
    #[error("Git: an earlier operation on this repository is still running")]
    GitBusy,
    /// A write was about to happen while writes are not allowed (leadership lost).
    #[error("writes are not allowed: this replica is not the leader")]
    WritesNotAllowed,
    /// A blocking task panicked or was cancelled, or the steps ran out of order.
    #[error("internal: {0}")]
    Internal(String),
}

/// What kind of failure an [`Error`] is. [`Category::as_str`] is the `category` label of
/// `gitcontroller_reconcile_errors_total`; its values are a public contract (alerts and the
/// dashboard group by them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Category {
    /// Git authentication, host key or TLS trust failed (`auth`).
    Auth,
    /// The Git remote could not be reached or did not answer in time (`network`).
    Network,
    /// The Git repository or branch does not exist (`not-found`).
    NotFound,
    /// The remote refused a push (`rejected`).
    Rejected,
    /// A push kept losing races, or the changes contradict the tree (`conflict`).
    Conflict,
    /// A path is not allowed (`invalid-path`).
    InvalidPath,
    /// A file could not be parsed or edited (`parse`).
    Parse,
    /// The Kubernetes API failed a request (`kube`).
    Kube,
    /// The GitRepository is unusable as written (`invalid-spec`).
    InvalidSpec,
    /// The credentials Secret is missing or unusable (`credentials`).
    Credentials,
    /// The remote has no branch `spec.branch` and `spec.createBranch` is off
    /// (`branch-not-found`).
    BranchNotFound,
    /// `spec.path` does not exist at the head of the branch (`path-not-found`).
    PathNotFound,
    /// Anything else (`internal`).
    Internal,
}

impl Category {
    /// Every category, in the order of the enum.
    pub const ALL: [Category; 13] = [
        Category::Auth,
        Category::Network,
        Category::NotFound,
        Category::Rejected,
        Category::Conflict,
        Category::InvalidPath,
        Category::Parse,
        Category::Kube,
        Category::InvalidSpec,
        Category::Credentials,
        Category::BranchNotFound,
        Category::PathNotFound,
        Category::Internal,
    ];

    /// The metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Auth => "auth",
            Category::Network => "network",
            Category::NotFound => "not-found",
            Category::Rejected => "rejected",
            Category::Conflict => "conflict",
            Category::InvalidPath => "invalid-path",
            Category::Parse => "parse",
            Category::Kube => "kube",
            Category::InvalidSpec => "invalid-spec",
            Category::Credentials => "credentials",
            Category::BranchNotFound => "branch-not-found",
            Category::PathNotFound => "path-not-found",
            Category::Internal => "internal",
        }
    }

    /// The category of a Git layer error.
    fn of_git(error: &gitcontroller_git::Error) -> Self {
        use gitcontroller_git::Category as Git;
        match error.category() {
            Git::Auth => Category::Auth,
            Git::Network => Category::Network,
            Git::NotFound => Category::NotFound,
            Git::BranchNotFound => Category::BranchNotFound,
            Git::PathNotFound => Category::PathNotFound,
            Git::Rejected => Category::Rejected,
            Git::Conflict => Category::Conflict,
            Git::InvalidPath => Category::InvalidPath,
            Git::Parse => Category::Parse,
            Git::Internal => Category::Internal,
        }
    }

    /// Whether retrying without a change from the user is pointless (the `Stalled` condition).
    pub fn is_stalled(self) -> bool {
        matches!(
            self,
            Category::Auth
                | Category::InvalidSpec
                | Category::Credentials
                | Category::InvalidPath
                | Category::BranchNotFound
                | Category::PathNotFound
        )
    }

    /// The reason on the `Ready` condition and on the Warning Event.
    pub fn reason(self) -> Reason {
        match self {
            Category::Auth => Reason::AuthenticationFailed,
            Category::Network => Reason::GitUnreachable,
            Category::NotFound => Reason::GitNotFound,
            Category::Rejected | Category::Conflict => Reason::PushRejected,
            Category::InvalidPath => Reason::InvalidPath,
            Category::Parse => Reason::ManifestError,
            Category::Kube => Reason::KubernetesError,
            Category::InvalidSpec => Reason::InvalidSpec,
            Category::Credentials => Reason::CredentialsError,
            Category::BranchNotFound => Reason::BranchNotFound,
            Category::PathNotFound => Reason::PathNotFound,
            Category::Internal => Reason::InternalError,
        }
    }
}

impl std::fmt::Display for Category {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Error {
    /// The category: `kube`, `invalid-spec`, `credentials`, `internal`, or the Git layer's
    /// own (`auth`, `network`, `not-found`, ...). A Git step that timed out or is still
    /// running counts as `network`.
    pub fn category(&self) -> Category {
        match self {
            Error::Kube(_) => Category::Kube,
            Error::Git(e) => Category::of_git(e),
            Error::GitTimeout(_) | Error::GitBusy => Category::Network,
            Error::InvalidSpec(_) => Category::InvalidSpec,
            Error::Credentials(_) => Category::Credentials,
            Error::WritesNotAllowed | Error::Internal(_) => Category::Internal,
        }
    }

    /// Whether retrying without a change from the user is pointless (the `Stalled` condition).
    pub fn is_stalled(&self) -> bool {
        self.category().is_stalled()
    }

    /// The reason used on the `Ready` condition and on Events.
    pub fn reason(&self) -> Reason {
        self.category().reason()
    }
}

/// Result with the controller's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_errors_keep_the_git_layers_category_word() {
        use gitcontroller_git::Error as Git;
        let samples = [
            Git::Auth("a".into()),
            Git::HostKey("h".into()),
            Git::Network("n".into()),
            Git::NotFound("n".into()),
            Git::BranchNotFound {
                branch: "b".into(),
                url: "u".into(),
                detail: String::new(),
            },
            Git::PathNotFound {
                path: "p".into(),
                commit: "c".into(),
                detail: String::new(),
            },
            Git::Rejected("r".into()),
            Git::Conflict("c".into()),
            Git::InvalidPath {
                path: "p".into(),
                reason: "r".into(),
            },
            Git::Parse {
                path: "p".into(),
                message: "m".into(),
            },
            Git::Config("c".into()),
            Git::Internal("i".into()),
        ];
        for git in samples {
            let word = git.category().as_str();
            assert_eq!(Error::Git(git).category().as_str(), word);
        }
        let words: std::collections::BTreeSet<_> =
            Category::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(words.len(), Category::ALL.len(), "distinct label values");
    }

    #[test]
    fn stalled_errors_are_the_ones_only_the_user_can_fix() {
        let stalled: Vec<_> = Category::ALL
            .into_iter()
            .filter(|c| c.is_stalled())
            .collect();
        assert_eq!(
            stalled,
            [
                Category::Auth,
                Category::InvalidPath,
                Category::InvalidSpec,
                Category::Credentials,
                Category::BranchNotFound,
                Category::PathNotFound,
            ]
        );
        assert_eq!(Error::GitBusy.category(), Category::Network);
        assert_eq!(Error::GitBusy.reason(), Reason::GitUnreachable);
    }
}
