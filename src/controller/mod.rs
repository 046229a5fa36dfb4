//! The GitRepository controller.
//!
//! Pipeline of one reconcile (see [`reconcile`]): dereference (SyncRules, credentials) →
//! validate (selectors, filters) → watch (stores for every selected type) → fetch (Git) →
//! plan (pure, `gitcontroller_sync::plan`) → apply (server-side apply / delete) → write back
//! (commit + push, re-planned on every attempt) → update status, publish Events.
//!
//! Triggers: changes to a GitRepository, to its SyncRules, to live objects of a selected type,
//! CRD changes (re-discovery), the interval, and push webhooks.

pub(crate) mod convert;
pub use convert::secret_data;
mod events;
mod parse_cache;
pub use parse_cache::ParseCache;
pub(crate) mod reconcile;
mod runner;
mod status;

pub use runner::{Config, Context, run};

/// Finalizer that lets the controller stop watchers (and prune, when asked) before a
/// GitRepository goes away.
pub const FINALIZER: &str = "gitcontroller.io/finalizer";
