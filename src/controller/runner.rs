//! Wiring: discovery, watchers, triggers, the rule set and the kube-runtime `Controller`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::Api;
use kube::runtime::controller::{self, Controller};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher::{self, watcher};
use kube::runtime::{PredicateConfig, WatchStreamExt};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::UnboundedReceiverStream;

use super::context::{Config, Context, ContextParts};
use super::gate::WriteGate;
use super::own_writes::OwnWrites;
use super::repository::RepoKey;
use super::trigger::{Trigger, TriggerSource, Triggers};
use super::{live_changes, reconcile, ruleset, schedule};
use crate::access::reviews::ANSWER_TTL;
use crate::access::{AccessReviews, Clients};
use crate::api::{GitRepository, REQUESTED_AT_ANNOTATION, SyncRule};
use crate::cluster::events::Reporter;
use crate::cluster::watchers::LiveChange;
use crate::cluster::{EventRecorder, ResourceCatalog, Watchers};
use crate::error::Error;
use crate::metrics::Metrics;

fn repositories_api(client: &Client, namespace: Option<&str>) -> Api<GitRepository> {
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Runs the controller until `shutdown` completes.
pub async fn run(
    clients: Arc<Clients>,
    config: Config,
    metrics: Arc<Metrics>,
    leading: crate::leader::LeaderGate,
    trigger: Trigger,
    triggers: Triggers,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> Result<(), Error> {
    let client = clients.controller().clone();
    let catalog = ResourceCatalog::discover(&client).await?;
    let (live_tx, live_rx) = mpsc::unbounded_channel::<LiveChange>();
    let own_writes = OwnWrites::new(live_tx.clone());
    let watchers = Watchers::new(clients.clone(), live_tx);
    let reviews = Arc::new(AccessReviews::new(client.clone(), ANSWER_TTL));
    reviews.invalidate_on_rbac_changes().await;

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
    let ctx = Arc::new(Context::new(ContextParts {
        client: client.clone(),
        clients,
        reviews,
        config: config.clone(),
        catalog,
        watchers,
        rules: rules.clone(),
        metrics,
        recorder: EventRecorder::new(client.clone(), reporter),
        gate: WriteGate::new(leading),
        trigger,
        own_writes,
    }));

    // GitRepositories: our own reflector, so the rule set learns when repositories come and
    // go and when they are all listed. Only a new spec or a deletion reconciles a repository
    // from here: its status and finalizers are our own writes. A new value of the requested-at
    // annotation (a webhook a standby received, or `kubectl annotate`) asks for a fetch, as a
    // webhook received here does; other metadata changes do nothing.
    let repositories_writer = reflector::store::Writer::<GitRepository>::default();
    let repositories = repositories_writer.as_reader();
    let (repositories_listed_tx, repositories_listed) = watch::channel(false);
    let trigger_metrics = ctx.metrics.clone();
    let repository_events = reflector::reflector(
        repositories_writer,
        watcher(
            repositories_api(&client, config.namespace.as_deref()),
            watcher::Config::default().any_semantic(),
        ),
    )
    .inspect(repository_membership(ctx.clone(), repositories_listed_tx))
    .inspect(fetch_requests_by_annotation(ctx.trigger.clone()))
    .applied_objects()
    .predicate_filter(spec_or_deletion, PredicateConfig::default())
    .inspect_ok(move |repo| {
        let key = RepoKey::of(repo);
        trigger_metrics.sync_triggered(
            &key.namespace,
            &key.name,
            TriggerSource::Repository.as_str(),
        );
    });
    // Batching is ours (`schedule.rs`): kube-runtime's debounce would push a sync back on
    // every trigger.
    let controller_config = controller::Config::default().concurrency(config.concurrency);
    let controller = Controller::for_stream(repository_events, repositories.clone())
        .with_config(controller_config);
    let (syncs_tx, syncs) = mpsc::unbounded_channel();
    tokio::spawn(schedule::run(
        triggers,
        config.batching,
        repositories.clone(),
        ctx.metrics.clone(),
        syncs_tx,
    ));
    let (rules_listed_tx, mut rules_listed) = watch::channel(false);
    spawn_rule_change_mapper(ctx.clone(), rule_changes, rules_listed_tx);
    live_changes::spawn(ctx.clone(), live_rx);
    spawn_rediscovery(ctx.clone(), repositories.clone());
    spawn_cache_gc(
        config.cache_dir.clone(),
        repositories.clone(),
        repositories_listed.clone(),
    );
    ruleset::spawn(
        ctx.clone(),
        repositories,
        repositories_listed,
        rules_listed.clone(),
    );

    // Wait for the rules so the first reconciles see every rule.
    let _ = tokio::time::timeout(
        Duration::from_secs(30),
        rules_listed.wait_for(|listed| *listed),
    )
    .await;
    controller
        .reconcile_on(UnboundedReceiverStream::new(syncs))
        .graceful_shutdown_on(shutdown)
        .run(reconcile::reconcile, reconcile::error_policy, ctx)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "reconcile did not succeed");
            }
        })
        .await;
    Ok(())
}

