//! Conversions between the Kubernetes-facing types and the planner's plain data.

use std::collections::{BTreeMap, BTreeSet};

use gitcontroller_git::{Budget, SkippedFile, Truncated};
use gitcontroller_sync::{
    Diagnostic, LabelSelector, ObjectId, Pointer, Rule, SkipReason, SkippedInput, SyncTo,
};
use k8s_openapi::api::core::v1::ObjectReference;
use kube::ResourceExt;
use serde_json::Value;

use crate::api::{InventoryEntry, Reason, SyncDirection, SyncRule};

/// Why a SyncRule cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    /// `labelSelector` does not parse.
    #[error("labelSelector {text:?} is invalid: {error}")]
    LabelSelector {
        /// The selector as written.
        text: String,
        /// What is wrong with it.
        error: String,
    },
    /// A filter is not a valid JSON pointer.
    #[error("filter {filter:?} is invalid: {error}")]
    Filter {
        /// The filter as written.
        filter: String,
        /// What is wrong with it.
        error: String,
    },
}

impl RuleError {
    /// The reason on the SyncRule's `Ready` condition.
    pub fn reason(&self) -> Reason {
        match self {
            RuleError::LabelSelector { .. } => Reason::InvalidSelector,
            RuleError::Filter { .. } => Reason::InvalidFilter,
        }
    }
}

/// A SyncRule the planner can use, or why it cannot be used.
pub fn rule(rule: &SyncRule) -> Result<Rule, RuleError> {
    let (readable, error) = read_rule(rule);
    match error {
        None => Ok(readable),
        Some(error) => Err(error),
    }
}

/// What a SyncRule selects — its type, namespace, name and label selectors — for deciding
/// which live changes concern it. Fails safe, as [`invalid_rule_scope`] does: a label selector
/// that does not parse selects every label set (the rule then syncs nothing, but a change it
/// might have selected still wakes its repository, which reports the invalid rule).
pub fn selectors(rule: &SyncRule) -> Rule {
    read_rule(rule).0
}

/// What an invalid SyncRule could select: the rule as far as it can be read, each broken part
/// left empty (a broken `labelSelector` selects by the other selectors alone), so that its
/// scope can only be larger than the rule meant. The planner holds back every object in it
/// (rules fail closed).
pub fn invalid_rule_scope(rule: &SyncRule) -> Rule {
    read_rule(rule).0
}

/// The rule with every part that reads, and the first part that does not.
fn read_rule(rule: &SyncRule) -> (Rule, Option<RuleError>) {
    let spec = &rule.spec;
    let mut error = None;
    let label_selector = match spec.label_selector.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(text) => LabelSelector::parse(text)
            .map_err(|e| {
                error.get_or_insert(RuleError::LabelSelector {
                    text: text.to_string(),
                    error: e.to_string(),
                });
            })
            .ok(),
    };
    let mut filters = Vec::with_capacity(spec.filters.len());
    for f in &spec.filters {
        match Pointer::parse(f) {
            Ok(pointer) => filters.push(pointer),
            Err(e) => {
                error.get_or_insert(RuleError::Filter {
                    filter: f.clone(),
                    error: e.to_string(),
                });
            }
        }
    }
    if error.is_some() {
        // The filters only say which fields move; a scope without them covers every field.
        filters.clear();
    }
    let readable = Rule {
        name: rule.name_any(),
        api_groups: spec.api_groups.clone(),
        resources: spec.resources.clone(),
        kinds: spec.kinds.clone(),
        namespaces: spec.namespaces.clone(),
        names: spec.names.clone(),
        exclude_names: spec.exclude_names.clone(),
        label_selector,
        filters,
        sync_to: match spec.sync_to {
            SyncDirection::Kubernetes => SyncTo::Kubernetes,
            SyncDirection::Git => SyncTo::Git,
            SyncDirection::Ignore => SyncTo::Ignore,
        },
        priority: spec.priority,
    };
    (readable, error)
}

/// The identity of an object as the API server serves it (apiVersion, kind and metadata set).
pub fn object_id(object: &Value) -> Option<ObjectId> {
    let text = |field: &str| object.get(field).and_then(Value::as_str);
    Some(ObjectId {
        group: gitcontroller_sync::group_of(text("apiVersion")?).to_string(),
        kind: text("kind")?.to_string(),
        namespace: metadata_text(object, "namespace").map(str::to_string),
        name: metadata_text(object, "name")?.to_string(),
    })
}

/// A text member of an object's `metadata`. (`Value::pointer` would allocate a string per
/// token, on paths walked for every live object.)
pub fn metadata_text<'a>(object: &'a Value, field: &str) -> Option<&'a str> {
    object.get("metadata")?.get(field)?.as_str()
}

