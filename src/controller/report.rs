//! [`SyncReport`]: what one sync found and did, as plain data. The status and the Events are
//! computed from it, once, at the end of a reconcile.

use std::collections::{BTreeMap, BTreeSet};

use gitcontroller_git::FileEdit;
use gitcontroller_sync::{Counts, Diagnostic, DiagnosticReason, ObjectId, Severity};
use k8s_openapi::api::core::v1::ObjectReference;

use super::rules::InvalidRule;
use crate::access::identity::PlaintextSecrets;
use crate::error::Error;

/// How a sync ended: what it did, or the error that stopped it.
pub type Outcome<'a> = std::result::Result<&'a SyncReport, &'a Error>;

/// Why a sync stopped before writing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// `spec.suspend` is true.
    Suspended,
    /// This replica may not write (it is not the leader).
    NotLeader,
}

impl Stop {
    /// A short phrase for status messages and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Stop::Suspended => "suspended",
            Stop::NotLeader => "not the leader",
        }
    }
}

/// What the apply step did to the cluster.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClusterOutcome {
    /// Objects created.
    pub created: Vec<ObjectId>,
    /// Objects whose Git-governed fields were applied.
    pub applied: Vec<ObjectId>,
    /// Objects deleted (prune).
    pub deleted: Vec<ObjectId>,
    /// Writes that failed, with the error.
    pub failed: Vec<(ObjectId, String)>,
    /// Writes the API server refused to the repository's identity (HTTP 403), with its words.
    pub forbidden: Vec<(ObjectId, String)>,
    /// Objects left alone because another GitRepository (or no GitRepository) holds them,
    /// with the message that says so.
    pub conflicts: Vec<(ObjectId, String)>,
    /// Objects this repository has applied, after these writes.
    pub inventory: BTreeSet<ObjectId>,
    /// The objects created or applied, as the API server returned them (with their uid).
    pub references: BTreeMap<ObjectId, ObjectReference>,
}

/// What the write-back step did to Git.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GitOutcome {
    /// The commit pushed, if one was.
    pub commit: Option<String>,
    /// Objects written to Git (new files or updated fields).
    pub written: Vec<ObjectId>,
    /// Objects removed from Git.
    pub removed: Vec<ObjectId>,
    /// Pushes that had to be retried because the remote moved.
    pub push_retries: u32,
    /// With writes off (`diff`): each file's text before and after, exactly as it would be
    /// committed.
    pub preview: Vec<FileEdit>,
}

/// What a sync did; the status and Events are made from it.
#[derive(Clone, Debug, Default)]
pub struct SyncReport {
    /// The remote head the plan was made from, or our commit on top of it.
    pub commit: Option<String>,
    /// The commit the plan was made from (what was applied; empty before the first commit).
    pub source_commit: String,
    /// Objects by direction.
    pub counts: Counts,
    /// Planner diagnostics (unparsable files, duplicates, refused Secret exports, ...).
    pub diagnostics: Vec<Diagnostic>,
    /// Rules that cannot be used.
    pub invalid_rules: Vec<InvalidRule>,
    /// Manifests out of the repository's reach, left out of the plan, and why.
    pub refused: Vec<(ObjectId, String)>,
    /// What became of `allowPlaintextSecrets`.
    pub plaintext_secrets: PlaintextSecrets,
    /// What was written to the cluster.
    pub cluster: ClusterOutcome,
    /// What was written to Git.
    pub git: GitOutcome,
    /// Objects this repository has applied, after this sync.
    pub inventory: BTreeSet<ObjectId>,
    /// Why writes were skipped, if they were.
    pub stopped: Option<Stop>,
    /// How many changes a write would have made while writes were skipped.
    pub pending: usize,
    /// The objects this sync wrote or failed to write that exist (or existed) in the cluster,
    /// as Events regard them; an object missing here is named in an Event on the repository.
    pub references: BTreeMap<ObjectId, ObjectReference>,
}

impl SyncReport {
    /// Whether the sync changed anything, in either direction.
    pub fn acted(&self) -> bool {
        !(self.cluster.created.is_empty()
            && self.cluster.applied.is_empty()
            && self.cluster.deleted.is_empty()
            && self.git.written.is_empty()
            && self.git.removed.is_empty())
    }

    /// Every object out of reach: refused before planning, or by the API server on write.
    pub fn forbidden(&self) -> impl Iterator<Item = &(ObjectId, String)> {
        self.refused.iter().chain(&self.cluster.forbidden)
    }

    /// The planner findings that keep the repository from being Ready.
    pub fn problems(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| is_problem(d))
    }
}

/// Every object a sync wrote, in either direction, or failed to write.
pub fn touched<'a>(
    cluster: &'a ClusterOutcome,
    git: &'a GitOutcome,
) -> impl Iterator<Item = &'a ObjectId> {
    cluster
        .created
        .iter()
        .chain(&cluster.applied)
        .chain(&cluster.deleted)
        .chain(cluster.failed.iter().map(|(id, _)| id))
        .chain(&git.written)
        .chain(&git.removed)
}

/// Whether a planner finding keeps the repository from being Ready. Skipped documents
/// (kustomization.yaml, values files) and actions held back because of another finding are
/// not problems of their own.
pub fn is_problem(d: &Diagnostic) -> bool {
    d.severity != Severity::Info
        && !matches!(
            d.reason,
            DiagnosticReason::NotAnObject | DiagnosticReason::HeldBack(_)
        )
}
