//! Where a repository reads from: which watchers it needs — keyed by (reader, type, scope) so
//! that repositories with the same key share one — and which objects its identity may see.
//!
//! | identity | reader | scope |
//! |---|---|---|
//! | cluster scope (trusted namespace) | the controller | the namespaces the rules name, else the cluster |
//! | confined to its namespace | the controller | that namespace (never a cluster-scoped type) |
//! | ServiceAccount, outside lockdown | the controller | as for cluster scope; every object is then checked with a SubjectAccessReview (`list` in its namespace) |
//! | ServiceAccount, lockdown | the ServiceAccount | the cluster if it may list the type cluster-wide, else each namespace it may list among the repository's own and those its rules name |

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;

use gitcontroller_sync::ObjectId;

use super::identity::{Identity, ServiceAccountRef};
use super::policy::{Access, Confinement, Refusal, confine, confine_to};
use super::reviews::{AccessReviews, Question};
use crate::cluster::discovery::{CatalogEntry, TypeKey};

/// Whose rights a watcher reads with.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reader {
    /// The controller's own ServiceAccount.
    Controller,
    /// An impersonated ServiceAccount (lockdown).
    Account(ServiceAccountRef),
}

impl fmt::Display for Reader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reader::Controller => f.write_str("controller"),
            Reader::Account(account) => account.fmt(f),
        }
    }
}

/// What a watcher lists and watches.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WatchScope {
    /// Every namespace (and cluster-scoped objects).
    Cluster,
    /// One namespace.
    Namespace(String),
}

impl WatchScope {
    /// Whether an object in `namespace` (None: cluster-scoped) is in this scope.
    pub fn contains(&self, namespace: Option<&str>) -> bool {
        match self {
            WatchScope::Cluster => true,
            WatchScope::Namespace(ns) => namespace == Some(ns.as_str()),
        }
    }
}

impl fmt::Display for WatchScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WatchScope::Cluster => f.write_str("cluster"),
            WatchScope::Namespace(ns) => write!(f, "namespace {ns}"),
        }
    }
}

/// One watcher: who reads, which type, where. Repositories asking for the same key share it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WatchKey {
    /// Whose rights it reads with.
    pub reader: Reader,
    /// The type watched.
    pub type_key: TypeKey,
    /// Where.
    pub scope: WatchScope,
}

impl WatchKey {
    /// The same reader and type, cluster-wide: a running watcher with that key serves this
    /// one too.
    pub fn widened(&self) -> Option<WatchKey> {
        matches!(self.scope, WatchScope::Namespace(_)).then(|| WatchKey {
            scope: WatchScope::Cluster,
            ..self.clone()
        })
    }
}

impl fmt::Display for WatchKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} as {} in {}", self.type_key, self.reader, self.scope)
    }
}

/// The namespaces a repository's rules select for one type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selection {
    /// Some rule names no namespace: every namespace and cluster-scoped objects.
    Everywhere,
    /// Only these namespaces.
    Namespaces(BTreeSet<String>),
}

impl Selection {
    /// The selection of rules whose `namespaces` lists are given (empty list: everywhere).
    pub fn of<'a>(rule_namespaces: impl IntoIterator<Item = &'a [String]>) -> Self {
        let mut selection = Selection::Namespaces(BTreeSet::new());
        for namespaces in rule_namespaces {
            selection.add(namespaces);
        }
        selection
    }

    /// Adds what one more rule selects (its `namespaces`; empty: everywhere).
    pub fn add(&mut self, namespaces: &[String]) {
        match self {
            Selection::Everywhere => {}
            Selection::Namespaces(_) if namespaces.is_empty() => *self = Selection::Everywhere,
            Selection::Namespaces(set) => set.extend(namespaces.iter().cloned()),
        }
    }

    /// Whether an object in `namespace` (None: cluster-scoped) is selected.
    pub fn contains(&self, namespace: Option<&str>) -> bool {
        match (self, namespace) {
            (Selection::Everywhere, _) => true,
            (Selection::Namespaces(set), Some(ns)) => set.contains(ns),
            (Selection::Namespaces(_), None) => false,
        }
    }
}

/// Where a repository reads one type from, decided without asking the API server; lockdown
/// accounts are asked first ([`watch_keys`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScopePlan {
    /// These watchers.
    Watch(Vec<WatchKey>),
    /// Lockdown: watch as `account`, cluster-wide if it may list the type there, else in each
    /// of `namespaces` it may list (none for a cluster-scoped type).
    AskAccount {
        /// The account.
        account: ServiceAccountRef,
        /// The candidate namespaces.
        namespaces: BTreeSet<String>,
    },
}

