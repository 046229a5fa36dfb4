//! Step 4: the plan, pure (`gitcontroller_sync::plan`), from the rules, the snapshot and the
//! live objects — with the manifests out of the repository's reach left out.

use std::sync::Arc;

use gitcontroller_sync::{ObjectId, PlanOptions, PruneLimit};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::super::context::Context;
use super::super::state::{Flow, GuardedPlan, PlanInputs, Planned, SyncState, needs};
use super::fetch::read_whole;
use crate::access::identity::{PlaintextSecrets, Tenancy};
use crate::api::GitRepository;
use crate::cluster::discovery::TypeKey;
use crate::error::{Error, Result};

/// The planner's switches for a repository.
fn plan_options(repo: &GitRepository, plaintext_secrets: PlaintextSecrets) -> PlanOptions {
    PlanOptions {
        prune: repo.spec.prune,
        allow_plaintext_secrets: plaintext_secrets.allowed(),
        // FileChange paths are relative to spec.path already.
        layout_root: String::new(),
        // Nothing here reads the in-sync objects but the applied ones and the counts.
        list_noops: false,
        ..PlanOptions::default()
    }
}

/// What becomes of the repository's `allowPlaintextSecrets` under the admin's flags.
fn plaintext_secrets(tenancy: &Tenancy, repo: &GitRepository) -> PlaintextSecrets {
    tenancy.plaintext_secrets(repo.spec.allow_plaintext_secrets)
}

/// `spec.pruneLimit` of a repository. The schema admits only valid limits; anything else is an
/// invalid spec rather than a guess.
fn prune_limit(repo: &GitRepository) -> Result<PruneLimit> {
    let invalid = |text: String| {
        Error::InvalidSpec(format!(
            "pruneLimit {text:?} is neither a count (10) nor a percentage from 0% to 100% (\"50%\")"
        ))
    };
    match &repo.spec.prune_limit {
        None => Ok(PruneLimit::default()),
        Some(IntOrString::Int(n)) => u32::try_from(*n)
            .map(PruneLimit::Count)
            .map_err(|_| invalid(n.to_string())),
        Some(IntOrString::String(text)) => {
            PruneLimit::parse(text).map_err(|_| invalid(text.clone()))
        }
    }
}

