//! Who a GitRepository acts as, chosen from its spec and the admin's flags.

use std::collections::BTreeSet;
use std::fmt;

/// A ServiceAccount, as the API server names it when it is impersonated.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceAccountRef {
    /// Namespace of the ServiceAccount (always the GitRepository's own).
    pub namespace: String,
    /// Name of the ServiceAccount.
    pub name: String,
}

impl ServiceAccountRef {
    /// The user name the API server gives the ServiceAccount:
    /// `system:serviceaccount:<namespace>:<name>`.
    pub fn username(&self) -> String {
        format!("system:serviceaccount:{}:{}", self.namespace, self.name)
    }

    /// The groups the API server gives the ServiceAccount. Impersonation does not send them
    /// (the API server adds them itself, and sending groups would need the right to
    /// impersonate groups, `system:masters` included); SubjectAccessReviews must name them.
    pub fn groups(&self) -> Vec<String> {
        vec![
            "system:serviceaccounts".to_string(),
            format!("system:serviceaccounts:{}", self.namespace),
            "system:authenticated".to_string(),
        ]
    }
}

impl fmt::Display for ServiceAccountRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.username())
    }
}

/// A GitRepository, by namespace and name (`<namespace>/<name>`, the value of the owner and
/// adopt annotations).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RepositoryRef {
    /// Namespace of the GitRepository.
    pub namespace: String,
    /// Name of the GitRepository.
    pub name: String,
}

impl RepositoryRef {
    /// A repository reference.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// The reference of a GitRepository.
    pub fn of(repo: &crate::api::GitRepository) -> Self {
        use kube::ResourceExt;
        Self::new(repo.namespace().unwrap_or_default(), repo.name_any())
    }

    /// Whether `text` parses ([`parse`](Self::parse)) as this reference, without allocating:
    /// asked of every object a repository holds, on every sync.
    pub fn is(&self, text: &str) -> bool {
        let (namespace, name) = (self.namespace.as_str(), self.name.as_str());
        let valid = !namespace.is_empty()
            && !name.is_empty()
            && !name.contains('/')
            && !namespace.contains('/');
        // The common case, the annotation as stamped: compared without trimming or splitting.
        let exact = text.len() == namespace.len() + 1 + name.len()
            && text.starts_with(namespace)
            && text.as_bytes()[namespace.len()] == b'/'
            && text.ends_with(name);
        valid
            && (exact
                || text
                    .trim()
                    .split_once('/')
                    .is_some_and(|(ns, n)| ns == namespace && n == name))
    }

    /// Parses `<namespace>/<name>`; None when either part is missing or empty.
    pub fn parse(text: &str) -> Option<Self> {
        let (namespace, name) = text.trim().split_once('/')?;
        (!namespace.is_empty() && !name.is_empty() && !name.contains('/'))
            .then(|| Self::new(namespace, name))
    }
}

impl fmt::Display for RepositoryRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// Whose rights a GitRepository reads and writes with, and how far it reaches.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Identity {
    /// The controller's own rights, every namespace and cluster-scoped objects: repositories
    /// in a namespace the admin trusts (`--cluster-scope-namespaces`).
    ClusterScope,
    /// The controller's own rights, but only objects in this namespace (the repository's):
    /// every repository without a ServiceAccount outside the trusted namespaces.
    Namespace(String),
    /// Impersonation of a ServiceAccount of the repository's namespace
    /// (`spec.serviceAccountName`, or `--default-service-account`): the API server decides
    /// every read and write.
    ServiceAccount(ServiceAccountRef),
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Identity::ClusterScope => f.write_str("the controller (cluster scope)"),
            Identity::Namespace(ns) => write!(f, "the controller confined to namespace {ns}"),
            Identity::ServiceAccount(account) => account.fmt(f),
        }
    }
}

/// The admin's tenancy switches (flags of `git-controller run`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tenancy {
    /// Namespaces whose GitRepositories without `serviceAccountName` act with the controller's
    /// own rights across the cluster (`--cluster-scope-namespaces`; default: the controller's
    /// own namespace).
    pub cluster_scope_namespaces: BTreeSet<String>,
    /// ServiceAccount (in each repository's namespace) impersonated by repositories without
    /// `serviceAccountName` (`--default-service-account`). Set: lockdown.
    pub default_service_account: Option<String>,
    /// Whether repositories may write Secrets to Git in plain text when they ask for it
    /// (`--allow-plaintext-secrets`); both this and the repository's field are needed.
    pub allow_plaintext_secrets: bool,
    /// Whether `file://` URLs and local paths are allowed as remotes (`--allow-local-urls`).
    pub allow_local_urls: bool,
}

impl Tenancy {
    /// The identity of a repository in `namespace` whose `spec.serviceAccountName` is
    /// `service_account`. The field wins; then the default ServiceAccount (lockdown); then
    /// cluster scope for trusted namespaces; otherwise the repository's own namespace.
    pub fn identity(&self, namespace: &str, service_account: Option<&str>) -> Identity {
        let account = service_account
            .filter(|name| !name.is_empty())
            .or(self.default_service_account.as_deref());
        match account {
            Some(name) => Identity::ServiceAccount(ServiceAccountRef {
                namespace: namespace.to_string(),
                name: name.to_string(),
            }),
            None if self.cluster_scope_namespaces.contains(namespace) => Identity::ClusterScope,
            None => Identity::Namespace(namespace.to_string()),
        }
    }

    /// Lockdown: every repository impersonates a ServiceAccount, and the controller's own
    /// rights cover only its CRDs, Events, Leases, impersonation, access reviews and
    /// credentials; watchers of synced types run as the impersonated identities.
    pub fn lockdown(&self) -> bool {
        self.default_service_account.is_some()
    }

