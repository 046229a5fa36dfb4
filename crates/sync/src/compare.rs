//! Value comparison used by the planner.
//!
//! Spellings that YAML and the API server disagree on are not differences:
//! - numbers compare by value (`1` equals `1.0`), and a number equals a string holding
//!   exactly its decimal rendering (`cpu: 1` in Git, `"1"` served back);
//! - `null`, `{}` and `[]` (and maps of only such values) equal an absent field, because the
//!   API server drops empty fields.
//!
//! Where the type's schema is known ([`SchemaNode`]), values compare as the server stores
//! them: quantities by value, bytes decoded, int-or-string with its JSON type, atomic maps and
//! lists whole, list-maps by key, and zero values the server omits equal to absent. A
//! comparison then says [`Verdict::Equal`], [`Verdict::Different`] or — where only the server
//! can tell — [`Verdict::Unsure`].

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::export::{Step, Trivia};
use crate::fields::Fields;
use crate::lookup::member_of;
use crate::quantity::{Quantity, QuantityError};
use crate::schema::{ListKind, ScalarKind, SchemaNode};

/// Structural equality with the leniency described in the module docs.
pub(crate) fn loose_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            // Members of `y` met while going through `x`: when that is all of them, `y` has
            // none that `x` lacks, and its keys need not be read again.
            let mut shared = 0;
            x.iter().all(|(k, v)| {
                let w = member_of(y, k);
                shared += usize::from(w.is_some());
                loose_eq_opt(Some(v), w)
            }) && (shared == y.len()
                || y.iter()
                    .all(|(k, w)| member_of(x, k).is_some() || vacuous(w)))
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(v, w)| loose_eq(v, w))
        }
        _ => scalar_eq(a, b),
    }
}

/// Equality of two optional values; absent equals only absent or empty values.
pub(crate) fn loose_eq_opt(a: Option<&Value>, b: Option<&Value>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => loose_eq(a, b),
        (Some(v), None) | (None, Some(v)) => vacuous(v),
    }
}

fn scalar_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            x == y || (x.is_f64() || y.is_f64()) && x.as_f64() == y.as_f64()
        }
        (Value::Number(n), Value::String(s)) | (Value::String(s), Value::Number(n)) => {
            *s == n.to_string()
        }
        _ => a == b,
    }
}

/// What a cheap comparison (without the API server) concluded about a value or an object.
///
/// Ordered by how much it calls for action: `Equal < Unsure < Different`; a comparison of
/// several parts is the largest of their verdicts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Verdict {
    /// The server stores (or would store) the same.
    Equal,
    /// Only the server can tell, e.g. by a server-side dry-run apply: a value inside an
    /// atomic map or list that may be a server default or may be left over from an earlier
    /// apply, a zero value the server may or may not omit, a quantity too large to compare.
    Unsure,
    /// Applying the manifest would change the object (or take over fields that someone else
    /// changed, after which the comparison can decide).
    Different,
}

impl Verdict {
    fn of(equal: bool) -> Verdict {
        if equal {
            Verdict::Equal
        } else {
            Verdict::Different
        }
    }
}

/// Where a value is, relative to atomic values (which server-side apply replaces whole and
/// whose members have no ownership of their own).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Within {
    /// Not inside an atomic value: members and list-map elements merge.
    Granular,
    /// Inside an atomic value our field manager applied and still owns.
    AtomicOwned,
    /// Inside an atomic value someone else owns (or nobody).
    AtomicNotOwned,
}

