//! One watcher per resource type that some SyncRule selects, each feeding an in-memory store.
//!
//! A reconcile reads live objects from these stores instead of listing them, so its cost grows
//! with what changed, not with the size of the cluster. Every change on a watched type (not
//! the first list; see [`ChangeFeed`]) is sent to `changes` as a [`LiveChange`], which the
//! controller maps to the GitRepositories whose rules select the object.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use kube::Client;
use kube::api::{Api, DynamicObject};
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::{self, watcher};
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::change_feed::ChangeFeed;
use super::discovery::{CatalogEntry, TypeKey};

/// A change of one live object of a watched type: enough to tell which rules select it
/// (type, namespace, labels) and whether it is the echo of our own write (resourceVersion).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveChange {
    /// The type that changed.
    pub key: TypeKey,
    /// The namespace of the changed object (None: cluster-scoped).
    pub namespace: Option<String>,
    /// Its name.
    pub name: String,
    /// Created or changed, or deleted.
    pub kind: LiveChangeKind,
    /// Its labels after the change (for a deletion: the last labels it had).
    pub labels: BTreeMap<String, String>,
    /// Its labels before the change, when the change modified them: an object a label
    /// change moves out of a selector concerns that selector's rules as much as one it moves
    /// in.
    pub old_labels: Option<BTreeMap<String, String>>,
    /// The resourceVersion the event carries (for a deletion: the deletion's).
    pub resource_version: Option<String>,
}

/// What happened to a live object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LiveChangeKind {
    /// Created or modified.
    Applied,
    /// Deleted.
    Deleted,
}

struct Running {
    entry: CatalogEntry,
    store: Store<DynamicObject>,
    listed: watch::Receiver<bool>,
    task: JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A watched type: its store, and whether the store holds the initial list yet.
#[derive(Clone)]
pub struct Watched {
    /// The type.
    pub entry: CatalogEntry,
    /// Its live objects.
    pub store: Store<DynamicObject>,
    listed: watch::Receiver<bool>,
}

impl Watched {
    /// Waits until the store holds the initial list; false if the watcher stopped first.
    /// (Any number of reconciles may wait at once: `Store::wait_until_ready` wakes only one
    /// of several concurrent waiters.)
    pub async fn wait_listed(&self) -> bool {
        self.listed.clone().wait_for(|listed| *listed).await.is_ok()
    }
}

/// The set of running watchers; cheap to clone (shared).
#[derive(Clone)]
pub struct Watchers {
    client: Client,
    namespace: Option<String>,
    changes: UnboundedSender<LiveChange>,
    running: Arc<Mutex<BTreeMap<TypeKey, Running>>>,
}

impl Watchers {
    /// No watchers yet; events go to `changes`.
    /// With a namespace, only that namespace is watched (for installs whose RBAC is limited
    /// to one namespace) and cluster-scoped types are not watched at all.
    pub fn new(
        client: Client,
        namespace: Option<String>,
        changes: UnboundedSender<LiveChange>,
    ) -> Self {
        Self {
            client,
            namespace,
            changes,
            running: Arc::default(),
        }
    }

    /// Makes sure a watcher runs for every type in `wanted` (starting missing ones, restarting
    /// ones whose served version changed) and returns their stores.
    pub fn ensure(&self, wanted: &BTreeMap<TypeKey, CatalogEntry>) -> BTreeMap<TypeKey, Watched> {
        let mut running = self.running.lock().expect("watchers lock");
        let mut stores = BTreeMap::new();
        for (key, entry) in wanted {
            if self.namespace.is_some() && !entry.namespaced {
                continue;
            }
            let current = running
                .get(key)
                .filter(|r| r.entry.resource == entry.resource);
            if current.is_none() {
                running.insert(key.clone(), self.start(key.clone(), entry.clone()));
            }
            let r = &running[key];
            stores.insert(
                key.clone(),
                Watched {
                    entry: r.entry.clone(),
                    store: r.store.clone(),
                    listed: r.listed.clone(),
                },
            );
        }
        stores
    }

    /// Makes the running watchers exactly `wanted`: starts the missing ones and stops every
    /// watcher whose type is not in it.
    pub fn set(&self, wanted: &BTreeMap<TypeKey, CatalogEntry>) {
        self.ensure(wanted);
        self.running
            .lock()
            .expect("watchers lock")
            .retain(|key, _| wanted.contains_key(key));
    }

    /// How many types are watched (the `gitcontroller_watched_resources` gauge).
    pub fn len(&self) -> usize {
        self.running.lock().expect("watchers lock").len()
    }

    /// Whether no type is watched.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn start(&self, key: TypeKey, entry: CatalogEntry) -> Running {
        let api: Api<DynamicObject> = match &self.namespace {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, &entry.resource),
            None => Api::all_with(self.client.clone(), &entry.resource),
        };
        let mut writer = reflector::store::Writer::new(entry.resource.clone());
        let store = writer.as_reader();
        let changes = self.changes.clone();
        let watch_key = key.clone();
        // The watcher resumes from its last resourceVersion after a drop and relists after a
        // 410 Gone; default_backoff keeps a failing API server from being hammered.
        let (listed_tx, listed) = watch::channel(false);
        let events = watcher(api, watcher::Config::default().any_semantic()).default_backoff();
        let mut feed = ChangeFeed::new(key.clone(), entry.resource.clone());
        let before = store.clone();
        let task = tokio::spawn(async move {
            futures::pin_mut!(events);
            while let Some(item) = events.next().await {
                match item {
                    Ok(event) => {
                        // Read against the store as it was before the event: the labels an
                        // update replaced, and after a relist what changed meanwhile.
                        let live_changes = feed.changes(&event, &before);
                        writer.apply_watcher_event(&event);
                        if let watcher::Event::InitDone = event {
                            listed_tx.send_replace(true);
                        }
                        for change in live_changes {
                            if changes.send(change).is_err() {
                                return;
                            }
                        }
                    }
                    Err(error) => {
                        tracing::warn!(resource = %watch_key, %error, "watch failed; retrying");
                    }
                }
            }
        });
        tracing::info!(resource = %key, version = %entry.resource.version, "watching");
        Running {
            entry,
            store,
            listed,
            task,
        }
    }
}
