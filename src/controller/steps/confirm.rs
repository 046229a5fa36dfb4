//! Step 5: server confirmation — equality as the API server sees it.
//!
//! The planner compares manifests with live objects without the server, from the types'
//! schemas where it has them: an apply it plans may still change nothing once the server has
//! defaulted, converted and admitted the body (a type without a published schema, a default
//! the schema does not publish, a mutating webhook), and some comparisons it leaves unsure
//! (`Plan::to_confirm`). Before an apply of an existing object is made, a server-side dry run
//! of it — as the identity that would apply it — says what it would store; when that equals
//! the live object, the apply is dropped from the plan (the object is in sync). This is what
//! Flux's drift detection does.
//!
//! The answer is remembered per (object, digest of the apply body, live `resourceVersion`) in
//! the repository's [`Verdicts`](super::super::verdicts::Verdicts): a repository in sync makes
//! no dry run either, until the object or its manifest changes.

use futures::StreamExt;
use gitcontroller_sync::{ClusterAction, ObjectId};
use serde_json::Value;

use super::super::context::Context;
use super::super::state::{Flow, Mode, SyncState, needs};
use super::super::verdicts::BodyDigest;
use super::super::writer::{OBJECT_REQUESTS_IN_FLIGHT, Writer};
use super::apply::{entry_for, writes_paused};
use crate::cluster::live::compact;
use crate::cluster::{FIELD_MANAGER, ResourceCatalog};
use crate::error::{Error, Result};

/// How a planned apply was confirmed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Confirmation {
    /// A dry run stored what the object already is: the apply is dropped.
    Unchanged,
    /// A dry run changed the object: the apply is made.
    Changed,
    /// The dry run failed: the apply is made (and reports the API server's error).
    Failed,
    /// The same apply at the same `resourceVersion` was known to change nothing: dropped
    /// without a request.
    Remembered,
}

impl Confirmation {
    const ALL: [Confirmation; 4] = [
        Confirmation::Unchanged,
        Confirmation::Changed,
        Confirmation::Failed,
        Confirmation::Remembered,
    ];

    /// The `verdict` label of `gitcontroller_apply_confirmations_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            Confirmation::Unchanged => "unchanged",
            Confirmation::Changed => "changed",
            Confirmation::Failed => "failed",
            Confirmation::Remembered => "remembered",
        }
    }

    /// Whether the apply is still to be made.
    fn applies(self) -> bool {
        matches!(self, Confirmation::Changed | Confirmation::Failed)
    }
}

/// A planned apply of an existing object, to confirm.
struct Candidate {
    action: ClusterAction,
    digest: BodyDigest,
    live: Value,
}

impl Candidate {
    fn new(action: ClusterAction, live: &Value) -> Self {
        let digest = BodyDigest::of(body_of(&action));
        Self {
            action,
            digest,
            live: live.clone(),
        }
    }

    fn id(&self) -> &ObjectId {
        self.action.id()
    }
}

/// The body of an apply (nothing for a delete, which is never confirmed).
fn body_of(action: &ClusterAction) -> &Value {
    match action {
        ClusterAction::Apply { object, .. } => object,
        ClusterAction::Delete { .. } => &Value::Null,
    }
}

/// A confirmed apply: the verdict, and what the server would store when it changes something.
struct Confirmed {
    action: ClusterAction,
    confirmation: Confirmation,
    stored: Option<Value>,
}

/// Whether an action applies to an object that exists.
fn updates_existing(action: &ClusterAction) -> bool {
    matches!(action, ClusterAction::Apply { create: false, .. })
}

