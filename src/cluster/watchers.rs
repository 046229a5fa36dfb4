//! Watchers keyed by (reader, type, scope), each feeding an in-memory store, shared by every
//! repository that needs the same key.
//!
//! A reconcile reads live objects from these stores instead of listing them, so its cost grows
//! with what changed, not with the size of the cluster. Every change on a watched type (not
//! the first list; see [`ChangeFeed`]) is sent to `changes` as a [`LiveChange`], which the
//! controller maps to the GitRepositories whose rules select the object.
//!
//! Each repository states what it needs ([`Watchers::need`]); the set runs the union of all
//! needs and stops a watcher as soon as no repository needs it. A namespace-scoped key is
//! served by the cluster-wide watcher of the same reader and type when some repository needs
//! that one anyway, so one reader never holds a type twice. Readers are the controller or an
//! impersonated ServiceAccount (lockdown): a watcher lists and watches with its reader's rights,
//! so the API server decides what it sees.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::{self, watcher};
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::change_feed::ChangeFeed;
use super::discovery::{CatalogEntry, TypeKey};
use super::live::{LiveObject, LiveType};
use crate::access::{Clients, RepositoryRef, WatchKey, WatchScope};

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
    store: Store<LiveObject>,
    listed: watch::Receiver<bool>,
    task: JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What a repository reads for one of its keys.
#[derive(Clone)]
pub struct Watched {
    /// What the repository asked for; objects outside `requested.scope` are not its own even
    /// when the serving store holds them.
    pub requested: WatchKey,
    /// The watcher that serves it (the requested one, or the cluster-wide one of the same
    /// reader and type).
    pub served_by: WatchKey,
    /// The type as served.
    pub entry: CatalogEntry,
    /// The live objects of the serving watcher.
    pub store: Store<LiveObject>,
    listed: watch::Receiver<bool>,
}

impl Watched {
    /// Waits until the store holds the initial list; false if the watcher stopped first.
    /// (Any number of reconciles may wait at once: `Store::wait_until_ready` wakes only one
    /// of several concurrent waiters.)
    pub async fn wait_listed(&self) -> bool {
        self.listed.clone().wait_for(|listed| *listed).await.is_ok()
    }

    /// The objects of the store that are in the requested scope.
    pub fn objects(&self) -> Vec<Arc<LiveObject>> {
        let all = self.store.state();
        if self.requested == self.served_by {
            return all;
        }
        all.into_iter()
            .filter(|o| self.requested.scope.contains(o.namespace().as_deref()))
            .collect()
    }
}

#[derive(Default)]
struct State {
    running: BTreeMap<WatchKey, Running>,
    needs: HashMap<RepositoryRef, BTreeMap<WatchKey, CatalogEntry>>,
}

impl State {
    /// Every key that must run: each needed key, or its cluster-wide form when that is
    /// needed too.
    fn serving(&self) -> BTreeMap<WatchKey, CatalogEntry> {
        let needed: BTreeMap<&WatchKey, &CatalogEntry> =
            self.needs.values().flat_map(|keys| keys.iter()).collect();
        needed
            .iter()
            .map(|(key, entry)| {
                let served = serving_key(key, |k| needed.contains_key(k));
                (served, (*entry).clone())
            })
            .collect()
    }
}

fn serving_key(key: &WatchKey, present: impl Fn(&WatchKey) -> bool) -> WatchKey {
    key.widened()
        .filter(|wide| present(wide))
        .unwrap_or_else(|| key.clone())
}

/// The running watchers; cheap to clone (shared).
#[derive(Clone)]
pub struct Watchers {
    clients: Arc<Clients>,
    changes: UnboundedSender<LiveChange>,
    state: Arc<Mutex<State>>,
}

impl Watchers {
    /// No watchers yet; every event of every watcher goes to `changes`.
    pub fn new(clients: Arc<Clients>, changes: UnboundedSender<LiveChange>) -> Self {
        Self {
            clients,
            changes,
            state: Arc::default(),
        }
    }

    /// Records that `repository` needs exactly `wanted` now (what it needed before and no
    /// longer does is released), starts what is missing (or whose served version changed),
    /// stops what nobody needs, and returns what the repository reads. A watcher whose client
    /// cannot be made is left out (logged).
    pub fn need(
        &self,
        repository: &RepositoryRef,
        wanted: BTreeMap<WatchKey, CatalogEntry>,
    ) -> Vec<Watched> {
        let mut state = self.state.lock().expect("watchers lock");
        state.needs.insert(repository.clone(), wanted.clone());
        self.converge(&mut state);
        wanted
            .keys()
            .filter_map(|requested| {
                let served_by = serving_key(requested, |k| state.running.contains_key(k));
                let running = state.running.get(&served_by)?;
                Some(Watched {
                    requested: requested.clone(),
                    served_by,
                    entry: running.entry.clone(),
                    store: running.store.clone(),
                    listed: running.listed.clone(),
                })
            })
            .collect()
    }

