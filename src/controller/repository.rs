//! What the controller keeps for one GitRepository between reconciles: its Git lock, its parse
//! cache, its last Git snapshot with when and why it was fetched, and the applies known to
//! change nothing. Created on the first
//! reconcile, dropped by [`Context::forget`](super::Context::forget) when the repository is
//! deleted.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use gitcontroller_git::Snapshot;
use gitcontroller_sync::ObjectId;

#[cfg(test)]
use crate::api::InventoryEntry;
use crate::api::InventoryList;
use crate::api::{GitRepository, GitRepositoryStatus};

use super::live_state::LiveState;
use super::parse_cache::ParseCache;
use super::state::LastPlan;
use super::verdicts::Verdicts;
use crate::cluster::LiveObject;
use crate::error::{Error, Result};

/// A GitRepository's namespace and name (the same reference the owner annotation holds).
pub type RepoKey = crate::access::RepositoryRef;

/// One repository's state between reconciles; shared (`Arc`) by the reconcile that runs.
#[derive(Default)]
pub struct RepositoryState {
    /// One Git operation at a time on the repository's cache; the guard is held by the
    /// blocking thread, so a Git step that timed out keeps it until it really returns.
    git_lock: Arc<tokio::sync::Mutex<()>>,
    /// Parsed manifests by blob.
    parse_cache: ParseCache,
    source: Mutex<SourceMemory>,
    /// Reconciles failed in a row: the retry backoff grows with it.
    failures: AtomicU32,
    /// Applies known to change nothing (see [`Verdicts`]).
    verdicts: Mutex<Verdicts>,
    /// What the last plan found in sync and what it was made from, for the next plan to skip
    /// what did not change ([`gitcontroller_sync::plan_changed`]).
    last_plan: Mutex<Option<Arc<LastPlan>>>,
    /// The live objects of the last sync, whose index the next one keeps when its objects
    /// are where they were.
    last_live: Mutex<Option<LiveState>>,
    /// Which objects in sync the last sync's claim found stamped by this repository.
    last_claim: Mutex<Option<Arc<LastClaim>>>,
    /// Held while a sync's Events are written (after its reconcile returned), so the Events
    /// of one sync are written before those of the next.
    events_turn: Arc<tokio::sync::Mutex<()>>,
    /// When this process first saw the repository (see [`RepositoryState::seen_at`]).
    seen: Seen,
    /// The inventory of the status last read, and as identities (see
    /// [`RepositoryState::inventory`]).
    inventory: Mutex<(InventoryList, Inventory)>,
    /// The status this process wrote last, with the resourceVersion of the object the sync
    /// that wrote it was given (see [`RepositoryState::with_status_written`]).
    written_status: Mutex<Option<(String, GitRepositoryStatus)>>,
    /// When this process last wrote the status (see [`RepositoryState::status_write_wait`]).
    status_written_at: Mutex<Option<Instant>>,
    /// A status held back, and the repository as the server had it then (see
    /// [`RepositoryState::defer_status`]).
    deferred_status: Mutex<Option<(Arc<GitRepository>, GitRepositoryStatus)>>,
}

/// What a sync's claim found of the objects in sync: by position in the sync's live objects
/// (kept, so that an object of the next sync is found to be the very same one), whether
/// this repository's owner annotation was on it.
pub struct LastClaim {
    /// The sync's live objects.
    pub live: Arc<Vec<Arc<LiveObject>>>,
    /// By position in `live`: stamped by this repository.
    pub stamped: Vec<bool>,
}

/// Objects a repository applied, shared by the steps of a sync and from sync to sync: a sync
/// that changes nothing neither rebuilds nor copies it.
pub type Inventory = Arc<BTreeSet<ObjectId>>;

/// An instant, the moment it is made by default.
struct Seen(Instant);

impl Default for Seen {
    fn default() -> Self {
        Self(Instant::now())
    }
}

/// A repository's turn to write a sync's Events, held until they are written.
pub type EventsTurn = tokio::sync::OwnedMutexGuard<()>;

/// The Git lock of one repository, held while a Git operation runs.
pub type GitLock = tokio::sync::OwnedMutexGuard<()>;