/// Confirms the planned applies of existing objects — the planner's `to_cluster` updates and
/// its `to_confirm` — moving those that the API server says change nothing to the plan's
/// `noops` and the others to `to_cluster`. Creates and deletes are not confirmed. Runs with
/// writes off too (`diff` says what the server would change); skipped while this sync may not
/// write (the apply step stops it).
pub async fn confirm(ctx: &Context, state: &mut SyncState) -> Result<Flow> {
    if state.mode == Mode::Sync && writes_paused(ctx, state).is_some() {
        return Ok(Flow::Continue);
    }
    let catalog = needs(&state.rules, "resolve-rules")?.catalog.clone();
    // The applies to confirm leave the plan; those that change something go back.
    let to_confirm: Vec<ClusterAction> = {
        let plan = &mut state
            .planned
            .as_mut()
            .ok_or_else(|| Error::Internal("the plan step has not run".into()))?
            .plan;
        let (mut updates, others): (Vec<_>, Vec<_>) = std::mem::take(&mut plan.to_cluster)
            .into_iter()
            .partition(updates_existing);
        plan.to_cluster = others;
        // The planner's different verdicts and its unsure ones.
        updates.append(&mut plan.to_confirm);
        updates
    };
    let live = needs(&state.live, "observe-live")?;
    let live_objects = live.find_all(&to_confirm.iter().map(ClusterAction::id).collect());
    let mut candidates = Vec::with_capacity(to_confirm.len());
    // Gone since it was planned: the apply says what happens.
    let mut unconfirmable = Vec::new();
    for action in to_confirm {
        match live_objects.get(action.id()) {
            Some(live) => candidates.push(Candidate::new(action, live)),
            None => unconfirmable.push(action),
        }
    }
    let confirmed = confirm_all(state, &catalog, candidates).await;

    let (namespace, name) = (&state.key.namespace, &state.key.name);
    for verdict in Confirmation::ALL {
        let n = confirmed
            .iter()
            .filter(|c| c.confirmation == verdict)
            .count();
        if n > 0 {
            ctx.metrics
                .apply_confirmations(namespace, name, verdict.as_str(), n as u64);
        }
    }
    tracing::debug!(
        confirmed = confirmed.len(),
        in_sync = confirmed
            .iter()
            .filter(|c| !c.confirmation.applies())
            .count(),
        "applies confirmed by the API server"
    );
    let keep_stored = state.mode == Mode::DryRun;
    let planned = state
        .planned
        .as_mut()
        .expect("the plan step ran (taken from above)");
    let list_noops = planned.inputs.options.list_noops;
    let plan = &mut planned.plan;
    // The plan's noops are sorted; only new ones call for sorting them again (checking that
    // thousands of them are in order is not free either).
    let mut new_noops = false;
    for confirmed in confirmed {
        let id = confirmed.action.id().clone();
        if confirmed.confirmation.applies() {
            plan.to_cluster.push(confirmed.action);
        } else if list_noops {
            plan.noops.push(id.clone());
            new_noops = true;
        }
        if let Some(stored) = confirmed.stored.filter(|_| keep_stored) {
            planned.stored.insert(id, stored);
        }
    }
    plan.to_cluster.extend(unconfirmable);
    plan.to_cluster.sort_by(|a, b| a.id().cmp(b.id()));
    if new_noops {
        plan.noops.sort();
    }
    Ok(Flow::Continue)
}

/// Confirms every candidate: from the repository's verdicts when it can, else by a dry run.
/// Updates the verdicts: keeps only the candidates' entries, adds what the dry runs found.
async fn confirm_all(
    state: &SyncState,
    catalog: &ResourceCatalog,
    candidates: Vec<Candidate>,
) -> Vec<Confirmed> {
    let mut confirmed = Vec::with_capacity(candidates.len());
    let mut to_dry_run = Vec::new();
    {
        let mut verdicts = state.repository.verdicts();
        verdicts.keep_only(&candidates.iter().map(Candidate::id).collect());
        for candidate in candidates {
            let version = resource_version(&candidate.live);
            if verdicts.changes_nothing(candidate.id(), candidate.digest, version) {
                confirmed.push(Confirmed {
                    action: candidate.action,
                    confirmation: Confirmation::Remembered,
                    stored: None,
                });
            } else {
                to_dry_run.push(candidate);
            }
        }
    }
    let dry_runs: Vec<(Candidate, Confirmation, Option<Value>)> = futures::stream::iter(to_dry_run)
        .map(|candidate| {
            let writer = state.writer.clone();
            let entry = entry_for(catalog, candidate.id()).cloned();
            async move {
                let (confirmation, stored) = match entry {
                    Ok(entry) => dry_run(&writer, &entry, &candidate).await,
                    Err(_) => (Confirmation::Failed, None),
                };
                (candidate, confirmation, stored)
            }
        })
        .buffer_unordered(OBJECT_REQUESTS_IN_FLIGHT)
        .collect()
        .await;
    let mut verdicts = state.repository.verdicts();
    for (candidate, confirmation, stored) in dry_runs {
        if confirmation == Confirmation::Unchanged {
            verdicts.remember(
                candidate.id(),
                candidate.digest,
                resource_version(&candidate.live).to_string(),
            );
        }
        confirmed.push(Confirmed {
            action: candidate.action,
            confirmation,
            stored,
        });
    }
    confirmed
}

async fn dry_run(
    writer: &Writer,
    entry: &crate::cluster::discovery::CatalogEntry,
    candidate: &Candidate,
) -> (Confirmation, Option<Value>) {
    match writer
        .dry_run_apply(entry, body_of(&candidate.action))
        .await
    {
        Ok(stored) => {
            let stored = as_stored_live(stored);
            if changes(&candidate.live, &stored, FIELD_MANAGER) {
                (Confirmation::Changed, Some(stored))
            } else {
                (Confirmation::Unchanged, None)
            }
        }
        Err(error) => {
            tracing::debug!(object = %candidate.id(), %error, "dry run failed; applying");
            (Confirmation::Failed, None)
        }
    }
}

