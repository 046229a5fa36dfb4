//! Step 4: the plan, pure (`gitcontroller_sync::plan`), from the rules, the snapshot and the
//! live objects.

use std::sync::Arc;

use gitcontroller_sync::PlanOptions;

use super::super::context::Context;
use super::super::state::{Flow, PlanInputs, Planned, SyncState, needs};
use crate::api::GitRepository;
use crate::error::Result;

/// The planner's switches for a repository.
fn plan_options(repo: &GitRepository) -> PlanOptions {
    PlanOptions {
        prune: repo.spec.prune,
        allow_plaintext_secrets: repo.spec.allow_plaintext_secrets,
        // FileChange paths are relative to spec.path already.
        layout_root: String::new(),
        ..PlanOptions::default()
    }
}

/// Fills `state.planned`.
pub async fn plan(_ctx: &Context, state: &mut SyncState) -> Result<Flow> {
    let rules = needs(&state.rules, "resolve-rules")?;
    let source = needs(&state.source, "fetch")?;
    let live = needs(&state.live, "observe-live")?;
    let inputs = Arc::new(PlanInputs {
        rules: rules.rules.clone(),
        types: rules.catalog.resource_types(),
        live: live.objects.clone(),
        inventory: state.previous_inventory(),
        options: plan_options(&state.repo),
        parsed: state.repository.parse_cache().clone(),
    });
    let plan = inputs.plan(&source.snapshot);
    tracing::debug!(
        fetched = source.fetched.map(|r| r.as_str()),
        files = source.snapshot.files.len(),
        live = inputs.live.len(),
        rules = inputs.rules.len(),
        to_cluster = plan.to_cluster.len(),
        to_git = plan.to_git.len(),
        diagnostics = plan.diagnostics.len(),
        "planned"
    );
    for diagnostic in &plan.diagnostics {
        tracing::debug!(%diagnostic, "plan diagnostic");
    }
    state.planned = Some(Planned {
        inputs,
        plan,
        stored: Default::default(),
    });
    Ok(Flow::Continue)
}
