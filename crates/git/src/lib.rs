//! The Git layer of git-controller: everything the controller does to a repository, on
//! libgit2 (`git2`).
//!
//! - [`Repository::open`] the remote's bare **object store** (`cache_dir/<hash>.git`, one per
//!   remote URL, shared by its branches and paths) that survives reconciles;
//!   [`Repository::fetch`] one branch into it, incrementally. Fails closed: a missing branch
//!   is [`Error::BranchNotFound`], only an empty remote has no head. [`gc`] removes stores
//!   and branches no repository uses.
//! - [`Repository::snapshot`] reads the manifests under `spec.path` at a commit **straight
//!   from the object database**: no checkout, no working tree to corrupt or escape; symlinks
//!   are never followed; input [`Limits`] are checked while walking and before loading, and
//!   what was left out is typed ([`SkipReason`], [`Truncated`]). A missing `spec.path` is
//!   [`Error::PathNotFound`].
//! - [`Repository::commit_and_push`] builds one commit **from the object database** (blobs →
//!   trees → commit, parent = the remote head) from the [`FileChange`]s a `derive` callback
//!   returns, and pushes it **without force**. A rejected push (the branch moved) re-fetches
//!   and calls `derive` again on the new head: the change is re-derived from the current
//!   state, never replayed as text. Its cost follows the change: a caller's snapshot of the
//!   head is reused (`commit_and_push_on`), only the objects made are stored, and the pushed
//!   commit's snapshot is derived, not read ([`PushOutcome::snapshot`]).
//! - [`edit_files`] previews a list of [`FileChange`]s against a [`Snapshot`]: the exact text
//!   `commit_and_push` would commit, file by file, without touching the repository.
//! - [`yamledit`] edits YAML **keeping what people wrote**: changing one field changes only
//!   that field's lines.
//! - [`Credentials`] from a Flux-style Secret (`identity`, `known_hosts`, `username`,
//!   `password`, `bearerToken`, `ca.crt`); SSH host keys are always verified. Secret values
//!   never appear in `Debug` output or error messages.
//! - One [`Error`] type with a fixed [`Category`] for conditions and metrics.
//!
//! Everything here is blocking; from async code call it in `tokio::task::spawn_blocking`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod change;
mod credentials;
mod error;
mod files;
pub mod paths;
mod repo;
mod shared_fetch;
mod snapshot;
mod store;
mod tree_edit;
pub mod yamledit;

pub use change::{FileChange, FileEdit};
pub use credentials::{Auth, Credentials};
pub use error::{CATEGORIES, Category, Error, Result};
pub use files::{Iter as SnapshotFilesIter, SnapshotFiles};
pub use repo::{Author, Fetched, PushOutcome, RepoSpec, Repository, RetryPolicy, edit_files};
pub use snapshot::{
    Budget, Limits, MAX_FILE_BYTES, SkipReason, SkippedFile, Snapshot, SnapshotFile, Truncated,
};
pub use store::{GcReport, gc, remove};
