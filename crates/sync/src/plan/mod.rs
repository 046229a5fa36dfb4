//! The planner: manifests × live objects × rules → actions.

use std::borrow::Borrow;
use std::collections::{BTreeSet, HashMap, HashSet, btree_set};
use std::hash::BuildHasherDefault;
use std::iter::Peekable;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::compare::{Verdict, applied_cmp, stored_cmp};
use crate::diagnostic::{Diagnostic, DiagnosticReason, HoldCause, Severity};
use crate::export::{self, SERVER_METADATA, SERVER_TOP_LEVEL};
use crate::fields::{Fields, ManagedFields};
use crate::hold::{self, Holds, InvalidRule};
use crate::id::{IdError, IdRef, KindHasher, LiveIdentity, LiveInput, TypeIndex, resolve_identity};
use crate::layout;
use crate::normalize::{fold_string_data, rewrite, unfold_string_data, with_string_data_members};
use crate::packed::PackedStrs;
use crate::pointer::{remove_path, set_path};
use crate::rule::{Ranked, rank_rules};
use crate::schema::SchemaNode;
use crate::skip::{SkippedInput, describe_all};
use crate::system;
use crate::walk::{self, Filter, Node, Sides};
use crate::{Manifest, ObjectId, Pointer, ResourceType, Rule, SyncTo};

mod delta;

pub use delta::InputChanges;
use delta::{Came, Join, JoinRecorder};

/// The field manager the controller applies with, and the default of
/// [`PlanOptions::field_manager`].
pub const DEFAULT_FIELD_MANAGER: &str = "git-controller";

/// Everything [`plan`] looks at. All of it is plain data; nothing is fetched.
///
/// `L` and `M` are how the caller holds its live objects and manifests: owned, or shared
/// (`Arc<Value>`, `&Manifest`: what a controller keeps in its watch caches and parse cache)
/// so that planning copies none of them.
#[derive(Debug)]
pub struct PlanInput<'a, L = Value, M = Manifest> {
    /// The manifests in the repository (from [`parse_manifests`](crate::parse_manifests)).
    pub manifests: &'a [M],
    /// The live objects, complete as the API serves them (`apiVersion` and `kind` set,
    /// `metadata.managedFields` included), for **every** type in `types` that a rule may
    /// select. An object missing here counts as deleted. Each may bring its identity read
    /// ahead of time ([`LiveInput`]).
    pub live: &'a [L],
    /// The valid rules of the repository.
    pub rules: &'a [Rule],
    /// The rules of the repository that are invalid, with the scope they could select
    /// ([`InvalidRule`]). Objects in that scope get no action in either direction; each held
    /// action and each such rule is reported as a [`HeldBack`](DiagnosticReason::HeldBack)
    /// diagnostic.
    pub invalid_rules: &'a [InvalidRule],
    /// Discovery information for every type that manifests or live objects may have.
    pub types: &'a [ResourceType],
    /// The objects this repository applied before; only these are ever deleted.
    pub inventory: &'a BTreeSet<ObjectId>,
    /// Inputs of the source that were not read: from the parser
    /// ([`skipped_inputs`](crate::skipped_inputs)) and from the caller (files the Git layer
    /// skipped: symlinks, not UTF-8, too large, over budget). While any exist the source is
    /// **incomplete**: nothing is deleted from the cluster and no new file is written to Git,
    /// because the missing manifests might be in them; each held action is reported as a
    /// [`HeldBack`](DiagnosticReason::HeldBack) diagnostic.
    pub skipped: &'a [SkippedInput],
    /// Switches.
    pub options: &'a PlanOptions,
}

// By hand: derived impls would ask `L: Copy`, but only references are copied.
impl<L, M> Clone for PlanInput<'_, L, M> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<L, M> Copy for PlanInput<'_, L, M> {}

/// Switches of a plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanOptions {
    /// Delete live objects that are in the inventory, are governed by a `kubernetes` rule and
    /// no longer have a manifest.
    pub prune: bool,
    /// Allow writing core `Secret`s to Git (in plain text).
    pub allow_plaintext_secrets: bool,
    /// The field manager used for server-side apply. The planner reads what this manager
    /// owns (`managedFields`, operation `Apply`) to keep those fields in apply bodies and to
    /// notice fields removed from Git.
    pub field_manager: String,
    /// Directory new files are placed under (e.g. the repository's `spec.path`); `""` for
    /// the paths of [`new_file_path`](crate::layout::new_file_path) as they are.
    pub layout_root: String,
    /// Whether [`Plan::noops`] lists the objects in sync (default). A caller that reads only
    /// the counts and [`Plan::applied_live`] turns it off: most objects are in sync, and
    /// listing them copies thousands of ids on every plan.
    #[serde(default = "listed")]
    pub list_noops: bool,
}

fn listed() -> bool {
    true
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions {
            prune: false,
            allow_plaintext_secrets: false,
            field_manager: DEFAULT_FIELD_MANAGER.to_owned(),
            layout_root: String::new(),
            list_noops: true,
        }
    }
}

/// A change to the cluster.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ClusterAction {
    /// Server-side apply `object` (with force, as field manager
    /// [`PlanOptions::field_manager`]).
    Apply {
        /// The object.
        id: ObjectId,
        /// The complete apply body: `apiVersion`, `kind`, `metadata.name`/`namespace`, the
        /// manifest's values where a `kubernetes` rule governs, and the live values (as far
        /// as the manifest sets them or our field manager owns them) everywhere else, so that
        /// applying it changes only `kubernetes`-governed fields.
        object: Value,
        /// True when the object does not exist yet.
        create: bool,
        /// The `kubernetes`-governed subtrees that differ (`[""]` for a create).
        paths: Vec<Pointer>,
    },
    /// Delete the object (it is in the inventory, has no manifest and `prune` is on).
    Delete {
        /// The object.
        id: ObjectId,
    },
}

impl ClusterAction {
    /// The object acted on.
    pub fn id(&self) -> &ObjectId {
        match self {
            ClusterAction::Apply { id, .. } | ClusterAction::Delete { id } => id,
        }
    }
}

/// A change to the repository.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum GitAction {
    /// Write `object` as document `doc_index` of `file`, or as a new file.
    Write {
        /// The object.
        id: ObjectId,
        /// The file (for a new file, from [`new_file_path`](crate::layout::new_file_path)).
        file: String,
        /// The document to replace, counted like [`Manifest::doc_index`]; `None` = new file.
        doc_index: Option<usize>,
        /// The complete new manifest: the old one with every `git`-governed subtree that
        /// differs replaced by the clean export's value (or removed). The manifest's
        /// `apiVersion` is kept. For a new file, the clean export.
        object: Value,
        /// The `git`-governed subtrees that changed (`[""]` for a new file).
        paths: Vec<Pointer>,
    },
    /// Remove document `doc_index` of `file` (the live object was deleted).
    Remove {
        /// The object.
        id: ObjectId,
        /// The file.
        file: String,
        /// The document, counted like [`Manifest::doc_index`] in the file as it was read.
        doc_index: usize,
    },
}

