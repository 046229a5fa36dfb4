//! How the outside world asks for a sync: a re-plan (watch events, rule changes, rediscovery),
//! or a fetch first (push webhooks). Cheap to clone. Each request names its source, which
//! decides how soon it syncs (see `schedule.rs`) and is counted in
//! `gitcontroller_sync_triggers_total`.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};

use super::repository::RepoKey;

/// Why a repository is asked to sync.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TriggerSource {
    /// A live object its rules select changed (a watch event).
    Watch,
    /// The spec of one of its SyncRules changed, or the rule came or went.
    Rule,
    /// The served resource types changed (a CRD was installed, changed or removed).
    Discovery,
    /// A push webhook: the next sync fetches first.
    Webhook,
    /// The GitRepository itself: created, its spec changed, or it is being deleted. These
    /// reach kube-runtime straight from the GitRepository watch, not through a [`Trigger`];
    /// they are counted under this source.
    Repository,
}

/// How soon a trigger wants its sync.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Urgency {
    /// Batched with the changes around it.
    Batched,
    /// Soon, whatever the batch says: someone asked for it.
    Soon,
}

impl TriggerSource {
    /// Every source, in a fixed order.
    pub const ALL: [TriggerSource; 5] = [
        TriggerSource::Watch,
        TriggerSource::Rule,
        TriggerSource::Discovery,
        TriggerSource::Webhook,
        TriggerSource::Repository,
    ];

    /// The `source` label of `gitcontroller_sync_triggers_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            TriggerSource::Watch => "watch",
            TriggerSource::Rule => "rule",
            TriggerSource::Discovery => "discovery",
            TriggerSource::Webhook => "webhook",
            TriggerSource::Repository => "repository",
        }
    }

    /// Watch events are batched; everything else is a person's action and syncs soon.
    pub fn urgency(self) -> Urgency {
        match self {
            TriggerSource::Watch => Urgency::Batched,
            TriggerSource::Rule
            | TriggerSource::Discovery
            | TriggerSource::Webhook
            | TriggerSource::Repository => Urgency::Soon,
        }
    }
}

/// One request to sync a repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TriggerRequest {
    /// The repository.
    pub key: RepoKey,
    /// Why.
    pub source: TriggerSource,
}

/// The receiving end, handed to the scheduler (`schedule::run`).
pub type Triggers = UnboundedReceiver<TriggerRequest>;

/// Asks the controller to sync repositories.
#[derive(Clone, Debug)]
pub struct Trigger {
    tx: UnboundedSender<TriggerRequest>,
    /// Repositories whose next sync must fetch, whatever the interval says.
    fetch_requests: Arc<Mutex<HashSet<RepoKey>>>,
}

impl Trigger {
    /// A trigger and the stream of requests it makes.
    pub fn channel() -> (Trigger, Triggers) {
        let (tx, rx) = mpsc::unbounded_channel();
        let trigger = Trigger {
            tx,
            fetch_requests: Arc::default(),
        };
        (trigger, rx)
    }

    /// Syncs a repository (when, depends on `source`). It re-plans against its cached Git
    /// snapshot unless a fetch is due anyway.
    pub fn sync(&self, key: &RepoKey, source: TriggerSource) {
        let _ = self.tx.send(TriggerRequest {
            key: key.clone(),
            source,
        });
    }

    /// Fetches a repository and syncs it soon: what a push webhook asks for.
    pub fn request_fetch(&self, namespace: &str, name: &str) {
        let key = RepoKey::new(namespace, name);
        self.fetch_requests
            .lock()
            .expect("fetch requests lock")
            .insert(key.clone());
        self.sync(&key, TriggerSource::Webhook);
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
    fn a_fetch_request_syncs_soon_and_stays_until_cleared() {
        let (trigger, mut triggers) = Trigger::channel();
        let key = RepoKey::new("ns", "repo");
        trigger.sync(&key, TriggerSource::Watch);
        assert!(
            !trigger.fetch_requested(&key),
            "a plain sync asks for no fetch"
        );
        trigger.request_fetch("ns", "repo");
        assert!(trigger.fetch_requested(&key));
        assert!(!trigger.fetch_requested(&RepoKey::new("ns", "other")));
        let sent: Vec<_> = (0..2).map(|_| triggers.try_recv().unwrap()).collect();
        assert_eq!(
            sent,
            [
                TriggerRequest {
                    key: key.clone(),
                    source: TriggerSource::Watch
                },
                TriggerRequest {
                    key: key.clone(),
                    source: TriggerSource::Webhook
                }
            ]
        );
        assert_eq!(sent[0].source.urgency(), Urgency::Batched);
        assert_eq!(sent[1].source.urgency(), Urgency::Soon);
        trigger.clear_fetch_request(&key);
        assert!(!trigger.fetch_requested(&key));
    }

    #[test]
    fn every_source_is_a_label_value_of_the_trigger_metric() {
        let labels = TriggerSource::ALL.map(TriggerSource::as_str);
        assert_eq!(labels, crate::metrics::TRIGGER_SOURCES);
    }
}
