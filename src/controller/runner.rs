//! Wiring: discovery, watchers, triggers and the kube-runtime `Controller`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher::{self, watcher};
use kube::{Client, ResourceExt};
use tokio::sync::{RwLock, mpsc};
use tokio_stream::wrappers::UnboundedReceiverStream;

use crate::api::{GitRepository, SyncRule};
use crate::cluster::discovery::selects;
use crate::cluster::watchers::LiveChange;
use crate::cluster::{ResourceCatalog, Watchers};
use crate::error::Error;
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
    /// Changes arriving within this window are synced together (one commit).
    pub batch_window: Duration,
    /// Pods' identity in Events.
    pub instance: String,
}

/// State kept per GitRepository (namespace, name).
type PerRepository<T> = std::sync::Mutex<std::collections::HashMap<(String, String), T>>;

/// Everything a reconcile needs; shared by all reconciles.
pub struct Context {
    /// The Kubernetes client.
    pub client: Client,
    /// Command-line configuration.
    pub config: Config,
    /// Served resource types; replaced when CRDs change.
    pub catalog: RwLock<Arc<ResourceCatalog>>,
    /// Watchers and stores of live objects.
    pub watchers: Watchers,
    /// Every SyncRule the controller can see.
    pub rules: Store<SyncRule>,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// Publishes Events.
    pub recorder: Recorder,
    /// When false, nothing is written (leader election lost or not yet won).
    pub writes_allowed: Arc<std::sync::atomic::AtomicBool>,
    /// One Git operation at a time per repository cache, held by the blocking thread.
    pub git_locks: PerRepository<Arc<tokio::sync::Mutex<()>>>,
    /// Parsed manifests per repository.
    pub parse_caches: PerRepository<super::ParseCache>,
}

impl Context {
    /// The parse cache of one repository.
    pub fn parse_cache(&self, namespace: &str, name: &str) -> super::ParseCache {
        self.parse_caches
            .lock()
            .expect("parse caches lock")
            .entry((namespace.to_string(), name.to_string()))
            .or_default()
            .clone()
    }

    /// Takes the Git lock of one repository, or fails at once when an earlier Git step (one
    /// that timed out) still holds it.
    pub fn git_lock(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Arc<tokio::sync::OwnedMutexGuard<()>>, Error> {
        let lock = self
            .git_locks
            .lock()
            .expect("git locks")
            .entry((namespace.to_string(), name.to_string()))
            .or_default()
            .clone();
        lock.try_lock_owned()
            .map(Arc::new)
            .map_err(|_| Error::GitBusy)
    }

    /// Forgets a deleted repository's parse cache and Git lock.
    pub fn forget_repository(&self, namespace: &str, name: &str) {
        let key = (namespace.to_string(), name.to_string());
        self.parse_caches
            .lock()
            .expect("parse caches lock")
            .remove(&key);
        self.git_locks.lock().expect("git locks").remove(&key);
    }

    /// The SyncRules that belong to a repository, sorted by name.
    pub fn rules_of(&self, namespace: &str, repository: &str) -> Vec<Arc<SyncRule>> {
        let mut rules: Vec<_> = self
            .rules
            .state()
            .into_iter()
            .filter(|r| {
                r.namespace().as_deref() == Some(namespace)
                    && r.spec.repository_ref.name == repository
            })
            .collect();
        rules.sort_by_key(|r| r.name_any());
        rules
    }
}

fn repositories_api(client: &Client, namespace: Option<&str>) -> Api<GitRepository> {
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Runs the controller until `shutdown` completes.
pub async fn run(
    client: Client,
    config: Config,
    metrics: Arc<Metrics>,
    writes_allowed: Arc<std::sync::atomic::AtomicBool>,
    trigger_tx: mpsc::UnboundedSender<ObjectRef<GitRepository>>,
    trigger_rx: mpsc::UnboundedReceiver<ObjectRef<GitRepository>>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> Result<(), Error> {
    let catalog = ResourceCatalog::discover(&client).await?;
    let (live_tx, live_rx) = mpsc::unbounded_channel::<LiveChange>();
    let watchers = Watchers::new(client.clone(), config.namespace.clone(), live_tx);

    // SyncRules: one reflector feeds both the store reconciles read and the trigger that
    // re-syncs a repository when one of its rules changes (or is deleted).
    let rules_api: Api<SyncRule> = match config.namespace.as_deref() {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let rules_writer = reflector::store::Writer::<SyncRule>::default();
    let rules = rules_writer.as_reader();
    let rule_changes =
        reflector::reflector(rules_writer, watcher(rules_api, watcher::Config::default()))
            .default_backoff();

    let reporter = Reporter {
        controller: "git-controller".into(),
        instance: Some(config.instance.clone()),
    };
    let ctx = Arc::new(Context {
        client: client.clone(),
        config: config.clone(),
        catalog: RwLock::new(Arc::new(catalog)),
        watchers,
        rules: rules.clone(),
        metrics,
        recorder: Recorder::new(client.clone(), reporter),
        writes_allowed,
        parse_caches: Default::default(),
        git_locks: Default::default(),
    });

    let repos = repositories_api(&client, config.namespace.as_deref());
    let controller_config = controller::Config::default()
        .debounce(config.batch_window)
        .concurrency(config.concurrency);
    let controller = Controller::new(repos, watcher::Config::default().any_semantic())
        .with_config(controller_config);
    spawn_rule_change_mapper(ctx.clone(), rule_changes, trigger_tx.clone());
    spawn_live_change_mapper(ctx.clone(), live_rx, trigger_tx.clone());
    spawn_rediscovery(ctx.clone(), controller.store(), trigger_tx.clone());

    // Wait for the rules store so the first reconciles see every rule.
    let _ = tokio::time::timeout(Duration::from_secs(30), rules.wait_until_ready()).await;
    controller
        .reconcile_on(UnboundedReceiverStream::new(trigger_rx))
        .graceful_shutdown_on(shutdown)
        .run(
            super::reconcile::reconcile,
            super::reconcile::error_policy,
            ctx,
        )
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "reconcile did not succeed");
            }
        })
        .await;
    Ok(())
}

