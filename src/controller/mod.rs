//! The GitRepository controller.
//!
//! One reconcile ([`reconcile`]) runs the [`steps`] of a sync in order, each an
//! `async fn(&Context, &mut SyncState) -> Result<Flow>`: resolve rules → watch live (start
//! the watchers) → fetch (only when due) → observe live → plan → confirm (server-side dry runs,
//! remembered) → apply → write back. Steps fill in [`SyncState`] and write no status
//! and no Event; the reconcile computes the status ([`status`], pure) and the Events
//! ([`events`]) from the final report and writes them once. `git-controller diff` runs the same
//! steps with [`Mode::DryRun`].
//!
//! Around the steps: [`Context`] (shared by every reconcile), the per-repository
//! [`RepositoryState`], the [`WriteGate`] asked before every write, the [`Trigger`] that asks
//! for syncs and fetches, and the rule set (`ruleset.rs`), which alone writes SyncRule status
//! and releases the watchers of repositories that are gone. Each sync acts as the repository's
//! identity (`crate::access`, `docs/security.md`).
//!
//! Triggers: changes to a GitRepository's spec, to a SyncRule's spec, to live objects a rule
//! selects (not our own writes), CRD changes (re-discovery), the interval, push webhooks, and
//! retries with backoff. They are batched per repository by the scheduler (`schedule.rs`).

mod context;
pub(crate) mod convert;
mod events;
mod gate;
mod live_changes;
mod live_state;
mod own_writes;
mod parse_cache;
mod reconcile;
mod report;
mod repository;
mod rules;
mod ruleset;
mod runner;
mod schedule;
mod state;
mod status;
pub mod steps;
mod trigger;
mod verdicts;
mod writer;

pub use context::{Config, Context, ContextParts};
pub use convert::secret_data;
pub use gate::WriteGate;
pub use live_state::LiveState;
pub use own_writes::{Echo, OwnWrites, PendingWrite, Written};
pub use parse_cache::ParseCache;
pub use reconcile::FINALIZER;
pub use report::{ClusterOutcome, GitOutcome, Problem, Stop, SyncReport};
pub use repository::{FetchReason, RepoKey, RepositoryState, SourceMemory};
pub use rules::{InvalidRule, ResolvedRules};
pub use runner::run;
pub use schedule::{Batching, SETTLE};
pub use state::{Flow, GuardedPlan, Mode, PlanInputs, Planned, Source, SyncState};
pub use trigger::{Trigger, TriggerRequest, TriggerSource, Triggers, Urgency};
pub use writer::Writer;
