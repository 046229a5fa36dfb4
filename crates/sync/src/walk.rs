//! The governed walk: splits an object into the subtrees that one rule governs as a whole.

use serde_json::Value;

use crate::export::{SERVER_METADATA, SERVER_TOP_LEVEL};
use crate::fields::FieldSet;
use crate::rule::Ranked;

/// One filter of a selected rule; `tokens` empty is the root pointer.
#[derive(Clone, Copy)]
pub(crate) struct Filter<'r> {
    pub(crate) tokens: &'r [String],
    pub(crate) rule: &'r Ranked<'r>,
}

/// The filters of the rules that select an object (a rule without filters governs the root).
pub(crate) fn filters_of<'r>(selected: &[&'r Ranked<'r>]) -> Vec<Filter<'r>> {
    let mut out = Vec::with_capacity(selected.len() + 2);
    for r in selected {
        if r.rule.filters.is_empty() {
            out.push(Filter {
                tokens: &[],
                rule: r,
            });
        }
        for f in &r.rule.filters {
            out.push(Filter {
                tokens: f.tokens(),
                rule: r,
            });
        }
    }
    out
}

/// The governing rule: most specific filter, then lowest rank.
type Best<'r> = Option<(usize, &'r Ranked<'r>)>;

fn pick<'r>(best: Best<'r>, specificity: usize, rule: &'r Ranked<'r>) -> Best<'r> {
    match best {
        Some((s, b))
            if (s, std::cmp::Reverse(b.rank)) >= (specificity, std::cmp::Reverse(rule.rank)) =>
        {
            best
        }
        _ => Some((specificity, rule)),
    }
}

/// The rule governing the root pointer `""`, which decides whether the object exists.
pub(crate) fn root_rule<'r>(filters: &[Filter<'r>]) -> Option<&'r Ranked<'r>> {
    filters
        .iter()
        .filter(|f| f.tokens.is_empty())
        .fold(None, |best, f| pick(best, 0, f.rule))
        .map(|(_, r)| r)
}

/// A subtree governed as a whole by one rule (or by none).
pub(crate) struct Node<'p, 'a, 'r> {
    /// Object-member path from the root.
    pub(crate) path: &'p [&'a str],
    /// The governing rule; `None` when no filter covers the subtree.
    pub(crate) rule: Option<&'r Ranked<'r>>,
    /// The manifest's value here.
    pub(crate) manifest: Option<&'a Value>,
    /// The live value here.
    pub(crate) live: Option<&'a Value>,
    /// The clean export's value here (only when an export was made).
    pub(crate) export: Option<&'a Value>,
    /// What our field manager owns here.
    pub(crate) ours: Option<&'a FieldSet<'a>>,
}

/// Fields identity and server own; the walk never visits them.
fn skipped(path: &[&str], key: &str) -> bool {
    match path {
        [] => matches!(key, "apiVersion" | "kind") || SERVER_TOP_LEVEL.contains(&key),
        ["metadata"] => matches!(key, "name" | "namespace") || SERVER_METADATA.contains(&key),
        _ => false,
    }
}

/// Inputs of one walk: the object on each side.
pub(crate) struct Sides<'a> {
    pub(crate) manifest: Option<&'a Value>,
    pub(crate) live: Option<&'a Value>,
    pub(crate) export: Option<&'a Value>,
    pub(crate) ours: Option<&'a FieldSet<'a>>,
}

/// Visits every maximal subtree governed by a single rule.
///
/// The walk descends through objects (the union of the manifest's and the live members) only
/// while some filter points deeper; below that the subtree is handed over whole. Arrays and
/// scalars are never entered: a filter that points inside an array governs the whole array
/// (it is lifted to the deepest pointer that names the array), and one that points inside a
/// scalar governs nothing. Identity fields (`apiVersion`, `kind`, `metadata.name`,
/// `metadata.namespace`) and server-owned fields are never visited.
pub(crate) fn walk<'a, 'r>(
    sides: &Sides<'a>,
    filters: &[Filter<'r>],
    visit: &mut dyn FnMut(&Node<'_, 'a, 'r>),
) {
    let mut path = Vec::with_capacity(8);
    step(
        &mut path,
        sides.manifest,
        sides.live,
        sides.export,
        sides.ours,
        filters,
        None,
        visit,
    );
}

#[allow(clippy::too_many_arguments)] // one frame of a recursion over four parallel trees
fn step<'a, 'r>(
    path: &mut Vec<&'a str>,
    manifest: Option<&'a Value>,
    live: Option<&'a Value>,
    export: Option<&'a Value>,
    ours: Option<&'a FieldSet<'a>>,
    filters: &[Filter<'r>],
    best: Best<'r>,
    visit: &mut dyn FnMut(&Node<'_, 'a, 'r>),
) {
    let depth = path.len();
    let mut best = best;
    let mut deeper = false;
    for f in filters {
        if f.tokens.len() == depth {
            best = pick(best, depth, f.rule);
        } else {
            deeper = true;
        }
    }
    let forced = matches!(path.as_slice(), [] | ["metadata"]);
    let emit = |path: &[&'a str], best: Best<'r>, visit: &mut dyn FnMut(&Node<'_, 'a, 'r>)| {
        visit(&Node {
            path,
            rule: best.map(|(_, r)| r),
            manifest,
            live,
            export,
            ours,
        });
    };
    if !deeper && !forced {
        return emit(path, best, visit);
    }
    let object_or_absent = |v: Option<&Value>| v.is_none_or(Value::is_object);
    if manifest.is_none() && live.is_none() {
        return;
    }
    if object_or_absent(manifest) && object_or_absent(live) {
        let m = manifest.and_then(Value::as_object);
        let l = live.and_then(Value::as_object);
        let e = export.and_then(Value::as_object);
        let only_live = l
            .into_iter()
            .flatten()
            .filter(|(k, _)| m.is_none_or(|m| !m.contains_key(k.as_str())));
        let keys = m
            .into_iter()
            .flatten()
            .chain(only_live)
            .map(|(k, _)| k.as_str());
        let mut child_filters = Vec::new();
        for key in keys {
            if skipped(path, key) {
                continue;
            }
            child_filters.clear();
            if deeper {
                child_filters.extend(
                    filters
                        .iter()
                        .filter(|f| f.tokens.len() > depth && f.tokens[depth] == key),
                );
            }
            path.push(key);
            step(
                path,
                m.and_then(|m| m.get(key)),
                l.and_then(|l| l.get(key)),
                e.and_then(|e| e.get(key)),
                ours.and_then(|o| o.child(key)),
                &child_filters,
                best,
                visit,
            );
            path.pop();
        }
    } else {
        let is_array = |v: Option<&Value>| v.is_some_and(Value::is_array);
        if is_array(manifest) || is_array(live) {
            // Arrays are atomic: filters inside one govern the whole array.
            for f in filters.iter().filter(|f| f.tokens.len() > depth) {
                best = pick(best, depth, f.rule);
            }
        }
        emit(path, best, visit);
    }
}
