//! Cleaning a live object into what belongs in Git.

use std::cell::OnceCell;

use serde_json::{Map, Value};

use crate::compare::{loose_eq, loose_eq_opt};
use crate::fields::{Fields, ManagedFields};

mod defaults;

pub(crate) use defaults::Step;

/// The annotation `kubectl apply` (client-side) keeps its last input in.
pub const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Top-level fields the server owns; never exported, compared or applied.
pub(crate) const SERVER_TOP_LEVEL: &[&str] = &["status"];

/// `metadata` fields the server owns; never exported, compared or applied.
pub(crate) const SERVER_METADATA: &[&str] = &[
    "managedFields",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
];

/// The clean export of a live object: what a person would commit to Git.
///
/// 1. If the object has `metadata.managedFields`, every field that **no** manager owns is
///    dropped (server defaults on objects made by server-side apply, for example). Ownership
///    is read from `fieldsV1`: `f:` members, `k:` list-map elements, `v:` set elements, `i:`
///    indices; a `{}` set owns the whole subtree, `.` only the node itself. Objects made or
///    changed by `create`/`update` (operation `Update`) own their defaulted fields too (the
///    API server attributes them to the writer), so those stay. Without `managedFields`
///    nothing is dropped in this step: ownership is unknown.
/// 2. `apiVersion`, `kind`, `metadata.name` and `metadata.namespace` are always kept.
/// 3. `status` and `metadata.managedFields`, `uid`, `resourceVersion`, `generation`,
///    `creationTimestamp`, `selfLink`, `deletionTimestamp`, `deletionGracePeriodSeconds` are
///    dropped.
/// 4. What the API server defaulted and what controllers added is dropped, by a table per
///    built-in kind (`export/defaults.rs`, listed in `docs/sync-semantics.md`): a defaulted
///    field only when it holds the default value, a controller's field (such as the
///    [`LAST_APPLIED_ANNOTATION`] or `deployment.kubernetes.io/revision`) whatever its value.
///    A map or list left empty by this is dropped too.
///
/// A value that is not an object is returned unchanged.
pub fn clean(live: &Value) -> Value {
    clean_with(live, None)
}

/// The clean export of `live` as it goes into a file that holds `manifest`: like [`clean`],
/// except that a defaulted or controller-added field stays where `manifest` has the same
/// value at the same place. Git keeps what it already spells out (`replicas: 1`,
/// `imagePullPolicy: IfNotPresent`), so writing the export back changes nothing there.
pub fn clean_against(live: &Value, manifest: &Value) -> Value {
    clean_with(live, Some(manifest))
}

fn clean_with(live: &Value, manifest: Option<&Value>) -> Value {
    let Some(obj) = live.as_object() else {
        return live.clone();
    };
    let managed = ManagedFields::of(live);
    let owners = managed.owned_by_anyone();
    let trivia = Trivia::of(live);
    let mut out = Map::new();
    for (key, value) in obj {
        if SERVER_TOP_LEVEL.contains(&key.as_str()) {
            continue;
        }
        let m = manifest.and_then(|m| m.get(key));
        let kept = match key.as_str() {
            "apiVersion" | "kind" => Some(value.clone()),
            "metadata" => Some(clean_metadata(value, owners.as_ref(), &trivia, m)),
            _ => {
                let owned = owners.as_ref().map(|o| o.child(key));
                at(
                    &[key],
                    Some(value),
                    owned.as_ref().map(Option::as_ref),
                    &trivia,
                    m,
                )
            }
        };
        if let Some(v) = kept {
            out.insert(key.clone(), v);
        }
    }
    Value::Object(out)
}

fn clean_metadata(
    meta: &Value,
    owners: Option<&Fields<'_>>,
    trivia: &Trivia<'_>,
    manifest: Option<&Value>,
) -> Value {
    let Some(meta) = meta.as_object() else {
        return meta.clone();
    };
    let owners = owners.map(|o| o.child("metadata"));
    let mut out = Map::new();
    for (key, value) in meta {
        if SERVER_METADATA.contains(&key.as_str()) {
            continue;
        }
        let kept = match key.as_str() {
            "name" | "namespace" => Some(value.clone()),
            _ => {
                let owned = owners
                    .as_ref()
                    .map(|o| o.as_ref().and_then(|o| o.child(key)));
                at(
                    &["metadata", key],
                    Some(value),
                    owned.as_ref().map(Option::as_ref),
                    trivia,
                    manifest.and_then(|m| m.get(key)),
                )
            }
        };
        if let Some(v) = kept {
            out.insert(key.clone(), v);
        }
    }
    Value::Object(out)
}

