//! Status of GitRepositories and SyncRules, computed purely: from a sync's outcome (or a rule's
//! resolution) and the status before, nothing else. An unchanged situation yields an identical
//! status, so the caller writes only when it differs.

use super::report::Outcome;
use super::rules::ResolvedRule;
use crate::api::{
    Condition, ConditionStatus, ConditionType, GitRepository, GitRepositoryStatus, InventoryList,
    ObjectCounts, Reason, SyncRule, SyncRuleStatus,
};

fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn condition(
    type_: ConditionType,
    status: ConditionStatus,
    reason: Reason,
    message: String,
) -> Condition {
    Condition {
        type_: type_.as_str().into(),
        status,
        reason: reason.as_str().into(),
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

/// The first 8 characters of a commit id, as status and Events show it.
pub(super) fn short(commit: &str) -> String {
    commit.chars().take(8).collect()
}

/// The status a sync outcome calls for, given the repository as it was.
pub fn repository_status(repo: &GitRepository, outcome: Outcome<'_>) -> GitRepositoryStatus {
    use ConditionStatus::{False, True, Unknown};
    use ConditionType::{Ready, Reconciling, Stalled};
    let unset = GitRepositoryStatus::default();
    // Borrowed: the inventory alone may list thousands of objects.
    let old = repo.status.as_ref().unwrap_or(&unset);
    let generation = repo.metadata.generation;
    let mut status = GitRepositoryStatus {
        observed_generation: generation,
        last_synced_commit: old.last_synced_commit.clone(),
        last_synced_commit_short: old.last_synced_commit_short.clone(),
        last_sync_time: old.last_sync_time.clone(),
        objects: old.objects.clone(),
        inventory: Default::default(),
        conditions: Vec::new(),
    };
    match outcome {
        Err(error) => {
            status.inventory = old.inventory.clone();
            let reason = error.reason();
            status.conditions = if error.is_stalled() {
                vec![
                    condition(Ready, False, reason, error.to_string()),
                    condition(
                        Reconciling,
                        False,
                        reason,
                        "waiting for a change to the spec or its Secret".into(),
                    ),
                    condition(Stalled, True, reason, error.to_string()),
                ]
            } else {
                vec![
                    condition(Ready, False, reason, error.to_string()),
                    condition(Reconciling, True, Reason::RetryScheduled, "retrying".into()),
                    condition(Stalled, False, reason, "retrying".into()),
                ]
            };
        }
        Ok(report) => {
            let commit = report.commit.clone().unwrap_or_default();
            status.objects = Some(ObjectCounts {
                to_kubernetes: report.counts.to_kubernetes as i64,
                to_git: report.counts.to_git as i64,
                ignored: report.counts.ignored as i64,
            });
            status.inventory = report.inventory_list.clone().unwrap_or_else(|| {
                InventoryList::new(&super::convert::inventory_entries(&report.inventory))
            });
            let problems = report.problems();
            let (ready, reason, message) = if let Some(why) = report.stopped {
                (
                    Unknown,
                    Reason::Suspended,
                    format!(
                        "writes paused ({}); {} changes pending",
                        why.as_str(),
                        report.pending
                    ),
                )
            } else if let Some(first) = problems.first() {
                let message = problems
                    .iter()
                    .map(|p| p.message.as_str())
                    .collect::<Vec<_>>()
                    .join("; ");
                (False, first.reason, message)
            } else {
                (
                    True,
                    Reason::Synced,
                    format!("in sync with {}", short(&commit)),
                )
            };
            // Only a successful sync is a sync: the commit and time stay those of the last
            // one while writes are paused or something failed. A successful sync that found
            // everything as it was leaves them alone too, so an idle repository writes no
            // status.
            if ready == True
                && (old.last_synced_commit.as_deref() != Some(commit.as_str())
                    || report.acted()
                    || old.last_sync_time.is_none()
                    || !is_ready(old))
            {
                status.last_sync_time = Some(now());
                status.last_synced_commit = Some(commit.clone());
                status.last_synced_commit_short = Some(short(&commit));
            }
            let only_user_fixable = !problems.is_empty() && report.cluster.failed.is_empty();
            status.conditions = vec![
                condition(Ready, ready, reason, message.clone()),
                condition(
                    Reconciling,
                    False,
                    Reason::Idle,
                    "waiting for the next change".into(),
                ),
                if only_user_fixable {
                    condition(Stalled, True, reason, message)
                } else {
                    condition(Stalled, False, Reason::Progressing, String::new())
                },
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
        .any(|c| c.type_ == ConditionType::Ready.as_str() && c.status == ConditionStatus::True)
}

/// Whether `after` differs from `before` only in what a healthy repository's syncs move
/// forward: the synced commit, its time, the counts of objects, and the message of `Ready`
/// that names the commit. Both say Ready (and nothing else of a condition changed), for the
/// same generation, with the same inventory. Such a status may wait to be written
/// ([`super::repository::RepositoryState::status_write_wait`]); any other change may not.
pub fn only_progress(before: &GitRepositoryStatus, after: &GitRepositoryStatus) -> bool {
    let ready = ConditionType::Ready.as_str();
    is_ready(before)
        && is_ready(after)
        && before.observed_generation == after.observed_generation
        && before.conditions.len() == after.conditions.len()
        && before
            .conditions
            .iter()
            .zip(&after.conditions)
            .all(|(b, a)| {
                b.type_ == a.type_
                    && b.status == a.status
                    && b.reason == a.reason
                    && (b.message == a.message || a.type_ == ready)
                    && b.last_transition_time == a.last_transition_time
                    && b.observed_generation == a.observed_generation
            })
        && before.inventory == after.inventory
}

/// Whether the GitRepository a SyncRule names is there to sync with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RepositoryPresence {
    /// It exists and is not being deleted.
    Present,
    /// It is being deleted: its rules sync nothing any more.
    BeingDeleted,
    /// There is no GitRepository of that name in the rule's namespace.
    Missing,
}

/// The status of a SyncRule: whether it is usable, and the types it selects. A rule whose
/// `repositoryRef` names no GitRepository, or one being deleted, syncs nothing, and says so.
pub fn rule_status(
    rule: &SyncRule,
    resolved: &ResolvedRule,
    repository: RepositoryPresence,
) -> SyncRuleStatus {
    use ConditionStatus::{False, True};
    let matched_resources = resolved.matched_resources();
    let name = &rule.spec.repository_ref.name;
    let namespace = rule.metadata.namespace.as_deref().unwrap_or_default();
    let absent = match repository {
        RepositoryPresence::Present => None,
        RepositoryPresence::BeingDeleted => Some(format!(
            "GitRepository {name:?} in namespace {namespace:?} is being deleted; this rule syncs nothing"
        )),
        RepositoryPresence::Missing => Some(format!(
            "GitRepository {name:?} does not exist in namespace {namespace:?}; this rule syncs nothing until it does"
        )),
    };
    let ready = if let Some(message) = absent {
        condition(
            ConditionType::Ready,
            False,
            Reason::RepositoryNotFound,
            message,
        )
    } else {
        match &resolved.rule {
            Err(error) => condition(
                ConditionType::Ready,
                False,
                error.reason(),
                error.to_string(),
            ),
            Ok(_) if matched_resources.is_empty() => condition(
                ConditionType::Ready,
                False,
                Reason::NoMatchingResources,
                "no served resource type matches apiGroups/resources/kinds; waiting for one to be installed".into(),
            ),
            Ok(_) => condition(
                ConditionType::Ready,
                True,
                Reason::Resolved,
                format!("selects {} resource types", matched_resources.len()),
            ),
        }
    };
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
    status
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use gitcontroller_sync::{
        Counts, Diagnostic, DiagnosticReason, ObjectId, PruneLimit, PruneRefusal, Rule, Severity,
        SkipReason, SyncTo,
    };

    use super::super::convert::RuleError;
    use super::super::report::{ClusterOutcome, GitOutcome, Stop, SyncReport};
    use super::super::rules::InvalidRule;
    use super::*;
    use crate::Error;
    use crate::api::{GitRepositorySpec, SyncRuleSpec};

    fn repo(status: Option<GitRepositoryStatus>) -> GitRepository {
        let mut repo = GitRepository::new(
            "repo",
            serde_json::from_value::<GitRepositorySpec>(
                serde_json::json!({"url": "git://example.invalid/r.git"}),
            )
            .unwrap(),
        );
        repo.metadata.namespace = Some("ns".into());
        repo.metadata.generation = Some(3);
        repo.status = status;
        repo
    }

    fn id(name: &str) -> ObjectId {
        ObjectId {
            group: String::new(),
            kind: "ConfigMap".into(),
            namespace: Some("ns".into()),
            name: name.into(),
        }
    }

    fn report() -> SyncReport {
        SyncReport {
            commit: Some("0123456789abcdef".into()),
            counts: Counts {
                to_kubernetes: 2,
                to_git: 1,
                ignored: 0,
            },
            inventory: std::sync::Arc::new(BTreeSet::from([id("a")])),
            ..SyncReport::default()
        }
    }

    fn get<'a>(status: &'a GitRepositoryStatus, type_: &str) -> &'a Condition {
        status.conditions.iter().find(|c| c.type_ == type_).unwrap()
    }

    fn diagnostic(reason: DiagnosticReason, severity: Severity) -> Diagnostic {
        Diagnostic {
            severity,
            file: Some("broken.yaml".into()),
            line: Some(4),
            object: None,
            rule: None,
            reason,
            message: "does not parse".into(),
        }
    }

    #[test]
    fn a_clean_sync_is_ready_with_counts_commit_and_inventory() {
        let status = repository_status(&repo(None), Ok(&report()));
        let ready = get(&status, "Ready");
        assert_eq!(
            (ready.status, ready.reason.as_str(), ready.message.as_str()),
            (ConditionStatus::True, "Synced", "in sync with 01234567")
        );
        assert_eq!(get(&status, "Stalled").status, ConditionStatus::False);
        assert_eq!(status.last_synced_commit_short.as_deref(), Some("01234567"));
        assert_eq!(status.objects.as_ref().unwrap().to_kubernetes, 2);
        assert_eq!(status.inventory.entries().len(), 1);
        assert_eq!(status.observed_generation, Some(3));
        assert!(is_ready(&status));
    }

    #[test]
    fn an_unchanged_situation_yields_an_identical_status() {
        let first = repository_status(&repo(None), Ok(&report()));
        let again = repository_status(&repo(Some(first.clone())), Ok(&report()));
        assert_eq!(again, first, "no write is needed");
    }

    #[test]
    fn only_a_newer_commit_its_time_and_counts_are_progress() {
        let synced = repository_status(&repo(None), Ok(&report()));
        let at = |commit: &str| SyncReport {
            commit: Some(commit.into()),
            ..report()
        };
        // A newer commit, with other counts: progress.
        let mut newer = at("fedcba9876543210");
        newer.counts.to_git = 7;
        let moved = repository_status(&repo(Some(synced.clone())), Ok(&newer));
        assert_ne!(moved.last_synced_commit, synced.last_synced_commit);
        assert_ne!(get(&moved, "Ready").message, get(&synced, "Ready").message);
        assert!(only_progress(&synced, &moved));

        // The inventory changed: not progress alone.
        let mut applied = at("fedcba9876543210");
        applied.inventory = std::sync::Arc::new(BTreeSet::from([id("a"), id("b")]));
        let grown = repository_status(&repo(Some(synced.clone())), Ok(&applied));
        assert!(!only_progress(&synced, &grown));

        // Ready no more, or not yet.
        let failed = repository_status(
            &repo(Some(synced.clone())),
            Err(&Error::Internal("boom".into())),
        );
        assert!(!only_progress(&synced, &failed));
        assert!(!only_progress(&failed, &synced));

        // A new generation of the spec.
        let mut respecified = repo(Some(synced.clone()));
        respecified.metadata.generation = Some(4);
        let regenerated = repository_status(&respecified, Ok(&at("fedcba9876543210")));
        assert!(!only_progress(&synced, &regenerated));

        // Another condition's message.
        let mut reworded = moved.clone();
        reworded.conditions[1].message = "something else".into();
        assert!(!only_progress(&synced, &reworded));
    }

    #[test]
    fn problems_are_named_with_their_typed_reason_and_stall_only_when_the_user_must_act() {
        let mut with_problems = report();
        with_problems.invalid_rules = vec![InvalidRule {
            name: "bad-selector".into(),
            error: RuleError::LabelSelector {
                text: "app in (web".into(),
                error: "unclosed".into(),
            },
            scope: Rule::new("bad-selector", SyncTo::Git),
        }];
        with_problems.diagnostics = vec![
            diagnostic(
                DiagnosticReason::SkippedInput(SkipReason::ParseError),
                Severity::Error,
            ),
            // Not a problem of its own.
            diagnostic(DiagnosticReason::NotAnObject, Severity::Warning),
            diagnostic(DiagnosticReason::SecretExportRefused, Severity::Warning),
        ];
        let status = repository_status(&repo(None), Ok(&with_problems.clone()));
        let ready = get(&status, "Ready");
        assert_eq!(ready.status, ConditionStatus::False);
        assert_eq!(ready.reason, "InvalidRule", "the first problem names it");
        assert!(ready.message.contains("bad-selector"), "{}", ready.message);
        assert!(ready.message.contains("app in (web"), "{}", ready.message);
        assert!(ready.message.contains("broken.yaml:4"), "{}", ready.message);
        assert_eq!(ready.message.matches("; ").count(), 2, "{}", ready.message);
        assert_eq!(get(&status, "Stalled").status, ConditionStatus::True);

        with_problems.invalid_rules.clear();
        with_problems.cluster.failed = vec![(id("b"), "forbidden".into())];
        let status = repository_status(&repo(None), Ok(&with_problems));
        assert_eq!(get(&status, "Ready").reason, "SourceIncomplete");
        assert_eq!(
            get(&status, "Stalled").status,
            ConditionStatus::False,
            "a failed write may succeed on retry"
        );
    }

    #[test]
    fn a_refused_prune_is_stalled_and_leaves_the_last_synced_commit() {
        let synced = repository_status(&repo(None), Ok(&report()));
        let refused = SyncReport {
            commit: Some("fedcba9876543210".into()),
            prune_refused: Some(PruneRefusal::OverLimit {
                deleting: 12,
                inventory: 20,
                allowed: 10,
                limit: PruneLimit::default(),
            }),
            ..report()
        };
        let status = repository_status(&repo(Some(synced.clone())), Ok(&refused));
        let ready = get(&status, "Ready");
        assert_eq!(
            (ready.status, ready.reason.as_str()),
            (ConditionStatus::False, "PruneLimitExceeded")
        );
        assert!(
            ready
                .message
                .contains("would delete 12 of 20 objects, limit 10"),
            "{}",
            ready.message
        );
        assert_eq!(get(&status, "Stalled").status, ConditionStatus::True);
        assert_eq!(
            status.last_synced_commit, synced.last_synced_commit,
            "a path emptied in the refused commit still counts as newer"
        );
    }

    #[test]
    fn paused_writes_are_unknown_with_the_pending_count() {
        let paused = SyncReport {
            stopped: Some(Stop::Suspended),
            pending: 3,
            ..report()
        };
        let status = repository_status(&repo(None), Ok(&paused));
        let ready = get(&status, "Ready");
        assert_eq!(
            (ready.status, ready.reason.as_str(), ready.message.as_str()),
            (
                ConditionStatus::Unknown,
                "Suspended",
                "writes paused (suspended); 3 changes pending"
            )
        );
    }

    #[test]
    fn last_sync_time_moves_only_when_something_happened() {
        let mut old = repository_status(&repo(None), Ok(&report()));
        old.last_sync_time = Some("2020-01-01T00:00:00Z".into());
        let quiet = repository_status(&repo(Some(old.clone())), Ok(&report()));
        assert_eq!(quiet.last_sync_time, old.last_sync_time);
        let acted = SyncReport {
            git: GitOutcome {
                written: vec![id("c")],
                ..GitOutcome::default()
            },
            cluster: ClusterOutcome::default(),
            ..report()
        };
        let busy = repository_status(&repo(Some(old.clone())), Ok(&acted));
        assert_ne!(busy.last_sync_time, old.last_sync_time);
    }

    #[test]
    fn last_sync_time_and_commit_move_only_with_a_successful_sync() {
        let mut old = repository_status(&repo(None), Ok(&report()));
        old.last_sync_time = Some("2020-01-01T00:00:00Z".into());
        let new_commit_that_failed = SyncReport {
            commit: Some("fedcba9876543210".into()),
            cluster: ClusterOutcome {
                applied: vec![id("a")],
                failed: vec![(id("b"), "forbidden".into())],
                ..ClusterOutcome::default()
            },
            ..report()
        };
        let failed = repository_status(&repo(Some(old.clone())), Ok(&new_commit_that_failed));
        assert_eq!(get(&failed, "Ready").status, ConditionStatus::False);
        assert_eq!(failed.last_sync_time, old.last_sync_time);
        assert_eq!(failed.last_synced_commit, old.last_synced_commit);
        let paused = SyncReport {
            commit: Some("fedcba9876543210".into()),
            stopped: Some(Stop::NotLeader),
            ..report()
        };
        let paused = repository_status(&repo(Some(old.clone())), Ok(&paused));
        assert_eq!(paused.last_sync_time, old.last_sync_time);
        assert_eq!(paused.last_synced_commit, old.last_synced_commit);

        // Ready again, with nothing to do: it is a successful sync after failed ones.
        let recovered = repository_status(&repo(Some(failed)), Ok(&report()));
        assert!(is_ready(&recovered));
        assert_ne!(recovered.last_sync_time, old.last_sync_time);
        let fixed = SyncReport {
            commit: Some("fedcba9876543210".into()),
            ..report()
        };
        let fixed = repository_status(&repo(Some(old.clone())), Ok(&fixed));
        assert_eq!(
            fixed.last_synced_commit.as_deref(),
            Some("fedcba9876543210")
        );
        assert_ne!(fixed.last_sync_time, old.last_sync_time);
    }

    #[test]
    fn errors_keep_the_last_sync_and_stall_only_when_retrying_cannot_help() {
        let synced = repository_status(&repo(None), Ok(&report()));
        let auth = Error::Git(gitcontroller_git::Error::Auth("bad password".into()));
        let status = repository_status(&repo(Some(synced.clone())), Err(&auth));
        assert_eq!(get(&status, "Ready").reason, "AuthenticationFailed");
        assert_eq!(get(&status, "Stalled").status, ConditionStatus::True);
        assert_eq!(get(&status, "Reconciling").status, ConditionStatus::False);
        assert_eq!(status.last_synced_commit, synced.last_synced_commit);
        assert_eq!(status.inventory, synced.inventory);

        let status = repository_status(&repo(Some(synced)), Err(&Error::GitBusy));
        assert_eq!(get(&status, "Ready").reason, "GitUnreachable");
        assert_eq!(get(&status, "Stalled").status, ConditionStatus::False);
        assert_eq!(get(&status, "Reconciling").reason, "RetryScheduled");
    }

    fn sync_rule() -> SyncRule {
        let mut rule = SyncRule::new(
            "rule",
            serde_json::from_value::<SyncRuleSpec>(serde_json::json!({
                "repositoryRef": {"name": "repo"}, "syncTo": "git"
            }))
            .unwrap(),
        );
        rule.metadata.namespace = Some("ns".into());
        rule
    }

    fn resolved(rule: std::result::Result<(), RuleError>) -> ResolvedRule {
        ResolvedRule {
            name: "rule".into(),
            rule: rule.map(|()| super::super::convert::rule(&sync_rule()).unwrap()),
            types: BTreeMap::new(),
        }
    }

    #[test]
    fn rule_statuses_name_what_is_wrong() {
        use RepositoryPresence::{BeingDeleted, Missing, Present};
        let reason = |resolved: &ResolvedRule, presence| {
            rule_status(&sync_rule(), resolved, presence).conditions[0]
                .reason
                .clone()
        };
        assert_eq!(reason(&resolved(Ok(())), Missing), "RepositoryNotFound");
        assert_eq!(
            reason(&resolved(Ok(())), BeingDeleted),
            "RepositoryNotFound"
        );
        let deleting = rule_status(&sync_rule(), &resolved(Ok(())), BeingDeleted);
        assert!(
            deleting.conditions[0].message.contains("is being deleted"),
            "{:?}",
            deleting.conditions[0]
        );
        assert_eq!(reason(&resolved(Ok(())), Present), "NoMatchingResources");
        let bad_filter = RuleError::Filter {
            filter: "spec".into(),
            error: "must start with /".into(),
        };
        assert_eq!(reason(&resolved(Err(bad_filter)), Present), "InvalidFilter");
        let bad_selector = RuleError::LabelSelector {
            text: "a in (".into(),
            error: "unclosed".into(),
        };
        assert_eq!(
            reason(&resolved(Err(bad_selector)), Present),
            "InvalidSelector"
        );
        let mut selecting = resolved(Ok(()));
        selecting.types.insert(
            crate::cluster::TypeKey {
                group: "apps".into(),
                kind: "Deployment".into(),
            },
            crate::cluster::discovery::CatalogEntry {
                resource: kube::discovery::ApiResource {
                    group: "apps".into(),
                    version: "v1".into(),
                    api_version: "apps/v1".into(),
                    kind: "Deployment".into(),
                    plural: "deployments".into(),
                },
                namespaced: true,
            },
        );
        let status = rule_status(&sync_rule(), &selecting, Present);
        assert_eq!(status.conditions[0].reason, "Resolved");
        assert_eq!(status.matched_resources, ["deployments.apps"]);
        assert_eq!(
            rule_status(&sync_rule(), &selecting, Missing).matched_resources,
            ["deployments.apps"],
            "what it would select, also without its repository"
        );
    }
}
