//! Step 3: the live objects of the selected types, from the watchers' stores.

use std::sync::Arc;
use std::time::Duration;

use super::super::context::Context;
use super::super::state::{Flow, LiveState, SyncState, needs};
use crate::error::{Error, Result};

/// How long a new watcher may take for its initial list.
const INITIAL_LIST_TIMEOUT: Duration = Duration::from_secs(30);

/// Fills `state.live`: every object of the types the usable rules select. A watcher is
/// started for a type no running watcher covers yet; stopping the ones no rule needs is the
/// rule set's job.
pub async fn observe_live(ctx: &Context, state: &mut SyncState) -> Result<Flow> {
    let rules = needs(&state.rules, "resolve-rules")?;
    let stores = ctx.watchers.ensure(&rules.types);
    ctx.metrics.set_watched_resources(ctx.watchers.len() as i64);
    let mut objects = Vec::new();
    for watched in stores.values() {
        let entry = &watched.entry;
        if !matches!(
            tokio::time::timeout(INITIAL_LIST_TIMEOUT, watched.wait_listed()).await,
            Ok(true)
        ) {
            return Err(Error::Internal(format!(
                "the watch of {} did not finish its initial list within {INITIAL_LIST_TIMEOUT:?}",
                entry.resource.plural
            )));
        }
        // Shared, not copied: the stores hold each object once, compacted as it arrived.
        objects.extend(watched.store.state().iter().map(|o| o.object().clone()));
    }
    state.live = Some(LiveState {
        objects: Arc::new(objects),
    });
    Ok(Flow::Continue)
}