/// The pure part of [`watch_keys`].
pub fn plan_scope(
    identity: &Identity,
    lockdown: bool,
    repo_namespace: &str,
    type_key: &TypeKey,
    namespaced: bool,
    selection: &Selection,
) -> ScopePlan {
    let key = |reader: Reader, scope: WatchScope| WatchKey {
        reader,
        type_key: type_key.clone(),
        scope,
    };
    let by_selection = |reader: Reader| match selection {
        Selection::Namespaces(set) if namespaced => set
            .iter()
            .map(|ns| key(reader.clone(), WatchScope::Namespace(ns.clone())))
            .collect(),
        Selection::Namespaces(_) => Vec::new(),
        Selection::Everywhere => vec![key(reader, WatchScope::Cluster)],
    };
    match identity {
        Identity::ClusterScope => ScopePlan::Watch(by_selection(Reader::Controller)),
        Identity::Namespace(own) => ScopePlan::Watch(
            (namespaced && selection.contains(Some(own)))
                .then(|| key(Reader::Controller, WatchScope::Namespace(own.clone())))
                .into_iter()
                .collect(),
        ),
        Identity::ServiceAccount(_) if !lockdown => {
            ScopePlan::Watch(by_selection(Reader::Controller))
        }
        Identity::ServiceAccount(account) => ScopePlan::AskAccount {
            account: account.clone(),
            namespaces: match selection {
                Selection::Everywhere => BTreeSet::from([repo_namespace.to_string()]),
                Selection::Namespaces(set) => set.clone(),
            },
        },
    }
}

/// The watchers a repository needs for one type.
pub async fn watch_keys(
    identity: &Identity,
    lockdown: bool,
    repo_namespace: &str,
    type_key: &TypeKey,
    entry: &CatalogEntry,
    selection: &Selection,
    reviews: &AccessReviews,
) -> Result<Vec<WatchKey>, kube::Error> {
    let plan = plan_scope(
        identity,
        lockdown,
        repo_namespace,
        type_key,
        entry.namespaced,
        selection,
    );
    let (account, namespaces) = match plan {
        ScopePlan::Watch(keys) => return Ok(keys),
        ScopePlan::AskAccount {
            account,
            namespaces,
        } => (account, namespaces),
    };
    let key = |scope| WatchKey {
        reader: Reader::Account(account.clone()),
        type_key: type_key.clone(),
        scope,
    };
    let question = |namespace: Option<&str>| Question {
        account: account.clone(),
        verb: Access::Read.verb(),
        group: type_key.group.clone(),
        resource: entry.resource.plural.clone(),
        namespace: namespace.map(str::to_string),
    };
    let everywhere = matches!(selection, Selection::Everywhere) || !entry.namespaced;
    if everywhere && reviews.allows(&question(None)).await? {
        return Ok(vec![key(WatchScope::Cluster)]);
    }
    let mut keys = Vec::new();
    if entry.namespaced {
        for ns in namespaces {
            if reviews.allows(&question(Some(&ns))).await? {
                keys.push(key(WatchScope::Namespace(ns)));
            }
        }
    }
    Ok(keys)
}

/// Whether `identity` may read GitRepositories in `namespace`: only then may a `Conflict`
/// message name the owning repository there.
pub async fn may_see_repositories(
    identity: &Identity,
    namespace: &str,
    reviews: &AccessReviews,
) -> Result<bool, kube::Error> {
    match identity {
        Identity::ClusterScope => Ok(true),
        Identity::Namespace(own) => Ok(own == namespace),
        Identity::ServiceAccount(account) => {
            reviews
                .allows(&Question {
                    account: account.clone(),
                    verb: "get",
                    group: crate::api::GROUP.to_string(),
                    resource: "gitrepositories".to_string(),
                    namespace: Some(namespace.to_string()),
                })
                .await
        }
    }
}

/// Decides, per object, whether a repository's identity may read it; memoizes the answers of
/// one reconcile per (type, namespace) so a store of thousands of objects costs one question
/// per namespace.
pub struct ReadCheck {
    identity: Identity,
    reviews: Arc<AccessReviews>,
    answers: HashMap<(TypeKey, Option<String>), Result<(), Refusal>>,
}

impl ReadCheck {
    /// Checks for `identity`.
    pub fn new(identity: Identity, reviews: Arc<AccessReviews>) -> Self {
        Self {
            identity,
            reviews,
            answers: HashMap::new(),
        }
    }

    /// Ok when `identity` may read the object `id` of type `entry`; else why not. Confined
    /// identities are judged by the policy, ServiceAccounts by a SubjectAccessReview for
    /// `list` in the object's namespace.
    pub async fn check(
        &mut self,
        id: &ObjectId,
        entry: &CatalogEntry,
    ) -> Result<Result<(), Refusal>, kube::Error> {
        self.check_in(entry, id.namespace.as_deref()).await
    }