impl GitAction {
    /// The object acted on.
    pub fn id(&self) -> &ObjectId {
        match self {
            GitAction::Write { id, .. } | GitAction::Remove { id, .. } => id,
        }
    }
}

/// How many objects each direction governs (by the rule governing the root, or else by the
/// selecting rule with the highest precedence).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Objects whose Git manifest is applied to the cluster.
    pub to_kubernetes: usize,
    /// Objects whose live state is written to Git.
    pub to_git: usize,
    /// Objects governed by `ignore`.
    pub ignored: usize,
}

/// The outcome of [`plan`]. Every list is sorted by [`ObjectId`]; diagnostics by file, line,
/// object, rule, reason and message. An object appears at most once in `to_cluster`, at most
/// once in `to_git`, at most once in `to_confirm` (only if not in `to_cluster`), and in `noops`
/// only if it is in none of them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Changes to the cluster.
    pub to_cluster: Vec<ClusterAction>,
    /// Applies the planner could not decide without the API server ([`Verdict::Unsure`]):
    /// each is a [`ClusterAction::Apply`] (never a create) whose `paths` are the undecided
    /// `kubernetes` subtrees. Carry one out only if a server-side dry-run of its `object`
    /// changes the live object; the verdict holds as long as the manifest and the live
    /// object's `resourceVersion` do ([`changed_by_dry_run`](crate::changed_by_dry_run) reads
    /// the dry-run's answer). [`Plan::is_noop`] does not count these.
    #[serde(default)]
    pub to_confirm: Vec<ClusterAction>,
    /// Changes to the repository.
    pub to_git: Vec<GitAction>,
    /// Objects the repository manages that are in sync (empty unless
    /// [`PlanOptions::list_noops`]).
    pub noops: Vec<ObjectId>,
    /// The live objects of the noops that this repository applies (those with a manifest
    /// that a `kubernetes` rule selects, by the live object's labels), as positions in
    /// [`PlanInput::live`], in plan order: the caller checks that it owns them, and a position
    /// finds the object without a lookup or a copy of its id. Noops without a live object are
    /// not listed.
    #[serde(default)]
    pub applied_live: Vec<usize>,
    /// Findings.
    pub diagnostics: Vec<Diagnostic>,
    /// Objects per direction.
    pub counts: Counts,
}

impl Plan {
    /// True when nothing is to be done.
    pub fn is_noop(&self) -> bool {
        self.to_cluster.is_empty() && self.to_git.is_empty()
    }
}

/// Plans one reconcile. Pure and deterministic: the order of every input slice is
/// irrelevant. See `docs/sync-semantics.md` for the full contract.
pub fn plan<L: LiveInput, M: Borrow<Manifest>>(input: &PlanInput<'_, L, M>) -> Plan {
    plan_with(input, None, false).0
}

/// [`plan`], skipping the objects that `previous` found in sync and whose inputs did not
/// change since; returns the plan, which is exactly `plan(input)`, and what to pass as
/// `previous` next time.
///
/// An object is skipped (and planned as a noop, counted as before) when `previous` comes
/// from a plan with equal rules, invalid rules, types (schemas included) and options, in
/// which the object had exactly one manifest and one live object, was in sync and got no
/// diagnostic, and now has
/// - a manifest with the same [`revision`](Manifest::revision) (`Some`), file, document and
///   item, and
/// - a live object with the same `apiVersion`, `metadata.uid` and `metadata.resourceVersion`
///   (present).
///
/// The caller vouches for both: equal revisions mean equal manifests, and the API server
/// changes `resourceVersion` with every change of an object. When anything global differs,
/// `previous` is ignored and everything is planned.
pub fn plan_incremental<L: LiveInput, M: Borrow<Manifest>>(
    input: &PlanInput<'_, L, M>,
    previous: Option<&Settled>,
) -> (Plan, Settled) {
    plan_changed(input, previous, None)
}

/// [`plan_incremental`], told by the caller which inputs changed since the plan `previous`
/// came from ([`InputChanges`]): then, when that plan's inputs could be joined again as they
/// were (the same number of manifests and live objects, no invalid rule, nothing skipped, no
/// object of an unknown type), it plans only the objects whose inputs changed and those that
/// were not in sync, and counts the others as before without reading them. The plan is
/// exactly `plan(input)` as long as the caller's account is true.
pub fn plan_changed<L: LiveInput, M: Borrow<Manifest>>(
    input: &PlanInput<'_, L, M>,
    previous: Option<&Settled>,
    changes: Option<&InputChanges<'_>>,
) -> (Plan, Settled) {
    let globals = Globals::of(input);
    let previous = previous.filter(|p| p.globals.as_ref() == Some(&globals));
    if let (Some(previous), Some(changes)) = (previous, changes)
        && let Some(join) = &previous.join
        && let Some((plan, join)) = delta::plan(input, join, changes)
    {
        return (
            plan,
            Settled {
                globals: Some(globals),
                objects: previous.objects.clone(),
                join: Some(join),
            },
        );
    }
    let settled = previous.map(|p| p.objects.as_slice());
    let (plan, objects, join) = plan_with(input, settled, true);
    (
        plan,
        Settled {
            globals: Some(globals),
            objects: Arc::new(objects),
            join,
        },
    )
}

/// What [`plan_incremental`] remembers of a plan: the objects found in sync, with what that
/// verdict depended on, and the global inputs it holds for.
#[derive(Clone, Debug, Default)]
pub struct Settled {
    globals: Option<Globals>,
    /// Sorted by identity; shared from plan to plan. A plan of only what changed
    /// ([`plan_changed`]) keeps the list of the plan before it: each entry says what its
    /// verdict depended on, so an older list is still right about what it lists.
    objects: Arc<Vec<Arc<SettledObject>>>,
    /// The objects of the plan by their positions in its inputs, when they can be joined
    /// again from what changed.
    join: Option<Join>,
}

impl Settled {
    /// How many objects the next plan may skip.
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// True when the next plan can skip nothing.
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }
}

/// The inputs every object's verdict depends on.
#[derive(Clone, Debug, PartialEq)]
struct Globals {
    rules: Vec<Rule>,
    invalid_rules: Vec<InvalidRule>,
    types: Vec<ResourceType>,
    options: PlanOptions,
}

impl Globals {
    fn of<L, M>(input: &PlanInput<'_, L, M>) -> Self {
        Globals {
            rules: input.rules.to_vec(),
            invalid_rules: input.invalid_rules.to_vec(),
            types: input.types.to_vec(),
            options: input.options.clone(),
        }
    }
}