/// Fills `state.planned`. Asks, once per type and namespace, whether the identity may read
/// what the manifests name, so that the plan (here and on every push attempt) leaves out the
/// manifests out of its reach.
pub async fn plan(ctx: &Context, state: &mut SyncState) -> Result<Flow> {
    let types = needs(&state.rules, "resolve-rules")?
        .catalog
        .resource_types();
    let parsed = state.repository.parse_cache().clone();
    let snapshot = &needs(&state.source, "fetch")?.snapshot;
    if !parsed.covers(snapshot, &types) {
        // The snapshot left out the text of files parsed for other types (a type came or
        // went since): read it whole again.
        let whole = read_whole(ctx, state, snapshot.commit.clone()).await?;
        if let Some(source) = state.source.as_mut() {
            source.snapshot = whole;
        }
    }
    let rules = needs(&state.rules, "resolve-rules")?;
    let source = needs(&state.source, "fetch")?;
    let live = needs(&state.live, "observe-live")?;
    let inventory = state.previous_inventory();
    let reads = state
        .reads
        .as_mut()
        .ok_or_else(|| crate::Error::Internal("the observe-live step has not run".into()))?;
    let parsed_snapshot = parsed
        .parse(&source.snapshot, &types)
        .map(Arc::new)
        .map_err(|e| Error::Internal(format!("{} could not be read from Git", e.path)))?;
    let previous = state.repository.last_plan();
    // The answer depends on the type and namespace only: asked once for each run of
    // manifests that share them (most of a repository), not once per manifest. When the
    // files are the last plan's but for those parsed since, what it asked about covers theirs:
    // asked again, with the types and namespaces of the new files, and no other manifest read.
    let candidates: Vec<&ObjectId> = match previous
        .as_deref()
        .and_then(|last| Some((last, last.from.manifests_parsed_since(&parsed_snapshot)?)))
    {
        Some((last, new)) => last.asked.iter().chain(new.map(|m| &m.id)).collect(),
        None => parsed_snapshot.manifests().map(|m| &m.id).collect(),
    };
    let mut asked: Vec<ObjectId> = Vec::new();
    let mut last_asked: Option<&ObjectId> = None;
    for id in candidates {
        if last_asked.is_some_and(|last| {
            last.kind == id.kind && last.group == id.group && last.namespace == id.namespace
        }) {
            continue;
        }
        last_asked = Some(id);
        asked.push(id.clone());
        let key = TypeKey {
            group: id.group.clone(),
            kind: id.kind.clone(),
        };
        if let Some(entry) = rules.catalog.get(&key) {
            // Asked now; the answer is kept in the plan's reach.
            let _within_reach = reads.check(id, entry).await?;
        }
    }
    // One of each, for the next plan.
    asked.sort_unstable();
    asked.dedup_by(|a, b| (&a.group, &a.kind, &a.namespace) == (&b.group, &b.kind, &b.namespace));
    let plaintext_secrets = plaintext_secrets(&ctx.config.tenancy, &state.repo);
    let inputs = Arc::new(PlanInputs {
        rules: rules.rules.clone(),
        invalid_rules: rules.invalid.iter().map(|r| r.for_planner()).collect(),
        types,
        live: live.objects().clone(),
        inventory,
        options: plan_options(&state.repo, plaintext_secrets),
        prune_limit: prune_limit(&state.repo)?,
        last_synced_commit: state
            .repo
            .status
            .as_ref()
            .and_then(|s| s.last_synced_commit.clone()),
        parsed,
        reach: reads.reach(),
    });
    let GuardedPlan {
        mut plan,
        mut last,
        prune_refused,
        refused,
    } = inputs.plan_parsed(&source.snapshot, parsed_snapshot, previous.as_deref());
    last.asked = asked;
    state.repository.remember_plan(last);
    // Moved, not copied (nothing reads them from the plan after this).
    let in_sync = std::mem::take(&mut plan.applied_live);
    tracing::debug!(
        fetched = source.fetched.map(|r| r.as_str()),
        files = source.snapshot.files.len(),
        live = inputs.live.len(),
        rules = inputs.rules.len(),
        to_cluster = plan.to_cluster.len(),
        to_git = plan.to_git.len(),
        refused = refused.len(),
        diagnostics = plan.diagnostics.len(),
        prune_refused = prune_refused.is_some(),
        "planned"
    );
    for diagnostic in &plan.diagnostics {
        tracing::debug!(%diagnostic, "plan diagnostic");
    }
    state.planned = Some(Planned {
        inputs,
        plan,
        refused,
        in_sync,
        plaintext_secrets,
        stored: Default::default(),
        prune_refused,
    });
    Ok(Flow::Continue)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(limit: serde_json::Value) -> GitRepository {
        let mut spec = serde_json::json!({"url": "git://example.invalid/r.git"});
        if !limit.is_null() {
            spec["pruneLimit"] = limit;
        }
        GitRepository::new("repo", serde_json::from_value(spec).unwrap())
    }

    #[test]
    fn prune_limits_read_as_counts_or_percentages_and_default_to_half() {
        use serde_json::json;
        assert_eq!(
            prune_limit(&repo(json!(null))).unwrap(),
            PruneLimit::default()
        );
        assert_eq!(
            PruneLimit::parse(crate::api::DEFAULT_PRUNE_LIMIT).unwrap(),
            PruneLimit::default(),
            "the schema's default is the planner's"
        );
        assert_eq!(prune_limit(&repo(json!(3))).unwrap(), PruneLimit::Count(3));
        assert_eq!(
            prune_limit(&repo(json!("20%"))).unwrap(),
            PruneLimit::Percent(20)
        );
        let mut cleared = repo(json!(null));
        cleared.spec.prune_limit = None;
        assert_eq!(prune_limit(&cleared).unwrap(), PruneLimit::default());
        assert!(prune_limit(&repo(json!(-1))).is_err());
        assert!(prune_limit(&repo(json!("half"))).is_err());
    }
}