    /// [`ReadCheck::check`] for any object of type `entry` in `namespace` (`None`: a
    /// cluster-scoped object): the answer is the same for all of them.
    pub async fn check_in(
        &mut self,
        entry: &CatalogEntry,
        namespace: Option<&str>,
    ) -> Result<Result<(), Refusal>, kube::Error> {
        let account = match confine_to(&self.identity, namespace, Access::Read) {
            Confinement::Allowed => return Ok(Ok(())),
            Confinement::Refused(refusal) => return Ok(Err(refusal)),
            Confinement::ApiServerDecides(account) => account,
        };
        let memo = (
            TypeKey {
                group: entry.resource.group.clone(),
                kind: entry.resource.kind.clone(),
            },
            namespace.map(str::to_owned),
        );
        if let Some(answer) = self.answers.get(&memo) {
            return Ok(answer.clone());
        }
        let question = Question {
            account: account.clone(),
            verb: Access::Read.verb(),
            group: entry.resource.group.clone(),
            resource: entry.resource.plural.clone(),
            namespace: namespace.map(str::to_owned),
        };
        let answer = if self.reviews.allows(&question).await? {
            Ok(())
        } else {
            Err(Refusal::NotPermitted {
                resource: question.resource_name(),
                account,
                verb: question.verb,
                namespace: question.namespace,
            })
        };
        self.answers.insert(memo, answer.clone());
        Ok(answer)
    }

    /// The answers so far, to decide again without asking (on the blocking Git thread, which
    /// plans again for every push attempt).
    pub fn reach(&self) -> Reach {
        Reach {
            identity: self.identity.clone(),
            answers: self.answers.clone(),
        }
    }
}

/// What an identity may read, as far as it was asked in one sync: the policy's answers, and the
/// access reviews' answers per (type, namespace). Pure.
#[derive(Clone, Debug)]
pub struct Reach {
    identity: Identity,
    answers: HashMap<(TypeKey, Option<String>), Result<(), Refusal>>,
}

impl Reach {
    /// Reach of an identity that needs no access review (cluster scope, confined).
    pub fn of(identity: &Identity) -> Self {
        Self {
            identity: identity.clone(),
            answers: HashMap::new(),
        }
    }

    /// Ok when the object is within reach; an object of a (type, namespace) whose access
    /// review was not made in this sync counts as out of reach until the next sync asks.
    pub fn check(&self, id: &ObjectId) -> Result<(), Refusal> {
        let account = match confine(&self.identity, id, Access::Read) {
            Confinement::Allowed => return Ok(()),
            Confinement::Refused(refusal) => return Err(refusal),
            Confinement::ApiServerDecides(account) => account,
        };
        let memo = (
            TypeKey {
                group: id.group.clone(),
                kind: id.kind.clone(),
            },
            id.namespace.clone(),
        );
        self.answers.get(&memo).cloned().unwrap_or_else(|| {
            Err(Refusal::NotChecked {
                account,
                namespace: id.namespace.clone(),
            })
        })
    }