/// An object found in sync, and the versions of its inputs. The next plan reads every one of
/// them, its strings in one allocation ([`PackedStrs`]).
#[derive(Clone, Debug)]
struct SettledObject {
    /// Group, kind, namespace, name; the manifest's file; the live object's `apiVersion`,
    /// `metadata.uid` and `metadata.resourceVersion`.
    text: PackedStrs<8>,
    /// The manifest's revision.
    revision: Arc<str>,
    doc_index: usize,
    item_index: Option<usize>,
    /// The direction it is counted in.
    dominant: SyncTo,
    /// Whether its live object is in [`Plan::applied_live`].
    applied: bool,
}

/// A live object's `apiVersion`, `metadata.uid` and `metadata.resourceVersion`.
type LiveParts<'a> = (Option<&'a str>, Option<&'a str>, Option<&'a str>);

fn live_parts<'v>(identity: &LiveIdentity<'v>) -> LiveParts<'v> {
    (
        identity.api_version,
        identity.uid,
        identity.resource_version,
    )
}

impl SettledObject {
    /// `None` when the manifest has no revision or the live object no `apiVersion` or
    /// `resourceVersion` (nothing vouches that they did not change), or the strings are too
    /// long to pack.
    fn new(
        id: IdRef<'_>,
        m: &Manifest,
        (api_version, uid, resource_version): LiveParts<'_>,
        dominant: SyncTo,
        applied: bool,
    ) -> Option<Self> {
        Some(SettledObject {
            text: PackedStrs::new([
                Some(id.group),
                Some(id.kind),
                id.namespace,
                Some(id.name),
                Some(&m.file),
                Some(api_version?),
                uid,
                Some(resource_version?),
            ])?,
            revision: m.revision.clone()?,
            doc_index: m.doc_index,
            item_index: m.item_index,
            dominant,
            applied,
        })
    }

    fn id(&self) -> IdRef<'_> {
        IdRef {
            group: self.text.get(0).unwrap_or_default(),
            kind: self.text.get(1).unwrap_or_default(),
            namespace: self.text.get(2),
            name: self.text.get(3).unwrap_or_default(),
        }
    }

    /// Whether `m` is the manifest it was settled with.
    fn same_manifest(&self, m: &Manifest) -> bool {
        m.revision.as_ref() == Some(&self.revision)
            && m.doc_index == self.doc_index
            && m.item_index == self.item_index
            && self.text.get(4) == Some(m.file.as_str())
    }

    /// Whether `live` is the version of the live object it was settled with.
    fn same_live(&self, (api_version, uid, resource_version): LiveParts<'_>) -> bool {
        resource_version == self.text.get(7)
            && uid == self.text.get(6)
            && api_version == self.text.get(5)
    }
}

/// The manifest of an entry with exactly one manifest and one live object.
fn one_each<'e>(entry: &Entry<'e>) -> Option<&'e Manifest> {
    match (entry.manifest, entry.live) {
        (Some(m), Some(_)) if entry.more_manifests.is_empty() && !entry.live_twice => Some(m),
        _ => None,
    }
}

/// Plans; skips the objects of `previous` (sorted, valid for these global inputs) whose
/// inputs did not change, and, when `record`, returns the objects found in sync and, when
/// they can be joined again from what changed, the objects by their positions in the input.
fn plan_with<L: LiveInput, M: Borrow<Manifest>>(
    input: &PlanInput<'_, L, M>,
    previous: Option<&[Arc<SettledObject>]>,
    record: bool,
) -> (Plan, Vec<Arc<SettledObject>>, Option<Join>) {
    let types = TypeIndex::new(input.types);
    let mut out = Plan::default();
    let rules = rank_rules(input.rules, &types, &mut out.diagnostics);
    // The rules' findings; those after them are about objects.
    let rule_diagnostics = out.diagnostics.len();

    // Both sides sorted by identity, then merged: the objects come out in plan order. The
    // type's position stands in for (group, kind), which saves most string comparisons.
    let mut namespaces = Namespaces::default();
    let mut manifests: Vec<(SortKey<'_>, &ResourceType, &Manifest, usize)> =
        Vec::with_capacity(input.manifests.len());
    let all_manifests: Vec<&Manifest> = input.manifests.iter().map(Borrow::borrow).collect();
    for (position, &m) in all_manifests.iter().enumerate() {
        match types.get_ordered(&m.id.group, &m.id.kind) {
            Some((ordinal, ty)) => {
                let id = IdRef {
                    group: &ty.group,
                    kind: &ty.kind,
                    ..IdRef::of(&m.id)
                };
                manifests.push((namespaces.key(ordinal, id), ty, m, position));
            }
            None => out.diagnostics.push(
                Diagnostic::new(
                    Severity::Warning,
                    DiagnosticReason::UnknownKind,
                    format!("kind {} is not served by the cluster; skipped", m.id.kind),
                )
                .file(&m.file)
                .object(&m.id),
            ),
        }
    }
    // What incremental planning compares is kept apart, by position: sorting moves the
    // entries, and smaller ones move faster.
    let mut live: Vec<(SortKey<'_>, &ResourceType, &Value, usize)> =
        Vec::with_capacity(input.live.len());
    // By position in `input.live`, when recording.
    let mut versions: Vec<LiveParts<'_>> = Vec::new();
    for (position, input_object) in input.live.iter().enumerate() {
        let obj = input_object.object();
        let identity = input_object.identity();
        match resolve_identity(&identity, &types) {
            Ok((id, ordinal, ty)) => {
                // The type's group and kind are the object's, and stay in the cache.
                let id = IdRef {
                    group: &ty.group,
                    kind: &ty.kind,
                    ..id
                };
                // Kept by position: the sort moves smaller entries faster.
                if record {
                    versions.push(live_parts(&identity));
                }
                live.push((namespaces.key(ordinal, id), ty, obj, position));
            }
            Err(err) => {
                if record {
                    versions.push(LiveParts::default());
                }
                out.diagnostics.push(live_id_diagnostic(obj, err));
            }
        }
    }
    let ranks = namespaces.ranks();
    for key in manifests
        .iter_mut()
        .map(|m| &mut m.0)
        .chain(live.iter_mut().map(|l| &mut l.0))
    {
        rank(key, &ranks);
    }
    manifests.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    live.sort_unstable_by(|a, b| a.0.cmp(&b.0));

    // Most objects stay in sync: the noops are most of them. Reserved up front, the lists
    // are not copied over and over while they grow.
    let expected_noops = match previous {
        Some(settled) if record => settled.len(),
        _ => manifests.len().max(live.len()),
    };
    if input.options.list_noops {
        out.noops.reserve(expected_noops);
    }
    out.applied_live
        .reserve(expected_noops.min(manifests.len()));
    // Joined again from what changed only when nothing but the objects themselves decides
    // the plan: no invalid rule, nothing skipped, every object's type known.
    let mut recorder = (record
        && out.diagnostics.len() == rule_diagnostics
        && input.invalid_rules.is_empty()
        && input.skipped.is_empty())
    .then(|| JoinRecorder::new(input.manifests.len(), input.live.len()));
    let mut planner = Planner::new(input, &all_manifests, &rules, out, false);
    let previous = previous.unwrap_or_default();
    let mut next_previous = 0;
    let mut settled = Vec::with_capacity(if record { previous.len() } else { 0 });
    let (mut mi, mut li) = (0, 0);
    loop {
        let (key, ty) = match (manifests.get(mi), live.get(li)) {
            (Some(m), Some(l)) if l.0 < m.0 => (l.0, l.1),
            (Some(m), _) => (m.0, m.1),
            (None, Some(l)) => (l.0, l.1),
            (None, None) => break,
        };
        let mut entry: Option<Entry<'_>> = None;
        let id = key.id(ty);
        if let Some(recorder) = &mut recorder {
            recorder.start();
        }
        while let Some(&(_, ty, m, position)) = manifests.get(mi).filter(|m| m.0 == key) {
            let e = entry.get_or_insert_with(|| Entry::new(ty));
            match e.manifest {
                None => e.manifest = Some(m),
                Some(_) => e.more_manifests.push(m),
            }
            if let Some(recorder) = &mut recorder {
                recorder.manifest(position);
            }
            mi += 1;
        }
        while let Some(&(_, ty, obj, position)) = live.get(li).filter(|l| l.0 == key) {
            let e = entry.get_or_insert_with(|| Entry::new(ty));
            e.live_twice |= e.live.is_some();
            e.live = Some(obj);
            e.live_position = position;
            e.live_version = versions.get(position).copied().unwrap_or_default();
            if let Some(recorder) = &mut recorder {
                recorder.live(position);
            }
            li += 1;
        }
        let Some(entry) = entry else {
            continue;
        };
        // `previous` is sorted like the objects come: step through it alongside.
        while previous.get(next_previous).is_some_and(|s| s.id() < id) {
            next_previous += 1;
        }
        let both = one_each(&entry);
        if let (Some(s), Some(m)) = (previous.get(next_previous), both)
            && s.id() == id
            && s.same_manifest(m)
            && s.same_live(entry.live_version)
        {
            planner.settled_noop(s, entry.live_position);
            if record {
                settled.push(Arc::clone(s));
            }
            if let Some(recorder) = &mut recorder {
                recorder.came(Came::Settled {
                    dominant: s.dominant,
                    applied: s.applied,
                });
            }
            continue;
        }
        let before = planner.mark();
        let noop = planner.object(id, &entry);
        let came = planner.came(before, noop.as_ref(), both.is_some());
        if let Some(recorder) = &mut recorder {
            recorder.came(came);
        }
        if let (true, Some((noop_id, dominant, applied)), Some(m)) = (record, noop, both)
            && planner.out.diagnostics.len() == before.diagnostics
            && let Some(object) = SettledObject::new(
                IdRef::of(&noop_id),
                m,
                entry.live_version,
                dominant,
                applied,
            )
        {
            settled.push(Arc::new(object));
        }
    }
    let mut out = planner.out;
    out.diagnostics.extend(planner.holds.summaries());
    out.diagnostics.sort_by(Diagnostic::stable_cmp);
    (out, settled, recorder.and_then(JoinRecorder::finish))
}

/// Orders like [`ObjectId`] when `ordinal` is the type's position in (group, kind) order and
/// `namespace` the namespace's rank among the plan's namespaces ([`Namespaces`]).
///
/// Sorting 10,000 objects compares each key a dozen times, and the merge compares it again;
/// the strings live in the objects, scattered over the heap, so each comparison would be a
/// cache miss or two. A namespace is a number here (a plan has few; most objects share theirs
/// with thousands, so its text would be read in full at every comparison), and the first 16
/// bytes of the name are copied into the key while the object is being read anyway, and decide
/// almost every comparison.
#[derive(Clone, Copy)]
struct SortKey<'a> {
    ordinal: usize,
    namespace: Option<u32>,
    name: Prefixed<'a>,
    /// The namespace's text, for [`SortKey::id`]; its rank stands for it in comparisons.
    namespace_text: Option<&'a str>,
}

impl SortKey<'_> {
    fn compared(&self) -> (usize, Option<u32>, &Prefixed<'_>) {
        (self.ordinal, self.namespace, &self.name)
    }
}

