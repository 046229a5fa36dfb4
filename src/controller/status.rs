//! Status of GitRepositories and SyncRules: computed from a sync's outcome, written with
//! server-side apply only when it changed (an object in sync costs no write).

use gitcontroller_sync::{Diagnostic, DiagnosticReason, Rule, Severity};
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};

use super::reconcile::SyncReport;
use super::runner::Context;
use crate::api::{
    Condition, ConditionStatus, GitRepository, GitRepositoryStatus, ObjectCounts, SyncRule,
    SyncRuleStatus,
};
use crate::cluster::FIELD_MANAGER;
use crate::cluster::discovery::{CatalogEntry, TypeKey};
use crate::error::{Error, Result};

fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn condition(type_: &str, status: ConditionStatus, reason: &str, message: String) -> Condition {
    Condition {
        type_: type_.into(),
        status,
        reason: reason.into(),
        message: truncate(message, 2000),
        last_transition_time: String::new(),
        observed_generation: None,
    }
}

fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut cut = max;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str(" …");
    }
    text
}

/// Keeps each condition's transition time when its status did not change, so that an
/// unchanged situation yields an identical status.
fn carry_transition_times(new: &mut [Condition], old: &[Condition], generation: Option<i64>) {
    let time = now();
    for condition in new.iter_mut() {
        condition.observed_generation = generation;
        condition.last_transition_time = old
            .iter()
            .find(|o| o.type_ == condition.type_ && o.status == condition.status)
            .map(|o| o.last_transition_time.clone())
            .unwrap_or_else(|| time.clone());
    }
}

fn short(commit: &str) -> String {
    commit.chars().take(8).collect()
}

/// Whether a planner finding keeps the repository from being Ready. Skipped documents
/// (kustomization.yaml, values files) and actions held back because of another finding are
/// not problems of their own.
pub fn is_problem(d: &Diagnostic) -> bool {
    d.severity != Severity::Info
        && !matches!(
            d.reason,
            DiagnosticReason::Skipped | DiagnosticReason::Suppressed
        )
}

/// Problems that leave the repository not Ready although the sync ran: (reason, message).
fn problems(report: &SyncReport) -> Vec<(&'static str, String)> {
    let mut problems = Vec::new();
    for (rule, reason) in &report.invalid_rules {
        problems.push(("InvalidRule", format!("SyncRule {rule}: {reason}")));
    }
    for d in report.diagnostics.iter().filter(|d| is_problem(d)) {
        let reason = match d.reason.as_str() {
            "SecretExportRefused" => "SecretExportRefused",
            "Duplicate" => "DuplicateManifest",
            "UnknownKind" => "UnknownKind",
            _ => "ManifestError",
        };
        problems.push((reason, d.to_string()));
    }
    for (id, error) in &report.failed {
        problems.push(("ApplyFailed", format!("{id}: {error}")));
    }
    problems
}

/// The status a sync outcome calls for.
pub fn repository_status(
    repo: &GitRepository,
    outcome: &Result<SyncReport>,
) -> GitRepositoryStatus {
    let old = repo.status.clone().unwrap_or_default();
    let generation = repo.metadata.generation;
    let mut status = GitRepositoryStatus {
        observed_generation: generation,
        last_synced_commit: old.last_synced_commit.clone(),
        last_synced_commit_short: old.last_synced_commit_short.clone(),
        last_sync_time: old.last_sync_time.clone(),
        objects: old.objects.clone(),
        inventory: old.inventory.clone(),
        conditions: Vec::new(),
    };
    use ConditionStatus::{False, True, Unknown};
    match outcome {
        Err(error) => {
            let stalled = error.is_stalled();
            status.conditions = vec![
                condition("Ready", False, error.reason(), error.to_string()),
                condition(
                    "Reconciling",
                    if stalled { False } else { True },
                    if stalled {
                        error.reason()
                    } else {
                        "RetryScheduled"
                    },
                    if stalled {
                        "waiting for a change to the spec or its Secret".into()
                    } else {
                        "retrying".into()
                    },
                ),
                condition(
                    "Stalled",
                    if stalled { True } else { False },
                    error.reason(),
                    if stalled {
                        error.to_string()
                    } else {
                        "retrying".into()
                    },
                ),
            ];
        }
        Ok(report) => {
            let commit = report.commit.clone().unwrap_or_default();
            let acted = !(report.created.is_empty()
                && report.applied.is_empty()
                && report.deleted.is_empty()
                && report.written.is_empty()
                && report.removed.is_empty());
            if old.last_synced_commit.as_deref() != Some(commit.as_str())
                || acted
                || old.last_sync_time.is_none()
            {
                status.last_sync_time = Some(now());
            }
            status.last_synced_commit = Some(commit.clone());
            status.last_synced_commit_short = Some(short(&commit));
            status.objects = Some(ObjectCounts {
                to_kubernetes: report.counts.0,
                to_git: report.counts.1,
                ignored: report.counts.2,
            });
            status.inventory = super::convert::inventory_entries(&report.inventory);
            let problems = problems(report);
            let (ready, reason, message) = if let Some(why) = report.writes_skipped {
                (
                    Unknown,
                    "Suspended",
                    format!("writes paused ({why}); {} changes pending", report.pending),
                )
            } else if let Some((reason, _)) = problems.first() {
                let message = problems
                    .iter()
                    .map(|(_, m)| m.as_str())
                    .collect::<Vec<_>>()
                    .join("; ");
                (False, *reason, message)
            } else {
                (True, "Synced", format!("in sync with {}", short(&commit)))
            };
            let only_user_fixable = !problems.is_empty() && report.failed.is_empty();
            status.conditions = vec![
                condition("Ready", ready, reason, message.clone()),
                condition(
                    "Reconciling",
                    False,
                    "Idle",
                    "waiting for the next change".into(),
                ),
                condition(
                    "Stalled",
                    if only_user_fixable { True } else { False },
                    if only_user_fixable {
                        reason
                    } else {
                        "Progressing"
                    },
                    if only_user_fixable {
                        message
                    } else {
                        String::new()
                    },
                ),
            ];
        }
    }
    carry_transition_times(&mut status.conditions, &old.conditions, generation);
    status
}

