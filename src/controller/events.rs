//! Kubernetes Events, published in one place. Actions always produce Events; problems do so
//! when the status changed, so a standing problem does not write an Event every interval.

use kube::Resource;
use kube::runtime::events::{Event, EventType};

use super::reconcile::SyncReport;
use super::runner::Context;
use crate::api::GitRepository;
use crate::error::Result;

/// At most this many Events per kind of action and reconcile; the rest are summarized.
const MAX_PER_ACTION: usize = 10;

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
    if let Err(error) = ctx.recorder.publish(&event, &repo.object_ref(&())).await {
        tracing::warn!(%error, "could not publish an Event");
    }
}

/// Events for what a sync did and, when the status changed, for what went wrong.
pub async fn publish_sync(
    ctx: &Context,
    repo: &GitRepository,
    outcome: &Result<SyncReport>,
    status_changed: bool,
) {
    let report = match outcome {
        Err(error) => {
            if status_changed {
                publish(
                    ctx,
                    repo,
                    EventType::Warning,
                    error.reason(),
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
    let groups: [(&str, &str, &Vec<_>, String); 5] = [
        (
            "Created",
            "Apply",
            &report.created,
            "created from Git".to_string(),
        ),
        (
            "Applied",
            "Apply",
            &report.applied,
            "applied from Git".to_string(),
        ),
        (
            "Pruned",
            "Delete",
            &report.deleted,
            "deleted: its manifest was removed from Git".to_string(),
        ),
        (
            "Committed",
            "Commit",
            &report.written,
            format!("written to Git in {commit}"),
        ),
        (
            "RemovedFromGit",
            "Commit",
            &report.removed,
            format!("removed from Git in {commit}"),
        ),
    ];
    for (reason, action, ids, what) in groups {
        for id in ids.iter().take(MAX_PER_ACTION) {
            publish(
                ctx,
                repo,
                EventType::Normal,
                reason,
                action,
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
                reason,
                action,
                format!("{more} more objects {what}"),
            )
            .await;
        }
    }
    for (id, error) in report.failed.iter().take(MAX_PER_ACTION) {
        publish(
            ctx,
            repo,
            EventType::Warning,
            "ApplyFailed",
            "Apply",
            format!("{id}: {error}"),
        )
        .await;
    }
    if status_changed {
        for (rule, reason) in &report.invalid_rules {
            publish(
                ctx,
                repo,
                EventType::Warning,
                "InvalidRule",
                "Validate",
                format!("SyncRule {rule}: {reason}"),
            )
            .await;
        }
        for d in report
            .diagnostics
            .iter()
            .filter(|d| super::status::is_problem(d))
            .take(MAX_PER_ACTION)
        {
            publish(
                ctx,
                repo,
                EventType::Warning,
                d.reason.as_str(),
                "Plan",
                d.to_string(),
            )
            .await;
        }
    }
}