impl Ord for SortKey<'_> {
    #[inline]
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.compared().cmp(&other.compared())
    }
}

impl PartialOrd for SortKey<'_> {
    #[inline]
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for SortKey<'_> {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for SortKey<'_> {}

impl<'a> SortKey<'a> {
    /// The identity this key was made of, for an object of type `ty`.
    fn id(&self, ty: &'a ResourceType) -> IdRef<'a> {
        IdRef {
            group: &ty.group,
            kind: &ty.kind,
            namespace: self.namespace_text,
            name: self.name.text,
        }
    }
}

/// The namespaces of one plan's objects, each numbered as first seen, then ranked in text order
/// ([`SortKey`] compares ranks).
#[derive(Default)]
struct Namespaces<'a> {
    seen: HashMap<&'a str, u32, BuildHasherDefault<KindHasher>>,
}

impl<'a> Namespaces<'a> {
    /// The key of `id`, with its namespace numbered as first seen: [`Namespaces::rank`] turns
    /// the number into the rank once every key is made.
    fn key(&mut self, ordinal: usize, id: IdRef<'a>) -> SortKey<'a> {
        let namespace = id.namespace.map(|ns| {
            let next = u32::try_from(self.seen.len()).expect("fewer than 2^32 namespaces");
            *self.seen.entry(ns).or_insert(next)
        });
        SortKey {
            ordinal,
            namespace,
            name: Prefixed::new(id.name),
            namespace_text: id.namespace,
        }
    }

    /// For each number [`Namespaces::key`] gave, the namespace's rank in text order.
    fn ranks(&self) -> Vec<u32> {
        let mut by_text: Vec<(&str, u32)> = self.seen.iter().map(|(ns, n)| (*ns, *n)).collect();
        by_text.sort_unstable();
        let mut ranks = vec![0; by_text.len()];
        for (rank, (_, number)) in by_text.into_iter().enumerate() {
            ranks[number as usize] = u32::try_from(rank).expect("fewer than 2^32 namespaces");
        }
        ranks
    }
}

/// Replaces the first-seen numbers of `key`'s namespace by its rank.
fn rank(key: &mut SortKey<'_>, ranks: &[u32]) {
    if let Some(number) = &mut key.namespace {
        *number = ranks[*number as usize];
    }
}

/// A string with its first 16 bytes as two big-endian numbers (zero-padded), which order
/// like the string wherever they differ.
#[derive(Clone, Copy)]
struct Prefixed<'a> {
    prefix: (u64, u64),
    text: &'a str,
}

impl<'a> Prefixed<'a> {
    fn new(text: &'a str) -> Self {
        let mut bytes = [0u8; 16];
        let head = &text.as_bytes()[..text.len().min(16)];
        bytes[..head.len()].copy_from_slice(head);
        let (high, low) = bytes.split_at(8);
        let word = |b: &[u8]| u64::from_be_bytes(b.try_into().expect("eight bytes"));
        Prefixed {
            prefix: (word(high), word(low)),
            text,
        }
    }
}

