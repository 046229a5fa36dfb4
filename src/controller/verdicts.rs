//! [`Verdicts`]: the applies a repository knows change nothing, so that a repository in sync
//! makes neither an apply nor a dry run.
//!
//! An entry says: applying the body with this digest to the object at this `resourceVersion`
//! leaves it as it is. It is learned from a server-side dry run that changed nothing, or from
//! our own apply (applying the same body again to what it stored is a no-op). Any write to the
//! object gives it a new `resourceVersion`, and any change to the body (the manifest, or the
//! live values it carries) a new digest: either makes the entry useless, never wrong.
//!
//! Bounded: each sync keeps only the entries of the objects it confirmed (the applies the
//! planner still asks for), so deleted objects and objects back in sync by the planner's own
//! comparison drop out; a deleted repository's entries go with its
//! [`RepositoryState`](super::RepositoryState).

use std::collections::{BTreeSet, HashMap};

use gitcontroller_sync::ObjectId;
use serde_json::Value;
use sha2::{Digest as _, Sha256};

/// The SHA-256 of an apply body's JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BodyDigest([u8; 32]);

impl BodyDigest {
    /// The digest of `body`, as serialized (the planner builds bodies deterministically).
    pub fn of(body: &Value) -> Self {
        let bytes = serde_json::to_vec(body).unwrap_or_default();
        Self(Sha256::digest(bytes).into())
    }
}

/// An apply known to change nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
struct NoChange {
    body: BodyDigest,
    resource_version: String,
}

/// One repository's applies known to change nothing, by object.
#[derive(Debug, Default)]
pub struct Verdicts {
    no_change: HashMap<ObjectId, NoChange>,
}

impl Verdicts {
    /// Whether applying `body` to `id` at `resource_version` is known to change nothing.
    pub fn changes_nothing(&self, id: &ObjectId, body: BodyDigest, resource_version: &str) -> bool {
        self.no_change
            .get(id)
            .is_some_and(|n| n.body == body && n.resource_version == resource_version)
    }

    /// Records that applying `body` to `id` at `resource_version` changes nothing.
    pub fn remember(&mut self, id: &ObjectId, body: BodyDigest, resource_version: String) {
        self.no_change.insert(
            id.clone(),
            NoChange {
                body,
                resource_version,
            },
        );
    }

    /// Forgets what is known about `id` (it was deleted).
    pub fn forget(&mut self, id: &ObjectId) {
        self.no_change.remove(id);
    }

    /// Keeps only the entries of `ids`.
    pub fn keep_only(&mut self, ids: &BTreeSet<&ObjectId>) {
        self.no_change.retain(|id, _| ids.contains(id));
    }

    /// How many entries there are.
    pub fn len(&self) -> usize {
        self.no_change.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.no_change.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(name: &str) -> ObjectId {
        ObjectId::new("apps", "Deployment", Some("ns"), name)
    }

    #[test]
    fn a_verdict_holds_for_the_same_body_at_the_same_resource_version_only() {
        let body = serde_json::json!({"spec": {"replicas": 2}});
        let other = serde_json::json!({"spec": {"replicas": 3}});
        let mut verdicts = Verdicts::default();
        verdicts.remember(&id("web"), BodyDigest::of(&body), "41".into());
        assert!(verdicts.changes_nothing(&id("web"), BodyDigest::of(&body), "41"));
        assert!(!verdicts.changes_nothing(&id("web"), BodyDigest::of(&body), "42"));
        assert!(!verdicts.changes_nothing(&id("web"), BodyDigest::of(&other), "41"));
        assert!(!verdicts.changes_nothing(&id("api"), BodyDigest::of(&body), "41"));
        verdicts.forget(&id("web"));
        assert!(!verdicts.changes_nothing(&id("web"), BodyDigest::of(&body), "41"));
    }

    #[test]
    fn only_the_objects_still_confirmed_are_kept() {
        let body = BodyDigest::of(&serde_json::json!({}));
        let mut verdicts = Verdicts::default();
        for name in ["a", "b", "c"] {
            verdicts.remember(&id(name), body, "1".into());
        }
        let (a, c) = (id("a"), id("c"));
        verdicts.keep_only(&BTreeSet::from([&a, &c]));
        assert_eq!(verdicts.len(), 2);
        assert!(verdicts.changes_nothing(&a, body, "1"));
        assert!(!verdicts.changes_nothing(&id("b"), body, "1"));
    }
}
