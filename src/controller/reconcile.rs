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
use crate::access::ownership::ownership;
use crate::access::{Access, Confinement, confine};
use crate::api::GitRepository;
use crate::cluster::discovery::TypeKey;
use crate::error::{Error, Result};

/// Finalizer that lets the controller prune (when asked) and forget a GitRepository before it
/// goes away.
pub const FINALIZER: &str = "gitcontroller.io/finalizer";

/// The first retry after an error (then doubling, with jitter): see [`retry_delay`].
const RETRY: Duration = Duration::from_secs(1);
/// The first retry after an error only the user can fix (Stalled): bad credentials or spec.
const STALLED_RETRY: Duration = Duration::from_secs(15);
/// The longest retry delay (and never longer than the repository's interval).
const MAX_RETRY: Duration = Duration::from_secs(300);
/// When a deletion waits for this replica to be allowed to write.
const NOT_WRITING_RETRY: Duration = Duration::from_secs(5);
/// The shortest requeue after a sync: a fetch that is due already waits this long, not less.
const MIN_REQUEUE: Duration = Duration::from_millis(500);

/// The reconcile entry point for kube-runtime. Everything it logs, down to the blocking Git
/// work, is in a span naming the repository (and the commit once it is known). The field is
/// `repository`, not `name`: JSON logs write a span's own name under `name`.
pub async fn reconcile(repo: Arc<GitRepository>, ctx: Arc<Context>) -> Result<Action> {
    let key = RepoKey::of(&repo);
    // `seen`: the repository as the API server has it, with the status this process wrote
    // last if the watch has not brought it yet; `repo`: as the sync starts from it, with a
    // status held back in place of that one.
    let (repo, seen) = match ctx.known_repository(&key) {
        Some(state) => {
            let seen = state.with_status_written(repo);
            (state.with_status_deferred(seen.clone()), seen)
        }
        None => (repo.clone(), repo),
    };
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
        let result = sync(repo, seen, ctx.clone()).await;
        ctx.metrics
            .observe_reconcile(&key.namespace, &key.name, started.elapsed().as_secs_f64());
        result
    }
    .instrument(span)
    .await
}

/// kube-runtime's error policy: count the failure and retry with exponential backoff. A
/// repository being deleted is not counted: its series are gone, or about to be (see
/// [`reconcile`]).
pub fn error_policy(repo: Arc<GitRepository>, error: &Error, ctx: Arc<Context>) -> Action {
    let key = RepoKey::of(&repo);
    let category = error.category();
    if !being_deleted(&repo) {
        ctx.metrics
            .reconcile_failed(&key.namespace, &key.name, category.as_str());
    }
    let failures = ctx.repository(&key).reconcile_failed();
    let retry_in = retry_delay(
        failures,
        error.is_stalled(),
        fetch_interval(&repo),
        fastrand::f64(),
    );
    tracing::warn!(
        namespace = %key.namespace,
        name = %key.name,
        %category,
        %error,
        failures,
        retry_in_ms = retry_in.as_millis() as u64,
        "reconcile failed"
    );
    Action::requeue(retry_in)
}

/// How long to wait before retrying after the `failures`-th failure in a row: the first
/// delay ([`RETRY`], or [`STALLED_RETRY`] for errors only the user can fix) doubling with
/// every failure, capped at [`MAX_RETRY`] and at the interval (a fixed repository is noticed
/// within an interval, as a healthy one would be), then jittered down by up to half
/// (`random` in [0, 1)) so repositories failing together do not retry together. Below the cap
/// every delay is longer than any the previous failure could get: retries never speed up.
pub fn retry_delay(failures: u32, stalled: bool, interval: Duration, random: f64) -> Duration {
    let first = if stalled { STALLED_RETRY } else { RETRY };
    let cap = MAX_RETRY.min(interval).max(first);
    let doublings = failures.saturating_sub(1).min(16);
    let delay = first.saturating_mul(1 << doublings).min(cap);
    delay.mul_f64(1.0 - random.clamp(0.0, 1.0) / 2.0)
}

