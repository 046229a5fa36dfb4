//! Step 2: the Git snapshot to plan against — fetched when due, else the cached one.

use std::sync::Arc;
use std::time::{Duration, Instant};

use gitcontroller_git::{Repository, Snapshot};

use super::super::context::Context;
use super::super::convert;
use super::super::repository::FetchReason;
use super::super::state::{Flow, Mode, Source, SyncState, needs};
use super::git::{sync_repo_spec, with_git};
use crate::error::Result;

/// The interval when `spec.interval` does not parse (the schema prevents that).
const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);

/// `spec.interval` of a repository.
pub fn interval(repo: &crate::api::GitRepository) -> Duration {
    convert::duration(&repo.spec.interval).unwrap_or(DEFAULT_INTERVAL)
}

/// Fills `state.source`. Fetches when a fetch is due (no snapshot yet, the last fetch failed,
/// the spec changed, our push moved the branch to a commit whose snapshot was not derived, a
/// webhook asked, or the interval passed);
/// otherwise re-plans against the cached snapshot, so watch events cost no fetch.
pub async fn fetch(ctx: &Context, state: &mut SyncState) -> Result<Flow> {
    let now = Instant::now();
    let generation = state.repo.metadata.generation;
    let requested = ctx.trigger.fetch_requested(&state.key);
    let memory = state.repository.source();
    let due = memory.fetch_due(now, interval(&state.repo), generation, requested);
    let reason = match (due, memory.snapshot) {
        (None, Some(snapshot)) => {
            state.record_commit(&snapshot.commit);
            state.source = Some(Source::new(snapshot, None));
            return Ok(Flow::Continue);
        }
        (due, _) => due.unwrap_or(FetchReason::NoSnapshot),
    };
    tracing::debug!(reason = reason.as_str(), "fetching");
    // A first fetch was asked for when the repository was seen: another repository's fetch
    // of the same remote since then will do (a hundred repositories of one remote seen at
    // start-up make one fetch, not one each, whenever each gets to sync). A webhook's request
    // and every other reason ask for a fetch from now on.
    let asked_at = match reason {
        FetchReason::NoSnapshot if !requested => state.repository.seen_at(),
        _ => now,
    };
    let types = needs(&state.rules, "resolve-rules")?
        .catalog
        .resource_types();
    ctx.trigger.clear_fetch_request(&state.key);
    let fetched = async {
        let spec = sync_repo_spec(ctx, state).await?;
        // The files parsed already are not read again (their text is left out), except
        // with writes off: `diff` previews edits of the files' text.
        let known = state.repository.parse_cache().known(&types);
        let whole = state.mode == Mode::DryRun;
        with_git(&state.repository, move || -> Result<Snapshot> {
            let mut git = Repository::open(spec)?;
            let fetched = git.fetch_since(asked_at)?;
            Ok(match &fetched.head {
                Some(head) if whole => git.snapshot(head)?,
                Some(head) => git.snapshot_with(head, &known)?,
                None => Snapshot::empty(),
            })
        })
        .await
    };
    let snapshot = match fetched.await {
        Ok(snapshot) => Arc::new(snapshot),
        Err(error) => {
            state.repository.fetch_failed();
            return Err(error);
        }
    };
    ctx.metrics.git_operation(
        &state.key.namespace,
        &state.key.name,
        "fetch",
        now.elapsed().as_secs_f64(),
    );
    state.repository.fetched(snapshot.clone(), generation, now);
    state.record_commit(&snapshot.commit);
    state.source = Some(Source::new(snapshot, Some(reason)));
    Ok(Flow::Continue)
}

/// The whole snapshot (every file's text) of `commit` from the repository's cache, without a
/// fetch: for a plan whose snapshot left out text the parse cache no longer holds.
pub(super) async fn read_whole(
    ctx: &Context,
    state: &SyncState,
    commit: String,
) -> Result<Arc<Snapshot>> {
    if commit.is_empty() {
        return Ok(Arc::new(Snapshot::empty()));
    }
    let spec = sync_repo_spec(ctx, state).await?;
    let snapshot = with_git(&state.repository, move || -> Result<Snapshot> {
        Ok(Repository::open(spec)?.snapshot(&commit)?)
    })
    .await?;
    Ok(Arc::new(snapshot))
}
