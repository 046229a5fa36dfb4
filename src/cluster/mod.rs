//! The cluster side: discovery of resource types (refreshed when CRDs change), dynamic watchers
//! with in-memory stores for every type a rule selects, the types' OpenAPI schemas,
//! server-side apply, and Events.

pub mod apply;
mod change_feed;
pub mod discovery;
pub mod events;
pub mod live;
pub mod openapi;
pub mod watchers;

pub use discovery::{ResourceCatalog, TypeKey};
pub use events::EventRecorder;
pub use live::{LiveObject, LiveType};
pub use watchers::{LiveChange, LiveChangeKind, Watched, Watchers};

/// The field manager of every write git-controller makes to the cluster.
pub const FIELD_MANAGER: &str = "git-controller";
