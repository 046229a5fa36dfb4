//! Field ownership from `metadata.managedFields` (`FieldsV1`).
//!
//! A `fieldsV1` set is a tree of JSON objects whose keys are
//! - `f:<name>`: a member of an object,
//! - `k:<json object>`: the element of a list-map whose key fields have these values,
//! - `v:<json value>`: the element of a set-list equal to this value,
//! - `i:<index>`: an element of a list by position,
//! - `.`: the node itself (the map or list exists), without its members.
//!
//! An empty object `{}` owns the node with everything below it.

use std::borrow::Cow;

use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::{Map, Value};

use crate::compare::{loose_eq, loose_eq_opt, vacuous};
use crate::lookup::member_of;

/// A view of one node in the union of several `fieldsV1` sets. It borrows the sets' JSON
/// instead of building a tree, because most objects are only looked at along a few paths.
#[derive(Debug, Default, Clone)]
pub(crate) struct Fields<'a> {
    /// The sets' objects at this node (non-empty ones).
    maps: Maps<'a>,
    /// Some set owns the node as a leaf (`{}`).
    whole: bool,
    /// Whether a leaf owns only itself (one manager's view, for what it applied) rather than
    /// everything below it (the union's view, for the export, where keeping too much is the
    /// safe side since schemas are unknown).
    exact: bool,
}

type FieldsMap = Map<String, Value>;

/// A few maps, without allocating for the usual one.
#[derive(Debug, Default, Clone)]
enum Maps<'a> {
    #[default]
    None,
    One(&'a FieldsMap),
    Many(Vec<&'a FieldsMap>),
}

impl<'a> Maps<'a> {
    fn push(&mut self, map: &'a FieldsMap) {
        *self = match std::mem::take(self) {
            Maps::None => Maps::One(map),
            Maps::One(first) => Maps::Many(vec![first, map]),
            Maps::Many(mut all) => {
                all.push(map);
                Maps::Many(all)
            }
        };
    }

    fn as_slice(&self) -> &[&'a FieldsMap] {
        match self {
            Maps::None => &[],
            Maps::One(map) => std::slice::from_ref(map),
            Maps::Many(all) => all,
        }
    }
}

/// A list-element key, parsed once per list; strings borrow from the `fieldsV1` JSON.
enum Elem<'a> {
    /// `k:` — the key fields of a list-map element.
    Key(Vec<(Cow<'a, str>, Scalar<'a>)>),
    /// `v:` — the value of a set element.
    Value(Scalar<'a>),
    /// `i:` — a position.
    Index(usize),
}

/// A JSON value whose strings are borrowed when possible (no allocation for the usual
/// `{"name":"web"}` keys).
enum Scalar<'a> {
    Str(Cow<'a, str>),
    Other(Value),
}

impl Scalar<'_> {
    fn matches(&self, item: &Value) -> bool {
        match (self, item) {
            (Scalar::Str(s), Value::String(x)) => x == s,
            (Scalar::Str(s), Value::Number(n)) => n.to_string() == *s,
            (Scalar::Str(_), _) => false,
            (Scalar::Other(v), _) => loose_eq(item, v),
        }
    }
}

impl<'de> Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Scalar<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Owned(v)))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Scalar::Other(Value::Bool(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Scalar::Other(Value::from(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Scalar::Other(Value::from(v)))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(Scalar::Other(Value::from(v)))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Scalar::Other(Value::Null))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                Value::deserialize(de::value::MapAccessDeserializer::new(map)).map(Scalar::Other)
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                Value::deserialize(de::value::SeqAccessDeserializer::new(seq)).map(Scalar::Other)
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// The fields of a `k:` key, in order.
struct KeyFields<'a>(Vec<(Cow<'a, str>, Scalar<'a>)>);

impl<'de> Deserialize<'de> for KeyFields<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = KeyFields<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(2));
                while let Some(Scalar::Str(key)) = map.next_key::<Scalar<'de>>()? {
                    fields.push((key, map.next_value()?));
                }
                Ok(KeyFields(fields))
            }
        }
        deserializer.deserialize_map(V)
    }
}