    /// Splits manifests into those within reach and the refused ones (with why).
    pub fn split<T>(
        &self,
        items: impl IntoIterator<Item = T>,
        id: impl Fn(&T) -> &ObjectId,
    ) -> (Vec<T>, Vec<(ObjectId, Refusal)>) {
        let items = items.into_iter();
        let mut kept = Vec::with_capacity(items.size_hint().0);
        let mut refused = Vec::new();
        for item in items {
            match self.check(id(&item)) {
                Ok(()) => kept.push(item),
                Err(refusal) => refused.push((id(&item).clone(), refusal)),
            }
        }
        (kept, refused)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn configmaps() -> TypeKey {
        TypeKey {
            group: String::new(),
            kind: "ConfigMap".into(),
        }
    }

    fn namespaces(names: &[&str]) -> Selection {
        Selection::Namespaces(names.iter().map(|s| s.to_string()).collect())
    }

    fn controller(scope: WatchScope) -> WatchKey {
        WatchKey {
            reader: Reader::Controller,
            type_key: configmaps(),
            scope,
        }
    }

    fn ns(name: &str) -> WatchScope {
        WatchScope::Namespace(name.into())
    }

    fn account() -> ServiceAccountRef {
        ServiceAccountRef {
            namespace: "team-a".into(),
            name: "deployer".into(),
        }
    }

    #[test]
    fn selections_come_from_the_rules_namespaces() {
        let a = vec!["team-a".to_string()];
        let b = vec!["team-b".to_string(), "team-a".to_string()];
        let all: Vec<String> = Vec::new();
        assert_eq!(
            Selection::of([a.as_slice(), b.as_slice()]),
            namespaces(&["team-a", "team-b"])
        );
        assert_eq!(
            Selection::of([a.as_slice(), all.as_slice()]),
            Selection::Everywhere
        );
        assert!(!namespaces(&["team-a"]).contains(None));
        assert!(Selection::Everywhere.contains(None));
    }

    #[test]
    fn a_confined_repository_watches_only_its_namespace_whatever_its_rules_name() {
        let confined = Identity::Namespace("team-a".into());
        let plan = |selection: &Selection, namespaced| {
            plan_scope(
                &confined,
                false,
                "team-a",
                &configmaps(),
                namespaced,
                selection,
            )
        };
        assert_eq!(
            plan(&Selection::Everywhere, true),
            ScopePlan::Watch(vec![controller(ns("team-a"))])
        );
        assert_eq!(
            plan(&namespaces(&["kube-system", "team-a"]), true),
            ScopePlan::Watch(vec![controller(ns("team-a"))])
        );
        assert_eq!(
            plan(&namespaces(&["kube-system"]), true),
            ScopePlan::Watch(vec![])
        );
        assert_eq!(
            plan(&Selection::Everywhere, false),
            ScopePlan::Watch(vec![]),
            "no cluster-scoped type"
        );
    }

    #[test]
    fn cluster_scope_and_accounts_outside_lockdown_share_the_controllers_watchers() {
        for identity in [Identity::ClusterScope, Identity::ServiceAccount(account())] {
            let plan = |selection: &Selection, namespaced| {
                plan_scope(
                    &identity,
                    false,
                    "team-a",
                    &configmaps(),
                    namespaced,
                    selection,
                )
            };
            assert_eq!(
                plan(&Selection::Everywhere, true),
                ScopePlan::Watch(vec![controller(WatchScope::Cluster)])
            );
            assert_eq!(
                plan(&namespaces(&["team-b", "kube-system"]), true),
                ScopePlan::Watch(vec![
                    controller(ns("kube-system")),
                    controller(ns("team-b"))
                ])
            );
            assert_eq!(
                plan(&Selection::Everywhere, false),
                ScopePlan::Watch(vec![controller(WatchScope::Cluster)])
            );
        }
    }

    #[test]
    fn a_lockdown_account_is_asked_about_its_namespace_and_the_named_ones() {
        let identity = Identity::ServiceAccount(account());
        assert_eq!(
            plan_scope(
                &identity,
                true,
                "team-a",
                &configmaps(),
                true,
                &Selection::Everywhere
            ),
            ScopePlan::AskAccount {
                account: account(),
                namespaces: BTreeSet::from(["team-a".to_string()])
            }
        );
        assert_eq!(
            plan_scope(
                &identity,
                true,
                "team-a",
                &configmaps(),
                true,
                &namespaces(&["team-b"])
            ),
            ScopePlan::AskAccount {
                account: account(),
                namespaces: BTreeSet::from(["team-b".to_string()])
            }
        );
    }

    #[test]
    fn reach_refuses_what_the_policy_refuses_and_what_no_review_answered() {
        let object = |ns: Option<&str>| ObjectId {
            group: String::new(),
            kind: "ConfigMap".into(),
            namespace: ns.map(str::to_string),
            name: "x".into(),
        };
        let confined = Reach::of(&Identity::Namespace("team-a".into()));
        assert_eq!(confined.check(&object(Some("team-a"))), Ok(()));
        assert!(matches!(
            confined.check(&object(Some("kube-system"))),
            Err(Refusal::OtherNamespace { .. })
        ));
        let (kept, refused) = confined.split(
            vec![object(Some("team-a")), object(None), object(Some("team-b"))],
            |o| o,
        );
        assert_eq!(kept, [object(Some("team-a"))]);
        assert_eq!(refused.len(), 2);

        let mut reach = Reach::of(&Identity::ServiceAccount(account()));
        reach
            .answers
            .insert((configmaps(), Some("team-a".into())), Ok(()));
        assert_eq!(reach.check(&object(Some("team-a"))), Ok(()));
        assert!(
            matches!(
                reach.check(&object(Some("team-b"))),
                Err(Refusal::NotChecked { .. })
            ),
            "not asked in this sync: out of reach"
        );
    }

    #[test]
    fn a_namespace_watcher_is_served_by_the_cluster_watcher_of_the_same_reader() {
        let key = controller(ns("team-a"));
        assert_eq!(key.widened(), Some(controller(WatchScope::Cluster)));
        assert_eq!(controller(WatchScope::Cluster).widened(), None);
        assert!(ns("team-a").contains(Some("team-a")));
        assert!(!ns("team-a").contains(Some("team-b")));
        assert!(!ns("team-a").contains(None));
        assert!(WatchScope::Cluster.contains(None));
    }
}