fn being_deleted(repo: &GitRepository) -> bool {
    repo.metadata.deletion_timestamp.is_some()
}

fn has_finalizer(repo: &GitRepository) -> bool {
    repo.finalizers().iter().any(|f| f == FINALIZER)
}

/// Runs the steps, then writes the outcome once.
async fn sync(
    repo: Arc<GitRepository>,
    seen: Arc<GitRepository>,
    shared: Arc<Context>,
) -> Result<Action> {
    let ctx = shared.as_ref();
    // The finalizer is added in the same pass as the first sync, so a new repository does
    // not wait for a second, debounced reconcile; its write runs alongside the steps that
    // only read (fetch, plan, ...) and is stored before the sync writes anything.
    let add_finalizer = async {
        if !has_finalizer(&repo) && ctx.may_write() {
            let mut finalizers = repo.finalizers().to_vec();
            finalizers.push(FINALIZER.to_string());
            ctx.writer().set_finalizers(&repo, finalizers).await?;
        }
        Ok::<_, Error>(())
    };
    // A finalizer that could not be added (a conflict) fails the reconcile before anything
    // was written, status included: it is retried.
    let synced = steps::sync_after(ctx, repo.clone(), Mode::Sync, add_finalizer)
        .await?
        .and_then(|state| {
            let report = state.report()?;
            Ok((state, report))
        });
    let status_due = finish(
        &shared,
        &repo,
        seen,
        synced.as_ref().map(|(_, report)| report),
    )
    .await?;
    let (state, _) = synced?;
    state.repository.reconcile_succeeded();
    // Come back when the interval makes the next fetch due, or a status held back is due.
    let next = state
        .repository
        .source()
        .next_fetch_in(Instant::now(), fetch_interval(&repo))
        .min(status_due.unwrap_or(Duration::MAX));
    Ok(Action::requeue(next.max(MIN_REQUEUE)))
}

/// The outcome of a sync, written once: metrics, status (only when it changed), Events.
/// The Events are written after the reconcile returns, so the next repository's sync does not
/// wait for them: with `--concurrency` repositories syncing at once, two more round trips per
/// sync would hold every slot longer.
///
/// `repo` is the repository the sync started from, `seen` the one the API server has (they
/// differ by a status held back). Returns when a status held back is due to be written.
async fn finish(
    shared: &Arc<Context>,
    repo: &GitRepository,
    seen: Arc<GitRepository>,
    outcome: Outcome<'_>,
) -> Result<Option<Duration>> {
    let ctx = shared.as_ref();
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
        return Ok(None);
    }
    let changed = repo.status.as_ref() != Some(&new_status);
    let state = ctx.repository(&key);
    let mut held_back = None;
    if seen.status.as_ref() == Some(&new_status) {
        state.drop_deferred_status();
    } else {
        let wait = state.status_write_wait(
            seen.status.as_ref(),
            &new_status,
            ctx.config.status_interval,
            Instant::now(),
        );
        if wait.is_zero() {
            ctx.writer().apply_status(repo, &new_status).await?;
            state.wrote_status(repo.metadata.resource_version.clone(), new_status);
        } else {
            tracing::debug!(
                wait_ms = wait.as_millis() as u64,
                "status holds only progress: written with the next one, or when due"
            );
            state.defer_status(seen, new_status);
            held_back = Some(wait);
        }
    }
    let events = events::of_sync(ctx, repo, outcome, changed);
    if !events.is_empty() {
        // Waits only while the previous sync's Events of this repository are still being
        // written: one sync's Events come before the next one's (a repeat joins the series
        // of the first), and a repository never has more than one sync's Events in flight.
        let turn = state.events_turn().await;
        let ctx = shared.clone();
        tokio::spawn(
            async move {
                events.publish(&ctx).await;
                drop(turn);
            }
            .in_current_span(),
        );
    }
    Ok(held_back)
}

