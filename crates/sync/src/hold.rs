//! Holding actions back: while a rule is invalid, while the source is incomplete, and for
//! `List` items the Git layer cannot edit. The plan is made as usual; what must not happen
//! is then taken out of it and reported instead, so that status and `diff` can name it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::diagnostic::{Diagnostic, DiagnosticReason, HoldCause, Severity};
use crate::id::IdRef;
use crate::{ClusterAction, GitAction, Manifest, ResourceType, Rule};

/// A rule of the repository that could not be read whole (a `SyncRule` whose
/// `labelSelector` or `filters` do not parse), passed in
/// [`PlanInput::invalid_rules`](crate::PlanInput::invalid_rules) so that rules **fail
/// closed**: every object it could select gets no action in either direction — no apply,
/// no delete, no write, no removal — until it is fixed. A protective `syncTo: ignore` rule
/// whose selector breaks therefore keeps protecting everything it might have covered.
///
/// `rule` is the rule as far as it could be read, with each broken part left **empty**
/// (`label_selector: None`, no `filters`), so that its scope can only grow: only its
/// selectors (`api_groups`, `resources`, `kinds`, `namespaces`, a valid `label_selector`)
/// are used; `filters`, `sync_to` and `priority` are not.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvalidRule {
    /// The readable part of the rule.
    pub rule: Rule,
    /// Why it is invalid, for people (e.g. the selector's parse error).
    pub error: String,
}

impl InvalidRule {
    /// An invalid rule with the scope of `rule`.
    pub fn new(rule: Rule, error: impl Into<String>) -> Self {
        InvalidRule {
            rule,
            error: error.into(),
        }
    }
}

/// The invalid rules of one plan, and what they held back.
pub(crate) struct Holds<'i> {
    /// Sorted by name and error, whatever the input order.
    rules: Vec<&'i InvalidRule>,
    /// Per rule: objects in its scope, and actions held back because of it.
    objects: Vec<usize>,
    actions: Vec<usize>,
}

impl<'i> Holds<'i> {
    pub(crate) fn new(invalid: &'i [InvalidRule]) -> Self {
        let mut rules: Vec<&InvalidRule> = invalid.iter().collect();
        rules.sort_by(|a, b| {
            (&a.rule.name, &a.error)
                .cmp(&(&b.rule.name, &b.error))
                .then_with(|| format!("{a:?}").cmp(&format!("{b:?}")))
        });
        let n = rules.len();
        Holds {
            rules,
            objects: vec![0; n],
            actions: vec![0; n],
        }
    }

    /// Puts the positions of the invalid rules that could select the object into `into`
    /// (in name order) and counts the object for each.
    pub(crate) fn covering(
        &mut self,
        id: IdRef<'_>,
        ty: &ResourceType,
        labels_from: &Value,
        into: &mut Vec<usize>,
    ) {
        into.clear();
        for (i, invalid) in self.rules.iter().enumerate() {
            // Fail closed: a system object counts as selectable too (no name-only gate), so
            // a broken rule holds back at least as much as the rule could ever select.
            if invalid.rule.selects_ref(id, ty, labels_from, None) {
                self.objects[i] += 1;
                into.push(i);
            }
        }
    }

    /// Counts one action held back by each of the rules `covering` an object, and says
    /// why it is held back.
    pub(crate) fn count_held(&mut self, covering: &[usize]) -> String {
        let names: Vec<&str> = covering
            .iter()
            .map(|&i| {
                self.actions[i] += 1;
                self.rules[i].rule.name.as_str()
            })
            .collect();
        match names.as_slice() {
            [one] => format!("rule {one}, which could select this object, is invalid"),
            many => format!(
                "rules {}, which could select this object, are invalid",
                many.join(", ")
            ),
        }
    }

    /// The name of the first of the rules covering an object.
    pub(crate) fn first_name(&self, covering: &[usize]) -> Option<&'i str> {
        covering.first().map(|&i| self.rules[i].rule.name.as_str())
    }

    /// One diagnostic per invalid rule: what it holds back.
    pub(crate) fn summaries(&self) -> impl Iterator<Item = Diagnostic> + '_ {
        self.rules.iter().enumerate().map(|(i, invalid)| {
            Diagnostic::new(
                Severity::Warning,
                DiagnosticReason::HeldBack(HoldCause::InvalidRule),
                format!(
                    "the rule is invalid ({}); until it is fixed, the {} objects it could select are not synced in either direction ({} actions held back)",
                    invalid.error, self.objects[i], self.actions[i]
                ),
            )
            .rule(&invalid.rule.name)
        })
    }
}

/// Why a Git action on a `List` item is held back.
pub(crate) fn list_item_why(item: &Manifest) -> String {
    format!(
        "it is item {} of the List in document {} of {}, and the Git layer edits whole documents only; move it into a document of its own to sync it to Git",
        item.item_index.unwrap_or_default(),
        item.doc_index,
        item.file
    )
}

/// The diagnostic for a cluster action that was held back.
pub(crate) fn cluster_action(
    action: &ClusterAction,
    cause: HoldCause,
    why: &str,
    manifest: Option<&Manifest>,
) -> Diagnostic {
    let what = match action {
        ClusterAction::Apply { create: true, .. } => "would be created in the cluster".to_owned(),
        ClusterAction::Apply { paths, .. } => format!(
            "would be applied to the cluster ({})",
            join(paths.iter().map(ToString::to_string))
        ),
        ClusterAction::Delete { .. } => "would be deleted from the cluster (pruned)".to_owned(),
    };
    let d = held(action.id(), cause, &what, why);
    match manifest {
        Some(m) => d.file(&m.file),
        None => d,
    }
}

/// The diagnostic for a Git action that was held back.
pub(crate) fn git_action(action: &GitAction, cause: HoldCause, why: &str) -> Diagnostic {
    let (what, file) = match action {
        GitAction::Write {
            file,
            doc_index: None,
            ..
        } => (format!("would be exported to the new file {file}"), file),
        GitAction::Write { file, paths, .. } => (
            format!(
                "would be written back to Git ({})",
                join(paths.iter().map(ToString::to_string))
            ),
            file,
        ),
        GitAction::Remove { file, .. } => ("would be removed from Git".to_owned(), file),
    };
    held(action.id(), cause, &what, why).file(file)
}

fn held(id: &crate::ObjectId, cause: HoldCause, what: &str, why: &str) -> Diagnostic {
    Diagnostic::new(
        Severity::Warning,
        DiagnosticReason::HeldBack(cause),
        format!("{what}; held back: {why}"),
    )
    .object(id)
}

fn join(paths: impl Iterator<Item = String>) -> String {
    let shown: Vec<String> = paths
        .map(|p| if p.is_empty() { "/".to_owned() } else { p })
        .collect();
    shown.join(", ")
}