/// Whether a status says Ready=True.
pub fn is_ready(status: &GitRepositoryStatus) -> bool {
    status
        .conditions
        .iter()
        .any(|c| c.type_ == "Ready" && c.status == ConditionStatus::True)
}

/// Writes the status when it differs from what is stored; returns whether it wrote.
pub async fn patch_repository_if_changed(
    ctx: &Context,
    repo: &GitRepository,
    status: GitRepositoryStatus,
) -> Result<bool> {
    if repo.status.as_ref() == Some(&status) {
        return Ok(false);
    }
    let api: Api<GitRepository> =
        Api::namespaced(ctx.client.clone(), &repo.namespace().unwrap_or_default());
    let patch = serde_json::json!({
        "apiVersion": "gitcontroller.io/v1alpha1",
        "kind": "GitRepository",
        "status": status,
    });
    api.patch_status(
        &repo.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map_err(Error::Kube)?;
    Ok(true)
}

/// Writes a SyncRule's `Ready` condition and `matchedResources` when they changed.
pub async fn patch_rule_if_changed(
    ctx: &Context,
    rule: &SyncRule,
    converted: &std::result::Result<Rule, String>,
    matched: &[(TypeKey, CatalogEntry)],
) {
    let mut matched_resources: Vec<String> = matched
        .iter()
        .map(|(key, entry)| {
            if key.group.is_empty() {
                entry.resource.plural.clone()
            } else {
                format!("{}.{}", entry.resource.plural, key.group)
            }
        })
        .collect();
    matched_resources.sort();
    use ConditionStatus::{False, True};
    let ready = match converted {
        Err(reason) => {
            let why = if reason.starts_with("labelSelector") { "InvalidSelector" } else { "InvalidFilter" };
            condition("Ready", False, why, reason.clone())
        }
        Ok(_) if matched_resources.is_empty() => condition(
            "Ready",
            False,
            "NoMatchingResources",
            "no served resource type matches apiGroups/resources/kinds; waiting for one to be installed".into(),
        ),
        Ok(_) => condition("Ready", True, "Resolved", format!("selects {} resource types", matched_resources.len())),
    };
    write_rule_status(ctx, rule, ready, matched_resources).await;
}

/// Marks a SyncRule whose `repositoryRef` names no GitRepository (it is synced by nothing).
pub async fn patch_orphan_rule(ctx: &Context, rule: &SyncRule) {
    let message = format!(
        "GitRepository {:?} does not exist in namespace {:?}; this rule syncs nothing until it does",
        rule.spec.repository_ref.name,
        rule.namespace().unwrap_or_default()
    );
    let ready = condition(
        "Ready",
        ConditionStatus::False,
        "RepositoryNotFound",
        message,
    );
    let matched = rule
        .status
        .as_ref()
        .map(|s| s.matched_resources.clone())
        .unwrap_or_default();
    write_rule_status(ctx, rule, ready, matched).await;
}

async fn write_rule_status(
    ctx: &Context,
    rule: &SyncRule,
    ready: Condition,
    matched_resources: Vec<String>,
) {
    if !ctx.writes_allowed.load(std::sync::atomic::Ordering::SeqCst) {
        return;
    }
    let old = rule.status.clone().unwrap_or_default();
    let mut status = SyncRuleStatus {
        conditions: vec![ready],
        observed_generation: rule.metadata.generation,
        matched_resources,
    };
    carry_transition_times(
        &mut status.conditions,
        &old.conditions,
        rule.metadata.generation,
    );
    if rule.status.as_ref() == Some(&status) {
        return;
    }
    let api: Api<SyncRule> =
        Api::namespaced(ctx.client.clone(), &rule.namespace().unwrap_or_default());
    let patch = serde_json::json!({
        "apiVersion": "gitcontroller.io/v1alpha1",
        "kind": "SyncRule",
        "status": status,
    });
    if let Err(error) = api
        .patch_status(
            &rule.name_any(),
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await
    {
        tracing::warn!(rule = %rule.name_any(), %error, "could not update SyncRule status");
    }
}