/// Git → cluster: does the live value already hold what the manifest value `m` sets, as the
/// server stores and merges it? `path` is where the values are in the object, `ours` what our
/// field manager applied there (exact ownership), `trivia` the object's known server defaults
/// and controller fields (the export's table).
///
/// - `null` in the manifest has no opinion; members only the live object has are fine
///   (server defaults, other managers), except members we applied before that the manifest
///   no longer sets — applying removes them.
/// - Arrays must match element by element (same length) — or, for list-maps with a schema,
///   element by key and in the same order, where elements only the live object has are fine
///   unless we applied them.
/// - Atomic values (schema) are compared whole: a member only the live object has is a
///   difference in a free-form map, fine when it holds the published default or is a known
///   server default or controller field, and otherwise [`Verdict::Unsure`] while we own the
///   value (it may be a server default) or [`Verdict::Different`] when someone else changed
///   it.
/// - A zero value (`false`, `0`, `""`) that the live object lacks equals it where the schema
///   lets the server omit it and we own the field (server-side apply recorded it although the
///   server did not store it).
pub(crate) fn applied_cmp<'v>(
    path: &[&'v str],
    m: Option<&'v Value>,
    live: Option<&'v Value>,
    at: SchemaNode<'_>,
    ours: Option<&Fields<'_>>,
    trivia: &Trivia<'_>,
) -> Verdict {
    match m {
        Some(m) => {
            Applied { trivia }.applied(&Here::Node(path), m, live, at, ours, Within::Granular)
        }
        // A subtree we applied before and the manifest no longer has: applying removes it.
        None => Verdict::of(ours.is_none() || live.is_none_or(vacuous)),
    }
}

/// Where a compared value is in the object: a chain of steps on the stack, made into a path
/// only when one is needed.
#[derive(Clone, Copy)]
enum Here<'p, 'v> {
    /// At a node of the governed walk.
    Node(&'p [&'v str]),
    /// One step below another place.
    Below(&'p Here<'p, 'v>, Step<'v>),
}

impl<'v> Here<'_, 'v> {
    fn path(&self) -> Vec<Step<'v>> {
        match self {
            Here::Node(path) => path.iter().map(|k| Step::Key(k)).collect(),
            Here::Below(parent, step) => {
                let mut path = parent.path();
                path.push(*step);
                path
            }
        }
    }
}

/// What one [`applied_cmp`] consults.
struct Applied<'t, 'l> {
    trivia: &'t Trivia<'l>,
}

