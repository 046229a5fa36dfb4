//! What an authenticated push does on this replica: fetch at once if it leads, else hand the
//! request to the leader through the API server.
//!
//! With leader election the webhook Service sends a push to any replica, and only the leader
//! syncs. A replica that does not lead sets the GitRepository's
//! [`REQUESTED_AT_ANNOTATION`] to the current time (a merge patch); the leader watches
//! GitRepositories and fetches when that annotation changes (`controller::runner`), as Flux's
//! receiver does with `reconcile.fluxcd.io/requestedAt`. The leader itself calls
//! [`Trigger::request_fetch`] directly: no API write, no added latency.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::Client;
use kube::api::{Api, Patch, PatchParams};

use super::OnPush;
use crate::api::{GitRepository, REQUESTED_AT_ANNOTATION};
use crate::cluster::FIELD_MANAGER;
use crate::controller::{RepoKey, Trigger};
use crate::leader::LeaderGate;

/// How long one annotation patch may take.
const PATCH_TIMEOUT: Duration = Duration::from_secs(10);

/// The [`OnPush`] of `git-controller run`: [`Trigger::request_fetch`] while `gate` says this
/// process leads (always without leader election), else the annotation patch, sent in the
/// background with `client` (the controller's own identity).
pub fn on_push(trigger: Trigger, gate: LeaderGate, client: Client) -> OnPush {
    let forwarder = Arc::new(Forwarder {
        client,
        in_flight: Mutex::default(),
    });
    Arc::new(move |namespace: &str, name: &str| {
        if gate.is_leading() {
            trigger.request_fetch(namespace, name);
        } else {
            forwarder.forward(RepoKey::new(namespace, name));
        }
    })
}

/// Patches the annotation, at most one patch per repository at a time.
struct Forwarder {
    client: Client,
    /// Repositories with a patch under way, and whether another push came in meanwhile (then
    /// one more patch follows, so a fetch the first one caused cannot miss that push's commit).
    in_flight: Mutex<HashMap<RepoKey, bool>>,
}

impl Forwarder {
    fn forward(self: &Arc<Self>, key: RepoKey) {
        {
            let mut in_flight = self.in_flight.lock().expect("in-flight lock");
            if let Some(again) = in_flight.get_mut(&key) {
                *again = true;
                return;
            }
            in_flight.insert(key.clone(), false);
        }
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                this.patch(&key).await;
                let mut in_flight = this.in_flight.lock().expect("in-flight lock");
                match in_flight.get_mut(&key) {
                    Some(again) if *again => *again = false,
                    _ => {
                        in_flight.remove(&key);
                        return;
                    }
                }
            }
        });
    }

    /// Sets the annotation to now. Not behind the leader gate, unlike every sync write: this is
    /// a request addressed to the leader, not a change of what is synced, and asking is exactly
    /// what a replica that does not lead must be able to do. It touches only this annotation
    /// (a merge patch, no resourceVersion: the latest request wins, which is all that matters),
    /// with the controller's own client and field manager; the chart's role already grants
    /// `patch` on `gitrepositories`.
    async fn patch(&self, key: &RepoKey) {
        let api: Api<GitRepository> = Api::namespaced(self.client.clone(), &key.namespace);
        let now = jiff::Timestamp::now().to_string();
        let body = serde_json::json!({
            "metadata": {"annotations": {REQUESTED_AT_ANNOTATION: now}}
        });
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.to_string()),
            ..PatchParams::default()
        };
        let patched = tokio::time::timeout(
            PATCH_TIMEOUT,
            api.patch(&key.name, &params, &Patch::Merge(&body)),
        )
        .await;
        let (namespace, name) = (&key.namespace, &key.name);
        match patched {
            Ok(Ok(_)) => tracing::info!(
                %namespace,
                %name,
                requested_at = %now,
                "webhook: not the leader, fetch requested from the leader by annotation"
            ),
            Ok(Err(error)) => tracing::warn!(
                %namespace,
                %name,
                %error,
                "webhook: could not annotate the repository for the leader; the push waits for its interval"
            ),
            Err(_) => tracing::warn!(
                %namespace,
                %name,
                "webhook: annotating the repository for the leader timed out; the push waits for its interval"
            ),
        }
    }
}
