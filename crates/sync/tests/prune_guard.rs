//! The prune guard (issue 11): a sync deletes at most `pruneLimit` objects, and never prunes
//! because Git looks empty unless the path was emptied on purpose. A refused sync deletes
//! nothing and keeps every other action.

mod common;

use std::collections::BTreeSet;

use common::*;
use gitcontroller_sync::*;
use proptest::prelude::*;
use serde_json::json;

/// `live` ConfigMaps, all applied before (in the inventory); those in `kept` still have a
/// manifest, and one more manifest (`new`) is not in the cluster yet.
fn planned(live: usize, kept: &[bool]) -> (Plan, usize, usize) {
    let name = |i: usize| format!("cm-{i:02}");
    let mut manifests = vec![manifest("new.yaml", 0, configmap("new", json!({"k": "v"})))];
    let mut objects = Vec::new();
    let mut inventory = BTreeSet::new();
    for i in 0..live {
        objects.push(configmap(&name(i), json!({"k": "v"})));
        inventory.insert(cm_id(&name(i)));
        if kept.get(i).copied().unwrap_or(false) {
            manifests.push(manifest(
                &format!("{}.yaml", name(i)),
                0,
                configmap(&name(i), json!({"k": "v"})),
            ));
        }
    }
    let options = PlanOptions {
        prune: true,
        ..PlanOptions::default()
    };
    let plan = plan(&PlanInput {
        manifests: &manifests,
        live: &objects,
        rules: &[rule("configmaps", SyncTo::Kubernetes, &[])],
        types: &types(),
        inventory: &inventory,
        skipped: &[],
        invalid_rules: &[],
        options: &options,
    });
    let deletes = plan
        .to_cluster
        .iter()
        .filter(|a| matches!(a, ClusterAction::Delete { .. }))
        .count();
    (plan, deletes, inventory.len())
}

fn held_by_the_guard(plan: &Plan) -> Vec<&ObjectId> {
    plan.diagnostics
        .iter()
        .filter(|d| d.reason == DiagnosticReason::HeldBack(HoldCause::PruneLimit))
        .filter_map(|d| d.object.as_ref())
        .collect()
}

#[test]
fn deleting_more_than_the_limit_deletes_nothing_and_says_how_many() {
    // 20 applied, 8 still in Git: 12 deletes, half of 20 allowed.
    let kept: Vec<bool> = (0..20).map(|i| i < 8).collect();
    let (mut plan, deletes, inventory) = planned(20, &kept);
    assert_eq!((deletes, inventory), (12, 20));
    let guard = PruneGuard {
        limit: PruneLimit::default(),
        inventory,
        source: SourceShape::HasManifests,
    };
    let refusal = guard_prune(&mut plan, &guard).expect("refused");
    assert_eq!(
        refusal,
        PruneRefusal::OverLimit {
            deleting: 12,
            inventory: 20,
            allowed: 10,
            limit: PruneLimit::Percent(50)
        }
    );
    assert!(
        refusal
            .to_string()
            .starts_with("would delete 12 of 20 objects, limit 10")
    );
    assert!(
        plan.to_cluster
            .iter()
            .all(|a| matches!(a, ClusterAction::Apply { create: true, .. })),
        "only the create of `new` is left: {:?}",
        plan.to_cluster
    );
    assert_eq!(plan.to_cluster.len(), 1);
    assert_eq!(held_by_the_guard(&plan).len(), 12);
    let held = plan
        .diagnostics
        .iter()
        .find(|d| d.reason == DiagnosticReason::HeldBack(HoldCause::PruneLimit))
        .unwrap();
    assert!(
        held.to_string().contains("would delete 12 of 20 objects"),
        "{held}"
    );
}

#[test]
fn a_source_with_no_manifest_prunes_only_when_the_path_was_emptied_on_purpose() {
    // Git holds none of the 4 applied objects; the shape says what the caller saw of the path.
    let (plan, deletes, inventory) = planned(4, &[]);
    assert_eq!(deletes, 4);
    let everything = PruneGuard {
        limit: PruneLimit::Percent(100),
        inventory,
        source: SourceShape::EmptyUnconfirmed,
    };
    let mut refused = plan.clone();
    assert_eq!(
        guard_prune(&mut refused, &everything),
        Some(PruneRefusal::EmptySource {
            deleting: 4,
            inventory: 4
        })
    );
    assert_eq!(held_by_the_guard(&refused).len(), 4);

    let mut allowed = plan.clone();
    let emptied = PruneGuard {
        source: SourceShape::Emptied,
        ..everything
    };
    assert_eq!(guard_prune(&mut allowed, &emptied), None);
    assert_eq!(allowed, plan, "an allowed plan is left as it is");

    let mut by_default = plan.clone();
    let default_limit = PruneGuard {
        limit: PruneLimit::default(),
        ..emptied
    };
    assert!(
        matches!(
            guard_prune(&mut by_default, &default_limit),
            Some(PruneRefusal::OverLimit { .. })
        ),
        "emptying the path still needs a limit that allows deleting everything"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(256)
    ))]

    /// A refused sync deletes nothing and keeps every other action; an allowed one is
    /// unchanged and within the limit; pruning because Git is empty always needs the path
    /// emptied on purpose.
    #[test]
    fn the_guard_deletes_within_the_limit_or_not_at_all(
        kept in proptest::collection::vec(any::<bool>(), 0..24),
        limit in prop_oneof![
            (0u32..30).prop_map(PruneLimit::Count),
            (0u32..=100).prop_map(PruneLimit::Percent),
        ],
        source in prop_oneof![
            Just(SourceShape::HasManifests),
            Just(SourceShape::Emptied),
            Just(SourceShape::EmptyUnconfirmed),
        ],
    ) {
        let (before, deletes, inventory) = planned(kept.len(), &kept);
        let mut after = before.clone();
        let guard = PruneGuard { limit, inventory, source };
        let refusal = guard_prune(&mut after, &guard);
        let should_refuse = deletes > 0
            && (deletes > limit.allowed(inventory) || source == SourceShape::EmptyUnconfirmed);
        prop_assert_eq!(refusal.is_some(), should_refuse, "{:?}", refusal);
        if refusal.is_none() {
            prop_assert_eq!(&after, &before);
        } else {
            let others: Vec<&ClusterAction> = before
                .to_cluster
                .iter()
                .filter(|a| !matches!(a, ClusterAction::Delete { .. }))
                .collect();
            prop_assert_eq!(after.to_cluster.iter().collect::<Vec<_>>(), others);
            prop_assert_eq!(&after.to_git, &before.to_git);
            let deleted: Vec<&ObjectId> = before
                .to_cluster
                .iter()
                .filter(|a| matches!(a, ClusterAction::Delete { .. }))
                .map(ClusterAction::id)
                .collect();
            prop_assert_eq!(held_by_the_guard(&after), deleted);
        }
    }
}
