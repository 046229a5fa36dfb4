//! When a repository syncs: triggers are batched per repository here, in front of the
//! kube-runtime `Controller` (whose own debounce is off). kube-runtime still runs one reconcile
//! at a time per repository and at most `--concurrency` at once; a trigger that arrives while
//! its repository reconciles runs once more right after.
//!
//! Per repository:
//! - **Leading edge.** The first change after a quiet period (no trigger for a whole batch
//!   window) syncs after a short settle ([`SETTLE`]), so one change is in Git or the cluster
//!   well under a second later, and changes made together (one `kubectl apply` of several
//!   objects) still share one sync.
//! - **Batches.** A change that arrives while changes keep coming opens a batch, synced once
//!   no change joined it for the batch window (`--batch-window-ms`). Later changes join the
//!   batch and may push it back, but never past the maximum delay after its first change
//!   (`--batch-max-delay`): a stream of changes cannot starve a repository.
//! - **Requests.** What a person asked for (a push webhook, a SyncRule's spec, a new CRD) syncs
//!   after the settle whatever the batch says.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use kube::runtime::reflector::{ObjectRef, Store};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tokio::time::Instant;

use super::repository::RepoKey;
use super::trigger::{TriggerRequest, Urgency};
use crate::api::GitRepository;
use crate::metrics::Metrics;

/// How long the first change after a quiet period waits for the changes made with it.
pub const SETTLE: Duration = Duration::from_millis(50);

/// How triggers become syncs (from the command line).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Batching {
    /// A batch syncs once no change joined it for this long (`--batch-window-ms`).
    pub window: Duration,
    /// ... and never later than this after its first change (`--batch-max-delay`).
    pub max_delay: Duration,
}

impl Batching {
    /// `--batch-window-ms`'s default.
    pub const DEFAULT_WINDOW: Duration = Duration::from_secs(1);
    /// `--batch-max-delay`'s default: see `docs/reliability.md` for why.
    pub const DEFAULT_MAX_DELAY: Duration = Duration::from_secs(5);

    /// No batching at all: every trigger syncs at once (`git-controller diff`, tests).
    pub const IMMEDIATE: Batching = Batching {
        window: Duration::ZERO,
        max_delay: Duration::ZERO,
    };

    /// The settle of a leading-edge sync: [`SETTLE`], or the window when it is shorter.
    pub fn settle(&self) -> Duration {
        SETTLE.min(self.window)
    }
}

impl Default for Batching {
    fn default() -> Self {
        Batching {
            window: Self::DEFAULT_WINDOW,
            max_delay: Self::DEFAULT_MAX_DELAY,
        }
    }
}

/// The changes waiting for one repository's next sync.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Batch {
    /// When its first change arrived: the maximum delay counts from here.
    first: Instant,
    /// When it syncs.
    due: Instant,
    /// Whether it syncs after the settle (leading edge, or a request) rather than after a
    /// quiet window.
    soon: bool,
}

/// Every repository's pending batch, and when each repository last saw a trigger. Pure: the
/// caller passes the time.
#[derive(Debug)]
pub struct Schedule<K> {
    batching: Batching,
    batches: HashMap<K, Batch>,
    /// The last trigger of each repository, kept for one window after it (a repository not
    /// in here is quiet).
    last_trigger: HashMap<K, Instant>,
}

impl<K: Hash + Eq + Clone> Schedule<K> {
    /// Nothing pending.
    pub fn new(batching: Batching) -> Self {
        Self {
            batching,
            batches: HashMap::new(),
            last_trigger: HashMap::new(),
        }
    }

