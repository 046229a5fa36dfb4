//! Kubernetes Events of a sync, published in one place, at the end of a reconcile.
//!
//! - Per object: what a sync did to an object is an Event that regards the object itself
//!   (`kubectl describe` shows it), with the GitRepository as the related object; an object
//!   that is gone, or was never created, is named in an Event on the GitRepository instead.
//!   At most [`MAX_PER_ACTION`] per kind of action and sync, and across all repositories at
//!   most [`ObjectEventBudget::BURST`] at once, then [`ObjectEventBudget::PER_SECOND`]: a
//!   hundred repositories syncing together write a sample of per-object Events, not a
//!   thousand (each sync's summary still counts every object).
//! - Per sync: one summary Event on the GitRepository for every sync that changed something
//!   ("applied 3, created 1, committed 2 in abc12345").
//! - Problems: Warnings on the GitRepository when the status changed, so a standing problem
//!   does not write an Event every interval; failed writes every time they fail.
//!
//! A sync's Events are written concurrently, in two waves: the per-object ones, then the
//! summary and the warnings, so whoever sees the summary sees the per-object Events too.
//! [`of_sync`] makes them when the sync ends; the reconcile hands them ([`SyncEvents`]) to a
//! task that writes them after it returned, one sync's after the previous one's.
//!
//! Repeats of an Event join a series only when they are the same Event word for word (see
//! [`EventRecorder`](crate::cluster::EventRecorder)), so no series' count or note is stale.

use std::sync::Mutex;
use std::time::Instant;

use gitcontroller_sync::ObjectId;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::Resource;

use super::context::Context;
use super::report::{Outcome, SyncReport};
use super::status::short;
use crate::api::{GitRepository, Reason};
use crate::cluster::events::{Event, EventType};

/// At most this many per-object Events per kind of action and sync; the summary counts all.
const MAX_PER_ACTION: usize = 10;
/// The API server refuses notes longer than 1 kB.
const MAX_NOTE: usize = 1000;

/// What a sync did to an object; each is an Event reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Did {
    Created,
    Applied,
    Pruned,
    Committed,
    RemovedFromGit,
}

impl Did {
    const ALL: [Did; 5] = [
        Did::Created,
        Did::Applied,
        Did::Pruned,
        Did::Committed,
        Did::RemovedFromGit,
    ];

    fn reason(self) -> &'static str {
        match self {
            Did::Created => "Created",
            Did::Applied => "Applied",
            Did::Pruned => "Pruned",
            Did::Committed => "Committed",
            Did::RemovedFromGit => "RemovedFromGit",
        }
    }

    fn action(self) -> &'static str {
        match self {
            Did::Created | Did::Applied => "Apply",
            Did::Pruned => "Delete",
            Did::Committed | Did::RemovedFromGit => "Commit",
        }
    }

    /// The objects of a report this was done to.
    fn objects(self, report: &SyncReport) -> &[ObjectId] {
        match self {
            Did::Created => &report.cluster.created,
            Did::Applied => &report.cluster.applied,
            Did::Pruned => &report.cluster.deleted,
            Did::Committed => &report.git.written,
            Did::RemovedFromGit => &report.git.removed,
        }
    }

    /// The summary's words for `n` objects.
    fn counted(self, n: usize) -> String {
        match self {
            Did::Created => format!("created {n}"),
            Did::Applied => format!("applied {n}"),
            Did::Pruned => format!("pruned {n}"),
            Did::Committed => format!("committed {n}"),
            Did::RemovedFromGit => format!("removed {n} from Git"),
        }
    }

    /// The note of an Event that regards the object itself: applied from the commit the plan
    /// was made from, written to Git in the commit pushed.
    fn note(self, repo: &str, report: &SyncReport) -> String {
        let (source, pushed) = (short(&report.source_commit), short_commit(report));
        match self {
            Did::Created => format!("created from Git: GitRepository {repo} at {source}"),
            Did::Applied => format!("applied from Git: GitRepository {repo} at {source}"),
            Did::Pruned => {
                format!("deleted: its manifest left GitRepository {repo} at {source}")
            }
            Did::Committed => format!("written to Git: GitRepository {repo} in {pushed}"),
            Did::RemovedFromGit => {
                format!("removed from Git: GitRepository {repo} in {pushed}")
            }
        }
    }
}

/// The commit a sync leaves the branch at (ours when it pushed), short.
fn short_commit(report: &SyncReport) -> String {
    short(report.commit.as_deref().unwrap_or_default())
}

fn event(type_: EventType, reason: &str, action: &str, note: String) -> Event {
    Event {
        type_,
        reason: reason.into(),
        note: Some(note.chars().take(MAX_NOTE).collect()),
        action: action.into(),
        secondary: None,
    }
}

