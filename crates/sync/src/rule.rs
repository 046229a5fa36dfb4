//! Sync rules: which objects they select, and which side wins for the fields they govern.

use std::cmp::Reverse;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::diagnostic::{Diagnostic, DiagnosticReason, Severity};
use crate::id::{IdRef, TypeIndex};
use crate::system::{SystemObject, system_object};
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
/// `kinds`, `namespaces` (a non-empty list never selects cluster-scoped objects), `names`
/// (globs) and `label_selector` (evaluated on the live object when it exists, else on the
/// manifest), and no `exclude_names` glob matches the name. A live object that Git has no
/// manifest for and that is a [`SystemObject`] is selected only by a rule whose `names` lists
/// its name literally (see [`Rule::adopts`]).
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
    /// Object names to select, as globs (`*` any run of characters, `?` one character);
    /// empty selects all.
    #[serde(default)]
    pub names: Vec<String>,
    /// Object names never to select, as globs like `names`; wins over `names`.
    #[serde(default)]
    pub exclude_names: Vec<String>,
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
            names: Vec::new(),
            exclude_names: Vec::new(),
            label_selector: None,
            filters: Vec::new(),
            sync_to,
            priority: 0,
        }
    }

    /// Whether the rule selects an object of type `ty` with identity `id`; `labels_from` is
    /// the object whose labels are checked (live if it exists, else the manifest).
    ///
    /// This is selection by the rule's selectors alone. For a live object that Git has no
    /// manifest for, the planner asks [`Rule::adopts`], which also leaves out system objects.
    pub fn selects(&self, id: &ObjectId, ty: &ResourceType, labels_from: &Value) -> bool {
        self.selects_ref(IdRef::of(id), ty, labels_from, None)
    }

    /// Whether the rule selects a live object that Git has no manifest for: [`Rule::selects`],
    /// and, when `live` is a [`SystemObject`] (see [`system_object`]), only if `names` lists
    /// its name literally, without `*` or `?`. This keeps what the cluster makes for itself
    /// (`kube-root-ca.crt`, service-account tokens, objects a controller owns, ...) out of new
    /// files and out of pruning, unless a rule asks for it by name.
    pub fn adopts(&self, id: &ObjectId, ty: &ResourceType, live: &Value) -> bool {
        let system = system_object(id, live);
        self.selects_ref(IdRef::of(id), ty, live, system)
    }

    /// [`Rule::selects`] on borrowed parts; `system` is what the object is when it is a system
    /// object without a manifest (then only a literal `names` entry selects it).
    pub(crate) fn selects_ref(
        &self,
        id: IdRef<'_>,
        ty: &ResourceType,
        labels_from: &Value,
        system: Option<SystemObject>,
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
            && self.selects_name(id.name)
            && (system.is_none() || self.names_literally(id.name))
            && self
                .label_selector
                .as_ref()
                .is_none_or(|s| s.matches_object(labels_from))
    }

    /// `names` (empty = all) matches and no `exclude_names` glob does.
    fn selects_name(&self, name: &str) -> bool {
        (self.names.is_empty() || self.names.iter().any(|g| glob_matches(g, name)))
            && !self.exclude_names.iter().any(|g| glob_matches(g, name))
    }

    /// `names` has `name` as a literal entry (no wildcard): an explicit request for it.
    fn names_literally(&self, name: &str) -> bool {
        self.names.iter().any(|g| g == name)
    }
}

/// Whether the glob `pattern` matches all of `name`: `*` matches any run of characters
/// (none included), `?` exactly one character, anything else itself. Object names cannot
/// contain `*` or `?`, so there is no escaping.
pub(crate) fn glob_matches(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut pi, mut ni) = (0, 0);
    // Where the last `*` was, and the name position it has consumed up to.
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ni));
                pi += 1;
            }
            Some(&c) if c == '?' || c == n[ni] => {
                pi += 1;
                ni += 1;
            }
            _ => match star {
                // Let the last `*` take one more character and try again from there.
                Some((sp, sn)) => {
                    star = Some((sp, sn + 1));
                    pi = sp + 1;
                    ni = sn + 1;
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
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
    fn globs_match_whole_names() {
        for (pattern, name, matches) in [
            ("web", "web", true),
            ("web", "web-1", false),
            ("web-*", "web-1", true),
            ("web-*", "web-", true),
            ("web-*", "my-web-1", false),
            ("*-web", "my-web", true),
            ("*", "", true),
            ("*", "anything.at.all", true),
            ("db-?", "db-1", true),
            ("db-?", "db-10", false),
            ("db-?", "db-", false),
            ("a*b*c", "aXXbYYc", true),
            ("a*b*c", "aXXbYY", false),
            ("a*b*c", "abcbc", true),
            ("*.crt", "kube-root-ca.crt", true),
            ("kube-*-ca.crt", "kube-root-ca.crt", true),
            ("?", "é", true),
            ("**x", "yyx", true),
        ] {
            assert_eq!(
                glob_matches(pattern, name),
                matches,
                "{pattern:?} ~ {name:?}"
            );
        }
    }

    #[test]
    fn names_and_exclude_names_select_by_glob() {
        let ty = ResourceType::new("", "v1", "ConfigMap", "configmaps", true);
        let cm = |name: &str| ObjectId::new("", "ConfigMap", Some("team"), name);
        let mut r = Rule::new("r", SyncTo::Git);
        r.names = vec!["app-*".into(), "settings".into()];
        r.exclude_names = vec!["*-tmp".into()];
        let picked: Vec<&str> = ["app-web", "settings", "app-web-tmp", "other", "settings-2"]
            .into_iter()
            .filter(|n| r.selects(&cm(n), &ty, &json!({})))
            .collect();
        assert_eq!(picked, ["app-web", "settings"]);
        r.names.clear();
        assert!(
            r.selects(&cm("other"), &ty, &json!({})),
            "no names: every name"
        );
        assert!(
            !r.selects(&cm("x-tmp"), &ty, &json!({})),
            "excluded without names too"
        );
    }

    #[test]
    fn system_objects_are_adopted_only_by_literal_name() {
        let ty = ResourceType::new("", "v1", "ConfigMap", "configmaps", true);
        let ca = ObjectId::new("", "ConfigMap", Some("team"), "kube-root-ca.crt");
        let live = json!({"metadata": {"name": "kube-root-ca.crt"}});
        let mut r = Rule::new("r", SyncTo::Git);
        assert!(r.selects(&ca, &ty, &live), "the selectors alone select it");
        assert!(
            !r.adopts(&ca, &ty, &live),
            "but it is not adopted from the cluster"
        );
        r.names = vec!["kube-*".into()];
        assert!(
            !r.adopts(&ca, &ty, &live),
            "a glob is no request for a system object"
        );
        r.names = vec!["kube-*".into(), "kube-root-ca.crt".into()];
        assert!(r.adopts(&ca, &ty, &live));
        r.exclude_names = vec!["*.crt".into()];
        assert!(!r.adopts(&ca, &ty, &live), "excludeNames still wins");
        let plain = ObjectId::new("", "ConfigMap", Some("team"), "settings");
        assert!(Rule::new("r", SyncTo::Git).adopts(&plain, &ty, &json!({})));
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
