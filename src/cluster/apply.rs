//! Writes to the cluster: server-side apply with our field manager, and deletes.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::core::Request;
use kube::discovery::ApiResource;
use kube::{Client, Resource, ResourceExt};
use serde::Deserialize;
use serde_json::Value;

use super::FIELD_MANAGER;
use super::discovery::CatalogEntry;

/// One object's type at the version its manifest names.
fn resource_at(entry: &CatalogEntry, api_version: Option<&str>) -> ApiResource {
    let mut resource: ApiResource = entry.resource.clone();
    if let Some(api_version) = api_version
        && let Some(version) = api_version.rsplit('/').next()
    {
        resource.version = version.to_string();
        resource.api_version = api_version.to_string();
    }
    resource
}

/// The namespace an object of `entry`'s type is addressed in (None: cluster-scoped).
fn scope<'a>(entry: &CatalogEntry, namespace: Option<&'a str>) -> Option<&'a str> {
    namespace.filter(|_| entry.namespaced)
}

/// The API for one object's type and namespace, at the version its manifest names.
fn api_for(
    client: &Client,
    entry: &CatalogEntry,
    namespace: Option<&str>,
    api_version: Option<&str>,
) -> Api<DynamicObject> {
    let resource = resource_at(entry, api_version);
    match scope(entry, namespace) {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        None => Api::all_with(client.clone(), &resource),
    }
}

/// What an apply needs of the object the API server stored: who it is and its version. Read
/// from the answer without the rest of the object (its data and managedFields), which nothing
/// after an apply looks at: a large apply receives thousands of answers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stored {
    /// `apiVersion`.
    #[serde(default)]
    pub api_version: Option<String>,
    /// `kind`.
    #[serde(default)]
    pub kind: Option<String>,
    /// The identifying part of `metadata`.
    #[serde(default)]
    pub metadata: StoredMetadata,
}

/// The identifying part of a stored object's `metadata`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredMetadata {
    /// `name`.
    #[serde(default)]
    pub name: Option<String>,
    /// `namespace`.
    #[serde(default)]
    pub namespace: Option<String>,
    /// `uid`.
    #[serde(default)]
    pub uid: Option<String>,
    /// `resourceVersion`.
    #[serde(default)]
    pub resource_version: Option<String>,
}

impl Stored {
    /// A reference to the stored object (what an Event is about).
    pub fn reference(&self) -> ObjectReference {
        ObjectReference {
            api_version: self.api_version.clone(),
            kind: self.kind.clone(),
            namespace: self.metadata.namespace.clone(),
            name: self.metadata.name.clone(),
            uid: self.metadata.uid.clone(),
            ..ObjectReference::default()
        }
    }
}

/// Server-side applies `body` (a complete apply configuration with apiVersion, kind and
/// metadata.name/namespace), forcing ownership of the fields it sets: the rule gave them to Git.
/// Returns who the API server stored and at which version.
pub async fn apply(
    client: &Client,
    entry: &CatalogEntry,
    body: &Value,
) -> Result<Stored, kube::Error> {
    let text = |pointer| body.pointer(pointer).and_then(Value::as_str);
    let resource = resource_at(entry, text("/apiVersion"));
    let url = DynamicObject::url_path(&resource, scope(entry, text("/metadata/namespace")));
    let mut request = Request::new(url)
        .patch(
            text("/metadata/name").unwrap_or_default(),
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(body),
        )
        .map_err(kube::Error::BuildRequest)?;
    // What `Api::patch` marks its requests with (the client's tracing names them by it).
    request.extensions_mut().insert("patch");
    client.request(request).await
}

/// What [`apply`] would store, without storing it: a server-side dry run, with the API
/// server's defaulting, conversion and admission, as the same field manager.
pub async fn dry_run_apply(
    client: &Client,
    entry: &CatalogEntry,
    body: &Value,
) -> Result<Value, kube::Error> {
    let params = PatchParams::apply(FIELD_MANAGER).force().dry_run();
    let name = body
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let namespace = body.pointer("/metadata/namespace").and_then(Value::as_str);
    let api_version = body.get("apiVersion").and_then(Value::as_str);
    let api = api_for(client, entry, namespace, api_version);
    let stored = api.patch(name, &params, &Patch::Apply(body)).await?;
    serde_json::to_value(stored).map_err(kube::Error::SerdeError)
}

/// What a delete did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Deletion {
    /// The object is gone.
    Removed,
    /// It was gone already.
    AlreadyGone,
    /// Finalizers hold it: it is being deleted and has this resourceVersion.
    Finalizing(Option<String>),
}

/// Reads an object; None when it does not exist.
pub async fn get(
    client: &Client,
    entry: &CatalogEntry,
    namespace: Option<&str>,
    name: &str,
) -> Result<Option<DynamicObject>, kube::Error> {
    api_for(client, entry, namespace, None).get_opt(name).await
}

/// Sets one annotation with a merge patch (not server-side apply: the annotation stays out of
/// what our field manager applies, so no other field is released).
pub async fn annotate(
    client: &Client,
    entry: &CatalogEntry,
    namespace: Option<&str>,
    name: &str,
    key: &str,
    value: &str,
) -> Result<(), kube::Error> {
    let patch = serde_json::json!({"metadata": {"annotations": {key: value}}});
    api_for(client, entry, namespace, None)
        .patch(
            name,
            &PatchParams {
                field_manager: Some(FIELD_MANAGER.to_string()),
                ..PatchParams::default()
            },
            &Patch::Merge(&patch),
        )
        .await
        .map(|_| ())
}

/// Deletes an object; one that is already gone counts as deleted.
pub async fn delete(
    client: &Client,
    entry: &CatalogEntry,
    namespace: Option<&str>,
    name: &str,
) -> Result<Deletion, kube::Error> {
    let api = api_for(client, entry, namespace, None);
    match api.delete(name, &DeleteParams::background()).await {
        // Most types answer a delete with a Status; some with the object, which finalizers
        // may still hold.
        Ok(answer) => Ok(match answer.left() {
            Some(object) if !object.finalizers().is_empty() => {
                Deletion::Finalizing(object.metadata.resource_version)
            }
            _ => Deletion::Removed,
        }),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(Deletion::AlreadyGone),
        Err(e) => Err(e),
    }
}
