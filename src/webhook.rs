//! Push webhooks: `POST /hooks/<namespace>/<name>` asks for an immediate sync of that
//! GitRepository.
//!
//! Authenticated with the key `token` of the Secret named in `spec.webhookSecretRef`, either as
//! a GitHub HMAC (`X-Hub-Signature-256: sha256=<hex>` over the body) or as GitLab's
//! `X-Gitlab-Token`. Anything else gets 401 and triggers nothing.
//!
//! Built to face the Internet:
//!
//! - **No API call per unauthenticated request.** Repositories and their keys come from
//!   [`KeyCache`] (a watch of GitRepositories and Secret reads with a TTL, in the
//!   background). Only an authenticated push received by a replica that does not lead costs
//!   one API call: the annotation that hands it to the leader ([`on_push`]).
//! - **Nothing tells which repositories exist.** A repository that does not exist, has no
//!   webhook Secret, or whose Secret has no token is checked against a per-process random key:
//!   the body goes through the same HMAC, the comparison is the same constant-time one, and
//!   the answer is the same empty 401.
//! - **Bounded.** The listener is served by [`crate::http::server`] with [`Options`]: a cap on
//!   connections (oldest closed first), header and body deadlines, per-source connection and
//!   request limits (429), bodies streamed through the HMAC (never buffered) and refused past
//!   [`MAX_BODY`] (413).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::post;
use hmac::{Hmac, Mac};
use http_body_util::BodyExt;
use kube::Client;
use prometheus::IntCounter;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::http::server::{self, Limits, ServerMetrics, SourceLimiter, SourceLimits};

mod forward;
mod keys;
pub use forward::on_push;
pub use keys::{Key, KeyCache};

/// Largest body accepted; larger ones get 413.
pub const MAX_BODY: usize = 1024 * 1024;

/// Asks the controller to sync a GitRepository soon: called with its namespace and name after
/// a webhook was authenticated. Must not block (e.g. send on a channel, spawn a task); see
/// [`on_push`].
pub type OnPush = Arc<dyn Fn(&str, &str) + Send + Sync>;

/// The webhook receiver's address and limits (`--webhook-*` flags).
#[derive(Clone, Debug)]
pub struct Options {
    /// Where to listen.
    pub addr: SocketAddr,
    /// Connections open at once; beyond it the oldest is closed.
    pub max_connections: usize,
    /// Average requests per second per source; 0 turns per-source limits off.
    pub rate_limit: f64,
    /// Requests a source may send at once, and connections it may hold open.
    pub rate_burst: u32,
    /// Time to receive a request's headers.
    pub header_timeout: Duration,
    /// Time to receive a request's body.
    pub body_timeout: Duration,
    /// How long a webhook token read from its Secret is used before it is read again.
    pub secret_ttl: Duration,
}

impl Options {
    /// Defaults of the flags, listening on `addr`.
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            max_connections: 1024,
            rate_limit: 10.0,
            rate_burst: 20,
            header_timeout: Duration::from_secs(5),
            body_timeout: Duration::from_secs(10),
            secret_ttl: Duration::from_secs(120),
        }
    }

    /// The server limits these options describe.
    pub fn limits(&self) -> Limits {
        Limits {
            max_connections: self.max_connections,
            header_timeout: self.header_timeout,
            body_timeout: self.body_timeout,
            max_header_bytes: 16 * 1024,
            per_source: (self.rate_limit > 0.0).then(|| {
                SourceLimiter::new(SourceLimits {
                    requests_per_second: self.rate_limit,
                    burst: self.rate_burst,
                })
            }),
        }
    }
}

/// Parses a duration flag: `500ms`, `5s`, `2m`, `1h30m` (the syntax of `spec.interval`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    crate::controller::convert::duration(text)
        .ok_or_else(|| format!("`{text}` is not a duration such as 500ms, 5s, 2m or 1h30m"))
}

/// Parses `--webhook-rate-limit`: a finite number of requests per second, 0 or more.
pub fn parse_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate >= 0.0 => Ok(rate),
        _ => Err(format!(
            "`{text}` is not a rate (requests per second, 0 or more)"
        )),
    }
}

/// Prefix of the webhook receiver's metric families (see [`ServerMetrics::register`]).
pub const METRICS_PREFIX: &str = "gitcontroller_webhook";

/// Serves webhooks on `options.addr` until `shutdown` completes: follows GitRepositories in
/// `namespace` (all when `None`) and calls `on_push` for every authenticated push. Connection
/// and response counters go to `registry`.
pub async fn run(
    client: Client,
    namespace: Option<&str>,
    options: &Options,
    registry: &prometheus::Registry,
    on_push: OnPush,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = server::bind(options.addr)?;
    let keys = KeyCache::spawn(client, namespace, options.secret_ttl);
    let metrics = ServerMetrics::register(registry, METRICS_PREFIX, "push webhook receiver")
        .map_err(std::io::Error::other)?;
    let checks = IntCounter::new(
        SIGNATURE_CHECKS,
        "Webhook requests whose signature or token was checked, for known and unknown repositories alike.",
    )
    .map_err(std::io::Error::other)?;
    registry
        .register(Box::new(checks.clone()))
        .map_err(std::io::Error::other)?;
    let router = router(keys, on_push, options.body_timeout, checks);
    server::serve(listener, router, options.limits(), Some(metrics), shutdown).await
}

