//! [`SyncState`]: one sync of one GitRepository as it goes through the steps — the repository,
//! how to write, and the plain output of every step that ran so far.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use gitcontroller_git::Snapshot;
use gitcontroller_sync::{
    Diagnostic, InvalidRule, Manifest, ObjectId, Plan, PlanInput, PlanOptions, PruneGuard,
    PruneLimit, PruneRefusal, ResourceType, Rule, Settled, SourceShape,
};
use k8s_openapi::api::core::v1::ObjectReference;
use serde_json::Value;

use super::context::Context;
use super::convert;
use super::live_state::LiveState;
use super::parse_cache::{ParseCache, ParsedSnapshot};
use super::report::{ClusterOutcome, GitOutcome, Stop, SyncReport, touched};
use super::repository::RepoKey;
use super::repository::{FetchReason, Inventory, RepositoryState};
use super::rules::ResolvedRules;
use super::writer::Writer;
use crate::access::Identity;
use crate::access::Refusal;
use crate::access::identity::PlaintextSecrets;
use crate::access::scope::{Reach, ReadCheck};
use crate::api::GitRepository;
use crate::cluster::LiveObject;
use crate::cluster::watchers::Watched;
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

/// Everything a plan needs besides the Git snapshot; shared with the blocking Git thread,
/// which plans again on a push attempt whose remote head is not the one planned on.
pub struct PlanInputs {
    /// The usable rules.
    pub rules: Vec<Rule>,
    /// What the invalid rules could select: nothing in it moves in either direction.
    pub invalid_rules: Vec<InvalidRule>,
    /// The served types.
    pub types: Vec<ResourceType>,
    /// The live objects.
    pub live: Arc<Vec<Arc<LiveObject>>>,
    /// Objects this repository applied before this sync.
    pub inventory: Inventory,
    /// The planner's switches.
    pub options: PlanOptions,
    /// `spec.pruneLimit`.
    pub prune_limit: PruneLimit,
    /// The commit the last sync was based on (`status.lastSyncedCommit`): a source emptied
    /// in a newer commit may be pruned empty.
    pub last_synced_commit: Option<String>,
    /// Parsed manifests of earlier snapshots.
    pub parsed: ParseCache,
    /// What the repository's identity may read: manifests out of reach are left out of the
    /// plan (and reported).
    pub reach: Reach,
}

/// A plan, after the prune guard.
#[derive(Clone, Debug)]
pub struct GuardedPlan {
    /// The plan; without deletes when the guard refused them.
    pub plan: Plan,
    /// What the plan found in sync, for the next plan of the repository.
    pub settled: Settled,
    /// Why the guard refused this sync's deletes, if it did.
    pub prune_refused: Option<PruneRefusal>,
    /// Manifests out of the repository's reach, left out of the plan, and why.
    pub refused: Vec<(ObjectId, Refusal)>,
}

impl PlanInputs {
    /// Parses the manifests of a snapshot and plans against this cluster state, with every
    /// input that was not read (files the Git layer skipped or never listed, documents the
    /// parser skipped) holding back prune and new files, the invalid rules' scopes holding
    /// back everything in them, and the manifests out of the repository's reach left out;
    /// then the prune guard. The plan's diagnostics start with those of the inputs.
    ///
    /// Fails only when the snapshot left out the text of a file the parse cache does not
    /// hold (see [`ParseCache::covers`]).
    pub fn plan(&self, snapshot: &Snapshot) -> Result<GuardedPlan> {
        let parsed = self.parsed.parse(snapshot, &self.types).map_err(|e| {
            Error::Internal(format!(
                "{} was not read from Git and is not in the parse cache",
                e.path
            ))
        })?;
        Ok(self.plan_parsed(snapshot, &parsed, None))
    }

    /// [`plan`](Self::plan) with the snapshot's files parsed already, skipping the objects
    /// that `previous` (of an earlier plan) holds in sync and that did not change.
    pub fn plan_parsed(
        &self,
        snapshot: &Snapshot,
        parsed: &ParsedSnapshot,
        previous: Option<&Settled>,
    ) -> GuardedPlan {
        let mut diagnostics: Vec<Diagnostic> = parsed.diagnostics().cloned().collect();
        // Borrowed from the parse cache and the watch stores: planning copies no object.
        let manifests: Vec<&Manifest> = parsed.manifests().collect();
        diagnostics.extend(
            snapshot
                .skipped
                .iter()
                .map(|file| super::convert::skipped_file(file).diagnostic()),
        );
        if let Some(truncated) = &snapshot.truncated {
            diagnostics.push(super::convert::truncated_walk_diagnostic(truncated));
        }
        // The source's size counts what Git holds, in reach or not.
        let read = manifests.len();
        let (manifests, refused) = self.reach.split(manifests, |m| &m.id);
        let skipped = gitcontroller_sync::skipped_inputs(&diagnostics);
        let (mut plan, settled) = gitcontroller_sync::plan_incremental(
            &PlanInput {
                manifests: &manifests,
                live: self.live.as_slice(),
                rules: &self.rules,
                types: &self.types,
                inventory: &self.inventory,
                skipped: &skipped,
                invalid_rules: &self.invalid_rules,
                options: &self.options,
            },
            previous,
        );
        plan.diagnostics.splice(0..0, diagnostics);
        let guard = PruneGuard {
            limit: self.prune_limit,
            inventory: self.inventory.len(),
            source: self.source_shape(snapshot, read),
        };
        let prune_refused = gitcontroller_sync::guard_prune(&mut plan, &guard);
        GuardedPlan {
            plan,
            settled,
            prune_refused,
            refused,
        }
    }

