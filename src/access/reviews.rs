//! SubjectAccessReviews: may an impersonated ServiceAccount do something? The API server
//! answers; answers are cached per question for a short time and all dropped when RBAC changes.
//!
//! Invalidation: when the controller may list and watch Roles, RoleBindings, ClusterRoles and
//! ClusterRoleBindings (the chart grants it outside lockdown), a metadata-only watch of the four
//! drops every cached answer on any change, so a granted or revoked right counts at once.
//! Without that right (lockdown) answers live for the TTL only; that is safe there, because in
//! lockdown the watchers read *as* the ServiceAccount and the API server itself enforces what
//! they see — reviews only choose where to watch.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec, SubjectAccessReview,
    SubjectAccessReviewSpec,
};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::Client;
use kube::api::{Api, PostParams};
use kube::core::PartialObjectMeta;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, watcher};

use super::identity::ServiceAccountRef;

/// How long an answer is kept when nothing invalidates it sooner.
pub const ANSWER_TTL: Duration = Duration::from_secs(30);

/// One question: may `account` do `verb` on `resource` of `group` in `namespace` (None:
/// cluster-wide, or a cluster-scoped type)?
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Question {
    /// Who.
    pub account: ServiceAccountRef,
    /// The verb (`list`, `get`, `patch`, ...).
    pub verb: &'static str,
    /// API group; empty for the core group.
    pub group: String,
    /// Plural resource name.
    pub resource: String,
    /// Namespace; None: all namespaces (or a cluster-scoped resource).
    pub namespace: Option<String>,
}

impl Question {
    /// The resource as RBAC messages name it: `plural` or `plural.group`.
    pub fn resource_name(&self) -> String {
        if self.group.is_empty() {
            self.resource.clone()
        } else {
            format!("{}.{}", self.resource, self.group)
        }
    }
}

impl fmt::Display for Question {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.account, self.verb, self.resource_name())?;
        match &self.namespace {
            Some(ns) => write!(f, " in {ns}"),
            None => f.write_str(" cluster-wide"),
        }
    }
}

/// Cached answers, valid for a TTL and until the next invalidation (pure; the clock is given).
#[derive(Debug)]
struct Answers {
    ttl: Duration,
    entries: HashMap<Question, Answer>,
}

#[derive(Clone, Copy, Debug)]
struct Answer {
    allowed: bool,
    at: Instant,
    generation: u64,
}

/// Past this many cached answers, expired ones are swept on insert.
const SWEEP_ABOVE: usize = 10_000;

impl Answers {
    fn get(&self, question: &Question, now: Instant, generation: u64) -> Option<bool> {
        self.entries
            .get(question)
            .filter(|a| a.generation == generation && now.duration_since(a.at) < self.ttl)
            .map(|a| a.allowed)
    }

    fn insert(&mut self, question: Question, allowed: bool, at: Instant, generation: u64) {
        if self.entries.len() > SWEEP_ABOVE {
            let ttl = self.ttl;
            self.entries
                .retain(|_, a| a.generation == generation && at.duration_since(a.at) < ttl);
        }
        self.entries.insert(
            question,
            Answer {
                allowed,
                at,
                generation,
            },
        );
    }
}

/// Asks the API server, through SubjectAccessReviews, what impersonated ServiceAccounts may do.
pub struct AccessReviews {
    client: Client,
    generation: AtomicU64,
    answers: Mutex<Answers>,
}

impl AccessReviews {
    /// Reviews made with `client` (the controller's own: creating SubjectAccessReviews needs
    /// `create` on `subjectaccessreviews.authorization.k8s.io`), answers kept for `ttl`.
    pub fn new(client: Client, ttl: Duration) -> Self {
        Self {
            client,
            generation: AtomicU64::new(0),
            answers: Mutex::new(Answers {
                ttl,
                entries: HashMap::new(),
            }),
        }
    }

    /// Whether the API server allows it; cached.
    pub async fn allows(&self, question: &Question) -> Result<bool, kube::Error> {
        let generation = self.generation.load(Ordering::SeqCst);
        if let Some(allowed) =
            self.answers
                .lock()
                .expect("reviews lock")
                .get(question, Instant::now(), generation)
        {
            return Ok(allowed);
        }
        let allowed = self.ask(question).await?;
        tracing::debug!(%question, allowed, "access review");
        self.answers.lock().expect("reviews lock").insert(
            question.clone(),
            allowed,
            Instant::now(),
            generation,
        );
        Ok(allowed)
    }

