//! Ownership of applied objects: one GitRepository per object, never taken silently.
//!
//! Every object a repository applies carries the annotation [`OWNER_ANNOTATION`]
//! (`gitcontroller.io/owner: <namespace>/<name>`). Another repository that wants the same
//! object — or any repository that finds an object someone else created — leaves it alone and
//! reports a `Conflict`, until the object itself opts in to the hand-over with
//! [`ADOPT_ANNOTATION`] (`gitcontroller.io/adopt: <namespace>/<name>` of the new owner), set
//! by whoever may edit the object. Both annotations are bookkeeping: never exported to Git,
//! never counted as drift.

use std::collections::BTreeSet;
use std::fmt;

use gitcontroller_sync::{ClusterAction, ObjectId};
use serde_json::Value;

use super::identity::RepositoryRef;

/// Stamped on every object a GitRepository applies: `<namespace>/<name>` of that repository.
pub const OWNER_ANNOTATION: &str = "gitcontroller.io/owner";

/// Set on a live object (by a person or a tool that may edit it) to hand it over to the
/// GitRepository `<namespace>/<name>`: the only way an existing object changes hands.
pub const ADOPT_ANNOTATION: &str = "gitcontroller.io/adopt";

/// Who holds an object that a repository does not own.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Owner {
    /// Another GitRepository applied it.
    Repository(RepositoryRef),
    /// Someone else created it (no owner annotation, not in our inventory).
    Unmanaged,
}

/// Whether a repository may apply (or prune) an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ownership {
    /// The object does not exist: creating it makes it ours.
    New,
    /// Ours: it carries our owner annotation, or none and is in our inventory (applied before
    /// owners were stamped).
    Ours,
    /// Someone else's, handed over to us by the adopt annotation.
    Adopted {
        /// Who held it.
        from: Owner,
    },
    /// Someone else's: left alone, reported.
    Conflict(Owner),
}

impl Ownership {
    /// Whether the repository may write the object.
    pub fn may_write(&self) -> bool {
        !matches!(self, Ownership::Conflict(_))
    }
}

fn annotation<'a>(live: &'a Value, key: &str) -> Option<&'a str> {
    // Not `Value::pointer`, which allocates per token: this runs for every object in sync.
    live.get("metadata")?.get("annotations")?.get(key)?.as_str()
}

/// What ownership reads of a live object: its bookkeeping annotations ([`OWNER_ANNOTATION`],
/// [`ADOPT_ANNOTATION`]). An object as the API server serves it (a `Value`) has them among
/// its annotations; the watchers' stores keep them aside
/// ([`LiveObject`](crate::cluster::LiveObject)).
pub trait Bookkept {
    /// The bookkeeping annotation `key`, if the object carries it.
    fn bookkeeping_annotation(&self, key: &str) -> Option<&str>;
}

impl Bookkept for Value {
    fn bookkeeping_annotation(&self, key: &str) -> Option<&str> {
        annotation(self, key)
    }
}

/// The identity of a live object, made only for the objects [`claim`] reports or stamps.
pub trait Identified {
    /// The object's identity; `None` when the object lacks `apiVersion`, `kind` or a name.
    fn id(&self) -> Option<ObjectId>;
}

impl Identified for Value {
    fn id(&self) -> Option<ObjectId> {
        crate::controller::convert::object_id(self)
    }
}

/// Decides who owns `live` (None: the object does not exist) from the point of view of
/// `repository`, whose inventory does or does not list it.
pub fn ownership<L: Bookkept + ?Sized>(
    repository: &RepositoryRef,
    live: Option<&L>,
    in_inventory: bool,
) -> Ownership {
    let Some(live) = live else {
        return Ownership::New;
    };
    if is_stamped_by(live, repository) {
        return Ownership::Ours;
    }
    let owner = live
        .bookkeeping_annotation(OWNER_ANNOTATION)
        .and_then(RepositoryRef::parse);
    let previous = match owner {
        Some(other) => Owner::Repository(other),
        None if in_inventory => return Ownership::Ours,
        None => Owner::Unmanaged,
    };
    let adopt = live
        .bookkeeping_annotation(ADOPT_ANNOTATION)
        .and_then(RepositoryRef::parse);
    if adopt.as_ref() == Some(repository) {
        Ownership::Adopted { from: previous }
    } else {
        Ownership::Conflict(previous)
    }
}

