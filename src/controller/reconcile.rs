//! One reconcile of one GitRepository, for kube-runtime: the finalizer, the steps, then the
//! outcome — metrics, status and Events — written once, at the end.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::ResourceExt;
use kube::runtime::controller::Action;
use tracing::Instrument;

use super::context::Context;
use super::report::Outcome;
use super::repository::RepoKey;
use super::state::Mode;
use super::steps::fetch_interval;
use super::{convert, events, status, steps};
use crate::api::GitRepository;
use crate::cluster::discovery::TypeKey;
use crate::error::{Error, Result};

/// Finalizer that lets the controller prune (when asked) and forget a GitRepository before it
/// goes away.
pub const FINALIZER: &str = "gitcontroller.io/finalizer";

/// Retry delay after an error that only the user can fix (Stalled).
const STALLED_RETRY: Duration = Duration::from_secs(60);
/// Retry delay after any other error.
const RETRY: Duration = Duration::from_secs(5);
/// The shortest requeue after a sync: a fetch that is due already waits this long, not less.
const MIN_REQUEUE: Duration = Duration::from_millis(500);

/// The reconcile entry point for kube-runtime. Everything it logs, down to the blocking Git
/// work, is in a span naming the repository (and the commit once it is known). The field is
/// `repository`, not `name`: JSON logs write a span's own name under `name`.
pub async fn reconcile(repo: Arc<GitRepository>, ctx: Arc<Context>) -> Result<Action> {
    let key = RepoKey::of(&repo);
    let span = tracing::info_span!(
        "reconcile",
        namespace = %key.namespace,
        repository = %key.name,
        commit = tracing::field::Empty
    );
    async move {
        if being_deleted(&repo) {
            // No metric: the repository's series are dropped when it is finalized, and a
            // reconcile after that (another finalizer keeps the object) must not bring them
            // back.
            return finalize(&repo, &ctx).await;
        }
        let started = Instant::now();
        let result = sync(repo, &ctx).await;
        ctx.metrics
            .observe_reconcile(&key.namespace, &key.name, started.elapsed().as_secs_f64());
        result
    }
    .instrument(span)
    .await
}

/// kube-runtime's error policy: count the failure and retry later. A repository being deleted
/// is not counted: its series are gone, or about to be (see [`reconcile`]).
pub fn error_policy(repo: Arc<GitRepository>, error: &Error, ctx: Arc<Context>) -> Action {
    let key = RepoKey::of(&repo);
    let category = error.category();
    if !being_deleted(&repo) {
        ctx.metrics
            .reconcile_failed(&key.namespace, &key.name, category.as_str());
    }
    tracing::warn!(namespace = %key.namespace, name = %key.name, %category, %error, "reconcile failed");
    Action::requeue(if error.is_stalled() {
        STALLED_RETRY
    } else {
        RETRY
    })
}

fn being_deleted(repo: &GitRepository) -> bool {
    repo.metadata.deletion_timestamp.is_some()
}

fn has_finalizer(repo: &GitRepository) -> bool {
    repo.finalizers().iter().any(|f| f == FINALIZER)
}

/// Runs the steps, then writes the outcome once.
async fn sync(repo: Arc<GitRepository>, ctx: &Context) -> Result<Action> {
    // The finalizer is added in the same pass as the first sync, so a new repository does
    // not wait for a second, debounced reconcile.
    if !has_finalizer(&repo) && ctx.may_write() {
        let mut finalizers = repo.finalizers().to_vec();
        finalizers.push(FINALIZER.to_string());
        ctx.writer().set_finalizers(&repo, finalizers).await?;
    }
    let synced = steps::sync(ctx, repo.clone(), Mode::Sync)
        .await
        .and_then(|state| {
            let report = state.report()?;
            Ok((state, report))
        });
    finish(ctx, &repo, synced.as_ref().map(|(_, report)| report)).await?;
    let (state, _) = synced?;
    // Come back when the interval makes the next fetch due.
    let next = state
        .repository
        .source()
        .next_fetch_in(Instant::now(), fetch_interval(&repo));
    Ok(Action::requeue(next.max(MIN_REQUEUE)))
}

/// The outcome of a sync, written once: metrics, status (only when it changed), Events.
async fn finish(ctx: &Context, repo: &GitRepository, outcome: Outcome<'_>) -> Result<()> {
    let key = RepoKey::of(repo);
    if let Ok(report) = outcome {
        let counts = report.counts;
        ctx.metrics.set_objects(
            &key.namespace,
            &key.name,
            counts.to_kubernetes as i64,
            counts.to_git as i64,
            counts.ignored as i64,
        );
        // Always touched, so the series exists at 0 for increase() and the dashboard.
        ctx.metrics.push_retries(
            &key.namespace,
            &key.name,
            u64::from(report.git.push_retries),
        );
    }
    let new_status = status::repository_status(repo, outcome);
    ctx.metrics
        .set_ready(&key.namespace, &key.name, status::is_ready(&new_status));
    if !ctx.may_write() {
        return Ok(());
    }
    let changed = repo.status.as_ref() != Some(&new_status);
    if changed {
        ctx.writer().apply_status(repo, &new_status).await?;
    }
    events::publish_sync(ctx, repo, outcome, changed).await;
    Ok(())
}

/// A GitRepository being deleted: prune what it applied (when asked), forget it, let it go.
async fn finalize(repo: &GitRepository, ctx: &Context) -> Result<Action> {
    if !has_finalizer(repo) {
        tracing::debug!("finalized already; waiting for the other finalizers");
        return Ok(Action::await_change());
    }
    if !ctx.may_write() {
        return Ok(Action::requeue(RETRY));
    }
    if repo.spec.prune && !repo.spec.suspend {
        let catalog = ctx.catalog().await;
        let writer = ctx.writer_for(repo);
        let inventory = convert::inventory(
            repo.status
                .as_ref()
                .map(|s| s.inventory.as_slice())
                .unwrap_or_default(),
        );
        for id in &inventory {
            let key = TypeKey {
                group: id.group.clone(),
                kind: id.kind.clone(),
            };
            if let Some(entry) = catalog.get(&key) {
                writer
                    .delete(entry, id.namespace.as_deref(), &id.name)
                    .await?;
            }
        }
    }
    let finalizers = repo
        .finalizers()
        .iter()
        .filter(|f| *f != FINALIZER)
        .cloned()
        .collect();
    ctx.writer().set_finalizers(repo, finalizers).await?;
    // Only once the finalizer is gone: a failed write is retried, and the retry needs the
    // repository's state.
    ctx.forget(&RepoKey::of(repo));
    tracing::debug!("finalized");
    Ok(Action::await_change())
}