impl Ord for Prefixed<'_> {
    // Inlined into the sort's comparisons, where the prefixes almost always decide.
    #[inline]
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.prefix.cmp(&other.prefix).then_with(|| {
            // Equal prefixes of strings that fit in them: the shorter one ends where the
            // other has zero bytes, so it comes first, and the bytes need not be read.
            if self.text.len() <= 16 && other.text.len() <= 16 {
                self.text.len().cmp(&other.text.len())
            } else {
                self.text.cmp(other.text)
            }
        })
    }
}

impl PartialOrd for Prefixed<'_> {
    #[inline]
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Prefixed<'_> {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for Prefixed<'_> {}

fn live_id_diagnostic(obj: &Value, err: IdError) -> Diagnostic {
    let name = obj
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("?");
    match err {
        IdError::Incomplete(field) => Diagnostic::new(
            Severity::Warning,
            DiagnosticReason::NotAnObject,
            format!("a live object ({name}) has no {field}; skipped"),
        ),
        IdError::UnknownKind { api_version, kind } => Diagnostic::new(
            Severity::Warning,
            DiagnosticReason::UnknownKind,
            format!(
                "live object {name} is a {kind} of {api_version}, which is not in the discovery information; skipped"
            ),
        ),
    }
}

struct Entry<'a> {
    ty: &'a ResourceType,
    manifest: Option<&'a Manifest>,
    more_manifests: Vec<&'a Manifest>,
    live: Option<&'a Value>,
    /// The position of `live` in the input.
    live_position: usize,
    live_twice: bool,
    /// Read when planning incrementally.
    live_version: LiveParts<'a>,
}

impl<'a> Entry<'a> {
    fn new(ty: &'a ResourceType) -> Self {
        Entry {
            ty,
            manifest: None,
            more_manifests: Vec::new(),
            live: None,
            live_position: 0,
            live_twice: false,
            live_version: LiveParts::default(),
        }
    }
}

/// Where the plan's lists and counts stood before an object was planned.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Mark {
    cluster: usize,
    confirm: usize,
    git: usize,
    diagnostics: usize,
    counts: Counts,
}

/// How many actions of each list were planned before an object.
#[derive(Clone, Copy)]
struct Planned {
    cluster: usize,
    confirm: usize,
    git: usize,
}

/// What became of one object.
#[derive(Default)]
struct Outcome {
    acted: bool,
    blocked: bool,
}

struct Planner<'i, 'r> {
    manifests: &'i [&'i Manifest],
    options: &'i PlanOptions,
    rules: &'r [Ranked<'r>],
    /// The inventory, consumed in step with the (sorted) objects.
    inventory: Peekable<btree_set::Iter<'i, ObjectId>>,
    /// The inventory, looked up instead when only a few objects are planned
    /// (`seek_inventory`): stepping through it would read all of it.
    inventory_set: &'i BTreeSet<ObjectId>,
    seek_inventory: bool,
    out: Plan,
    /// Files that exist or are planned; made when the first new file is planned.
    taken: Option<HashSet<String>>,
    /// The invalid rules and what they hold back.
    holds: Holds<'i>,
    /// Why deletes and new files are held back, when the source is incomplete.
    incomplete: Option<String>,
    /// Buffers reused from object to object.
    selected: Vec<&'r Ranked<'r>>,
    filters: Vec<Filter<'r>>,
    /// The invalid rules covering the current object.
    covering: Vec<usize>,
}

