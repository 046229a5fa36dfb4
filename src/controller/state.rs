//! [`SyncState`]: one sync of one GitRepository as it goes through the steps — the repository,
//! how to write, and the plain output of every step that ran so far.

use std::collections::BTreeSet;
use std::sync::Arc;

use gitcontroller_git::Snapshot;
use gitcontroller_sync::{
    InvalidRule, ObjectId, Plan, PlanInput, PlanOptions, PruneGuard, PruneLimit, PruneRefusal,
    ResourceType, Rule, SourceShape,
};
use serde_json::Value;

use super::context::Context;
use super::parse_cache::ParseCache;
use super::report::{ClusterOutcome, GitOutcome, Stop, SyncReport};
use super::repository::RepoKey;
use super::repository::{FetchReason, RepositoryState};
use super::rules::ResolvedRules;
use super::writer::Writer;
use crate::api::GitRepository;
use crate::error::{Error, Result};

/// Whether a sync writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Apply to the cluster and push to Git (a reconcile).
    Sync,
    /// Compute everything, write nothing (`git-controller diff`): the apply step does
    /// nothing, the write-back step previews the files it would commit.
    DryRun,
}

/// What a step tells the runner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Run the next step.
    Continue,
    /// Skip the remaining steps; the sync still reports what it found.
    Stop(Stop),
}

/// The fetch step's output: the Git side of the plan.
#[derive(Clone, Debug)]
pub struct Source {
    /// The manifests at the commit, and the files that could not be read.
    pub snapshot: Arc<Snapshot>,
    /// Why this sync fetched; `None` when it re-used the cached snapshot.
    pub fetched: Option<FetchReason>,
}

impl Source {
    /// A source for `snapshot`.
    pub fn new(snapshot: Arc<Snapshot>, fetched: Option<FetchReason>) -> Self {
        Self { snapshot, fetched }
    }

    /// The commit the snapshot was read at (empty when the branch has no commit yet).
    pub fn commit(&self) -> &str {
        &self.snapshot.commit
    }
}

/// The observe step's output: the live objects the repository's rules select.
#[derive(Clone, Debug, Default)]
pub struct LiveState {
    /// Every live object of the selected types, as the API server serves it.
    pub objects: Arc<Vec<Value>>,
}

/// Everything a plan needs besides the Git snapshot; shared with the blocking Git thread,
/// which plans again on every push attempt.
pub struct PlanInputs {
    /// The usable rules.
    pub rules: Vec<Rule>,
    /// What the invalid rules could select: nothing in it moves in either direction.
    pub invalid_rules: Vec<InvalidRule>,
    /// The served types.
    pub types: Vec<ResourceType>,
    /// The live objects.
    pub live: Arc<Vec<Value>>,
    /// Objects this repository applied before this sync.
    pub inventory: BTreeSet<ObjectId>,
    /// The planner's switches.
    pub options: PlanOptions,
    /// `spec.pruneLimit`.
    pub prune_limit: PruneLimit,
    /// The commit the last sync was based on (`status.lastSyncedCommit`): a source emptied
    /// in a newer commit may be pruned empty.
    pub last_synced_commit: Option<String>,
    /// Parsed manifests of earlier snapshots.
    pub parsed: ParseCache,
}

/// A plan, after the prune guard.
#[derive(Clone, Debug)]
pub struct GuardedPlan {
    /// The plan; without deletes when the guard refused them.
    pub plan: Plan,
    /// Why the guard refused this sync's deletes, if it did.
    pub prune_refused: Option<PruneRefusal>,
}

impl PlanInputs {
    /// Parses the manifests of a snapshot and plans against this cluster state, with every
    /// input that was not read (files the Git layer skipped, documents the parser skipped)
    /// holding back prune and new files, and the invalid rules' scopes holding back
    /// everything in them; then the prune guard. The plan's diagnostics start with those of
    /// the inputs.
    pub fn plan(&self, snapshot: &Snapshot) -> GuardedPlan {
        let (manifests, mut diagnostics) = self.parsed.parse(snapshot, &self.types);
        diagnostics.extend(
            snapshot
                .skipped
                .iter()
                .map(|file| super::convert::skipped_file(file).diagnostic()),
        );
        let skipped = gitcontroller_sync::skipped_inputs(&diagnostics);
        let mut plan = gitcontroller_sync::plan(&PlanInput {
            manifests: &manifests,
            live: &self.live,
            rules: &self.rules,
            types: &self.types,
            inventory: &self.inventory,
            skipped: &skipped,
            invalid_rules: &self.invalid_rules,
            options: &self.options,
        });
        plan.diagnostics.splice(0..0, diagnostics);
        let guard = PruneGuard {
            limit: self.prune_limit,
            inventory: self.inventory.len(),
            source: self.source_shape(snapshot, manifests.len()),
        };
        let prune_refused = gitcontroller_sync::guard_prune(&mut plan, &guard);
        GuardedPlan {
            plan,
            prune_refused,
        }
    }