async fn publish(ctx: &Context, event: &Event, regarding: &ObjectReference) {
    if let Err(error) = ctx.writer().publish(event, regarding).await {
        tracing::warn!(%error, reason = %event.reason, "could not publish an Event");
    }
}

/// Publishes `events` (each with the object it regards) concurrently; returns when all are
/// written (or failed). The same Event twice is published one after the other, so that the
/// second counts in the series of the first.
async fn publish_all(ctx: &Context, events: &[(Event, ObjectReference)]) {
    let same = |(a, a_regarding): &(Event, ObjectReference),
                (b, b_regarding): &(Event, ObjectReference)| {
        a.type_ == b.type_
            && a.reason == b.reason
            && a.action == b.action
            && a.note == b.note
            && a.secondary == b.secondary
            && a_regarding == b_regarding
    };
    let mut groups: Vec<Vec<&(Event, ObjectReference)>> = Vec::new();
    for event in events {
        match groups.iter_mut().find(|group| same(group[0], event)) {
            Some(group) => group.push(event),
            None => groups.push(vec![event]),
        }
    }
    futures::future::join_all(groups.into_iter().map(|group| async move {
        for (event, regarding) in group {
            publish(ctx, event, regarding).await;
        }
    }))
    .await;
}

/// How many per-object Events the controller may still write: a token bucket shared by every
/// repository, so that many repositories syncing at once (at start-up, after a CRD change)
/// do not write ten Events each. Summaries and warnings do not count against it.
pub struct ObjectEventBudget {
    /// Tokens left, and when they were counted.
    state: Mutex<(f64, Instant)>,
}

impl Default for ObjectEventBudget {
    fn default() -> Self {
        Self {
            state: Mutex::new((Self::BURST, Instant::now())),
        }
    }
}

impl ObjectEventBudget {
    /// Per-object Events that may be written at once: every per-object Event of one sync
    /// ([`MAX_PER_ACTION`] for each of the five actions).
    pub const BURST: f64 = 50.0;
    /// Per-object Events per second after a burst.
    pub const PER_SECOND: f64 = 5.0;

    /// Takes one token at `now`; false when there is none left.
    fn take(&self, now: Instant) -> bool {
        let mut state = self.state.lock().expect("event budget lock");
        let (tokens, counted) = *state;
        let refilled = (tokens
            + now.saturating_duration_since(counted).as_secs_f64() * Self::PER_SECOND)
            .min(Self::BURST);
        let (left, granted) = if refilled >= 1.0 {
            (refilled - 1.0, true)
        } else {
            (refilled, false)
        };
        *state = (left, now.max(counted));
        granted
    }
}

/// The Events of one sync, in the two waves they are written in: per-object ones, then the
/// summary and the warnings. Owned, so they can be written after the reconcile returned.
#[derive(Default)]
pub struct SyncEvents {
    per_object: Vec<(Event, ObjectReference)>,
    then: Vec<(Event, ObjectReference)>,
}

impl SyncEvents {
    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.per_object.is_empty() && self.then.is_empty()
    }

    /// Writes both waves, the second once the first is written (or failed).
    pub async fn publish(&self, ctx: &Context) {
        publish_all(ctx, &self.per_object).await;
        publish_all(ctx, &self.then).await;
    }
}

