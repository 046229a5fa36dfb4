//! Kubernetes Events of a sync, published in one place, at the end of a reconcile.
//!
//! - Per object: what a sync did to an object is an Event that regards the object itself
//!   (`kubectl describe` shows it), with the GitRepository as the related object; an object
//!   that is gone, or was never created, is named in an Event on the GitRepository instead.
//!   At most [`MAX_PER_ACTION`] per kind of action and sync.
//! - Per sync: one summary Event on the GitRepository for every sync that changed something
//!   ("applied 3, created 1, committed 2 in abc12345").
//! - Problems: Warnings on the GitRepository when the status changed, so a standing problem
//!   does not write an Event every interval; failed writes every time they fail.
//!
//! Repeats of an Event join a series only when they are the same Event word for word (see
//! [`EventRecorder`](crate::cluster::EventRecorder)), so no series' count or note is stale.

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

/// Events for what a sync did and, when the status changed, for what went wrong.
pub async fn publish_sync(
    ctx: &Context,
    repo: &GitRepository,
    outcome: Outcome<'_>,
    status_changed: bool,
) {
    let on_repo = repo.object_ref(&());
    let report = match outcome {
        Err(error) => {
            if status_changed {
                let warning = event(
                    EventType::Warning,
                    error.reason().as_str(),
                    "Sync",
                    error.to_string(),
                );
                publish(ctx, &warning, &on_repo).await;
            }
            return;
        }
        Ok(report) => report,
    };
    let repo_name = format!(
        "{}/{}",
        repo.meta().namespace.as_deref().unwrap_or_default(),
        repo.meta().name.as_deref().unwrap_or_default()
    );
    for did in Did::ALL {
        for id in did.objects(report).iter().take(MAX_PER_ACTION) {
            let (regarding, note) = match report.references.get(id) {
                Some(object) => (object, did.note(&repo_name, report)),
                None => (&on_repo, format!("{id}: {}", did.note(&repo_name, report))),
            };
            let mut per_object = event(EventType::Normal, did.reason(), did.action(), note);
            per_object.secondary = Some(on_repo.clone()).filter(|_| regarding != &on_repo);
            publish(ctx, &per_object, regarding).await;
        }
    }
    if let Some(note) = summary(report) {
        let synced = event(EventType::Normal, "Synced", "Sync", note);
        publish(ctx, &synced, &on_repo).await;
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
        publish(ctx, &failed, regarding).await;
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
            publish(ctx, &warning, &on_repo).await;
        }
        if let Some(first_untold) = standing.get(MAX_PER_ACTION) {
            let more = standing.len() - MAX_PER_ACTION;
            let warning = event(
                EventType::Warning,
                first_untold.reason.as_str(),
                "Sync",
                format!("{more} more problems; the Ready condition lists them all"),
            );
            publish(ctx, &warning, &on_repo).await;
        }
    }
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
