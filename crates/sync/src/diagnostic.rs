//! Diagnostics: everything the planner wants a person to know.

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ObjectId;

/// How serious a [`Diagnostic`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Severity {
    /// Expected and harmless (e.g. a `kustomization.yaml` skipped).
    Info,
    /// Something was not synced and a person may want to act.
    Warning,
    /// Something is broken (e.g. a file that does not parse).
    Error,
}

/// Why a [`Diagnostic`] was raised: a short, fixed set suitable for an Event `reason`
/// ([`as_str`](Self::as_str)); two of them carry a typed detail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum DiagnosticReason {
    /// An input was not read, so the source is **incomplete**: the objects it holds are
    /// missing from the manifests. While any input is skipped, nothing is pruned and no new
    /// file is written (see [`SkippedInput`](crate::SkippedInput)).
    SkippedInput(SkipReason),
    /// A document is not meant to be a Kubernetes object (a `kustomization.yaml`, Helm
    /// values: no `apiVersion` or `kind`, or a kind the cluster does not serve and no name).
    /// Harmless; the source stays complete.
    NotAnObject,
    /// Two manifests (or two live objects) have the same identity.
    Duplicate,
    /// The group and kind are not served by the cluster.
    UnknownKind,
    /// A Secret would have been written to Git in plain text.
    SecretExportRefused,
    /// A rule is questionable (duplicate name, unknown resource).
    InvalidRule,
    /// A manifest is matched by no rule, so it is not synced.
    NoMatchingRule,
    /// An action the plan would otherwise contain was left out; the detail says why.
    HeldBack(HoldCause),
    /// A live object's identity cannot become a file path that the Git layer accepts, so it
    /// is not exported; every other object still is.
    UnsafePath,
}

impl DiagnosticReason {
    /// The reason as a CamelCase word (for Kubernetes Events). Skipped inputs are all
    /// `SkippedInput` and held-back actions all `HeldBack`, whatever their detail.
    pub fn as_str(self) -> &'static str {
        match self {
            DiagnosticReason::SkippedInput(_) => "SkippedInput",
            DiagnosticReason::NotAnObject => "NotAnObject",
            DiagnosticReason::Duplicate => "Duplicate",
            DiagnosticReason::UnknownKind => "UnknownKind",
            DiagnosticReason::SecretExportRefused => "SecretExportRefused",
            DiagnosticReason::InvalidRule => "InvalidRule",
            DiagnosticReason::NoMatchingRule => "NoMatchingRule",
            DiagnosticReason::HeldBack(_) => "HeldBack",
            DiagnosticReason::UnsafePath => "UnsafePath",
        }
    }
}

/// Why an input (a file, a document or an item of a `List`) was not read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum SkipReason {
    /// The file is not valid YAML or JSON.
    ParseError,
    /// The file is not UTF-8 (e.g. Latin-1).
    NotUtf8,
    /// The file is larger than the Git layer reads.
    TooLarge,
    /// The file is a symbolic link; links are never followed.
    Symlink,
    /// The file was not read because the source exceeded its input budget (files or bytes).
    BudgetExceeded,
    /// A document uses `metadata.generateName` instead of `metadata.name`; objects are
    /// applied by name, so it cannot be synced.
    GenerateName,
    /// A document of a kind the cluster serves, or an item of a `List`, that cannot be
    /// applied: no `apiVersion`, `kind` or `metadata.name`, not a mapping, or a `List` inside
    /// a `List`.
    IncompleteObject,
}

impl SkipReason {
    /// A few words for people, e.g. `not UTF-8`.
    pub fn describe(self) -> &'static str {
        match self {
            SkipReason::ParseError => "does not parse",
            SkipReason::NotUtf8 => "not UTF-8",
            SkipReason::TooLarge => "too large",
            SkipReason::Symlink => "a symlink",
            SkipReason::BudgetExceeded => "over the input budget",
            SkipReason::GenerateName => "uses generateName",
            SkipReason::IncompleteObject => "an object that cannot be applied",
        }
    }
}

/// Why an action was held back ([`DiagnosticReason::HeldBack`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum HoldCause {
    /// Some input was skipped ([`SkippedInput`](crate::SkippedInput)), so a delete or a new
    /// file could be wrong: the object may be defined in what was not read.
    IncompleteSource,
    /// A rule that could select the object is invalid
    /// ([`InvalidRule`](crate::InvalidRule)); nothing moves in either direction until it is
    /// fixed.
    InvalidRule,
    /// The manifest is an item of a `List` document, which the Git layer cannot edit in
    /// place: writing it back or removing it is left to a person.
    ListItem,
    /// The sync would delete more than `pruneLimit` allows, or would prune because Git holds
    /// no manifest without that being meant ([`guard_prune`](crate::guard_prune)): no
    /// delete happens in that sync.
    PruneLimit,
}

impl fmt::Display for DiagnosticReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One finding of the parser or the planner, with whatever location is known.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Diagnostic {
    /// How serious it is.
    pub severity: Severity,
    /// The manifest file concerned, if any.
    pub file: Option<String>,
    /// 1-based line in `file`, if known.
    pub line: Option<usize>,
    /// The object concerned, if any.
    pub object: Option<ObjectId>,
    /// The rule concerned, if any.
    pub rule: Option<String>,
    /// A short fixed reason.
    pub reason: DiagnosticReason,
    /// A sentence for people.
    pub message: String,
}

impl Diagnostic {
    pub(crate) fn new(severity: Severity, reason: DiagnosticReason, message: String) -> Self {
        Diagnostic {
            severity,
            file: None,
            line: None,
            object: None,
            rule: None,
            reason,
            message,
        }
    }

    pub(crate) fn file(mut self, file: &str) -> Self {
        self.file = Some(file.to_owned());
        self
    }

    pub(crate) fn line(mut self, line: Option<usize>) -> Self {
        self.line = line;
        self
    }

    pub(crate) fn object(mut self, id: &ObjectId) -> Self {
        self.object = Some(id.clone());
        self
    }

    pub(crate) fn rule(mut self, rule: &str) -> Self {
        self.rule = Some(rule.to_owned());
        self
    }

    /// The stable order of diagnostics in a plan: by file, line, object, rule, reason, message.
    pub(crate) fn stable_cmp(a: &Self, b: &Self) -> Ordering {
        (&a.file, a.line, &a.object, &a.rule, a.reason, &a.message)
            .cmp(&(&b.file, b.line, &b.object, &b.rule, b.reason, &b.message))
            .then(a.severity.cmp(&b.severity))
    }
}

/// `file:line: [Reason] object: message`, leaving out what is unknown.
impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            f.write_str(file)?;
            if let Some(line) = self.line {
                write!(f, ":{line}")?;
            }
            f.write_str(": ")?;
        }
        write!(f, "[{}] ", self.reason)?;
        if let Some(id) = &self.object {
            write!(f, "{id}: ")?;
        }
        f.write_str(&self.message)
    }
}
