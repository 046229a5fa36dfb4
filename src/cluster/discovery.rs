//! Which resource types the API server serves, at their preferred version, with their schemas.

use std::collections::{BTreeMap, BTreeSet};

use gitcontroller_sync::ResourceType;
use kube::Client;
use kube::discovery::{ApiResource, Discovery, Scope, verbs};

use super::openapi::Schemas;

/// A resource type's identity: API group and kind (the version is not part of it).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TypeKey {
    /// API group, empty for the core group.
    pub group: String,
    /// Kind.
    pub kind: String,
}

impl std::fmt::Display for TypeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.group.is_empty() {
            write!(f, "{}", self.kind)
        } else {
            write!(f, "{}/{}", self.group, self.kind)
        }
    }
}

/// One served, listable and watchable resource type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CatalogEntry {
    /// How to address it.
    pub resource: ApiResource,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
}

impl CatalogEntry {
    /// The type as the planner sees it.
    pub fn resource_type(&self) -> ResourceType {
        ResourceType::new(
            &self.resource.group,
            &self.resource.version,
            &self.resource.kind,
            &self.resource.plural,
            self.namespaced,
        )
    }
}

/// Every listable, watchable resource type, keyed by group and kind, and their schemas.
#[derive(Clone, Debug, Default)]
pub struct ResourceCatalog {
    entries: BTreeMap<TypeKey, CatalogEntry>,
    schemas: Schemas,
}

/// Equal when they serve the same types with the same schema documents: a rediscovery that
/// finds this changes nothing.
impl PartialEq for ResourceCatalog {
    fn eq(&self, other: &Self) -> bool {
        self.entries == other.entries && self.schemas.same_documents(&other.schemas)
    }
}

impl ResourceCatalog {
    /// Runs discovery against the API server and reads the schemas of the served types.
    pub async fn discover(client: &Client) -> Result<Self, kube::Error> {
        Self::discover_with(client, &Schemas::default()).await
    }

    /// Runs discovery again; schema documents that did not change are not read again.
    pub async fn rediscover(&self, client: &Client) -> Result<Self, kube::Error> {
        Self::discover_with(client, &self.schemas).await
    }

    async fn discover_with(client: &Client, schemas: &Schemas) -> Result<Self, kube::Error> {
        let discovery = Discovery::new(client.clone()).run_aggregated().await?;
        let mut entries = BTreeMap::new();
        for group in discovery.groups() {
            for (resource, caps) in group.recommended_resources() {
                if !caps.supports_operation(verbs::LIST) || !caps.supports_operation(verbs::WATCH) {
                    continue;
                }
                let key = TypeKey {
                    group: resource.group.clone(),
                    kind: resource.kind.clone(),
                };
                if !is_syncable(&key) {
                    continue;
                }
                let namespaced = caps.scope == Scope::Namespaced;
                entries.insert(
                    key,
                    CatalogEntry {
                        resource,
                        namespaced,
                    },
                );
            }
        }
        let group_versions: BTreeSet<(String, String)> = entries
            .values()
            .map(|e| (e.resource.group.clone(), e.resource.version.clone()))
            .collect();
        let schemas = Schemas::load(client, &group_versions, schemas).await;
        Ok(Self { entries, schemas })
    }

    /// The entry for a group and kind.
    pub fn get(&self, key: &TypeKey) -> Option<&CatalogEntry> {
        self.entries.get(key)
    }

    /// Every entry, in group/kind order.
    pub fn iter(&self) -> impl Iterator<Item = (&TypeKey, &CatalogEntry)> {
        self.entries.iter()
    }

    /// The catalog as the planner sees it: each type at the version it is watched in, with
    /// its schema in that version when the server publishes one.
    pub fn resource_types(&self) -> Vec<ResourceType> {
        self.entries
            .values()
            .map(|e| {
                e.resource_type().with_schema(self.schemas.get(
                    &e.resource.group,
                    &e.resource.version,
                    &e.resource.kind,
                ))
            })
            .collect()
    }

    /// The types a rule's type selectors (`apiGroups`, `resources`, `kinds`) match.
    pub fn matching<'a>(
        &'a self,
        api_groups: &'a [String],
        resources: &'a [String],
        kinds: &'a [String],
    ) -> impl Iterator<Item = (&'a TypeKey, &'a CatalogEntry)> + 'a {
        self.entries
            .iter()
            .filter(move |(key, entry)| selects(key, entry, api_groups, resources, kinds))
    }
}

/// Whether a rule's type selectors (empty = any) select a type.
pub fn selects(
    key: &TypeKey,
    entry: &CatalogEntry,
    api_groups: &[String],
    resources: &[String],
    kinds: &[String],
) -> bool {
    (api_groups.is_empty() || api_groups.contains(&key.group))
        && (resources.is_empty() || resources.contains(&entry.resource.plural))
        && (kinds.is_empty() || kinds.contains(&key.kind))
}

/// Types that are never synced, even by a rule that selects "everything": our own CRDs, and
/// records the cluster writes for itself at a high rate (events, leases, endpoints).
fn is_syncable(key: &TypeKey) -> bool {
    const NEVER: &[(&str, &str)] = &[
        ("", "Event"),
        ("events.k8s.io", "Event"),
        ("coordination.k8s.io", "Lease"),
        ("", "Endpoints"),
        ("discovery.k8s.io", "EndpointSlice"),
        ("", "ComponentStatus"),
    ];
    key.group != crate::api::GROUP
        && !NEVER
            .iter()
            .any(|(group, kind)| key.group == *group && key.kind == *kind)
}
