//! The planner: manifests × live objects × rules → actions.

use std::collections::{BTreeSet, HashMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::compare::{loose_eq_opt, subset};
use crate::diagnostic::{Diagnostic, DiagnosticReason, Severity};
use crate::export::{self, SERVER_METADATA, SERVER_TOP_LEVEL};
use crate::fields::{self, FieldSet};
use crate::id::{IdError, TypeIndex, resolve_id};
use crate::layout;
use crate::pointer::{remove_path, set_path};
use crate::rule::{Ranked, rank_rules};
use crate::walk::{self, Filter, Node, Sides};
use crate::{Manifest, ObjectId, Pointer, ResourceType, Rule, SyncTo};

/// The field manager the controller applies with, and the default of
/// [`PlanOptions::field_manager`].
pub const DEFAULT_FIELD_MANAGER: &str = "git-controller";

/// Everything [`plan`] looks at. All of it is plain data; nothing is fetched.
#[derive(Clone, Copy, Debug)]
pub struct PlanInput<'a> {
    /// The manifests in the repository (from [`parse_manifests`](crate::parse_manifests)).
    pub manifests: &'a [Manifest],
    /// The live objects, complete as the API serves them (`apiVersion` and `kind` set,
    /// `metadata.managedFields` included), for **every** type in `types` that a rule may
    /// select. An object missing here counts as deleted.
    pub live: &'a [Value],
    /// The rules of the repository.
    pub rules: &'a [Rule],
    /// Discovery information for every type that manifests or live objects may have.
    pub types: &'a [ResourceType],
    /// The objects this repository applied before; only these are ever deleted.
    pub inventory: &'a BTreeSet<ObjectId>,
    /// Manifest files that could not be parsed ([`unparsed_files`](crate::unparsed_files)).
    /// While any exist, nothing is deleted from the cluster and no new file is written to
    /// Git, because the missing manifests might be in them.
    pub unparsed_files: &'a [String],
    /// Switches.
    pub options: &'a PlanOptions,
}

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
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions {
            prune: false,
            allow_plaintext_secrets: false,
            field_manager: DEFAULT_FIELD_MANAGER.to_owned(),
            layout_root: String::new(),
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
/// once in `to_git`, and in `noops` only if it is in neither.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Changes to the cluster.
    pub to_cluster: Vec<ClusterAction>,
    /// Changes to the repository.
    pub to_git: Vec<GitAction>,
    /// Objects the repository manages that are in sync.
    pub noops: Vec<ObjectId>,
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
pub fn plan(input: &PlanInput<'_>) -> Plan {
    let types = TypeIndex::new(input.types);
    let mut out = Plan::default();
    let rules = rank_rules(input.rules, &types, &mut out.diagnostics);

    let mut entries: HashMap<&ObjectId, Entry<'_>> =
        HashMap::with_capacity(input.manifests.len() + input.live.len() / 2);
    for m in input.manifests {
        let Some(ty) = types.get(&m.id.group, &m.id.kind) else {
            out.diagnostics.push(
                Diagnostic::new(
                    Severity::Warning,
                    DiagnosticReason::UnknownKind,
                    format!("kind {} is not served by the cluster; skipped", m.id.kind),
                )
                .file(&m.file)
                .object(&m.id),
            );
            continue;
        };
        let e = entries.entry(&m.id).or_insert_with(|| Entry::new(ty));
        match e.manifest {
            None => e.manifest = Some(m),
            Some(_) => e.more_manifests.push(m),
        }
    }
    let live: Vec<(ObjectId, &ResourceType, &Value)> = input
        .live
        .iter()
        .filter_map(|obj| match resolve_id(obj, &types) {
            Ok((id, ty)) => Some((id, ty, obj)),
            Err(err) => {
                out.diagnostics.push(live_id_diagnostic(obj, err));
                None
            }
        })
        .collect();
    for (id, ty, obj) in &live {
        let e = entries.entry(id).or_insert_with(|| Entry::new(ty));
        if e.live.is_some() {
            e.live_twice = true;
        }
        e.live = Some(obj);
    }

    let mut ids: Vec<&ObjectId> = entries.keys().copied().collect();
    ids.sort_unstable();
    let mut taken: HashSet<String> = input.manifests.iter().map(|m| m.file.clone()).collect();
    taken.extend(input.unparsed_files.iter().cloned());
    let mut planner = Planner {
        input,
        rules: &rules,
        out,
        taken,
    };
    for id in ids {
        planner.object(id, &entries[id]);
    }
    let mut out = planner.out;
    out.diagnostics.sort_by(Diagnostic::stable_cmp);
    out
}

fn live_id_diagnostic(obj: &Value, err: IdError) -> Diagnostic {
    let name = obj
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("?");
    match err {
        IdError::Incomplete(field) => Diagnostic::new(
            Severity::Warning,
            DiagnosticReason::Skipped,
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
    live_twice: bool,
}

impl<'a> Entry<'a> {
    fn new(ty: &'a ResourceType) -> Self {
        Entry {
            ty,
            manifest: None,
            more_manifests: Vec::new(),
            live: None,
            live_twice: false,
        }
    }
}

/// What became of one object.
#[derive(Default)]
struct Outcome {
    acted: bool,
    blocked: bool,
}

struct Planner<'i, 'r> {
    input: &'i PlanInput<'i>,
    rules: &'r [Ranked<'r>],
    out: Plan,
    taken: HashSet<String>,
}

impl<'i, 'r> Planner<'i, 'r> {
    fn object(&mut self, id: &ObjectId, entry: &Entry<'_>) {
        if let Some(first) = entry.manifest.filter(|_| !entry.more_manifests.is_empty()) {
            let mut places: Vec<String> = std::iter::once(first)
                .chain(entry.more_manifests.iter().copied())
                .map(|m| format!("{} (document {})", m.file, m.doc_index))
                .collect();
            places.sort();
            self.out.diagnostics.push(
                Diagnostic::new(
                    Severity::Error,
                    DiagnosticReason::Duplicate,
                    format!(
                        "defined more than once: {}; none of them is applied until only one is left",
                        places.join(", ")
                    ),
                )
                .file(places[0].split(" (document").next().unwrap_or_default())
                .object(id),
            );
            return;
        }
        if entry.live_twice {
            self.out.diagnostics.push(
                Diagnostic::new(
                    Severity::Warning,
                    DiagnosticReason::Duplicate,
                    "the live objects list this object twice; skipped".to_owned(),
                )
                .object(id),
            );
            return;
        }
        let labels_from = match (entry.live, entry.manifest) {
            (Some(live), _) => live,
            (None, Some(m)) => &m.object,
            (None, None) => return,
        };
        let selected: Vec<&'r Ranked<'r>> = self
            .rules
            .iter()
            .filter(|r| r.rule.selects(id, entry.ty, labels_from))
            .collect();
        if selected.is_empty() {
            if let Some(m) = entry.manifest {
                self.out.diagnostics.push(
                    Diagnostic::new(
                        Severity::Info,
                        DiagnosticReason::NoMatchingRule,
                        "no rule selects this object; it is not synced".to_owned(),
                    )
                    .file(&m.file)
                    .object(id),
                );
            }
            return;
        }
        let filters = walk::filters_of(&selected);
        let root = walk::root_rule(&filters).map(|r| r.rule.sync_to);
        // `selected` is in rank order, so its first rule has the highest precedence.
        let dominant = root.unwrap_or(selected[0].rule.sync_to);
        let in_inventory = self.input.inventory.contains(id);

        let outcome = match (entry.manifest, entry.live) {
            (Some(m), None) => self.only_in_git(id, entry.ty, m, root),
            (None, Some(live)) => {
                let ours = in_inventory || root == Some(SyncTo::Git);
                if !ours {
                    return; // a live object this repository has nothing to do with
                }
                self.only_live(id, entry.ty, live, root, in_inventory)
            }
            (Some(m), Some(live)) => self.both(id, entry.ty, m, live, &filters),
            (None, None) => return,
        };
        match dominant {
            SyncTo::Kubernetes => self.out.counts.to_kubernetes += 1,
            SyncTo::Git => self.out.counts.to_git += 1,
            SyncTo::Ignore => self.out.counts.ignored += 1,
        }
        if !outcome.acted && !outcome.blocked {
            self.out.noops.push(id.clone());
        }
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
                let mut object = m.object.clone();
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
                if self.refuse_secret(id) || self.suppress(id, "exported to a new file") {
                    return blocked();
                }
                let path = layout::new_file_path(&self.input.options.layout_root, id, &ty.plural);
                let file = layout::disambiguate(path, |p| self.taken.contains(p));
                self.taken.insert(file.clone());
                self.out.to_git.push(GitAction::Write {
                    id: id.clone(),
                    file,
                    doc_index: None,
                    object: export::clean(live),
                    paths: vec![Pointer::root()],
                });
                acted()
            }
            Some(SyncTo::Kubernetes) if in_inventory && self.input.options.prune => {
                if self.suppress(id, "pruned") {
                    return blocked();
                }
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
        let wants_export = filters.iter().any(|f| f.rule.rule.sync_to == SyncTo::Git);
        let export = wants_export.then(|| export::clean(live));
        let ours = fields::applied_by(live, &self.input.options.field_manager);
        let sides = Sides {
            manifest: Some(&m.object),
            live: Some(live),
            export: export.as_ref(),
            ours: ours.as_ref(),
        };

        let mut drift: Vec<Pointer> = Vec::new();
        let mut writes: Vec<(Pointer, Option<&Value>)> = Vec::new();
        walk::walk(&sides, filters, &mut |node: &Node<'_, '_, '_>| match node
            .rule
            .map(|r| r.rule.sync_to)
        {
            Some(SyncTo::Kubernetes) if cluster_differs(node) => {
                drift.push(Pointer::from_tokens(node.path.iter().copied()));
            }
            Some(SyncTo::Git) if !loose_eq_opt(node.manifest, node.export) => {
                writes.push((Pointer::from_tokens(node.path.iter().copied()), node.export));
            }
            _ => {}
        });

        let mut outcome = Outcome::default();
        if !writes.is_empty() {
            if self.refuse_secret(id) {
                outcome.blocked = true;
            } else {
                let mut object = m.object.clone();
                for (path, value) in &writes {
                    match value {
                        Some(v) => set_path(&mut object, path.tokens(), (*v).clone()),
                        None => {
                            remove_path(&mut object, path.tokens());
                        }
                    }
                }
                self.out.to_git.push(GitAction::Write {
                    id: id.clone(),
                    file: m.file.clone(),
                    doc_index: Some(m.doc_index),
                    object,
                    paths: writes.into_iter().map(|(p, _)| p).collect(),
                });
                outcome.acted = true;
            }
        }
        if !drift.is_empty() {
            let object = apply_body(&sides, filters, &m.object, id, ty);
            self.out.to_cluster.push(ClusterAction::Apply {
                id: id.clone(),
                object,
                create: false,
                paths: drift,
            });
            outcome.acted = true;
        }
        outcome
    }

    fn refuse_secret(&mut self, id: &ObjectId) -> bool {
        if !id.is_secret() || self.input.options.allow_plaintext_secrets {
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

    fn suppress(&mut self, id: &ObjectId, what: &str) -> bool {
        let files = self.input.unparsed_files;
        if files.is_empty() {
            return false;
        }
        let mut names: Vec<&str> = files.iter().map(String::as_str).collect();
        names.sort_unstable();
        self.out.diagnostics.push(
            Diagnostic::new(
                Severity::Warning,
                DiagnosticReason::Suppressed,
                format!(
                    "has no manifest, but is not {what} while these files do not parse (it may be defined there): {}",
                    names.join(", ")
                ),
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

/// Git → cluster drift in a `kubernetes`-governed subtree: the manifest sets something the
/// live object does not hold, or our field manager owns a field the manifest no longer sets
/// (applying then removes it).
fn cluster_differs(node: &Node<'_, '_, '_>) -> bool {
    let differs = node.manifest.is_some_and(|m| !subset(m, node.live));
    differs || owns_unset(node.ours, node.manifest, node.live)
}

/// Whether `ours` owns a live field that the manifest value `m` does not set.
fn owns_unset(ours: Option<&FieldSet<'_>>, m: Option<&Value>, live: Option<&Value>) -> bool {
    let (Some(ours), Some(live)) = (ours, live) else {
        return false;
    };
    match (m, live) {
        (None, _) => true,
        (Some(_), _) if ours.is_whole() => false,
        (Some(Value::Object(mo)), Value::Object(lo)) => ours
            .field_names()
            .any(|k| lo.contains_key(k) && owns_unset(ours.child(k), mo.get(k), lo.get(k))),
        _ => false,
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
fn restrict(live: Option<&Value>, m: Option<&Value>, ours: Option<&FieldSet<'_>>) -> Option<Value> {
    let live = live?;
    match live {
        Value::Object(lo) if !ours.is_some_and(FieldSet::is_whole) => {
            let mo = m.and_then(Value::as_object);
            let mut out = Map::new();
            for (k, lv) in lo {
                let mk = mo.and_then(|mo| mo.get(k));
                let ok = ours.and_then(|o| o.child(k));
                if (mk.is_some() || ok.is_some())
                    && let Some(v) = restrict(Some(lv), mk, ok)
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
