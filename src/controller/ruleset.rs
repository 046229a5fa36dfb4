//! The SyncRules as a whole, kept in one place: every rule's status (usable? which types? does
//! its repository exist?), and the release of the watchers of repositories that are gone (each
//! repository states its own watchers when it syncs: their keys depend on its identity).
//! Refreshed whenever `Context::rules_changed` is notified: a rule's spec, the catalog, or the
//! set of repositories changed.

use std::collections::HashMap;
use std::sync::Arc;

use kube::ResourceExt;
use kube::runtime::reflector::Store;
use tokio::sync::watch;

use super::context::Context;
use super::repository::RepoKey;
use super::status::RepositoryPresence;
use super::{rules, status};
use crate::api::GitRepository;

/// Refreshes the rules on every change, from the moment both the repositories and the rules
/// are listed (`*_listed` turn true).
pub fn spawn(
    ctx: Arc<Context>,
    repositories: Store<GitRepository>,
    mut repositories_listed: watch::Receiver<bool>,
    mut rules_listed: watch::Receiver<bool>,
) {
    tokio::spawn(async move {
        // A rule's status says whether its repository exists: wait until both are listed.
        if repositories_listed.wait_for(|l| *l).await.is_err()
            || rules_listed.wait_for(|l| *l).await.is_err()
        {
            return;
        }
        loop {
            refresh(&ctx, &repositories).await;
            ctx.rules_changed.notified().await;
        }
    });
}

/// Writes each SyncRule's status where it changed and makes the watcher set exactly what the
/// rules need.
async fn refresh(ctx: &Context, repositories: &Store<GitRepository>) {
    let catalog = ctx.catalog().await;
    // A repository being deleted no longer counts: its rules sync nothing.
    let presence: HashMap<RepoKey, RepositoryPresence> = repositories
        .state()
        .iter()
        .map(|repo| {
            let presence = if repo.metadata.deletion_timestamp.is_some() {
                RepositoryPresence::BeingDeleted
            } else {
                RepositoryPresence::Present
            };
            (RepoKey::of(repo), presence)
        })
        .collect();
    for rule in ctx.rules.state() {
        let repository = RepoKey::new(
            rule.namespace().unwrap_or_default(),
            &rule.spec.repository_ref.name,
        );
        let presence = presence
            .get(&repository)
            .copied()
            .unwrap_or(RepositoryPresence::Missing);
        let resolved = rules::resolve(&rule, &catalog);
        let new_status = status::rule_status(&rule, &resolved, presence);
        if rule.status.as_ref() == Some(&new_status) || !ctx.may_write() {
            continue;
        }
        if let Err(error) = ctx.writer().apply_status(rule.as_ref(), &new_status).await {
            tracing::warn!(rule = %rule.name_any(), %error, "could not update SyncRule status");
        }
    }
    // Each repository states its own watchers when it syncs (their keys depend on its
    // identity); those of repositories that are gone are released here.
    ctx.watchers.retain_repositories(|repository| {
        presence.get(repository) == Some(&RepositoryPresence::Present)
    });
    tracing::debug!(
        rules = ctx.rules.state().len(),
        watched = ctx.watchers.len(),
        "rules refreshed"
    );
    ctx.metrics.set_watched_resources(ctx.watchers.len() as i64);
}
