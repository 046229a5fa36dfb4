//! Live objects as the watchers' stores keep them: one compact JSON copy per object, made
//! once per watch event and shared (`Arc`) by every reconcile that plans against it.
//!
//! What is dropped, and why it is safe for the planner (`gitcontroller_sync`):
//! - `status`: the server's; never exported, compared or applied.
//! - in each `metadata.managedFields` entry, everything but `manager`, `operation`,
//!   `subresource` and `fieldsV1` (the time, `apiVersion` and `fieldsType`: the planner reads
//!   ownership only), and what inside `status` an entry owns (`f:status` becomes `{}`: that
//!   it owns some of the dropped status is all that is left to know). The `fieldsV1` set
//!   itself is kept as its JSON text, which the planner accepts: its few nested maps would
//!   cost about 2.5 KiB per object as `serde_json` maps (each non-empty map is a B-tree node
//!   of 632 bytes), against a hundred-odd bytes of text, and a plan reads the sets of only
//!   the objects it compares.
//!
//! - our bookkeeping annotations (owner, adopt: [`crate::access::ownership`]), kept apart beside
//!   the object and read through [`Bookkept`]: they are never planned, exported or seen as
//!   drift, and stripping them here instead of on every reconcile keeps the object shared.
//!
//! Everything else stays as the API server serves it (`deletionTimestamp` and `finalizers`
//! included): a `syncTo: git` rule may govern any other field. The confirm step compares a
//! server-side dry run's answer with these objects, so it compacts that answer the same way
//! ([`compact`]).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::{ApiResource, DynamicResourceScope, Resource};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use gitcontroller_sync::{LiveIdentity, LiveInput, ObjectId, PackedStrs};

use crate::access::ownership::{BOOKKEEPING_ANNOTATIONS, Bookkept, Identified, strip_bookkeeping};

/// The members of a `managedFields` entry the planner reads.
const KEPT_MANAGED_FIELDS_MEMBERS: &[&str] = &["manager", "operation", "subresource", "fieldsV1"];

/// The type of a watcher's objects, shared: the store keeps one in the key of every object.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LiveType(Arc<ApiResource>);

impl LiveType {
    /// The type of `resource`'s objects.
    pub fn new(resource: &ApiResource) -> Self {
        Self(Arc::new(resource.clone()))
    }
}

/// A live object in a watcher's store.
#[derive(Clone, Debug)]
pub struct LiveObject {
    /// What the watch machinery reads: name, namespace, resourceVersion. Not the labels: a
    /// second copy of them (a map node of its own per object) would cost more than reading
    /// them from the object on a change ([`LiveObject::labels_map`]).
    metadata: ObjectMeta,
    /// The bookkeeping annotations ([`BOOKKEEPING_ANNOTATIONS`], in that order), which the
    /// object itself no longer has, in one allocation (`None`: neither): the claim reads them
    /// for every object in sync.
    bookkeeping: Option<PackedStrs<2>>,
    /// The compact object, with `apiVersion` and `kind` (once [`LiveObject::typed`] ran).
    object: Arc<Value>,
    /// What the planner reads of the object on every plan, kept together (`None`: read from
    /// the object).
    identity: Option<IdentityText>,
}

/// A live object's [`LiveIdentity`] (`apiVersion`, `kind`, namespace, name, uid,
/// resourceVersion) in one allocation. The planner reads the identity of every live object on
/// every plan; read from the object, that is a visit of its top map, its `metadata` map and
/// six strings, each likely out of the cache: about a third of a plan's cost at 10,000
/// objects of which one changed. About 100 bytes per object.
#[derive(Clone, Debug)]
struct IdentityText(PackedStrs<6>);

impl IdentityText {
    /// `None` for fields too long to be indexed by a `u32` (the API server bounds requests
    /// far below 4 GiB; such an object is identified by reading it).
    fn of(object: &Value) -> Option<Self> {
        let identity = LiveIdentity::of(object);
        PackedStrs::new([
            identity.api_version,
            identity.kind,
            identity.namespace,
            identity.name,
            identity.uid,
            identity.resource_version,
        ])
        .map(IdentityText)
    }

