//! The pure sync planner of git-controller.
//!
//! Given the manifests in a Git repository, the live objects of a cluster and the sync rules,
//! [`plan`] decides — per object and per JSON-pointer subtree — which side moves: what to
//! apply to the cluster, what to write to Git, what to delete or remove. There is no IO, no
//! clock and no Kubernetes type here: objects are [`serde_json::Value`]s and everything else
//! is plain data the caller converts from CRDs and discovery.
//!
//! Values are compared as the API server stores them when a type comes with its schema
//! ([`ResourceType::schema`], read by [`parse_openapi_v3`] from the server's OpenAPI v3
//! document): quantities by value, atomic maps and lists whole, list-maps by key, zero values
//! the server omits as absent. What only the server can decide is left for a server-side
//! dry-run ([`Plan::to_confirm`], [`Verdict`], [`changed_by_dry_run`]).
//!
//! Live objects may keep each `metadata.managedFields[].fieldsV1` set as its JSON text (a
//! string) instead of JSON: a store of many objects saves most of their ownership's memory
//! that way, and the planner parses the sets of only the objects it compares.
//!
//! The contract (rule matching, precedence, comparison, export, existence, layout) is written
//! down in `docs/sync-semantics.md` of the repository.
//!
//! ```
//! use std::collections::BTreeSet;
//! use gitcontroller_sync::*;
//!
//! let types = [ResourceType::new("", "v1", "ConfigMap", "configmaps", true)];
//! let files = [SourceFile::new(
//!     "default/configmaps/app.yaml",
//!     "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  level: debug\n",
//! )];
//! let (manifests, diagnostics) = parse_manifests(&files, &types);
//! assert!(diagnostics.is_empty());
//! let rules = [Rule::new("all-from-git", SyncTo::Kubernetes)];
//! // Live objects as the API server serves them (`Arc<Value>`s work too).
//! let live: Vec<serde_json::Value> = Vec::new();
//! let plan = plan(&PlanInput {
//!     manifests: &manifests,
//!     live: &live,
//!     rules: &rules,
//!     types: &types,
//!     inventory: &BTreeSet::new(),
//!     skipped: &skipped_inputs(&diagnostics),
//!     invalid_rules: &[],
//!     options: &PlanOptions::default(),
//! });
//! assert!(matches!(&plan.to_cluster[..], [ClusterAction::Apply { create: true, .. }]));
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod compare;
mod diagnostic;
pub mod export;
mod fields;
mod hold;
mod id;
pub mod layout;
mod lookup;
mod manifest;
mod normalize;
mod packed;
mod plan;
mod pointer;
mod prune;
pub mod quantity;
mod rule;
pub mod schema;
mod selector;
mod skip;
mod system;
mod walk;

pub use compare::{Verdict, changed_by_dry_run, stored_equal};
pub use diagnostic::{Diagnostic, DiagnosticReason, HoldCause, Severity, SkipReason};
pub use hold::InvalidRule;
pub use id::{LiveIdentity, LiveInput, ObjectId, ResourceType, group_of};
pub use manifest::{Manifest, ManifestParser, SourceFile, is_manifest_path, parse_manifests};
pub use normalize::normalize;
pub use packed::PackedStrs;
pub use plan::{
    ClusterAction, Counts, DEFAULT_FIELD_MANAGER, GitAction, InputChanges, Plan, PlanInput,
    PlanOptions, Settled, plan, plan_changed, plan_incremental,
};
pub use pointer::{Pointer, PointerError};
pub use prune::{PruneGuard, PruneLimit, PruneLimitError, PruneRefusal, SourceShape, guard_prune};
pub use rule::{Rule, SyncTo};
pub use schema::{GroupVersionKind, SchemaNode, TypeSchema, parse_openapi_v3};
pub use selector::{LabelSelector, Operator, Requirement, SelectorError};
pub use skip::{SkippedInput, skipped_inputs};
pub use system::{SystemObject, system_object};