/// Re-syncs a repository when one of its rules changes or is deleted. A rule whose repository
/// does not exist gets a `RepositoryNotFound` condition instead: nothing else would tell.
fn spawn_rule_change_mapper(
    ctx: Arc<Context>,
    rule_changes: impl futures::Stream<Item = Result<watcher::Event<SyncRule>, watcher::Error>>
    + Send
    + 'static,
    trigger_tx: mpsc::UnboundedSender<ObjectRef<GitRepository>>,
) {
    tokio::spawn(async move {
        futures::pin_mut!(rule_changes);
        while let Some(item) = rule_changes.next().await {
            let (rule, deleted) = match item {
                Ok(watcher::Event::Apply(rule) | watcher::Event::InitApply(rule)) => (rule, false),
                Ok(watcher::Event::Delete(rule)) => (rule, true),
                Ok(watcher::Event::Init | watcher::Event::InitDone) => continue,
                Err(error) => {
                    tracing::warn!(%error, "SyncRule watch failed; retrying");
                    continue;
                }
            };
            let Some(ns) = rule.metadata.namespace.clone() else {
                continue;
            };
            let repository = ObjectRef::new(&rule.spec.repository_ref.name).within(&ns);
            let _ = trigger_tx.send(repository);
            if deleted {
                continue;
            }
            // Checked aside with a GET (rule changes are rare), so this stream, which fills the
            // rules store the controller waits for, keeps flowing.
            let ctx = ctx.clone();
            tokio::spawn(async move {
                let repos: Api<GitRepository> = Api::namespaced(ctx.client.clone(), &ns);
                if let Ok(None) = repos.get_opt(&rule.spec.repository_ref.name).await {
                    super::status::patch_orphan_rule(&ctx, &rule).await;
                }
            });
        }
    });
}

/// Maps a change of a live object to the repositories whose rules select its type and
/// namespace. Label selectors are not checked here: an extra reconcile is cheap, a missed one
/// is not.
fn spawn_live_change_mapper(
    ctx: Arc<Context>,
    mut live_rx: mpsc::UnboundedReceiver<LiveChange>,
    trigger_tx: mpsc::UnboundedSender<ObjectRef<GitRepository>>,
) {
    tokio::spawn(async move {
        while let Some(change) = live_rx.recv().await {
            let catalog = ctx.catalog.read().await.clone();
            let Some(entry) = catalog.get(&change.key) else {
                continue;
            };
            for rule in ctx.rules.state() {
                let spec = &rule.spec;
                let namespace_matches = spec.namespaces.is_empty()
                    || change
                        .namespace
                        .as_ref()
                        .is_some_and(|ns| spec.namespaces.contains(ns));
                if namespace_matches
                    && selects(
                        &change.key,
                        entry,
                        &spec.api_groups,
                        &spec.resources,
                        &spec.kinds,
                    )
                    && let Some(ns) = rule.metadata.namespace.as_deref()
                {
                    let _ = trigger_tx.send(ObjectRef::new(&spec.repository_ref.name).within(ns));
                }
            }
        }
    });
}

/// Re-runs discovery when CRDs change (so kinds installed later are synced without a
/// restart) and on a slow timer, then re-triggers every repository.
fn spawn_rediscovery(
    ctx: Arc<Context>,
    repositories: Store<GitRepository>,
    trigger_tx: mpsc::UnboundedSender<ObjectRef<GitRepository>>,
) {
    let crds: Api<CustomResourceDefinition> = Api::all(ctx.client.clone());
    tokio::spawn(async move {
        let changes = watcher(crds, watcher::Config::default())
            .default_backoff()
            .touched_objects();
        futures::pin_mut!(changes);
        let mut timer = tokio::time::interval(Duration::from_secs(300));
        timer.tick().await;
        loop {
            tokio::select! {
                item = changes.next() => match item {
                    None => return,
                    Some(Err(error)) => {
                        tracing::warn!(%error, "CRD watch failed; retrying");
                        continue;
                    }
                    Some(Ok(_)) => {
                        // The initial list replays every CRD; coalesce bursts before
                        // rediscovering.
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        while let Some(Some(_)) =
                            futures::FutureExt::now_or_never(changes.next())
                        {}
                    }
                },
                _ = timer.tick() => {}
            }
            match ResourceCatalog::discover(&ctx.client).await {
                Ok(catalog) => {
                    *ctx.catalog.write().await = Arc::new(catalog);
                    for repo in repositories.state() {
                        let _ = trigger_tx.send(ObjectRef::from(repo.as_ref()));
                    }
                }
                Err(error) => tracing::warn!(%error, "discovery failed; keeping the last catalog"),
            }
        }
    });
}

/// What `error_policy` does: count the failure and retry with a delay.
pub(super) fn retry_delay(error: &Error) -> Action {
    if error.is_stalled() {
        Action::requeue(Duration::from_secs(60))
    } else {
        Action::requeue(Duration::from_secs(5))
    }
}
