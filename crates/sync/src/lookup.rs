//! Member lookup in the small maps objects are made of.
//!
//! A `serde_json::Map` finds a key by comparing it with the keys of a node in order, which
//! reads each key's bytes: one heap allocation, and with thousands of objects out of the
//! cache, one cache miss, per key passed over. Comparing lengths first (they are stored in the
//! node) skips almost every key without touching its bytes.

use serde_json::{Map, Value};

/// Up to this many members a scan beats the map's own search.
const SCAN_LIMIT: usize = 16;

/// `value[key]` when `value` is an object that has `key`.
pub(crate) fn member<'v>(value: &'v Value, key: &str) -> Option<&'v Value> {
    value.as_object().and_then(|map| member_of(map, key))
}

/// `map[key]`, if present.
pub(crate) fn member_of<'v>(map: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
    if map.len() <= SCAN_LIMIT {
        map.iter()
            .find(|(k, _)| k.len() == key.len() && k.as_str() == key)
            .map(|(_, v)| v)
    } else {
        map.get(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_members_in_small_and_large_maps() {
        let small = json!({"apiVersion": "v1", "kind": "ConfigMap", "kinds": 1});
        assert_eq!(member(&small, "kind"), Some(&json!("ConfigMap")));
        assert_eq!(member(&small, "kinds"), Some(&json!(1)));
        assert_eq!(member(&small, "kin"), None);
        assert_eq!(member(&json!("not an object"), "kind"), None);

        let large: Map<String, Value> = (0..40).map(|i| (format!("k{i}"), json!(i))).collect();
        assert_eq!(member_of(&large, "k39"), Some(&json!(39)));
        assert_eq!(member_of(&large, "k40"), None);
    }
}
