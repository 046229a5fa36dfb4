//! [`SyncReport`]: what one sync found and did, as plain data. The status and the Events are
//! computed from it, once, at the end of a reconcile.

use std::collections::BTreeMap;

use gitcontroller_git::FileEdit;
use gitcontroller_sync::{
    Counts, Diagnostic, DiagnosticReason, HoldCause, ObjectId, PruneRefusal, Severity,
};
use k8s_openapi::api::core::v1::ObjectReference;

use super::repository::Inventory;
use super::rules::InvalidRule;
use crate::access::identity::PlaintextSecrets;
use crate::api::Reason;
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
    pub inventory: Inventory,
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
    /// Why the prune guard refused this sync's deletes, if it did.
    pub prune_refused: Option<PruneRefusal>,
    /// What was written to the cluster.
    pub cluster: ClusterOutcome,
    /// What was written to Git.
    pub git: GitOutcome,
    /// Objects this repository has applied, after this sync.
    pub inventory: Inventory,
    /// `inventory` as the status listed it before this sync, when it is that list's: then
    /// it is written back as it was read.
    pub inventory_list: Option<crate::api::InventoryList>,
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

    /// What keeps the repository from being Ready although the sync ran, each with its
    /// condition reason, the one to name first first: plain-text Secrets the admin refused,
    /// objects out of reach or owned by another repository, invalid rules, the prune guard's
    /// refusal, the planner's findings (skipped inputs before the rest), failed writes. The
    /// status and the Warning Events both say these.
    pub fn problems(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        if self.plaintext_secrets == PlaintextSecrets::RefusedByAdmin {
            problems.push(Problem {
                reason: Reason::PlaintextSecretsNotAllowed,
                message: "allowPlaintextSecrets is true, but the controller runs without \
                          --allow-plaintext-secrets: no Secret is written to Git"
                    .to_string(),
            });
        }
        for (id, why) in self.forbidden() {
            problems.push(Problem {
                reason: Reason::Forbidden,
                message: format!("{id}: {why}"),
            });
        }
        for (id, message) in &self.cluster.conflicts {
            problems.push(Problem {
                reason: Reason::Conflict,
                message: format!("{id}: {message}"),
            });
        }
        for rule in &self.invalid_rules {
            problems.push(Problem {
                reason: Reason::InvalidRule,
                message: format!("SyncRule {}: {}", rule.name, self.held_by_rule(rule)),
            });
        }
        if let Some(refusal) = &self.prune_refused {
            problems.push(Problem {
                reason: Reason::PruneLimitExceeded,
                message: format!("prune refused: {refusal}"),
            });
        }
        problems.extend(
            self.diagnostics
                .iter()
                .filter(|d| is_problem(d))
                .map(|d| Problem {
                    reason: diagnostic_reason(d.reason),
                    message: d.to_string(),
                }),
        );
        for (id, error) in &self.cluster.failed {
            problems.push(Problem {
                reason: Reason::ApplyFailed,
                message: format!("{id}: {error}"),
            });
        }
        problems
    }

    /// What an invalid rule holds back, in the planner's words (which name the error),
    /// naming a few of the objects.
    fn held_by_rule(&self, rule: &InvalidRule) -> String {
        let cause = DiagnosticReason::HeldBack(HoldCause::InvalidRule);
        let of_rule =
            |d: &&Diagnostic| d.reason == cause && d.rule.as_deref() == Some(rule.name.as_str());
        let summary = self
            .diagnostics
            .iter()
            .filter(of_rule)
            .find(|d| d.object.is_none())
            .map_or_else(|| rule.error.to_string(), |d| d.message.clone());
        let mut objects: Vec<String> = self
            .diagnostics
            .iter()
            .filter(of_rule)
            .filter_map(|d| d.object.as_ref().map(ToString::to_string))
            .collect();
        objects.dedup();
        if objects.is_empty() {
            return summary;
        }
        let more = objects.len().saturating_sub(MAX_NAMED);
        objects.truncate(MAX_NAMED);
        let mut text = format!("{summary}; held back: {}", objects.join(", "));
        if more > 0 {
            text.push_str(&format!(" and {more} more"));
        }
        text
    }
}