impl Applied<'_, '_> {
    fn applied<'v>(
        &self,
        here: &Here<'_, 'v>,
        m: &'v Value,
        live: Option<&'v Value>,
        at: SchemaNode<'_>,
        ours: Option<&Fields<'_>>,
        within: Within,
    ) -> Verdict {
        if m.is_null() {
            return Verdict::Equal;
        }
        let Some(l) = live else {
            return self.absent(here, m, at, ours, within);
        };
        let within = match within {
            Within::Granular if at.is_atomic() => {
                if ours.is_some_and(Fields::is_whole) {
                    Within::AtomicOwned
                } else {
                    Within::AtomicNotOwned
                }
            }
            other => other,
        };
        match (m, l) {
            (Value::Object(mo), Value::Object(lo)) => {
                let mut verdict = Verdict::Equal;
                for (k, mv) in mo {
                    let child = match within {
                        Within::Granular => ours.and_then(|o| o.child(k)),
                        _ => None,
                    };
                    let field = at.field(k);
                    let below = Here::Below(here, Step::Key(k));
                    let member =
                        self.applied(&below, mv, member_of(lo, k), field, child.as_ref(), within);
                    verdict = verdict.max(member);
                    if verdict == Verdict::Different {
                        return verdict;
                    }
                }
                verdict.max(self.live_only_members(here, mo, lo, at, ours, within))
            }
            (Value::Object(_), _) => Verdict::of(vacuous(m) && l.is_null()),
            (Value::Array(ma), Value::Array(la)) => self.list(here, ma, la, at, ours, within),
            (Value::Array(ma), Value::Null) => Verdict::of(ma.is_empty()),
            _ => scalar_cmp(m, l, at),
        }
    }

    /// The manifest sets `m` where the live object has nothing.
    fn absent<'v>(
        &self,
        here: &Here<'_, 'v>,
        m: &'v Value,
        at: SchemaNode<'_>,
        ours: Option<&Fields<'_>>,
        within: Within,
    ) -> Verdict {
        if vacuous(m) {
            return Verdict::Equal;
        }
        if at.may_omit_zero(m) {
            return match within {
                // We applied it and the server did not store it: it omitted the zero value.
                Within::Granular if ours.is_some() => Verdict::Equal,
                // Applying makes it ours; then this decides.
                Within::Granular | Within::AtomicNotOwned => Verdict::Different,
                Within::AtomicOwned => Verdict::Unsure,
            };
        }
        match m {
            // A struct the server stored nothing of: equal if all it holds are omitted zeros.
            Value::Object(mo) if at.is_object() => {
                let mut verdict = Verdict::Equal;
                for (k, mv) in mo {
                    let child = match within {
                        Within::Granular => ours.and_then(|o| o.child(k)),
                        _ => None,
                    };
                    let field = at.field(k);
                    let below = Here::Below(here, Step::Key(k));
                    let member = self.applied(&below, mv, None, field, child.as_ref(), within);
                    verdict = verdict.max(member);
                }
                verdict
            }
            _ => Verdict::Different,
        }
    }

    /// Members only the live object has.
    fn live_only_members<'v>(
        &self,
        here: &Here<'_, 'v>,
        mo: &Map<String, Value>,
        lo: &'v Map<String, Value>,
        at: SchemaNode<'_>,
        ours: Option<&Fields<'_>>,
        within: Within,
    ) -> Verdict {
        let set_by_manifest = |k: &str| member_of(mo, k).is_some_and(|v| !v.is_null());
        match within {
            Within::Granular => {
                // Members we applied before and the manifest no longer sets: applying removes
                // them. (An exact leaf owns the node, not the members others put into it.)
                let Some(ours) = ours.filter(|o| !o.is_whole()) else {
                    return Verdict::Equal;
                };
                Verdict::of(!ours.field_names().any(|k| {
                    member_of(mo, k).is_none() && member_of(lo, k).is_some_and(|v| !vacuous(v))
                }))
            }
            Within::AtomicOwned | Within::AtomicNotOwned => {
                let mut verdict = Verdict::Equal;
                for (k, lv) in lo {
                    if set_by_manifest(k) || vacuous(lv) || at.field(k).is_default(lv) {
                        continue;
                    }
                    if at.is_free_form_map() {
                        return Verdict::Different;
                    }
                    if self
                        .trivia
                        .contains(&Here::Below(here, Step::Key(k)).path())
                    {
                        continue; // a known server default or controller field
                    }
                    if within == Within::AtomicNotOwned {
                        return Verdict::Different;
                    }
                    verdict = Verdict::Unsure;
                }
                verdict
            }
        }
    }

    fn list<'v>(
        &self,
        here: &Here<'_, 'v>,
        ma: &'v [Value],
        la: &'v [Value],
        at: SchemaNode<'_>,
        ours: Option<&Fields<'_>>,
        within: Within,
    ) -> Verdict {
        match (within, at.list_kind()) {
            (Within::Granular, Some(ListKind::Map(keys))) => {
                self.list_map(here, ma, la, keys, at, ours)
            }
            (Within::Granular, Some(ListKind::Set)) => applied_set(ma, la, ours),
            // Atomic lists, lists inside atomic values, and lists without a schema: by position.
            _ => {
                if ma.len() != la.len() {
                    return Verdict::Different;
                }
                let items = at.items();
                let mut verdict = Verdict::Equal;
                for (i, (mv, lv)) in ma.iter().zip(la).enumerate() {
                    let below = Here::Below(here, Step::Index(i));
                    let element = self.applied(&below, mv, Some(lv), items, None, within);
                    verdict = verdict.max(element);
                    if verdict == Verdict::Different {
                        break;
                    }
                }
                verdict
            }
        }
    }

    /// A list-map: each manifest element must match the live element with its key, in the same
    /// relative order (server-side apply orders the elements it applies as applied); live
    /// elements we applied before and the manifest no longer has are differences.
    fn list_map<'v>(
        &self,
        here: &Here<'_, 'v>,
        ma: &'v [Value],
        la: &'v [Value],
        keys: &[String],
        at: SchemaNode<'_>,
        ours: Option<&Fields<'_>>,
    ) -> Verdict {
        let items = at.items();
        let owned = ours.map(|o| o.items_ownership(la)).unwrap_or_default();
        let mut matched = vec![false; la.len()];
        let mut previous: Option<usize> = None;
        let mut verdict = Verdict::Equal;
        for (i, mv) in ma.iter().enumerate() {
            let free = |j: usize| !matched[j] && same_key(mv, &la[j], keys, items);
            // Usually the element is where it was.
            let Some(j) = (i < la.len() && free(i))
                .then_some(i)
                .or_else(|| (0..la.len()).find(|&j| free(j)))
            else {
                return Verdict::Different;
            };
            if previous.is_some_and(|p| j < p) {
                return Verdict::Different;
            }
            previous = Some(j);
            matched[j] = true;
            let own = owned.get(j).and_then(Option::as_ref);
            let below = Here::Below(here, Step::Index(j));
            let element = self.applied(&below, mv, Some(&la[j]), items, own, Within::Granular);
            verdict = verdict.max(element);
            if verdict == Verdict::Different {
                return verdict;
            }
        }
        let ours_left =
            (0..la.len()).any(|j| !matched[j] && owned.get(j).is_some_and(Option::is_some));
        verdict.max(Verdict::of(!ours_left))
    }
}