/// The last fetch of a repository.
#[derive(Clone, Debug, Default)]
pub struct SourceMemory {
    /// The snapshot of the last successful fetch, or of our commit after our push (derived,
    /// not fetched: [`RepositoryState::pushed_snapshot`]).
    pub snapshot: Option<Arc<Snapshot>>,
    /// When the last successful fetch began.
    pub fetched_at: Option<Instant>,
    /// The spec generation the last successful fetch was made for.
    pub generation: Option<i64>,
    /// Whether the last fetch failed.
    pub failed: bool,
    /// Whether our own push moved the branch since the snapshot was read (and the pushed
    /// commit's snapshot is not known).
    pub stale: bool,
}

/// Why a sync fetches instead of re-planning against the cached snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FetchReason {
    /// Nothing was fetched yet (a new repository, or a restart).
    NoSnapshot,
    /// The last fetch failed.
    LastFetchFailed,
    /// The spec changed (url, branch, path, ...) since the last fetch.
    SpecChanged,
    /// Our own push moved the branch since the snapshot was read.
    AfterPush,
    /// A push webhook asked for it.
    Requested,
    /// `spec.interval` has passed since the last fetch.
    IntervalElapsed,
}

impl FetchReason {
    /// A short phrase for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            FetchReason::NoSnapshot => "no snapshot yet",
            FetchReason::LastFetchFailed => "the last fetch failed",
            FetchReason::SpecChanged => "the spec changed",
            FetchReason::AfterPush => "our push moved the branch",
            FetchReason::Requested => "requested by a webhook",
            FetchReason::IntervalElapsed => "the interval elapsed",
        }
    }
}

impl SourceMemory {
    /// Whether a sync at `now` must fetch, and why; `None` re-plans against `snapshot`.
    /// `generation` is the spec's current `metadata.generation`; `requested` whether a
    /// webhook asked for a fetch.
    pub fn fetch_due(
        &self,
        now: Instant,
        interval: Duration,
        generation: Option<i64>,
        requested: bool,
    ) -> Option<FetchReason> {
        let Some(fetched_at) = self.fetched_at.filter(|_| self.snapshot.is_some()) else {
            return Some(FetchReason::NoSnapshot);
        };
        if self.failed {
            Some(FetchReason::LastFetchFailed)
        } else if self.generation != generation {
            Some(FetchReason::SpecChanged)
        } else if self.stale {
            Some(FetchReason::AfterPush)
        } else if requested {
            Some(FetchReason::Requested)
        } else if now.saturating_duration_since(fetched_at) >= interval {
            Some(FetchReason::IntervalElapsed)
        } else {
            None
        }
    }

    /// How long from `now` until the interval makes a fetch due (zero when it is due). The
    /// other reasons come with a reconcile of their own (an error's retry, a spec change, a
    /// webhook, the status write after our push).
    pub fn next_fetch_in(&self, now: Instant, interval: Duration) -> Duration {
        match self.fetched_at {
            Some(at) if !self.failed => interval.saturating_sub(now.saturating_duration_since(at)),
            _ => Duration::ZERO,
        }
    }
}

impl RepositoryState {
    /// Records that a sync given the object at `read_at` (its resourceVersion) wrote
    /// `status`.
    pub fn wrote_status(&self, read_at: Option<String>, status: GitRepositoryStatus) {
        *self.written_status.lock().expect("written status lock") =
            read_at.map(|read_at| (read_at, status));
        *self.status_written_at.lock().expect("status time lock") = Some(Instant::now());
        self.drop_deferred_status();
    }

    /// How long a write of `new` over `on_server` (the status the API server has) waits:
    /// none, unless it only records progress (see [`super::status::only_progress`]) and this
    /// process wrote the status less than `interval` before `now`, in which case until then.
    /// A repository syncing every second writes its status (and its inventory: every write
    /// costs the API server in proportion to it) once per `interval`, while a single change
    /// after a quiet period, and every change of a condition, of the inventory or of the
    /// generation, is written at once.
    pub fn status_write_wait(
        &self,
        on_server: Option<&GitRepositoryStatus>,
        new: &GitRepositoryStatus,
        interval: Duration,
        now: Instant,
    ) -> Duration {
        if !on_server.is_some_and(|old| super::status::only_progress(old, new)) {
            return Duration::ZERO;
        }
        match *self.status_written_at.lock().expect("status time lock") {
            Some(at) => interval.saturating_sub(now.saturating_duration_since(at)),
            None => Duration::ZERO,
        }
    }