impl<'i, 'r> Planner<'i, 'r> {
    /// A planner of `input` writing into `out`; `seek_inventory` when only a few objects are
    /// planned (see [`Planner::in_inventory`]).
    fn new<L, M>(
        input: &PlanInput<'i, L, M>,
        manifests: &'i [&'i Manifest],
        rules: &'r [Ranked<'r>],
        out: Plan,
        seek_inventory: bool,
    ) -> Self {
        Planner {
            manifests,
            options: input.options,
            rules,
            inventory: input.inventory.iter().peekable(),
            inventory_set: input.inventory,
            seek_inventory,
            out,
            taken: None,
            holds: Holds::new(input.invalid_rules),
            incomplete: (!input.skipped.is_empty()).then(|| {
                format!(
                    "the source is incomplete and the object may be defined in what was skipped: {}",
                    describe_all(input.skipped, 5)
                )
            }),
            selected: Vec::new(),
            filters: Vec::new(),
            covering: Vec::new(),
        }
    }

    /// Plans one object; when it is a noop (then last in [`Plan::noops`] if they are listed),
    /// returns its id, the direction it is counted in and whether it is applied.
    fn object(&mut self, key: IdRef<'_>, entry: &Entry<'_>) -> Option<(ObjectId, SyncTo, bool)> {
        if let Some(first) = entry.manifest.filter(|_| !entry.more_manifests.is_empty()) {
            let mut all: Vec<&Manifest> = std::iter::once(first)
                .chain(entry.more_manifests.iter().copied())
                .collect();
            all.sort_by(|a, b| (&a.file, a.doc_index).cmp(&(&b.file, b.doc_index)));
            let places: Vec<String> = all
                .iter()
                .map(|m| format!("{} (document {})", m.file, m.doc_index))
                .collect();
            self.out.diagnostics.push(
                Diagnostic::new(
                    Severity::Error,
                    DiagnosticReason::Duplicate,
                    format!(
                        "defined more than once: {}; none of them is applied until only one is left",
                        places.join(", ")
                    ),
                )
                .file(&all[0].file)
                .object(&key.to_owned()),
            );
            return None;
        }
        if entry.live_twice {
            self.out.diagnostics.push(
                Diagnostic::new(
                    Severity::Warning,
                    DiagnosticReason::Duplicate,
                    "the live objects list this object twice; skipped".to_owned(),
                )
                .object(&key.to_owned()),
            );
            return None;
        }
        let labels_from = match (entry.live, entry.manifest) {
            (Some(live), _) => live,
            (None, Some(m)) => &m.object,
            (None, None) => return None,
        };
        // A system object Git has no manifest for is selected only by name (Rule::adopts).
        let system = match (entry.manifest, entry.live) {
            (None, Some(live)) => system::of(key, live),
            _ => None,
        };
        let mut covering = std::mem::take(&mut self.covering);
        self.holds
            .covering(key, entry.ty, labels_from, &mut covering);
        let mut selected = std::mem::take(&mut self.selected);
        selected.clear();
        selected.extend(
            self.rules
                .iter()
                .filter(|r| r.rule.selects_ref(key, entry.ty, labels_from, system)),
        );
        let mut filters = std::mem::take(&mut self.filters);
        walk::filters_of(&selected, &mut filters);
        let before = Planned {
            cluster: self.out.to_cluster.len(),
            confirm: self.out.to_confirm.len(),
            git: self.out.to_git.len(),
        };
        let in_sync = self.selected_object(key, entry, &selected, &filters);
        self.withhold(before, entry.manifest, &covering);
        let noop = in_sync
            .filter(|_| covering.is_empty())
            .map(|(id, dominant)| {
                let applied = entry.manifest.is_some()
                    && selected
                        .iter()
                        .any(|r| r.rule.sync_to == SyncTo::Kubernetes);
                if applied && entry.live.is_some() {
                    self.out.applied_live.push(entry.live_position);
                }
                if self.options.list_noops {
                    self.out.noops.push(id.clone());
                }
                (id, dominant, applied)
            });
        self.selected = selected;
        self.filters = filters;
        self.covering = covering;
        noop
    }

    /// An object found in sync before, whose inputs did not change: a noop again; its live
    /// object is at `live_position` of the input.
    fn settled_noop(&mut self, settled: &SettledObject, live_position: usize) {
        self.count(settled.dominant);
        if settled.applied {
            self.out.applied_live.push(live_position);
        }
        if self.options.list_noops {
            self.out.noops.push(settled.id().to_owned());
        }
    }

    /// Where the plan's lists and counts stand, before an object is planned.
    fn mark(&self) -> Mark {
        Mark {
            cluster: self.out.to_cluster.len(),
            confirm: self.out.to_confirm.len(),
            git: self.out.to_git.len(),
            diagnostics: self.out.diagnostics.len(),
            counts: self.out.counts,
        }
    }

    /// What became of the object planned since `before`, for planning it again: in sync
    /// (`noop`, with one manifest and one live object, `one_each`, and no finding), or nothing
    /// at all (not counted, no action, no finding), or anything else.
    fn came(&self, before: Mark, noop: Option<&(ObjectId, SyncTo, bool)>, one_each: bool) -> Came {
        let found = self.out.diagnostics.len() != before.diagnostics;
        match noop {
            Some(&(_, dominant, applied)) if one_each && !found => {
                Came::Settled { dominant, applied }
            }
            None if !found && self.mark() == before => Came::Quiet,
            _ => Came::Planned,
        }
    }

    fn count(&mut self, direction: SyncTo) {
        match direction {
            SyncTo::Kubernetes => self.out.counts.to_kubernetes += 1,
            SyncTo::Git => self.out.counts.to_git += 1,
            SyncTo::Ignore => self.out.counts.ignored += 1,
        }
    }

    /// Takes the actions planned since `before` out of the plan where they must not happen,
    /// reporting each as held back: all of them (applies to confirm included) while an
    /// invalid rule covers the object, Git actions on a `List` item, and deletes and new files
    /// while the source is incomplete.
    fn withhold(&mut self, before: Planned, manifest: Option<&Manifest>, covering: &[usize]) {
        let list_item = manifest.filter(|m| m.item_index.is_some());
        let planned = self.out.to_cluster.len() + self.out.to_confirm.len() + self.out.to_git.len()
            - before.cluster
            - before.confirm
            - before.git;
        if planned == 0 || (covering.is_empty() && self.incomplete.is_none() && list_item.is_none())
        {
            return;
        }
        let rule = self.holds.first_name(covering).map(str::to_owned);
        let cluster: Vec<(ClusterAction, bool)> = (self.out.to_cluster.drain(before.cluster..))
            .map(|a| (a, false))
            .chain(
                self.out
                    .to_confirm
                    .drain(before.confirm..)
                    .map(|a| (a, true)),
            )
            .collect();
        for (action, to_confirm) in cluster {
            let (cause, why) = if !covering.is_empty() {
                (HoldCause::InvalidRule, self.holds.count_held(covering))
            } else if let (Some(why), ClusterAction::Delete { .. }) = (&self.incomplete, &action) {
                (HoldCause::IncompleteSource, why.clone())
            } else if to_confirm {
                self.out.to_confirm.push(action);
                continue;
            } else {
                self.out.to_cluster.push(action);
                continue;
            };
            let mut d = hold::cluster_action(&action, cause, &why, manifest);
            d.rule.clone_from(&rule);
            self.out.diagnostics.push(d);
        }
        let git: Vec<GitAction> = self.out.to_git.drain(before.git..).collect();
        for action in git {
            let new_file = matches!(
                action,
                GitAction::Write {
                    doc_index: None,
                    ..
                }
            );
            let (cause, why) = if !covering.is_empty() {
                (HoldCause::InvalidRule, self.holds.count_held(covering))
            } else if let Some(item) = list_item {
                (HoldCause::ListItem, hold::list_item_why(item))
            } else if let (Some(why), true) = (&self.incomplete, new_file) {
                (HoldCause::IncompleteSource, why.clone())
            } else {
                self.out.to_git.push(action);
                continue;
            };
            let mut d = hold::git_action(&action, cause, &why);
            d.rule.clone_from(&rule);
            self.out.diagnostics.push(d);
            // The path is free again for other new files.
            if let (GitAction::Write { file, .. }, true, Some(taken)) =
                (&action, new_file, &mut self.taken)
            {
                taken.remove(file);
            }
        }
    }

    /// Plans one object the rules in `selected` select; returns its identity and the
    /// direction it is counted in when it is in sync (no action planned, nothing blocked).
    fn selected_object(
        &mut self,
        key: IdRef<'_>,
        entry: &Entry<'_>,
        selected: &[&'r Ranked<'r>],
        filters: &[Filter<'r>],
    ) -> Option<(ObjectId, SyncTo)> {
        let Some(first) = selected.first() else {
            if let Some(m) = entry.manifest {
                self.out.diagnostics.push(
                    Diagnostic::new(
                        Severity::Info,
                        DiagnosticReason::NoMatchingRule,
                        "no rule selects this object; it is not synced".to_owned(),
                    )
                    .file(&m.file)
                    .object(&m.id),
                );
            }
            return None;
        };
        let root = walk::root_rule(filters).map(|r| r.rule.sync_to);
        // `selected` is in rank order, so its first rule has the highest precedence.
        let dominant = root.unwrap_or(first.rule.sync_to);
        // Only a live object without a manifest asks: comparing with the inventory's
        // identities reads their strings, out of the cache at 10,000 objects.
        let in_inventory = entry.manifest.is_none() && self.in_inventory(key);
        if entry.manifest.is_none() && !in_inventory && root != Some(SyncTo::Git) {
            return None; // a live object this repository has nothing to do with
        }

        let id = key.to_owned();
        let outcome = match (entry.manifest, entry.live) {
            (Some(m), None) => self.only_in_git(&id, entry.ty, m, root),
            (None, Some(live)) => self.only_live(&id, entry.ty, live, root, in_inventory),
            (Some(m), Some(live)) => self.both(&id, entry.ty, m, live, filters),
            (None, None) => return None,
        };
        self.count(dominant);
        (!outcome.acted && !outcome.blocked).then_some((id, dominant))
    }

    fn only_in_git(
        &mut self,
        id: &ObjectId,
        ty: &ResourceType,
        m: &Manifest,
        root: Option<SyncTo>,
    ) -> Outcome {
        match root {
            Some(SyncTo::Kubernetes) => {
                let mut object = Value::clone(&m.object);
                normalize_apply_body(&mut object, id, ty);
                self.out.to_cluster.push(ClusterAction::Apply {
                    id: id.clone(),
                    object,
                    create: true,
                    paths: vec![Pointer::root()],
                });
                acted()
            }
            // The live object was deleted: the cluster is the source of truth.
            Some(SyncTo::Git) => {
                self.out.to_git.push(GitAction::Remove {
                    id: id.clone(),
                    file: m.file.clone(),
                    doc_index: m.doc_index,
                });
                acted()
            }
            Some(SyncTo::Ignore) | None => Outcome::default(),
        }
    }

    fn only_live(
        &mut self,
        id: &ObjectId,
        ty: &ResourceType,
        live: &Value,
        root: Option<SyncTo>,
        in_inventory: bool,
    ) -> Outcome {
        match root {
            Some(SyncTo::Git) => {
                if self.refuse_secret(id) {
                    return blocked();
                }
                let path = match layout::new_file_path(&self.options.layout_root, id, &ty.plural) {
                    Ok(path) => path,
                    Err(unsafe_path) => {
                        self.out.diagnostics.push(
                            Diagnostic::new(
                                Severity::Warning,
                                DiagnosticReason::UnsafePath,
                                format!(
                                    "not exported to Git: its identity gives no usable file path ({unsafe_path}); every other object is still written"
                                ),
                            )
                            .object(id),
                        );
                        return blocked();
                    }
                };
                // No skipped paths: while any input is skipped, no new file is written.
                let taken = self
                    .taken
                    .get_or_insert_with(|| self.manifests.iter().map(|m| m.file.clone()).collect());
                let file = layout::disambiguate(path, |p| taken.contains(p));
                taken.insert(file.clone());
                self.out.to_git.push(GitAction::Write {
                    id: id.clone(),
                    file,
                    doc_index: None,
                    object: export::clean(live),
                    paths: vec![Pointer::root()],
                });
                acted()
            }
            Some(SyncTo::Kubernetes) if in_inventory && self.options.prune => {
                self.out
                    .to_cluster
                    .push(ClusterAction::Delete { id: id.clone() });
                acted()
            }
            _ => Outcome::default(),
        }
    }

    fn both(
        &mut self,
        id: &ObjectId,
        ty: &ResourceType,
        m: &Manifest,
        live: &Value,
        filters: &[Filter<'r>],
    ) -> Outcome {
        // The server moves a Secret's `stringData` into `data`; compare what it stores.
        let folded = if id.is_secret() {
            fold_string_data(&m.object)
        } else {
            None
        };
        let manifest = folded.as_ref().unwrap_or(&m.object);
        let managed = ManagedFields::of(live);
        let sides = Sides {
            manifest: Some(manifest),
            live: Some(live),
            ours: managed.applied_by(&self.options.field_manager),
        };
        let root_schema = ty.schema.as_ref().map_or(SchemaNode::UNKNOWN, |s| s.root());
        let mut schemas = SchemaPath::default();
        // What all managers own and the trivia are only needed at git-governed nodes: read
        // them on demand.
        let mut anyone: Option<Option<Fields<'_>>> = None;
        let mut trivia: Option<export::Trivia<'_>> = None;

        let mut drift: Vec<Pointer> = Vec::new();
        let mut unsure: Vec<Pointer> = Vec::new();
        let mut writes: Vec<(Pointer, Option<Value>)> = Vec::new();
        walk::walk(&sides, filters, &mut |node: &Node<'_, '_, '_>| match node
            .rule
            .map(|r| r.rule.sync_to)
        {
            Some(SyncTo::Kubernetes) => {
                let trivia = trivia.get_or_insert_with(|| export::Trivia::of(live));
                let at = schemas.at(root_schema, node.path);
                let verdict =
                    applied_cmp(node.path, node.manifest, node.live, at, node.ours, trivia);
                let pointer = || Pointer::from_tokens(node.path.iter().copied());
                match verdict {
                    Verdict::Equal => {}
                    Verdict::Unsure => unsure.push(pointer()),
                    Verdict::Different => drift.push(pointer()),
                }
            }
            Some(SyncTo::Git) => {
                let root = anyone.get_or_insert_with(|| managed.owned_by_anyone());
                let owned = root.as_ref().map(|r| r.descend(node.path));
                let owners = owned.as_ref().map(Option::as_ref);
                let trivia = trivia.get_or_insert_with(|| export::Trivia::of(live));
                if let Some(mut export) =
                    export::export_if_different(node.path, node.manifest, node.live, owners, trivia)
                {
                    // Equal as the server stores values (or undecidable): Git keeps its
                    // spelling. Otherwise only what differs is rewritten.
                    if id.is_secret() && node.path.first() == Some(&"data") {
                        let all = root.as_ref();
                        export = with_string_data_members(node.path, live, export, all);
                    }
                    let at = schemas.at(root_schema, node.path);
                    let owners = owners.flatten();
                    if stored_cmp(node.manifest, export.as_ref(), at, owners) == Verdict::Different
                    {
                        let value = rewrite(node.manifest, export.as_ref(), at, owners);
                        writes.push((Pointer::from_tokens(node.path.iter().copied()), value));
                    }
                }
            }
            _ => {}
        });

        // Sorted, whatever order the maps iterate in.
        drift.sort_unstable();
        unsure.sort_unstable();
        writes.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut outcome = Outcome::default();
        if !writes.is_empty() {
            if self.refuse_secret(id) {
                outcome.blocked = true;
            } else {
                let mut object = Value::clone(&m.object);
                let mut paths = Vec::with_capacity(writes.len());
                let writes_data = writes
                    .iter()
                    .any(|(p, _)| p.tokens().first().is_none_or(|t| t == "data"));
                for (path, value) in writes {
                    match value {
                        Some(v) => set_path(&mut object, path.tokens(), v),
                        None => {
                            remove_path(&mut object, path.tokens());
                        }
                    }
                    paths.push(path);
                }
                if folded.is_some() && writes_data {
                    unfold_string_data(&m.object, &mut object);
                }
                self.out.to_git.push(GitAction::Write {
                    id: id.clone(),
                    file: m.file.clone(),
                    doc_index: Some(m.doc_index),
                    object,
                    paths,
                });
                outcome.acted = true;
            }
        }
        if !drift.is_empty() || !unsure.is_empty() {
            let object = apply_body(&sides, filters, manifest, id, ty);
            let (list, paths) = if drift.is_empty() {
                (&mut self.out.to_confirm, unsure)
            } else {
                (&mut self.out.to_cluster, drift)
            };
            list.push(ClusterAction::Apply {
                id: id.clone(),
                object,
                create: false,
                paths,
            });
            // Not a noop: an undecided object is not known to be in sync.
            outcome.acted = true;
        }
        outcome
    }

    /// Whether `key` is in the inventory; keys must come in ascending order.
    fn in_inventory(&mut self, key: IdRef<'_>) -> bool {
        if self.seek_inventory {
            return self.inventory_set.contains(&key.to_owned());
        }
        while self.inventory.next_if(|inv| IdRef::of(inv) < key).is_some() {}
        self.inventory
            .peek()
            .is_some_and(|inv| IdRef::of(inv) == key)
    }

    fn refuse_secret(&mut self, id: &ObjectId) -> bool {
        if !id.is_secret() || self.options.allow_plaintext_secrets {
            return false;
        }
        self.out.diagnostics.push(
            Diagnostic::new(
                Severity::Warning,
                DiagnosticReason::SecretExportRefused,
                "a git rule governs this Secret, but writing Secrets to Git in plain text is not allowed (allowPlaintextSecrets)".to_owned(),
            )
            .object(id),
        );
        true
    }
}

fn acted() -> Outcome {
    Outcome {
        acted: true,
        blocked: false,
    }
}

fn blocked() -> Outcome {
    Outcome {
        acted: false,
        blocked: true,
    }
}

/// The schema along the path of the walk's last node: the walk visits nodes depth first, so
/// consecutive paths share a prefix, whose lookups (a binary search per level) are kept.
#[derive(Default)]
struct SchemaPath<'a, 's> {
    /// Each token of the path with the schema below it.
    steps: Vec<(&'a str, SchemaNode<'s>)>,
}

impl<'a, 's> SchemaPath<'a, 's> {
    /// The schema at `path`, where `root` is the object's.
    fn at(&mut self, root: SchemaNode<'s>, path: &[&'a str]) -> SchemaNode<'s> {
        if !root.is_known() {
            return root; // nothing is known below it either
        }
        let shared = self
            .steps
            .iter()
            .zip(path)
            .take_while(|((kept, _), token)| {
                // Tokens of one object mostly are the very same strings.
                kept.len() == token.len() && (std::ptr::eq(*kept, **token) || kept == *token)
            })
            .count();
        self.steps.truncate(shared);
        for token in &path[shared..] {
            let parent = self.steps.last().map_or(root, |(_, node)| *node);
            self.steps.push((token, parent.field(token)));
        }
        self.steps.last().map_or(root, |(_, node)| *node)
    }
}