/// Whether two list-map elements have the same key; a key field an element lacks takes its
/// published default (a container port's `protocol: TCP`).
pub(crate) fn same_key(a: &Value, b: &Value, keys: &[String], items: SchemaNode<'_>) -> bool {
    keys.iter().all(|k| {
        let default = || items.field(k).default();
        let (x, y) = (a.get(k), b.get(k));
        match (x, y) {
            (Some(x), Some(y)) => scalar_eq(x, y),
            (None, None) => true,
            (Some(v), None) | (None, Some(v)) => default().is_some_and(|d| scalar_eq(v, &d)),
        }
    })
}

/// A set: every manifest item must be there; live items we applied before and the manifest
/// no longer has are differences.
fn applied_set(ma: &[Value], la: &[Value], ours: Option<&Fields<'_>>) -> Verdict {
    if !ma.iter().all(|m| la.iter().any(|l| loose_eq(m, l))) {
        return Verdict::Different;
    }
    let owned = ours.map(|o| o.items_ownership(la)).unwrap_or_default();
    let ours_left = la
        .iter()
        .zip(owned)
        .any(|(l, own)| own.is_some() && !ma.iter().any(|m| loose_eq(m, l)));
    Verdict::of(!ours_left)
}

/// Two scalars (or mismatched values), by the schema's type.
fn scalar_cmp(a: &Value, b: &Value, at: SchemaNode<'_>) -> Verdict {
    match at.scalar() {
        Some(ScalarKind::Quantity) => match (Quantity::from_json(a), Quantity::from_json(b)) {
            (Some(Ok(x)), Some(Ok(y))) => Verdict::of(x == y),
            (Some(Err(QuantityError::OutOfRange)), _)
            | (_, Some(Err(QuantityError::OutOfRange)))
                if !scalar_eq(a, b) =>
            {
                Verdict::Unsure
            }
            _ => Verdict::of(scalar_eq(a, b)),
        },
        Some(ScalarKind::IntOrString) => match (a, b) {
            (Value::Number(_), Value::Number(_)) | (Value::String(_), Value::String(_)) => {
                Verdict::of(scalar_eq(a, b))
            }
            _ => Verdict::Different,
        },
        Some(ScalarKind::Bytes) => match (a, b) {
            (Value::String(x), Value::String(y)) => {
                Verdict::of(x == y || decode_bytes(x).is_some_and(|d| decode_bytes(y) == Some(d)))
            }
            _ => Verdict::of(scalar_eq(a, b)),
        },
        _ => Verdict::of(scalar_eq(a, b)),
    }
}

/// Base64 as Go's JSON decoder reads `[]byte` (standard alphabet, padded; line breaks
/// ignored).
pub(crate) fn decode_bytes(s: &str) -> Option<Vec<u8>> {
    if s.contains(['\r', '\n']) {
        let joined: String = s.chars().filter(|c| !matches!(c, '\r' | '\n')).collect();
        STANDARD.decode(joined).ok()
    } else {
        STANDARD.decode(s).ok()
    }
}

