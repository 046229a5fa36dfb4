//! Kubernetes Events of a sync, published in one place, at the end of a reconcile. Actions
//! always produce Events; problems do so when the status changed, so a standing problem does
//! not write an Event every interval.

use kube::Resource;
use kube::runtime::events::{Event, EventType};

use super::context::Context;
use super::report::Outcome;
use crate::api::{GitRepository, Reason};

/// At most this many Events per kind of action and reconcile; the rest are summarized.
const MAX_PER_ACTION: usize = 10;

/// The reasons of the Events about what a sync did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Did {
    Created,
    Applied,
    Pruned,
    Committed,
    RemovedFromGit,
}

impl Did {
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
}

async fn publish(
    ctx: &Context,
    repo: &GitRepository,
    type_: EventType,
    reason: &str,
    action: &str,
    note: String,
) {
    let event = Event {
        type_,
        reason: reason.into(),
        note: Some(note.chars().take(1000).collect()),
        action: action.into(),
        secondary: None,
    };
    if let Err(error) = ctx.writer().publish(&event, &repo.object_ref(&())).await {
        tracing::warn!(%error, "could not publish an Event");
    }
}

/// Events for what a sync did and, when the status changed, for what went wrong.
pub async fn publish_sync(
    ctx: &Context,
    repo: &GitRepository,
    outcome: Outcome<'_>,
    status_changed: bool,
) {
    let report = match outcome {
        Err(error) => {
            if status_changed {
                publish(
                    ctx,
                    repo,
                    EventType::Warning,
                    error.reason().as_str(),
                    "Sync",
                    error.to_string(),
                )
                .await;
            }
            return;
        }
        Ok(report) => report,
    };
    let commit: String = report
        .commit
        .as_deref()
        .unwrap_or_default()
        .chars()
        .take(8)
        .collect();
    let groups = [
        (
            Did::Created,
            &report.cluster.created,
            "created from Git".to_string(),
        ),
        (
            Did::Applied,
            &report.cluster.applied,
            "applied from Git".to_string(),
        ),
        (
            Did::Pruned,
            &report.cluster.deleted,
            "deleted: its manifest was removed from Git".to_string(),
        ),
        (
            Did::Committed,
            &report.git.written,
            format!("written to Git in {commit}"),
        ),
        (
            Did::RemovedFromGit,
            &report.git.removed,
            format!("removed from Git in {commit}"),
        ),
    ];
    for (did, ids, what) in groups {
        for id in ids.iter().take(MAX_PER_ACTION) {
            publish(
                ctx,
                repo,
                EventType::Normal,
                did.reason(),
                did.action(),
                format!("{id} {what}"),
            )
            .await;
        }
        if ids.len() > MAX_PER_ACTION {
            let more = ids.len() - MAX_PER_ACTION;
            publish(
                ctx,
                repo,
                EventType::Normal,
                did.reason(),
                did.action(),
                format!("{more} more objects {what}"),
            )
            .await;
        }
    }
    for (id, error) in report.cluster.failed.iter().take(MAX_PER_ACTION) {
        publish(
            ctx,
            repo,
            EventType::Warning,
            Reason::ApplyFailed.as_str(),
            "Apply",
            format!("{id}: {error}"),
        )
        .await;
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
            publish(
                ctx,
                repo,
                EventType::Warning,
                problem.reason.as_str(),
                "Sync",
                problem.message.clone(),
            )
            .await;
        }
        if let Some(first_untold) = standing.get(MAX_PER_ACTION) {
            let more = standing.len() - MAX_PER_ACTION;
            publish(
                ctx,
                repo,
                EventType::Warning,
                first_untold.reason.as_str(),
                "Sync",
                format!("{more} more problems; the Ready condition lists them all"),
            )
            .await;
        }
    }
}
