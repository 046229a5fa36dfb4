//! Sync rules: which objects they select, and which side wins for the fields they govern.

use std::cmp::Reverse;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::diagnostic::{Diagnostic, DiagnosticReason, Severity};
use crate::id::{IdRef, TypeIndex};
use crate::{LabelSelector, ObjectId, Pointer, ResourceType};

/// Which side wins for the fields a rule governs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncTo {
    /// The Git manifest is applied to the cluster.
    Kubernetes,
    /// The live value is written to Git.
    Git,
    /// Neither side is changed.
    Ignore,
}

/// One sync rule (the spec of a `SyncRule`, converted by the caller).
///
/// A rule selects an object when every non-empty selector matches:
/// `api_groups` (`""` is the core group), `resources` (plural names, from discovery),
/// `kinds`, `namespaces` (a non-empty list never selects cluster-scoped objects) and
/// `label_selector` (evaluated on the live object when it exists, else on the manifest).
///
/// Within a selected object the rule governs the subtrees its `filters` name; no filters
/// means the whole object (the root pointer `""`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    /// Name; breaks precedence ties (the name that sorts first wins) and appears in
    /// diagnostics. Should be unique.
    pub name: String,
    /// API groups to select; empty selects all.
    pub api_groups: Vec<String>,
    /// Plural resource names to select; empty selects all.
    pub resources: Vec<String>,
    /// Kinds to select; empty selects all.
    pub kinds: Vec<String>,
    /// Namespaces to select; empty selects all namespaces and cluster-scoped objects.
    pub namespaces: Vec<String>,
    /// Label selector; `None` selects all.
    pub label_selector: Option<LabelSelector>,
    /// The subtrees governed; empty governs the whole object.
    pub filters: Vec<Pointer>,
    /// Which side wins.
    pub sync_to: SyncTo,
    /// Breaks ties between equally specific filters; higher wins.
    pub priority: i32,
}

impl Rule {
    /// A rule named `name` that selects everything and governs whole objects.
    pub fn new(name: impl Into<String>, sync_to: SyncTo) -> Self {
        Rule {
            name: name.into(),
            api_groups: Vec::new(),
            resources: Vec::new(),
            kinds: Vec::new(),
            namespaces: Vec::new(),
            label_selector: None,
            filters: Vec::new(),
            sync_to,
            priority: 0,
        }
    }

    /// Whether the rule selects an object of type `ty` with identity `id`; `labels_from` is
    /// the object whose labels are checked (live if it exists, else the manifest).
    pub fn selects(&self, id: &ObjectId, ty: &ResourceType, labels_from: &Value) -> bool {
        self.selects_ref(IdRef::of(id), ty, labels_from)
    }

    pub(crate) fn selects_ref(
        &self,
        id: IdRef<'_>,
        ty: &ResourceType,
        labels_from: &Value,
    ) -> bool {
        fn any_or_empty(list: &[String], value: &str) -> bool {
            list.is_empty() || list.iter().any(|x| x == value)
        }
        any_or_empty(&self.api_groups, id.group)
            && any_or_empty(&self.resources, &ty.plural)
            && any_or_empty(&self.kinds, id.kind)
            && (self.namespaces.is_empty()
                || id
                    .namespace
                    .is_some_and(|ns| self.namespaces.iter().any(|x| x == ns)))
            && self
                .label_selector
                .as_ref()
                .is_none_or(|s| s.matches_object(labels_from))
    }
}

/// A rule with its precedence rank among all rules (0 = wins every tie).
#[derive(Debug)]
pub(crate) struct Ranked<'r> {
    pub(crate) rule: &'r Rule,
    pub(crate) rank: usize,
}