fn parse_elem(key: &str) -> Option<Elem<'_>> {
    if let Some(raw) = key.strip_prefix("k:") {
        serde_json::from_str::<KeyFields<'_>>(raw)
            .ok()
            .map(|k| Elem::Key(k.0))
    } else if let Some(raw) = key.strip_prefix("v:") {
        serde_json::from_str(raw).ok().map(Elem::Value)
    } else {
        key.strip_prefix("i:")?.parse().ok().map(Elem::Index)
    }
}

fn elem_matches(elem: &Elem<'_>, index: usize, item: &Value) -> bool {
    match elem {
        // A key field the element lacks was defaulted when the server computed the key (a
        // container port's `protocol: TCP` on a server that does not default the object
        // itself): it matches. At least one key field must be present and equal.
        Elem::Key(fields) => item.as_object().is_some_and(|obj| {
            // One lookup per key field: every present one must match, and one must be present.
            let mut present = false;
            fields.iter().all(|(k, v)| match member_of(obj, k) {
                Some(x) => {
                    present = true;
                    v.matches(x)
                }
                None => true,
            }) && present
        }),
        Elem::Value(v) => v.matches(item),
        Elem::Index(i) => *i == index,
    }
}

/// `map["f:<name>"]` without building the key for the usual small maps.
fn member<'a>(map: &'a FieldsMap, name: &str) -> Option<&'a Value> {
    if map.len() <= 16 {
        // Comparing lengths first skips almost every key without touching its bytes.
        map.iter()
            .find(|(k, _)| {
                k.len() == name.len() + 2
                    && k.as_bytes()[2..] == *name.as_bytes()
                    && k.starts_with("f:")
            })
            .map(|(_, v)| v)
    } else {
        map.get(&format!("f:{name}"))
    }
}

impl<'a> Fields<'a> {
    fn add(&mut self, set: &'a Value) {
        match set.as_object() {
            Some(map) if !map.is_empty() => self.maps.push(map),
            _ => self.whole = true,
        }
    }

    fn whole() -> Self {
        Fields {
            maps: Maps::None,
            whole: true,
            exact: false,
        }
    }

