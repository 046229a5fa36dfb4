//! Cleaning a live object into what belongs in Git.

use serde_json::{Map, Value};

use crate::fields;

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
    let mut out = match fields::owned_by_anyone(live) {
        Some(owned) => owned.prune(live),
        None => {
            // Copy only what survives, instead of cloning status and managedFields.
            let mut out = Map::new();
            for (k, v) in obj {
                if !SERVER_TOP_LEVEL.contains(&k.as_str()) && k != "metadata" {
                    out.insert(k.clone(), v.clone());
                }
            }
            if let Some(meta) = obj.get("metadata").and_then(Value::as_object) {
                let meta: Map<String, Value> = meta
                    .iter()
                    .filter(|(k, _)| !SERVER_METADATA.contains(&k.as_str()))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                out.insert("metadata".into(), Value::Object(meta));
            }
            Value::Object(out)
        }
    };
    let Value::Object(out_map) = &mut out else {
        return out;
    };
    for key in ["apiVersion", "kind"] {
        if let Some(v) = obj.get(key) {
            out_map.insert(key.to_owned(), v.clone());
        }
    }
    for key in SERVER_TOP_LEVEL {
        out_map.remove(*key);
    }
    let live_meta = obj.get("metadata").and_then(Value::as_object);
    let meta = out_map
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(meta) = meta {
        for key in ["name", "namespace"] {
            if let Some(v) = live_meta.and_then(|m| m.get(key)) {
                meta.insert(key.to_owned(), v.clone());
            }
        }
        for key in SERVER_METADATA {
            meta.remove(*key);
        }
        let annotations_empty = match meta.get_mut("annotations") {
            Some(Value::Object(annotations)) => {
                annotations.remove(LAST_APPLIED_ANNOTATION);
                annotations.is_empty()
            }
            _ => false,
        };
        if annotations_empty {
            meta.remove("annotations");
        }
    }
    out
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
