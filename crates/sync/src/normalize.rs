//! Values as the API server stores them, and Git rewrites that keep what is equal.

use serde_json::{Map, Value};

use crate::compare::{Verdict, decode_bytes, encode_bytes, same_key, stored_cmp, vacuous};
use crate::fields::Fields;
use crate::quantity::Quantity;
use crate::schema::{ListKind, ScalarKind, SchemaNode};

/// The canonical form of a value under its schema: values that are equal as the server
/// stores them ([`stored_equal`](crate::stored_equal): quantities by value, bytes decoded,
/// `null`/`{}`/`[]` members absent, integral numbers as integers) normalize to the same value.
///
/// - quantities are written as their value with decimal suffixes
///   ([`Quantity::value_string`]: `2000m` → `"2"`, `0.5` → `"500m"`, `1Gi` and `1024Mi` →
///   `"1073741824"`); a number or string that is not a quantity stays as it is;
/// - bytes are re-encoded in standard padded base64;
/// - members that are `null`, `{}`, `[]` (after normalizing them) are dropped;
/// - numbers with an integral value become integers (`1.0` → `1`).
///
/// It is idempotent: normalizing a normalized value changes nothing.
pub fn normalize(value: &Value, at: SchemaNode<'_>) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter_map(|(k, v)| {
                    let n = normalize(v, at.field(k));
                    (!vacuous(&n)).then(|| (k.clone(), n))
                })
                .collect(),
        ),
        Value::Array(items) => {
            let at = at.items();
            Value::Array(items.iter().map(|v| normalize(v, at)).collect())
        }
        _ => normalize_scalar(value, at),
    }
}

fn normalize_scalar(value: &Value, at: SchemaNode<'_>) -> Value {
    match (at.scalar(), value) {
        (Some(ScalarKind::Quantity), _) => match Quantity::from_json(value) {
            Some(Ok(q)) => Value::String(q.value_string()),
            _ => value.clone(),
        },
        (Some(ScalarKind::Bytes), Value::String(s)) => match decode_bytes(s) {
            Some(bytes) => Value::String(encode_bytes(&bytes)),
            None => value.clone(),
        },
        (_, Value::Number(n)) if n.is_f64() => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Value::from(f as i64),
            _ => value.clone(),
        },
        _ => value.clone(),
    }
}

/// The manifest value `m` rewritten to the export's value `e`, changing only what differs
/// ([`stored_cmp`]): members and elements that compare equal keep the manifest's spelling
/// (Git keeps `cpu: 2000m` when the server serves `"2"`), differing members are replaced,
/// members only the manifest has are removed and members only the export has are added.
/// Arrays of the same length are rewritten element by element; list-maps of different lengths
/// follow the export's elements, rewriting the manifest's element with the same key.
/// `None` means "remove the field".
pub(crate) fn rewrite(
    m: Option<&Value>,
    e: Option<&Value>,
    at: SchemaNode<'_>,
    owners: Option<&Fields<'_>>,
) -> Option<Value> {
    if stored_cmp(m, e, at, owners) != Verdict::Different {
        return m.cloned();
    }
    match (m, e) {
        (Some(Value::Object(x)), Some(Value::Object(y))) => {
            let mut out = Map::new();
            for (k, mv) in x {
                let child = owners.and_then(|o| o.child(k));
                if let Some(v) = rewrite(Some(mv), y.get(k), at.field(k), child.as_ref()) {
                    out.insert(k.clone(), v);
                }
            }
            for (k, ev) in y.iter().filter(|(k, _)| !x.contains_key(*k)) {
                out.insert(k.clone(), ev.clone());
            }
            Some(Value::Object(out))
        }
        (Some(Value::Array(x)), Some(Value::Array(y))) => {
            let items = at.items();
            let owned = owners.map(|o| o.items_ownership(y)).unwrap_or_default();
            let rewritten = |mv: Option<&Value>, i: usize| {
                let own = owned.get(i).and_then(Option::as_ref);
                rewrite(mv, Some(&y[i]), items, own).unwrap_or_else(|| y[i].clone())
            };
            if x.len() == y.len() {
                return Some(Value::Array(
                    x.iter()
                        .enumerate()
                        .map(|(i, mv)| rewritten(Some(mv), i))
                        .collect(),
                ));
            }
            match at.list_kind() {
                Some(ListKind::Map(keys)) => Some(Value::Array(
                    (0..y.len())
                        .map(|i| {
                            let same = x.iter().find(|mv| same_key(mv, &y[i], keys, items));
                            rewritten(same, i)
                        })
                        .collect(),
                )),
                _ => e.cloned(),
            }
        }
        _ => e.cloned(),
    }
}

