//! The one error type of the Git layer, with a short fixed category for conditions, events
//! and metric labels.

use std::fmt;

/// Everything that can go wrong in the Git layer. Messages never contain secret values
/// (passwords, tokens, private keys, passphrases): libgit2 messages are passed through a
/// redaction of the configured secrets and of URL user-info before they are stored.
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
    /// The repository or the branch does not exist on the remote.
    #[error("not found: {0}")]
    NotFound(String),
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
    /// Invalid configuration (bad URL, bad credentials data, unusable cache directory).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Anything else (local I/O, libgit2 internals).
    #[error("internal error: {0}")]
    Internal(String),
}

/// The fixed set of categories (`Error::category`).
pub const CATEGORIES: &[&str] = &[
    "auth",
    "network",
    "not-found",
    "rejected",
    "conflict",
    "invalid-path",
    "parse",
    "internal",
];

impl Error {
    /// A short fixed category: one of `auth`, `network`, `not-found`, `rejected`,
    /// `conflict`, `invalid-path`, `parse`, `internal` (see [`CATEGORIES`]). Host-key
    /// failures count as `auth`; [`Error::Config`] (a bad URL or cache directory) as
    /// `internal` (unusable credentials are reported as [`Error::Auth`]).
    pub fn category(&self) -> &'static str {
        match self {
            Error::Auth(_) | Error::HostKey(_) => "auth",
            Error::Network(_) => "network",
            Error::NotFound(_) => "not-found",
            Error::Rejected(_) => "rejected",
            Error::Conflict(_) => "conflict",
            Error::InvalidPath { .. } => "invalid-path",
            Error::Parse { .. } => "parse",
            Error::Config(_) | Error::Internal(_) => "internal",
        }
    }

    /// Whether retrying the same operation later may succeed without a configuration change
    /// (network trouble, lost races).
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Network(_) | Error::Conflict(_))
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
