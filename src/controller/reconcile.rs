//! One reconcile of one GitRepository: dereference → validate → watch → fetch → plan → apply →
//! write back → status.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures::StreamExt;
use gitcontroller_git::{Author, Credentials, FileChange, RepoSpec, Repository, Snapshot};
use gitcontroller_sync::{
    ClusterAction, Diagnostic, GitAction, ObjectId, Plan, PlanInput, PlanOptions, ResourceType,
    Rule,
};
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use serde_json::Value;

use super::runner::Context;
use super::{FINALIZER, ParseCache, convert, events, status};
use crate::api::GitRepository;
use crate::cluster::discovery::{CatalogEntry, TypeKey};
use crate::cluster::{ResourceCatalog, apply};
use crate::error::{Error, Result};

/// What a sync did; the status and Events are made from it.
#[derive(Debug, Default)]
pub struct SyncReport {
    /// The remote head the plan was made from (or our commit on top of it).
    pub commit: Option<String>,
    /// Objects created in the cluster.
    pub created: Vec<ObjectId>,
    /// Objects whose Git-governed fields were applied.
    pub applied: Vec<ObjectId>,
    /// Objects deleted from the cluster (prune).
    pub deleted: Vec<ObjectId>,
    /// Objects written to Git (new files or updated fields).
    pub written: Vec<ObjectId>,
    /// Objects removed from Git.
    pub removed: Vec<ObjectId>,
    /// Pushes that had to be retried because the remote moved.
    pub push_retries: u32,
    /// Planner diagnostics (unparsable files, duplicates, refused Secret exports, ...).
    pub diagnostics: Vec<Diagnostic>,
    /// Rules that cannot be used, with the reason.
    pub invalid_rules: Vec<(String, String)>,
    /// Cluster writes that failed, with the error.
    pub failed: Vec<(ObjectId, String)>,
    /// Objects by direction.
    pub counts: (i64, i64, i64),
    /// Objects this repository has applied, after this sync.
    pub inventory: BTreeSet<ObjectId>,
    /// Whether writes were skipped (suspended, or not the leader).
    pub writes_skipped: Option<&'static str>,
    /// What a write would have done while writes were skipped.
    pub pending: usize,
}

/// Server-side applies in flight at once per reconcile.
const APPLY_CONCURRENCY: usize = 16;

/// The reconcile entry point for kube-runtime.
pub async fn reconcile(repo: Arc<GitRepository>, ctx: Arc<Context>) -> Result<Action> {
    let namespace = repo.namespace().unwrap_or_default();
    let name = repo.name_any();
    let started = Instant::now();
    let result = if repo.metadata.deletion_timestamp.is_some() {
        finalize(&repo, &ctx).await
    } else {
        // The finalizer is added in the same pass as the first sync, so a new repository does
        // not wait for a second, debounced reconcile.
        if !has_finalizer(&repo) && ctx.writes_allowed.load(Ordering::SeqCst) {
            set_finalizers(&repo, &ctx, |f| f.push(FINALIZER.to_string())).await?;
        }
        sync(&repo, &ctx).await
    };
    ctx.metrics
        .observe_reconcile(&namespace, &name, started.elapsed().as_secs_f64());
    result
}

fn has_finalizer(repo: &GitRepository) -> bool {
    repo.finalizers().iter().any(|f| f == FINALIZER)
}

