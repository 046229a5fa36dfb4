//! The confinement policy: may a repository's identity reach an object at all?
//!
//! Pure: the identity, the object and the kind of access decide. For impersonated
//! ServiceAccounts the answer is the API server's (writes are made as the account; reads are
//! checked with a SubjectAccessReview), never a guess of ours.

use std::fmt;

use gitcontroller_sync::ObjectId;

use super::identity::{Identity, ServiceAccountRef};

/// What a repository wants to do with an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Access {
    /// See it: plan it, export it to Git (a live object the rules select, or a manifest whose
    /// live object would be compared).
    Read,
    /// Create, change or delete it in the cluster (a manifest a `kubernetes` rule governs, or
    /// an inventory entry to prune).
    Write,
}

impl Access {
    /// The Kubernetes verb that stands for this access in a SubjectAccessReview: reads are
    /// `list` (what a watcher needs), writes `patch` (server-side apply).
    pub fn verb(self) -> &'static str {
        match self {
            Access::Read => "list",
            Access::Write => "patch",
        }
    }
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Access::Read => "read",
            Access::Write => "write",
        })
    }
}

/// The policy's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Confinement {
    /// Within reach; the controller's own rights are used.
    Allowed,
    /// The identity is an impersonated ServiceAccount: its RBAC decides (writes are made as
    /// it; reads need a SubjectAccessReview).
    ApiServerDecides(ServiceAccountRef),
    /// Out of reach.
    Refused(Refusal),
}

/// Why an object is out of a repository's reach. Shown per object in status and Events
/// (reason `Forbidden`); it names only the object the repository itself asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The repository is confined to its namespace and the object is in another one.
    OtherNamespace {
        /// The namespace the repository is confined to.
        confined_to: String,
    },
    /// The repository is confined to its namespace and the object is cluster-scoped.
    ClusterScoped {
        /// The namespace the repository is confined to.
        confined_to: String,
    },
    /// A SubjectAccessReview for the impersonated ServiceAccount said no.
    NotPermitted {
        /// The account.
        account: ServiceAccountRef,
        /// The verb asked about (`list`, `patch`, ...).
        verb: &'static str,
        /// `plural` or `plural.group`.
        resource: String,
        /// The namespace asked about; None: cluster-wide.
        namespace: Option<String>,
    },
    /// No access review was made for this object's type and namespace in this sync (a
    /// manifest that appeared while pushing); it is checked on the next sync.
    NotChecked {
        /// The account.
        account: ServiceAccountRef,
        /// The namespace; None: cluster-scoped.
        namespace: Option<String>,
    },
    /// The API server refused a write made as the impersonated ServiceAccount (HTTP 403).
    Forbidden {
        /// The API server's message.
        message: String,
    },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::OtherNamespace { confined_to } => write!(
                f,
                "out of reach: this GitRepository has no serviceAccountName and is confined to \
                 namespace {confined_to}"
            ),
            Refusal::ClusterScoped { confined_to } => write!(
                f,
                "out of reach: cluster-scoped, and this GitRepository has no serviceAccountName \
                 and is confined to namespace {confined_to}"
            ),
            Refusal::NotPermitted {
                account,
                verb,
                resource,
                namespace,
            } => match namespace {
                Some(ns) => write!(f, "{account} may not {verb} {resource} in namespace {ns}"),
                None => write!(f, "{account} may not {verb} {resource} cluster-wide"),
            },
            Refusal::NotChecked { account, .. } => write!(
                f,
                "not yet checked whether {account} may read it; checked on the next sync"
            ),
            Refusal::Forbidden { message } => write!(f, "forbidden: {message}"),
        }
    }
}

/// Whether `identity` may reach the object `id` for `access`. `id.namespace` is None for
/// cluster-scoped objects.
pub fn confine(identity: &Identity, id: &ObjectId, access: Access) -> Confinement {
    confine_to(identity, id.namespace.as_deref(), access)
}

