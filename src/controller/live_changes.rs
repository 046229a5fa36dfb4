//! Live changes → the repositories they concern: those with a SyncRule that selects the object
//! — its type, namespace and labels, before or after the change — except the repository whose
//! own write the change is the echo of.
//!
//! Selection here is the planner's (`gitcontroller_sync::Rule::selects`) on the rule's
//! selectors, so the two cannot disagree. Known blind spot, bounded by `spec.interval`: the
//! planner matches an object that has no live copy by its manifest's labels, so a deletion
//! (or creation) of an object whose live labels no rule selects but whose manifest's labels do
//! wakes nobody; the next interval's sync recreates it.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use gitcontroller_sync::{ObjectId, ResourceType, Rule};
use kube::ResourceExt;
use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedReceiver;

use super::context::Context;
use super::convert;
use super::own_writes::Echo;
use super::repository::RepoKey;
use super::trigger::TriggerSource;
use crate::api::SyncRule;
use crate::cluster::LiveChange;

/// Maps every live change to syncs of the repositories it concerns, until the channel closes.
pub fn spawn(ctx: Arc<Context>, mut live_rx: UnboundedReceiver<LiveChange>) {
    tokio::spawn(async move {
        let mut selectors = RuleSelectors::default();
        while let Some(change) = live_rx.recv().await {
            let id = object_id(&change);
            let writer = match ctx.own_writes.classify(&id, &change) {
                Echo::Held => continue,
                Echo::Own(repository) => Some(repository),
                Echo::Foreign => None,
            };
            let catalog = ctx.catalog().await;
            let Some(entry) = catalog.get(&change.key) else {
                continue;
            };
            let woken = selectors.woken(&ctx.rules.state(), &id, &entry.resource_type(), &change);
            for repository in woken {
                if Some(&repository) != writer.as_ref() {
                    ctx.trigger.sync(&repository, TriggerSource::Watch);
                }
            }
        }
    });
}

/// The identity of the changed object.
fn object_id(change: &LiveChange) -> ObjectId {
    ObjectId {
        group: change.key.group.clone(),
        kind: change.key.kind.clone(),
        namespace: change.namespace.clone(),
        name: change.name.clone(),
    }
}

/// Labels as the planner's selector reads them from an object.
fn labels_document(labels: &std::collections::BTreeMap<String, String>) -> Value {
    json!({ "metadata": { "labels": labels } })
}

/// Each SyncRule's selectors, converted once per rule generation (a label selector is parsed
/// once, not on every event).
#[derive(Default)]
struct RuleSelectors {
    /// By rule uid: the generation converted, and its selectors.
    converted: HashMap<String, (Option<i64>, Rule)>,
}

impl RuleSelectors {
    /// The repositories whose rules select the object before or after `change`.
    fn woken(
        &mut self,
        rules: &[Arc<SyncRule>],
        id: &ObjectId,
        ty: &ResourceType,
        change: &LiveChange,
    ) -> BTreeSet<RepoKey> {
        let after = labels_document(&change.labels);
        let before = change.old_labels.as_ref().map(labels_document);
        let mut woken = BTreeSet::new();
        // Runs for every live change and every rule: nothing is allocated unless the rule
        // selects the object.
        for rule in rules {
            let Some(namespace) = rule.metadata.namespace.as_deref() else {
                continue;
            };
            let selectors = self.selectors(rule);
            if selectors.selects(id, ty, &after)
                || before
                    .as_ref()
                    .is_some_and(|b| selectors.selects(id, ty, b))
            {
                woken.insert(RepoKey::new(namespace, &rule.spec.repository_ref.name));
            }
        }
        if self.converted.len() > rules.len() {
            let current: HashSet<String> = rules.iter().filter_map(|r| r.uid()).collect();
            self.converted.retain(|uid, _| current.contains(uid));
        }
        woken
    }