    fn identity(&self) -> LiveIdentity<'_> {
        let IdentityText(packed) = self;
        LiveIdentity {
            api_version: packed.get(0),
            kind: packed.get(1),
            namespace: packed.get(2),
            name: packed.get(3),
            uid: packed.get(4),
            resource_version: packed.get(5),
        }
    }
}

impl LiveObject {
    /// The object from the API server's JSON, compacted.
    pub fn new(mut object: Value) -> Self {
        compact(&mut object);
        let bookkeeping =
            match BOOKKEEPING_ANNOTATIONS.map(|key| object.bookkeeping_annotation(key)) {
                [None, None] => None,
                present => PackedStrs::new(present),
            };
        strip_bookkeeping(&mut object);
        let text = |field: &str| {
            object
                .pointer(&format!("/metadata/{field}"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let metadata = ObjectMeta {
            name: text("name"),
            namespace: text("namespace"),
            resource_version: text("resourceVersion"),
            ..ObjectMeta::default()
        };
        Self {
            metadata,
            bookkeeping,
            identity: IdentityText::of(&object),
            object: Arc::new(object),
        }
    }

    /// Fills in `apiVersion` and `kind` where the API server left them out (the items of a
    /// list). Cheap while the object is not shared yet, as in the watch stream.
    pub fn typed(&mut self, LiveType(resource): &LiveType) {
        let has_types =
            self.object.get("apiVersion").is_some() && self.object.get("kind").is_some();
        if has_types {
            return;
        }
        if let Value::Object(map) = Arc::make_mut(&mut self.object) {
            map.entry("apiVersion")
                .or_insert_with(|| resource.api_version.clone().into());
            map.entry("kind")
                .or_insert_with(|| resource.kind.clone().into());
        }
        self.identity = IdentityText::of(&self.object);
    }

    /// Its labels (kept only in the object: `ResourceExt::labels` reads none).
    pub fn labels_map(&self) -> BTreeMap<String, String> {
        text_map(&self.object["metadata"]["labels"])
    }

    /// The object as the planner reads it; cloning the `Arc` copies nothing.
    pub fn object(&self) -> &Arc<Value> {
        &self.object
    }
}

impl Bookkept for LiveObject {
    fn bookkeeping_annotation(&self, key: &str) -> Option<&str> {
        let at = BOOKKEEPING_ANNOTATIONS.iter().position(|k| *k == key)?;
        self.bookkeeping.as_ref()?.get(at)
    }
}

impl Identified for LiveObject {
    fn id(&self) -> Option<ObjectId> {
        let identity = LiveInput::identity(self);
        Some(ObjectId {
            group: gitcontroller_sync::group_of(identity.api_version?).to_owned(),
            kind: identity.kind?.to_owned(),
            namespace: identity.namespace.map(str::to_owned),
            name: identity.name?.to_owned(),
        })
    }
}

impl LiveInput for LiveObject {
    fn object(&self) -> &Value {
        &self.object
    }

    fn identity(&self) -> LiveIdentity<'_> {
        match &self.identity {
            Some(kept) => kept.identity(),
            None => LiveIdentity::of(&self.object),
        }
    }
}

impl<'de> Deserialize<'de> for LiveObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Value::deserialize(deserializer).map(LiveObject::new)
    }
}

impl Resource for LiveObject {
    type DynamicType = LiveType;
    type Scope = DynamicResourceScope;

    fn group(LiveType(resource): &LiveType) -> Cow<'_, str> {
        resource.group.as_str().into()
    }

    fn version(LiveType(resource): &LiveType) -> Cow<'_, str> {
        resource.version.as_str().into()
    }

    fn kind(LiveType(resource): &LiveType) -> Cow<'_, str> {
        resource.kind.as_str().into()
    }

    fn api_version(LiveType(resource): &LiveType) -> Cow<'_, str> {
        resource.api_version.as_str().into()
    }

    fn plural(LiveType(resource): &LiveType) -> Cow<'_, str> {
        resource.plural.as_str().into()
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// A JSON object of strings as a map (other values are left out, as the API server allows
/// none in labels and annotations).
fn text_map(value: &Value) -> BTreeMap<String, String> {
    value
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
        .collect()
}