/// [`confine`] for any object in `namespace` (None: cluster-scoped): the name plays no part.
pub fn confine_to(identity: &Identity, namespace: Option<&str>, access: Access) -> Confinement {
    // The access does not change the answer today (confinement holds in both directions); it
    // is part of the question so that callers say what they ask, and for the SAR's verb.
    let _ = access;
    match identity {
        Identity::ClusterScope => Confinement::Allowed,
        Identity::ServiceAccount(account) => Confinement::ApiServerDecides(account.clone()),
        Identity::Namespace(own) => match namespace {
            Some(ns) if ns == own => Confinement::Allowed,
            Some(_) => Confinement::Refused(Refusal::OtherNamespace {
                confined_to: own.clone(),
            }),
            None => Confinement::Refused(Refusal::ClusterScoped {
                confined_to: own.clone(),
            }),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(group: &str, kind: &str, namespace: Option<&str>, name: &str) -> ObjectId {
        ObjectId {
            group: group.into(),
            kind: kind.into(),
            namespace: namespace.map(str::to_string),
            name: name.into(),
        }
    }

    fn account() -> ServiceAccountRef {
        ServiceAccountRef {
            namespace: "team-a".into(),
            name: "deployer".into(),
        }
    }

    #[test]
    fn a_confined_repository_reaches_only_its_own_namespace_both_ways() {
        let confined = Identity::Namespace("team-a".into());
        let own = id("", "ConfigMap", Some("team-a"), "app");
        let other = id("", "Secret", Some("kube-system"), "token");
        let binding = id(
            "rbac.authorization.k8s.io",
            "ClusterRoleBinding",
            None,
            "admin",
        );
        for access in [Access::Read, Access::Write] {
            assert_eq!(confine(&confined, &own, access), Confinement::Allowed);
            assert_eq!(
                confine(&confined, &other, access),
                Confinement::Refused(Refusal::OtherNamespace {
                    confined_to: "team-a".into()
                })
            );
            assert_eq!(
                confine(&confined, &binding, access),
                Confinement::Refused(Refusal::ClusterScoped {
                    confined_to: "team-a".into()
                })
            );
        }
    }

    #[test]
    fn cluster_scope_reaches_everything() {
        let binding = id(
            "rbac.authorization.k8s.io",
            "ClusterRoleBinding",
            None,
            "admin",
        );
        let other = id("", "Secret", Some("kube-system"), "token");
        for access in [Access::Read, Access::Write] {
            assert_eq!(
                confine(&Identity::ClusterScope, &binding, access),
                Confinement::Allowed
            );
            assert_eq!(
                confine(&Identity::ClusterScope, &other, access),
                Confinement::Allowed
            );
        }
    }

    #[test]
    fn an_impersonated_account_is_judged_by_the_api_server_even_in_its_own_namespace() {
        let identity = Identity::ServiceAccount(account());
        for object in [
            id("", "ConfigMap", Some("team-a"), "app"),
            id("", "ConfigMap", Some("team-b"), "app"),
            id("rbac.authorization.k8s.io", "ClusterRole", None, "x"),
        ] {
            for access in [Access::Read, Access::Write] {
                assert_eq!(
                    confine(&identity, &object, access),
                    Confinement::ApiServerDecides(account())
                );
            }
        }
    }

    #[test]
    fn refusals_say_why_without_naming_anything_but_the_object_asked_for() {
        let text = Refusal::OtherNamespace {
            confined_to: "team-a".into(),
        }
        .to_string();
        assert!(text.contains("confined to namespace team-a"), "{text}");
        let text = Refusal::NotPermitted {
            account: account(),
            verb: Access::Read.verb(),
            resource: "configmaps".into(),
            namespace: Some("kube-system".into()),
        }
        .to_string();
        assert_eq!(
            text,
            "system:serviceaccount:team-a:deployer may not list configmaps in namespace kube-system"
        );
    }
}
