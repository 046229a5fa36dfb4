//! [`Writer`]: every write the controller makes to the cluster goes through one, and each
//! asks the [`WriteGate`] right before it happens.

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::{Api, Patch, PatchParams};
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::gate::WriteGate;
use crate::api::GitRepository;
use crate::cluster::discovery::CatalogEntry;
use crate::cluster::events::Event;
use crate::cluster::{EventRecorder, FIELD_MANAGER, apply};
use crate::error::Result;

/// Writes with one client (one identity), behind the write gate. Cheap to clone.
#[derive(Clone)]
pub struct Writer {
    client: Client,
    gate: WriteGate,
    /// Events are always published as the controller itself.
    recorder: EventRecorder,
}

impl Writer {
    /// Writes as `client`, Events through `recorder`.
    pub fn new(client: Client, gate: WriteGate, recorder: EventRecorder) -> Self {
        Self {
            client,
            gate,
            recorder,
        }
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

    /// Server-side applies a synced object (see [`apply::apply`]); returns it as stored.
    pub async fn apply(&self, entry: &CatalogEntry, body: &Value) -> Result<Value> {
        self.gate.check()?;
        Ok(apply::apply(&self.client, entry, body).await?)
    }

    /// What [`Writer::apply`] would store, as the same identity, without writing (a
    /// server-side dry run; not a write, so the gate is not asked).
    pub async fn dry_run_apply(&self, entry: &CatalogEntry, body: &Value) -> Result<Value> {
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
        Ok(apply::delete(&self.client, entry, namespace, name).await?)
    }

    /// Server-side applies the status of one of our objects (GitRepository, SyncRule).
    pub async fn apply_status<K>(&self, object: &K, status: &impl Serialize) -> Result<()>
    where
        K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
            + Clone
            + DeserializeOwned
            + std::fmt::Debug,
    {
        let api: Api<K> =
            Api::namespaced(self.client.clone(), &object.namespace().unwrap_or_default());
        let patch = serde_json::json!({
            "apiVersion": K::api_version(&()),
            "kind": K::kind(&()),
            "status": status,
        });
        self.gate.check()?;
        api.patch_status(
            &object.name_any(),
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await?;
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