    /// Records a trigger of `key` at `now`.
    pub fn add(&mut self, key: K, urgency: Urgency, now: Instant) {
        let Batching { window, max_delay } = self.batching;
        let quiet = self
            .last_trigger
            .insert(key.clone(), now)
            .is_none_or(|last| now.saturating_duration_since(last) >= window);
        let settled = now + self.batching.settle();
        match self.batches.entry(key) {
            Entry::Vacant(entry) => {
                let soon = quiet || urgency == Urgency::Soon;
                let due = if soon {
                    settled
                } else {
                    now + window.min(max_delay)
                };
                entry.insert(Batch {
                    first: now,
                    due,
                    soon,
                });
            }
            Entry::Occupied(mut entry) => {
                let batch = entry.get_mut();
                if urgency == Urgency::Soon {
                    batch.due = batch.due.min(settled);
                    batch.soon = true;
                } else if !batch.soon {
                    // Joins the batch: pushes it back by the window, up to the maximum delay.
                    let cap = batch.first + max_delay;
                    batch.due = batch.due.max((now + window).min(cap));
                }
                // A change joining a batch that syncs soon is simply part of it.
            }
        }
    }

    /// When the earliest pending batch is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.batches.values().map(|batch| batch.due).min()
    }

    /// Removes and returns the repositories whose batch is due at `now`.
    pub fn take_due(&mut self, now: Instant) -> Vec<K> {
        let due: Vec<K> = self
            .batches
            .iter()
            .filter(|(_, batch)| batch.due <= now)
            .map(|(key, _)| key.clone())
            .collect();
        for key in &due {
            self.batches.remove(key);
        }
        // Forget repositories that have been quiet for a window: they are quiet either way.
        let window = self.batching.window;
        self.last_trigger
            .retain(|_, last| now.saturating_duration_since(*last) < window);
        due
    }
}

