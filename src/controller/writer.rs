//! [`Writer`]: every write the controller makes to the cluster goes through one, and each
//! asks the [`WriteGate`] right before it happens.

use std::sync::Arc;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::{Api, Patch, PatchParams};
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::{Semaphore, SemaphorePermit};

use gitcontroller_sync::ObjectId;

use super::gate::WriteGate;
use super::own_writes::{OwnWrites, PendingWrite, Written};
use super::repository::RepoKey;
use crate::api::GitRepository;
use crate::cluster::apply::{Deletion, Stored};
use crate::cluster::discovery::CatalogEntry;
use crate::cluster::events::Event;
use crate::cluster::{EventRecorder, FIELD_MANAGER, apply};
use crate::error::Result;

/// Requests about synced objects (applies, their dry runs, deletes) in flight at once across
/// the whole controller, whatever the number of repositories syncing. The API server is the
/// bottleneck of a large apply and 64 keep it busy (raw applies of 2,000 ConfigMaps took
/// ~1.25× as long 16 at a time as 64 at a time on the 2-core test machine). The cap is for
/// the whole controller, not per sync, so `--concurrency` repositories do not multiply it (API
/// Priority and Fairness queues what one client sends beyond its share; kube's client does
/// not retry a 429).
pub const OBJECT_REQUESTS_IN_FLIGHT: usize = 64;

/// Writes with one client (one identity), behind the write gate. Cheap to clone.
#[derive(Clone)]
pub struct Writer {
    client: Client,
    /// Shared by every clone: at most [`OBJECT_REQUESTS_IN_FLIGHT`] object requests at once.
    in_flight: Arc<Semaphore>,
    gate: WriteGate,
    /// Events are always published as the controller itself.
    recorder: EventRecorder,
    /// Where writes of synced objects are remembered, so their echoes do not wake
    /// `repository` again.
    own_writes: OwnWrites,
    /// The repository whose objects this writer writes (None: the controller's own writer).
    repository: Option<RepoKey>,
}

impl Writer {
    /// Writes as `client`, Events through `recorder`; writes of synced objects are
    /// remembered in `own_writes`.
    pub fn new(
        client: Client,
        gate: WriteGate,
        recorder: EventRecorder,
        own_writes: OwnWrites,
    ) -> Self {
        Self {
            client,
            in_flight: Arc::new(Semaphore::new(OBJECT_REQUESTS_IN_FLIGHT)),
            gate,
            recorder,
            own_writes,
            repository: None,
        }
    }

