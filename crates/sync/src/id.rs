//! Object identity and discovery information.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::lookup::member;
use crate::schema::TypeSchema;

/// The identity of a Kubernetes object: API group, kind, namespace and name.
///
/// The API version is deliberately not part of the identity: `apps/v1` and `apps/v1beta2`
/// Deployments with the same namespace and name are the same object. The core group is `""`.
/// `namespace` is `None` for cluster-scoped objects.
///
/// Ordering (used for every list in a [`Plan`](crate::Plan)) is by group, kind, namespace
/// (cluster-scoped first), then name.
///
/// `Display` renders `apps/Deployment default/web`, `ConfigMap default/settings` (core group)
/// and `rbac.authorization.k8s.io/ClusterRole admin` (cluster-scoped).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ObjectId {
    /// API group; `""` for the core group.
    pub group: String,
    /// Kind, e.g. `Deployment`.
    pub kind: String,
    /// Namespace; `None` for cluster-scoped objects.
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
}

impl ObjectId {
    /// Builds an identity from its parts.
    pub fn new(
        group: impl Into<String>,
        kind: impl Into<String>,
        namespace: Option<&str>,
        name: impl Into<String>,
    ) -> Self {
        ObjectId {
            group: group.into(),
            kind: kind.into(),
            namespace: namespace.map(str::to_owned),
            name: name.into(),
        }
    }

    /// True for the core-group `Secret` kind, whose export to Git needs explicit consent.
    pub fn is_secret(&self) -> bool {
        self.group.is_empty() && self.kind == "Secret"
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.group.is_empty() {
            write!(f, "{}/", self.group)?;
        }
        write!(f, "{} ", self.kind)?;
        if let Some(ns) = &self.namespace {
            write!(f, "{ns}/")?;
        }
        f.write_str(&self.name)
    }
}

/// An [`ObjectId`] borrowing its parts, ordered the same way; the planner keys objects by it
/// so that live objects need no allocation until they appear in the plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct IdRef<'a> {
    pub(crate) group: &'a str,
    pub(crate) kind: &'a str,
    pub(crate) namespace: Option<&'a str>,
    pub(crate) name: &'a str,
}

impl<'a> IdRef<'a> {
    pub(crate) fn of(id: &'a ObjectId) -> Self {
        IdRef {
            group: &id.group,
            kind: &id.kind,
            namespace: id.namespace.as_deref(),
            name: &id.name,
        }
    }

    pub(crate) fn to_owned(self) -> ObjectId {
        ObjectId::new(self.group, self.kind, self.namespace, self.name)
    }
}

/// Discovery information about one served resource type, passed in by the caller.
///
/// The planner needs it to match a rule's `resources` (plural names), to default the
/// namespace of namespaced manifests (`default`) and to lay out new files. Several versions of
/// the same group and kind may be passed; they must agree on `plural` and `namespaced`.
///
/// With a [`schema`](ResourceType::schema), objects of the type are compared as the API
/// server stores them (see `docs/sync-semantics.md`, *Comparing*); without one, as plain JSON
/// with the leniencies listed there.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ResourceType {
    /// API group; `""` for the core group.
    pub group: String,
    /// A served version, e.g. `v1`.
    pub version: String,
    /// Kind, e.g. `Deployment`.
    pub kind: String,
    /// Plural resource name, e.g. `deployments`.
    pub plural: String,
    /// Whether objects of this type live in a namespace.
    pub namespaced: bool,
    /// The type's schema in this version, from the server's OpenAPI v3 document
    /// ([`parse_openapi_v3`](crate::schema::parse_openapi_v3)); `None` when unknown.
    #[serde(skip)]
    pub schema: Option<TypeSchema>,
}

impl ResourceType {
    /// Builds a resource type from its parts.
    pub fn new(group: &str, version: &str, kind: &str, plural: &str, namespaced: bool) -> Self {
        ResourceType {
            group: group.to_owned(),
            version: version.to_owned(),
            kind: kind.to_owned(),
            plural: plural.to_owned(),
            namespaced,
            schema: None,
        }
    }

    /// The same type with its schema.
    pub fn with_schema(mut self, schema: Option<TypeSchema>) -> Self {
        self.schema = schema;
        self
    }
}

/// The API group of an `apiVersion` string: `apps/v1` → `apps`, `v1` → `""`.
pub fn group_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(group, _)| group)
}

/// Lookup of resource types by (group, kind).
pub(crate) struct TypeIndex<'a> {
    /// Each type with its position in (group, kind) order, which sorts objects cheaply.
    by_kind: HashMap<(&'a str, &'a str), (usize, &'a ResourceType), BuildHasherDefault<KindHasher>>,
}