    /// Whether the snapshot holds manifests, and if not, whether its path was emptied on
    /// purpose: it exists at a commit other than the one synced last.
    fn source_shape(&self, snapshot: &Snapshot, manifests: usize) -> SourceShape {
        // A snapshot of a commit whose path is missing is empty today; only a branch without
        // a commit is known to have no path.
        let path_exists = !snapshot.commit.is_empty();
        let newer = self.last_synced_commit.as_deref() != Some(snapshot.commit.as_str());
        SourceShape::of(manifests, path_exists, newer)
    }
}

/// The plan step's output.
pub struct Planned {
    /// What the plan was made from.
    pub inputs: Arc<PlanInputs>,
    /// The plan.
    pub plan: Plan,
    /// Why the prune guard refused this sync's deletes, if it did.
    pub prune_refused: Option<PruneRefusal>,
}

/// One sync of one GitRepository: its inputs, and the output of every step so far. Each
/// step reads what earlier steps wrote and fills in its own field.
pub struct SyncState {
    /// The GitRepository as this reconcile received it.
    pub repo: Arc<GitRepository>,
    /// Its namespace and name.
    pub key: RepoKey,
    /// Whether this sync writes.
    pub mode: Mode,
    /// The repository's state between reconciles (Git lock, parse cache, last snapshot).
    pub repository: Arc<RepositoryState>,
    /// How synced objects are written (the client, i.e. the identity, behind the gate).
    pub writer: Writer,
    /// Resolve-rules step: the usable rules, the invalid ones, the selected types.
    pub rules: Option<ResolvedRules>,
    /// Fetch step: the Git snapshot.
    pub source: Option<Source>,
    /// Observe step: the live objects.
    pub live: Option<LiveState>,
    /// Plan step: the plan and its inputs.
    pub planned: Option<Planned>,
    /// Apply step: what was written to the cluster.
    pub applied: Option<ClusterOutcome>,
    /// Write-back step: what was written to Git (or, with writes off, the preview).
    pub written: Option<GitOutcome>,
    /// Why the steps stopped early, if they did.
    pub stopped: Option<Stop>,
    /// The span of the whole sync (namespace, name; the commit once known).
    pub span: tracing::Span,
}

/// The output of an earlier step, or an internal error naming the step that should have
/// produced it (a step table in the wrong order).
pub fn needs<'a, T>(output: &'a Option<T>, step: &str) -> Result<&'a T> {
    output
        .as_ref()
        .ok_or_else(|| Error::Internal(format!("the {step} step has not run")))
}

impl SyncState {
    /// A sync of `repo` that has run no step yet.
    pub fn new(ctx: &Context, repo: Arc<GitRepository>, mode: Mode) -> Self {
        let key = RepoKey::of(&repo);
        Self {
            repository: ctx.repository(&key),
            writer: ctx.writer_for(&repo),
            repo,
            key,
            mode,
            rules: None,
            source: None,
            live: None,
            planned: None,
            applied: None,
            written: None,
            stopped: None,
            span: tracing::Span::current(),
        }
    }

    /// Records the commit being synced (the fetched head) on the sync's span, so every later
    /// log line names it.
    pub fn record_commit(&self, commit: &str) {
        self.span
            .record("commit", commit.get(..8).unwrap_or(commit));
    }

    /// The inventory in the repository's status before this sync.
    pub fn previous_inventory(&self) -> BTreeSet<ObjectId> {
        super::convert::inventory(
            self.repo
                .status
                .as_ref()
                .map(|s| s.inventory.as_slice())
                .unwrap_or_default(),
        )
    }

    /// What the sync found and did, for status, Events and metrics.
    pub fn report(&self) -> Result<SyncReport> {
        let planned = needs(&self.planned, "plan")?;
        let rules = needs(&self.rules, "resolve-rules")?;
        let source = needs(&self.source, "fetch")?;
        let cluster = self.applied.clone().unwrap_or_default();
        let git = self.written.clone().unwrap_or_default();
        let inventory = match &self.applied {
            Some(applied) => applied.inventory.clone(),
            None => planned.inputs.inventory.clone(),
        };
        Ok(SyncReport {
            commit: git
                .commit
                .clone()
                .or_else(|| Some(source.commit().to_string())),
            counts: planned.plan.counts,
            diagnostics: planned.plan.diagnostics.clone(),
            prune_refused: planned.prune_refused,
            invalid_rules: rules.invalid.clone(),
            inventory,
            stopped: self.stopped,
            pending: if self.stopped.is_some() {
                planned.plan.to_cluster.len() + planned.plan.to_git.len()
            } else {
                0
            },
            cluster,
            git,
        })
    }
}