/// A dry run's answer as the watch stores keep live objects (`cluster::live`: no status,
/// managedFields without their timestamps), so that it compares with the live object in
/// what the planner reads only: a status the live copy no longer has is no change.
fn as_stored_live(mut stored: Value) -> Value {
    compact(&mut stored);
    stored
}

fn resource_version(object: &Value) -> &str {
    object
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// Whether the object a dry run would store differs from the live one: in any field but the
/// bookkeeping of every write (`gitcontroller_sync::changed_by_dry_run`), or in the fields
/// `manager` owns by apply — the planner reads those to notice fields removed from Git, so an
/// apply that only takes ownership is still made.
pub fn changes(live: &Value, stored: &Value, manager: &str) -> bool {
    gitcontroller_sync::changed_by_dry_run(live, stored)
        || applied_fields(live, manager) != applied_fields(stored, manager)
}

/// The fields `manager` owns by apply on the main resource (`fieldsV1`).
fn applied_fields<'a>(object: &'a Value, manager: &str) -> Option<&'a Value> {
    object
        .pointer("/metadata/managedFields")?
        .as_array()?
        .iter()
        .find(|entry| {
            entry["manager"] == manager
                && entry["operation"] == "Apply"
                && entry.get("subresource").is_none_or(|s| s == "")
        })
        .and_then(|entry| entry.get("fieldsV1"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn deployment(replicas: i64, fields: Value) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {
                "name": "web", "namespace": "ns", "uid": "u1",
                "resourceVersion": "7", "generation": 2,
                "creationTimestamp": "2026-01-01T00:00:00Z",
                "managedFields": [
                    {"manager": "git-controller", "operation": "Apply", "apiVersion": "apps/v1",
                     "time": "2026-01-01T00:00:00Z", "fieldsType": "FieldsV1", "fieldsV1": fields},
                    {"manager": "kube-controller-manager", "operation": "Update",
                     "subresource": "status", "time": "2026-01-01T00:00:00Z",
                     "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {}}}
                ]
            },
            "spec": {"replicas": replicas},
            "status": {"replicas": replicas}
        })
    }

    #[test]
    fn bookkeeping_of_a_write_is_no_change() {
        let owned = json!({"f:spec": {"f:replicas": {}}});
        let live = deployment(2, owned.clone());
        let mut stored = live.clone();
        stored["metadata"]["resourceVersion"] = json!("8");
        stored["metadata"]["generation"] = json!(3);
        stored["metadata"]["managedFields"][0]["time"] = json!("2026-02-02T00:00:00Z");
        stored["metadata"]["managedFields"][1]["time"] = json!("2026-02-02T00:00:00Z");
        assert!(!changes(&live, &stored, "git-controller"));
    }

    #[test]
    fn a_changed_value_or_member_is_a_change() {
        let owned = json!({"f:spec": {"f:replicas": {}}});
        let live = deployment(2, owned.clone());
        assert!(changes(
            &live,
            &deployment(3, owned.clone()),
            "git-controller"
        ));
        let mut labelled = live.clone();
        labelled["metadata"]["labels"] = json!({"app": "web"});
        assert!(changes(&live, &labelled, "git-controller"));
        let mut extra = live.clone();
        extra["spec"]["paused"] = json!(true);
        assert!(changes(&live, &extra, "git-controller"));
    }

    #[test]
    fn a_dry_run_against_the_compact_live_copy_sees_no_change_in_status_or_bookkeeping() {
        let owned = json!({"f:spec": {"f:replicas": {}}});
        let full = deployment(2, owned.clone());
        let live = crate::cluster::LiveObject::new(full.clone());
        let mut stored = full.clone();
        stored["metadata"]["resourceVersion"] = json!("8");
        stored["status"]["observedGeneration"] = json!(2);
        assert!(
            changes(live.object(), &stored, "git-controller"),
            "uncompacted, the status the live copy dropped reads as a change"
        );
        assert!(!changes(
            live.object(),
            &as_stored_live(stored),
            "git-controller"
        ));
        assert!(changes(
            live.object(),
            &as_stored_live(deployment(3, owned)),
            "git-controller"
        ));
    }

    #[test]
    fn taking_ownership_is_a_change_other_managers_are_not() {
        let live = deployment(2, json!({"f:spec": {}}));
        let ours = deployment(2, json!({"f:spec": {"f:replicas": {}}}));
        assert!(
            changes(&live, &ours, "git-controller"),
            "the planner needs to know we own replicas"
        );
        let mut theirs = live.clone();
        theirs["metadata"]["managedFields"][1]["fieldsV1"] = json!({"f:status": {"f:x": {}}});
        assert!(!changes(&live, &theirs, "git-controller"));
    }
}