    /// The ownership of member `name`; `None` when nobody owns anything there. Unless
    /// `exact`, a node owned as a leaf owns its members wholly.
    pub(crate) fn child(&self, name: &str) -> Option<Fields<'a>> {
        if self.whole && !self.exact {
            return Some(Fields::whole());
        }
        let mut out: Option<Fields<'a>> = None;
        for map in self.maps.as_slice() {
            if let Some(set) = member(map, name) {
                out.get_or_insert_with(|| Fields {
                    exact: self.exact,
                    ..Fields::default()
                })
                .add(set);
            }
        }
        out
    }

    /// The ownership at an object-member path below this node.
    pub(crate) fn descend(&self, path: &[&str]) -> Option<Fields<'a>> {
        path.iter()
            .try_fold(self.clone(), |cur, name| cur.child(name))
    }

    /// True when the node is owned as a leaf (`{}`): its value as a whole.
    pub(crate) fn is_whole(&self) -> bool {
        self.whole
    }

    fn keys(&self) -> impl Iterator<Item = &'a String> + '_ {
        self.maps.as_slice().iter().flat_map(|m| m.keys())
    }

    /// The names of owned members of an object node (possibly repeated).
    pub(crate) fn field_names(&self) -> impl Iterator<Item = &'a str> + '_ {
        self.keys().filter_map(|k| k.strip_prefix("f:"))
    }

    fn has_fields(&self) -> bool {
        self.field_names().next().is_some()
    }

    fn has_elems(&self) -> bool {
        self.keys()
            .any(|k| k.starts_with("k:") || k.starts_with("v:") || k.starts_with("i:"))
    }

    /// The element keys of a list node, parsed.
    fn elems(&self) -> Vec<(Elem<'a>, &'a Value)> {
        self.maps
            .as_slice()
            .iter()
            .flat_map(|m| m.iter())
            .filter_map(|(k, set)| Some((parse_elem(k)?, set)))
            .collect()
    }

    /// The ownership of each element of a list (`None` for elements nobody here owns), in
    /// list order.
    pub(crate) fn items_ownership(&self, items: &[Value]) -> Vec<Option<Fields<'a>>> {
        let elems = self.elems();
        items
            .iter()
            .enumerate()
            .map(|(i, item)| Self::item_ownership(&elems, self.exact, i, item))
            .collect()
    }

    /// The ownership of element `index` of a list, given the list node's parsed `elems`.
    fn item_ownership(
        elems: &[(Elem<'a>, &'a Value)],
        exact: bool,
        index: usize,
        item: &Value,
    ) -> Option<Fields<'a>> {
        let mut owned: Option<Fields<'a>> = None;
        for (elem, set) in elems {
            if elem_matches(elem, index, item) {
                owned
                    .get_or_insert_with(|| Fields {
                        exact,
                        ..Fields::default()
                    })
                    .add(set);
            }
        }
        owned
    }

    /// The owned elements of a list with their ownership, in list order.
    fn owned_items<'v>(
        &self,
        items: &'v [Value],
    ) -> impl Iterator<Item = (&'v Value, Fields<'a>)> + use<'a, 'v> {
        // Element by element: a comparison stops at the first difference.
        let elems = self.elems();
        let exact = self.exact;
        items.iter().enumerate().filter_map(move |(i, item)| {
            Some((item, Self::item_ownership(&elems, exact, i, item)?))
        })
    }

    /// `value` restricted to what is owned: unowned members and list elements are dropped,
    /// owned scalars and wholly owned nodes are kept as they are.
    pub(crate) fn prune(&self, value: &Value) -> Value {
        if self.whole {
            return value.clone();
        }
        match value {
            Value::Object(map) if !self.has_elems() => Value::Object(
                map.iter()
                    .filter_map(|(k, v)| Some((k.clone(), self.child(k)?.prune(v))))
                    .collect(),
            ),
            Value::Array(items) if !self.has_fields() => Value::Array(
                self.owned_items(items)
                    .map(|(item, owned)| owned.prune(item))
                    .collect(),
            ),
            // Ownership that does not fit the shape of the value: keep the value.
            _ => value.clone(),
        }
    }

    /// `loose_eq_opt(m, Some(&self.prune(live)))` without building the pruned value.
    pub(crate) fn pruned_eq(&self, m: Option<&Value>, live: &Value) -> bool {
        if self.whole {
            return loose_eq_opt(m, Some(live));
        }
        match live {
            Value::Object(lo) if !self.has_elems() => {
                let Some(m) = m else {
                    return self.pruned_vacuous(live);
                };
                let Value::Object(mo) = m else {
                    return false;
                };
                let mut owned_keys = 0;
                for (k, lv) in lo {
                    let Some(owned) = self.child(k) else {
                        continue;
                    };
                    let same = match member_of(mo, k) {
                        Some(mv) => {
                            owned_keys += 1;
                            owned.pruned_eq(Some(mv), lv)
                        }
                        None => owned.pruned_vacuous(lv),
                    };
                    if !same {
                        return false;
                    }
                }
                // Manifest members that the export lacks must be empty.
                owned_keys == mo.len()
                    || mo.iter().all(|(k, mv)| {
                        (member_of(lo, k).is_some() && self.child(k).is_some()) || vacuous(mv)
                    })
            }
            Value::Array(items) if !self.has_fields() => {
                let Some(m) = m else {
                    return self.pruned_vacuous(live);
                };
                let Value::Array(ma) = m else {
                    return false;
                };
                let mut expected = ma.iter();
                self.owned_items(items).all(|(item, owned)| {
                    expected
                        .next()
                        .is_some_and(|mv| owned.pruned_eq(Some(mv), item))
                }) && expected.next().is_none()
            }
            _ => loose_eq_opt(m, Some(live)),
        }
    }

    /// `vacuous(&self.prune(live))` without building the pruned value.
    fn pruned_vacuous(&self, live: &Value) -> bool {
        if self.whole {
            return vacuous(live);
        }
        match live {
            Value::Object(lo) if !self.has_elems() => lo
                .iter()
                .all(|(k, lv)| self.child(k).is_none_or(|c| c.pruned_vacuous(lv))),
            Value::Array(items) if !self.has_fields() => self.owned_items(items).next().is_none(),
            _ => vacuous(live),
        }
    }
}