/// Drops from an object what the planner never reads (see the module docs).
pub fn compact(object: &mut Value) {
    let Value::Object(map) = object else {
        return;
    };
    map.remove("status");
    let Some(Value::Array(entries)) = map
        .get_mut("metadata")
        .and_then(|m| m.get_mut("managedFields"))
    else {
        return;
    };
    for entry in entries {
        let Value::Object(entry) = entry else {
            continue;
        };
        entry.retain(|key, _| KEPT_MANAGED_FIELDS_MEMBERS.contains(&key.as_str()));
        if let Some(set) = entry.get_mut("fieldsV1")
            && let Value::Object(fields) = set
        {
            if let Some(status) = fields.get_mut("f:status") {
                // Owning the status stays known (an entry that owns only status still tells
                // the export that ownership is tracked), the details of what in it do not.
                *status = Value::Object(Map::new());
            }
            // As text: the planner parses the sets of the objects it compares only.
            *set = Value::String(set.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::ownership::bookkeeping;
    use serde_json::json;

    fn deployment() -> Value {
        json!({
            "metadata": {
                "name": "web", "namespace": "prod", "uid": "u-1", "resourceVersion": "42",
                "labels": {"app": "web"},
                "managedFields": [
                    {"manager": "git-controller", "operation": "Apply", "apiVersion": "apps/v1",
                     "time": "2025-01-01T00:00:00Z", "fieldsType": "FieldsV1",
                     "fieldsV1": {"f:spec": {"f:replicas": {}}}},
                    {"manager": "kube-controller-manager", "operation": "Update",
                     "subresource": "status", "apiVersion": "apps/v1", "fieldsType": "FieldsV1",
                     "fieldsV1": {"f:status": {"f:replicas": {}}}},
                    {"manager": "kubectl", "operation": "Update", "apiVersion": "apps/v1",
                     "fieldsType": "FieldsV1",
                     "fieldsV1": {"f:metadata": {"f:labels": {"f:app": {}}}, "f:status": {}}}
                ]
            },
            "spec": {"replicas": 2},
            "status": {"replicas": 2}
        })
    }

    #[test]
    fn status_and_managed_fields_bookkeeping_are_dropped_ownership_stays() {
        let live = LiveObject::new(deployment());
        assert_eq!(
            **live.object(),
            json!({
                "metadata": {
                    "name": "web", "namespace": "prod", "uid": "u-1", "resourceVersion": "42",
                    "labels": {"app": "web"},
                    "managedFields": [
                        {"manager": "git-controller", "operation": "Apply",
                         "fieldsV1": r#"{"f:spec":{"f:replicas":{}}}"#},
                        {"manager": "kube-controller-manager", "operation": "Update",
                         "subresource": "status", "fieldsV1": r#"{"f:status":{}}"#},
                        {"manager": "kubectl", "operation": "Update",
                         "fieldsV1": r#"{"f:metadata":{"f:labels":{"f:app":{}}},"f:status":{}}"#}
                    ]
                },
                "spec": {"replicas": 2}
            })
        );
        assert_eq!(live.meta().name.as_deref(), Some("web"));
        assert_eq!(live.meta().namespace.as_deref(), Some("prod"));
        assert_eq!(live.meta().resource_version.as_deref(), Some("42"));
    }

    #[test]
    fn the_planner_reads_the_same_export_from_the_compact_object() {
        // Ownership tracked only for the status: the export still knows that it is tracked
        // (and so drops the fields nobody owns).
        let status_only = json!({
            "metadata": {"name": "web", "namespace": "prod", "managedFields": [
                {"manager": "kube-controller-manager", "operation": "Update",
                 "subresource": "status", "fieldsV1": {"f:status": {"f:replicas": {}}}}
            ]},
            "spec": {"replicas": 2, "paused": false},
            "status": {"replicas": 2}
        });
        for object in [deployment(), status_only] {
            let mut full = json!({"apiVersion": "apps/v1", "kind": "Deployment"});
            full.as_object_mut()
                .unwrap()
                .extend(object.as_object().unwrap().clone());
            let compact = LiveObject::new(full.clone());
            assert_eq!(
                gitcontroller_sync::export::clean(&full),
                gitcontroller_sync::export::clean(compact.object()),
                "{full}"
            );
        }
    }

    #[test]
    fn labels_are_read_from_the_metadata_and_bookkeeping_is_kept_apart() {
        use crate::access::{ADOPT_ANNOTATION, OWNER_ANNOTATION};
        let mut object = deployment();
        object["metadata"]["annotations"] = json!({
            OWNER_ANNOTATION: "team/repo", ADOPT_ANNOTATION: "team/other", "note": "kept"
        });
        let live = LiveObject::new(object);
        assert_eq!(
            live.labels_map(),
            BTreeMap::from([("app".to_string(), "web".to_string())])
        );
        assert_eq!(
            live.object()["metadata"]["annotations"],
            json!({"note": "kept"}),
            "the planner never sees our bookkeeping"
        );
        let full = {
            let mut object = deployment();
            object["metadata"]["annotations"] = json!({
                OWNER_ANNOTATION: "team/repo", ADOPT_ANNOTATION: "team/other", "note": "kept"
            });
            object
        };
        for key in [OWNER_ANNOTATION, ADOPT_ANNOTATION, "note"] {
            assert_eq!(
                live.bookkeeping_annotation(key),
                bookkeeping(&full).bookkeeping_annotation(key),
                "{key}: what ownership reads of the full object"
            );
        }
        assert_eq!(
            live.bookkeeping_annotation(OWNER_ANNOTATION),
            Some("team/repo")
        );
        let plain = LiveObject::new(deployment());
        assert_eq!(plain.bookkeeping_annotation(OWNER_ANNOTATION), None);
        assert!(plain.object()["metadata"].get("annotations").is_none());
    }

    #[test]
    fn list_items_get_their_types_from_the_resource() {
        let resource = LiveType::new(&ApiResource {
            group: "apps".into(),
            version: "v1".into(),
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            plural: "deployments".into(),
        });
        let mut live: LiveObject = serde_json::from_value(deployment()).unwrap();
        live.typed(&resource);
        assert_eq!(live.object()["apiVersion"], "apps/v1");
        assert_eq!(live.object()["kind"], "Deployment");
        assert!(live.object().get("status").is_none());
        // The identity kept for the planner follows: it has the types now.
        let identity = LiveInput::identity(&live);
        assert_eq!(identity, LiveIdentity::of(live.object()));
        assert_eq!(identity.kind, Some("Deployment"));
    }

    #[test]
    fn the_identity_kept_for_the_planner_is_the_objects() {
        let mut cluster_scoped = deployment();
        cluster_scoped["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("namespace");
        let objects = [
            json!({"apiVersion": "apps/v1", "kind": "Deployment"})
                .as_object()
                .unwrap()
                .clone(),
            Default::default(),
        ];
        for base in [deployment(), cluster_scoped] {
            for extra in &objects {
                let mut object = base.clone();
                object.as_object_mut().unwrap().extend(extra.clone());
                let live = LiveObject::new(object);
                let kept = LiveInput::identity(&live);
                assert_eq!(kept, LiveIdentity::of(live.object()), "{:?}", live.object());
                assert_eq!(kept.name, Some("web"));
                assert_eq!(kept.resource_version, Some("42"));
            }
        }
        // Nothing identifies an empty object, and the kept identity says so too.
        let empty = LiveObject::new(json!({}));
        assert_eq!(LiveInput::identity(&empty), LiveIdentity::default());
        // Empty strings are present, not absent.
        let blank =
            LiveObject::new(json!({"apiVersion": "", "kind": "", "metadata": {"name": ""}}));
        let kept = LiveInput::identity(&blank);
        assert_eq!(kept, LiveIdentity::of(blank.object()));
        assert_eq!(
            (kept.api_version, kept.kind, kept.name),
            (Some(""), Some(""), Some(""))
        );
    }
}
