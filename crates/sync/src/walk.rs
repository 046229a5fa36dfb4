//! The governed walk: splits an object into the subtrees that one rule governs as a whole.

use serde_json::Value;

use crate::export::{SERVER_METADATA, SERVER_TOP_LEVEL};
use crate::fields::Fields;
use crate::rule::Ranked;

/// One filter of a selected rule; `tokens` empty is the root pointer.
#[derive(Clone, Copy)]
pub(crate) struct Filter<'r> {
    pub(crate) tokens: &'r [String],
    pub(crate) rule: &'r Ranked<'r>,
}

/// The filters of the rules that select an object (a rule without filters governs the root),
/// into `out`, sorted by pointer: the filters below any path are then a contiguous run.
pub(crate) fn filters_of<'r>(selected: &[&'r Ranked<'r>], out: &mut Vec<Filter<'r>>) {
    out.clear();
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
    out.sort_unstable_by(|a, b| a.tokens.cmp(b.tokens));
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
    /// What our field manager owns here.
    pub(crate) ours: Option<&'p Fields<'a>>,
}

type Members = serde_json::Map<String, Value>;

/// Calls `f` for every key of either map with both values, in key order when maps iterate
/// sorted (serde_json's default), else manifest keys first.
fn for_each_member<'a>(
    m: Option<&'a Members>,
    l: Option<&'a Members>,
    mut f: impl FnMut(&'a str, Option<&'a Value>, Option<&'a Value>),
) {
    if !maps_are_sorted() {
        for (k, mv) in m.into_iter().flatten() {
            f(k, Some(mv), l.and_then(|l| l.get(k)));
        }
        for (k, lv) in l.into_iter().flatten() {
            if m.is_none_or(|m| !m.contains_key(k)) {
                f(k, None, Some(lv));
            }
        }
        return;
    }
    // A merge of two sorted key sequences needs no lookups.
    let mut mi = m.into_iter().flatten().peekable();
    let mut li = l.into_iter().flatten().peekable();
    loop {
        let order = match (mi.peek(), li.peek()) {
            (Some((mk, _)), Some((lk, _))) => mk.as_str().cmp(lk.as_str()),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => return,
        };
        match order {
            std::cmp::Ordering::Less => {
                let (k, mv) = mi.next().expect("peeked");
                f(k, Some(mv), None);
            }
            std::cmp::Ordering::Greater => {
                let (k, lv) = li.next().expect("peeked");
                f(k, None, Some(lv));
            }
            std::cmp::Ordering::Equal => {
                let (k, mv) = mi.next().expect("peeked");
                let (_, lv) = li.next().expect("peeked");
                f(k, Some(mv), Some(lv));
            }
        }
    }
}

/// Whether `serde_json::Map` iterates in key order: true unless some crate in the build
/// enabled serde_json's `preserve_order` feature.
fn maps_are_sorted() -> bool {
    static SORTED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *SORTED.get_or_init(|| {
        let mut probe = Members::new();
        probe.insert("b".into(), Value::Null);
        probe.insert("a".into(), Value::Null);
        probe.keys().next().is_some_and(|k| k == "a")
    })
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
    pub(crate) ours: Option<Fields<'a>>,
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
        sides.ours.as_ref(),
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
    ours: Option<&Fields<'a>>,
    filters: &[Filter<'r>],
    best: Best<'r>,
    visit: &mut dyn FnMut(&Node<'_, 'a, 'r>),
) {
    // `filters` all start with `path` and are sorted, so the ones naming `path` itself come
    // first and the ones below follow, grouped by their next token.
    let depth = path.len();
    let mut best = best;
    let exact = filters.partition_point(|f| f.tokens.len() == depth);
    for f in &filters[..exact] {
        best = pick(best, depth, f.rule);
    }
    let below = &filters[exact..];
    let deeper = !below.is_empty();
    let forced = matches!(path.as_slice(), [] | ["metadata"]);
    let emit = |path: &[&'a str], best: Best<'r>, visit: &mut dyn FnMut(&Node<'_, 'a, 'r>)| {
        visit(&Node {
            path,
            rule: best.map(|(_, r)| r),
            manifest,
            live,
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
        for_each_member(m, l, |key, mv, lv| {
            if skipped(path, key) {
                return;
            }
            let start = below.partition_point(|f| f.tokens[depth].as_str() < key);
            let end = start + below[start..].partition_point(|f| f.tokens[depth] == key);
            let child_ours = ours.and_then(|o| o.child(key));
            path.push(key);
            step(
                path,
                mv,
                lv,
                child_ours.as_ref(),
                &below[start..end],
                best,
                visit,
            );
            path.pop();
        });
    } else {
        let is_array = |v: Option<&Value>| v.is_some_and(Value::is_array);
        if is_array(manifest) || is_array(live) {
            // Arrays are atomic: filters inside one govern the whole array.
            for f in below {
                best = pick(best, depth, f.rule);
            }
        }
        emit(path, best, visit);
    }
}