/// Deletes what a repository being deleted applied, as its identity: only objects within its
/// reach and still its own (another repository may have adopted one since).
async fn prune_all(repo: &GitRepository, ctx: &Context) -> Result<()> {
    let catalog = ctx.catalog().await;
    let identity = ctx.identity_of(repo);
    let writer = ctx.writer_for(repo, &identity)?;
    let me = RepoKey::of(repo);
    let inventory = convert::inventory(
        &repo
            .status
            .as_ref()
            .map(|s| s.inventory.entries())
            .unwrap_or_default(),
    );
    for id in &inventory {
        if let Confinement::Refused(refusal) = confine(&identity, id, Access::Write) {
            tracing::warn!(object = %id, %refusal, "not pruned");
            continue;
        }
        let key = TypeKey {
            group: id.group.clone(),
            kind: id.kind.clone(),
        };
        let Some(entry) = catalog.get(&key) else {
            continue;
        };
        let live = match writer.get(entry, id.namespace.as_deref(), &id.name).await {
            Ok(Some(live)) => serde_json::to_value(live).unwrap_or_default(),
            Ok(None) => continue,
            Err(Error::Kube(kube::Error::Api(status))) if status.code == 403 => {
                tracing::warn!(object = %id, "not pruned: the repository may not read it");
                continue;
            }
            Err(error) => return Err(error),
        };
        if !ownership(&me, Some(&live), true).may_write() {
            tracing::info!(object = %id, "not pruned: another GitRepository owns it now");
            continue;
        }
        writer
            .delete(entry, id.namespace.as_deref(), &id.name)
            .await?;
    }
    Ok(())
}

/// A GitRepository being deleted: prune what it applied (when asked), forget it, let it go.
async fn finalize(repo: &GitRepository, ctx: &Context) -> Result<Action> {
    if !has_finalizer(repo) {
        tracing::debug!("finalized already; waiting for the other finalizers");
        return Ok(Action::await_change());
    }
    if !ctx.may_write() {
        return Ok(Action::requeue(NOT_WRITING_RETRY));
    }
    if repo.spec.prune && !repo.spec.suspend {
        prune_all(repo, ctx).await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn retries_double_from_one_second_up_to_five_minutes() {
        let delays: Vec<u64> = (1..=12)
            .map(|n| retry_delay(n, false, HOUR, 0.0).as_secs())
            .collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
        assert_eq!(retry_delay(u32::MAX, false, HOUR, 0.0), MAX_RETRY);
    }

    #[test]
    fn errors_only_the_user_can_fix_start_slower() {
        assert_eq!(retry_delay(1, true, HOUR, 0.0), Duration::from_secs(15));
        assert_eq!(retry_delay(2, true, HOUR, 0.0), Duration::from_secs(30));
    }

    #[test]
    fn the_interval_caps_the_backoff() {
        let minute = Duration::from_secs(60);
        assert_eq!(retry_delay(10, false, minute, 0.0), minute);
        // ... but never below the first delay.
        assert_eq!(
            retry_delay(3, true, Duration::from_secs(5), 0.0),
            STALLED_RETRY
        );
    }

    #[test]
    fn jitter_takes_off_up_to_half_and_never_speeds_retries_up() {
        assert_eq!(
            retry_delay(3, false, HOUR, 0.5),
            Duration::from_secs(3),
            "4 s less a quarter"
        );
        assert!(retry_delay(3, false, HOUR, 0.999_999) > Duration::from_secs(2));
        for n in 1..9 {
            let slowest_now = retry_delay(n, false, HOUR, 0.0);
            let fastest_next = retry_delay(n + 1, false, HOUR, 0.999_999);
            assert!(
                fastest_next > slowest_now,
                "{n}: {fastest_next:?} {slowest_now:?}"
            );
        }
    }
}