/// FxHash, for the short (group, kind) keys looked up once per object: SipHash's protection
/// against flooding is not needed for a table of the cluster's types, and costs a few
/// percent of a plan.
#[derive(Default)]
pub(crate) struct KindHasher(u64);

impl Hasher for KindHasher {
    fn write(&mut self, bytes: &[u8]) {
        const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let word = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
            self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SEED);
        }
        for &byte in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(byte)).wrapping_mul(SEED);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl<'a> TypeIndex<'a> {
    pub(crate) fn new(types: &'a [ResourceType]) -> Self {
        let mut by_kind: HashMap<(&str, &str), &ResourceType> = HashMap::default();
        for ty in types {
            // Several versions of one kind: keep the smallest so input order never matters.
            by_kind
                .entry((ty.group.as_str(), ty.kind.as_str()))
                .and_modify(|cur| {
                    if *ty < **cur {
                        *cur = ty;
                    }
                })
                .or_insert(ty);
        }
        let mut kinds: Vec<((&str, &str), &ResourceType)> = by_kind.into_iter().collect();
        kinds.sort_unstable_by_key(|(k, _)| *k);
        let by_kind = kinds
            .into_iter()
            .enumerate()
            .map(|(ordinal, (k, ty))| (k, (ordinal, ty)))
            .collect();
        TypeIndex { by_kind }
    }

    /// The type and its position in (group, kind) order.
    pub(crate) fn get_ordered(&self, group: &str, kind: &str) -> Option<(usize, &'a ResourceType)> {
        self.by_kind.get(&(group, kind)).copied()
    }

    pub(crate) fn has_plural(&self, plural: &str) -> bool {
        self.by_kind.values().any(|(_, t)| t.plural == plural)
    }

    pub(crate) fn has_kind(&self, kind: &str) -> bool {
        self.by_kind.keys().any(|(_, k)| *k == kind)
    }
}

/// Why an object's identity could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum IdError {
    /// `apiVersion`, `kind` or `metadata.name` missing or not a string.
    Incomplete(&'static str),
    /// The group and kind are not in the discovery information.
    UnknownKind { api_version: String, kind: String },
}

/// Resolves the identity of an object (manifest or live) against the discovery information:
/// a namespaced object without a namespace is in `default`; a cluster-scoped object never has
/// one.
pub(crate) fn resolve_id<'t>(
    obj: &Value,
    types: &TypeIndex<'t>,
) -> Result<(ObjectId, &'t ResourceType), IdError> {
    resolve_ref(obj, types).map(|(id, _, ty)| (id.to_owned(), ty))
}

/// [`resolve_id`] without allocating; also returns the type's position in (group, kind)
/// order.
pub(crate) fn resolve_ref<'v, 't>(
    obj: &'v Value,
    types: &TypeIndex<'t>,
) -> Result<(IdRef<'v>, usize, &'t ResourceType), IdError> {
    resolve_identity(&LiveIdentity::of(obj), types)
}

/// What the planner reads of a live object before anything else: the fields that identify it
/// and its version, each as the object has it (`None`: absent or not a string).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LiveIdentity<'a> {
    /// `apiVersion`.
    pub api_version: Option<&'a str>,
    /// `kind`.
    pub kind: Option<&'a str>,
    /// `metadata.namespace`.
    pub namespace: Option<&'a str>,
    /// `metadata.name`.
    pub name: Option<&'a str>,
    /// `metadata.uid`.
    pub uid: Option<&'a str>,
    /// `metadata.resourceVersion`.
    pub resource_version: Option<&'a str>,
}

impl<'a> LiveIdentity<'a> {
    /// Read from the object.
    pub fn of(object: &'a Value) -> Self {
        let text = |v: Option<&'a Value>, key: &str| v.and_then(|v| member(v, key)?.as_str());
        let meta = member(object, "metadata");
        LiveIdentity {
            api_version: text(Some(object), "apiVersion"),
            kind: text(Some(object), "kind"),
            namespace: text(meta, "namespace"),
            name: text(meta, "name"),
            uid: text(meta, "uid"),
            resource_version: text(meta, "resourceVersion"),
        }
    }
}

/// A live object as the planner takes it: the object, and its [`LiveIdentity`].
///
/// The planner reads every live object's identity on every plan, while it compares only the
/// objects that changed; a caller that keeps its objects from plan to plan can read each
/// identity once and keep it compactly, so that a plan does not visit every object's maps
/// (most of the cost of planning many objects of which few changed). What
/// [`identity`](LiveInput::identity) returns must be exactly [`LiveIdentity::of`] the object.
pub trait LiveInput {
    /// The object, complete as the API serves it.
    fn object(&self) -> &Value;

