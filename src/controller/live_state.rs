//! [`LiveState`]: the observe step's output — the live objects a repository's rules select and
//! its identity may read, shared with the watchers' stores, and found by id without a copy of
//! any id.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::BuildHasher;
use std::sync::Arc;

use gitcontroller_sync::{LiveInput, ObjectId};
use hashbrown::hash_table::Entry;
use hashbrown::{DefaultHashBuilder, HashTable};
use serde_json::Value;

use crate::cluster::LiveObject;
use crate::cluster::discovery::CatalogEntry;

/// The live objects of one sync, in runs of one type each (one run per watcher read).
#[derive(Clone, Debug, Default)]
pub struct LiveState {
    /// Every such object as the stores keep them ([`LiveObject`]: compact, its bookkeeping
    /// annotations kept aside), shared with the stores, not copied. Private: the index holds
    /// positions in it.
    objects: Arc<Vec<Arc<LiveObject>>>,
    index: Arc<LiveIndex>,
}

/// The type of a run of [`LiveState::objects`].
#[derive(Clone, Debug)]
struct Run {
    /// Where the run ends in `objects` (exclusive).
    end: usize,
    group: String,
    kind: String,
    namespaced: bool,
}

/// Positions in `objects` by (group, kind, namespace, name): a table of (position, run) pairs
/// hashed by identity and compared against the objects themselves. Building it copies no
/// string; the map of ids it replaces made an id (three strings) and a map entry per object on
/// every sync, which at 10,000 objects was a seventh of the CPU of a one-object change.
#[derive(Debug, Default)]
struct LiveIndex {
    runs: Vec<Run>,
    table: HashTable<(u32, u32)>,
    hasher: DefaultHashBuilder,
}

/// Gathers the objects of a [`LiveState`], a run of one type at a time.
#[derive(Default)]
pub struct LiveStateBuilder {
    objects: Vec<Arc<LiveObject>>,
    runs: Vec<Run>,
}

impl LiveStateBuilder {
    /// Starts a run of objects of type `entry`.
    pub fn start_run(&mut self, entry: &CatalogEntry, expected: usize) {
        self.objects.reserve(expected);
        self.runs.push(Run {
            end: self.objects.len(),
            group: entry.resource.group.clone(),
            kind: entry.resource.kind.clone(),
            namespaced: entry.namespaced,
        });
    }

    /// Adds an object to the current run.
    pub fn push(&mut self, object: Arc<LiveObject>) {
        self.objects.push(object);
        if let Some(run) = self.runs.last_mut() {
            run.end = self.objects.len();
        }
    }

    /// The state, with the index of `previous` (the last sync's) when every object is where
    /// it was there: the same runs, and at each position the very object or one of the same
    /// identity (an object changed since). Building the index reads every object; checking
    /// reads only the changed ones.
    pub fn build_after(self, previous: Option<&LiveState>) -> LiveState {
        match previous {
            Some(previous) if self.placed_as(previous) => LiveState {
                objects: Arc::new(self.objects),
                index: Arc::clone(&previous.index),
            },
            _ => self.build(),
        }
    }

    /// Whether every object is where it is in `previous`.
    fn placed_as(&self, previous: &LiveState) -> bool {
        let runs = &previous.index.runs;
        self.objects.len() == previous.objects.len()
            && self.runs.len() == runs.len()
            && self.runs.iter().zip(runs).all(|(a, b)| {
                (a.end, a.namespaced, &a.group, &a.kind) == (b.end, b.namespaced, &b.group, &b.kind)
            })
            && self
                .objects
                .iter()
                .zip(previous.objects.iter())
                .enumerate()
                .all(|(position, (now, then))| {
                    if Arc::ptr_eq(now, then) {
                        return true;
                    }
                    let at = (to_u32(position), run_of(runs, position));
                    key(runs, &self.objects, at) == key(runs, &previous.objects, at)
                })
    }

    /// The state; an object listed twice (two watchers serving it) is found as the later one.
    pub fn build(self) -> LiveState {
        let LiveStateBuilder { objects, runs } = self;
        let hasher = DefaultHashBuilder::default();
        let mut table = HashTable::with_capacity(objects.len());
        let key_of = |at| key(&runs, &objects, at);
        let hash_of = |at| hasher.hash_one(key_of(at));
        let mut start = 0;
        for (run_at, run) in runs.iter().enumerate() {
            for position in start..run.end {
                let at = (to_u32(position), to_u32(run_at));
                match table.entry(
                    hash_of(at),
                    |&other| key_of(other) == key_of(at),
                    |&other| hash_of(other),
                ) {
                    Entry::Occupied(mut occupied) => *occupied.get_mut() = at,
                    Entry::Vacant(vacant) => {
                        vacant.insert(at);
                    }
                }
            }
            start = run.end;
        }
        LiveState {
            index: Arc::new(LiveIndex {
                runs,
                table,
                hasher,
            }),
            objects: Arc::new(objects),
        }
    }
}