/// Bytes as the server serves them.
pub(crate) fn encode_bytes(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Whether two values are equal as the server stores them: quantities by value, bytes
/// decoded, int-or-string with its JSON type, numbers by value (and equal to their decimal
/// string), `null`/`{}`/`[]` as absent, arrays by position. No inference from ownership is
/// made, so this is symmetric; [`normalize`](crate::normalize) maps equal values to the same
/// value. Useful to compare two objects the server returned, e.g. a server-side dry-run
/// result with the live object.
pub fn stored_equal(a: &Value, b: &Value, at: SchemaNode<'_>) -> bool {
    stored_cmp(Some(a), Some(b), at, None) == Verdict::Equal
}

/// Whether a server-side dry-run apply would change the live object: `result` is what the
/// server returned for the dry-run of an apply body (e.g. of
/// [`Plan::to_confirm`](crate::Plan::to_confirm)), `live` the object it was planned against. Bookkeeping the
/// apply itself changes — `metadata.managedFields`, `resourceVersion`, `generation` — does not
/// count.
pub fn changed_by_dry_run(live: &Value, result: &Value) -> bool {
    let (Value::Object(l), Value::Object(r)) = (live, result) else {
        return live != result;
    };
    let keys = l.keys().chain(r.keys().filter(|k| !l.contains_key(*k)));
    for key in keys {
        let (a, b) = (l.get(key), r.get(key));
        let differs = match (key.as_str(), a, b) {
            ("metadata", Some(Value::Object(a)), Some(Value::Object(b))) => {
                let ignored = |k: &&String| {
                    matches!(
                        k.as_str(),
                        "managedFields" | "resourceVersion" | "generation"
                    )
                };
                a.keys()
                    .chain(b.keys())
                    .filter(|k| !ignored(k))
                    .any(|k| a.get(k) != b.get(k))
            }
            _ => a != b,
        };
        if differs {
            return true;
        }
    }
    false
}

/// Cluster → Git: does the manifest value `m` equal the clean export's value `e` as the
/// server stores values (quantities by value, bytes decoded, int-or-string with its type;
/// arrays by position)? Symmetric, except for one inference: a zero value in the manifest
/// that the export lacks, where the schema lets the server omit it, is [`Verdict::Equal`]
/// when some manager owns the field (`owners`, what all managers own here) and
/// [`Verdict::Unsure`] otherwise — never a reason to rewrite Git.
pub(crate) fn stored_cmp(
    m: Option<&Value>,
    e: Option<&Value>,
    at: SchemaNode<'_>,
    owners: Option<&Fields<'_>>,
) -> Verdict {
    match (m, e) {
        (None, None) => Verdict::Equal,
        (None, Some(v)) => Verdict::of(vacuous(v)),
        (Some(v), None) => {
            if vacuous(v) {
                return Verdict::Equal;
            }
            if at.may_omit_zero(v) {
                return if owners.is_some() {
                    Verdict::Equal
                } else {
                    Verdict::Unsure
                };
            }
            match v {
                Value::Object(mo) if at.is_object() => mo
                    .iter()
                    .map(|(k, mv)| {
                        let child = owners.and_then(|o| o.child(k));
                        stored_cmp(Some(mv), None, at.field(k), child.as_ref())
                    })
                    .max()
                    .unwrap_or(Verdict::Equal),
                _ => Verdict::Different,
            }
        }
        (Some(a), Some(b)) => match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                let mut verdict = Verdict::Equal;
                let keys = x.keys().chain(y.keys().filter(|k| !x.contains_key(*k)));
                for k in keys {
                    let child = owners.and_then(|o| o.child(k));
                    verdict =
                        verdict.max(stored_cmp(x.get(k), y.get(k), at.field(k), child.as_ref()));
                    if verdict == Verdict::Different {
                        break;
                    }
                }
                verdict
            }
            (Value::Array(x), Value::Array(y)) => {
                if x.len() != y.len() {
                    return Verdict::Different;
                }
                let items = at.items();
                let owned = owners.map(|o| o.items_ownership(y)).unwrap_or_default();
                let mut verdict = Verdict::Equal;
                for (i, (a, b)) in x.iter().zip(y).enumerate() {
                    let own = owned.get(i).and_then(Option::as_ref);
                    verdict = verdict.max(stored_cmp(Some(a), Some(b), items, own));
                    if verdict == Verdict::Different {
                        break;
                    }
                }
                verdict
            }
            _ => scalar_cmp(a, b, at),
        },
    }
}

