//! Tenant confinement: whose rights a GitRepository acts with, what it may reach, and who owns
//! what it applies. `docs/security.md` is the user-facing description.
//!
//! - [`identity`]: the [`Identity`] of a repository (an impersonated ServiceAccount, the
//!   controller confined to the repository's namespace, or the controller with cluster scope
//!   for trusted namespaces) and the admin's switches ([`Tenancy`]).
//! - [`policy`]: the pure confinement decision for one object and one kind of access.
//! - [`clients`]: impersonating Kubernetes clients, one per ServiceAccount.
//! - [`reviews`]: SubjectAccessReviews, cached per question and invalidated on RBAC changes.
//! - [`scope`]: which watchers (reader, type, scope) a repository needs, and which live objects
//!   its identity may see.
//! - [`ownership`]: the owner/adopt annotations and the decision whether an object may be
//!   applied by a repository.
//! - [`secrets`]: masking Secret values in diffs.
//!
//! Nothing here depends on the controller; the controller calls it.

pub mod clients;
pub mod identity;
pub mod ownership;
pub mod policy;
pub mod reviews;
pub mod scope;
pub mod secrets;

pub use clients::Clients;
pub use identity::{Identity, RepositoryRef, ServiceAccountRef, Tenancy};
pub use ownership::{ADOPT_ANNOTATION, OWNER_ANNOTATION, Ownership};
pub use policy::{Access, Confinement, Refusal, confine};
pub use reviews::AccessReviews;
pub use scope::{Reader, WatchKey, WatchScope};
