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

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// A parsed `fieldsV1` set (or the union of several), borrowing keys from the live object.
#[derive(Debug, Default, Clone)]
pub(crate) struct FieldSet<'a> {
    /// `{}`: the whole value is owned.
    whole: bool,
    fields: BTreeMap<&'a str, FieldSet<'a>>,
    elems: Vec<(Elem<'a>, FieldSet<'a>)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Elem<'a> {
    Key(&'a str),
    Value(&'a str),
    Index(usize),
}

/// Elements matcher with the JSON of `k:`/`v:` parsed once per list.
enum ParsedElem {
    Key(Map<String, Value>),
    Value(Value),
    Index(usize),
    Invalid,
}

impl<'a> FieldSet<'a> {
    fn parse(value: &'a Value) -> Self {
        let Some(map) = value.as_object() else {
            return FieldSet {
                whole: true,
                ..FieldSet::default()
            };
        };
        let mut set = FieldSet {
            whole: map.is_empty(),
            ..FieldSet::default()
        };
        for (key, child) in map {
            if let Some(name) = key.strip_prefix("f:") {
                set.fields
                    .entry(name)
                    .or_default()
                    .merge(FieldSet::parse(child));
            } else if let Some(raw) = key.strip_prefix("k:") {
                set.add_elem(Elem::Key(raw), FieldSet::parse(child));
            } else if let Some(raw) = key.strip_prefix("v:") {
                set.add_elem(Elem::Value(raw), FieldSet::parse(child));
            } else if let Some(Ok(i)) = key.strip_prefix("i:").map(str::parse) {
                set.add_elem(Elem::Index(i), FieldSet::parse(child));
            }
            // "." marks the node itself; it is implied by the entry existing.
        }
        set
    }

    fn add_elem(&mut self, elem: Elem<'a>, set: FieldSet<'a>) {
        match self.elems.iter_mut().find(|(e, _)| *e == elem) {
            Some((_, existing)) => existing.merge(set),
            None => self.elems.push((elem, set)),
        }
    }

    /// Union with another set.
    fn merge(&mut self, other: FieldSet<'a>) {
        self.whole |= other.whole;
        for (name, set) in other.fields {
            self.fields.entry(name).or_default().merge(set);
        }
        for (elem, set) in other.elems {
            self.add_elem(elem, set);
        }
    }

    /// The ownership of member `name` (a wholly owned node owns its members wholly).
    pub(crate) fn child(&self, name: &str) -> Option<&FieldSet<'a>> {
        if self.whole {
            Some(self)
        } else {
            self.fields.get(name)
        }
    }

    /// True when the whole node (everything below it) is owned.
    pub(crate) fn is_whole(&self) -> bool {
        self.whole
    }

    /// The names of owned members of an object node.
    pub(crate) fn field_names(&self) -> impl Iterator<Item = &'a str> + '_ {
        self.fields.keys().copied()
    }

    /// `value` restricted to what this set owns: unowned members and list elements are
    /// dropped, owned scalars and wholly owned nodes are kept as they are.
    pub(crate) fn prune(&self, value: &Value) -> Value {
        if self.whole {
            return value.clone();
        }
        match value {
            Value::Object(map) if self.elems.is_empty() => Value::Object(
                map.iter()
                    .filter_map(|(k, v)| Some((k.clone(), self.fields.get(k.as_str())?.prune(v))))
                    .collect(),
            ),
            Value::Array(items) if self.fields.is_empty() => {
                let parsed: Vec<(ParsedElem, &FieldSet<'a>)> =
                    self.elems.iter().map(|(e, s)| (parse_elem(e), s)).collect();
                Value::Array(
                    items
                        .iter()
                        .enumerate()
                        .filter_map(|(i, item)| {
                            let (_, set) = parsed.iter().find(|(e, _)| elem_matches(e, i, item))?;
                            Some(set.prune(item))
                        })
                        .collect(),
                )
            }
            // Ownership that does not fit the shape of the value: keep the value.
            _ => value.clone(),
        }
    }
}

fn parse_elem(elem: &Elem<'_>) -> ParsedElem {
    match elem {
        Elem::Key(raw) => serde_json::from_str(raw).map_or(ParsedElem::Invalid, ParsedElem::Key),
        Elem::Value(raw) => {
            serde_json::from_str(raw).map_or(ParsedElem::Invalid, ParsedElem::Value)
        }
        Elem::Index(i) => ParsedElem::Index(*i),
    }
}

fn elem_matches(elem: &ParsedElem, index: usize, item: &Value) -> bool {
    match elem {
        ParsedElem::Key(key) => {
            let Some(obj) = item.as_object() else {
                return false;
            };
            key.iter()
                .all(|(k, v)| obj.get(k).is_some_and(|x| crate::compare::loose_eq(x, v)))
        }
        ParsedElem::Value(v) => crate::compare::loose_eq(item, v),
        ParsedElem::Index(i) => *i == index,
        ParsedElem::Invalid => false,
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

/// The union of what every manager owns, or `None` when the object has no `managedFields`
/// (then nothing can be concluded about ownership).
pub(crate) fn owned_by_anyone(live: &Value) -> Option<FieldSet<'_>> {
    let mut union: Option<FieldSet<'_>> = None;
    for entry in entries(live) {
        if let Some(fields) = entry.get("fieldsV1") {
            union
                .get_or_insert_with(FieldSet::default)
                .merge(FieldSet::parse(fields));
        }
    }
    union
}

/// What `manager` owns through server-side apply (operation `Apply`) on the main resource,
/// or `None` when it owns nothing.
pub(crate) fn applied_by<'a>(live: &'a Value, manager: &str) -> Option<FieldSet<'a>> {
    let mut union: Option<FieldSet<'a>> = None;
    for entry in entries(live) {
        let is_ours = entry.get("manager").and_then(Value::as_str) == Some(manager)
            && entry.get("operation").and_then(Value::as_str) == Some("Apply")
            && entry
                .get("subresource")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty);
        if let (true, Some(fields)) = (is_ours, entry.get("fieldsV1")) {
            union
                .get_or_insert_with(FieldSet::default)
                .merge(FieldSet::parse(fields));
        }
    }
    union
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn prune_list_maps_sets_and_fields() {
        let live = json!({
            "metadata": {"managedFields": [
                {"manager": "a", "operation": "Apply", "fieldsType": "FieldsV1", "fieldsV1": {
                    "f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {".": {}, "f:name": {}, "f:image": {}}}}
                }},
                {"manager": "b", "operation": "Update", "fieldsType": "FieldsV1", "fieldsV1": {
                    "f:spec": {"f:finalizers": {".": {}, "v:\"x\"": {}}, "f:selector": {}}
                }}
            ]},
            "spec": {
                "containers": [
                    {"name": "web", "image": "nginx", "imagePullPolicy": "Always"},
                    {"name": "sidecar", "image": "envoy"}
                ],
                "finalizers": ["x", "y"],
                "selector": {"matchLabels": {"app": "web"}},
                "replicas": 1
            }
        });
        let set = owned_by_anyone(&live).unwrap();
        let spec = set.child("spec").unwrap().prune(&live["spec"]);
        assert_eq!(
            spec,
            json!({
                "containers": [{"name": "web", "image": "nginx"}],
                "finalizers": ["x"],
                "selector": {"matchLabels": {"app": "web"}}
            })
        );
        let ours = applied_by(&live, "a").unwrap();
        assert!(ours.child("spec").unwrap().child("containers").is_some());
        assert!(ours.child("spec").unwrap().child("selector").is_none());
        assert!(
            applied_by(&live, "b").is_none(),
            "b did not use server-side apply"
        );
        assert!(owned_by_anyone(&json!({"metadata": {}})).is_none());
    }
}