/// Name of the counter of signature checks: it grows by one for every request whose body was
/// read and checked, whether the repository exists or not (tests compare the two).
pub const SIGNATURE_CHECKS: &str = "gitcontroller_webhook_signature_checks_total";

struct Hooks {
    keys: Arc<KeyCache>,
    on_push: OnPush,
    body_timeout: Duration,
    checks: IntCounter,
}

/// The webhook route, `POST /hooks/{namespace}/{name}`, checked against `keys`; `checks`
/// counts the signature checks.
pub fn router(
    keys: Arc<KeyCache>,
    on_push: OnPush,
    body_timeout: Duration,
    checks: IntCounter,
) -> Router {
    Router::new()
        .route("/hooks/{namespace}/{name}", post(receive))
        .with_state(Arc::new(Hooks {
            keys,
            on_push,
            body_timeout,
            checks,
        }))
}

async fn receive(
    State(hooks): State<Arc<Hooks>>,
    Path((namespace, name)): Path<(String, String)>,
    request: Request,
) -> StatusCode {
    if !hooks.keys.is_ready() {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let (parts, mut body) = request.into_parts();
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_BODY as u64) {
        return StatusCode::PAYLOAD_TOO_LARGE;
    }
    // From here on the work is the same whether the repository exists or not.
    let (key, known) = hooks.keys.lookup(&namespace, &name);
    let mut mac = key.mac.clone();
    let read = async {
        let mut received = 0usize;
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else {
                return Err(StatusCode::BAD_REQUEST);
            };
            if let Ok(data) = frame.into_data() {
                received += data.len();
                if received > MAX_BODY {
                    return Err(StatusCode::PAYLOAD_TOO_LARGE);
                }
                mac.update(&data);
            }
        }
        Ok(())
    };
    match tokio::time::timeout(hooks.body_timeout, read).await {
        Ok(Ok(())) => {}
        Ok(Err(status)) => return status,
        Err(_) => return StatusCode::REQUEST_TIMEOUT,
    }
    hooks.checks.inc();
    if !(verify(&parts.headers, mac, &key) & known) {
        tracing::trace!(%namespace, %name, "webhook refused: unknown repository or wrong signature");
        return StatusCode::UNAUTHORIZED;
    }
    tracing::info!(%namespace, %name, "webhook: sync requested");
    (hooks.on_push)(&namespace, &name);
    StatusCode::ACCEPTED
}

/// Whether `headers` prove knowledge of `key`'s token; `mac` is `key`'s HMAC state after the
/// whole body. The HMAC is finalized and compared in constant time in every case.
pub fn verify(headers: &HeaderMap, mac: Hmac<Sha256>, key: &Key) -> bool {
    let body_mac = mac.finalize().into_bytes();
    if let Some(signature) = headers.get("x-hub-signature-256") {
        let expected = signature
            .to_str()
            .ok()
            .and_then(|s| s.strip_prefix("sha256="))
            .and_then(decode_hex);
        return match expected {
            Some(expected) => body_mac.as_slice().ct_eq(&expected).into(),
            None => false,
        };
    }
    if let Some(given) = headers.get("x-gitlab-token") {
        let digest = Sha256::digest(given.as_bytes());
        return digest.as_slice().ct_eq(&key.token_digest).into();
    }
    false
}

/// Whether a request carries a valid signature or token for `token` over `body`.
pub fn authentic(headers: &HeaderMap, body: &[u8], token: &[u8]) -> bool {
    let key = Key::new(token);
    let mut mac = key.mac.clone();
    mac.update(body);
    verify(headers, mac, &key)
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
        let long_key = vec![7u8; 200];
        headers.insert(
            "x-hub-signature-256",
            sign(&long_key, b"{}").parse().unwrap(),
        );
        assert!(authentic(&headers, b"{}", &long_key), "keys over one block");
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

    #[test]
    fn the_random_key_of_unknown_repositories_matches_nothing_sent() {
        let unknown = Key::random();
        assert_ne!(unknown.token_digest, Key::random().token_digest);
        let mut headers = HeaderMap::new();
        headers.insert("x-gitlab-token", "".parse().unwrap());
        assert!(!verify(&headers, unknown.mac.clone(), &unknown));
        headers.insert("x-hub-signature-256", sign(b"", b"").parse().unwrap());
        assert!(!verify(&headers, unknown.mac.clone(), &unknown));
    }
}