/// What of a GitRepository asks for a reconcile when it changes: its spec (`generation`) and
/// whether it is being deleted. Status and finalizer changes — our own writes — do not.
fn spec_or_deletion(repo: &GitRepository) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (
        repo.metadata.generation,
        repo.metadata.deletion_timestamp.is_some(),
    )
        .hash(&mut hasher);
    Some(hasher.finish())
}

/// Calls [`Trigger::request_fetch`] when a GitRepository's [`REQUESTED_AT_ANNOTATION`]
/// changes (see [`RequestedAt`]).
fn fetch_requests_by_annotation(
    trigger: Trigger,
) -> impl FnMut(&Result<watcher::Event<GitRepository>, watcher::Error>) {
    let mut requested = RequestedAt::default();
    move |event| {
        if let Ok(event) = event
            && let Some(key) = requested.observe(event)
        {
            tracing::info!(
                namespace = %key.namespace,
                name = %key.name,
                "{REQUESTED_AT_ANNOTATION} changed: fetch requested"
            );
            trigger.request_fetch(&key.namespace, &key.name);
        }
    }
}

/// The [`REQUESTED_AT_ANNOTATION`] of every GitRepository seen, to tell when it changes.
///
/// A repository seen for the first time asks for nothing: it syncs anyway (created, or every
/// repository at start-up, which fetches first). A new value seen in a watch event or in a
/// relist asks for a fetch; a removed annotation does not.
#[derive(Default)]
struct RequestedAt {
    seen: HashMap<RepoKey, Option<String>>,
    /// The values of a relist under way; replaces `seen` when it is done, so repositories
    /// deleted while the watch was down are forgotten.
    relisted: Option<HashMap<RepoKey, Option<String>>>,
}

impl RequestedAt {
    /// Takes in one watch event; returns the repository to fetch, if its request changed.
    fn observe(&mut self, event: &watcher::Event<GitRepository>) -> Option<RepoKey> {
        let value = |repo: &GitRepository| {
            repo.metadata
                .annotations
                .as_ref()
                .and_then(|annotations| annotations.get(REQUESTED_AT_ANNOTATION))
                .cloned()
        };
        match event {
            watcher::Event::Init => {
                self.relisted = Some(HashMap::new());
                None
            }
            watcher::Event::InitApply(repo) => {
                let key = RepoKey::of(repo);
                let value = value(repo);
                let changed = self.changed(&key, &value);
                self.relisted
                    .get_or_insert_with(HashMap::new)
                    .insert(key.clone(), value);
                changed.then_some(key)
            }
            watcher::Event::InitDone => {
                if let Some(relisted) = self.relisted.take() {
                    self.seen = relisted;
                }
                None
            }
            watcher::Event::Apply(repo) => {
                let key = RepoKey::of(repo);
                let value = value(repo);
                let changed = self.changed(&key, &value);
                self.seen.insert(key.clone(), value);
                changed.then_some(key)
            }
            watcher::Event::Delete(repo) => {
                self.seen.remove(&RepoKey::of(repo));
                None
            }
        }
    }

    /// Whether `value` is a new request for a repository seen before.
    fn changed(&self, key: &RepoKey, value: &Option<String>) -> bool {
        value.is_some() && self.seen.get(key).is_some_and(|previous| previous != value)
    }
}

/// Has the rule set refreshed when a GitRepository appears, starts being deleted or is gone
/// (not on status changes), and says when all of them are listed.
fn repository_membership(
    ctx: Arc<Context>,
    listed: watch::Sender<bool>,
) -> impl FnMut(&Result<watcher::Event<GitRepository>, watcher::Error>) {
    // Every repository seen, and whether it is being deleted.
    let mut deleting: HashMap<RepoKey, bool> = HashMap::new();
    move |event| {
        let changed = match event {
            Ok(watcher::Event::Apply(repo) | watcher::Event::InitApply(repo)) => {
                let key = RepoKey::of(repo);
                let being_deleted = repo.metadata.deletion_timestamp.is_some();
                let before = deleting.insert(key.clone(), being_deleted);
                if before.is_none() && !being_deleted {
                    // Its state from the moment it is seen: its first sync may share a fetch
                    // made since (`RepositoryState::seen_at`).
                    ctx.repository(&key);
                }
                before != Some(being_deleted)
            }
            Ok(watcher::Event::Delete(repo)) => {
                let key = RepoKey::of(repo);
                deleting.remove(&key);
                // Gone from the API (finalized, or never ours): nothing of it is kept.
                ctx.forget(&key);
                true
            }
            Ok(watcher::Event::InitDone) => {
                listed.send_replace(true);
                true
            }
            Ok(watcher::Event::Init) | Err(_) => false,
        };
        // Until the first list is complete the rule set waits anyway.
        if changed && *listed.borrow() {
            ctx.rules_changed.notify_one();
        }
    }
}

