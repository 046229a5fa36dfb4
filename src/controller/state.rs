//! [`SyncState`]: one sync of one GitRepository as it goes through the steps — the repository,
//! how to write, and the plain output of every step that ran so far.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use gitcontroller_git::Snapshot;
use gitcontroller_sync::{
    Diagnostic, InputChanges, InvalidRule, LiveIdentity, LiveInput, Manifest, ObjectId, Plan,
    PlanInput, PlanOptions, PruneGuard, PruneLimit, PruneRefusal, ResourceType, Rule, Settled,
    SourceShape,
};
use k8s_openapi::api::core::v1::ObjectReference;
use serde_json::Value;

use super::context::Context;
use super::convert;
use super::live_state::LiveState;
use super::parse_cache::{ParseCache, ParsedSnapshot, Place};
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
pub struct GuardedPlan {
    /// The plan; without deletes when the guard refused them.
    pub plan: Plan,
    /// What the plan found in sync and what it was made from, for the next plan of the
    /// repository.
    pub last: LastPlan,
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
        Ok(self.plan_parsed(snapshot, Arc::new(parsed), None))
    }

    /// [`plan`](Self::plan) with the snapshot's files parsed already, skipping the objects
    /// that `previous` (the repository's last plan) holds in sync and that did not change:
    /// when the objects are where they were in it, only those that changed are read.
    pub fn plan_parsed(
        &self,
        snapshot: &Snapshot,
        parsed: Arc<ParsedSnapshot>,
        previous: Option<&LastPlan>,
    ) -> GuardedPlan {
        let mut diagnostics: Vec<Diagnostic> = parsed.diagnostics().cloned().collect();
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
        let mut read = 0;
        // Borrowed from the parse cache and the watch stores: planning copies no object.
        let (placed, refused) = self.reach.split(
            parsed.placed_manifests().inspect(|_| read += 1),
            |(_, m)| &m.id,
        );
        let (places, manifests): (Vec<Place>, Vec<&Manifest>) = placed.into_iter().unzip();
        let skipped = gitcontroller_sync::skipped_inputs(&diagnostics);
        let changes = previous.and_then(|last| {
            last.from
                .changes(&parsed, &places, self.live.as_slice(), &self.inventory)
        });
        let (mut plan, settled) = gitcontroller_sync::plan_changed(
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
            previous.map(|last| &last.settled),
            changes.as_ref().map(Changes::as_input).as_ref(),
        );
        plan.diagnostics.splice(0..0, diagnostics);
        let guard = PruneGuard {
            limit: self.prune_limit,
            inventory: self.inventory.len(),
            source: self.source_shape(snapshot, read),
        };
        let prune_refused = gitcontroller_sync::guard_prune(&mut plan, &guard);
        drop(manifests);
        GuardedPlan {
            plan,
            last: LastPlan {
                asked: Vec::new(),
                settled,
                from: PlannedFrom {
                    parsed,
                    places,
                    live: Arc::clone(&self.live),
                    inventory: Arc::clone(&self.inventory),
                },
            },
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

/// What a repository's last plan found in sync and what it was made from: the next plan skips
/// what did not change since.
pub struct LastPlan {
    /// The objects found in sync.
    pub settled: Settled,
    /// The plan's inputs.
    pub from: PlannedFrom,
    /// One manifest of each type and namespace the plan asked whether the identity may read
    /// (its `ReadCheck`): what the next plan asks again when its files are this plan's but
    /// for those parsed since.
    pub asked: Vec<ObjectId>,
}

/// The inputs of a plan, kept (they are shared with the parse cache and the watch stores) so
/// that the next plan can tell which objects changed since by their identity alone: kept
/// alive, an object's address is never another object's.
pub struct PlannedFrom {
    /// The parsed files.
    parsed: Arc<ParsedSnapshot>,
    /// Where each manifest planned was in `parsed`, in the order planned.
    places: Vec<Place>,
    /// The live objects planned, in order.
    live: Arc<Vec<Arc<LiveObject>>>,
    /// The inventory planned with.
    inventory: Inventory,
}

/// Which inputs of a plan changed since the one before ([`InputChanges`]).
struct Changes {
    manifests: Vec<usize>,
    live: Vec<usize>,
    inventory_unchanged: bool,
}

impl Changes {
    fn as_input(&self) -> InputChanges<'_> {
        InputChanges {
            manifests: &self.manifests,
            live: &self.live,
            inventory_unchanged: self.inventory_unchanged,
        }
    }
}

impl PlannedFrom {
    /// The manifests of the files parsed since this plan, when the files are this plan's by
    /// position (each other position holds the very file planned then); `None` otherwise.
    pub fn manifests_parsed_since<'p>(
        &self,
        parsed: &'p ParsedSnapshot,
    ) -> Option<impl Iterator<Item = &'p Manifest>> {
        let changed = parsed.files_parsed_since(&self.parsed)?;
        Some(
            changed
                .into_iter()
                .flat_map(|file| parsed.file_manifests(file)),
        )
    }

    /// Which of these inputs changed since this plan, when every manifest and live object is
    /// at the position it had (same number of each, each from the same place, and the
    /// changed ones of the same identity); `None` otherwise. Reads the changed objects only:
    /// the others are the very objects planned then, shared.
    fn changes(
        &self,
        parsed: &ParsedSnapshot,
        places: &[Place],
        live: &[Arc<LiveObject>],
        inventory: &Inventory,
    ) -> Option<Changes> {
        if places != self.places.as_slice() || live.len() != self.live.len() {
            return None;
        }
        let mut manifests = Vec::new();
        let parsed_since = parsed.files_parsed_since(&self.parsed)?;
        for (position, &place) in places.iter().enumerate() {
            if parsed_since.binary_search(&place.file).is_err() {
                continue;
            }
            let (now, then) = (parsed.manifest(place)?, self.parsed.manifest(place)?);
            if (&now.id, &now.file, now.doc_index, now.item_index)
                != (&then.id, &then.file, then.doc_index, then.item_index)
            {
                return None;
            }
            manifests.push(position);
        }
        let mut changed_live = Vec::new();
        for (position, (now, then)) in live.iter().zip(self.live.iter()).enumerate() {
            if Arc::ptr_eq(now, then) {
                continue;
            }
            if !same_identity(&now.identity(), &then.identity()) {
                return None;
            }
            changed_live.push(position);
        }
        Some(Changes {
            manifests,
            live: changed_live,
            inventory_unchanged: Arc::ptr_eq(inventory, &self.inventory),
        })
    }
}

