//! Step 6: the plan's cluster side — server-side apply and delete, with the writer the sync
//! state carries.

use std::sync::Arc;

use futures::StreamExt;
use gitcontroller_sync::{ClusterAction, ObjectId};

use super::super::context::Context;
use super::super::report::{ClusterOutcome, Stop};
use super::super::repository::{Inventory, LastClaim, RepoKey};
use super::super::state::{Flow, Mode, SyncState, needs};
use super::super::verdicts::BodyDigest;
use super::super::writer::{OBJECT_REQUESTS_IN_FLIGHT, Writer};
use crate::access::Refusal;
use crate::access::ownership::{OWNER_ANNOTATION, Owner, claim, conflict_message, is_stamped_by};
use crate::access::scope::may_see_repositories;
use crate::cluster::LiveObject;
use crate::cluster::ResourceCatalog;
use crate::cluster::apply::Stored;
use crate::cluster::discovery::{CatalogEntry, TypeKey};
use crate::error::Result;

/// Why this sync may not write at all, if so.
pub(super) fn writes_paused(ctx: &Context, state: &SyncState) -> Option<Stop> {
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
/// nothing. Every apply made is remembered as changing nothing when made again to what it
/// stored (see [`Verdicts`](super::super::verdicts::Verdicts)).
pub async fn apply(ctx: &Context, state: &mut SyncState) -> Result<Flow> {
    if state.mode == Mode::DryRun {
        return Ok(Flow::Continue);
    }
    if let Some(why) = writes_paused(ctx, state) {
        return Ok(Flow::Stop(why));
    }
    let planned = needs(&state.planned, "plan")?;
    let catalog = needs(&state.rules, "resolve-rules")?.catalog.clone();
    let live = needs(&state.live, "observe-live")?;
    // Only what this repository owns is written; the rest is left alone and reported.
    let mut to_cluster = planned.plan.to_cluster.clone();
    let objects = &planned.inputs.live;
    // An object in sync that the last sync found stamped by this repository, and that has not
    // changed since (the very object), is stamped still: not read again.
    let last = state.repository.last_claim();
    let mut stamped = vec![false; objects.len()];
    let to_check: Vec<&LiveObject> = planned
        .in_sync
        .iter()
        .filter_map(|&at| {
            let object = objects.get(at)?;
            let known = last.as_ref().is_some_and(|last| {
                last.stamped.get(at) == Some(&true)
                    && last
                        .live
                        .get(at)
                        .is_some_and(|then| Arc::ptr_eq(then, object))
            });
            stamped[at] = known || is_stamped_by(&**object, &state.key);
            (!known).then_some(&**object)
        })
        .collect();
    let claims = claim(
        &state.key,
        &mut to_cluster,
        to_check,
        |id| live.get(id),
        &planned.inputs.inventory,
    );
    state.repository.remember_claim(LastClaim {
        live: Arc::clone(objects),
        stamped,
    });
    let mut outcome = ClusterOutcome {
        inventory: planned.inputs.inventory.clone(),
        ..ClusterOutcome::default()
    };
    for (id, owner) in &claims.conflicts {
        let visible = match owner {
            Owner::Repository(other) => {
                may_see_repositories(&state.identity, &other.namespace, &ctx.reviews).await?
            }
            Owner::Unmanaged => false,
        };
        outcome
            .conflicts
            .push((id.clone(), conflict_message(owner, visible, &state.key)));
    }
    for id in &claims.released {
        forget(&mut outcome.inventory, id);
    }
    for id in &claims.to_stamp {
        match stamp_owner(&state.writer, &catalog, id, &state.key).await {
            Ok(()) => remember(&mut outcome.inventory, id),
            Err(error) => record_failure(&mut outcome, id, error),
        }
    }
    // Owned actions and clones of the writer and catalog per write: the futures run
    // concurrently and must be `Send` for any lifetime. Each result is recorded as it comes
    // (metrics included), while the rest are still in flight.
    let mut results = futures::stream::iter(to_cluster)
        .map(|action| {
            let writer = state.writer.clone();
            let catalog = catalog.clone();
            async move {
                let result = write(&writer, &catalog, &action).await;
                (action, result)
            }
        })
        .buffer_unordered(OBJECT_REQUESTS_IN_FLIGHT);

    let (namespace, name) = (&state.key.namespace, &state.key.name);
    while let Some((action, result)) = results.next().await {
        match (action, result) {
            (
                ClusterAction::Apply {
                    id, create, object, ..
                },
                Ok(stored),
            ) => {
                if let Some(stored) = stored {
                    let version = stored.metadata.resource_version.clone();
                    state.repository.verdicts().remember(
                        &id,
                        BodyDigest::of(&object),
                        version.unwrap_or_default(),
                    );
                    outcome.references.insert(id.clone(), stored.reference());
                }
                remember(&mut outcome.inventory, &id);
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
            (ClusterAction::Delete { id }, Ok(_)) => {
                state.repository.verdicts().forget(&id);
                forget(&mut outcome.inventory, &id);
                ctx.metrics
                    .sync_operation(namespace, name, "kubernetes", "delete");
                outcome.deleted.push(id.clone());
            }
            (ClusterAction::Apply { id, .. } | ClusterAction::Delete { id }, Err(error)) => {
                record_failure(&mut outcome, &id, error);
            }
        }
    }
    drop(results);
    outcome.created.sort();
    outcome.applied.sort();
    outcome.deleted.sort();
    outcome.failed.sort();
    outcome.forbidden.sort();
    outcome.conflicts.sort();
    state.applied = Some(outcome);
    // Leadership may have ended during the applies: then nothing more is written.
    Ok(match writes_paused(ctx, state) {
        Some(why) => Flow::Stop(why),
        None => Flow::Continue,
    })
}

/// Adds `id` to the inventory. Shared with the plan inputs (and the previous sync): copied
/// only when it really changes, which an apply of an object it lists does not.
fn remember(inventory: &mut Inventory, id: &ObjectId) {
    if !inventory.contains(id) {
        Arc::make_mut(inventory).insert(id.clone());
    }
}

/// Removes `id` from the inventory, copying it only if it listed `id`.
fn forget(inventory: &mut Inventory, id: &ObjectId) {
    if inventory.contains(id) {
        Arc::make_mut(inventory).remove(id);
    }
}

/// The served type of an object, or an error naming it.
pub(super) fn entry_for<'a>(
    catalog: &'a ResourceCatalog,
    id: &ObjectId,
) -> Result<&'a CatalogEntry> {
    let key = TypeKey {
        group: id.group.clone(),
        kind: id.kind.clone(),
    };
    catalog
        .get(&key)
        .ok_or_else(|| crate::Error::InvalidSpec(format!("the API server does not serve {key}")))
}