/// The server-side apply body for an existing object; see [`ClusterAction::Apply`].
fn apply_body(
    sides: &Sides<'_>,
    filters: &[Filter<'_>],
    manifest: &Value,
    id: &ObjectId,
    ty: &ResourceType,
) -> Value {
    let mut body = manifest.clone();
    normalize_apply_body(&mut body, id, ty);
    walk::walk(sides, filters, &mut |node: &Node<'_, '_, '_>| {
        if node
            .rule
            .is_some_and(|r| r.rule.sync_to == SyncTo::Kubernetes)
        {
            return;
        }
        // Keep what we set before (manifest or our managed fields) at its live value, so the
        // apply neither changes nor releases it.
        let keep = if node.manifest.is_some() || node.ours.is_some() {
            restrict(node.live, node.manifest, node.ours)
        } else {
            None
        };
        match keep {
            Some(v) => set_path(&mut body, node.path, v),
            None if node.manifest.is_some() => {
                remove_path(&mut body, node.path);
            }
            None => {}
        }
    });
    body
}

/// The live value restricted to the members the manifest sets or we own (arrays and scalars
/// whole).
fn restrict(live: Option<&Value>, m: Option<&Value>, ours: Option<&Fields<'_>>) -> Option<Value> {
    let live = live?;
    match live {
        Value::Object(lo) if !ours.is_some_and(Fields::is_whole) => {
            let mo = m.and_then(Value::as_object);
            let mut out = Map::new();
            for (k, lv) in lo {
                let mk = mo.and_then(|mo| mo.get(k));
                let ok = ours.and_then(|o| o.child(k));
                if (mk.is_some() || ok.is_some())
                    && let Some(v) = restrict(Some(lv), mk, ok.as_ref())
                {
                    out.insert(k.clone(), v);
                }
            }
            Some(Value::Object(out))
        }
        _ => Some(live.clone()),
    }
}

