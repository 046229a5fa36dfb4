//! The one error type of the Git layer, with a short fixed category for conditions, events
//! and metric labels.

use std::fmt;

/// Everything that can go wrong in the Git layer. Messages never contain secret values
/// (passwords, tokens, private keys, passphrases, URL query values): libgit2 messages are
/// passed through a redaction of the configured secrets and of URL credentials before they
/// are stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Authentication failed or is impossible with the given credentials (wrong password or
    /// key, missing credentials, TLS certificate not trusted).
    #[error("authentication failed: {0}")]
    Auth(String),
    /// The SSH server's host key is not in `known_hosts` (or does not match it, or is
    /// revoked).
    #[error("host key verification failed: {0}")]
    HostKey(String),
    /// The remote cannot be reached or the connection broke (refused, reset, DNS, timeout).
    #[error("network error: {0}")]
    Network(String),
    /// The repository does not exist on the remote (or is not exported), or a commit asked
    /// for is not in the cache.
    #[error("not found: {0}")]
    NotFound(String),
    /// The remote has refs but not the branch (a typo, or the branch was deleted), and the
    /// spec does not allow creating it ([`RepoSpec::create_branch`](crate::RepoSpec)).
    /// Nothing was read and nothing is pushed.
    #[error("branch {branch:?} not found on {url}{detail}")]
    BranchNotFound {
        /// The branch (without `refs/heads/`).
        branch: String,
        /// The remote URL (credentials and query values redacted).
        url: String,
        /// More context (starts with `: ` when not empty).
        detail: String,
    },
    /// `spec.path` does not exist at the commit (a typo, or the directory was removed).
    /// Nothing was read and nothing is pushed.
    #[error("path {path:?} not found at commit {commit}{detail}")]
    PathNotFound {
        /// The (normalized) `spec.path`.
        path: String,
        /// The commit it was looked up in.
        commit: String,
        /// More context (starts with `: ` when not empty).
        detail: String,
    },
    /// The remote refused our push for a reason other than a race (hook declined, protected
    /// branch, permission), so retrying would not help.
    #[error("push rejected by the remote: {0}")]
    Rejected(String),
    /// Our push kept losing races with other pushers (non-fast-forward) until the attempts
    /// ran out, or the changes contradict each other or the tree (e.g. two changes for one
    /// document, or a file where a directory is needed). Retry later.
    #[error("conflict: {0}")]
    Conflict(String),
    /// A path is absolute, contains `..`, `.git` or empty components, or goes through a
    /// symlink.
    #[error("invalid path {path:?}: {reason}")]
    InvalidPath {
        /// The offending path (as given).
        path: String,
        /// Why it is refused.
        reason: String,
    },
    /// A file could not be parsed or edited (invalid YAML/JSON, no such document).
    #[error("cannot edit {path}: {message}")]
    Parse {
        /// The file (relative to the repository root).
        path: String,
        /// What went wrong.
        message: String,
    },
    /// Invalid configuration (bad URL, a local URL without `allow_local`, bad credentials
    /// data, unusable cache directory).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Anything else (local I/O, libgit2 internals).
    #[error("internal error: {0}")]
    Internal(String),
}

/// The category of an [`Error`]: a closed set, for conditions and metric labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Category {
    /// Authentication or host-key/TLS verification failed (`auth`).
    Auth,
    /// The remote could not be reached (`network`).
    Network,
    /// The repository does not exist on the remote (`not-found`).
    NotFound,
    /// The remote has refs but not the branch (`branch-not-found`).
    BranchNotFound,
    /// `spec.path` does not exist at the head commit (`path-not-found`).
    PathNotFound,
    /// The remote refused the push for a non-race reason (`rejected`).
    Rejected,
    /// Lost races until the attempts ran out, or contradictory changes (`conflict`).
    Conflict,
    /// A path that is refused (`invalid-path`).
    InvalidPath,
    /// A file that does not parse or edit (`parse`).
    Parse,
    /// Invalid configuration or an internal failure (`internal`).
    Internal,
}

impl Category {
    /// Every category, in a fixed order.
    pub const ALL: [Category; 10] = [
        Category::Auth,
        Category::Network,
        Category::NotFound,
        Category::BranchNotFound,
        Category::PathNotFound,
        Category::Rejected,
        Category::Conflict,
        Category::InvalidPath,
        Category::Parse,
        Category::Internal,
    ];