/// The run that `position` is in.
fn run_of(runs: &[Run], position: usize) -> u32 {
    to_u32(runs.partition_point(|run| run.end <= position))
}

fn to_u32(n: usize) -> u32 {
    // A sync holds far fewer than four billion objects: the stores would not fit in memory.
    u32::try_from(n).expect("fewer than 2^32 live objects")
}

/// The identity parts an object is found by.
type Key<'a> = (&'a str, &'a str, Option<&'a str>, &'a str);

/// The identity parts of the object at `(position, run)`.
fn key<'a>(
    runs: &'a [Run],
    objects: &'a [Arc<LiveObject>],
    (position, run): (u32, u32),
) -> Key<'a> {
    let run = &runs[run as usize];
    let identity = objects[position as usize].identity();
    (
        &run.group,
        &run.kind,
        identity.namespace.filter(|_| run.namespaced),
        identity.name.unwrap_or_default(),
    )
}

impl LiveIndex {
    fn find(&self, objects: &[Arc<LiveObject>], id: &ObjectId) -> Option<usize> {
        let wanted: Key<'_> = (&id.group, &id.kind, id.namespace.as_deref(), &id.name);
        let hash = self.hasher.hash_one(wanted);
        self.table
            .find(hash, |&at| key(&self.runs, objects, at) == wanted)
            .map(|&(position, _)| position as usize)
    }
}

impl LiveState {
    /// Every live object, in runs of one type.
    pub fn objects(&self) -> &Arc<Vec<Arc<LiveObject>>> {
        &self.objects
    }

    /// The live object `id`, if it exists (and the identity may read it).
    pub fn get(&self, id: &ObjectId) -> Option<&LiveObject> {
        let position = self.index.find(&self.objects, id)?;
        Some(&self.objects[position])
    }

