//! The webhook keys of every GitRepository, kept in memory so that a request costs no API call.
//!
//! - A watch on GitRepositories (the controller's namespace scope) keeps one entry per
//!   repository: the name of its webhook Secret, if any, and the key read from it.
//! - One refresher task reads Secrets with GET (never list/watch: the controller is not granted
//!   Secret list/watch across namespaces): when a repository appears or names another Secret,
//!   then every `ttl` (with jitter), so a rotated token is picked up within `ttl`. A Secret that
//!   is missing or has no `token` is tried again sooner (5 s, doubling up to `ttl`). At most one
//!   GET per Secret is in flight (one refresher), at most [`FETCH_CONCURRENCY`] in all. When a
//!   GET fails the key read before stays in use.
//! - Requests never wait for the API: [`KeyCache::lookup`] reads the map. A repository that
//!   does not exist, has no webhook Secret, or whose Secret has no token yields a per-process
//!   random key that no sender knows, so every request does the same work (see
//!   [`super::verify`]).

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::StreamExt;
use hmac::{Hmac, Mac};
use k8s_openapi::api::core::v1::Secret;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event, watcher};
use kube::{Api, Client, ResourceExt};
use sha2::{Digest, Sha256};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::api::GitRepository;

/// Secrets read at once by the refresher.
const FETCH_CONCURRENCY: usize = 4;
/// First retry of a Secret that is missing, has no token, or could not be read.
const FIRST_RETRY: Duration = Duration::from_secs(5);

/// What a request is checked against: the HMAC state keyed with the token (GitHub), and the
/// token's SHA-256 (GitLab tokens are compared by digest: fixed length, constant time).
#[derive(Clone)]
pub struct Key {
    pub(super) mac: Hmac<Sha256>,
    pub(super) token_digest: [u8; 32],
}

impl Key {
    /// The key of a webhook token.
    pub fn new(token: &[u8]) -> Self {
        Self {
            mac: Hmac::<Sha256>::new_from_slice(token).expect("HMAC takes keys of any length"),
            token_digest: Sha256::digest(token).into(),
        }
    }

    /// A key nobody knows: 32 random bytes.
    pub fn random() -> Self {
        let mut token = [0u8; 32];
        getrandom::fill(&mut token).expect("the operating system's random source");
        Self::new(&token)
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(..)")
    }
}

/// One GitRepository's webhook Secret and key.
#[derive(Debug)]
struct Entry {
    namespace: String,
    /// `spec.webhookSecretRef.name`.
    secret: Option<String>,
    /// Read from the Secret's `token`; `None` until read, or when missing or empty.
    key: Option<Arc<Key>>,
    /// When the Secret is read next.
    next_fetch: Instant,
    /// Reads in a row that found no token or failed (sets the retry delay).
    misses: u32,
}