    /// Whether a repository that asks for plain-text Secrets in Git (`allowPlaintextSecrets`)
    /// gets them.
    pub fn plaintext_secrets(&self, requested: bool) -> PlaintextSecrets {
        match (requested, self.allow_plaintext_secrets) {
            (false, _) => PlaintextSecrets::NotRequested,
            (true, true) => PlaintextSecrets::Allowed,
            (true, false) => PlaintextSecrets::RefusedByAdmin,
        }
    }
}

/// What becomes of a repository's `allowPlaintextSecrets`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PlaintextSecrets {
    /// The field is false: Secrets are never written to Git.
    #[default]
    NotRequested,
    /// The field is true and the controller runs with `--allow-plaintext-secrets`.
    Allowed,
    /// The field is true but the controller runs without `--allow-plaintext-secrets`: refused,
    /// and said so in a condition.
    RefusedByAdmin,
}

impl PlaintextSecrets {
    /// Whether the planner may write Secrets to Git.
    pub fn allowed(self) -> bool {
        self == PlaintextSecrets::Allowed
    }
}

/// Where the service account token mounts its namespace file in a pod.
const NAMESPACE_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

/// The controller's own namespace: `POD_NAMESPACE`, else the in-cluster namespace file; None
/// when run outside a pod without `POD_NAMESPACE`.
pub fn own_namespace() -> Option<String> {
    std::env::var("POD_NAMESPACE")
        .ok()
        .or_else(|| std::fs::read_to_string(NAMESPACE_FILE).ok())
        .map(|ns| ns.trim().to_string())
        .filter(|ns| !ns.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenancy(trusted: &[&str], default_account: Option<&str>) -> Tenancy {
        Tenancy {
            cluster_scope_namespaces: trusted.iter().map(|s| s.to_string()).collect(),
            default_service_account: default_account.map(str::to_string),
            ..Tenancy::default()
        }
    }

    fn account(namespace: &str, name: &str) -> Identity {
        Identity::ServiceAccount(ServiceAccountRef {
            namespace: namespace.into(),
            name: name.into(),
        })
    }

    #[test]
    fn the_field_wins_then_the_default_account_then_trust_then_the_namespace() {
        let open = tenancy(&["platform"], None);
        assert_eq!(
            open.identity("team-a", Some("deployer")),
            account("team-a", "deployer")
        );
        assert_eq!(
            open.identity("platform", Some("deployer")),
            account("platform", "deployer")
        );
        assert_eq!(open.identity("platform", None), Identity::ClusterScope);
        assert_eq!(
            open.identity("team-a", None),
            Identity::Namespace("team-a".into())
        );
        assert_eq!(
            open.identity("team-a", Some("")),
            Identity::Namespace("team-a".into())
        );
        assert!(!open.lockdown());

        let locked = tenancy(&["platform"], Some("gitops"));
        assert_eq!(locked.identity("team-a", None), account("team-a", "gitops"));
        assert_eq!(
            locked.identity("platform", None),
            account("platform", "gitops")
        );
        assert_eq!(
            locked.identity("team-a", Some("deployer")),
            account("team-a", "deployer")
        );
        assert!(locked.lockdown());
    }

    #[test]
    fn service_accounts_have_the_names_and_groups_the_api_server_gives_them() {
        let sa = ServiceAccountRef {
            namespace: "team-a".into(),
            name: "deployer".into(),
        };
        assert_eq!(sa.username(), "system:serviceaccount:team-a:deployer");
        assert_eq!(
            sa.groups(),
            [
                "system:serviceaccounts",
                "system:serviceaccounts:team-a",
                "system:authenticated"
            ]
        );
    }

    #[test]
    fn plaintext_secrets_need_both_the_field_and_the_flag() {
        let off = Tenancy::default();
        let on = Tenancy {
            allow_plaintext_secrets: true,
            ..Tenancy::default()
        };
        assert_eq!(
            off.plaintext_secrets(true),
            PlaintextSecrets::RefusedByAdmin
        );
        assert_eq!(off.plaintext_secrets(false), PlaintextSecrets::NotRequested);
        assert_eq!(on.plaintext_secrets(false), PlaintextSecrets::NotRequested);
        assert!(on.plaintext_secrets(true).allowed());
        assert!(!off.plaintext_secrets(true).allowed());
    }

    #[test]
    fn repository_references_parse_namespace_slash_name() {
        assert_eq!(
            RepositoryRef::parse("team-a/apps"),
            Some(RepositoryRef::new("team-a", "apps"))
        );
        assert_eq!(
            RepositoryRef::parse(" team-a/apps\n").unwrap().to_string(),
            "team-a/apps"
        );
        for bad in ["", "apps", "/apps", "team-a/", "a/b/c"] {
            assert_eq!(RepositoryRef::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_reference_is_recognised_in_text_exactly_when_the_text_parses_as_it() {
        let apps = RepositoryRef::new("team-a", "apps");
        let odd = [
            RepositoryRef::new("a/b", "c"),
            RepositoryRef::new("a", "b/c"),
            RepositoryRef::new("", "c"),
            RepositoryRef::new("a", ""),
        ];
        for reference in std::iter::once(&apps).chain(&odd) {
            for text in [
                "team-a/apps",
                " team-a/apps\n",
                "team-a/app",
                "team-b/apps",
                "team-a/apps/x",
                "team-aXapps",
                "team-a",
                "/apps",
                "",
                "a/b/c",
                "/c",
                "a/",
            ] {
                assert_eq!(
                    reference.is(text),
                    RepositoryRef::parse(text).as_ref() == Some(reference),
                    "{reference:?} in {text:?}"
                );
            }
        }
        assert!(apps.is("team-a/apps"));
        assert!(!apps.is("team-a/apps/x"));
    }
}