    /// Its identity; read from [`object`](LiveInput::object) unless the implementation keeps
    /// it.
    fn identity(&self) -> LiveIdentity<'_> {
        LiveIdentity::of(self.object())
    }
}

impl LiveInput for Value {
    fn object(&self) -> &Value {
        self
    }
}

impl<T: LiveInput + ?Sized> LiveInput for &T {
    fn object(&self) -> &Value {
        (**self).object()
    }

    fn identity(&self) -> LiveIdentity<'_> {
        (**self).identity()
    }
}

impl<T: LiveInput + ?Sized> LiveInput for std::sync::Arc<T> {
    fn object(&self) -> &Value {
        (**self).object()
    }

    fn identity(&self) -> LiveIdentity<'_> {
        (**self).identity()
    }
}

impl<T: LiveInput + ?Sized> LiveInput for Box<T> {
    fn object(&self) -> &Value {
        (**self).object()
    }

    fn identity(&self) -> LiveIdentity<'_> {
        (**self).identity()
    }
}

/// [`resolve_ref`] from an object's identity fields.
pub(crate) fn resolve_identity<'v, 't>(
    identity: &LiveIdentity<'v>,
    types: &TypeIndex<'t>,
) -> Result<(IdRef<'v>, usize, &'t ResourceType), IdError> {
    let api_version = identity
        .api_version
        .ok_or(IdError::Incomplete("apiVersion"))?;
    let kind = identity.kind.ok_or(IdError::Incomplete("kind"))?;
    let name = identity
        .name
        .filter(|n| !n.is_empty())
        .ok_or(IdError::Incomplete("metadata.name"))?;
    let group = group_of(api_version);
    let (ordinal, ty) = types
        .get_ordered(group, kind)
        .ok_or_else(|| IdError::UnknownKind {
            api_version: api_version.to_owned(),
            kind: kind.to_owned(),
        })?;
    let namespace = if ty.namespaced {
        Some(
            identity
                .namespace
                .filter(|ns| !ns.is_empty())
                .unwrap_or("default"),
        )
    } else {
        None
    };
    Ok((
        IdRef {
            group,
            kind,
            namespace,
            name,
        },
        ordinal,
        ty,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn types() -> Vec<ResourceType> {
        vec![
            ResourceType::new("apps", "v1", "Deployment", "deployments", true),
            ResourceType::new("", "v1", "Namespace", "namespaces", false),
        ]
    }

    #[test]
    fn display() {
        let id = ObjectId::new("apps", "Deployment", Some("default"), "web");
        assert_eq!(id.to_string(), "apps/Deployment default/web");
        let id = ObjectId::new("", "ConfigMap", Some("default"), "settings");
        assert_eq!(id.to_string(), "ConfigMap default/settings");
        let id = ObjectId::new("", "Namespace", None, "prod");
        assert_eq!(id.to_string(), "Namespace prod");
    }

    #[test]
    fn ordering_is_group_kind_namespace_name() {
        let mut ids = [
            ObjectId::new("apps", "Deployment", Some("b"), "a"),
            ObjectId::new("", "ConfigMap", Some("a"), "z"),
            ObjectId::new("apps", "Deployment", Some("a"), "z"),
            ObjectId::new("", "Namespace", None, "x"),
        ];
        ids.sort();
        let shown: Vec<String> = ids.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "ConfigMap a/z",
                "Namespace x",
                "apps/Deployment a/z",
                "apps/Deployment b/a"
            ]
        );
    }

    #[test]
    fn group_of_api_version() {
        assert_eq!(group_of("v1"), "");
        assert_eq!(group_of("apps/v1"), "apps");
        assert_eq!(
            group_of("snapshot.storage.k8s.io/v1"),
            "snapshot.storage.k8s.io"
        );
    }

    #[test]
    fn namespace_defaulting_and_version_independence() {
        let types = types();
        let idx = TypeIndex::new(&types);
        let dep = json!({"apiVersion": "apps/v1beta2", "kind": "Deployment", "metadata": {"name": "web"}});
        let (id, _) = resolve_id(&dep, &idx).unwrap();
        assert_eq!(
            id,
            ObjectId::new("apps", "Deployment", Some("default"), "web")
        );

        // A namespace on a cluster-scoped object is not part of its identity.
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "p", "namespace": "x"}});
        let (id, _) = resolve_id(&ns, &idx).unwrap();
        assert_eq!(id.namespace, None);

        let unknown = json!({"apiVersion": "x.io/v1", "kind": "Thing", "metadata": {"name": "t"}});
        assert!(matches!(
            resolve_id(&unknown, &idx),
            Err(IdError::UnknownKind { .. })
        ));
        let nameless = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {}});
        assert_eq!(
            resolve_id(&nameless, &idx).unwrap_err(),
            IdError::Incomplete("metadata.name")
        );
    }
}
