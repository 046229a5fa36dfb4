//! [`ChangeFeed`]: one watcher's events as [`LiveChange`]s.
//!
//! - The first list is not a change: whoever started the watcher has a sync coming that waits
//!   for the list (a rule's change, start-up).
//! - An update says which labels it replaced, read from the store before the event is applied.
//! - A relist (after the watch lost its place, `410 Gone`) is compared with the store: only
//!   objects whose resourceVersion differs are changes, and objects missing from the new list
//!   were deleted meanwhile.

use std::collections::{BTreeMap, HashSet};

use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;

use super::discovery::TypeKey;
use super::live::{LiveObject, LiveType};
use super::watchers::{LiveChange, LiveChangeKind};

/// Turns one watcher's events into live changes. Call [`ChangeFeed::changes`] with each event
/// *before* the event is applied to the store.
#[derive(Debug)]
pub struct ChangeFeed {
    key: TypeKey,
    resource: LiveType,
    /// Whether the first list is complete.
    listed: bool,
    /// During a relist: the objects listed so far.
    relisted: Option<HashSet<ObjectRef<LiveObject>>>,
}

impl ChangeFeed {
    /// A feed for the objects of one type.
    pub fn new(key: TypeKey, resource: LiveType) -> Self {
        Self {
            key,
            resource,
            listed: false,
            relisted: None,
        }
    }

    /// The changes `event` makes to the objects in `before` (the store, not yet updated).
    pub fn changes(
        &mut self,
        event: &watcher::Event<LiveObject>,
        before: &Store<LiveObject>,
    ) -> Vec<LiveChange> {
        match event {
            watcher::Event::Apply(object) => {
                let old = before.get(&self.reference(object));
                vec![self.change(object, LiveChangeKind::Applied, old.as_deref())]
            }
            watcher::Event::Delete(object) => {
                vec![self.change(object, LiveChangeKind::Deleted, None)]
            }
            watcher::Event::Init => {
                if self.listed {
                    self.relisted = Some(HashSet::new());
                }
                Vec::new()
            }
            watcher::Event::InitApply(object) => {
                let reference = self.reference(object);
                let Some(relisted) = &mut self.relisted else {
                    return Vec::new();
                };
                relisted.insert(reference.clone());
                let old = before.get(&reference);
                if old.as_ref().and_then(|o| o.resource_version()) == object.resource_version() {
                    return Vec::new();
                }
                vec![self.change(object, LiveChangeKind::Applied, old.as_deref())]
            }
            watcher::Event::InitDone => {
                self.listed = true;
                let Some(relisted) = self.relisted.take() else {
                    return Vec::new();
                };
                before
                    .state()
                    .iter()
                    .filter(|old| !relisted.contains(&self.reference(old)))
                    .map(|old| self.change(old, LiveChangeKind::Deleted, None))
                    .collect()
            }
        }
    }

    fn reference(&self, object: &LiveObject) -> ObjectRef<LiveObject> {
        ObjectRef::from_obj_with(object, self.resource.clone())
    }

    fn change(
        &self,
        object: &LiveObject,
        kind: LiveChangeKind,
        old: Option<&LiveObject>,
    ) -> LiveChange {
        let labels: BTreeMap<String, String> = object.labels_map();
        let old_labels = old.map(LiveObject::labels_map).filter(|old| *old != labels);
        LiveChange {
            key: self.key.clone(),
            namespace: object.namespace(),
            name: object.name_any(),
            kind,
            labels,
            old_labels,
            resource_version: object.resource_version(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::runtime::reflector::store::Writer;

    fn resource() -> LiveType {
        LiveType::new(&kube::api::ApiResource {
            group: String::new(),
            version: "v1".into(),
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            plural: "configmaps".into(),
        })
    }

    /// A ConfigMap as a list or watch event carries it: the feed reads what the store kept.
    fn object(name: &str, version: &str, labels: &[(&str, &str)]) -> LiveObject {
        let labels: serde_json::Map<String, serde_json::Value> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), (*v).into()))
            .collect();
        LiveObject::new(serde_json::json!({
            "metadata": {
                "name": name, "namespace": "ns", "resourceVersion": version, "labels": labels
            },
            "data": {}
        }))
    }

    /// A change's name, kind and old labels.
    type Seen = (String, LiveChangeKind, Option<BTreeMap<String, String>>);

    /// Feeds events through a feed and a store as the watcher task does; returns what it saw
    /// of every change.
    fn feed(events: Vec<watcher::Event<LiveObject>>) -> Vec<Seen> {
        let mut writer = Writer::new(resource());
        let store = writer.as_reader();
        let mut feed = ChangeFeed::new(
            TypeKey {
                group: String::new(),
                kind: "ConfigMap".into(),
            },
            resource(),
        );
        let mut out = Vec::new();
        for event in events {
            for change in feed.changes(&event, &store) {
                out.push((change.name, change.kind, change.old_labels));
            }
            writer.apply_watcher_event(&event);
        }
        out
    }

    fn first_list() -> Vec<watcher::Event<LiveObject>> {
        vec![
            watcher::Event::Init,
            watcher::Event::InitApply(object("a", "1", &[("app", "x")])),
            watcher::Event::InitApply(object("b", "2", &[])),
            watcher::Event::InitDone,
        ]
    }

    #[test]
    fn the_first_list_is_no_change() {
        assert_eq!(feed(first_list()), []);
    }

    #[test]
    fn an_update_names_the_labels_it_replaced() {
        let mut events = first_list();
        events.push(watcher::Event::Apply(object("a", "3", &[("app", "y")])));
        events.push(watcher::Event::Apply(object("a", "4", &[("app", "y")])));
        events.push(watcher::Event::Delete(object("b", "5", &[])));
        let label = |v: &str| Some(BTreeMap::from([("app".to_string(), v.to_string())]));
        assert_eq!(
            feed(events),
            [
                ("a".into(), LiveChangeKind::Applied, label("x")),
                ("a".into(), LiveChangeKind::Applied, None),
                ("b".into(), LiveChangeKind::Deleted, None),
            ]
        );
    }

    #[test]
    fn a_relist_reports_only_what_changed_meanwhile() {
        let mut events = first_list();
        events.extend([
            watcher::Event::Init,
            // a: unchanged; b: gone; c: new.
            watcher::Event::InitApply(object("a", "1", &[("app", "x")])),
            watcher::Event::InitApply(object("c", "7", &[])),
            watcher::Event::InitDone,
        ]);
        assert_eq!(
            feed(events),
            [
                ("c".into(), LiveChangeKind::Applied, None),
                ("b".into(), LiveChangeKind::Deleted, None),
            ]
        );
    }
}