/// Whether `live` carries `repository` in its owner annotation already. An adopted object, or
/// one applied before owners were stamped, does not: it needs one write to be stamped.
pub fn is_stamped_by<L: Bookkept + ?Sized>(live: &L, repository: &RepositoryRef) -> bool {
    live.bookkeeping_annotation(OWNER_ANNOTATION)
        .is_some_and(|owner| repository.is(owner))
}

/// Puts the owner annotation into an apply body.
pub fn stamp(body: &mut Value, repository: &RepositoryRef) {
    let Some(object) = body.as_object_mut() else {
        return;
    };
    let metadata = object
        .entry("metadata")
        .or_insert_with(|| Value::Object(Default::default()));
    let Some(metadata) = metadata.as_object_mut() else {
        return;
    };
    let annotations = metadata
        .entry("annotations")
        .or_insert_with(|| Value::Object(Default::default()));
    if !annotations.is_object() {
        *annotations = Value::Object(Default::default());
    }
    if let Some(annotations) = annotations.as_object_mut() {
        annotations.insert(
            OWNER_ANNOTATION.to_string(),
            Value::String(repository.to_string()),
        );
    }
}

/// The annotations ownership is decided by, which are not the object's own: never planned,
/// exported or seen as drift ([`strip_bookkeeping`]).
pub const BOOKKEEPING_ANNOTATIONS: [&str; 2] = [OWNER_ANNOTATION, ADOPT_ANNOTATION];

/// What ownership needs of a live object: only its bookkeeping annotations, as a JSON object
/// (what the tests compare the stores' copy with).
#[cfg(test)]
pub fn bookkeeping(live: &Value) -> Value {
    let mut annotations = serde_json::Map::new();
    for key in BOOKKEEPING_ANNOTATIONS {
        if let Some(value) = annotation(live, key) {
            annotations.insert(key.to_string(), Value::String(value.to_string()));
        }
    }
    serde_json::json!({"metadata": {"annotations": annotations}})
}

/// Removes the bookkeeping annotations from a live object before it is planned, so they are
/// never exported to Git and never seen as drift (the apply body gets the owner back from
/// [`stamp`]). An `annotations` map left empty goes too.
pub fn strip_bookkeeping(live: &mut Value) {
    let Some(metadata) = live.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    let Some(annotations) = metadata
        .get_mut("annotations")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    for key in BOOKKEEPING_ANNOTATIONS {
        annotations.remove(key);
    }
    if annotations.is_empty() {
        metadata.remove("annotations");
    }
}

/// What ownership did to one sync's cluster actions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Claims {
    /// Objects left alone because someone else holds them: reported as `Conflict`.
    pub conflicts: Vec<(ObjectId, Owner)>,
    /// Objects that are ours but do not carry our owner annotation yet (adopted, or applied
    /// before owners were stamped) and that no apply of this sync stamps: one annotation write
    /// each.
    pub to_stamp: Vec<ObjectId>,
    /// Inventory entries another repository holds now: dropped from the inventory, so they are
    /// never pruned by this repository.
    pub released: Vec<ObjectId>,
}

/// Applies ownership to a sync: an apply or delete of an object someone else holds is removed
/// from `to_cluster` and reported; the other applies get our owner annotation. `in_sync` are
/// the objects this repository applies that need no write now (their ownership is reported
/// too); `live` finds an object's live state; `inventory` is what the repository applied
/// before.
pub fn claim<'a, L: Bookkept + Identified + ?Sized + 'a>(
    repository: &RepositoryRef,
    to_cluster: &mut Vec<ClusterAction>,
    in_sync: impl IntoIterator<Item = &'a L>,
    live: impl Fn(&ObjectId) -> Option<&'a L>,
    inventory: &BTreeSet<ObjectId>,
) -> Claims {
    let mut claims = Claims::default();
    let conflict = |claims: &mut Claims, id: &ObjectId, owner: Owner| {
        if inventory.contains(id) {
            claims.released.push(id.clone());
        }
        claims.conflicts.push((id.clone(), owner));
    };
    to_cluster.retain_mut(|action| {
        let id = action.id().clone();
        let in_inventory = inventory.contains(&id);
        match (ownership(repository, live(&id), in_inventory), action) {
            (Ownership::Conflict(_), ClusterAction::Delete { .. }) => {
                // Taken over by another repository: not ours to prune, no conflict to report.
                claims.released.push(id);
                false
            }
            (Ownership::Conflict(owner), ClusterAction::Apply { .. }) => {
                conflict(&mut claims, &id, owner);
                false
            }
            (_, ClusterAction::Apply { object, .. }) => {
                stamp(object, repository);
                true
            }
            (_, ClusterAction::Delete { .. }) => true,
        }
    });
    for object in in_sync {
        // The common case, decided without the object's id; what is left is not stamped by
        // this repository yet.
        if is_stamped_by(object, repository) {
            continue;
        }
        let Some(id) = object.id() else {
            continue;
        };
        match ownership(repository, Some(object), inventory.contains(&id)) {
            Ownership::Conflict(owner) => conflict(&mut claims, &id, owner),
            Ownership::Ours | Ownership::Adopted { .. } => claims.to_stamp.push(id),
            _ => {}
        }
    }
    claims.conflicts.sort();
    claims.to_stamp.sort();
    claims.released.sort();
    claims
}