/// The server defaults and controller-added fields found in one live object (by the table in
/// `export/defaults.rs`): looked for when first needed, then consulted at every exported
/// subtree.
pub(crate) struct Trivia<'a> {
    live: &'a Value,
    paths: OnceCell<Vec<Vec<Step<'a>>>>,
}

impl<'a> Trivia<'a> {
    /// The trivia of `live` (found lazily).
    pub(crate) fn of(live: &'a Value) -> Self {
        Trivia {
            live,
            paths: OnceCell::new(),
        }
    }

    /// The trivia at or below the subtree at `path`, relative to it, deepest and last first
    /// (so that removing one never moves another); `[]` when the whole subtree is (part of)
    /// trivia.
    fn below<S: AsRef<str>>(&self, path: &[S]) -> Vec<&[Step<'a>]> {
        let mut found: Vec<&[Step<'a>]> = self
            .paths
            .get_or_init(|| defaults::find(self.live))
            .iter()
            .filter_map(|t| {
                let common = t.len().min(path.len());
                let same = t[..common]
                    .iter()
                    .zip(path)
                    .all(|(step, key)| *step == Step::Key(key.as_ref()));
                same.then(|| &t[common..])
            })
            .collect();
        found.sort_unstable_by(|a, b| b.cmp(a));
        found
    }
}

impl Trivia<'_> {
    /// Whether the field at `path` (from the object's root) is a server default holding its
    /// default value or a field a controller adds.
    pub(crate) fn contains(&self, path: &[Step<'_>]) -> bool {
        self.paths
            .get_or_init(|| defaults::find(self.live))
            .iter()
            .any(|t| t.as_slice() == path)
    }
}

/// Whether the manifest value `m` equals the clean export's value at `path` (see [`at`]),
/// without building the export when it can be avoided.
#[cfg(test)]
pub(crate) fn eq_at<S: AsRef<str>>(
    path: &[S],
    m: Option<&Value>,
    live: Option<&Value>,
    owners: Option<Option<&Fields<'_>>>,
    trivia: &Trivia<'_>,
) -> bool {
    export_if_different(path, m, live, owners, trivia).is_none()
}

/// `None` when the manifest value `m` equals the clean export's value at `path` (see
/// [`eq_at`]), else `Some` of that export ([`at`]), built at most once.
pub(crate) fn export_if_different<S: AsRef<str>>(
    path: &[S],
    m: Option<&Value>,
    live: Option<&Value>,
    owners: Option<Option<&Fields<'_>>>,
    trivia: &Trivia<'_>,
) -> Option<Option<Value>> {
    let owned_eq = match (live, owners) {
        (None, _) | (_, Some(None)) => loose_eq_opt(m, None),
        (Some(live), None) => loose_eq_opt(m, Some(live)),
        (Some(live), Some(Some(owned))) => owned.pruned_eq(m, live),
    };
    // Equal before the trivia go is equal after: every trivia field with a value that counts
    // is then in `m` with the same value, and stays. Only a difference needs the table.
    if owned_eq {
        return None;
    }
    let export = at(path, live, owners, trivia, m);
    if !trivia.below(path).is_empty() && loose_eq_opt(m, export.as_ref()) {
        return None;
    }
    Some(export)
}

/// The clean export's value at `path` (an object-member path below the identity and server
/// fields), given the live value there, what all managers own there, the object's trivia and
/// the manifest's value there (trivia that the manifest holds with the same value stays).
///
/// `owners` is `None` when the object has no `managedFields` (everything is kept) and
/// `Some(None)` when nobody owns anything at `path` (nothing is kept).
pub(crate) fn at<S: AsRef<str>>(
    path: &[S],
    live: Option<&Value>,
    owners: Option<Option<&Fields<'_>>>,
    trivia: &Trivia<'_>,
    m: Option<&Value>,
) -> Option<Value> {
    let live = live?;
    let mut value = match owners {
        None => live.clone(),
        Some(None) => return None,
        Some(Some(owned)) => owned.prune(live),
    };
    let mut removed = false;
    for rest in trivia.below(path) {
        let Some(found) = get(&value, rest) else {
            continue;
        };
        if m.and_then(|m| get(m, rest))
            .is_some_and(|mv| loose_eq(mv, found))
        {
            continue; // Git spells it out: keep it.
        }
        if rest.is_empty() {
            return None;
        }
        remove(&mut value, rest);
        removed = true;
    }
    if removed && is_empty(&value) {
        return None;
    }
    Some(value)
}

fn get<'v>(value: &'v Value, path: &[Step<'_>]) -> Option<&'v Value> {
    path.iter().try_fold(value, |v, step| match step {
        Step::Key(k) => v.get(*k),
        Step::Index(i) => v.get(*i),
    })
}

/// Removes the value at `path` (not empty) and then every map or list that this leaves empty
/// on the way up (but not `value` itself, nor an emptied array element).
fn remove(value: &mut Value, path: &[Step<'_>]) {
    let Some((last, parent)) = path.split_last() else {
        return;
    };
    let Some(container) = get_mut(value, parent) else {
        return;
    };
    match (container, last) {
        (Value::Object(map), Step::Key(k)) => {
            map.remove(*k);
        }
        (Value::Array(items), Step::Index(i)) if *i < items.len() => {
            items.remove(*i);
        }
        _ => return,
    }
    let emptied = get(value, parent).is_some_and(is_empty);
    if emptied && matches!(parent.last(), Some(Step::Key(_))) {
        remove(value, parent);
    }
}

fn get_mut<'v>(value: &'v mut Value, path: &[Step<'_>]) -> Option<&'v mut Value> {
    path.iter().try_fold(value, |v, step| match step {
        Step::Key(k) => v.get_mut(*k),
        Step::Index(i) => v.get_mut(*i),
    })
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Object(o) => o.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn without_managed_fields_keeps_everything_but_server_fields() {
        let live = json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {
                "name": "a", "namespace": "default", "uid": "u", "resourceVersion": "1",
                "generation": 1, "creationTimestamp": "2024-01-01T00:00:00Z", "selfLink": "/x",
                "labels": {"app": "a"},
                "annotations": {LAST_APPLIED_ANNOTATION: "{}"}
            },
            "data": {"k": "v"},
            "status": {"x": 1}
        });
        assert_eq!(
            clean(&live),
            json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "a", "namespace": "default", "labels": {"app": "a"}},
                "data": {"k": "v"}
            })
        );
    }

    #[test]
    fn eq_at_agrees_with_the_export_it_avoids_building() {
        let live = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "annotations": {"deployment.kubernetes.io/revision": "4"}},
            "spec": {
                "replicas": 1, "revisionHistoryLimit": 3,
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                "template": {"spec": {"securityContext": {}, "containers": [
                    {"name": "a", "image": "nginx:1.27", "imagePullPolicy": "IfNotPresent", "resources": {}}
                ]}}
            }
        });
        let trivia = Trivia::of(&live);
        let manifests = [
            None,
            Some(
                json!({"revisionHistoryLimit": 3, "template": {"spec": {"containers": [{"name": "a", "image": "nginx:1.27"}]}}}),
            ),
            Some(
                json!({"replicas": 1, "revisionHistoryLimit": 3, "template": {"spec": {"containers": [{"name": "a", "image": "nginx:1.27", "imagePullPolicy": "IfNotPresent"}]}}}),
            ),
            Some(
                json!({"replicas": 2, "revisionHistoryLimit": 3, "template": {"spec": {"containers": [{"name": "a", "image": "nginx:1.27"}]}}}),
            ),
            Some(
                json!({"revisionHistoryLimit": 3, "strategy": {"type": "Recreate"}, "template": {"spec": {"containers": [{"name": "a", "image": "nginx:1.27"}]}}}),
            ),
            Some(live["spec"].clone()),
        ];
        let mut equal = 0;
        for (i, m) in manifests.iter().enumerate() {
            for path in [&["spec"][..], &["metadata", "annotations"][..]] {
                let m = if path == ["spec"] { m.as_ref() } else { None };
                let node = path.iter().try_fold(&live, |v, k| v.get(k));
                let full = loose_eq_opt(m, at(path, node, None, &trivia, m).as_ref());
                assert_eq!(
                    eq_at(path, m, node, None, &trivia),
                    full,
                    "manifest {i} at {path:?}"
                );
                equal += usize::from(full);
            }
        }
        // Equal: both annotation nodes, and the spec of manifests 1, 2 and 5.
        assert_eq!(equal, manifests.len() + 3);
    }

    #[test]
    fn other_annotations_survive() {
        let live = json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "a", "annotations": {LAST_APPLIED_ANNOTATION: "{}", "x": "y"}}
        });
        assert_eq!(clean(&live)["metadata"]["annotations"], json!({"x": "y"}));
        assert_eq!(clean(&json!("x")), json!("x"));
    }
}
