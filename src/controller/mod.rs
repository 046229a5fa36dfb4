//! The GitRepository controller.
//!
//! One reconcile ([`reconcile`]) runs the [`steps`] of a sync in order, each an
//! `async fn(&Context, &mut SyncState) -> Result<Flow>`: resolve rules → fetch (only when due)
//! → observe live → plan → apply → write back. Steps fill in [`SyncState`] and write no status
//! and no Event; the reconcile computes the status ([`status`], pure) and the Events
//! ([`events`]) from the final report and writes them once. `git-controller diff` runs the same
//! steps with [`Mode::DryRun`].
//!
//! Around the steps: [`Context`] (shared by every reconcile), the per-repository
//! [`RepositoryState`], the [`WriteGate`] asked before every write, the [`Trigger`] that asks
//! for syncs and fetches, and the rule set (`ruleset.rs`), which alone writes SyncRule status
//! and maintains the watcher set.
//!
//! Triggers: changes to a GitRepository, to a SyncRule's spec, to live objects of a selected
//! type, CRD changes (re-discovery), the interval, and push webhooks.

mod context;
pub(crate) mod convert;
mod events;
mod gate;
mod parse_cache;
mod reconcile;
mod report;
mod repository;
mod rules;
mod ruleset;
mod runner;
mod state;
mod status;
pub mod steps;
mod trigger;
mod writer;

pub use context::{Config, Context, ContextParts};
pub use convert::secret_data;
pub use gate::WriteGate;
pub use parse_cache::ParseCache;
pub use reconcile::FINALIZER;
pub use report::{ClusterOutcome, GitOutcome, Problem, Stop, SyncReport};
pub use repository::{FetchReason, RepoKey, RepositoryState, SourceMemory};
pub use rules::{InvalidRule, ResolvedRules};
pub use runner::run;
pub use state::{Flow, GuardedPlan, LiveState, Mode, PlanInputs, Planned, Source, SyncState};
pub use trigger::{Trigger, Triggers};
pub use writer::Writer;