/// Writes the finalizer list with a resourceVersion precondition, so a concurrent change of
/// the list (another controller's finalizer) is never overwritten: the write fails with a
/// conflict and the reconcile is retried.
async fn set_finalizers(
    repo: &GitRepository,
    ctx: &Context,
    change: impl FnOnce(&mut Vec<String>),
) -> Result<()> {
    let mut finalizers = repo.finalizers().to_vec();
    change(&mut finalizers);
    let patch = serde_json::json!({
        "metadata": {
            "finalizers": finalizers,
            "resourceVersion": repo.resource_version(),
        }
    });
    let api: Api<GitRepository> =
        Api::namespaced(ctx.client.clone(), &repo.namespace().unwrap_or_default());
    api.patch(
        &repo.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await?;
    Ok(())
}

/// A GitRepository being deleted: clean up, then let it go.
async fn finalize(repo: &GitRepository, ctx: &Context) -> Result<Action> {
    if !has_finalizer(repo) {
        return Ok(Action::await_change());
    }
    if !ctx.writes_allowed.load(Ordering::SeqCst) {
        return Ok(Action::requeue(Duration::from_secs(5)));
    }
    cleanup(repo, ctx).await?;
    set_finalizers(repo, ctx, |f| f.retain(|x| x != FINALIZER)).await?;
    Ok(Action::await_change())
}

/// kube-runtime's error policy: count the failure and retry later.
pub fn error_policy(repo: Arc<GitRepository>, error: &Error, ctx: Arc<Context>) -> Action {
    let namespace = repo.namespace().unwrap_or_default();
    ctx.metrics
        .reconcile_failed(&namespace, &repo.name_any(), error.category());
    tracing::warn!(%namespace, name = %repo.name_any(), category = error.category(), %error, "reconcile failed");
    super::runner::retry_delay(error)
}

async fn sync(repo: &GitRepository, ctx: &Context) -> Result<Action> {
    let namespace = repo.namespace().unwrap_or_default();
    let name = repo.name_any();
    let interval = convert::duration(&repo.spec.interval).unwrap_or(Duration::from_secs(60));
    let outcome = run_pipeline(repo, ctx).await;
    if let Ok(report) = &outcome {
        ctx.metrics.set_objects(
            &namespace,
            &name,
            report.counts.0,
            report.counts.1,
            report.counts.2,
        );
        // Always touched, so the series exists at 0 for increase() and the dashboard.
        ctx.metrics
            .push_retries(&namespace, &name, u64::from(report.push_retries));
    }
    let new_status = status::repository_status(repo, &outcome);
    ctx.metrics
        .set_ready(&namespace, &name, status::is_ready(&new_status));
    if ctx.writes_allowed.load(Ordering::SeqCst) {
        let changed = status::patch_repository_if_changed(ctx, repo, new_status).await?;
        events::publish_sync(ctx, repo, &outcome, changed).await;
    }
    match outcome {
        Ok(_) => Ok(Action::requeue(interval)),
        Err(error) => Err(error),
    }
}

async fn cleanup(repo: &GitRepository, ctx: &Context) -> Result<Action> {
    let namespace = repo.namespace().unwrap_or_default();
    let name = repo.name_any();
    if repo.spec.prune && !repo.spec.suspend && ctx.writes_allowed.load(Ordering::SeqCst) {
        let catalog = ctx.catalog.read().await.clone();
        let inventory = convert::inventory(
            &repo
                .status
                .as_ref()
                .map(|s| s.inventory.clone())
                .unwrap_or_default(),
        );
        for id in &inventory {
            let key = TypeKey {
                group: id.group.clone(),
                kind: id.kind.clone(),
            };
            if let Some(entry) = catalog.get(&key) {
                apply::delete(&ctx.client, entry, id.namespace.as_deref(), &id.name).await?;
            }
        }
    }
    retain_needed_watchers(ctx, Some((&namespace, &name))).await;
    ctx.metrics.forget(&namespace, &name);
    ctx.forget_repository(&namespace, &name);
    Ok(Action::await_change())
}

/// Stops watchers that no remaining rule needs.
async fn retain_needed_watchers(ctx: &Context, deleted: Option<(&str, &str)>) {
    let catalog = ctx.catalog.read().await.clone();
    let mut keep = BTreeSet::new();
    for rule in ctx.rules.state() {
        let repo_ns = rule.namespace().unwrap_or_default();
        if deleted.is_some_and(|(ns, name)| ns == repo_ns && name == rule.spec.repository_ref.name)
        {
            continue;
        }
        let spec = &rule.spec;
        keep.extend(
            catalog
                .matching(&spec.api_groups, &spec.resources, &spec.kinds)
                .map(|(k, _)| k.clone()),
        );
    }
    ctx.watchers.retain(&keep);
    ctx.metrics.set_watched_resources(ctx.watchers.len() as i64);
}

/// Everything a plan needs that does not come from Git.
pub(crate) struct ClusterSide {
    pub rules: Vec<Rule>,
    pub types: Vec<ResourceType>,
    pub live: Vec<Value>,
    pub inventory: BTreeSet<ObjectId>,
    pub options: PlanOptions,
    /// Parsed manifests of earlier snapshots.
    pub parsed: ParseCache,
}

impl ClusterSide {
    /// Parses the manifests of a snapshot and plans against this cluster state; returns the
    /// plan with the parse diagnostics merged in.
    pub fn plan(&self, snapshot: &Snapshot) -> Plan {
        let (manifests, diagnostics) = self.parsed.parse(snapshot, &self.types);
        let unparsed = gitcontroller_sync::unparsed_files(&diagnostics);
        let mut plan = gitcontroller_sync::plan(&PlanInput {
            manifests: &manifests,
            live: &self.live,
            rules: &self.rules,
            types: &self.types,
            inventory: &self.inventory,
            unparsed_files: &unparsed,
            options: &self.options,
        });
        plan.diagnostics.splice(0..0, diagnostics);
        plan
    }
}

async fn run_pipeline(repo: &GitRepository, ctx: &Context) -> Result<SyncReport> {
    let namespace = repo.namespace().unwrap_or_default();
    let name = repo.name_any();
    let mut report = SyncReport::default();

    // Dereference and validate the rules.
    let catalog = ctx.catalog.read().await.clone();
    let crd_rules = ctx.rules_of(&namespace, &name);
    let mut rules = Vec::new();
    let mut wanted: BTreeMap<TypeKey, CatalogEntry> = BTreeMap::new();
    for crd_rule in &crd_rules {
        let matched: Vec<_> = catalog
            .matching(
                &crd_rule.spec.api_groups,
                &crd_rule.spec.resources,
                &crd_rule.spec.kinds,
            )
            .map(|(k, e)| (k.clone(), e.clone()))
            .collect();
        let converted = convert::rule(crd_rule);
        status::patch_rule_if_changed(ctx, crd_rule, &converted, &matched).await;
        match converted {
            Ok(rule) => {
                rules.push(rule);
                wanted.extend(matched);
            }
            Err(reason) => report.invalid_rules.push((crd_rule.name_any(), reason)),
        }
    }
    retain_needed_watchers(ctx, None).await;
    let stores = ctx.watchers.ensure(&wanted);
    ctx.metrics.set_watched_resources(ctx.watchers.len() as i64);

    // Fetch Git while the stores fill.
    let credentials = credentials(repo, &ctx.client).await?;
    let spec = repo_spec(repo, &ctx.config.cache_dir, credentials);
    let started = Instant::now();
    let lock = ctx.git_lock(&namespace, &name)?;
    let fetch_lock = lock.clone();
    let (mut git, snapshot) = git_blocking(move || -> Result<(Repository, Snapshot)> {
        let _held = fetch_lock;
        let mut git = Repository::open(spec)?;
        let snapshot = fetch_snapshot(&mut git)?;
        Ok((git, snapshot))
    })
    .await?;
    ctx.metrics
        .git_operation(&namespace, &name, "fetch", started.elapsed().as_secs_f64());
    report.commit = Some(snapshot.commit.clone());

    // Live objects, from the watchers' stores.
    let mut live = Vec::new();
    for (entry, store) in stores.values() {
        if tokio::time::timeout(Duration::from_secs(30), store.wait_until_ready())
            .await
            .is_err()
        {
            return Err(Error::Internal(format!(
                "the watch of {} did not finish its initial list within 30 s",
                entry.resource.plural
            )));
        }
        live.extend(
            store
                .state()
                .iter()
                .map(|object| convert::live_object(object, entry)),
        );
    }

    let previous_inventory = convert::inventory(
        &repo
            .status
            .as_ref()
            .map(|s| s.inventory.clone())
            .unwrap_or_default(),
    );
    let side = Arc::new(ClusterSide {
        rules,
        types: catalog.resource_types(),
        live,
        inventory: previous_inventory.clone(),
        options: plan_options(repo),
        parsed: ctx.parse_cache(&namespace, &name),
    });
    let plan = side.plan(&snapshot);
    tracing::debug!(
        %namespace, %name, commit = %snapshot.commit, files = snapshot.files.len(),
        live = side.live.len(), rules = side.rules.len(), to_cluster = plan.to_cluster.len(),
        to_git = plan.to_git.len(), diagnostics = plan.diagnostics.len(), "planned"
    );
    for diagnostic in &plan.diagnostics {
        tracing::debug!(%namespace, %name, %diagnostic, "plan diagnostic");
    }
    report.diagnostics = plan.diagnostics.clone();
    report.counts = (
        plan.counts.to_kubernetes as i64,
        plan.counts.to_git as i64,
        plan.counts.ignored as i64,
    );
    report.inventory = previous_inventory;

    let writes_skipped = if repo.spec.suspend {
        Some("suspended")
    } else if !ctx.writes_allowed.load(Ordering::SeqCst) {
        Some("not the leader")
    } else {
        None
    };
    if let Some(why) = writes_skipped {
        report.writes_skipped = Some(why);
        report.pending = plan.to_cluster.len() + plan.to_git.len();
        return Ok(report);
    }

    apply_to_cluster(ctx, repo, &catalog, &plan, &mut report).await;

    if !plan.to_git.is_empty() {
        let author = Author {
            name: repo.spec.author.name.clone(),
            email: repo.spec.author.email.clone(),
        };
        let prefix = repo.spec.commit_message.clone();
        let side = side.clone();
        let started = Instant::now();
        let (outcome, written, removed) = git_blocking(move || -> Result<_> {
            let _held = lock;
            let mut written = Vec::new();
            let mut removed = Vec::new();
            // Re-derived from the current remote head on every attempt: a push that lost a
            // race is planned again, never replayed.
            let mut derive =
                |snapshot: &Snapshot| -> Result<Vec<FileChange>, gitcontroller_git::Error> {
                    let plan = side.plan(snapshot);
                    written.clear();
                    removed.clear();
                    Ok(plan
                        .to_git
                        .into_iter()
                        .map(|action| match action {
                            GitAction::Write {
                                id,
                                file,
                                doc_index,
                                object,
                                ..
                            } => {
                                written.push(id.clone());
                                FileChange::Put {
                                    path: file,
                                    doc_index,
                                    object,
                                    subject: id.to_string(),
                                }
                            }
                            GitAction::Remove {
                                id,
                                file,
                                doc_index,
                            } => {
                                removed.push(id.clone());
                                FileChange::Remove {
                                    path: file,
                                    doc_index,
                                    subject: id.to_string(),
                                }
                            }
                        })
                        .collect())
                };
            let outcome = git.commit_and_push(&author, prefix.as_deref(), &mut derive)?;
            Ok((outcome, written, removed))
        })
        .await?;
        ctx.metrics
            .git_operation(&namespace, &name, "push", started.elapsed().as_secs_f64());
        report.push_retries = outcome.retries;
        if let Some(commit) = outcome.commit {
            report.commit = Some(commit);
            for _ in &written {
                ctx.metrics
                    .sync_operation(&namespace, &name, "git", "write");
            }
            for _ in &removed {
                ctx.metrics
                    .sync_operation(&namespace, &name, "git", "remove");
            }
            report.written = written;
            report.removed = removed;
        }
    }
    Ok(report)
}

async fn apply_to_cluster(
    ctx: &Context,
    repo: &GitRepository,
    catalog: &Arc<ResourceCatalog>,
    plan: &Plan,
    report: &mut SyncReport,
) {
    let namespace = repo.namespace().unwrap_or_default();
    let name = repo.name_any();
    let results: Vec<(ClusterAction, Result<(), String>)> =
        futures::stream::iter(plan.to_cluster.clone())
            .map(|action| {
                let client = ctx.client.clone();
                let catalog = catalog.clone();
                async move {
                    let id = action.id();
                    let key = TypeKey {
                        group: id.group.clone(),
                        kind: id.kind.clone(),
                    };
                    let Some(entry) = catalog.get(&key) else {
                        let error = format!("the API server does not serve {key}");
                        return (action, Err(error));
                    };
                    let result = match &action {
                        ClusterAction::Apply { object, .. } => {
                            apply::apply(&client, entry, object).await
                        }
                        ClusterAction::Delete { id } => {
                            apply::delete(&client, entry, id.namespace.as_deref(), &id.name).await
                        }
                    };
                    (action, result.map_err(|e| e.to_string()))
                }
            })
            .buffer_unordered(APPLY_CONCURRENCY)
            .collect()
            .await;
    for (action, result) in results {
        match (action, result) {
            (ClusterAction::Apply { id, create, .. }, Ok(())) => {
                report.inventory.insert(id.clone());
                if create {
                    ctx.metrics
                        .sync_operation(&namespace, &name, "kubernetes", "create");
                    report.created.push(id.clone());
                } else {
                    ctx.metrics
                        .sync_operation(&namespace, &name, "kubernetes", "apply");
                    report.applied.push(id.clone());
                }
            }
            (ClusterAction::Delete { id }, Ok(())) => {
                report.inventory.remove(&id);
                ctx.metrics
                    .sync_operation(&namespace, &name, "kubernetes", "delete");
                report.deleted.push(id.clone());
            }
            (ClusterAction::Apply { id, .. } | ClusterAction::Delete { id }, Err(error)) => {
                report.failed.push((id.clone(), error));
            }
        }
    }
    report.created.sort();
    report.applied.sort();
    report.deleted.sort();
    report.failed.sort();
}

/// The credentials a repository's `secretRef` names.
pub(crate) async fn credentials(
    repo: &GitRepository,
    client: &kube::Client,
) -> Result<Credentials> {
    let Some(reference) = &repo.spec.secret_ref else {
        return Ok(Credentials::none());
    };
    let namespace = repo.namespace().unwrap_or_default();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    let secret = secrets.get_opt(&reference.name).await?.ok_or_else(|| {
        Error::Credentials(format!(
            "Secret {namespace}/{} does not exist",
            reference.name
        ))
    })?;
    Credentials::from_secret_data(&convert::secret_data(&secret))
        .map_err(|e| Error::Credentials(format!("Secret {namespace}/{}: {e}", reference.name)))
}

pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::Internal(format!("blocking task failed: {e}")))?
}