    /// Drops every cached answer.
    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    async fn ask(&self, question: &Question) -> Result<bool, kube::Error> {
        let review = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: Some(question.account.username()),
                groups: Some(question.account.groups()),
                resource_attributes: Some(ResourceAttributes {
                    verb: Some(question.verb.to_string()),
                    group: Some(question.group.clone()),
                    resource: Some(question.resource.clone()),
                    namespace: question.namespace.clone(),
                    ..ResourceAttributes::default()
                }),
                ..SubjectAccessReviewSpec::default()
            },
            ..SubjectAccessReview::default()
        };
        let answer = Api::<SubjectAccessReview>::all(self.client.clone())
            .create(&PostParams::default(), &review)
            .await?;
        Ok(answer.status.is_some_and(|s| s.allowed))
    }

    /// Drops every cached answer whenever a Role, RoleBinding, ClusterRole or
    /// ClusterRoleBinding changes, when the controller may watch them; returns whether it may
    /// (otherwise answers expire after their TTL only).
    pub async fn invalidate_on_rbac_changes(self: &Arc<Self>) -> bool {
        let mut may_watch = true;
        for resource in [
            "roles",
            "rolebindings",
            "clusterroles",
            "clusterrolebindings",
        ] {
            for verb in ["list", "watch"] {
                may_watch &= self_may(&self.client, verb, "rbac.authorization.k8s.io", resource)
                    .await
                    .unwrap_or(false);
            }
        }
        if !may_watch {
            tracing::info!(
                ttl = ?self.answers.lock().expect("reviews lock").ttl,
                "may not watch RBAC objects: access reviews expire after their TTL only"
            );
            return false;
        }
        self.spawn_invalidation::<Role>();
        self.spawn_invalidation::<RoleBinding>();
        self.spawn_invalidation::<ClusterRole>();
        self.spawn_invalidation::<ClusterRoleBinding>();
        true
    }

    /// Metadata only: nothing but names and versions of RBAC objects is read.
    fn spawn_invalidation<K>(self: &Arc<Self>)
    where
        K: kube::Resource<DynamicType = ()> + Clone + fmt::Debug + Send + Sync + 'static,
    {
        let api = Api::<PartialObjectMeta<K>>::all(self.client.clone());
        let reviews = Arc::downgrade(self);
        tokio::spawn(async move {
            let events = watcher(api, watcher::Config::default()).default_backoff();
            futures::pin_mut!(events);
            while let Some(event) = events.next().await {
                let Some(reviews) = reviews.upgrade() else {
                    return;
                };
                match event {
                    // The initial list replays every object; its end (and a relist after an
                    // expired watch, which may hide changes) counts as one change.
                    Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => {}
                    Ok(
                        watcher::Event::InitDone
                        | watcher::Event::Apply(_)
                        | watcher::Event::Delete(_),
                    ) => reviews.invalidate(),
                    Err(error) => {
                        tracing::warn!(%error, "RBAC watch failed; retrying");
                        reviews.invalidate();
                    }
                }
            }
        });
    }
}

/// Whether the controller itself may do `verb` on `resource` (cluster-wide).
pub async fn self_may(
    client: &Client,
    verb: &str,
    group: &str,
    resource: &str,
) -> Result<bool, kube::Error> {
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                verb: Some(verb.to_string()),
                group: Some(group.to_string()),
                resource: Some(resource.to_string()),
                ..ResourceAttributes::default()
            }),
            ..SelfSubjectAccessReviewSpec::default()
        },
        ..SelfSubjectAccessReview::default()
    };
    let answer = Api::<SelfSubjectAccessReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await?;
    Ok(answer.status.is_some_and(|s| s.allowed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn question(namespace: &str) -> Question {
        Question {
            account: ServiceAccountRef {
                namespace: "team-a".into(),
                name: "deployer".into(),
            },
            verb: "list",
            group: String::new(),
            resource: "configmaps".into(),
            namespace: Some(namespace.into()),
        }
    }

    #[test]
    fn answers_expire_after_the_ttl_and_on_invalidation() {
        let start = Instant::now();
        let mut answers = Answers {
            ttl: Duration::from_secs(30),
            entries: HashMap::new(),
        };
        answers.insert(question("team-a"), true, start, 0);
        answers.insert(question("team-b"), false, start, 0);
        assert_eq!(answers.get(&question("team-a"), start, 0), Some(true));
        assert_eq!(answers.get(&question("team-b"), start, 0), Some(false));
        assert_eq!(answers.get(&question("kube-system"), start, 0), None);
        let later = start + Duration::from_secs(29);
        assert_eq!(answers.get(&question("team-a"), later, 0), Some(true));
        let expired = start + Duration::from_secs(30);
        assert_eq!(answers.get(&question("team-a"), expired, 0), None);
        assert_eq!(
            answers.get(&question("team-a"), start, 1),
            None,
            "a newer generation (RBAC changed) invalidates"
        );
    }

    #[test]
    fn questions_name_the_resource_as_rbac_does() {
        let mut q = question("kube-system");
        assert_eq!(
            q.to_string(),
            "system:serviceaccount:team-a:deployer list configmaps in kube-system"
        );
        q.group = "apps".into();
        q.resource = "deployments".into();
        q.namespace = None;
        assert_eq!(q.resource_name(), "deployments.apps");
        assert!(q.to_string().ends_with("cluster-wide"));
    }
}
