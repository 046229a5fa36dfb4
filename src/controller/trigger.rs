//! How the outside world asks for a sync: a re-plan soon (watch events, rule changes,
//! rediscovery), or a fetch first (push webhooks). Cheap to clone.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use kube::runtime::reflector::ObjectRef;
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};

use super::repository::RepoKey;
use crate::api::GitRepository;

/// The receiving end, handed to the kube-runtime `Controller` (`reconcile_on`).
pub type Triggers = UnboundedReceiver<ObjectRef<GitRepository>>;

/// Asks the controller to sync repositories.
#[derive(Clone, Debug)]
pub struct Trigger {
    tx: UnboundedSender<ObjectRef<GitRepository>>,
    /// Repositories whose next sync must fetch, whatever the interval says.
    fetch_requests: Arc<Mutex<HashSet<RepoKey>>>,
}

impl Trigger {
    /// A trigger and the stream of repositories it asks for.
    pub fn channel() -> (Trigger, Triggers) {
        let (tx, rx) = mpsc::unbounded_channel();
        let trigger = Trigger {
            tx,
            fetch_requests: Arc::default(),
        };
        (trigger, rx)
    }

    /// Syncs a repository soon (after the batch window). It re-plans against its cached Git
    /// snapshot unless a fetch is due anyway.
    pub fn sync(&self, key: &RepoKey) {
        let _ = self
            .tx
            .send(ObjectRef::new(&key.name).within(&key.namespace));
    }

    /// Fetches a repository and syncs it soon: what a push webhook asks for.
    pub fn request_fetch(&self, namespace: &str, name: &str) {
        let key = RepoKey::new(namespace, name);
        self.fetch_requests
            .lock()
            .expect("fetch requests lock")
            .insert(key.clone());
        self.sync(&key);
    }

    /// Whether a fetch was requested for a repository since its last fetch began.
    pub fn fetch_requested(&self, key: &RepoKey) -> bool {
        self.fetch_requests
            .lock()
            .expect("fetch requests lock")
            .contains(key)
    }

    /// Clears a repository's fetch request: called as its fetch begins, so a request that
    /// arrives during the fetch asks for another one.
    pub fn clear_fetch_request(&self, key: &RepoKey) {
        self.fetch_requests
            .lock()
            .expect("fetch requests lock")
            .remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fetch_request_syncs_and_stays_until_cleared() {
        let (trigger, mut triggers) = Trigger::channel();
        let key = RepoKey::new("ns", "repo");
        trigger.sync(&key);
        assert!(
            !trigger.fetch_requested(&key),
            "a plain sync asks for no fetch"
        );
        trigger.request_fetch("ns", "repo");
        assert!(trigger.fetch_requested(&key));
        assert!(!trigger.fetch_requested(&RepoKey::new("ns", "other")));
        for _ in 0..2 {
            let sent = triggers.try_recv().unwrap();
            assert_eq!(
                (sent.namespace.as_deref(), sent.name.as_str()),
                (Some("ns"), "repo")
            );
        }
        trigger.clear_fetch_request(&key);
        assert!(!trigger.fetch_requested(&key));
    }
}