/// Re-syncs a repository when the spec of one of its rules changes (or the rule is created or
/// deleted), and has the rule set refreshed. Status-only changes (our own writes) do neither,
/// and neither does the first list: every repository syncs at start-up anyway.
fn spawn_rule_change_mapper(
    ctx: Arc<Context>,
    rule_changes: impl futures::Stream<Item = Result<watcher::Event<SyncRule>, watcher::Error>>
    + Send
    + 'static,
    listed: watch::Sender<bool>,
) {
    tokio::spawn(async move {
        futures::pin_mut!(rule_changes);
        // The generation of every rule seen, to tell spec changes from status changes.
        let mut generations: HashMap<ObjectRef<SyncRule>, Option<i64>> = HashMap::new();
        let mut first_list = true;
        while let Some(item) = rule_changes.next().await {
            let (rule, deleted) = match item {
                Ok(watcher::Event::Apply(rule) | watcher::Event::InitApply(rule)) => (rule, false),
                Ok(watcher::Event::Delete(rule)) => (rule, true),
                Ok(watcher::Event::InitDone) => {
                    listed.send_replace(true);
                    first_list = false;
                    // A relist may have dropped rules deleted while the watch was down.
                    ctx.rules_changed.notify_one();
                    continue;
                }
                Ok(watcher::Event::Init) => continue,
                Err(error) => {
                    tracing::warn!(%error, "SyncRule watch failed; retrying");
                    continue;
                }
            };
            let reference = ObjectRef::from(&rule);
            let changed = if deleted {
                generations.remove(&reference);
                true
            } else {
                generations.insert(reference, rule.metadata.generation)
                    != Some(rule.metadata.generation)
            };
            // Before the first list is complete, the rule set waits and no repository runs.
            if !changed || first_list {
                continue;
            }
            ctx.rules_changed.notify_one();
            if let Some(ns) = rule.metadata.namespace.as_deref() {
                ctx.trigger.sync(
                    &RepoKey::new(ns, &rule.spec.repository_ref.name),
                    TriggerSource::Rule,
                );
            }
        }
    });
}

/// Re-runs discovery when CRDs change (so kinds installed later are synced without a
/// restart) and on a slow timer; when the served types changed, re-triggers every repository.
/// (The CRD watch's first list replays every CRD: the same types as at start-up, no trigger.)
fn spawn_rediscovery(ctx: Arc<Context>, repositories: Store<GitRepository>) {
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
            let current = ctx.catalog().await;
            match current.rediscover(&ctx.client).await {
                Ok(catalog) if *current == catalog => {}
                Ok(catalog) => {
                    ctx.set_catalog(catalog).await;
                    for repo in repositories.state() {
                        ctx.trigger
                            .sync(&RepoKey::of(&repo), TriggerSource::Discovery);
                    }
                }
                Err(error) => tracing::warn!(%error, "discovery failed; keeping the last catalog"),
            }
        }
    });
}

/// How often the Git cache is collected.
const CACHE_GC_INTERVAL: Duration = Duration::from_secs(600);

