//! Value comparison used by the planner.
//!
//! Spellings that YAML and the API server disagree on are not differences:
//! - numbers compare by value (`1` equals `1.0`), and a number equals a string holding
//!   exactly its decimal rendering (`cpu: 1` in Git, `"1"` served back);
//! - `null`, `{}` and `[]` (and maps of only such values) equal an absent field, because the
//!   API server drops empty fields.

use serde_json::Value;

/// Structural equality with the leniency described in the module docs.
pub(crate) fn loose_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            x.iter().all(|(k, v)| loose_eq_opt(Some(v), y.get(k)))
                && y.iter().all(|(k, w)| x.contains_key(k) || vacuous(w))
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(v, w)| loose_eq(v, w))
        }
        _ => scalar_eq(a, b),
    }
}

/// Equality of two optional values; absent equals only absent or empty values.
pub(crate) fn loose_eq_opt(a: Option<&Value>, b: Option<&Value>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => loose_eq(a, b),
        (Some(v), None) | (None, Some(v)) => vacuous(v),
    }
}

fn scalar_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            x == y || (x.is_f64() || y.is_f64()) && x.as_f64() == y.as_f64()
        }
        (Value::Number(n), Value::String(s)) | (Value::String(s), Value::Number(n)) => {
            *s == n.to_string()
        }
        _ => a == b,
    }
}

/// Server-side-apply comparison: does the live value already hold everything the manifest
/// value `m` says?
///
/// - `null` in the manifest has no opinion.
/// - Objects: every key of `m` must be a subset of the live key; keys only live has are fine.
/// - Arrays are atomic: same length and element-wise subset (so defaults the server adds
///   inside elements are not drift).
/// - An empty object or array (or one made only of such) equals an absent live value, because
///   the API server drops empty fields.
pub(crate) fn subset(m: &Value, live: Option<&Value>) -> bool {
    let Some(l) = live else {
        return vacuous(m);
    };
    match (m, l) {
        (Value::Null, _) => true,
        (Value::Object(mo), Value::Object(lo)) => mo.iter().all(|(k, v)| subset(v, lo.get(k))),
        (Value::Object(_), _) => vacuous(m) && l.is_null(),
        (Value::Array(ma), Value::Array(la)) => {
            ma.len() == la.len() && ma.iter().zip(la).all(|(v, w)| subset(v, Some(w)))
        }
        (Value::Array(ma), Value::Null) => ma.is_empty(),
        _ => scalar_eq(m, l),
    }
}

/// Values that setting is the same as not setting.
pub(crate) fn vacuous(m: &Value) -> bool {
    match m {
        Value::Null => true,
        Value::Object(o) => o.values().all(vacuous),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn loose_scalars() {
        assert!(loose_eq(&json!(1), &json!(1.0)));
        assert!(loose_eq(&json!(1), &json!("1")));
        assert!(loose_eq(&json!("0.5"), &json!(0.5)));
        assert!(!loose_eq(&json!(1), &json!("1.0")));
        assert!(!loose_eq(&json!(true), &json!("true")));
        assert!(!loose_eq(&json!({"a": 1}), &json!({"a": 1, "b": 2})));
        assert!(loose_eq(
            &json!({"a": [1, {"b": "2"}]}),
            &json!({"a": [1.0, {"b": 2}]})
        ));
        assert!(loose_eq_opt(None, None));
        assert!(loose_eq_opt(Some(&json!(null)), None));
        assert!(loose_eq_opt(None, Some(&json!({"a": {}, "b": []}))));
        assert!(!loose_eq_opt(None, Some(&json!({"a": ""}))));
        assert!(loose_eq(&json!({"a": 1, "b": {}}), &json!({"a": 1})));
        assert!(!loose_eq(&json!([{}]), &json!([])));
    }

    #[test]
    fn subset_semantics() {
        let live = json!({
            "replicas": 3,
            "template": {"spec": {"containers": [
                {"name": "web", "image": "nginx:1", "imagePullPolicy": "IfNotPresent"}
            ]}},
            "strategy": {"type": "RollingUpdate"}
        });
        // Server defaults are not drift.
        assert!(subset(&json!({"replicas": 3}), Some(&live)));
        assert!(subset(
            &json!({"template": {"spec": {"containers": [{"name": "web", "image": "nginx:1"}]}}}),
            Some(&live)
        ));
        // A changed field, an extra or missing array element are.
        assert!(!subset(&json!({"replicas": 2}), Some(&live)));
        assert!(!subset(
            &json!({"template": {"spec": {"containers": [{"name": "web", "image": "nginx:2"}]}}}),
            Some(&live)
        ));
        assert!(!subset(
            &json!({"template": {"spec": {"containers": []}}}),
            Some(&live)
        ));
        assert!(!subset(&json!({"paused": false}), Some(&live)));
        // null and empty containers have no opinion.
        assert!(subset(
            &json!({"paused": null, "selector": {}, "args": []}),
            Some(&live)
        ));
        assert!(subset(&json!({"a": {"b": {}}}), None));
        assert!(!subset(&json!({"a": {"b": 1}}), None));
        assert!(!subset(&json!({"a": 1}), Some(&json!("x"))));
    }
}
