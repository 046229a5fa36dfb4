//! The schemas of served types from the API server's OpenAPI v3 documents, so the planner
//! compares objects as the server stores them (quantities by value, `stringData` as `data`,
//! omitted zero values, atomic and list-map merges; `docs/sync-semantics.md`, *Schemas*).
//!
//! `GET /openapi/v3` lists one document per group version with a URL that carries a hash of
//! its content; a document is read again only when its URL changed (a CRD was installed or
//! updated), so rediscovery costs one small request when nothing changed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use gitcontroller_sync::schema::{GroupVersionKind, TypeSchema, openapi_v3_path, parse_openapi_v3};
use kube::Client;
use serde_json::Value;

/// The schemas of one document, by group, version and kind.
type DocumentSchemas = Arc<BTreeMap<GroupVersionKind, TypeSchema>>;

/// Parsed OpenAPI v3 documents by their index key (`api/v1`, `apis/apps/v1`), with the URL
/// each was read from.
#[derive(Clone, Debug, Default)]
pub struct Schemas {
    documents: BTreeMap<String, (String, DocumentSchemas)>,
}

impl Schemas {
    /// Whether both hold the same documents, read from the same URLs (the URLs carry each
    /// document's hash).
    pub fn same_documents(&self, other: &Self) -> bool {
        self.documents.len() == other.documents.len()
            && self.documents.iter().zip(&other.documents).all(
                |((key, (url, _)), (other_key, (other_url, _)))| {
                    key == other_key && url == other_url
                },
            )
    }

    /// The documents of `group_versions` ((group, version) pairs) as the server publishes them
    /// now, re-using those of `previous` whose URL did not change. A document that cannot be
    /// read is left out (its types are compared without a schema) and logged.
    pub async fn load(
        client: &Client,
        group_versions: &BTreeSet<(String, String)>,
        previous: &Schemas,
    ) -> Self {
        let index: Value = match get(client, "/openapi/v3").await {
            Ok(index) => index,
            Err(error) => {
                tracing::warn!(%error, "cannot read /openapi/v3; comparing without schemas");
                return Self::default();
            }
        };
        let mut documents = BTreeMap::new();
        for (group, version) in group_versions {
            let key = openapi_v3_path(group, version);
            let Some(url) = index
                .pointer(&format!(
                    "/paths/{}/serverRelativeURL",
                    key.replace('/', "~1")
                ))
                .and_then(Value::as_str)
            else {
                continue;
            };
            if let Some((known, schemas)) = previous.documents.get(&key)
                && known == url
            {
                documents.insert(key, (known.clone(), schemas.clone()));
                continue;
            }
            let parsed = match get(client, url).await {
                Ok(document) => parse_openapi_v3(&document).map_err(|e| e.to_string()),
                Err(error) => Err(error.to_string()),
            };
            match parsed {
                Ok(schemas) => {
                    documents.insert(key, (url.to_string(), Arc::new(schemas)));
                }
                Err(error) => {
                    tracing::warn!(document = %key, %error, "cannot read an OpenAPI v3 document; its types are compared without a schema");
                }
            }
        }
        Self { documents }
    }

    /// The schema of a type in a version, if its document was read and declares it.
    pub fn get(&self, group: &str, version: &str, kind: &str) -> Option<TypeSchema> {
        let (_, schemas) = self.documents.get(&openapi_v3_path(group, version))?;
        schemas
            .get(&GroupVersionKind::new(group, version, kind))
            .cloned()
    }
}

async fn get(client: &Client, path: &str) -> Result<Value, kube::Error> {
    let request = http::Request::get(path)
        .body(Vec::new())
        .map_err(kube::Error::HttpError)?;
    client.request(request).await
}