/// How many held-back objects a status message names.
const MAX_NAMED: usize = 5;

/// A reason the repository is not Ready, in the words of its condition and Warning Event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The condition (and Event) reason.
    pub reason: Reason,
    /// What is wrong, naming the file, object or rule.
    pub message: String,
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

/// The condition reason of a planner finding that keeps the repository from being Ready.
pub fn diagnostic_reason(reason: DiagnosticReason) -> Reason {
    match reason {
        DiagnosticReason::SkippedInput(_) => Reason::SourceIncomplete,
        DiagnosticReason::UnsafePath => Reason::UnsafePath,
        DiagnosticReason::SecretExportRefused => Reason::SecretExportRefused,
        DiagnosticReason::Duplicate => Reason::DuplicateManifest,
        DiagnosticReason::UnknownKind => Reason::UnknownKind,
        DiagnosticReason::InvalidRule => Reason::InvalidRule,
        DiagnosticReason::HeldBack(HoldCause::PruneLimit) => Reason::PruneLimitExceeded,
        DiagnosticReason::HeldBack(HoldCause::InvalidRule) => Reason::InvalidRule,
        DiagnosticReason::HeldBack(HoldCause::IncompleteSource) => Reason::SourceIncomplete,
        DiagnosticReason::NotAnObject
        | DiagnosticReason::NoMatchingRule
        | DiagnosticReason::HeldBack(HoldCause::ListItem) => Reason::ManifestError,
    }
}

#[cfg(test)]
mod tests {
    use gitcontroller_sync::{Rule, SkipReason, SyncTo};

    use super::*;
    use crate::controller::convert::RuleError;

    fn held(object: Option<&str>, rule: &str, message: &str) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            file: None,
            line: None,
            object: object.map(|name| ObjectId::new("", "ConfigMap", Some("ns"), name)),
            rule: Some(rule.into()),
            reason: DiagnosticReason::HeldBack(HoldCause::InvalidRule),
            message: message.into(),
        }
    }

    #[test]
    fn an_invalid_rule_names_what_it_holds_back() {
        let report = SyncReport {
            invalid_rules: vec![InvalidRule {
                name: "protect".into(),
                error: RuleError::LabelSelector {
                    text: "app in (".into(),
                    error: "unclosed".into(),
                },
                scope: Rule::new("protect", SyncTo::Ignore),
            }],
            diagnostics: (0..7)
                .map(|i| held(Some(&format!("cm-{i}")), "protect", "would be applied"))
                .chain([held(None, "protect", "the rule is invalid (x); 7 objects")])
                .collect(),
            ..SyncReport::default()
        };
        let problems = report.problems();
        assert_eq!(
            problems.len(),
            1,
            "held-back actions are not problems of their own"
        );
        assert_eq!(problems[0].reason, Reason::InvalidRule);
        let message = &problems[0].message;
        assert!(
            message.starts_with(
                "SyncRule protect: the rule is invalid (x); 7 objects; held back: ConfigMap ns/cm-0"
            ),
            "{message}"
        );
        assert!(message.ends_with("and 2 more"), "{message}");
    }

    #[test]
    fn planner_findings_have_their_own_condition_reasons() {
        for (finding, reason) in [
            (
                DiagnosticReason::SkippedInput(SkipReason::NotUtf8),
                Reason::SourceIncomplete,
            ),
            (
                DiagnosticReason::SkippedInput(SkipReason::ParseError),
                Reason::SourceIncomplete,
            ),
            (DiagnosticReason::UnsafePath, Reason::UnsafePath),
            (DiagnosticReason::Duplicate, Reason::DuplicateManifest),
            (DiagnosticReason::UnknownKind, Reason::UnknownKind),
            (
                DiagnosticReason::HeldBack(HoldCause::PruneLimit),
                Reason::PruneLimitExceeded,
            ),
        ] {
            assert_eq!(diagnostic_reason(finding), reason, "{finding:?}");
        }
    }
}