    /// Whether the snapshot holds manifests, and if not, whether its path was emptied on
    /// purpose: it exists at a commit other than the one synced last.
    fn source_shape(&self, snapshot: &Snapshot, manifests: usize) -> SourceShape {
        // Reading a commit without the path fails (PathNotFound) before any plan: only a
        // branch without a commit has no path here.
        let path_exists = snapshot.path_exists;
        let newer = self.last_synced_commit.as_deref() != Some(snapshot.commit.as_str());
        SourceShape::of(manifests, path_exists, newer)
    }
}

/// The plan step's output (the confirm step settles its applies).
pub struct Planned {
    /// What the plan was made from.
    pub inputs: Arc<PlanInputs>,
    /// The plan.
    pub plan: Plan,
    /// Manifests out of the repository's reach, left out of the plan, and why.
    pub refused: Vec<(ObjectId, Refusal)>,
    /// Objects a `kubernetes` rule governs that are in sync (no write planned): their
    /// ownership is checked too.
    pub in_sync: Vec<ObjectId>,
    /// What became of `allowPlaintextSecrets`.
    pub plaintext_secrets: PlaintextSecrets,
    /// With writes off (`diff`): what the API server would store for each apply its dry run
    /// found to change something.
    pub stored: BTreeMap<ObjectId, Value>,
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
    /// Whose rights the repository acts with (`docs/security.md`).
    pub identity: Identity,
    /// How synced objects are written (the identity's client, behind the gate).
    pub writer: Writer,
    /// Resolve-rules step: the usable rules, the invalid ones, the selected types.
    pub rules: Option<ResolvedRules>,
    /// Watch step: the watchers that hold the live objects.
    pub watched: Option<Vec<Watched>>,
    /// Fetch step: the Git snapshot.
    pub source: Option<Source>,
    /// Observe step: the live objects.
    pub live: Option<LiveState>,
    /// Observe and plan steps: what the identity may read, asked once per type and namespace.
    pub reads: Option<ReadCheck>,
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
    pub fn new(ctx: &Context, repo: Arc<GitRepository>, mode: Mode) -> Result<Self> {
        let key = RepoKey::of(&repo);
        let identity = ctx.identity_of(&repo);
        Ok(Self {
            repository: ctx.repository(&key),
            writer: ctx.writer_for(&repo, &identity)?,
            identity,
            repo,
            key,
            mode,
            rules: None,
            watched: None,
            source: None,
            live: None,
            reads: None,
            planned: None,
            applied: None,
            written: None,
            stopped: None,
            span: tracing::Span::current(),
        })
    }

    /// Records the commit being synced (the fetched head) on the sync's span, so every later
    /// log line names it.
    pub fn record_commit(&self, commit: &str) {
        self.span
            .record("commit", commit.get(..8).unwrap_or(commit));
    }

    /// The inventory in the repository's status before this sync.
    pub fn previous_inventory(&self) -> Inventory {
        self.repository.inventory(
            self.repo
                .status
                .as_ref()
                .map(|s| s.inventory.as_slice())
                .unwrap_or_default(),
        )
    }

    /// References to the objects the sync wrote or failed to write, for Events: as our
    /// applies returned them, else as the live objects are.
    fn references(
        &self,
        cluster: &ClusterOutcome,
        git: &GitOutcome,
    ) -> BTreeMap<ObjectId, ObjectReference> {
        let mut references = cluster.references.clone();
        let wanted: BTreeSet<&ObjectId> = touched(cluster, git)
            .filter(|id| !references.contains_key(*id))
            .collect();
        if let Some(live) = &self.live {
            for (id, object) in live.find_all(&wanted) {
                references.insert(id, convert::object_reference(object));
            }
        }
        references
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
        let references = self.references(&cluster, &git);
        Ok(SyncReport {
            references,
            source_commit: source.commit().to_string(),
            commit: git
                .commit
                .clone()
                .or_else(|| Some(source.commit().to_string())),
            counts: planned.plan.counts,
            diagnostics: planned.plan.diagnostics.clone(),
            prune_refused: planned.prune_refused,
            invalid_rules: rules.invalid.clone(),
            refused: planned
                .refused
                .iter()
                .map(|(id, refusal)| (id.clone(), refusal.to_string()))
                .collect(),
            plaintext_secrets: planned.plaintext_secrets,
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