/// The `Conflict` message for an object held by `owner`. Another repository is named only when
/// `owner_visible` (the asking repository may read GitRepositories in the owner's namespace),
/// so no repository learns the names of namespaces it cannot see.
pub fn conflict_message(owner: &Owner, owner_visible: bool, repository: &RepositoryRef) -> String {
    let held = match owner {
        Owner::Repository(other) if owner_visible => {
            format!("already applied by GitRepository {other}")
        }
        Owner::Repository(_) => "already applied by another GitRepository".to_string(),
        Owner::Unmanaged => "exists and was not created by this GitRepository".to_string(),
    };
    format!(
        "{held}; left alone. To hand it over, annotate the live object with \
         {ADOPT_ANNOTATION}={repository}"
    )
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Owner::Repository(repository) => write!(f, "GitRepository {repository}"),
            Owner::Unmanaged => f.write_str("no GitRepository"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn me() -> RepositoryRef {
        RepositoryRef::new("team-a", "apps")
    }

    fn them() -> RepositoryRef {
        RepositoryRef::new("team-b", "apps")
    }

    fn live(annotations: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "x", "namespace": "team-a", "annotations": annotations}})
    }

    #[test]
    fn objects_change_hands_only_through_the_adopt_annotation() {
        assert_eq!(ownership::<Value>(&me(), None, false), Ownership::New);
        let mine = live(json!({OWNER_ANNOTATION: "team-a/apps"}));
        assert_eq!(ownership(&me(), Some(&mine), false), Ownership::Ours);
        let theirs = live(json!({OWNER_ANNOTATION: "team-b/apps"}));
        assert_eq!(
            ownership(&me(), Some(&theirs), true),
            Ownership::Conflict(Owner::Repository(them())),
            "our inventory does not override another owner"
        );
        let handed_over =
            live(json!({OWNER_ANNOTATION: "team-b/apps", ADOPT_ANNOTATION: "team-a/apps"}));
        assert_eq!(
            ownership(&me(), Some(&handed_over), false),
            Ownership::Adopted {
                from: Owner::Repository(them())
            }
        );
        assert_eq!(
            ownership(&them(), Some(&handed_over), true),
            Ownership::Ours,
            "the previous owner keeps it until the adopter stamps it"
        );
        assert!(is_stamped_by(&handed_over, &them()));
        assert!(!is_stamped_by(&handed_over, &me()));
    }

    #[test]
    fn objects_nobody_stamped_are_ours_only_when_in_our_inventory() {
        let unstamped = live(json!({}));
        assert_eq!(ownership(&me(), Some(&unstamped), true), Ownership::Ours);
        assert_eq!(
            ownership(&me(), Some(&unstamped), false),
            Ownership::Conflict(Owner::Unmanaged)
        );
        let offered = live(json!({ADOPT_ANNOTATION: "team-a/apps"}));
        assert_eq!(
            ownership(&me(), Some(&offered), false),
            Ownership::Adopted {
                from: Owner::Unmanaged
            }
        );
        let offered_elsewhere = live(json!({ADOPT_ANNOTATION: "team-c/apps"}));
        assert!(!ownership(&me(), Some(&offered_elsewhere), false).may_write());
        let garbage = live(json!({OWNER_ANNOTATION: "not a reference"}));
        assert_eq!(
            ownership(&me(), Some(&garbage), false),
            Ownership::Conflict(Owner::Unmanaged)
        );
    }

    #[test]
    fn the_owner_is_stamped_into_apply_bodies_and_stripped_before_planning() {
        let mut body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}});
        stamp(&mut body, &me());
        assert_eq!(
            body["metadata"]["annotations"][OWNER_ANNOTATION],
            "team-a/apps"
        );
        let mut body = json!({"metadata": {"name": "x", "annotations": {"keep": "me"}}});
        stamp(&mut body, &me());
        assert_eq!(body["metadata"]["annotations"]["keep"], "me");

        let mut object =
            live(json!({OWNER_ANNOTATION: "team-a/apps", ADOPT_ANNOTATION: "team-a/apps"}));
        strip_bookkeeping(&mut object);
        assert!(object["metadata"].get("annotations").is_none(), "{object}");
        let mut object = live(json!({OWNER_ANNOTATION: "team-a/apps", "keep": "me"}));
        let kept = bookkeeping(&object);
        strip_bookkeeping(&mut object);
        assert_eq!(object["metadata"]["annotations"], json!({"keep": "me"}));
        assert_eq!(ownership(&me(), Some(&kept), false), Ownership::Ours);
        assert_eq!(
            kept["metadata"]["annotations"],
            json!({OWNER_ANNOTATION: "team-a/apps"})
        );
    }

    fn id(name: &str) -> ObjectId {
        ObjectId::new("", "ConfigMap", Some("team-a"), name)
    }

    fn apply(name: &str) -> ClusterAction {
        ClusterAction::Apply {
            id: id(name),
            object: json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "team-a"}}),
            create: false,
            paths: vec![],
        }
    }

    #[test]
    fn a_sync_writes_only_what_it_owns_and_stamps_it() {
        let live_objects: std::collections::HashMap<ObjectId, Value> = [
            ("theirs", json!({OWNER_ANNOTATION: "team-b/apps"})),
            ("mine", json!({OWNER_ANNOTATION: "team-a/apps"})),
            ("legacy", json!({})),
            ("stranger", json!({})),
            (
                "handed",
                json!({OWNER_ANNOTATION: "team-b/apps", ADOPT_ANNOTATION: "team-a/apps"}),
            ),
            ("taken", json!({OWNER_ANNOTATION: "team-b/apps"})),
            ("quiet-legacy", json!({})),
            ("quiet-theirs", json!({OWNER_ANNOTATION: "team-b/apps"})),
            ("quiet-mine", json!({OWNER_ANNOTATION: "team-a/apps"})),
        ]
        .into_iter()
        .map(|(name, annotations)| {
            let mut object = live(annotations);
            object["metadata"]["name"] = json!(name);
            (id(name), object)
        })
        .collect();
        let inventory: BTreeSet<ObjectId> = ["mine", "legacy", "taken", "quiet-legacy", "theirs"]
            .into_iter()
            .map(id)
            .collect();
        let mut to_cluster = vec![
            apply("new"),
            apply("mine"),
            apply("legacy"),
            apply("theirs"),
            apply("stranger"),
            apply("handed"),
            ClusterAction::Delete { id: id("taken") },
        ];
        let in_sync =
            ["quiet-legacy", "quiet-theirs", "quiet-mine"].map(|name| &live_objects[&id(name)]);
        let claims = claim(
            &me(),
            &mut to_cluster,
            in_sync,
            |i| live_objects.get(i),
            &inventory,
        );

        let kept: Vec<String> = to_cluster.iter().map(|a| a.id().name.clone()).collect();
        assert_eq!(kept, ["new", "mine", "legacy", "handed"]);
        for action in &to_cluster {
            let ClusterAction::Apply { object, .. } = action else {
                panic!("no delete survives: {action:?}");
            };
            assert_eq!(
                object["metadata"]["annotations"][OWNER_ANNOTATION],
                "team-a/apps"
            );
        }
        assert_eq!(
            claims.conflicts,
            [
                (id("quiet-theirs"), Owner::Repository(them())),
                (id("stranger"), Owner::Unmanaged),
                (id("theirs"), Owner::Repository(them())),
            ]
        );
        assert_eq!(claims.to_stamp, [id("quiet-legacy")]);
        assert_eq!(claims.released, [id("taken"), id("theirs")]);
    }

    #[test]
    fn conflicts_name_the_owner_only_when_the_asker_may_see_it() {
        let named = conflict_message(&Owner::Repository(them()), true, &me());
        assert!(named.contains("GitRepository team-b/apps"), "{named}");
        assert!(
            named.contains("gitcontroller.io/adopt=team-a/apps"),
            "{named}"
        );
        let hidden = conflict_message(&Owner::Repository(them()), false, &me());
        assert!(!hidden.contains("team-b"), "{hidden}");
        assert!(hidden.contains("another GitRepository"), "{hidden}");
        let unmanaged = conflict_message(&Owner::Unmanaged, false, &me());
        assert!(
            unmanaged.contains("not created by this GitRepository"),
            "{unmanaged}"
        );
    }
}