/// Orders rules for tie-breaking: higher priority, then name, then the most conservative
/// direction (ignore, git, kubernetes) so that even duplicate names are decided the same way
/// whatever the input order.
pub(crate) fn rank_rules<'r>(
    rules: &'r [Rule],
    types: &TypeIndex<'_>,
    diagnostics: &mut Vec<Diagnostic>,
) -> Vec<Ranked<'r>> {
    let mut sorted: Vec<&Rule> = rules.iter().collect();
    sorted.sort_by(|a, b| {
        let key = |r: &'r Rule| {
            let direction = match r.sync_to {
                SyncTo::Ignore => 0,
                SyncTo::Git => 1,
                SyncTo::Kubernetes => 2,
            };
            (Reverse(r.priority), &r.name, direction)
        };
        key(a).cmp(&key(b)).then_with(|| {
            // Fully deterministic even for identical keys.
            format!("{a:?}").cmp(&format!("{b:?}"))
        })
    });

    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &sorted {
        *seen.entry(&r.name).or_default() += 1;
    }
    for (name, n) in seen.into_iter().filter(|(_, n)| *n > 1) {
        diagnostics.push(
            Diagnostic::new(
                Severity::Warning,
                DiagnosticReason::InvalidRule,
                format!("{n} rules are named {name:?}; ties between them are broken by direction (ignore, git, kubernetes)"),
            )
            .rule(name),
        );
    }
    for r in &sorted {
        for res in r.resources.iter().filter(|p| !types.has_plural(p)) {
            diagnostics.push(
                Diagnostic::new(
                    Severity::Warning,
                    DiagnosticReason::InvalidRule,
                    format!("resource {res:?} is not served by the cluster; it selects nothing"),
                )
                .rule(&r.name),
            );
        }
        for kind in r.kinds.iter().filter(|k| !types.has_kind(k)) {
            diagnostics.push(
                Diagnostic::new(
                    Severity::Warning,
                    DiagnosticReason::InvalidRule,
                    format!("kind {kind:?} is not served by the cluster; it selects nothing"),
                )
                .rule(&r.name),
            );
        }
    }
    sorted
        .into_iter()
        .enumerate()
        .map(|(rank, rule)| Ranked { rule, rank })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment() -> (ObjectId, ResourceType) {
        (
            ObjectId::new("apps", "Deployment", Some("prod"), "web"),
            ResourceType::new("apps", "v1", "Deployment", "deployments", true),
        )
    }

    #[test]
    fn every_selector_must_match() {
        let (id, ty) = deployment();
        let obj = json!({"metadata": {"labels": {"app": "web"}}});
        let mut r = Rule::new("r", SyncTo::Kubernetes);
        assert!(
            r.selects(&id, &ty, &obj),
            "empty selectors select everything"
        );
        r.api_groups = vec!["".into()];
        assert!(!r.selects(&id, &ty, &obj), "\"\" is the core group only");
        r.api_groups = vec!["apps".into()];
        r.resources = vec!["deployments".into()];
        r.kinds = vec!["Deployment".into()];
        r.namespaces = vec!["prod".into()];
        r.label_selector = Some(LabelSelector::parse("app=web").unwrap());
        assert!(r.selects(&id, &ty, &obj));
        for tweak in 0..5 {
            let mut r = r.clone();
            match tweak {
                0 => r.api_groups = vec!["batch".into()],
                1 => r.resources = vec!["statefulsets".into()],
                2 => r.kinds = vec!["StatefulSet".into()],
                3 => r.namespaces = vec!["dev".into()],
                _ => r.label_selector = Some(LabelSelector::parse("app=db").unwrap()),
            }
            assert!(!r.selects(&id, &ty, &obj), "tweak {tweak}");
        }
    }

    #[test]
    fn namespaces_never_select_cluster_scoped() {
        let id = ObjectId::new("", "Namespace", None, "prod");
        let ty = ResourceType::new("", "v1", "Namespace", "namespaces", false);
        let mut r = Rule::new("r", SyncTo::Git);
        assert!(r.selects(&id, &ty, &json!({})));
        r.namespaces = vec!["prod".into()];
        assert!(!r.selects(&id, &ty, &json!({})));
    }

    #[test]
    fn ranking_and_rule_diagnostics() {
        let types = vec![ResourceType::new(
            "apps",
            "v1",
            "Deployment",
            "deployments",
            true,
        )];
        let idx = TypeIndex::new(&types);
        let mut a = Rule::new("a", SyncTo::Kubernetes);
        a.resources = vec!["deploymnets".into()];
        let mut b = Rule::new("b", SyncTo::Git);
        b.priority = 5;
        let dup1 = Rule::new("a", SyncTo::Ignore);
        let rules = vec![a, b, dup1];
        let mut diags = Vec::new();
        let ranked = rank_rules(&rules, &idx, &mut diags);
        let order: Vec<(&str, SyncTo)> = ranked
            .iter()
            .map(|r| (r.rule.name.as_str(), r.rule.sync_to))
            .collect();
        assert_eq!(
            order,
            [
                ("b", SyncTo::Git),
                ("a", SyncTo::Ignore),
                ("a", SyncTo::Kubernetes)
            ]
        );
        assert_eq!(diags.len(), 2, "{diags:?}");
        assert!(
            diags
                .iter()
                .all(|d| d.reason == DiagnosticReason::InvalidRule)
        );
        assert!(
            diags
                .iter()
                .any(|d| d.message.contains("2 rules are named \"a\""))
        );
        assert!(
            diags
                .iter()
                .any(|d| d.message.contains("\"deploymnets\" is not served"))
        );
    }
}