/// Values that setting is the same as not setting.
pub(crate) fn vacuous(m: &Value) -> bool {
    match m {
        Value::Null => true,
        Value::Object(o) => o.values().all(vacuous),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn loose_scalars() {
        assert!(loose_eq(&json!(1), &json!(1.0)));
        assert!(loose_eq(&json!(1), &json!("1")));
        assert!(loose_eq(&json!("0.5"), &json!(0.5)));
        assert!(!loose_eq(&json!(1), &json!("1.0")));
        assert!(!loose_eq(&json!(true), &json!("true")));
        assert!(!loose_eq(&json!({"a": 1}), &json!({"a": 1, "b": 2})));
        assert!(loose_eq(
            &json!({"a": [1, {"b": "2"}]}),
            &json!({"a": [1.0, {"b": 2}]})
        ));
        assert!(loose_eq_opt(None, None));
        assert!(loose_eq_opt(Some(&json!(null)), None));
        assert!(loose_eq_opt(None, Some(&json!({"a": {}, "b": []}))));
        assert!(!loose_eq_opt(None, Some(&json!({"a": ""}))));
        assert!(loose_eq(&json!({"a": 1, "b": {}}), &json!({"a": 1})));
        assert!(!loose_eq(&json!([{}]), &json!([])));
    }

    fn without_schema(m: &Value, live: Option<&Value>) -> bool {
        let trivia = Trivia::of(&Value::Null);
        applied_cmp(&[], Some(m), live, SchemaNode::UNKNOWN, None, &trivia) == Verdict::Equal
    }

    #[test]
    fn applied_semantics_without_a_schema() {
        let live = json!({
            "replicas": 3,
            "template": {"spec": {"containers": [
                {"name": "web", "image": "nginx:1", "imagePullPolicy": "IfNotPresent"}
            ]}},
            "strategy": {"type": "RollingUpdate"}
        });
        // Server defaults are not drift.
        assert!(without_schema(&json!({"replicas": 3}), Some(&live)));
        assert!(without_schema(
            &json!({"template": {"spec": {"containers": [{"name": "web", "image": "nginx:1"}]}}}),
            Some(&live)
        ));
        // A changed field, an extra or missing array element are.
        assert!(!without_schema(&json!({"replicas": 2}), Some(&live)));
        assert!(!without_schema(
            &json!({"template": {"spec": {"containers": [{"name": "web", "image": "nginx:2"}]}}}),
            Some(&live)
        ));
        assert!(!without_schema(
            &json!({"template": {"spec": {"containers": []}}}),
            Some(&live)
        ));
        assert!(!without_schema(&json!({"paused": false}), Some(&live)));
        // null and empty containers have no opinion.
        assert!(without_schema(
            &json!({"paused": null, "selector": {}, "args": []}),
            Some(&live)
        ));
        assert!(without_schema(&json!({"a": {"b": {}}}), None));
        assert!(!without_schema(&json!({"a": {"b": 1}}), None));
        assert!(!without_schema(&json!({"a": 1}), Some(&json!("x"))));
        // Nothing in Git where nobody applied anything: no opinion.
        let trivia = Trivia::of(&live);
        assert_eq!(
            applied_cmp(&[], None, Some(&live), SchemaNode::UNKNOWN, None, &trivia),
            Verdict::Equal
        );
    }

    #[test]
    fn verdicts_order_by_how_much_they_call_for_action() {
        assert!(Verdict::Equal < Verdict::Unsure && Verdict::Unsure < Verdict::Different);
        assert_eq!(
            [Verdict::Unsure, Verdict::Equal].into_iter().max(),
            Some(Verdict::Unsure)
        );
    }

    #[test]
    fn bytes_decode_like_go() {
        assert_eq!(decode_bytes("YWRt\r\naW4="), Some(b"admin".to_vec()));
        assert_eq!(decode_bytes("YWRtaW4"), None, "padding is required");
        assert_eq!(encode_bytes(b"admin"), "YWRtaW4=");
    }

    #[test]
    fn dry_run_changes_ignore_bookkeeping() {
        let live = json!({
            "metadata": {"name": "a", "resourceVersion": "5", "generation": 2, "managedFields": [1]},
            "spec": {"selector": {"app": "web"}}
        });
        let mut result = live.clone();
        result["metadata"]["resourceVersion"] = json!("6");
        result["metadata"]["generation"] = json!(3);
        result["metadata"]["managedFields"] = json!([2]);
        assert!(!changed_by_dry_run(&live, &result));
        result["spec"]["selector"]["tier"] = json!("x");
        assert!(changed_by_dry_run(&live, &result));
        let mut labelled = live.clone();
        labelled["metadata"]["labels"] = json!({"a": "b"});
        assert!(changed_by_dry_run(&live, &labelled));
    }
}