/// Carries out one cluster action; an apply returns who was stored at which version.
async fn write(
    writer: &Writer,
    catalog: &ResourceCatalog,
    action: &ClusterAction,
) -> Result<Option<Stored>> {
    let entry = entry_for(catalog, action.id())?;
    match action {
        ClusterAction::Apply { object, .. } => writer.apply(entry, object).await.map(Some),
        ClusterAction::Delete { id } => writer
            .delete(entry, id.namespace.as_deref(), &id.name)
            .await
            .map(|()| None),
    }
}

/// Records a failed write: a 403 (the identity may not) as forbidden, anything else as
/// failed, in the API server's own words.
fn record_failure(outcome: &mut ClusterOutcome, id: &ObjectId, error: crate::Error) {
    match error {
        crate::Error::Kube(kube::Error::Api(status)) if status.code == 403 => {
            let refusal = Refusal::Forbidden {
                message: status.message,
            };
            outcome.forbidden.push((id.clone(), refusal.to_string()));
        }
        crate::Error::Kube(error) => outcome.failed.push((id.clone(), error.to_string())),
        other => outcome.failed.push((id.clone(), other.to_string())),
    }
}

/// Stamps our owner annotation on an object that is ours but does not say so yet (adopted,
/// or applied before owners were stamped).
async fn stamp_owner(
    writer: &Writer,
    catalog: &ResourceCatalog,
    id: &ObjectId,
    repository: &RepoKey,
) -> Result<()> {
    let entry = entry_for(catalog, id)?;
    writer
        .annotate(
            entry,
            id.namespace.as_deref(),
            &id.name,
            (OWNER_ANNOTATION, &repository.to_string()),
        )
        .await
}