/// Turns trigger requests into reconcile requests for kube-runtime, batched as the module
/// documentation says. Requests for repositories that do not exist are dropped (a SyncRule may
/// name one that is gone); the others are counted in `gitcontroller_sync_triggers_total`.
/// Returns when the request channel closes.
pub async fn run(
    mut requests: UnboundedReceiver<TriggerRequest>,
    batching: Batching,
    repositories: Store<GitRepository>,
    metrics: Arc<Metrics>,
    syncs: UnboundedSender<ObjectRef<GitRepository>>,
) {
    let mut schedule = Schedule::<RepoKey>::new(batching);
    loop {
        let next = schedule.next_due();
        tokio::select! {
            request = requests.recv() => {
                let Some(TriggerRequest { key, source }) = request else {
                    return;
                };
                let reference = ObjectRef::new(&key.name).within(&key.namespace);
                let Some(repo) = repositories.get(&reference) else {
                    continue;
                };
                // A repository being deleted still finalizes, but is no longer counted: its
                // series are gone, or about to be, and must not come back.
                if repo.metadata.deletion_timestamp.is_none() {
                    metrics.sync_triggered(&key.namespace, &key.name, source.as_str());
                }
                schedule.add(key, source.urgency(), Instant::now());
            }
            () = tokio::time::sleep_until(next.unwrap_or_else(Instant::now)), if next.is_some() => {
                for key in schedule.take_due(Instant::now()) {
                    let reference = ObjectRef::new(&key.name).within(&key.namespace);
                    if syncs.send(reference).is_err() {
                        return;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);
    const BATCHING: Batching = Batching {
        window: Duration::from_secs(1),
        max_delay: Duration::from_secs(5),
    };

    /// Feeds `changes` (milliseconds after t0, all of one repository) and returns when each
    /// sync happens, in milliseconds after t0, stepping time 1 ms at a time until `until`.
    fn syncs(batching: Batching, changes: &[(u64, Urgency)], until: u64) -> Vec<u64> {
        let t0 = Instant::now();
        let mut schedule = Schedule::new(batching);
        let mut synced = Vec::new();
        let mut changes = changes.iter().peekable();
        for ms in 0..=until {
            let now = t0 + MS * ms as u32;
            while let Some((_, urgency)) = changes.next_if(|(at, _)| *at == ms) {
                schedule.add("repo", *urgency, now);
            }
            if !schedule.take_due(now).is_empty() {
                synced.push(ms);
            }
        }
        synced
    }

    fn watch_events(every: u64, from: u64, to: u64) -> Vec<(u64, Urgency)> {
        (from..to)
            .step_by(every as usize)
            .map(|ms| (ms, Urgency::Batched))
            .collect()
    }

    #[test]
    fn one_change_after_a_quiet_period_syncs_after_the_settle() {
        assert_eq!(syncs(BATCHING, &[(0, Urgency::Batched)], 3000), [50]);
        // Changes made together share the leading sync.
        assert_eq!(
            syncs(
                BATCHING,
                &[
                    (0, Urgency::Batched),
                    (10, Urgency::Batched),
                    (49, Urgency::Batched)
                ],
                3000
            ),
            [50]
        );
    }

    #[test]
    fn a_burst_is_a_leading_sync_then_one_batch_after_it_ends() {
        // 50 changes 10 ms apart: the leading sync, then one when the burst has been quiet
        // for the window.
        assert_eq!(
            syncs(BATCHING, &watch_events(10, 0, 500), 5000),
            [50, 490 + 1000]
        );
    }

    #[test]
    fn a_stream_of_changes_cannot_push_a_sync_past_the_maximum_delay() {
        // A change every 100 ms for 30 s: a sync at least every 5 s, never starved.
        let synced = syncs(BATCHING, &watch_events(100, 0, 30_000), 32_000);
        assert_eq!(synced[0], 50);
        for pair in synced.windows(2) {
            assert!(pair[1] - pair[0] <= 5_000 + 100, "{synced:?}");
        }
        assert!(synced.len() >= 30 / 5, "{synced:?}");
        // And still batched: far fewer syncs than changes.
        assert!(synced.len() <= 8, "{synced:?}");
    }

    #[test]
    fn a_request_syncs_soon_even_inside_a_batch() {
        let mut changes = watch_events(100, 0, 3000);
        changes.push((1_230, Urgency::Soon));
        changes.sort_by_key(|(at, _)| *at);
        let synced = syncs(BATCHING, &changes, 10_000);
        assert!(synced.contains(&(1_230 + 50)), "{synced:?}");
    }

    #[test]
    fn a_quiet_window_ends_the_burst() {
        // Changes 1.2 s apart are each a leading-edge sync: nothing to batch them with.
        assert_eq!(
            syncs(
                BATCHING,
                &[
                    (0, Urgency::Batched),
                    (1200, Urgency::Batched),
                    (2400, Urgency::Batched)
                ],
                4000
            ),
            [50, 1250, 2450]
        );
        // 0.5 s apart: the second opens a batch synced one window later.
        assert_eq!(
            syncs(
                BATCHING,
                &[(0, Urgency::Batched), (500, Urgency::Batched)],
                4000
            ),
            [50, 1500]
        );
    }

    #[test]
    fn no_window_syncs_every_trigger_at_once() {
        assert_eq!(
            syncs(
                Batching::IMMEDIATE,
                &[(0, Urgency::Batched), (3, Urgency::Batched)],
                100
            ),
            [0, 3]
        );
    }

    #[test]
    fn a_maximum_delay_below_the_window_caps_it() {
        let batching = Batching {
            window: Duration::from_secs(1),
            max_delay: Duration::from_millis(300),
        };
        assert_eq!(
            syncs(
                batching,
                &[(0, Urgency::Batched), (100, Urgency::Batched)],
                3000
            ),
            [50, 400]
        );
    }

    #[test]
    fn repositories_are_batched_apart() {
        let t0 = Instant::now();
        let mut schedule = Schedule::new(BATCHING);
        schedule.add("a", Urgency::Batched, t0);
        schedule.add("b", Urgency::Batched, t0 + 20 * MS);
        assert_eq!(schedule.next_due(), Some(t0 + 50 * MS));
        assert_eq!(schedule.take_due(t0 + 50 * MS), ["a"]);
        assert_eq!(schedule.take_due(t0 + 70 * MS), ["b"]);
        assert_eq!(schedule.next_due(), None);
    }
}
