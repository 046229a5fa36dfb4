//! Step 1: resolve the repository's SyncRules against the served resource types.

use super::super::context::Context;
use super::super::rules::ResolvedRules;
use super::super::state::{Flow, SyncState};
use crate::error::Result;

/// Fills `state.rules`: the usable rules, the invalid ones (reported, not fatal) and the types
/// to read live objects of. Writes no SyncRule status: the rule set does that, in one place.
pub async fn resolve_rules(ctx: &Context, state: &mut SyncState) -> Result<Flow> {
    let rules = ctx.rules_of(&state.key);
    let resolved = ResolvedRules::resolve(&rules, ctx.catalog().await);
    for invalid in &resolved.invalid {
        tracing::debug!(rule = %invalid.name, error = %invalid.error, "rule skipped");
    }
    state.rules = Some(resolved);
    Ok(Flow::Continue)
}
