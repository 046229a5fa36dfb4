//! Planning only what changed: the objects of a plan joined by their positions in its inputs
//! ([`Join`]), and a plan made from them and the caller's account of which inputs changed
//! ([`InputChanges`]).
//!
//! A full plan reads every manifest and live object to identify and sort them, which at
//! 10,000 objects is most of its cost even when it skips the objects in sync
//! ([`Settled`](super::Settled)). When the inputs are the previous plan's, position by
//! position, except for a few objects that kept their identity, the previous join still
//! holds: the objects come in the same order, in the same groups. Then an object whose
//! inputs are the very ones it was found in sync (or out of every rule's reach) with is
//! counted as before without being read, and only the rest is planned.

use std::borrow::Borrow;
use std::sync::Arc;

use super::{Entry, LiveParts, Plan, PlanInput, Planner};
use crate::diagnostic::Diagnostic;
use crate::id::{IdRef, LiveInput, TypeIndex, resolve_identity};
use crate::rule::rank_rules;
use crate::{Manifest, SyncTo};

/// Which inputs of a plan changed since the plan a [`Settled`](super::Settled) came from, as
/// the caller knows it (e.g. by the identity of the objects it keeps). The caller vouches that
/// the inputs are that plan's, position by position: the same number of manifests and of live
/// objects, each position not listed holding the very object it held then, each listed one an
/// object of the same identity (group, kind, namespace, name; a manifest also in the same file,
/// document and item).
#[derive(Clone, Copy, Debug, Default)]
pub struct InputChanges<'a> {
    /// Positions in [`PlanInput::manifests`] whose manifest changed.
    pub manifests: &'a [usize],
    /// Positions in [`PlanInput::live`] whose live object changed.
    pub live: &'a [usize],
    /// Whether the inventory is the one of that plan. A live object without a manifest is
    /// planned again when it is not: the inventory decides whether it is pruned.
    pub inventory_unchanged: bool,
}

/// What became of an object of a plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Came {
    /// In sync, with one manifest and one live object, and no finding: counted in `dominant`,
    /// and its live object listed in [`Plan::applied_live`] when `applied`.
    Settled { dominant: SyncTo, applied: bool },
    /// Nothing: not counted, no action, no finding (a live object no rule is about).
    Quiet,
    /// Anything else: planned again every time.
    Planned,
}

/// One object of a plan: its positions in [`Join::positions`] (manifests, then live
/// objects) and what became of it.
#[derive(Clone, Copy, Debug)]
struct Joined {
    start: u32,
    manifests: u32,
    live: u32,
    came: Came,
}

impl Joined {
    fn positions<'j>(&self, join: &'j Join) -> (&'j [u32], &'j [u32]) {
        let start = self.start as usize;
        let manifests = &join.positions[start..start + self.manifests as usize];
        let live_start = start + self.manifests as usize;
        let live = &join.positions[live_start..live_start + self.live as usize];
        (manifests, live)
    }
}

/// The objects of a plan in plan order, by their positions in its inputs.
#[derive(Clone, Debug)]
pub(super) struct Join {
    /// How many manifests and live objects the plan had.
    manifests: usize,
    live: usize,
    objects: Vec<Joined>,
    /// Shared from plan to plan: positions do not change while the join holds.
    positions: Arc<[u32]>,
}

/// Records a [`Join`] while a full plan steps through its objects.
pub(super) struct JoinRecorder {
    manifests: usize,
    live: usize,
    objects: Vec<Joined>,
    positions: Vec<u32>,
    current: Option<Joined>,
}

impl JoinRecorder {
    pub(super) fn new(manifests: usize, live: usize) -> Self {
        JoinRecorder {
            manifests,
            live,
            objects: Vec::with_capacity(manifests.max(live)),
            positions: Vec::with_capacity(manifests + live),
            current: None,
        }
    }

    /// The next object starts; its manifests come first, then its live objects.
    pub(super) fn start(&mut self) {
        self.current = Some(Joined {
            start: self.positions.len() as u32,
            manifests: 0,
            live: 0,
            came: Came::Planned,
        });
    }

    pub(super) fn manifest(&mut self, position: usize) {
        self.positions.push(position as u32);
        if let Some(current) = &mut self.current {
            current.manifests += 1;
        }
    }

    pub(super) fn live(&mut self, position: usize) {
        self.positions.push(position as u32);
        if let Some(current) = &mut self.current {
            current.live += 1;
        }
    }

    /// What became of the current object.
    pub(super) fn came(&mut self, came: Came) {
        if let Some(mut current) = self.current.take() {
            current.came = came;
            self.objects.push(current);
        }
    }

    /// The join; `None` when positions do not fit the join's numbers.
    pub(super) fn finish(self) -> Option<Join> {
        u32::try_from(self.manifests.max(self.live)).ok()?;
        Some(Join {
            manifests: self.manifests,
            live: self.live,
            objects: self.objects,
            positions: self.positions.into(),
        })
    }
}