    /// Waits for a place among the object requests in flight; held until the request ends.
    async fn place(&self) -> SemaphorePermit<'_> {
        self.in_flight
            .acquire()
            .await
            .expect("the semaphore is never closed")
    }

    /// The same writer, writing the synced objects of `repository`.
    pub fn for_repository(&self, repository: RepoKey) -> Self {
        Self {
            repository: Some(repository),
            ..self.clone()
        }
    }

    /// Starts remembering a write of an object, when this writer writes a repository's objects.
    fn begin(
        &self,
        entry: &CatalogEntry,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<PendingWrite> {
        let repository = self.repository.clone()?;
        let id = ObjectId {
            group: entry.resource.group.clone(),
            kind: entry.resource.kind.clone(),
            namespace: namespace.filter(|_| entry.namespaced).map(str::to_string),
            name: name.to_string(),
        };
        Some(self.own_writes.begin(id, repository))
    }

    /// The same gate and recorder, writing objects as `client` (e.g. an impersonating one).
    pub fn with_client(&self, client: Client) -> Self {
        Self {
            client,
            ..self.clone()
        }
    }

    /// The client writes are made with (reads that must be made as the same identity use it
    /// too).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The gate, for writes made outside this type (the Git push).
    pub fn gate(&self) -> &WriteGate {
        &self.gate
    }

    /// Server-side applies a synced object (see [`apply::apply`]); returns who was stored at
    /// which version.
    pub async fn apply(&self, entry: &CatalogEntry, body: &Value) -> Result<Stored> {
        self.gate.check()?;
        let text = |pointer| body.pointer(pointer).and_then(Value::as_str);
        let pending = self.begin(
            entry,
            text("/metadata/namespace"),
            text("/metadata/name").unwrap_or_default(),
        );
        let stored = {
            let _place = self.place().await;
            apply::apply(&self.client, entry, body).await?
        };
        if let Some(pending) = pending {
            let version = stored.metadata.resource_version.clone();
            pending.finish(version.map(Written::Version));
        }
        Ok(stored)
    }

    /// What [`Writer::apply`] would store, as the same identity, without writing (a
    /// server-side dry run; not a write, so the gate is not asked).
    pub async fn dry_run_apply(&self, entry: &CatalogEntry, body: &Value) -> Result<Value> {
        let _place = self.place().await;
        Ok(apply::dry_run_apply(&self.client, entry, body).await?)
    }

    /// Deletes a synced object (see [`apply::delete`]).
    pub async fn delete(
        &self,
        entry: &CatalogEntry,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<()> {
        self.gate.check()?;
        let pending = self.begin(entry, namespace, name);
        let deletion = {
            let _place = self.place().await;
            apply::delete(&self.client, entry, namespace, name).await?
        };
        if let Some(pending) = pending {
            pending.finish(match deletion {
                Deletion::Removed => Some(Written::Deletion),
                Deletion::AlreadyGone => None,
                Deletion::Finalizing(version) => version.map(Written::Version),
            });
        }
        Ok(())
    }

    /// Reads a synced object as this writer's identity (what it may prune is what it can see).
    pub async fn get(
        &self,
        entry: &CatalogEntry,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<kube::api::DynamicObject>> {
        Ok(apply::get(&self.client, entry, namespace, name).await?)
    }

    /// Sets one annotation of a synced object (the owner annotation of an adopted object).
    pub async fn annotate(
        &self,
        entry: &CatalogEntry,
        namespace: Option<&str>,
        name: &str,
        (key, value): (&str, &str),
    ) -> Result<()> {
        self.gate.check()?;
        Ok(apply::annotate(&self.client, entry, namespace, name, key, value).await?)
    }

    /// Server-side applies the status of one of our objects (GitRepository, SyncRule).
    pub async fn apply_status<K>(&self, object: &K, status: &impl Serialize) -> Result<()>
    where
        K: Resource<DynamicType = (), Scope = NamespaceResourceScope>,
    {
        /// The patch, serialized straight from the status (no JSON tree of it in between:
        /// a GitRepository's status lists every object in its inventory).
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct StatusPatch<'a, S> {
            api_version: &'a str,
            kind: &'a str,
            status: &'a S,
        }
        let (api_version, kind) = (K::api_version(&()), K::kind(&()));
        let patch = StatusPatch {
            api_version: &api_version,
            kind: &kind,
            status,
        };
        let url = K::url_path(&(), object.meta().namespace.as_deref());
        let mut request = kube::core::Request::new(url)
            .patch_subresource(
                "status",
                &object.name_any(),
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&patch),
            )
            .map_err(kube::Error::BuildRequest)?;
        // What `Api::patch_status` marks its requests with (the client's tracing names them).
        request.extensions_mut().insert("patch_status");
        self.gate.check()?;
        // The API server answers with the whole object, inventory included: checked for an
        // error, not parsed into one more copy that nobody reads.
        self.client.request_text(request).await?;
        Ok(())
    }

    /// Writes a GitRepository's finalizer list with a resourceVersion precondition, so a
    /// concurrent change of the list (another controller's finalizer) is never overwritten:
    /// the write fails with a conflict and the reconcile is retried.
    pub async fn set_finalizers(
        &self,
        repo: &GitRepository,
        finalizers: Vec<String>,
    ) -> Result<()> {
        let patch = serde_json::json!({
            "metadata": {
                "finalizers": finalizers,
                "resourceVersion": repo.resource_version(),
            }
        });
        let api: Api<GitRepository> =
            Api::namespaced(self.client.clone(), &repo.namespace().unwrap_or_default());
        self.gate.check()?;
        api.patch(
            &repo.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await?;
        Ok(())
    }

    /// Publishes an Event about `regarding`.
    pub async fn publish(&self, event: &Event, regarding: &ObjectReference) -> Result<()> {
        self.gate.check()?;
        Ok(self.recorder.publish(event, regarding).await?)
    }
}