/// Identity from `id`, server-owned fields removed.
fn normalize_apply_body(body: &mut Value, id: &ObjectId, ty: &ResourceType) {
    let Value::Object(obj) = body else {
        return;
    };
    for key in SERVER_TOP_LEVEL {
        obj.remove(*key);
    }
    let meta = obj
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !meta.is_object() {
        *meta = Value::Object(Map::new());
    }
    if let Value::Object(meta) = meta {
        for key in SERVER_METADATA {
            meta.remove(*key);
        }
        meta.insert("name".into(), Value::String(id.name.clone()));
        match (&id.namespace, ty.namespaced) {
            (Some(ns), true) => {
                meta.insert("namespace".into(), Value::String(ns.clone()));
            }
            _ => {
                meta.remove("namespace");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sort_keys_order_like_the_strings() {
        let texts = [
            "",
            "\0",
            "a",
            "a\0",
            "a\0\0",
            "ab",
            "app-1",
            "app-10",
            "app-2",
            "exactly-sixteen!",
            "exactly-sixteen!\0",
            "exactly-sixteen!a",
            "exactly-sixteen",
            "a-long-name-sharing-a-prefix-1",
            "a-long-name-sharing-a-prefix-2",
            "a-long-name-sharing-a-prefix",
            "ünïcödé",
            "z",
        ];
        let namespaces = [
            None,
            Some("default"),
            Some("a-long-namespace-name-x"),
            Some("a-long-namespace-name-y"),
            Some("a-long-namespace-name"),
            Some("b"),
        ];
        let mut ids = Vec::new();
        for ns in namespaces {
            for name in texts {
                for ordinal in [0, 1] {
                    ids.push((ordinal, ns, name));
                }
            }
        }
        // Keyed in a scrambled order, so that namespaces are not first seen in text order.
        let mut namespaces_seen = Namespaces::default();
        let mut keys: Vec<SortKey<'_>> = ids
            .iter()
            .rev()
            .map(|&(ordinal, namespace, name)| {
                namespaces_seen.key(
                    ordinal,
                    IdRef {
                        group: "",
                        kind: "ConfigMap",
                        namespace,
                        name,
                    },
                )
            })
            .collect();
        let configmaps = ResourceType::new("", "v1", "ConfigMap", "configmaps", true);
        let ranks = namespaces_seen.ranks();
        for key in &mut keys {
            rank(key, &ranks);
        }
        keys.reverse();
        for (a, key_a) in ids.iter().zip(&keys) {
            for (b, key_b) in ids.iter().zip(&keys) {
                assert_eq!(key_a.cmp(key_b), a.cmp(b), "{a:?} vs {b:?}");
                assert_eq!(key_a == key_b, a == b, "{a:?} vs {b:?}");
            }
            let id = key_a.id(&configmaps);
            assert_eq!((id.namespace, id.name), (a.1, a.2));
        }
    }
}
