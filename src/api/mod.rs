//! The CRDs: `GitRepository` and `SyncRule` in `gitcontroller.io/v1alpha1`.
//!
//! These types are the public contract. Field names never change within a version, and every
//! field's doc comment is what `kubectl explain` shows users, so write them for users.

mod condition;
mod git_repository;
mod sync_rule;

pub use condition::{Condition, ConditionStatus, ConditionType, Reason};
pub use git_repository::{
    Author, DEFAULT_PRUNE_LIMIT, GitRepository, GitRepositorySpec, GitRepositoryStatus,
    InventoryEntry, InventoryList, LocalObjectReference, ObjectCounts, REQUESTED_AT_ANNOTATION,
};
pub use sync_rule::{RepositoryReference, SyncDirection, SyncRule, SyncRuleSpec, SyncRuleStatus};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

/// The API group of both CRDs.
pub const GROUP: &str = "gitcontroller.io";

/// Both CRDs, with descriptions unwrapped for `kubectl explain`.
pub fn crds() -> Vec<CustomResourceDefinition> {
    [GitRepository::crd(), SyncRule::crd()]
        .into_iter()
        .map(|crd| {
            let mut value = serde_json::to_value(crd).expect("a CRD serializes to JSON");
            unwrap_descriptions(&mut value);
            serde_json::from_value(value).expect("unwrapping descriptions keeps a valid CRD")
        })
        .collect()
}

/// Both CRDs as one multi-document YAML stream, in a stable order (what `git-controller crds`
/// prints and what `crds/` holds).
pub fn crds_yaml() -> String {
    let mut out = String::new();
    for crd in crds() {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(&crd).expect("a CRD always serializes to YAML"));
    }
    out
}

/// Doc comments are hard-wrapped at 100 columns; `kubectl explain` wraps text itself, so join
/// wrapped lines into one and keep blank-line paragraph breaks.
fn unwrap_descriptions(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                match child {
                    serde_json::Value::String(text) if key == "description" => {
                        *text = text
                            .split("\n\n")
                            .map(|paragraph| paragraph.split('\n').collect::<Vec<_>>().join(" "))
                            .collect::<Vec<_>>()
                            .join("\n\n");
                    }
                    _ => unwrap_descriptions(child),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(unwrap_descriptions),
        _ => {}
    }
}
