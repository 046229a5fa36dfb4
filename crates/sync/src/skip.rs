//! Inputs that were not read, and why that makes a source incomplete.

use serde::{Deserialize, Serialize};

use crate::diagnostic::{Diagnostic, DiagnosticReason, Severity, SkipReason};

/// An input that was not read: a whole file, or a document or `List` item in it.
///
/// A source with any skipped input is **incomplete**: the manifests it would have yielded
/// are missing, so a live object without a manifest may well be defined there. Passed in
/// [`PlanInput::skipped`](crate::PlanInput::skipped), they make the planner hold back every
/// delete and every new file (each with a [`HeldBack`](DiagnosticReason::HeldBack)
/// diagnostic).
///
/// Where they come from:
/// - [`parse_manifests`](crate::parse_manifests) reports what it skips as
///   [`SkippedInput`](DiagnosticReason::SkippedInput) diagnostics (parse errors, `List`
///   items that cannot be applied, `generateName`, served kinds without a name);
///   [`skipped_inputs`] collects them.
/// - Files the caller did not hand to the parser (symlinks, not UTF-8, too large, over a
///   budget) are the caller's to add; [`SkippedInput::diagnostic`] reports them the same way.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SkippedInput {
    /// The file (as in [`SourceFile::path`](crate::SourceFile::path)).
    pub path: String,
    /// Why it was not read.
    pub reason: SkipReason,
}

impl SkippedInput {
    /// A skipped input.
    pub fn new(path: impl Into<String>, reason: SkipReason) -> Self {
        SkippedInput {
            path: path.into(),
            reason,
        }
    }

    /// The diagnostic for a file that was skipped before parsing: a
    /// [`SkippedInput`](DiagnosticReason::SkippedInput) naming the file, an `Error` for a
    /// parse error and a `Warning` otherwise.
    pub fn diagnostic(&self) -> Diagnostic {
        let why = match self.reason {
            SkipReason::NotUtf8 => "is not UTF-8 (save it as UTF-8)",
            SkipReason::TooLarge => "is larger than the Git layer reads (split it)",
            SkipReason::Symlink => "is a symlink, and symlinks are never followed",
            SkipReason::BudgetExceeded => "was not read: the repository exceeds the input budget",
            SkipReason::ParseError => "does not parse",
            SkipReason::GenerateName => "uses metadata.generateName",
            SkipReason::IncompleteObject => "holds an object that cannot be applied",
        };
        Diagnostic::new(
            severity_of(self.reason),
            DiagnosticReason::SkippedInput(self.reason),
            format!(
                "{why}; skipped, so nothing is pruned and no new file is written until it is read"
            ),
        )
        .file(&self.path)
    }
}

/// How serious skipping an input is: a file that does not parse is an error, everything
/// else a warning.
pub(crate) fn severity_of(reason: SkipReason) -> Severity {
    match reason {
        SkipReason::ParseError => Severity::Error,
        _ => Severity::Warning,
    }
}

/// The skipped inputs named by [`SkippedInput`](DiagnosticReason::SkippedInput)
/// diagnostics (those of [`parse_manifests`](crate::parse_manifests) and of
/// [`SkippedInput::diagnostic`]), sorted, one per file and reason.
pub fn skipped_inputs(diagnostics: &[Diagnostic]) -> Vec<SkippedInput> {
    let mut skipped: Vec<SkippedInput> = diagnostics
        .iter()
        .filter_map(|d| match (d.reason, &d.file) {
            (DiagnosticReason::SkippedInput(reason), Some(path)) => {
                Some(SkippedInput::new(path.clone(), reason))
            }
            _ => None,
        })
        .collect();
    skipped.sort();
    skipped.dedup();
    skipped
}

/// `a.yaml (does not parse), b.yaml (a symlink)`, naming at most `max` inputs.
pub(crate) fn describe_all(skipped: &[SkippedInput], max: usize) -> String {
    let mut sorted: Vec<&SkippedInput> = skipped.iter().collect();
    sorted.sort();
    sorted.dedup();
    let mut text = sorted
        .iter()
        .take(max)
        .map(|s| format!("{} ({})", s.path, s.reason.describe()))
        .collect::<Vec<_>>()
        .join(", ");
    if sorted.len() > max {
        text.push_str(&format!(" and {} more", sorted.len() - max));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collected_from_diagnostics_sorted_and_deduplicated() {
        let diagnostics = [
            SkippedInput::new("b.yaml", SkipReason::Symlink).diagnostic(),
            Diagnostic::new(Severity::Info, DiagnosticReason::NotAnObject, "x".into())
                .file("k.yaml"),
            SkippedInput::new("a.yaml", SkipReason::NotUtf8).diagnostic(),
            SkippedInput::new("b.yaml", SkipReason::Symlink).diagnostic(),
        ];
        assert_eq!(
            skipped_inputs(&diagnostics),
            [
                SkippedInput::new("a.yaml", SkipReason::NotUtf8),
                SkippedInput::new("b.yaml", SkipReason::Symlink),
            ]
        );
        assert_eq!(diagnostics[0].severity, Severity::Warning);
        assert_eq!(diagnostics[0].reason.as_str(), "SkippedInput");
        assert_eq!(
            SkippedInput::new("p.yaml", SkipReason::ParseError)
                .diagnostic()
                .severity,
            Severity::Error
        );
    }

    #[test]
    fn description_names_a_few() {
        let skipped: Vec<SkippedInput> = ["c.yaml", "a.yaml", "b.yaml"]
            .into_iter()
            .map(|p| SkippedInput::new(p, SkipReason::TooLarge))
            .collect();
        assert_eq!(
            describe_all(&skipped, 2),
            "a.yaml (too large), b.yaml (too large) and 1 more"
        );
    }
}