/// Collects the Git cache every [`CACHE_GC_INTERVAL`], once every GitRepository is listed:
/// the object stores of remotes no repository reads any more, and the tracking refs of
/// branches none reads, so a deleted or re-pointed repository does not keep its disk forever.
/// A store an operation holds is skipped and collected next time.
fn spawn_cache_gc(
    cache_dir: std::path::PathBuf,
    repositories: Store<GitRepository>,
    mut listed: watch::Receiver<bool>,
) {
    tokio::spawn(async move {
        if listed.wait_for(|listed| *listed).await.is_err() {
            return;
        }
        let mut timer = tokio::time::interval(CACHE_GC_INTERVAL);
        loop {
            timer.tick().await;
            let in_use: Vec<(String, String)> = repositories
                .state()
                .iter()
                .filter(|repo| repo.metadata.deletion_timestamp.is_none())
                .map(|repo| (repo.spec.url.clone(), repo.spec.branch.clone()))
                .collect();
            let dir = cache_dir.clone();
            match tokio::task::spawn_blocking(move || gitcontroller_git::gc(&dir, in_use)).await {
                Ok(Ok(report)) => tracing::debug!(
                    removed_stores = report.removed_stores.len(),
                    removed_branches = report.removed_branches.len(),
                    busy = report.busy.len(),
                    "Git cache collected"
                ),
                Ok(Err(error)) => tracing::warn!(%error, "could not collect the Git cache"),
                Err(error) => tracing::warn!(%error, "the Git cache collection failed"),
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(annotations: &[(&str, &str)]) -> GitRepository {
        let mut repo = GitRepository::new(
            "repo",
            serde_json::from_value(serde_json::json!({"url": "https://example.com/r.git"}))
                .unwrap(),
        );
        repo.metadata.namespace = Some("ns".into());
        repo.metadata.generation = Some(1);
        repo.metadata.annotations = Some(
            annotations
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        repo
    }

    fn apply(requested: &mut RequestedAt, repo: &GitRepository) -> Option<RepoKey> {
        requested.observe(&watcher::Event::Apply(repo.clone()))
    }

    #[test]
    fn a_new_requested_at_value_asks_for_a_fetch_and_nothing_else_does() {
        let key = RepoKey::new("ns", "repo");
        let mut requested = RequestedAt::default();
        let first = repo(&[(REQUESTED_AT_ANNOTATION, "2025-01-01T00:00:00Z")]);
        assert_eq!(
            apply(&mut requested, &first),
            None,
            "first sighting: it syncs anyway"
        );
        assert_eq!(apply(&mut requested, &first), None, "the same value again");

        // Status, finalizers and other annotations: no request.
        let mut status_only = first.clone();
        status_only.status = Some(Default::default());
        status_only.metadata.finalizers = Some(vec!["gitcontroller.io/finalizer".into()]);
        status_only.metadata.resource_version = Some("2".into());
        assert_eq!(apply(&mut requested, &status_only), None);
        let other = repo(&[
            (REQUESTED_AT_ANNOTATION, "2025-01-01T00:00:00Z"),
            ("example.com/note", "x"),
        ]);
        assert_eq!(apply(&mut requested, &other), None);

        let again = repo(&[(REQUESTED_AT_ANNOTATION, "2025-01-01T00:00:01Z")]);
        assert_eq!(apply(&mut requested, &again), Some(key.clone()));
        assert_eq!(apply(&mut requested, &again), None, "asked once per value");
        assert_eq!(
            apply(&mut requested, &repo(&[])),
            None,
            "removed: no request"
        );
        assert_eq!(
            apply(&mut requested, &again),
            Some(key.clone()),
            "set again after removal"
        );

        // A relist: a value changed while the watch was down asks; deleted ones are forgotten.
        let later = repo(&[(REQUESTED_AT_ANNOTATION, "2025-01-01T00:00:02Z")]);
        assert_eq!(requested.observe(&watcher::Event::Init), None);
        assert_eq!(
            requested.observe(&watcher::Event::InitApply(later.clone())),
            Some(key.clone())
        );
        assert_eq!(requested.observe(&watcher::Event::InitDone), None);
        assert_eq!(apply(&mut requested, &later), None);
        assert_eq!(
            requested.observe(&watcher::Event::Delete(later.clone())),
            None
        );
        assert_eq!(
            apply(&mut requested, &again),
            None,
            "a repository created again is a first sighting"
        );
    }

    #[test]
    fn only_the_spec_and_deletion_reconcile_from_the_repository_watch() {
        let base = repo(&[]);
        let mut metadata_only = repo(&[(REQUESTED_AT_ANNOTATION, "2025-01-01T00:00:00Z")]);
        metadata_only.status = Some(Default::default());
        metadata_only.metadata.finalizers = Some(vec!["gitcontroller.io/finalizer".into()]);
        metadata_only.metadata.resource_version = Some("7".into());
        assert_eq!(spec_or_deletion(&base), spec_or_deletion(&metadata_only));
        let mut new_spec = base.clone();
        new_spec.metadata.generation = Some(2);
        assert_ne!(spec_or_deletion(&base), spec_or_deletion(&new_spec));
        let mut deleting = base.clone();
        deleting.metadata.deletion_timestamp = Some(
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::now()),
        );
        assert_ne!(spec_or_deletion(&base), spec_or_deletion(&deleting));
    }
}
