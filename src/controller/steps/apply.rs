//! Step 5: the plan's cluster side — server-side apply and delete, with the writer the sync
//! state carries.

use futures::StreamExt;
use gitcontroller_sync::ClusterAction;

use super::super::context::Context;
use super::super::report::{ClusterOutcome, Stop};
use super::super::state::{Flow, Mode, SyncState, needs};
use super::super::writer::Writer;
use crate::cluster::ResourceCatalog;
use crate::cluster::discovery::TypeKey;
use crate::error::Result;

/// Server-side applies in flight at once per sync.
const APPLY_CONCURRENCY: usize = 16;

/// Why this sync may not write at all, if so.
fn writes_paused(ctx: &Context, state: &SyncState) -> Option<Stop> {
    if state.repo.spec.suspend {
        Some(Stop::Suspended)
    } else if !ctx.may_write() {
        Some(Stop::NotLeader)
    } else {
        None
    }
}

/// Fills `state.applied`. Stops the sync (nothing written, in either direction) while the
/// repository is suspended or this replica may not write; with writes off (`diff`) it does
/// nothing.
pub async fn apply(ctx: &Context, state: &mut SyncState) -> Result<Flow> {
    if state.mode == Mode::DryRun {
        return Ok(Flow::Continue);
    }
    if let Some(why) = writes_paused(ctx, state) {
        return Ok(Flow::Stop(why));
    }
    let planned = needs(&state.planned, "plan")?;
    let catalog = needs(&state.rules, "resolve-rules")?.catalog.clone();
    // Owned actions and clones of the writer and catalog per write: the futures run
    // concurrently and must be `Send` for any lifetime.
    let results: Vec<(ClusterAction, Result<()>)> =
        futures::stream::iter(planned.plan.to_cluster.clone())
            .map(|action| {
                let writer = state.writer.clone();
                let catalog = catalog.clone();
                async move {
                    let result = write(&writer, &catalog, &action).await;
                    (action, result)
                }
            })
            .buffer_unordered(APPLY_CONCURRENCY)
            .collect()
            .await;

    let (namespace, name) = (&state.key.namespace, &state.key.name);
    let mut outcome = ClusterOutcome {
        inventory: planned.inputs.inventory.clone(),
        ..ClusterOutcome::default()
    };
    for (action, result) in results {
        match (action, result) {
            (ClusterAction::Apply { id, create, .. }, Ok(())) => {
                outcome.inventory.insert(id.clone());
                if create {
                    ctx.metrics
                        .sync_operation(namespace, name, "kubernetes", "create");
                    outcome.created.push(id.clone());
                } else {
                    ctx.metrics
                        .sync_operation(namespace, name, "kubernetes", "apply");
                    outcome.applied.push(id.clone());
                }
            }
            (ClusterAction::Delete { id }, Ok(())) => {
                outcome.inventory.remove(&id);
                ctx.metrics
                    .sync_operation(namespace, name, "kubernetes", "delete");
                outcome.deleted.push(id.clone());
            }
            (ClusterAction::Apply { id, .. } | ClusterAction::Delete { id }, Err(error)) => {
                outcome.failed.push((id.clone(), failure(error)));
            }
        }
    }
    outcome.created.sort();
    outcome.applied.sort();
    outcome.deleted.sort();
    outcome.failed.sort();
    state.applied = Some(outcome);
    // Leadership may have ended during the applies: then nothing more is written.
    Ok(match writes_paused(ctx, state) {
        Some(why) => Flow::Stop(why),
        None => Flow::Continue,
    })
}

/// Carries out one cluster action.
async fn write(writer: &Writer, catalog: &ResourceCatalog, action: &ClusterAction) -> Result<()> {
    let id = action.id();
    let key = TypeKey {
        group: id.group.clone(),
        kind: id.kind.clone(),
    };
    let Some(entry) = catalog.get(&key) else {
        return Err(crate::Error::InvalidSpec(format!(
            "the API server does not serve {key}"
        )));
    };
    match action {
        ClusterAction::Apply { object, .. } => writer.apply(entry, object).await,
        ClusterAction::Delete { id } => {
            writer
                .delete(entry, id.namespace.as_deref(), &id.name)
                .await
        }
    }
}

/// A failed write as the status and the Event name it: the API server's own words.
fn failure(error: crate::Error) -> String {
    match error {
        crate::Error::Kube(error) => error.to_string(),
        other => other.to_string(),
    }
}