    /// Holds `status` back instead of writing it: `seen` is the repository as the API server
    /// has it. Until the status is written, or the server's changes, syncs start from the
    /// held status ([`RepositoryState::with_status_deferred`]).
    pub fn defer_status(&self, seen: Arc<GitRepository>, status: GitRepositoryStatus) {
        *self.deferred_status.lock().expect("deferred status lock") = Some((seen, status));
    }

    /// Forgets a held-back status: a sync found the server's status right as it is.
    pub fn drop_deferred_status(&self) {
        *self.deferred_status.lock().expect("deferred status lock") = None;
    }

    /// `seen` (the repository as the API server has it) with the status held back in its
    /// place, while the server's status is still the one it was held back from; a held
    /// status the server's has moved past (anyone's write) is forgotten.
    pub fn with_status_deferred(&self, seen: Arc<GitRepository>) -> Arc<GitRepository> {
        let mut deferred = self.deferred_status.lock().expect("deferred status lock");
        match &*deferred {
            Some((from, status)) if from.status == seen.status => {
                let mut current = (*seen).clone();
                current.status = Some(status.clone());
                Arc::new(current)
            }
            Some(_) => {
                *deferred = None;
                seen
            }
            None => seen,
        }
    }

    /// The repository as a sync must read it: `repo` from the watch, with the status this
    /// process wrote last when the watch has not caught up with that write yet (`repo` is
    /// still the object the writing sync was given, the very resourceVersion). A sync given
    /// the stale object would otherwise start from the status before: its inventory without
    /// the objects the last sync applied, written back as the new one (they would be left
    /// behind by a prune, or by the repository's deletion). Any later object (our write seen,
    /// or anyone's change since) is taken as it is: resourceVersions are compared for
    /// equality only.
    pub fn with_status_written(&self, repo: Arc<GitRepository>) -> Arc<GitRepository> {
        let written = self.written_status.lock().expect("written status lock");
        match (&*written, repo.metadata.resource_version.as_deref()) {
            (Some((read_at, status)), Some(now))
                if read_at == now && repo.status.as_ref() != Some(status) =>
            {
                let mut current = (*repo).clone();
                current.status = Some(status.clone());
                Arc::new(current)
            }
            _ => repo,
        }
    }

    /// Takes the Git lock, or fails at once with [`Error::GitBusy`] when an earlier Git step
    /// (one that timed out) still holds it.
    pub fn git_lock(&self) -> Result<GitLock> {
        self.git_lock
            .clone()
            .try_lock_owned()
            .map_err(|_| Error::GitBusy)
    }

    /// Waits until the Events of the repository's earlier syncs are written; the turn is this
    /// sync's until the guard is dropped.
    pub async fn events_turn(&self) -> EventsTurn {
        self.events_turn.clone().lock_owned().await
    }

    /// When this process first saw the repository (its state is made when the repository
    /// watch lists it): its first sync was asked for then, so a fetch of its remote that
    /// began since is as fresh as that sync needs.
    pub fn seen_at(&self) -> Instant {
        self.seen.0
    }

    /// The inventory `list` of a status as identities: the set of the previous call when the
    /// list is the same text (a comparison, nothing parsed), or lists the same objects; else
    /// built anew.
    pub fn inventory(&self, list: &InventoryList) -> Inventory {
        let mut last = self.inventory.lock().expect("inventory lock");
        let (last_list, last_set) = &mut *last;
        if !last_list.is(list) && last_list.json() != list.json() {
            let set = super::convert::inventory(&list.entries());
            if set != **last_set {
                *last_set = Arc::new(set);
            }
            *last_list = list.clone();
        }
        Arc::clone(last_set)
    }

    /// The status list of `set` when `set` is the one read from the status last
    /// ([`RepositoryState::inventory`]): written back as it was read, neither built nor
    /// serialized again.
    pub fn inventory_list(&self, set: &Inventory) -> Option<InventoryList> {
        let last = self.inventory.lock().expect("inventory lock");
        Arc::ptr_eq(&last.1, set).then(|| last.0.clone())
    }

