//! SyncRules resolved against the served resource types: the planner's rule (or why the rule
//! cannot be used) and the types it selects. Pure: the reconcile's first step and the SyncRule
//! status both start from here.

use std::collections::BTreeMap;
use std::sync::Arc;

use gitcontroller_sync::Rule;
use kube::ResourceExt;

use super::convert::{self, RuleError};
use crate::access::scope::Selection;
use crate::api::SyncRule;
use crate::cluster::ResourceCatalog;
use crate::cluster::discovery::{CatalogEntry, TypeKey};

/// One SyncRule, resolved.
#[derive(Clone, Debug)]
pub struct ResolvedRule {
    /// The SyncRule's name.
    pub name: String,
    /// The planner's rule, or why the rule cannot be used.
    pub rule: Result<Rule, RuleError>,
    /// The served types its `apiGroups`, `resources` and `kinds` select.
    pub types: BTreeMap<TypeKey, CatalogEntry>,
}

impl ResolvedRule {
    /// The selected types as `plural.group` (`plural` for the core group), sorted: the
    /// SyncRule's `status.matchedResources`.
    pub fn matched_resources(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .types
            .iter()
            .map(|(key, entry)| {
                if key.group.is_empty() {
                    entry.resource.plural.clone()
                } else {
                    format!("{}.{}", entry.resource.plural, key.group)
                }
            })
            .collect();
        names.sort();
        names
    }
}

/// Resolves one SyncRule against `catalog`.
pub fn resolve(rule: &SyncRule, catalog: &ResourceCatalog) -> ResolvedRule {
    let spec = &rule.spec;
    ResolvedRule {
        name: rule.name_any(),
        rule: convert::rule(rule),
        types: catalog
            .matching(&spec.api_groups, &spec.resources, &spec.kinds)
            .map(|(key, entry)| (key.clone(), entry.clone()))
            .collect(),
    }
}

/// A rule that cannot be used, why, and what it could select.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidRule {
    /// The SyncRule's name.
    pub name: String,
    /// What is wrong with it.
    pub error: RuleError,
    /// The rule as far as it reads ([`convert::invalid_rule_scope`]): every object it selects
    /// is held back while the rule is invalid.
    pub scope: Rule,
}

impl InvalidRule {
    /// The planner's view: the scope to hold back, and the error in words.
    pub fn for_planner(&self) -> gitcontroller_sync::InvalidRule {
        gitcontroller_sync::InvalidRule::new(self.scope.clone(), self.error.to_string())
    }
}

/// A repository's SyncRules, resolved: what the planner uses and which types to watch.
#[derive(Clone, Debug, Default)]
pub struct ResolvedRules {
    /// The usable rules, by name.
    pub rules: Vec<Rule>,
    /// The rules that cannot be used.
    pub invalid: Vec<InvalidRule>,
    /// The types the usable rules select.
    pub types: BTreeMap<TypeKey, CatalogEntry>,
    /// Per selected type, the namespaces the usable rules that select it name.
    pub selections: BTreeMap<TypeKey, Selection>,
    /// The catalog they were resolved against.
    pub catalog: Arc<ResourceCatalog>,
}

impl ResolvedRules {
    /// Resolves `rules` (sorted by name) against `catalog`.
    pub fn resolve(rules: &[Arc<SyncRule>], catalog: Arc<ResourceCatalog>) -> Self {
        let mut resolved = ResolvedRules {
            catalog,
            ..ResolvedRules::default()
        };
        for rule in rules {
            let one = resolve(rule, &resolved.catalog);
            match one.rule {
                Ok(rule) => {
                    for key in one.types.keys() {
                        resolved
                            .selections
                            .entry(key.clone())
                            .or_insert_with(|| Selection::of([]))
                            .add(&rule.namespaces);
                    }
                    resolved.rules.push(rule);
                    resolved.types.extend(one.types);
                }
                Err(error) => resolved.invalid.push(InvalidRule {
                    name: one.name,
                    error,
                    scope: convert::invalid_rule_scope(rule),
                }),
            }
        }
        resolved
    }
}
