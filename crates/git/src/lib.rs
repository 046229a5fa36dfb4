//! The Git layer of git-controller: everything the controller does to a repository, on
//! libgit2 (`git2`).
//!
//! - [`Repository::open`] a per-repository bare **cache** (`cache_dir/<hash>.git`) that
//!   survives reconciles; [`Repository::fetch`] one branch into it, incrementally.
//! - [`Repository::snapshot`] reads the manifests under `spec.path` at a commit **straight
//!   from the object database**: no checkout, no working tree to corrupt or escape; symlinks
//!   are never followed.
//! - [`Repository::commit_and_push`] builds one commit **from the object database** (blobs →
//!   trees → commit, parent = the remote head) from the [`FileChange`]s a `derive` callback
//!   returns, and pushes it **without force**. A rejected push (the branch moved) re-fetches
//!   and calls `derive` again on the new head: the change is re-derived from the current
//!   state, never replayed as text.
//! - [`edit_files`] previews a list of [`FileChange`]s against a [`Snapshot`]: the exact text
//!   `commit_and_push` would commit, file by file, without touching the repository.
//! - [`yamledit`] edits YAML **keeping what people wrote**: changing one field changes only
//!   that field's lines.
//! - [`Credentials`] from a Flux-style Secret (`identity`, `known_hosts`, `username`,
//!   `password`, `bearerToken`, `ca.crt`); SSH host keys are always verified. Secret values
//!   never appear in `Debug` output or error messages.
//! - One [`Error`] type with a short fixed [`Error::category`] for conditions and metrics.
//!
//! Everything here is blocking; from async code call it in `tokio::task::spawn_blocking`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod change;
mod credentials;
mod error;
pub mod paths;
mod repo;
pub mod yamledit;

pub use change::{FileChange, FileEdit};
pub use credentials::{Auth, Credentials};
pub use error::{CATEGORIES, Error, Result};
pub use repo::{
    Author, Fetched, MAX_FILE_BYTES, PushOutcome, RepoSpec, Repository, RetryPolicy, SkippedFile,
    Snapshot, SnapshotFile, edit_files,
};