    fn selectors(&mut self, rule: &SyncRule) -> &Rule {
        let generation = rule.metadata.generation;
        let key = rule
            .metadata
            .uid
            .as_deref()
            .or(rule.metadata.name.as_deref())
            .unwrap_or_default();
        let current = self
            .converted
            .get(key)
            .is_some_and(|(converted, _)| *converted == generation);
        if !current {
            self.converted
                .insert(key.to_string(), (generation, convert::selectors(rule)));
        }
        &self.converted[key].1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::SyncRuleSpec;
    use crate::cluster::{LiveChangeKind, TypeKey};
    use std::collections::BTreeMap;

    fn rule(name: &str, repository: &str, spec: serde_json::Value) -> Arc<SyncRule> {
        let mut spec = spec;
        spec["repositoryRef"] = json!({ "name": repository });
        spec.as_object_mut()
            .unwrap()
            .entry("syncTo")
            .or_insert(json!("kubernetes"));
        let spec: SyncRuleSpec = serde_json::from_value(spec).unwrap();
        let mut rule = SyncRule::new(name, spec);
        rule.metadata.namespace = Some("team".into());
        rule.metadata.uid = Some(format!("uid-{name}"));
        rule.metadata.generation = Some(1);
        Arc::new(rule)
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn configmap(
        namespace: &str,
        now: &[(&str, &str)],
        before: Option<&[(&str, &str)]>,
    ) -> LiveChange {
        LiveChange {
            key: TypeKey {
                group: String::new(),
                kind: "ConfigMap".into(),
            },
            namespace: Some(namespace.into()),
            name: "settings".into(),
            kind: LiveChangeKind::Applied,
            labels: labels(now),
            old_labels: before.map(labels),
            resource_version: Some("5".into()),
        }
    }

    fn configmaps() -> ResourceType {
        ResourceType::new("", "v1", "ConfigMap", "configmaps", true)
    }

    fn woken(rules: &[Arc<SyncRule>], change: &LiveChange) -> Vec<String> {
        RuleSelectors::default()
            .woken(rules, &object_id(change), &configmaps(), change)
            .into_iter()
            .map(|key| key.name)
            .collect()
    }

    #[test]
    fn only_repositories_whose_rules_select_type_namespace_and_labels_wake() {
        let rules = [
            rule(
                "apps",
                "a",
                json!({ "kinds": ["ConfigMap"], "labelSelector": "app=web" }),
            ),
            rule(
                "elsewhere",
                "b",
                json!({ "kinds": ["ConfigMap"], "namespaces": ["other"] }),
            ),
            rule("secrets", "c", json!({ "kinds": ["Secret"] })),
            rule("everything", "d", json!({})),
        ];
        assert_eq!(
            woken(&rules, &configmap("team", &[("app", "web")], None)),
            ["a", "d"]
        );
        assert_eq!(
            woken(&rules, &configmap("team", &[("app", "db")], None)),
            ["d"]
        );
        assert_eq!(woken(&rules, &configmap("other", &[], None)), ["b", "d"]);
    }

    #[test]
    fn a_label_change_wakes_the_rules_it_moves_the_object_out_of() {
        let rules = [rule("apps", "a", json!({ "labelSelector": "app=web" }))];
        let moved_out = configmap("team", &[("app", "db")], Some(&[("app", "web")]));
        assert_eq!(woken(&rules, &moved_out), ["a"]);
        let unrelated = configmap("team", &[("app", "db")], Some(&[("app", "cache")]));
        assert!(woken(&rules, &unrelated).is_empty());
    }

    #[test]
    fn an_invalid_label_selector_fails_safe() {
        let rules = [rule(
            "broken",
            "a",
            json!({ "kinds": ["ConfigMap"], "labelSelector": "app in (web" }),
        )];
        assert_eq!(woken(&rules, &configmap("team", &[], None)), ["a"]);
    }

    #[test]
    fn a_new_rule_generation_is_converted_again() {
        let mut selectors = RuleSelectors::default();
        let change = configmap("team", &[("app", "web")], None);
        let id = object_id(&change);
        let first = rule("apps", "a", json!({ "labelSelector": "app=db" }));
        assert!(
            selectors
                .woken(&[first], &id, &configmaps(), &change)
                .is_empty()
        );
        let mut second = (*rule("apps", "a", json!({ "labelSelector": "app=web" }))).clone();
        second.metadata.generation = Some(2);
        assert_eq!(
            selectors
                .woken(&[Arc::new(second)], &id, &configmaps(), &change)
                .len(),
            1
        );
    }
}