fn entries(live: &Value) -> impl Iterator<Item = &Map<String, Value>> {
    live.get("metadata")
        .and_then(|m| m.get("managedFields"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
}

/// The `fieldsV1` sets of an object's `managedFields` entries that own anything (an empty
/// set at the root owns nothing, unlike `{}` further down).
///
/// The API server serves each set as JSON within the object. A store may keep a set as its
/// JSON text instead (a string): the controller's watch stores do, because a set's few nested
/// maps cost far more memory as `serde_json` maps than as text, and the planner reads the sets
/// of only the objects it compares. Text sets are parsed here, for as long as this lives.
pub(crate) struct ManagedFields<'a> {
    live: &'a Value,
    /// The parsed text sets, by entry (`None` for a set in JSON); empty, without allocating,
    /// when no set is text (objects as the API server serves them).
    parsed: Vec<Option<Value>>,
}

impl<'a> ManagedFields<'a> {
    pub(crate) fn of(live: &'a Value) -> Self {
        let is_text =
            |entry: &Map<String, Value>| matches!(entry.get("fieldsV1"), Some(Value::String(_)));
        let parsed = if entries(live).any(is_text) {
            entries(live)
                .map(|entry| match entry.get("fieldsV1") {
                    // Written by the store from a parsed set, so it parses; a set that somehow
                    // does not is left out, as a missing one is.
                    Some(Value::String(text)) => {
                        Some(serde_json::from_str(text).unwrap_or(Value::Null))
                    }
                    _ => None,
                })
                .collect()
        } else {
            Vec::new()
        };
        ManagedFields { live, parsed }
    }

    /// Each entry with its set, if the set owns anything.
    fn sets(&self) -> impl Iterator<Item = (&Map<String, Value>, &Value)> {
        entries(self.live).enumerate().filter_map(|(i, entry)| {
            let set = match self.parsed.get(i) {
                Some(Some(parsed)) => parsed,
                _ => entry.get("fieldsV1")?,
            };
            set.as_object()
                .is_some_and(|m| !m.is_empty())
                .then_some((entry, set))
        })
    }

    /// What every manager owns together, or `None` when the object has no `managedFields`
    /// (then nothing can be concluded about ownership).
    pub(crate) fn owned_by_anyone(&self) -> Option<Fields<'_>> {
        let mut union: Option<Fields<'_>> = None;
        for (_, set) in self.sets() {
            union.get_or_insert_with(Fields::default).add(set);
        }
        union
    }

    /// What `manager` owns through server-side apply (operation `Apply`) on the main resource,
    /// or `None` when it owns nothing. Leaves are exact: applying `spec: {}` owns the (empty)
    /// map, not the fields others put in it later.
    pub(crate) fn applied_by(&self, manager: &str) -> Option<Fields<'_>> {
        let mut union: Option<Fields<'_>> = None;
        for (entry, set) in self.sets() {
            let is_ours = entry.get("manager").and_then(Value::as_str) == Some(manager)
                && entry.get("operation").and_then(Value::as_str) == Some("Apply")
                && entry
                    .get("subresource")
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty);
            if is_ours {
                union
                    .get_or_insert_with(|| Fields {
                        exact: true,
                        ..Fields::default()
                    })
                    .add(set);
            }
        }
        union
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn list_map_keys_with_a_server_defaulted_field_match_the_element() {
        // SSA keys container ports by containerPort + protocol and fills in protocol's
        // default for the key even where the stored object has no protocol field.
        let live = json!({
            "metadata": {"managedFields": [
                {"manager": "git-controller", "operation": "Apply", "fieldsType": "FieldsV1", "fieldsV1": {
                    "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}}
                }}
            ]},
            "ports": [{"containerPort": 80}, {"containerPort": 81, "protocol": "UDP"}]
        });
        let managed = ManagedFields::of(&live);
        let set = managed.owned_by_anyone().unwrap();
        let ports = set.child("ports").unwrap().prune(&live["ports"]);
        assert_eq!(ports, json!([{"containerPort": 80}]));
    }

    #[test]
    fn prune_list_maps_sets_and_fields() {
        let live = json!({
            "metadata": {"managedFields": [
                {"manager": "a", "operation": "Apply", "fieldsType": "FieldsV1", "fieldsV1": {
                    "f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {".": {}, "f:name": {}, "f:image": {}}}}
                }},
                {"manager": "b", "operation": "Update", "fieldsType": "FieldsV1", "fieldsV1": {
                    "f:spec": {"f:finalizers": {".": {}, "v:\"x\"": {}}, "f:selector": {}, "f:labels": {".": {}}}
                }}
            ]},
            "spec": {
                "containers": [
                    {"name": "web", "image": "nginx", "imagePullPolicy": "Always"},
                    {"name": "sidecar", "image": "envoy"}
                ],
                "finalizers": ["x", "y"],
                "selector": {"matchLabels": {"app": "web"}},
                "labels": {"a": "b"},
                "replicas": 1
            }
        });
        let managed = ManagedFields::of(&live);
        let set = managed.owned_by_anyone().unwrap();
        let spec = set.child("spec").unwrap().prune(&live["spec"]);
        assert_eq!(
            spec,
            json!({
                "containers": [{"name": "web", "image": "nginx"}],
                "finalizers": ["x"],
                "selector": {"matchLabels": {"app": "web"}},
                "labels": {}
            })
        );
        let ours = managed.applied_by("a").unwrap();
        let ours_spec = ours.child("spec").unwrap();
        assert!(ours_spec.child("containers").is_some());
        assert!(ours_spec.child("selector").is_none());
        assert_eq!(ours_spec.field_names().collect::<Vec<_>>(), ["containers"]);
        let selector = set.child("spec").unwrap().child("selector").unwrap();
        assert!(selector.is_whole());
        assert!(selector.child("matchLabels").unwrap().is_whole());
        assert!(
            managed.applied_by("b").is_none(),
            "b did not use server-side apply"
        );

        // The lazy comparison agrees with building the pruned value.
        let spec_set = set.child("spec").unwrap();
        for m in [
            spec.clone(),
            json!({"containers": [{"name": "web", "image": "nginx"}], "finalizers": ["x"], "selector": {"matchLabels": {"app": "web"}}}),
            json!({"containers": [{"name": "web", "image": "nginx"}], "finalizers": ["x"], "selector": {"matchLabels": {"app": "web"}}, "labels": {}, "extra": {}}),
            json!({"containers": [{"name": "web", "image": "nginx:2"}], "finalizers": ["x"], "selector": {"matchLabels": {"app": "web"}}}),
            json!({"containers": [], "finalizers": ["x"], "selector": {"matchLabels": {"app": "web"}}}),
            json!({"finalizers": ["x"], "selector": {"matchLabels": {"app": "web"}}}),
            json!({"containers": [{"name": "web", "image": "nginx"}], "finalizers": ["x"], "selector": {"matchLabels": {"app": "web"}}, "replicas": 1}),
            json!("x"),
        ] {
            let expected = crate::compare::loose_eq(&m, &spec_set.prune(&live["spec"]));
            assert_eq!(spec_set.pruned_eq(Some(&m), &live["spec"]), expected, "{m}");
        }
        assert!(!spec_set.pruned_eq(None, &live["spec"]));
        assert!(
            spec_set
                .child("labels")
                .unwrap()
                .pruned_eq(None, &live["spec"]["labels"])
        );
        let none = json!({"metadata": {}});
        assert!(ManagedFields::of(&none).owned_by_anyone().is_none());
    }

    mod lazy_matches_eager {
        use super::*;
        use proptest::prelude::*;

        fn scalar() -> impl Strategy<Value = Value> {
            prop_oneof![
                (0i64..3).prop_map(Value::from),
                prop::sample::select(vec!["a", "b", "1"]).prop_map(Value::from)
            ]
        }

        fn tree() -> impl Strategy<Value = Value> {
            scalar().prop_recursive(3, 24, 4, |inner| {
                prop_oneof![
                    prop::collection::btree_map(
                        prop::sample::select(vec!["p", "q", "r"]),
                        inner.clone(),
                        0..4
                    )
                    .prop_map(|m| Value::Object(
                        m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
                    )),
                    prop::collection::vec(
                        (prop::sample::select(vec!["x", "y"]), inner.clone())
                            .prop_map(|(name, v)| json!({"name": name, "v": v})),
                        0..3
                    )
                    .prop_map(Value::Array),
                    prop::collection::vec(scalar(), 0..3).prop_map(Value::Array),
                ]
            })
        }

        /// A fieldsV1 set owning a random part of `v`, shaped like the API server makes them.
        fn set_for(v: &Value, choices: &mut impl Iterator<Item = u8>) -> Value {
            fn next(choices: &mut impl Iterator<Item = u8>) -> u8 {
                choices.next().unwrap_or(0)
            }
            if next(choices).is_multiple_of(5) {
                return json!({});
            }
            let mut out = Map::new();
            if next(choices).is_multiple_of(2) {
                out.insert(".".into(), json!({}));
            }
            match v {
                Value::Object(map) => {
                    for (k, child) in map {
                        if !next(choices).is_multiple_of(3) {
                            out.insert(format!("f:{k}"), set_for(child, choices));
                        }
                    }
                    if next(choices).is_multiple_of(7) {
                        out.insert("f:ghost".into(), json!({}));
                    }
                }
                Value::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        let key = match (item.get("name"), next(choices) % 3) {
                            (Some(name), 0 | 1) => format!("k:{}", json!({"name": name})),
                            (None, 0 | 1) => format!("v:{item}"),
                            _ => format!("i:{i}"),
                        };
                        if !next(choices).is_multiple_of(4) {
                            out.insert(key, set_for(item, choices));
                        }
                    }
                }
                _ => {}
            }
            Value::Object(out)
        }

        fn mutate(v: &Value, choices: &mut impl Iterator<Item = u8>) -> Value {
            match (v, choices.next().unwrap_or(1) % 9) {
                (_, 0) => json!("changed"),
                (Value::Object(map), _) => {
                    let mut out: Map<String, Value> = map
                        .iter()
                        .map(|(k, c)| (k.clone(), mutate(c, choices)))
                        .collect();
                    match choices.next().unwrap_or(1) % 6 {
                        0 => {
                            out.insert("extra".into(), json!({}));
                        }
                        1 => {
                            out.insert("extra".into(), json!(1));
                        }
                        2 => {
                            let first = out.keys().next().cloned();
                            first.map(|k| out.remove(&k));
                        }
                        _ => {}
                    }
                    Value::Object(out)
                }
                (Value::Array(items), 1) => Value::Array(items.iter().skip(1).cloned().collect()),
                (Value::Array(items), _) => {
                    Value::Array(items.iter().map(|c| mutate(c, choices)).collect())
                }
                _ => v.clone(),
            }
        }

        proptest! {
            #[test]
            fn pruned_eq_agrees_with_prune(
                live in tree(),
                choices in prop::collection::vec(any::<u8>(), 64),
                mutations in prop::collection::vec(any::<u8>(), 64),
                absent in any::<bool>(),
            ) {
                let set = set_for(&live, &mut choices.into_iter().cycle());
                let mut fields = Fields::default();
                fields.add(&set);
                let pruned = fields.prune(&live);
                let candidates = [
                    Some(pruned.clone()),
                    Some(mutate(&pruned, &mut mutations.iter().copied().cycle())),
                    Some(mutate(&live, &mut mutations.iter().copied().rev().cycle())),
                    None,
                ];
                for m in candidates.iter().filter(|m| m.is_some() || absent) {
                    let eager = loose_eq_opt(m.as_ref(), Some(&pruned));
                    prop_assert_eq!(fields.pruned_eq(m.as_ref(), &live), eager, "set {} m {:?}", set, m);
                }
            }
        }
    }
}