/// How long one Git step (fetch, or commit and push with its retries) may take. libgit2 has
/// no per-operation timeout without unsafe code; past this the reconcile gives up while the
/// blocking thread keeps the repository's lock until it returns, so nothing else touches that
/// cache meanwhile.
const GIT_TIMEOUT: Duration = Duration::from_secs(300);

async fn git_blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    match tokio::time::timeout(GIT_TIMEOUT, blocking(work)).await {
        Ok(result) => result,
        Err(_) => Err(Error::GitTimeout(GIT_TIMEOUT)),
    }
}

/// Fetches the branch and reads the manifests at its head (an empty snapshot for a branch
/// that has no commit yet).
pub(crate) fn fetch_snapshot(git: &mut Repository) -> Result<Snapshot> {
    let fetched = git.fetch()?;
    Ok(match &fetched.head {
        Some(head) => git.snapshot(head)?,
        None => Snapshot::empty(),
    })
}

/// The planner's switches for a repository.
pub(crate) fn plan_options(repo: &GitRepository) -> PlanOptions {
    PlanOptions {
        prune: repo.spec.prune,
        allow_plaintext_secrets: repo.spec.allow_plaintext_secrets,
        // FileChange paths are relative to spec.path already.
        layout_root: String::new(),
        ..PlanOptions::default()
    }
}

/// Where a repository's Git cache lives.
pub(crate) fn repo_spec(
    repo: &GitRepository,
    cache_root: &std::path::Path,
    credentials: Credentials,
) -> RepoSpec {
    let namespace = repo.namespace().unwrap_or_default();
    RepoSpec::new(
        &repo.spec.url,
        &repo.spec.branch,
        cache_root.join(namespace).join(repo.name_any()),
    )
    .with_path(&repo.spec.path)
    .with_credentials(credentials)
}