/// Whether two live objects are the same object to the planner: group, kind, namespace and
/// name (the version of the API they are served at may differ).
fn same_identity(a: &LiveIdentity<'_>, b: &LiveIdentity<'_>) -> bool {
    a.api_version.map(gitcontroller_sync::group_of)
        == b.api_version.map(gitcontroller_sync::group_of)
        && a.kind == b.kind
        && a.namespace == b.namespace
        && a.name == b.name
}

/// The plan step's output (the confirm step settles its applies).
pub struct Planned {
    /// What the plan was made from.
    pub inputs: Arc<PlanInputs>,
    /// The plan.
    pub plan: Plan,
    /// Manifests out of the repository's reach, left out of the plan, and why.
    pub refused: Vec<(ObjectId, Refusal)>,
    /// The live objects of the objects a `kubernetes` rule governs that are in sync (no write
    /// planned), as positions in `inputs.live`: their ownership is checked too.
    pub in_sync: Vec<usize>,
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
        match &self.repo.status {
            Some(status) => self.repository.inventory(&status.inventory),
            None => self.repository.inventory(&Default::default()),
        }
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
            inventory_list: self.repository.inventory_list(&inventory),
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

#[cfg(test)]
mod tests {
    use super::super::parse_cache::snapshot;
    use super::*;
    use serde_json::json;

    fn configmap(name: &str, level: &str) -> String {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: default\ndata:\n  level: {level}\n"
        )
    }

    fn live(name: &str, version: &str) -> Arc<LiveObject> {
        Arc::new(LiveObject::new(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "default", "resourceVersion": version}
        })))
    }

    fn places(parsed: &ParsedSnapshot) -> Vec<Place> {
        parsed.placed_manifests().map(|(place, _)| place).collect()
    }

    #[test]
    fn the_next_plan_is_told_what_changed_while_every_object_is_where_it_was() {
        let types = [ResourceType::new("", "v1", "ConfigMap", "configmaps", true)];
        let cache = ParseCache::default();
        let parse =
            |files: &[(&str, &str, &str)]| Arc::new(cache.parse(&snapshot(files), &types).unwrap());
        let (a, b) = (configmap("a", "info"), configmap("b", "info"));
        let first = parse(&[("a.yaml", "1", &a), ("b.yaml", "2", &b)]);
        let objects = Arc::new(vec![live("a", "1"), live("b", "1")]);
        let inventory: Inventory = Arc::default();
        let then = PlannedFrom {
            parsed: Arc::clone(&first),
            places: places(&first),
            live: Arc::clone(&objects),
            inventory: Arc::clone(&inventory),
        };

        let same = then
            .changes(&first, &places(&first), &objects, &inventory)
            .expect("everything where it was");
        assert!(same.manifests.is_empty() && same.live.is_empty());
        assert!(same.inventory_unchanged);

        // b.yaml's content and a's live object changed, and the inventory is another.
        let b_debug = configmap("b", "debug");
        let second = parse(&[("a.yaml", "1", &a), ("b.yaml", "3", &b_debug)]);
        let mut now = (*objects).clone();
        now[0] = live("a", "2");
        let other: Inventory = Arc::default();
        let changed = then
            .changes(&second, &places(&second), &now, &other)
            .expect("everything where it was");
        assert_eq!(changed.manifests, [1]);
        assert_eq!(changed.live, [0]);
        assert!(!changed.inventory_unchanged);

        // Another object at a position, a file of another name, another number of files: no
        // account (the plan reads everything).
        now[1] = live("c", "1");
        assert!(
            then.changes(&second, &places(&second), &now, &other)
                .is_none()
        );
        let renamed = parse(&[("a.yaml", "1", &a), ("c.yaml", "2", &b)]);
        assert!(
            then.changes(&renamed, &places(&renamed), &objects, &inventory)
                .is_none()
        );
        let fewer = parse(&[("a.yaml", "1", &a)]);
        assert!(
            then.changes(&fewer, &places(&fewer), &objects, &inventory)
                .is_none()
        );
        assert!(
            then.changes(&first, &places(&first), &objects[..1], &inventory)
                .is_none()
        );
    }
}
