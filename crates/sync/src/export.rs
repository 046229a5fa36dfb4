//! Cleaning a live object into what belongs in Git.

use serde_json::{Map, Value};

use crate::compare::loose_eq_opt;
use crate::fields::{self, Fields};

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
///    dropped, as is the [`LAST_APPLIED_ANNOTATION`]; an `annotations` map left empty is
///    dropped too.
///
/// A value that is not an object is returned unchanged.
pub fn clean(live: &Value) -> Value {
    let Some(obj) = live.as_object() else {
        return live.clone();
    };
    let owners = fields::owned_by_anyone(live);
    let mut out = Map::new();
    for (key, value) in obj {
        if SERVER_TOP_LEVEL.contains(&key.as_str()) {
            continue;
        }
        let kept = match key.as_str() {
            "apiVersion" | "kind" => Some(value.clone()),
            "metadata" => Some(clean_metadata(value, owners.as_ref())),
            _ => {
                let owned = owners.as_ref().map(|o| o.child(key));
                at(&[key], Some(value), owned.as_ref().map(Option::as_ref))
            }
        };
        if let Some(v) = kept {
            out.insert(key.clone(), v);
        }
    }
    Value::Object(out)
}

fn clean_metadata(meta: &Value, owners: Option<&Fields<'_>>) -> Value {
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
                )
            }
        };
        if let Some(v) = kept {
            out.insert(key.clone(), v);
        }
    }
    Value::Object(out)
}

/// Whether the manifest value `m` equals the clean export's value at `path` (see [`at`]),
/// without building the export when it can be avoided.
pub(crate) fn eq_at<S: AsRef<str>>(
    path: &[S],
    m: Option<&Value>,
    live: Option<&Value>,
    owners: Option<Option<&Fields<'_>>>,
) -> bool {
    let special = path.first().is_some_and(|p| p.as_ref() == "metadata")
        && path.get(1).is_some_and(|p| p.as_ref() == "annotations");
    match (live, owners) {
        _ if special => loose_eq_opt(m, at(path, live, owners).as_ref()),
        (None, _) | (_, Some(None)) => loose_eq_opt(m, None),
        (Some(live), None) => loose_eq_opt(m, Some(live)),
        (Some(live), Some(Some(owned))) => owned.pruned_eq(m, live),
    }
}

/// The clean export's value at `path` (an object-member path below the identity and server
/// fields), given the live value there and what all managers own there.
///
/// `owners` is `None` when the object has no `managedFields` (everything is kept) and
/// `Some(None)` when nobody owns anything at `path` (nothing is kept).
pub(crate) fn at<S: AsRef<str>>(
    path: &[S],
    live: Option<&Value>,
    owners: Option<Option<&Fields<'_>>>,
) -> Option<Value> {
    let live = live?;
    let mut value = match owners {
        None => live.clone(),
        Some(None) => return None,
        Some(Some(owned)) => owned.prune(live),
    };
    let is = |expected: &[&str]| {
        path.len() == expected.len() && path.iter().zip(expected).all(|(a, b)| a.as_ref() == *b)
    };
    if is(&["metadata", "annotations"])
        && let Some(annotations) = value.as_object_mut()
    {
        annotations.remove(LAST_APPLIED_ANNOTATION);
        if annotations.is_empty() {
            return None;
        }
    }
    if is(&["metadata", "annotations", LAST_APPLIED_ANNOTATION]) {
        return None;
    }
    Some(value)
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
    fn other_annotations_survive() {
        let live = json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "a", "annotations": {LAST_APPLIED_ANNOTATION: "{}", "x": "y"}}
        });
        assert_eq!(clean(&live)["metadata"]["annotations"], json!({"x": "y"}));
        assert_eq!(clean(&json!("x")), json!("x"));
    }
}
