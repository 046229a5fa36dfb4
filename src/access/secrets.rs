//! Secret values never leave the cluster through `diff`: they are masked as Flux's diff masks
//! them, so a change shows that a key changed but not what it holds.

use serde_json::{Map, Value};

/// What a Secret value is replaced with.
pub const MASK: &str = "***";
/// The masked value on the old side of a key whose value changed.
pub const MASK_BEFORE: &str = "*** (before)";
/// The masked value on the new side of a key whose value changed.
pub const MASK_AFTER: &str = "*** (after)";

/// Whether `object` is a core `v1` Secret.
pub fn is_secret(object: &Value) -> bool {
    object.get("apiVersion").and_then(Value::as_str) == Some("v1")
        && object.get("kind").and_then(Value::as_str) == Some("Secret")
}

/// Masks the values of `data` and `stringData` on both sides of a diff of one Secret (either
/// side may be absent: a create or a delete). A key whose value is the same on both sides shows
/// [`MASK`]; a changed one [`MASK_BEFORE`] and [`MASK_AFTER`]. `stringData` values count as
/// the `data` value they stand for. Objects that are not Secrets are left as they are.
pub fn mask_secret_pair(old: Option<&mut Value>, new: Option<&mut Value>) {
    let old = old.filter(|o| is_secret(o));
    let new = new.filter(|n| is_secret(n));
    let before = old.as_deref().map(plain_values).unwrap_or_default();
    let after = new.as_deref().map(plain_values).unwrap_or_default();
    let marker =
        |key: &str, mine: &Map<String, Value>, theirs: &Map<String, Value>, changed| match theirs
            .get(key)
        {
            Some(other) if Some(other) == mine.get(key) => MASK,
            Some(_) => changed,
            None => MASK,
        };
    if let Some(old) = old {
        mask_with(old, |key| marker(key, &before, &after, MASK_BEFORE));
    }
    if let Some(new) = new {
        mask_with(new, |key| marker(key, &after, &before, MASK_AFTER));
    }
}

/// The values of a Secret by key: `data` decoded as the API server stores it, with
/// `stringData` folded in (so a `stringData` manifest and its stored `data` compare equal).
fn plain_values(secret: &Value) -> Map<String, Value> {
    let mut values = Map::new();
    if let Some(data) = secret.get("data").and_then(Value::as_object) {
        for (key, value) in data {
            let decoded = value
                .as_str()
                .and_then(decode_base64)
                .map(|bytes| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
                .unwrap_or_else(|| value.clone());
            values.insert(key.clone(), decoded);
        }
    }
    if let Some(data) = secret.get("stringData").and_then(Value::as_object) {
        for (key, value) in data {
            values.insert(key.clone(), value.clone());
        }
    }
    values
}

fn mask_with(secret: &mut Value, marker: impl Fn(&str) -> &'static str) {
    for field in ["data", "stringData"] {
        if let Some(map) = secret.get_mut(field).and_then(Value::as_object_mut) {
            for (key, value) in map.iter_mut() {
                *value = Value::String(marker(key).to_string());
            }
        }
    }
}

/// Base64 as the API server encodes Secret data; None when the text is not base64.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    serde_json::from_value::<k8s_openapi::ByteString>(Value::String(text.to_string()))
        .ok()
        .map(|bytes| bytes.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn secret(data: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"}, "data": data})
    }

    #[test]
    fn changed_keys_show_before_and_after_and_no_value_survives() {
        // "aHVudGVyMg==" is "hunter2", "c2VjcmV0" is "secret", "dXNlcg==" is "user".
        let mut old = secret(json!({"password": "aHVudGVyMg==", "user": "dXNlcg=="}));
        let mut new = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"},
                             "stringData": {"password": "secret", "user": "user", "token": "t0k3n"}});
        mask_secret_pair(Some(&mut old), Some(&mut new));
        assert_eq!(old["data"], json!({"password": MASK_BEFORE, "user": MASK}));
        assert_eq!(
            new["stringData"],
            json!({"password": MASK_AFTER, "user": MASK, "token": MASK})
        );
        let text = format!("{old}{new}");
        for value in ["aHVudGVyMg", "hunter2", "secret\"", "t0k3n", "dXNlcg"] {
            assert!(!text.contains(value), "{value} leaked: {text}");
        }
    }

    #[test]
    fn creates_and_deletes_are_masked_and_other_kinds_untouched() {
        let mut created = secret(json!({"password": "aHVudGVyMg=="}));
        mask_secret_pair(None, Some(&mut created));
        assert_eq!(created["data"]["password"], MASK);
        let mut config = json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "b"}});
        mask_secret_pair(Some(&mut config), None);
        assert_eq!(config["data"]["a"], "b");
    }

    #[test]
    fn data_and_string_data_compare_by_decoded_value() {
        let mut old = secret(json!({"password": "aHVudGVyMg=="}));
        let mut new =
            json!({"apiVersion": "v1", "kind": "Secret", "stringData": {"password": "hunter2"}});
        mask_secret_pair(Some(&mut old), Some(&mut new));
        assert_eq!(old["data"]["password"], MASK, "same value: no change shown");
        assert_eq!(new["stringData"]["password"], MASK);
    }
}