    /// The live objects among `ids` (a lookup each).
    pub fn find_all<'a>(&'a self, ids: &BTreeSet<&ObjectId>) -> BTreeMap<ObjectId, &'a Value> {
        ids.iter()
            .filter_map(|id| Some(((*id).clone(), self.get(id)?.object().as_ref())))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::RepositoryRef;
    use crate::access::ownership::{OWNER_ANNOTATION, is_stamped_by};
    use crate::cluster::discovery::CatalogEntry;
    use kube::discovery::ApiResource;

    fn entry(group: &str, kind: &str, plural: &str, namespaced: bool) -> CatalogEntry {
        let api_version = if group.is_empty() {
            "v1".to_string()
        } else {
            format!("{group}/v1")
        };
        CatalogEntry {
            resource: ApiResource {
                group: group.into(),
                version: "v1".into(),
                api_version,
                kind: kind.into(),
                plural: plural.into(),
            },
            namespaced,
        }
    }

    fn live(
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
        owner: &str,
    ) -> Arc<LiveObject> {
        let mut metadata =
            serde_json::json!({"name": name, "annotations": {OWNER_ANNOTATION: owner}});
        if let Some(namespace) = namespace {
            metadata["namespace"] = namespace.into();
        }
        Arc::new(LiveObject::new(serde_json::json!({
            "apiVersion": api_version, "kind": kind, "metadata": metadata, "data": {"k": name},
        })))
    }

    #[test]
    fn the_next_sync_keeps_the_index_while_every_object_is_where_it_was() {
        let configmaps = entry("", "ConfigMap", "configmaps", true);
        let state_of = |objects: &[Arc<LiveObject>], previous: Option<&LiveState>| {
            let mut builder = LiveStateBuilder::default();
            builder.start_run(&configmaps, objects.len());
            for object in objects {
                builder.push(Arc::clone(object));
            }
            builder.build_after(previous)
        };
        let objects = [
            live("v1", "ConfigMap", Some("team-a"), "a", "team-a/apps"),
            live("v1", "ConfigMap", Some("team-a"), "b", "team-a/apps"),
        ];
        let first = state_of(&objects, None);
        let b = ObjectId::new("", "ConfigMap", Some("team-a"), "b");
        let (team_a, team_b) = (
            RepositoryRef::new("team-a", "apps"),
            RepositoryRef::new("team-b", "apps"),
        );

        // b changed (a new object of the same identity): the index is kept, and finds it.
        let changed = [
            Arc::clone(&objects[0]),
            live("v1", "ConfigMap", Some("team-a"), "b", "team-b/apps"),
        ];
        let second = state_of(&changed, Some(&first));
        assert!(Arc::ptr_eq(&second.index, &first.index), "kept");
        assert!(is_stamped_by(second.get(&b).unwrap(), &team_b));
        assert!(is_stamped_by(first.get(&b).unwrap(), &team_a));

        // Another object in b's place, or another number of objects: built anew.
        let c = ObjectId::new("", "ConfigMap", Some("team-a"), "c");
        let replaced = [
            Arc::clone(&objects[0]),
            live("v1", "ConfigMap", Some("team-a"), "c", "team-a/apps"),
        ];
        let third = state_of(&replaced, Some(&second));
        assert!(!Arc::ptr_eq(&third.index, &second.index));
        assert!(third.get(&b).is_none() && third.get(&c).is_some());
        let fewer = state_of(&objects[..1], Some(&first));
        assert!(!Arc::ptr_eq(&fewer.index, &first.index));
        assert!(fewer.get(&b).is_none());
    }

    #[test]
    fn live_objects_are_found_by_id_with_their_bookkeeping() {
        let configmaps = entry("", "ConfigMap", "configmaps", true);
        let roles = entry(
            "rbac.authorization.k8s.io",
            "ClusterRole",
            "clusterroles",
            false,
        );
        let mut builder = LiveStateBuilder::default();
        builder.start_run(&configmaps, 3);
        builder.push(live("v1", "ConfigMap", Some("team-a"), "a", "team-a/apps"));
        builder.push(live("v1", "ConfigMap", Some("team-a"), "b", "team-b/apps"));
        builder.push(live("v1", "ConfigMap", Some("team-b"), "b", "team-b/apps"));
        builder.start_run(&roles, 1);
        builder.push(live(
            "rbac.authorization.k8s.io/v1",
            "ClusterRole",
            None,
            "a",
            "x/y",
        ));
        // A run the same type again (a second watcher): the later object is the one found.
        builder.start_run(&configmaps, 1);
        builder.push(live("v1", "ConfigMap", Some("team-a"), "a", "team-c/apps"));
        let state = builder.build();
        assert_eq!(state.objects.len(), 5);

        let a = ObjectId::new("", "ConfigMap", Some("team-a"), "a");
        let b = ObjectId::new("", "ConfigMap", Some("team-a"), "b");
        let role = ObjectId::new("rbac.authorization.k8s.io", "ClusterRole", None, "a");
        let team_c = RepositoryRef::new("team-c", "apps");
        assert!(is_stamped_by(state.get(&a).unwrap(), &team_c));
        let team_b = RepositoryRef::new("team-b", "apps");
        assert!(is_stamped_by(state.get(&b).unwrap(), &team_b));
        assert!(state.get(&role).is_some());
        for missing in [
            ObjectId::new("", "ConfigMap", Some("team-c"), "a"),
            ObjectId::new("", "ConfigMap", None, "a"),
            ObjectId::new("", "Secret", Some("team-a"), "a"),
            ObjectId::new(
                "rbac.authorization.k8s.io",
                "ClusterRole",
                Some("team-a"),
                "a",
            ),
            ObjectId::new("", "ClusterRole", None, "a"),
        ] {
            assert!(state.get(&missing).is_none(), "{missing:?}");
        }
        let found = state.find_all(&BTreeSet::from([
            &b,
            &role,
            &ObjectId::new("", "ConfigMap", Some("x"), "b"),
        ]));
        assert_eq!(found.keys().collect::<Vec<_>>(), [&b, &role]);
        assert_eq!(found[&b]["data"]["k"], "b");
        assert!(
            found[&b]["metadata"].get("annotations").is_none(),
            "kept aside"
        );
    }

    #[test]
    fn many_objects_are_each_found() {
        let configmaps = entry("", "ConfigMap", "configmaps", true);
        let mut builder = LiveStateBuilder::default();
        builder.start_run(&configmaps, 3000);
        for i in 0..3000 {
            builder.push(live(
                "v1",
                "ConfigMap",
                Some(&format!("ns-{}", i % 7)),
                &format!("cm-{i}"),
                "a/b",
            ));
        }
        let state = builder.build();
        for i in 0..3000 {
            let id = ObjectId::new(
                "",
                "ConfigMap",
                Some(&format!("ns-{}", i % 7)),
                format!("cm-{i}"),
            );
            let found = state.get(&id).expect("found");
            assert_eq!(found.object()["data"]["k"], format!("cm-{i}"));
            let elsewhere = ObjectId::new(
                "",
                "ConfigMap",
                Some(&format!("ns-{}", (i + 1) % 7)),
                format!("cm-{i}"),
            );
            assert!(state.get(&elsewhere).is_none());
        }
    }
}