/// A reference to an object as the API server serves it, for an Event that regards it.
pub fn object_reference(object: &Value) -> ObjectReference {
    let text = |pointer: &str| {
        object
            .pointer(pointer)
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    ObjectReference {
        api_version: text("/apiVersion"),
        kind: text("/kind"),
        namespace: text("/metadata/namespace"),
        name: text("/metadata/name"),
        uid: text("/metadata/uid"),
        ..ObjectReference::default()
    }
}

/// A manifest file the Git layer left out of a snapshot, as the planner's skipped input.
pub fn skipped_file(file: &SkippedFile) -> SkippedInput {
    let reason = match file.reason {
        gitcontroller_git::SkipReason::Symlink => SkipReason::Symlink,
        gitcontroller_git::SkipReason::NotUtf8 => SkipReason::NotUtf8,
        gitcontroller_git::SkipReason::TooLarge => SkipReason::TooLarge,
        gitcontroller_git::SkipReason::BudgetExceeded => SkipReason::BudgetExceeded,
    };
    SkippedInput::new(file.path.clone(), reason)
}

/// A walk a budget stopped, as the planner's skipped input: the directory where it stopped
/// (its files were not even listed).
pub fn truncated_walk(truncated: &Truncated) -> SkippedInput {
    let at = if truncated.at.is_empty() {
        ".".to_string()
    } else {
        truncated.at.clone()
    };
    SkippedInput::new(format!("{at}/"), SkipReason::BudgetExceeded)
}

/// The diagnostic of a walk a budget stopped: the skipped input's, naming the budget and its
/// limit, so the status tells which one the repository exceeds (a git bomb or 100,000 files:
/// the path budget; deep nesting: the depth).
pub fn truncated_walk_diagnostic(truncated: &Truncated) -> Diagnostic {
    let what = match truncated.budget {
        Budget::Paths => format!("more than {} paths under spec.path", truncated.limit),
        Budget::Depth => format!("directories nested deeper than {}", truncated.limit),
        Budget::TreeBytes => format!("a directory listing over {} bytes", truncated.limit),
    };
    let mut diagnostic = truncated_walk(truncated).diagnostic();
    diagnostic.message = format!(
        "was not read: the repository exceeds the input budget ({}: {what}); skipped, so \
         nothing is pruned and no new file is written until it is read",
        truncated.budget.as_str()
    );
    diagnostic
}

/// The inventory in status as the planner's identities.
pub fn inventory(entries: &[InventoryEntry]) -> BTreeSet<ObjectId> {
    entries
        .iter()
        .map(|e| ObjectId {
            group: e.group.clone(),
            kind: e.kind.clone(),
            namespace: e.namespace.clone(),
            name: e.name.clone(),
        })
        .collect()
}

/// The planner's identities as inventory entries, sorted.
pub fn inventory_entries(ids: &BTreeSet<ObjectId>) -> Vec<InventoryEntry> {
    ids.iter()
        .map(|id| InventoryEntry {
            group: id.group.clone(),
            kind: id.kind.clone(),
            namespace: id.namespace.clone(),
            name: id.name.clone(),
        })
        .collect()
}

/// A Secret's data, with `stringData` folded in as the API server would.
pub fn secret_data(secret: &k8s_openapi::api::core::v1::Secret) -> BTreeMap<String, Vec<u8>> {
    let mut data: BTreeMap<String, Vec<u8>> = secret
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect();
    for (k, v) in secret.string_data.iter().flatten() {
        data.insert(k.clone(), v.clone().into_bytes());
    }
    data
}

/// Parses a duration such as `30s`, `1m`, `1h30m` or `500ms` (the schema's syntax).
pub fn duration(text: &str) -> Option<std::time::Duration> {
    let mut total = std::time::Duration::ZERO;
    let mut rest = text;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        if digits == 0 {
            return None;
        }
        let number: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let (unit, len) = if rest.starts_with("ms") {
            (std::time::Duration::from_millis(1), 2)
        } else if rest.starts_with('s') {
            (std::time::Duration::from_secs(1), 1)
        } else if rest.starts_with('m') {
            (std::time::Duration::from_secs(60), 1)
        } else if rest.starts_with('h') {
            (std::time::Duration::from_secs(3600), 1)
        } else {
            return None;
        };
        total += unit.checked_mul(u32::try_from(number).ok()?)?;
        rest = &rest[len..];
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn durations_in_the_schema_syntax_parse() {
        assert_eq!(duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(duration(""), None);
        assert_eq!(duration("5 minutes"), None);
        assert_eq!(duration("m"), None);
    }

    #[test]
    fn the_root_pointer_filter_governs_the_whole_object() {
        let rule: SyncRule = serde_json::from_value(serde_json::json!({
            "apiVersion": "gitcontroller.io/v1alpha1", "kind": "SyncRule",
            "metadata": {"name": "whole", "namespace": "ns"},
            "spec": {"repositoryRef": {"name": "r"}, "syncTo": "kubernetes", "filters": [""]}
        }))
        .unwrap();
        let converted = super::rule(&rule).unwrap();
        assert_eq!(converted.filters.len(), 1);
        assert!(converted.filters[0].is_root());
    }

    #[test]
    fn a_truncated_walk_names_its_budget_and_still_holds_back_like_a_skipped_input() {
        let truncated = Truncated {
            budget: Budget::Paths,
            limit: 20_000,
            at: "d019".into(),
        };
        let diagnostic = truncated_walk_diagnostic(&truncated);
        assert_eq!(
            diagnostic.to_string(),
            "d019/: [SkippedInput] was not read: the repository exceeds the input budget \
             (paths: more than 20000 paths under spec.path); skipped, so nothing is pruned and \
             no new file is written until it is read"
        );
        // The planner reads it as the same skipped input (so it holds back prune and exports).
        assert_eq!(
            gitcontroller_sync::skipped_inputs(&[diagnostic]),
            [truncated_walk(&truncated)]
        );
    }
}
