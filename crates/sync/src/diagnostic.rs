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

/// Why a [`Diagnostic`] was raised: a short, fixed set suitable for an Event `reason`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum DiagnosticReason {
    /// A manifest file is not valid YAML or JSON.
    ParseError,
    /// A document is not a Kubernetes object (no `apiVersion`, `kind` or `metadata.name`).
    Skipped,
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
    /// Destructive actions were held back because some manifests could not be read.
    Suppressed,
}

impl DiagnosticReason {
    /// The reason as a CamelCase word (for Kubernetes Events).
    pub fn as_str(self) -> &'static str {
        match self {
            DiagnosticReason::ParseError => "ParseError",
            DiagnosticReason::Skipped => "Skipped",
            DiagnosticReason::Duplicate => "Duplicate",
            DiagnosticReason::UnknownKind => "UnknownKind",
            DiagnosticReason::SecretExportRefused => "SecretExportRefused",
            DiagnosticReason::InvalidRule => "InvalidRule",
            DiagnosticReason::NoMatchingRule => "NoMatchingRule",
            DiagnosticReason::Suppressed => "Suppressed",
        }
    }
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