    /// Parsed manifests of earlier snapshots.
    pub fn parse_cache(&self) -> &ParseCache {
        &self.parse_cache
    }

    /// What the last plan found in sync and what it was made from (see [`LastPlan`]).
    pub fn last_plan(&self) -> Option<Arc<LastPlan>> {
        self.last_plan.lock().expect("last plan lock").clone()
    }

    /// Remembers what a plan found in sync and what it was made from, for the next plan.
    pub fn remember_plan(&self, last: LastPlan) {
        *self.last_plan.lock().expect("last plan lock") = Some(Arc::new(last));
    }

    /// The live objects of the last sync (see [`LiveStateBuilder::build_after`](super::live_state::LiveStateBuilder::build_after)).
    pub fn last_live(&self) -> Option<LiveState> {
        self.last_live.lock().expect("last live lock").clone()
    }

    /// Which objects in sync the last claim found stamped by this repository.
    pub fn last_claim(&self) -> Option<Arc<LastClaim>> {
        self.last_claim.lock().expect("last claim lock").clone()
    }

    /// Remembers what a claim found, for the next.
    pub fn remember_claim(&self, claim: LastClaim) {
        *self.last_claim.lock().expect("last claim lock") = Some(Arc::new(claim));
    }

    /// Remembers a sync's live objects for the next.
    pub fn remember_live(&self, live: LiveState) {
        *self.last_live.lock().expect("last live lock") = Some(live);
    }

