//! Push webhooks: `POST /hooks/<namespace>/<name>` triggers an immediate sync of that
//! GitRepository.
//!
//! Authenticated with the key `token` of the Secret named in `spec.webhookSecretRef`, either as
//! a GitHub HMAC (`X-Hub-Signature-256: sha256=<hex>` over the body) or as GitLab's
//! `X-Gitlab-Token`. Anything else gets 401 and triggers nothing; so does a repository that
//! does not exist or has no webhook Secret, so the endpoint does not reveal which exist.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use hmac::{Hmac, Mac};
use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::Api;
use kube::runtime::reflector::ObjectRef;
use sha2::Sha256;
use tokio::sync::mpsc::UnboundedSender;

use crate::api::GitRepository;

/// Largest body accepted; larger ones get 413.
pub const MAX_BODY: usize = 1024 * 1024;

#[derive(Clone)]
struct Hooks {
    client: Client,
    trigger: UnboundedSender<ObjectRef<GitRepository>>,
}

/// The webhook routes, to be served on `--webhook-addr`.
pub fn router(client: Client, trigger: UnboundedSender<ObjectRef<GitRepository>>) -> Router {
    Router::new()
        .route("/hooks/{namespace}/{name}", post(receive))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(Hooks { client, trigger })
}

async fn receive(
    State(hooks): State<Hooks>,
    Path((namespace, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let Some(token) = webhook_token(&hooks.client, &namespace, &name).await else {
        return StatusCode::UNAUTHORIZED;
    };
    if !authentic(&headers, &body, &token) {
        tracing::warn!(%namespace, %name, "webhook with a missing or wrong signature refused");
        return StatusCode::UNAUTHORIZED;
    }
    tracing::info!(%namespace, %name, "webhook: sync requested");
    let _ = hooks.trigger.send(ObjectRef::new(&name).within(&namespace));
    StatusCode::ACCEPTED
}

async fn webhook_token(client: &Client, namespace: &str, name: &str) -> Option<Vec<u8>> {
    let repos: Api<GitRepository> = Api::namespaced(client.clone(), namespace);
    let repo = repos.get_opt(name).await.ok()??;
    let secret_name = repo.spec.webhook_secret_ref?.name;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let secret = secrets.get_opt(&secret_name).await.ok()??;
    let data = crate::controller::secret_data(&secret);
    data.get("token").filter(|t| !t.is_empty()).cloned()
}

/// Whether a request carries a valid signature or token for `token`.
pub fn authentic(headers: &HeaderMap, body: &[u8], token: &[u8]) -> bool {
    if let Some(signature) = headers
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok())
    {
        let Some(hex) = signature.strip_prefix("sha256=") else {
            return false;
        };
        let Some(expected) = decode_hex(hex) else {
            return false;
        };
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(token) else {
            return false;
        };
        mac.update(body);
        return mac.verify_slice(&expected).is_ok();
    }
    if let Some(given) = headers.get("x-gitlab-token") {
        return constant_time_eq(given.as_bytes(), token);
    }
    false
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(token: &[u8], body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(token).unwrap();
        mac.update(body);
        let bytes = mac.finalize().into_bytes();
        format!(
            "sha256={}",
            bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
        )
    }

    #[test]
    fn github_signatures_are_checked_over_the_exact_body() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-hub-signature-256",
            sign(b"s3cret", b"{}").parse().unwrap(),
        );
        assert!(authentic(&headers, b"{}", b"s3cret"));
        assert!(!authentic(&headers, b"{ }", b"s3cret"), "another body");
        assert!(!authentic(&headers, b"{}", b"other"), "another secret");
        headers.insert("x-hub-signature-256", "sha256=zz".parse().unwrap());
        assert!(!authentic(&headers, b"{}", b"s3cret"), "not hex");
    }

    #[test]
    fn gitlab_tokens_must_match_exactly_and_nothing_else_passes() {
        let mut headers = HeaderMap::new();
        assert!(!authentic(&headers, b"{}", b"s3cret"), "no header at all");
        headers.insert("x-gitlab-token", "s3cret".parse().unwrap());
        assert!(authentic(&headers, b"{}", b"s3cret"));
        headers.insert("x-gitlab-token", "s3cre".parse().unwrap());
        assert!(!authentic(&headers, b"{}", b"s3cret"));
    }
}