/// A core `Secret` manifest with `stringData` as the server stores it: each `stringData`
/// member moved into `data`, base64-encoded (overriding a `data` member of the same name).
/// `None` when there is nothing to fold.
pub(crate) fn fold_string_data(secret: &Value) -> Option<Value> {
    let string_data = secret.get("stringData")?.as_object()?;
    let mut folded = secret.clone();
    let obj = folded.as_object_mut()?;
    obj.remove("stringData");
    let data = obj
        .entry("data")
        .or_insert_with(|| Value::Object(Map::new()));
    if !data.is_object() {
        *data = Value::Object(Map::new());
    }
    let data = data.as_object_mut()?;
    for (k, v) in string_data {
        match v {
            Value::String(s) => {
                data.insert(k.clone(), Value::String(encode_bytes(s.as_bytes())));
            }
            // Not a string: the server rejects it; keep it visible as a difference.
            other => {
                data.insert(k.clone(), other.clone());
            }
        }
    }
    Some(folded)
}

/// The clean export of a Secret's `data` (at `path`: `["data"]` or `["data", key]`) with the
/// members written through `stringData` added back: the server records ownership of
/// `stringData.<key>` but stores `data.<key>`, so pruning by ownership alone would lose them.
/// `owners` is what all managers own in the object (`None` without `managedFields`, when
/// nothing was pruned).
pub(crate) fn with_string_data_members(
    path: &[&str],
    live: &Value,
    export: Option<Value>,
    owners: Option<&Fields<'_>>,
) -> Option<Value> {
    let (Some(string_data), Some(data)) = (
        owners.and_then(|o| o.child("stringData")),
        live.get("data").and_then(Value::as_object),
    ) else {
        return export;
    };
    let written: Vec<&str> = string_data.field_names().collect();
    match path {
        ["data"] => {
            let mut export = export.unwrap_or_else(|| Value::Object(Map::new()));
            if let Some(out) = export.as_object_mut() {
                for key in written {
                    if let Some(v) = data.get(key) {
                        out.entry(key).or_insert_with(|| v.clone());
                    }
                }
            }
            (!vacuous(&export)).then_some(export)
        }
        ["data", key] if written.contains(key) => export.or_else(|| data.get(*key).cloned()),
        _ => export,
    }
}

/// After `written` (a rewrite of the original manifest's `data`, compared with `stringData`
/// folded in) puts the live `data` into a Secret manifest that has `stringData`: members
/// whose live value is still what `stringData` says stay in `stringData` (and `data` goes
/// back to what Git had for them); the others leave `stringData`, their live value is in
/// `data`.
pub(crate) fn unfold_string_data(original: &Value, written: &mut Value) {
    let Some(string_data) = original.get("stringData").and_then(Value::as_object) else {
        return;
    };
    let original_data = original.get("data").and_then(Value::as_object);
    let Some(obj) = written.as_object_mut() else {
        return;
    };
    let mut kept = Map::new();
    let mut data = match obj.remove("data") {
        Some(Value::Object(data)) => data,
        _ => Map::new(),
    };
    for (k, v) in string_data {
        let folded = v
            .as_str()
            .map(|s| Value::String(encode_bytes(s.as_bytes())));
        if folded.is_some() && data.get(k) == folded.as_ref() {
            kept.insert(k.clone(), v.clone());
            match original_data.and_then(|d| d.get(k)) {
                Some(was) => data.insert(k.clone(), was.clone()),
                None => data.remove(k),
            };
        }
    }
    if !data.is_empty() || original_data.is_some() {
        obj.insert("data".into(), Value::Object(data));
    }
    if kept.is_empty() {
        obj.remove("stringData");
    } else {
        obj.insert("stringData".into(), Value::Object(kept));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn string_data_folds_and_unfolds() {
        let secret = json!({
            "kind": "Secret",
            "data": {"user": "YWRtaW4=", "password": "b2xk"},
            "stringData": {"password": "hunter2", "token": "t"}
        });
        let folded = fold_string_data(&secret).unwrap();
        assert_eq!(
            folded,
            json!({"kind": "Secret", "data": {"user": "YWRtaW4=", "password": "aHVudGVyMg==", "token": "dA=="}})
        );
        assert!(fold_string_data(&json!({"kind": "Secret", "data": {}})).is_none());

        // The live token changed; the password did not.
        let mut written = secret.clone();
        written["data"] = json!({"user": "YWRtaW4=", "password": "aHVudGVyMg==", "token": "dTI="});
        unfold_string_data(&secret, &mut written);
        assert_eq!(
            written,
            json!({
                "kind": "Secret",
                "data": {"user": "YWRtaW4=", "password": "b2xk", "token": "dTI="},
                "stringData": {"password": "hunter2"}
            })
        );
    }

    #[test]
    fn normalize_without_schema_drops_empty_members() {
        let v = json!({"a": {"b": [], "c": null}, "d": [{}], "e": 1.0, "f": 1.5});
        assert_eq!(
            normalize(&v, SchemaNode::UNKNOWN),
            json!({"d": [{}], "e": 1, "f": 1.5})
        );
    }
}