    /// Forgets what `repository` needed; stops what nobody needs any more.
    pub fn release(&self, repository: &RepositoryRef) {
        self.retain_repositories(|r| r != repository);
    }

    /// Forgets the needs of every repository for which `keep` is false (deleted ones); stops
    /// what nobody needs any more.
    pub fn retain_repositories(&self, keep: impl Fn(&RepositoryRef) -> bool) {
        let mut state = self.state.lock().expect("watchers lock");
        let before = state.needs.len();
        state.needs.retain(|repository, _| keep(repository));
        if state.needs.len() != before {
            self.converge(&mut state);
        }
    }

    /// How many watchers run (the `gitcontroller_watched_resources` gauge).
    pub fn len(&self) -> usize {
        self.state.lock().expect("watchers lock").running.len()
    }

    /// Whether no watcher runs.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The keys that run now, in order.
    pub fn keys(&self) -> Vec<WatchKey> {
        let state = self.state.lock().expect("watchers lock");
        state.running.keys().cloned().collect()
    }

    fn converge(&self, state: &mut State) {
        let serving = state.serving();
        state.running.retain(|key, running| {
            serving
                .get(key)
                .is_some_and(|entry| entry.resource == running.entry.resource)
        });
        for (key, entry) in serving {
            if state.running.contains_key(&key) {
                continue;
            }
            match self.start(&key, entry) {
                Ok(running) => {
                    state.running.insert(key, running);
                }
                Err(error) => tracing::warn!(watch = %key, %error, "cannot start a watcher"),
            }
        }
    }

    fn start(&self, key: &WatchKey, entry: CatalogEntry) -> Result<Running, kube::Error> {
        let client = self.clients.for_reader(&key.reader)?;
        let live_type = LiveType::new(&entry.resource);
        let api: Api<LiveObject> = match &key.scope {
            WatchScope::Namespace(ns) if entry.namespaced => {
                Api::namespaced_with(client, ns, &live_type)
            }
            _ => Api::all_with(client, &live_type),
        };
        let mut writer = reflector::store::Writer::new(live_type.clone());
        let store = writer.as_reader();
        let changes = self.changes.clone();
        let watch_key = key.clone();
        // The watcher resumes from its last resourceVersion after a drop and relists after a
        // 410 Gone; default_backoff keeps a failing API server from being hammered.
        let (listed_tx, listed) = watch::channel(false);
        let events = watcher(api, watcher::Config::default().any_semantic()).default_backoff();
        let mut feed = ChangeFeed::new(key.type_key.clone(), live_type.clone());
        let before = store.clone();
        let task = tokio::spawn(async move {
            futures::pin_mut!(events);
            while let Some(item) = events.next().await {
                match item {
                    Ok(event) => {
                        // Each object was compacted as it was parsed; typed here, once per
                        // event, while nothing shares it yet: the store then holds the only
                        // copy every reconcile reads.
                        let event = event.modify(|object| object.typed(&live_type));
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
                        tracing::warn!(watch = %watch_key, %error, "watch failed; retrying")
                    }
                }
            }
        });
        tracing::info!(watch = %key, version = %entry.resource.version, "watching");
        Ok(Running {
            entry,
            store,
            listed,
            task,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::{Reader, ServiceAccountRef};

    fn key(reader: Reader, scope: WatchScope) -> WatchKey {
        WatchKey {
            reader,
            type_key: TypeKey {
                group: String::new(),
                kind: "ConfigMap".into(),
            },
            scope,
        }
    }

    #[test]
    fn a_namespace_key_is_served_cluster_wide_only_by_the_same_reader() {
        let account = Reader::Account(ServiceAccountRef {
            namespace: "team-a".into(),
            name: "deployer".into(),
        });
        let team_a = key(Reader::Controller, WatchScope::Namespace("team-a".into()));
        let cluster = key(Reader::Controller, WatchScope::Cluster);
        let needed = [
            cluster.clone(),
            key(account.clone(), WatchScope::Namespace("team-a".into())),
        ];
        assert_eq!(serving_key(&team_a, |k| needed.contains(k)), cluster);
        let as_account = key(account.clone(), WatchScope::Namespace("team-b".into()));
        assert_eq!(
            serving_key(&as_account, |k| needed.contains(k)),
            as_account,
            "another reader's cluster watcher never serves an account"
        );
        assert_eq!(serving_key(&cluster, |k| needed.contains(k)), cluster);
    }
}