/// Events for what a sync did and, when the status changed, for what went wrong. Per-object
/// Events take their place in the controller-wide budget now, when the sync ends.
pub fn of_sync(
    ctx: &Context,
    repo: &GitRepository,
    outcome: Outcome<'_>,
    status_changed: bool,
) -> SyncEvents {
    let on_repo = repo.object_ref(&());
    let report = match outcome {
        Err(error) => {
            let mut events = SyncEvents::default();
            if status_changed {
                let warning = event(
                    EventType::Warning,
                    error.reason().as_str(),
                    "Sync",
                    error.to_string(),
                );
                events.then.push((warning, on_repo));
            }
            return events;
        }
        Ok(report) => report,
    };
    let repo_name = format!(
        "{}/{}",
        repo.meta().namespace.as_deref().unwrap_or_default(),
        repo.meta().name.as_deref().unwrap_or_default()
    );
    let mut per_object = Vec::new();
    let mut untold = 0usize;
    for did in Did::ALL {
        for id in did.objects(report).iter().take(MAX_PER_ACTION) {
            if !ctx.object_events.take(Instant::now()) {
                untold += 1;
                continue;
            }
            let (regarding, note) = match report.references.get(id) {
                Some(object) => (object, did.note(&repo_name, report)),
                None => (&on_repo, format!("{id}: {}", did.note(&repo_name, report))),
            };
            let mut event = event(EventType::Normal, did.reason(), did.action(), note);
            event.secondary = Some(on_repo.clone()).filter(|_| regarding != &on_repo);
            per_object.push((event, regarding.clone()));
        }
    }
    if untold > 0 {
        tracing::debug!(
            untold,
            "per-object Events left out: the controller-wide budget is spent"
        );
    }
    // The second wave: after every per-object Event of the sync.
    let mut then = Vec::new();
    if let Some(note) = summary(report) {
        then.push((
            event(EventType::Normal, "Synced", "Sync", note),
            on_repo.clone(),
        ));
    }
    for (id, error) in report.cluster.failed.iter().take(MAX_PER_ACTION) {
        let (regarding, note) = match report.references.get(id) {
            Some(object) => (
                object,
                format!("apply from GitRepository {repo_name} failed: {error}"),
            ),
            None => (&on_repo, format!("{id}: {error}")),
        };
        let mut failed = event(
            EventType::Warning,
            Reason::ApplyFailed.as_str(),
            "Apply",
            note,
        );
        failed.secondary = Some(on_repo.clone()).filter(|_| regarding != &on_repo);
        then.push((failed, regarding.clone()));
    }
    // Every other problem (invalid rules, skipped inputs, the prune guard, unsafe names,
    // ...) once, when the status changes: a standing problem is not repeated every interval.
    if status_changed {
        let problems = report.problems();
        let standing: Vec<_> = problems
            .iter()
            .filter(|p| p.reason != Reason::ApplyFailed)
            .collect();
        for problem in standing.iter().take(MAX_PER_ACTION) {
            let warning = event(
                EventType::Warning,
                problem.reason.as_str(),
                "Sync",
                problem.message.clone(),
            );
            then.push((warning, on_repo.clone()));
        }
        if let Some(first_untold) = standing.get(MAX_PER_ACTION) {
            let more = standing.len() - MAX_PER_ACTION;
            let warning = event(
                EventType::Warning,
                first_untold.reason.as_str(),
                "Sync",
                format!("{more} more problems; the Ready condition lists them all"),
            );
            then.push((warning, on_repo.clone()));
        }
    }
    SyncEvents { per_object, then }
}

/// The note of the summary Event of a sync that changed something, e.g. "applied 3, created
/// 1, committed 2 in abc12345"; None when it changed nothing.
fn summary(report: &SyncReport) -> Option<String> {
    let parts: Vec<String> = Did::ALL
        .iter()
        .map(|did| (did, did.objects(report).len()))
        .filter(|(_, n)| *n > 0)
        .map(|(did, n)| did.counted(n))
        .collect();
    if parts.is_empty() {
        return None;
    }
    let failed = match report.cluster.failed.len() {
        0 => String::new(),
        n => format!("; {n} failed"),
    };
    Some(format!(
        "{} in {}{failed}",
        parts.join(", "),
        short_commit(report)
    ))
}

#[cfg(test)]
mod tests {
    use super::super::report::{ClusterOutcome, GitOutcome};
    use super::*;

    fn ids(names: &[&str]) -> Vec<ObjectId> {
        names
            .iter()
            .map(|n| ObjectId::new("apps", "Deployment", Some("ns"), *n))
            .collect()
    }

    #[test]
    fn the_object_event_budget_allows_a_burst_then_a_steady_rate() {
        let budget = ObjectEventBudget::default();
        let t0 = Instant::now();
        let granted = (0..80).filter(|_| budget.take(t0)).count();
        assert_eq!(granted, ObjectEventBudget::BURST as usize);
        assert!(!budget.take(t0));
        let one_second = t0 + std::time::Duration::from_secs(1);
        let granted = (0..80).filter(|_| budget.take(one_second)).count();
        assert_eq!(granted, ObjectEventBudget::PER_SECOND as usize);
        // A long quiet refills it up to the burst, not beyond.
        let much_later = t0 + std::time::Duration::from_secs(3600);
        let granted = (0..80).filter(|_| budget.take(much_later)).count();
        assert_eq!(granted, ObjectEventBudget::BURST as usize);
    }

    #[test]
    fn the_summary_counts_every_action_of_a_sync() {
        let report = SyncReport {
            cluster: ClusterOutcome {
                applied: ids(&["a", "b", "c"]),
                created: ids(&["d"]),
                failed: vec![(ids(&["e"]).remove(0), "forbidden".into())],
                ..ClusterOutcome::default()
            },
            git: GitOutcome {
                written: ids(&["f", "g"]),
                ..GitOutcome::default()
            },
            commit: Some("abc12345ffff".into()),
            ..SyncReport::default()
        };
        assert_eq!(
            summary(&report).as_deref(),
            Some("created 1, applied 3, committed 2 in abc12345; 1 failed")
        );
        assert_eq!(summary(&SyncReport::default()), None);
    }
}
