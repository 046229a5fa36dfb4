//! [`Context`]: what every reconcile shares — clients, the resource catalog, the watchers and
//! their stores, the SyncRule store, the write gate, the trigger, and each repository's own
//! state between reconciles.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use kube::runtime::reflector::Store;
use kube::{Client, ResourceExt};
use tokio::sync::{Notify, RwLock};

use super::events::ObjectEventBudget;
use super::gate::WriteGate;
use super::own_writes::OwnWrites;
use super::repository::{RepoKey, RepositoryState};
use super::schedule::Batching;
use super::trigger::Trigger;
use super::writer::Writer;
use crate::access::{AccessReviews, Clients, Identity, Tenancy};
use crate::api::{GitRepository, SyncRule};
use crate::cluster::{EventRecorder, ResourceCatalog, Watchers};
use crate::metrics::Metrics;

/// How the controller runs (from the command line).
#[derive(Clone, Debug)]
pub struct Config {
    /// Only GitRepositories (and SyncRules) in this namespace; all namespaces when None.
    pub namespace: Option<String>,
    /// Where Git caches live between reconciles.
    pub cache_dir: PathBuf,
    /// How many GitRepositories reconcile at once.
    pub concurrency: u16,
    /// How triggers are batched into syncs.
    pub batching: Batching,
    /// A status that only records progress is written at most once per this
    /// (`--status-interval`; see [`super::repository::RepositoryState::status_write_wait`]).
    pub status_interval: std::time::Duration,
    /// Pods' identity in Events.
    pub instance: String,
    /// Tenant confinement: trusted namespaces, lockdown, plain-text Secrets, local URLs.
    pub tenancy: Tenancy,
}

/// Everything a reconcile needs; shared by all reconciles.
pub struct Context {
    /// The controller's own client (its identity): reads, status, finalizers, Events.
    pub client: Client,
    /// The controller's client and the ServiceAccounts' impersonating ones.
    pub clients: Arc<Clients>,
    /// What impersonated ServiceAccounts may do, asked of the API server.
    pub reviews: Arc<AccessReviews>,
    /// Command-line configuration.
    pub config: Config,
    /// Served resource types; replaced when CRDs change.
    catalog: RwLock<Arc<ResourceCatalog>>,
    /// Watchers and stores of live objects.
    pub watchers: Watchers,
    /// Every SyncRule the controller can see.
    pub rules: Store<SyncRule>,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// Asked right before every write.
    pub gate: WriteGate,
    /// Asks for syncs (and fetches) of repositories.
    pub trigger: Trigger,
    /// Writes of synced objects until their watch events arrive.
    pub own_writes: OwnWrites,
    /// The controller's own writes (status, finalizers, Events).
    writer: Writer,
    /// Each repository's state between reconciles.
    repositories: Mutex<HashMap<RepoKey, Arc<RepositoryState>>>,
    /// Woken when the SyncRules' status and the watcher set need a refresh: a rule's spec,
    /// the catalog, or the set of repositories changed.
    pub rules_changed: Notify,
    /// Per-object Events every repository's syncs may still write.
    pub(super) object_events: ObjectEventBudget,
}

/// The parts a [`Context`] is made of.
pub struct ContextParts {
    /// The controller's own client.
    pub client: Client,
    /// The controller's client and the impersonating ones.
    pub clients: Arc<Clients>,
    /// Access reviews.
    pub reviews: Arc<AccessReviews>,
    /// Command-line configuration.
    pub config: Config,
    /// The served resource types.
    pub catalog: ResourceCatalog,
    /// Watchers of live objects.
    pub watchers: Watchers,
    /// The SyncRule store.
    pub rules: Store<SyncRule>,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// Publishes Events.
    pub recorder: EventRecorder,
    /// The write gate.
    pub gate: WriteGate,
    /// The trigger.
    pub trigger: Trigger,
    /// Where writes of synced objects are remembered.
    pub own_writes: OwnWrites,
}

impl Context {
    /// A context with no repository state yet.
    pub fn new(parts: ContextParts) -> Self {
        let writer = Writer::new(
            parts.client.clone(),
            parts.gate.clone(),
            parts.recorder,
            parts.own_writes.clone(),
        );
        Self {
            client: parts.client,
            clients: parts.clients,
            reviews: parts.reviews,
            config: parts.config,
            catalog: RwLock::new(Arc::new(parts.catalog)),
            watchers: parts.watchers,
            rules: parts.rules,
            metrics: parts.metrics,
            gate: parts.gate,
            trigger: parts.trigger,
            own_writes: parts.own_writes,
            writer,
            repositories: Mutex::default(),
            rules_changed: Notify::new(),
            object_events: ObjectEventBudget::default(),
        }
    }

    /// Whether writes are allowed now (see [`WriteGate`]).
    pub fn may_write(&self) -> bool {
        self.gate.is_open()
    }

    /// The served resource types.
    pub async fn catalog(&self) -> Arc<ResourceCatalog> {
        self.catalog.read().await.clone()
    }

    /// Replaces the catalog after rediscovery.
    pub async fn set_catalog(&self, catalog: ResourceCatalog) {
        *self.catalog.write().await = Arc::new(catalog);
        self.rules_changed.notify_one();
    }

    /// The controller's own writes: status, finalizers and Events.
    pub fn writer(&self) -> &Writer {
        &self.writer
    }

    /// Whose rights a repository acts with (`docs/security.md`).
    pub fn identity_of(&self, repo: &GitRepository) -> Identity {
        self.config.tenancy.identity(
            &repo.namespace().unwrap_or_default(),
            repo.spec.service_account_name.as_deref(),
        )
    }

    /// The writer `repo`'s synced objects are applied and deleted with, as `identity`: the
    /// controller's own client, or one impersonating the repository's ServiceAccount. Its
    /// writes are remembered as `repo`'s, so their echoes do not wake it again.
    pub fn writer_for(
        &self,
        repo: &GitRepository,
        identity: &Identity,
    ) -> Result<Writer, kube::Error> {
        Ok(self
            .writer
            .with_client(self.clients.for_identity(identity)?)
            .for_repository(RepoKey::of(repo)))
    }

    /// A repository's state, created on first use.
    pub fn repository(&self, key: &RepoKey) -> Arc<RepositoryState> {
        self.repositories
            .lock()
            .expect("repositories lock")
            .entry(key.clone())
            .or_default()
            .clone()
    }

    /// A repository's state if it has one (nothing is created).
    pub fn known_repository(&self, key: &RepoKey) -> Option<Arc<RepositoryState>> {
        self.repositories
            .lock()
            .expect("repositories lock")
            .get(key)
            .cloned()
    }

    /// Forgets a deleted repository: its state, pending fetch request, metric series and
    /// watchers.
    pub fn forget(&self, key: &RepoKey) {
        self.repositories
            .lock()
            .expect("repositories lock")
            .remove(key);
        self.trigger.clear_fetch_request(key);
        self.metrics.forget(&key.namespace, &key.name);
        self.watchers.release(key);
    }

    /// The SyncRules that belong to a repository, sorted by name.
    pub fn rules_of(&self, key: &RepoKey) -> Vec<Arc<SyncRule>> {
        let mut rules: Vec<_> = self
            .rules
            .state()
            .into_iter()
            .filter(|r| {
                r.namespace().as_deref() == Some(key.namespace.as_str())
                    && r.spec.repository_ref.name == key.name
            })
            .collect();
        rules.sort_by_key(|r| r.name_any());
        rules
    }
}