/// Marks of the listed positions among `len`; `None` when one is out of range.
fn marks(len: usize, changed: &[usize]) -> Option<Vec<bool>> {
    let mut marks = vec![false; len];
    for &at in changed {
        *marks.get_mut(at)? = true;
    }
    Some(marks)
}

/// The plan of `input` from `join` (the previous plan's, valid for these global inputs) and
/// `changes`, and the join of this plan; `None` when the inputs cannot be joined that way
/// (other numbers of objects, an invalid rule, something skipped, an object whose type is not
/// served or whose identity is not that of the others it was joined with): plan in full then.
pub(super) fn plan<L: LiveInput, M: Borrow<Manifest>>(
    input: &PlanInput<'_, L, M>,
    join: &Join,
    changes: &InputChanges<'_>,
) -> Option<(Plan, Join)> {
    if join.manifests != input.manifests.len()
        || join.live != input.live.len()
        || !input.invalid_rules.is_empty()
        || !input.skipped.is_empty()
    {
        return None;
    }
    let changed_manifests = marks(join.manifests, changes.manifests)?;
    let changed_live = marks(join.live, changes.live)?;
    let types = TypeIndex::new(input.types);
    let mut out = Plan::default();
    let rules = rank_rules(input.rules, &types, &mut out.diagnostics);
    let all_manifests: Vec<&Manifest> = input.manifests.iter().map(Borrow::borrow).collect();
    if input.options.list_noops {
        out.noops.reserve(join.objects.len());
    }
    out.applied_live.reserve(join.objects.len());
    let mut planner = Planner::new(input, &all_manifests, &rules, out, true);
    let mut objects = Vec::with_capacity(join.objects.len());
    for joined in &join.objects {
        let (manifests, live) = joined.positions(join);
        let changed = manifests.iter().any(|&at| changed_manifests[at as usize])
            || live.iter().any(|&at| changed_live[at as usize]);
        match joined.came {
            Came::Settled { dominant, applied } if !changed => {
                let &[at] = live else {
                    return None;
                };
                planner.count(dominant);
                if applied {
                    planner.out.applied_live.push(at as usize);
                }
                if input.options.list_noops {
                    let object = input.live.get(at as usize)?;
                    let (id, _, _) = resolve_identity(&object.identity(), &types).ok()?;
                    planner.out.noops.push(id.to_owned());
                }
                objects.push(*joined);
                continue;
            }
            // The inventory decides about a live object without a manifest.
            Came::Quiet if !changed && (!manifests.is_empty() || changes.inventory_unchanged) => {
                objects.push(*joined);
                continue;
            }
            _ => {}
        }
        let (id, entry) = entry(input, &all_manifests, &types, manifests, live)?;
        let before = planner.mark();
        let noop = planner.object(id, &entry);
        let one_each = super::one_each(&entry).is_some();
        objects.push(Joined {
            came: planner.came(before, noop.as_ref(), one_each),
            ..*joined
        });
    }
    let mut out = planner.out;
    out.diagnostics.extend(planner.holds.summaries());
    out.diagnostics.sort_by(Diagnostic::stable_cmp);
    Some((
        out,
        Join {
            manifests: join.manifests,
            live: join.live,
            objects,
            positions: Arc::clone(&join.positions),
        },
    ))
}

/// The object at these positions, read again; `None` when one of them has a type that is not
/// served or an identity other than the first's.
fn entry<'i, L: LiveInput, M>(
    input: &'i PlanInput<'_, L, M>,
    all_manifests: &[&'i Manifest],
    types: &TypeIndex<'i>,
    manifests: &[u32],
    live: &[u32],
) -> Option<(IdRef<'i>, Entry<'i>)> {
    let mut joined: Option<(IdRef<'i>, Entry<'i>)> = None;
    for &at in manifests {
        let m = *all_manifests.get(at as usize)?;
        let (_, ty) = types.get_ordered(&m.id.group, &m.id.kind)?;
        let id = IdRef {
            group: &ty.group,
            kind: &ty.kind,
            ..IdRef::of(&m.id)
        };
        match &mut joined {
            None => {
                let mut entry = Entry::new(ty);
                entry.manifest = Some(m);
                joined = Some((id, entry));
            }
            Some((first, entry)) if *first == id => entry.more_manifests.push(m),
            Some(_) => return None,
        }
    }
    for &at in live {
        let object = input.live.get(at as usize)?;
        let (id, _, ty) = resolve_identity(&object.identity(), types).ok()?;
        let id = IdRef {
            group: &ty.group,
            kind: &ty.kind,
            ..id
        };
        let (first, entry) = joined.get_or_insert_with(|| (id, Entry::new(ty)));
        if *first != id {
            return None;
        }
        entry.live_twice |= entry.live.is_some();
        entry.live = Some(object.object());
        entry.live_position = at as usize;
        entry.live_version = LiveParts::default();
    }
    joined
}