    /// The applies known to change nothing; held briefly, never across an await.
    pub fn verdicts(&self) -> MutexGuard<'_, Verdicts> {
        self.verdicts.lock().expect("verdicts lock")
    }

    /// The last fetch, as it stands.
    pub fn source(&self) -> SourceMemory {
        self.source.lock().expect("source lock").clone()
    }

    /// Records a successful fetch that began at `at`, for spec `generation`.
    pub fn fetched(&self, snapshot: Arc<Snapshot>, generation: Option<i64>, at: Instant) {
        *self.source.lock().expect("source lock") = SourceMemory {
            snapshot: Some(snapshot),
            fetched_at: Some(at),
            generation,
            failed: false,
            stale: false,
        };
    }

    /// Records a failed fetch: the next sync fetches again.
    pub fn fetch_failed(&self) {
        self.source.lock().expect("source lock").failed = true;
    }

    /// Records that our push moved the branch, when the pushed commit's snapshot is not known:
    /// the next sync fetches again.
    pub fn pushed(&self) {
        self.source.lock().expect("source lock").stale = true;
    }

    /// Records our push of the commit whose snapshot is `snapshot` (derived from the one the
    /// push was made on, see `PushOutcome::snapshot`): the remote head is that commit, so the
    /// next sync plans against it without fetching. When and for which generation the last
    /// fetch was made stay as they were: the interval still counts from the last real fetch,
    /// and a spec change or a webhook still fetches.
    pub fn pushed_snapshot(&self, snapshot: Arc<Snapshot>) {
        let mut source = self.source.lock().expect("source lock");
        source.snapshot = Some(snapshot);
        source.stale = false;
    }

    /// Records a failed reconcile; returns how many failed in a row, this one included.
    pub fn reconcile_failed(&self) -> u32 {
        self.failures
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1)
    }

    /// Records a successful reconcile: the retry backoff starts over.
    pub fn reconcile_succeeded(&self) {
        self.failures.store(0, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INTERVAL: Duration = Duration::from_secs(60);

    fn repo_at(resource_version: &str, commit: &str) -> Arc<GitRepository> {
        let mut repo = GitRepository::new(
            "repo",
            serde_json::from_value(serde_json::json!({"url": "git://example.invalid/r.git"}))
                .unwrap(),
        );
        repo.metadata.namespace = Some("ns".into());
        repo.metadata.resource_version = Some(resource_version.into());
        repo.status = Some(status(commit));
        Arc::new(repo)
    }

    fn status(commit: &str) -> GitRepositoryStatus {
        GitRepositoryStatus {
            last_synced_commit: Some(commit.into()),
            ..GitRepositoryStatus::default()
        }
    }

    fn commit_of(repo: &GitRepository) -> &str {
        repo.status
            .as_ref()
            .unwrap()
            .last_synced_commit
            .as_deref()
            .unwrap()
    }

    #[test]
    fn a_sync_reads_the_status_written_last_until_the_watch_brings_a_later_object() {
        let state = RepositoryState::default();
        // Nothing written yet: the object as it is.
        let seen = repo_at("5", "a");
        assert!(Arc::ptr_eq(&state.with_status_written(seen.clone()), &seen));

        // A sync given the object at "5" wrote status "b"; the watch still has "5".
        state.wrote_status(Some("5".into()), status("b"));
        let current = state.with_status_written(seen.clone());
        assert_eq!(commit_of(&current), "b");
        assert_eq!(current.metadata.resource_version.as_deref(), Some("5"));

        // The watch brought a later object (our write, or anyone's change after it).
        let later = repo_at("6", "c");
        assert!(Arc::ptr_eq(
            &state.with_status_written(later.clone()),
            &later
        ));

        // The object already holds what was written: taken as it is.
        let same = repo_at("5", "b");
        assert!(Arc::ptr_eq(&state.with_status_written(same.clone()), &same));

        // A write whose object had no resourceVersion is not substituted.
        state.wrote_status(None, status("d"));
        assert!(Arc::ptr_eq(&state.with_status_written(seen.clone()), &seen));
    }

    /// A status that says Ready at `commit`, with these ConfigMaps in its inventory.
    fn ready_at(commit: &str, inventory: &[&str]) -> GitRepositoryStatus {
        use crate::api::{Condition, ConditionStatus};
        let entries: Vec<InventoryEntry> = inventory
            .iter()
            .map(|name| InventoryEntry {
                group: String::new(),
                kind: "ConfigMap".into(),
                namespace: Some("ns".into()),
                name: (*name).into(),
            })
            .collect();
        GitRepositoryStatus {
            last_synced_commit: Some(commit.into()),
            inventory: InventoryList::new(&entries),
            conditions: vec![Condition {
                type_: "Ready".into(),
                status: ConditionStatus::True,
                reason: "Synced".into(),
                message: format!("in sync with {commit}"),
                last_transition_time: "2026-12-01T00:00:00Z".into(),
                observed_generation: None,
            }],
            ..GitRepositoryStatus::default()
        }
    }

    #[test]
    fn a_status_of_progress_alone_waits_for_the_interval_and_syncs_start_from_it() {
        let interval = Duration::from_secs(5);
        let state = RepositoryState::default();
        let on_server = ready_at("a", &["x"]);
        let t0 = Instant::now();
        // Nothing written by this process yet: at once.
        assert_eq!(
            state.status_write_wait(Some(&on_server), &ready_at("b", &["x"]), interval, t0),
            Duration::ZERO
        );
        state.wrote_status(Some("5".into()), on_server.clone());
        let written_at = Instant::now();
        // Progress alone, right after a write: waits out the interval.
        let wait = state.status_write_wait(
            Some(&on_server),
            &ready_at("b", &["x"]),
            interval,
            written_at,
        );
        assert!(
            wait > Duration::from_secs(4) && wait <= interval,
            "{wait:?}"
        );
        // Anything else, at once: the inventory, a condition, no status on the server.
        assert_eq!(
            state.status_write_wait(
                Some(&on_server),
                &ready_at("b", &["x", "y"]),
                interval,
                written_at
            ),
            Duration::ZERO
        );
        let mut failing = ready_at("b", &["x"]);
        failing.conditions[0].status = crate::api::ConditionStatus::False;
        assert_eq!(
            state.status_write_wait(Some(&on_server), &failing, interval, written_at),
            Duration::ZERO
        );
        assert_eq!(
            state.status_write_wait(None, &ready_at("b", &["x"]), interval, written_at),
            Duration::ZERO
        );
        // Once the interval has passed: at once.
        assert_eq!(
            state.status_write_wait(
                Some(&on_server),
                &ready_at("b", &["x"]),
                interval,
                written_at + interval
            ),
            Duration::ZERO
        );
        // `0s` never waits.
        assert_eq!(
            state.status_write_wait(
                Some(&on_server),
                &ready_at("b", &["x"]),
                Duration::ZERO,
                written_at
            ),
            Duration::ZERO
        );

        // Held back: syncs start from it while the server's status is the one it was held
        // back from, whatever the object's resourceVersion.
        let mut seen = GitRepository::new(
            "repo",
            serde_json::from_value(serde_json::json!({"url": "git://example.invalid/r.git"}))
                .unwrap(),
        );
        seen.metadata.resource_version = Some("6".into());
        seen.status = Some(on_server.clone());
        let seen = Arc::new(seen);
        state.defer_status(seen.clone(), ready_at("b", &["x"]));
        assert_eq!(commit_of(&state.with_status_deferred(seen.clone())), "b");
        let mut respecified = (*seen).clone();
        respecified.metadata.resource_version = Some("7".into());
        assert_eq!(
            commit_of(&state.with_status_deferred(Arc::new(respecified))),
            "b"
        );
        // The server's status moved on (anyone's write): the held one is forgotten.
        let mut moved = (*seen).clone();
        moved.status = Some(ready_at("c", &["x"]));
        let moved = Arc::new(moved);
        assert!(Arc::ptr_eq(
            &state.with_status_deferred(moved.clone()),
            &moved
        ));
        assert!(Arc::ptr_eq(
            &state.with_status_deferred(seen.clone()),
            &seen
        ));

        // A write forgets what was held back.
        state.defer_status(seen.clone(), ready_at("b", &["x"]));
        state.wrote_status(Some("6".into()), ready_at("b", &["x"]));
        assert!(Arc::ptr_eq(
            &state.with_status_deferred(seen.clone()),
            &seen
        ));
    }

    fn fetched(at: Instant) -> SourceMemory {
        SourceMemory {
            snapshot: Some(Arc::new(Snapshot::empty())),
            fetched_at: Some(at),
            generation: Some(1),
            failed: false,
            stale: false,
        }
    }

    #[test]
    fn a_fresh_snapshot_is_planned_against_without_a_fetch() {
        let t0 = Instant::now();
        let memory = fetched(t0);
        let now = t0 + Duration::from_secs(10);
        assert_eq!(memory.fetch_due(now, INTERVAL, Some(1), false), None);
        assert_eq!(memory.next_fetch_in(now, INTERVAL), Duration::from_secs(50));
    }

    #[test]
    fn each_rule_makes_a_fetch_due() {
        let t0 = Instant::now();
        let soon = t0 + Duration::from_secs(1);
        let due = |memory: &SourceMemory, now, generation, requested| {
            memory.fetch_due(now, INTERVAL, generation, requested)
        };
        assert_eq!(
            due(&SourceMemory::default(), soon, Some(1), false),
            Some(FetchReason::NoSnapshot)
        );
        assert_eq!(
            due(&fetched(t0), t0 + INTERVAL, Some(1), false),
            Some(FetchReason::IntervalElapsed)
        );
        assert_eq!(
            due(&fetched(t0), soon, Some(2), false),
            Some(FetchReason::SpecChanged)
        );
        assert_eq!(
            due(&fetched(t0), soon, Some(1), true),
            Some(FetchReason::Requested)
        );
        let failed = SourceMemory {
            failed: true,
            ..fetched(t0)
        };
        assert_eq!(
            due(&failed, soon, Some(1), false),
            Some(FetchReason::LastFetchFailed)
        );
        assert_eq!(failed.next_fetch_in(soon, INTERVAL), Duration::ZERO);
        let stale = SourceMemory {
            stale: true,
            ..fetched(t0)
        };
        assert_eq!(
            due(&stale, soon, Some(1), false),
            Some(FetchReason::AfterPush)
        );
    }

    #[test]
    fn a_push_with_its_snapshot_is_planned_against_without_a_fetch() {
        let state = RepositoryState::default();
        let t0 = Instant::now();
        let fetched = Arc::new(Snapshot {
            commit: "fetched".into(),
            ..Snapshot::default()
        });
        state.fetched(fetched, Some(3), t0);
        state.pushed();
        let ours = Arc::new(Snapshot {
            commit: "ours".into(),
            ..Snapshot::default()
        });
        state.pushed_snapshot(ours.clone());
        let memory = state.source();
        let soon = t0 + Duration::from_secs(10);
        assert_eq!(memory.fetch_due(soon, INTERVAL, Some(3), false), None);
        assert!(Arc::ptr_eq(memory.snapshot.as_ref().unwrap(), &ours));
        // The interval counts from the fetch, not from the push; spec changes and webhooks
        // still fetch.
        assert_eq!(memory.fetched_at, Some(t0));
        assert_eq!(
            memory.next_fetch_in(soon, INTERVAL),
            Duration::from_secs(50)
        );
        assert_eq!(
            memory.fetch_due(t0 + INTERVAL, INTERVAL, Some(3), false),
            Some(FetchReason::IntervalElapsed)
        );
        assert_eq!(
            memory.fetch_due(soon, INTERVAL, Some(4), false),
            Some(FetchReason::SpecChanged)
        );
        assert_eq!(
            memory.fetch_due(soon, INTERVAL, Some(3), true),
            Some(FetchReason::Requested)
        );
        // A failed fetch before the push is not forgotten either.
        state.fetch_failed();
        state.pushed_snapshot(ours);
        assert_eq!(
            state.source().fetch_due(soon, INTERVAL, Some(3), false),
            Some(FetchReason::LastFetchFailed)
        );
    }

    #[test]
    fn the_inventory_is_built_again_only_when_the_status_lists_other_objects() {
        let entry = |name: &str| InventoryEntry {
            group: String::new(),
            kind: "ConfigMap".into(),
            namespace: Some("team-a".into()),
            name: name.into(),
        };
        let state = RepositoryState::default();
        let listed = InventoryList::new(&[entry("a"), entry("b")]);
        let first = state.inventory(&listed);
        assert_eq!(
            *first,
            BTreeSet::from([
                ObjectId::new("", "ConfigMap", Some("team-a"), "a"),
                ObjectId::new("", "ConfigMap", Some("team-a"), "b"),
            ])
        );
        assert!(Arc::ptr_eq(&first, &state.inventory(&listed)), "shared");
        assert!(
            state.inventory_list(&first).unwrap().is(&listed),
            "the list read"
        );
        // The same objects written otherwise (the API server orders keys its own way).
        let rewritten: InventoryList = serde_json::from_str(
            r#"[{"group":"","kind":"ConfigMap","name":"a","namespace":"team-a"},
                {"group":"","kind":"ConfigMap","name":"b","namespace":"team-a"}]"#,
        )
        .unwrap();
        assert!(
            Arc::ptr_eq(&first, &state.inventory(&rewritten)),
            "same objects"
        );
        for other in [
            vec![entry("a")],
            vec![entry("a"), entry("c")],
            vec![entry("b"), entry("a")],
            vec![],
        ] {
            let built = state.inventory(&InventoryList::new(&other));
            assert_eq!(
                *built,
                super::super::convert::inventory(&other),
                "{other:?}"
            );
            assert!(!Arc::ptr_eq(&first, &built), "{other:?}");
            assert!(state.inventory_list(&first).is_none(), "another list now");
        }
    }

    #[test]
    fn recording_fetches_and_pushes() {
        let state = RepositoryState::default();
        let t0 = Instant::now();
        state.fetched(Arc::new(Snapshot::empty()), Some(3), t0);
        assert_eq!(state.source().fetch_due(t0, INTERVAL, Some(3), false), None);
        state.pushed();
        assert_eq!(
            state.source().fetch_due(t0, INTERVAL, Some(3), false),
            Some(FetchReason::AfterPush)
        );
        state.fetch_failed();
        assert_eq!(
            state.source().fetch_due(t0, INTERVAL, Some(3), false),
            Some(FetchReason::LastFetchFailed)
        );
        assert_eq!(state.reconcile_failed(), 1);
        assert_eq!(state.reconcile_failed(), 2);
        state.reconcile_succeeded();
        assert_eq!(state.reconcile_failed(), 1);
        let held = state.git_lock().unwrap();
        assert!(matches!(state.git_lock(), Err(Error::GitBusy)));
        drop(held);
        assert!(state.git_lock().is_ok());
    }
}