    /// The fixed kebab-case word used as a metric label (`auth`, `network`, `not-found`,
    /// `branch-not-found`, `path-not-found`, `rejected`, `conflict`, `invalid-path`, `parse`,
    /// `internal`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Category::Auth => "auth",
            Category::Network => "network",
            Category::NotFound => "not-found",
            Category::BranchNotFound => "branch-not-found",
            Category::PathNotFound => "path-not-found",
            Category::Rejected => "rejected",
            Category::Conflict => "conflict",
            Category::InvalidPath => "invalid-path",
            Category::Parse => "parse",
            Category::Internal => "internal",
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for Category {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<str> for Category {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

/// The fixed set of category words (`Category::as_str` of [`Category::ALL`]).
pub const CATEGORIES: &[&str] = &[
    Category::Auth.as_str(),
    Category::Network.as_str(),
    Category::NotFound.as_str(),
    Category::BranchNotFound.as_str(),
    Category::PathNotFound.as_str(),
    Category::Rejected.as_str(),
    Category::Conflict.as_str(),
    Category::InvalidPath.as_str(),
    Category::Parse.as_str(),
    Category::Internal.as_str(),
];

impl Error {
    /// The category. Host-key failures count as [`Category::Auth`]; [`Error::Config`] (a bad
    /// URL or cache directory) as [`Category::Internal`] (unusable credentials are reported
    /// as [`Error::Auth`]).
    pub fn category(&self) -> Category {
        match self {
            Error::Auth(_) | Error::HostKey(_) => Category::Auth,
            Error::Network(_) => Category::Network,
            Error::NotFound(_) => Category::NotFound,
            Error::BranchNotFound { .. } => Category::BranchNotFound,
            Error::PathNotFound { .. } => Category::PathNotFound,
            Error::Rejected(_) => Category::Rejected,
            Error::Conflict(_) => Category::Conflict,
            Error::InvalidPath { .. } => Category::InvalidPath,
            Error::Parse { .. } => Category::Parse,
            Error::Config(_) | Error::Internal(_) => Category::Internal,
        }
    }

    /// Whether retrying the same operation later may succeed without a configuration change
    /// (network trouble, lost races).
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Network(_) | Error::Conflict(_))
    }

    /// Whether calling again with the same spec, secret and remote content can succeed.
    /// `false` means only a change helps — of the spec or secret (bad credentials, host key,
    /// configuration, refused path) or of the remote (a missing repository, branch or path, a
    /// file that does not parse, a push the remote refuses): the `Stalled` condition. `true`
    /// for network trouble, lost races and internal failures (local I/O).
    pub fn retry_can_help(&self) -> bool {
        match self {
            Error::Network(_) | Error::Conflict(_) | Error::Internal(_) => true,
            Error::Auth(_)
            | Error::HostKey(_)
            | Error::NotFound(_)
            | Error::BranchNotFound { .. }
            | Error::PathNotFound { .. }
            | Error::Rejected(_)
            | Error::InvalidPath { .. }
            | Error::Parse { .. }
            | Error::Config(_) => false,
        }
    }

    pub(crate) fn invalid_path(path: impl fmt::Display, reason: impl fmt::Display) -> Self {
        Error::InvalidPath {
            path: path.to_string(),
            reason: reason.to_string(),
        }
    }
}

/// A `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_are_the_metric_words() {
        let words: Vec<&str> = Category::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(words, CATEGORIES);
        // Today's labels are kept.
        for old in [
            "auth",
            "network",
            "not-found",
            "rejected",
            "conflict",
            "invalid-path",
            "parse",
            "internal",
        ] {
            assert!(CATEGORIES.contains(&old), "{old}");
        }
        let e = Error::BranchNotFound {
            branch: "mian".into(),
            url: "git://h/r.git".into(),
            detail: String::new(),
        };
        assert_eq!(e.category(), Category::BranchNotFound);
        assert_eq!(e.category(), "branch-not-found");
        assert!(!e.retry_can_help());
        assert!(Error::Network("x".into()).retry_can_help());
        assert_eq!(Error::Config("x".into()).category(), "internal");
        assert!(!Error::Config("x".into()).retry_can_help());
    }
}