/// `namespace/name` (neither may contain `/`).
fn entry_id(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

/// Webhook keys of the GitRepositories in scope. Build with [`KeyCache::spawn`].
#[derive(Debug)]
pub struct KeyCache {
    entries: RwLock<HashMap<String, Entry>>,
    unknown: Arc<Key>,
    /// The first list of GitRepositories arrived and every Secret named then was read once.
    ready: AtomicBool,
    listed: AtomicBool,
    /// Wakes the refresher when an entry needs a read now.
    changed: Notify,
    ttl: Duration,
    jitter: RandomState,
}

impl KeyCache {
    /// An empty cache (not ready); [`KeyCache::spawn`] fills and maintains one.
    pub fn new(ttl: Duration) -> Arc<Self> {
        Arc::new(Self {
            entries: RwLock::default(),
            unknown: Arc::new(Key::random()),
            ready: AtomicBool::new(false),
            listed: AtomicBool::new(false),
            changed: Notify::new(),
            ttl: ttl.max(Duration::from_secs(1)),
            jitter: RandomState::new(),
        })
    }

    /// Watches GitRepositories (in `namespace`, or all) and reads their webhook Secrets, in
    /// background tasks that live as long as the runtime.
    pub fn spawn(client: Client, namespace: Option<&str>, ttl: Duration) -> Arc<Self> {
        let cache = Self::new(ttl);
        let repositories: Api<GitRepository> = match namespace {
            Some(ns) => Api::namespaced(client.clone(), ns),
            None => Api::all(client.clone()),
        };
        tokio::spawn(Arc::clone(&cache).follow(repositories));
        tokio::spawn(Arc::clone(&cache).refresh(client));
        cache
    }

    /// The key of a repository and whether it is real. For a repository that does not exist,
    /// has no webhook Secret, or no token yet: the process's random key and `false`.
    pub fn lookup(&self, namespace: &str, name: &str) -> (Arc<Key>, bool) {
        let entries = self.entries.read().expect("keys lock");
        match entries
            .get(&entry_id(namespace, name))
            .and_then(|e| e.key.clone())
        {
            Some(key) => (key, true),
            None => (Arc::clone(&self.unknown), false),
        }
    }

    /// True once the repositories were listed and every webhook Secret named then was read
    /// (found or not): from then on a valid webhook is recognized.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Records a repository (new or changed): its Secret is read now when it names another.
    fn upsert(&self, repository: &GitRepository) {
        let (Some(namespace), name) = (repository.namespace(), repository.name_any()) else {
            return;
        };
        let secret = repository
            .spec
            .webhook_secret_ref
            .as_ref()
            .map(|r| r.name.clone());
        let mut entries = self.entries.write().expect("keys lock");
        let entry = entries
            .entry(entry_id(&namespace, &name))
            .or_insert_with(|| Entry {
                namespace,
                secret: None,
                key: None,
                next_fetch: Instant::now(),
                misses: 0,
            });
        if entry.secret != secret {
            entry.secret = secret;
            entry.key = None;
            entry.misses = 0;
            entry.next_fetch = Instant::now();
            drop(entries);
            self.changed.notify_one();
        }
    }

    fn remove(&self, repository: &GitRepository) {
        if let Some(namespace) = repository.namespace() {
            let id = entry_id(&namespace, &repository.name_any());
            self.entries.write().expect("keys lock").remove(&id);
        }
    }

    /// Follows the GitRepositories; after each (re)list, forgets those that are gone.
    async fn follow(self: Arc<Self>, repositories: Api<GitRepository>) {
        let mut events = std::pin::pin!(
            watcher(repositories, watcher::Config::default().any_semantic()).default_backoff()
        );
        let mut listed = HashSet::new();
        while let Some(event) = events.next().await {
            match event {
                Ok(Event::Init) => listed.clear(),
                Ok(Event::InitApply(repository)) => {
                    if let Some(ns) = repository.namespace() {
                        listed.insert(entry_id(&ns, &repository.name_any()));
                    }
                    self.upsert(&repository);
                }
                Ok(Event::InitDone) => {
                    self.entries
                        .write()
                        .expect("keys lock")
                        .retain(|id, _| listed.contains(id));
                    listed.clear();
                    self.listed.store(true, Ordering::Release);
                    self.changed.notify_one();
                }
                Ok(Event::Apply(repository)) => self.upsert(&repository),
                Ok(Event::Delete(repository)) => self.remove(&repository),
                Err(error) => tracing::warn!(%error, "webhook: watching GitRepositories"),
            }
        }
    }

    /// Reads the Secrets that are due, then sleeps until the next is due or an entry changes.
    async fn refresh(self: Arc<Self>, client: Client) {
        loop {
            let changed = self.changed.notified();
            let now = Instant::now();
            let due: Vec<(String, String, String)> = {
                let entries = self.entries.read().expect("keys lock");
                entries
                    .iter()
                    .filter(|(_, e)| e.next_fetch <= now)
                    .filter_map(|(id, e)| {
                        Some((id.clone(), e.namespace.clone(), e.secret.clone()?))
                    })
                    .collect()
            };
            if due.is_empty() {
                if self.listed.load(Ordering::Acquire) {
                    self.ready.store(true, Ordering::Release);
                }
                let next = self
                    .entries
                    .read()
                    .expect("keys lock")
                    .values()
                    .filter(|e| e.secret.is_some())
                    .map(|e| e.next_fetch)
                    .min();
                let sleep = tokio::time::sleep_until(next.unwrap_or(now + self.ttl));
                tokio::select! {
                    _ = changed => {}
                    _ = sleep => {}
                }
                continue;
            }
            futures::stream::iter(due)
                .map(|(id, namespace, secret)| {
                    let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace);
                    async move {
                        let result = secrets.get_opt(&secret).await;
                        (id, secret, result)
                    }
                })
                .buffer_unordered(FETCH_CONCURRENCY)
                .for_each(|(id, secret, result)| {
                    self.store(&id, &secret, result);
                    std::future::ready(())
                })
                .await;
        }
    }

    /// Stores what a Secret read returned, unless the entry now names another Secret (then
    /// it is due already).
    fn store(&self, id: &str, secret: &str, result: kube::Result<Option<Secret>>) {
        let mut entries = self.entries.write().expect("keys lock");
        let Some(entry) = entries.get_mut(id) else {
            return;
        };
        if entry.secret.as_deref() != Some(secret) {
            return;
        }
        let token = match &result {
            Ok(Some(found)) => crate::controller::secret_data(found)
                .remove("token")
                .filter(|t| !t.is_empty()),
            _ => None,
        };
        match (result, token) {
            (_, Some(token)) => {
                entry.key = Some(Arc::new(Key::new(&token)));
                entry.misses = 0;
                entry.next_fetch = Instant::now() + self.jittered(self.ttl, id);
                return;
            }
            (Ok(found), None) => {
                tracing::warn!(
                    repository = id,
                    secret,
                    found = found.is_some(),
                    "webhook Secret missing or without a `token`: webhooks for this repository are refused"
                );
                entry.key = None;
            }
            // Keep the key read before: the API server may be briefly unavailable.
            (Err(error), None) => {
                tracing::warn!(repository = id, secret, %error, "reading the webhook Secret failed");
            }
        }
        let retry = FIRST_RETRY
            .saturating_mul(1 << entry.misses.min(16))
            .min(self.ttl);
        entry.misses += 1;
        entry.next_fetch = Instant::now() + self.jittered(retry, id);
    }

    /// `delay` plus up to 10 %, different per entry and read, so reads spread out.
    fn jittered(&self, delay: Duration, id: &str) -> Duration {
        let fraction = (self.jitter.hash_one((id, Instant::now())) % 1000) as f64 / 10_000.0;
        delay + delay.mul_f64(fraction)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::api::ObjectMeta;

    fn repository(name: &str, secret: Option<&str>) -> GitRepository {
        let mut spec: crate::api::GitRepositorySpec =
            serde_json::from_value(serde_json::json!({"url": "https://example.invalid/r.git"}))
                .unwrap();
        spec.webhook_secret_ref =
            secret.map(|s| serde_json::from_value(serde_json::json!({ "name": s })).unwrap());
        GitRepository {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("team".into()),
                ..Default::default()
            },
            spec,
            status: None,
        }
    }

    fn secret(token: &str) -> Secret {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "hook"}, "stringData": {"token": token}
        }))
        .unwrap()
    }

    #[test]
    fn keys_follow_repositories_and_secret_reads() {
        let cache = KeyCache::new(Duration::from_secs(120));
        cache.upsert(&repository("app", Some("hook")));
        cache.upsert(&repository("plain", None));
        let (unknown, real) = cache.lookup("team", "nothing");
        assert!(!real);
        let (before, real) = cache.lookup("team", "app");
        assert!(!real, "no key before the Secret was read");
        assert!(Arc::ptr_eq(&unknown, &before), "the same random key");

        // Taken before the store: the jitter may be zero, and time passes after it.
        let stored_at = Instant::now();
        cache.store("team/app", "hook", Ok(Some(secret("s3cret"))));
        let (key, real) = cache.lookup("team", "app");
        assert!(real);
        assert_eq!(key.token_digest, Key::new(b"s3cret").token_digest);
        let next = cache.entries.read().unwrap()["team/app"].next_fetch;
        assert!(next >= stored_at + Duration::from_secs(120));

        // A failed read keeps the key; a missing Secret drops it and retries sooner.
        cache.store(
            "team/app",
            "hook",
            Err(kube::Error::LinesCodecMaxLineLengthExceeded),
        );
        assert!(cache.lookup("team", "app").1);
        cache.store("team/app", "hook", Ok(None));
        assert!(!cache.lookup("team", "app").1);
        let next = cache.entries.read().unwrap()["team/app"].next_fetch;
        assert!(next < Instant::now() + Duration::from_secs(120));

        // A read for a Secret the repository no longer names is ignored.
        cache.upsert(&repository("app", Some("other")));
        cache.store("team/app", "hook", Ok(Some(secret("s3cret"))));
        assert!(!cache.lookup("team", "app").1);

        cache.remove(&repository("app", Some("other")));
        assert!(cache.entries.read().unwrap().get("team/app").is_none());
        assert!(cache.lookup("team", "plain").0.token_digest == unknown.token_digest);
    }
}
